/**
 * The C# SDK (src/sdk-csharp/Observerio.cs), built with Debian's mono-mcs and run with mono against a
 * real daemon. The SDK must compile alone against mscorlib and System.dll (what .NET Standard 2.0
 * offers it) with warnings as errors, and so must the Unity-style example. The test program
 * (test/sdk-csharp/) checks the codec against docs/protocol-vectors.json offline, then plays a game on
 * the daemon started here: its "@@ <json>" lines on stdout are requests that this side carries out on
 * the daemon (a dashboard change through PUT /api/vars/:name, a look at /api/vars and /api/logs,
 * /admin/kill of the connections, a stop and a restart on the same ports), answered with one JSON
 * line on its stdin. `make test` installs mono-mcs; without it these tests fail rather than skip.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { parseLine } from '../../src/tcp/protocol.js';
import { ADMIN_TOKEN, AdminClient } from '../helpers/admin.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir } from '../helpers/processes.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const SDK = join(root, 'src/sdk-csharp/Observerio.cs');
const EXAMPLE = join(root, 'examples/unity-style/GameLoop.cs');
const TESTS = ['Runner.cs', 'UnitTests.cs', 'LiveTests.cs'].map((f) => join(root, 'test/sdk-csharp', f));
const VECTORS = join(root, 'docs/protocol-vectors.json');

type Var = { name: string; type: string; value: string };
type Hit = { message: string; level: string; deviceId: string | null; fields: Record<string, unknown> };
type Request = { op: string; name?: string; value?: unknown; vars?: Var[]; message?: string };

interface Run {
  code: number | null;
  lines: string[];
  stderr: string;
}

/** Fails with the install hint when a tool is missing: `make test` installs mono-mcs, so absence is a bug. */
async function requireTool(cmd: string): Promise<void> {
  try {
    await exec(cmd, ['--version']);
  } catch (err) {
    throw new Error(`${cmd} is not installed: \`make system-deps\` installs Debian's mono-mcs (apt-get install mono-mcs). ${(err as Error).message}`);
  }
}

