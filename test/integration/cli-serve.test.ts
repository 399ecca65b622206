/**
 * `observerio serve` as a user runs it (`make run`): the built CLI in its own process, embedded
 * backends, nothing configured but ports and a data folder. It serves v:, i:, l:, keeps users
 * across restarts, stops cleanly on SIGTERM, and refuses bad flags and config with a message.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { tempDir } from '../helpers/processes.js';

const BIN = join(process.cwd(), 'bin', 'observerio.js');

interface Served {
  child: ChildProcess;
  out: () => string;
  tcp: number;
  http: number;
}

async function serve(dataDir: string, env: Record<string, string> = {}): Promise<Served> {
  const tcp = await freePort();
  const http = await freePort();
  const cleanEnv = { ...process.env };
  for (const k of ['REDIS_URL', 'MEILI_URL', 'MEILI_MASTER_KEY', 'OBSERVERIO_ADMIN_TOKEN', 'NODE_ENV']) delete cleanEnv[k];
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...cleanEnv, OBSERVERIO_TCP_PORT: String(tcp), OBSERVERIO_HTTP_PORT: String(http), OBSERVERIO_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  await eventually(() => expect(out).to.contain('observerio ready'), { timeoutMs: 15_000 });
  return { child, out: () => out, tcp, http };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

describe('observerio serve (embedded backends, real process)', function () {
  this.timeout(60_000);
  before(function () {
    if (!existsSync(join(process.cwd(), 'dist', 'cli', 'main.js'))) throw new Error("dist/ is missing: run 'make build' (make test does)");
  });

  it('serves an SDK session, keeps users across a restart, and exits 0 on SIGTERM', async () => {
    const dir = tempDir();
    try {
      let s = await serve(dir.path);
      expect(s.out()).to.contain('"store":"memory"').and.contain('"logs":"memory"');
      const res = await fetch(`http://127.0.0.1:${s.http}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'dev@example.com', password: 'hunter2hunter2' }) });
      expect(res.status).to.equal(201);
      const { apiKey } = (await res.json()) as { apiKey: string };
      const c = await LineClient.open(s.tcp);
      c.line(`v:${apiKey}`);
      c.line(`i:${apiKey}:${b64([{ name: 'speed', type: 'integer', value: '3' }])}`);
      c.line(`l:${apiKey}:${b64([{ message: 'hello from nc' }])}`);
      c.line('nonsense');
      expect(await c.waitLines(2)).to.deep.equal(['OK', 'e:unknown_command:unknown command "nonsense"; expected v:, l: or i:']);
      const started = Date.now();
      s.child.kill('SIGTERM');
      expect(await exited(s.child)).to.equal(0);
      expect(Date.now() - started).to.be.below(10_000);
      await c.waitClosed();
      expect(s.out()).to.contain('stopped');
      const snapshot = readFileSync(join(dir.path, 'store.json'), 'utf8');
      expect(snapshot).to.contain(apiKey).and.contain('speed').and.not.contain('hunter2hunter2');

      s = await serve(dir.path);
      const c2 = await LineClient.open(s.tcp);
      c2.line(`v:${apiKey}`);
      expect(await c2.next()).to.equal('OK');
      c2.close();
      s.child.kill('SIGINT');
      expect(await exited(s.child)).to.equal(0);
    } finally {
      dir.remove();
    }
  });

  it('refuses bad flags, unknown commands and bad environment with exit 2 and a message', () => {
    const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 15_000 });
    const badPort = run(['serve', '--tcp-port', 'abc']);
    expect(badPort.status).to.equal(2);
    expect(badPort.stderr).to.contain('--tcp-port: expected a port number');
    const badEnv = run(['serve'], { REDIS_URL: 'mysql://x' });
    expect(badEnv.status).to.equal(2);
    expect(badEnv.stderr).to.contain('redisUrl: must start with redis://');
    const unknown = run(['frobnicate']);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.contain("unknown command 'frobnicate'");
    const unknownFlag = run(['serve', '--no-such-flag']);
    expect(unknownFlag.status).to.equal(2);
    const help = run(['serve', '--help']);
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain('--tcp-port');
  });
});