async function mcs(args: string[]): Promise<void> {
  try {
    await exec('mcs', args);
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`mcs ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/**
 * A daemon that can be stopped and started again on the same TCP port (the game's), keeping its data.
 * HTTP moves to a fresh port on each start: uWebSockets cannot bind the old one again at once.
 */
class RestartableDaemon {
  daemon: Daemon | null = null;
  user!: TestUser;
  private readonly dir = tempDir('observerio-csharp-daemon-');
  private tcpPort = 0;

  async start(): Promise<Daemon> {
    const d = await startDaemon({ dataDir: this.dir.path, overrides: { adminToken: ADMIN_TOKEN, tcpPort: this.tcpPort } });
    this.daemon = d;
    this.tcpPort = d.tcpPort;
    if (this.user) {
      // A fresh session after a restart: the user and its key are in the store's snapshot.
      const res = await call<{ token: string }>(d, 'POST', '/api/sessions', { body: { email: this.user.email, password: this.user.password } });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      this.user = { ...this.user, token: res.body.token };
    } else {
      this.user = await signedInUser(d);
    }
    return d;
  }

  async stop(): Promise<void> {
    const d = this.daemon;
    this.daemon = null;
    await d?.stop();
  }

  get port(): number {
    return this.tcpPort;
  }

  private get d(): Daemon {
    if (!this.daemon) throw new Error('the daemon is stopped');
    return this.daemon;
  }

  async vars(): Promise<Var[]> {
    const r = await call<{ vars: Var[] }>(this.d, 'GET', '/api/vars', { token: this.user.token });
    expect(r.status).to.equal(200);
    return r.body.vars;
  }

  async logs(query = ''): Promise<Hit[]> {
    const r = await call<{ hits: Hit[] }>(this.d, 'GET', `/api/logs?limit=100${query}`, { token: this.user.token });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body.hits;
  }

  /** What the C# program asks for; the answer is its `body`, a throw becomes `{ok: false}`. */
  async handle(req: Request): Promise<unknown> {
    switch (req.op) {
      case 'put': {
        const r = await call(this.d, 'PUT', `/api/vars/${encodeURIComponent(req.name ?? '')}`, { token: this.user.token, body: { value: req.value } });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        return r.body;
      }
      case 'waitVars':
        return eventually(async () => {
          const have = await this.vars();
          for (const v of req.vars ?? []) expect(have, `variable ${v.name}`).to.deep.include(v);
          return have;
        });
      case 'waitLog':
        return eventually(async () => {
          const hit = (await this.logs(`&q=${encodeURIComponent(req.message ?? '')}`)).find((h) => h.message === req.message);
          expect(hit, `log ${req.message}`).to.not.equal(undefined);
          return hit;
        });
      case 'logMessages':
        return (await this.logs()).map((h) => h.message);
      case 'killConns': {
        const a = await new AdminClient(this.d).kill('/observerio/tcp/conns');
        expect(a.status, JSON.stringify(a.body)).to.equal(200);
        return null;
      }
      case 'labelsKnown': {
        // Whether this daemon's parser speaks the devices extension (d:), or answers e:unknown_command.
        const parsed = parseLine(`d:${this.user.apiKey}:e30=`);
        return !(parsed.kind === 'error' && parsed.code === 'unknown_command');
      }
      case 'stopDaemon':
        await this.stop();
        return null;
      case 'startDaemon':
        await this.start();
        return null;
      default:
        throw new Error(`unknown request ${req.op}`);
    }
  }

  remove(): void {
    this.dir.remove();
  }
}

describe('C# SDK (mono)', function () {
  this.timeout(120_000);
  const out = tempDir('observerio-csharp-');
  const exe = join(out.path, 'ObserverioSdkTests.exe');
  let child: ChildProcess | null = null;

  before(async () => {
    await requireTool('mcs');
    await requireTool('mono');
    await mcs(['-noconfig', '-r:System.dll', '-r:System.Core.dll', `-out:${exe}`, SDK, EXAMPLE, ...TESTS]);
  });
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = null;
  });
  after(() => out.remove());

  /** Runs the test program; `handle` answers its requests one at a time, in order. */
  function run(args: string[], env: Record<string, string> = {}, handle?: (req: Request) => Promise<unknown>): Promise<Run> {
    return new Promise((resolve, reject) => {
      const p = spawn('mono', [exe, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      child = p;
      const lines: string[] = [];
      let stderr = '';
      let queue = Promise.resolve();
      p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      p.on('error', reject);
      createInterface({ input: p.stdout }).on('line', (line) => {
        if (!line.startsWith('@@ ')) {
          lines.push(line);
          return;
        }
        lines.push(line);
        queue = queue.then(async () => {
          let reply: unknown;
          try {
            if (!handle) throw new Error('this run takes no requests');
            reply = { ok: true, body: (await handle(JSON.parse(line.slice(3)) as Request)) ?? null };
          } catch (err) {
            reply = { ok: false, error: String((err as Error).message ?? err).replace(/\n/g, ' ') };
          }
          if (p.stdin.writable) p.stdin.write(`${JSON.stringify(reply)}\n`);
        });
      });
      p.on('close', (code) => void queue.then(() => resolve({ code, lines, stderr })));
    });
  }

  /** Every test of the program passed, and as many ran as it has. */
  function expectPassed(r: Run, count: number): void {
    const output = `${r.lines.join('\n')}\n${r.stderr}`;
    expect(r.lines.filter((l) => l.startsWith('not ok')), output).to.deep.equal([]);
    expect(r.lines.at(-1), output).to.equal(`${count} passed, 0 failed`);
    expect(r.code, output).to.equal(0);
  }

  it('compiles the SDK alone against mscorlib and System.dll, warnings as errors, and the example against it', async () => {
    const dll = join(out.path, 'Observerio.dll');
    await mcs(['-noconfig', '-r:System.dll', '-target:library', '-warnaserror', `-out:${dll}`, SDK]);
    await mcs(['-noconfig', '-r:System.dll', `-r:${dll}`, '-target:library', '-warnaserror', `-out:${join(out.path, 'GameLoop.dll')}`, EXAMPLE]);
  });

  it('passes its offline tests: protocol vectors, typing, number format, bounded queue, no exceptions', async () => {
    expectPassed(await run(['unit', VECTORS]), 24);
  });

  it('fails its run when a vector does not hold (the runner can fail)', async () => {
    const bad = join(out.path, 'bad-vectors.json');
    const { readFile, writeFile } = await import('node:fs/promises');
    const vectors = JSON.parse(await readFile(VECTORS, 'utf8')) as Array<{ line: string; canonical?: boolean }>;
    const first = vectors.find((v) => v.canonical);
    if (first) first.line = `${first.line}x`;
    await writeFile(bad, JSON.stringify(vectors));
    const r = await run(['unit', bad]);
    expect(r.code).to.equal(1);
    expect(r.lines).to.include.members(['ok decodes every daemon line to the expected result and typed values']);
    expect(r.lines.some((l) => l.startsWith('not ok reproduces every canonical to_daemon line exactly'))).to.equal(true);
    expect(r.lines.at(-1)).to.equal('23 passed, 1 failed');
  });

  describe('against the real daemon', () => {
    let d: RestartableDaemon;

    beforeEach(async () => {
      d = new RestartableDaemon();
      await d.start();
    });
    afterEach(async () => {
      await d.stop();
      d.remove();
    });

    it('plays a session: defaults, dashboard changes through Poll(), SetVar, Log, a killed connection, a restart, Close', async () => {
      const r = await run(['live'], { OBSERVERIO_HOST: '127.0.0.1', OBSERVERIO_PORT: String(d.port), OBSERVERIO_API_KEY: d.user.apiKey }, (req) => d.handle(req));
      expectPassed(r, 11);
      // What the program asserted is also on the daemon: the game's last values and its device.
      const vars = await d.vars();
      expect(vars).to.deep.include({ name: 'offline_var', type: 'integer', value: '8' });
      expect(vars).to.deep.include({ name: 'title', type: 'string', value: 'Boss 3' });
      const logs = await d.logs();
      expect(logs.map((h) => h.message)).to.include.members(['while offline', 'last words']);
      expect(logs.find((h) => h.message === 'last words')?.deviceId).to.equal('csharp-live');
    });

    it('connects to a daemon that is down at start once it comes up, with its defaults and its newest queued logs', async () => {
      const apiKey = d.user.apiKey;
      const port = d.port;
      await d.stop();
      const r = await run(['down-at-start'], { OBSERVERIO_HOST: '127.0.0.1', OBSERVERIO_PORT: String(port), OBSERVERIO_API_KEY: apiKey }, (req) => d.handle(req));
      expectPassed(r, 3);
      expect(await d.vars()).to.deep.include({ name: 'enemy_speed', type: 'float', value: '3.25' });
    });
  });
});
