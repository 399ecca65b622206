/**
 * `observerio serve --workers 2` as a real process tree on the run's private Redis: both workers get
 * device connections, each worker's tree is reachable from any worker, a worker killed with SIGKILL
 * under load is restarted while the other keeps serving, no acknowledged change is lost (devices'
 * variables, dashboard overrides, overrides waiting for a key's first device), and SIGTERM stops all with exit 0.
 * An operator kills an actor in the worker they name, and /metrics answers for all workers, summed.
 * Without Redis, --workers > 1 is refused with exit 2.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { connect, type Client } from '../../src/sdk/index.js';
import type { WorkersAnswer } from '../../src/cluster/protocol.js';
import { expectUsageError, requireBuiltCli, runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis, tempDir } from '../helpers/processes.js';

const TOKEN = 'workers-admin-token-0123456789';
const PASSWORD = 'correct horse battery';

interface Cluster {
  cli: CliProcess;
  http: string;
  tcpPort: number;
}

interface TreeNode {
  childCount?: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startCluster(redisUrl: string, dataDir: string): Promise<Cluster> {
  const cli = startCli(['serve', '--workers', '2', '--tcp-port', '0', '--http-port', '0'], {
    env: { REDIS_URL: redisUrl, OBSERVERIO_ADMIN_TOKEN: TOKEN, OBSERVERIO_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
  });
  let ready: { tcp: string; http: string } | undefined;
  await eventually(
    () => {
      if (cli.child.exitCode !== null) throw new Error(`serve exited ${cli.child.exitCode}:\n${cli.stdout()}${cli.stderr()}`);
      const line = cli
        .stdout()
        .split('\n')
        .find((l) => l.includes('observerio ready: 2 workers'));
      expect(line, cli.stdout()).to.be.a('string');
      ready = JSON.parse(line as string) as { tcp: string; http: string };
    },
    { timeoutMs: 30_000 },
  );
  const r = ready as { tcp: string; http: string };
  return { cli, http: r.http.replace(/\/$/, ''), tcpPort: Number(r.tcp.split(':').pop()) };
}

async function json<T>(url: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

async function user(http: string): Promise<{ apiKey: string; token: string }> {
  const email = `w${randomBytes(6).toString('hex')}@example.com`;
  const reg = await json<{ apiKey: string }>(`${http}/api/users`, { method: 'POST', body: JSON.stringify({ email, password: PASSWORD }) });
  expect(reg.status).to.equal(201);
  const ses = await json<{ token: string }>(`${http}/api/sessions`, { method: 'POST', body: JSON.stringify({ email, password: PASSWORD }) });
  expect(ses.status).to.equal(200);
  return { apiKey: reg.body.apiKey, token: ses.body.token };
}

const workers = async (http: string): Promise<WorkersAnswer> => {
  const r = await json<WorkersAnswer>(`${http}/admin/workers`, { token: TOKEN });
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  return r.body;
};

/** Connections held by worker `n`, read from its tree through whichever worker answers. */
async function connsOf(http: string, n: number): Promise<number> {
  const r = await json<TreeNode>(`${http}/admin/tree?worker=${n}&expand=/observerio/tcp/conns&limit=0`, { token: TOKEN });
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  return r.body.childCount ?? -1;
}

/** One dashboard change; the change counts as accepted only when the daemon answered 200. */
async function put(http: string, token: string, name: string, value: string): Promise<{ buffered: boolean } | null> {
  try {
    const r = await json<{ buffered: boolean }>(`${http}/api/vars/${name}`, { method: 'PUT', token, body: JSON.stringify({ value, type: 'string' }) });
    return r.status === 200 ? r.body : null;
  } catch {
    // The connection went down with the killed worker: not accepted.
    return null;
  }
}

describe('observerio serve --workers (real processes, Redis)', function () {
  this.timeout(240_000);
  let redis: Redis;
  before(async function () {
    requireBuiltCli();
    redis = (await sharedRedis()).client();
  });
  after(() => redis?.quit());

  it('spreads devices over both workers, survives a SIGKILLed worker without losing an accepted change, and stops on SIGTERM', async () => {
    const dir = tempDir();
    const { url } = await sharedRedis();
    const c = await startCluster(url, dir.path);
    const devices: Client[] = [];
    try {
      const first = await workers(c.http);
      expect(first.workers.map((w) => [w.id, w.status])).to.deep.equal([
        [1, 'ready'],
        [2, 'ready'],
      ]);
      const pids = first.workers.map((w) => w.pid as number);
      expect(new Set([...pids, first.primaryPid]).size).to.equal(3);
      expect(pids.every(alive)).to.equal(true);

      const game = await user(c.http);
      const offline = await user(c.http);
      const N = 30;
      for (let i = 0; i < N; i++) {
        devices.push(await connect({ port: c.tcpPort, apiKey: game.apiKey, deviceId: `dev-${i}`, reconnect: { initialMs: 50, maxMs: 300 }, varsWindowMs: 5 }));
      }
      // Both workers got some of the connections, and each tree is served by either worker.
      await eventually(async () => {
        const [a, b] = [await connsOf(c.http, 1), await connsOf(c.http, 2)];
        expect(a + b).to.equal(N);
        expect(a).to.be.above(0);
        expect(b).to.be.above(0);
      });

      // Load: every device counts up its own variable; the dashboard sets overrides for the key with
      // devices and for a key with none (those wait for its first device).
      const last = new Array<number>(N).fill(-1);
      let running = true;
      const deviceLoad = (async () => {
        for (let n = 0; running; n++) {
          devices.forEach((d, i) => {
            d.setVar(`c${i}`, n);
            last[i] = n;
          });
          await new Promise((r) => setTimeout(r, 15));
        }
      })();
      const acceptedGame: string[] = [];
      const acceptedOffline: string[] = [];
      const dashboardLoad = (async () => {
        for (let k = 0; running; k++) {
          const [g, o] = await Promise.all([put(c.http, game.token, `dash${k}`, `g${k}`), put(c.http, offline.token, `out${k}`, `o${k}`)]);
          if (g) acceptedGame.push(`dash${k}`);
          if (o) {
            expect(o.buffered).to.equal(true);
            acceptedOffline.push(`out${k}`);
          }
        }
      })();
      // A precondition, not a speed claim: wait for some changes to be in before the kill, however loaded the machine.
      await eventually(() => expect(acceptedGame.length).to.be.above(20), { timeoutMs: 60_000 });

      const victim = pids[0] as number;
      const onVictim = await connsOf(c.http, 1);
      expect(onVictim).to.be.above(0);
      process.kill(victim, 'SIGKILL');
      await eventually(() => expect(alive(victim)).to.equal(false));
      // The other worker keeps serving while worker 1 restarts: HTTP and new device connections.
      const duringGame = acceptedGame.length;
      const probe = await connect({ port: c.tcpPort, apiKey: game.apiKey, deviceId: 'probe', reconnect: false });
      await probe.close();
      await eventually(() => expect(acceptedGame.length).to.be.above(duringGame + 5), { timeoutMs: 20_000 });

      // Worker 1 is back under a new process; worker 2 was never touched.
      await eventually(
        async () => {
          const w = await workers(c.http);
          const [w1, w2] = w.workers;
          expect(w1?.status).to.equal('ready');
          expect(w1?.pid).to.be.a('number').and.not.equal(victim);
          expect(w1?.restarts).to.equal(1);
          expect(w1?.lastExit).to.include({ pid: victim, signal: 'SIGKILL' });
          expect(w2).to.include({ pid: pids[1], status: 'ready', restarts: 0 });
        },
        { timeoutMs: 30_000 },
      );
      expect(c.cli.stdout()).to.contain(`worker 1 (pid ${victim}) died; restarting it`);
      // The devices of the killed worker reconnected (to either worker).
      await eventually(async () => expect((await connsOf(c.http, 1)) + (await connsOf(c.http, 2))).to.equal(N), { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 300));
      running = false;
      await Promise.all([deviceLoad, dashboardLoad]);
      await Promise.all(devices.map((d) => d.flush()));

      // Every device's latest value is in Redis, exactly.
      await eventually(
        async () => {
          const got = await Promise.all(devices.map((_, i) => redis.hget(`${game.apiKey}:vs`, `c${i}:value`)));
          expect(got).to.deep.equal(last.map(String));
        },
        { timeoutMs: 20_000 },
      );
      // Every accepted dashboard change is stored as an override for every device of its key
      // (DESIGN.md §8: a PUT sets an override; `<apiKey>:vs` keeps only what devices reported).
      const overridesOf = async (token: string): Promise<Map<string, string>> => {
        const r = await json<{ overrides: Array<{ name: string; type: string; value: string; target: unknown }> }>(`${c.http}/api/overrides`, { token });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        for (const o of r.body.overrides) expect([o.type, o.target], o.name).to.deep.equal(['string', { all: true }]);
        return new Map(r.body.overrides.map((o) => [o.name, o.value]));
      };
      const stored = await overridesOf(game.token);
      for (const name of acceptedGame) expect(stored.get(name), name).to.equal(`g${name.slice(4)}`);
      // ...and reached every device, the killed worker's too once they reconnected (all overrides in
      // effect follow the `OK`). A claim about arrival, not speed: the key's actor works through the
      // reports of the load (30 devices every 15 ms) in order first, which on a loaded machine takes a while.
      await eventually(
        () => {
          devices.forEach((d, i) => {
            for (const name of acceptedGame) expect(d.get(name), `dev-${i} ${name}`).to.equal(`g${name.slice(4)}`);
          });
        },
        { timeoutMs: 60_000 },
      );
      // Every accepted change for the key without devices waits as an override: the first device to
      // verify gets all of them.
      expect(acceptedOffline.length).to.be.above(20);
      const storedOffline = await overridesOf(offline.token);
      for (const name of acceptedOffline) expect(storedOffline.get(name), name).to.equal(`o${name.slice(3)}`);
      const late = await connect({ port: c.tcpPort, apiKey: offline.apiKey, deviceId: 'late', reconnect: false });
      devices.push(late);
      // What the client holds, as for the devices above: a 'vars' listener attached after connect()
      // resolves misses a v: line that arrived in the same read as the OK.
      await eventually(() => {
        for (const name of acceptedOffline) expect(late.get(name), name).to.equal(`o${name.slice(3)}`);
      });

      // The CLI lists the workers and shows one worker's tree through any worker.
      const now = await workers(c.http);
      const admin = { env: { OBSERVERIO_URL: c.http, OBSERVERIO_ADMIN_TOKEN: TOKEN } };
      const listed = await runCli(['admin', 'workers'], admin);
      expect(listed.code, listed.stderr).to.equal(0);
      expect(listed.stdout).to.contain(`primary pid ${now.primaryPid}`);
      expect(listed.stdout).to.match(new RegExp(`worker 1  pid ${now.workers[0]?.pid}  ready  restarts 1  last exit .* ago: pid ${victim} SIGKILL`));
      expect(listed.stdout).to.contain(`worker 2  pid ${pids[1]}  ready  restarts 0`);
      const tree2 = await runCli(['admin', 'tree', '--worker', '2', '--expand', '/observerio/tcp/conns', '--limit', '0'], admin);
      expect(tree2.code, tree2.stderr).to.equal(0);
      expect(tree2.stdout).to.match(/^\/observerio\/tcp\/conns  supervisor .*running  restarts 0  \d+ child/);
      const tree9 = await runCli(['admin', 'tree', '--worker', '9'], admin);
      expect(tree9.code).to.equal(1);
      expect(tree9.stderr).to.contain('no worker 9; this daemon runs workers 1-2');

      // SIGTERM to the primary stops every worker gracefully.
      const all = now.workers.map((w) => w.pid as number);
      const started = Date.now();
      c.cli.child.kill('SIGTERM');
      const res = await c.cli.exited;
      expect(res.code, res.stdout + res.stderr).to.equal(0);
      expect(Date.now() - started).to.be.below(15_000);
      expect(all.filter(alive)).to.deep.equal([]);
      expect(res.stdout).to.contain('worker 1 stopped').and.contain('worker 2 stopped');
    } finally {
      await Promise.all(devices.map((d) => d.close().catch(() => undefined)));
      if (c.cli.child.exitCode === null) c.cli.child.kill('SIGKILL');
      dir.remove();
    }
  });

  it('kills an actor in the worker the operator names and answers /metrics summed over the workers, or for one', async () => {
    const dir = tempDir();
    const { url } = await sharedRedis();
    const c = await startCluster(url, dir.path);
    const devices: Client[] = [];
    try {
      const game = await user(c.http);
      const N = 12;
      for (let i = 0; i < N; i++) devices.push(await connect({ port: c.tcpPort, apiKey: game.apiKey, deviceId: `m-${i}`, reconnect: false }));
      let split: [number, number] = [0, 0];
      await eventually(async () => {
        split = [await connsOf(c.http, 1), await connsOf(c.http, 2)];
        expect(split[0] + split[1]).to.equal(N);
      });
      // Both hold some, so one worker's figure is never the sum.
      expect(Math.min(...split)).to.be.above(0);
      const gauge = (text: string): number => Number(/^observerio_tcp_connections\{transport="tcp"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
      const metrics = async (query = ''): Promise<string> => {
        const r = await fetch(`${c.http}/metrics${query}`);
        expect(r.status).to.equal(200);
        expect(r.headers.get('content-type')).to.match(/^text\/plain/);
        return r.text();
      };
      // Whichever worker a scrape reaches, it counts every worker's connections; ?worker=n one worker's.
      for (let k = 0; k < 4; k++) expect(gauge(await metrics())).to.equal(N);
      expect([gauge(await metrics('?worker=1')), gauge(await metrics('?worker=2'))]).to.deep.equal(split);
      for (const [query, status] of [['?worker=3', 404], ['?worker=0', 400], ['?worker=x', 400], ['?worker=1&worker=2', 400], ['?other=1', 400]] as const) {
        expect((await fetch(`${c.http}/metrics${query}`)).status, query).to.equal(status);
      }

      // A kill names its worker: the store of worker 2 restarts, worker 1's is untouched, whichever answered.
      const kill = async (body: unknown): Promise<{ status: number; body: { node?: { path: string; restarts: number }; error?: { message: string } } }> =>
        json(`${c.http}/admin/kill`, { method: 'POST', token: TOKEN, body: JSON.stringify(body) });
      const storeOf = async (n: number): Promise<number> => {
        const r = await json<{ restarts: number }>(`${c.http}/admin/tree?worker=${n}&expand=/observerio/store&depth=0`, { token: TOKEN });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        return r.body.restarts;
      };
      for (const n of [2, 2, 1]) {
        const before = [await storeOf(1), await storeOf(2)];
        const r = await kill({ path: '/observerio/store', reason: 'test', worker: n });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        expect(r.body.node?.path).to.equal('/observerio/store');
        await eventually(async () => {
          const after = [await storeOf(1), await storeOf(2)];
          expect(after).to.deep.equal(before.map((b, i) => (i === n - 1 ? (b as number) + 1 : b)));
        });
      }
      expect(c.cli.stdout()).to.contain('operator kills /observerio/store');
      // The CLI names the worker the same way.
      const before = [await storeOf(1), await storeOf(2)];
      const cliKill = await runCli(['admin', 'kill', '/observerio/store', '--worker', '2'], { env: { OBSERVERIO_URL: c.http, OBSERVERIO_ADMIN_TOKEN: TOKEN } });
      expect(cliKill.code, cliKill.stderr).to.equal(0);
      expect(cliKill.stdout).to.contain('killed /observerio/store in worker 2');
      await eventually(async () => expect([await storeOf(1), await storeOf(2)]).to.deep.equal([before[0], (before[1] as number) + 1]));
      const cases: Array<[unknown, number, RegExp]> = [
        [{ path: '/observerio/store', worker: 3 }, 404, /no worker 3; this daemon runs workers 1-2/],
        [{ path: '/observerio/store', worker: 0 }, 400, /worker must be at least 1/],
        [{ path: '/observerio/store', worker: '2' }, 400, /worker must be a worker number/],
        [{ path: '/observerio/store', worker: 1.5 }, 400, /worker must be a whole number/],
        [{ path: '/observerio/nope', worker: 2 }, 404, /nope/],
        [{ path: '/observerio', worker: 2 }, 400, /root supervisor cannot be killed/],
      ];
      for (const [body, status, message] of cases) {
        const r = await kill(body);
        expect(r.status, JSON.stringify(body)).to.equal(status);
        expect(r.body.error?.message, JSON.stringify(body)).to.match(message);
      }
      // Every device is still served: the kills restarted stores, not connections.
      expect(gauge(await metrics())).to.equal(N);
    } finally {
      await Promise.all(devices.map((d) => d.close().catch(() => undefined)));
      c.cli.child.kill('SIGTERM');
      await c.cli.exited;
      dir.remove();
    }
  });

  it('restarts a worker that keeps dying with growing delays, then gives up: every process ends, exit 1', async () => {
    const dir = tempDir();
    const { url } = await sharedRedis();
    const c = await startCluster(url, dir.path);
    const seen: number[] = [];
    try {
      while (c.cli.child.exitCode === null) {
        let pid: number | null = null;
        await eventually(
          async () => {
            if (c.cli.child.exitCode !== null) return;
            const w2 = (await workers(c.http)).workers[1];
            expect(w2?.status).to.equal('ready');
            expect(seen).to.not.include(w2?.pid);
            pid = w2?.pid ?? null;
          },
          { timeoutMs: 30_000 },
        );
        if (pid === null) break;
        seen.push(pid);
        process.kill(pid, 'SIGKILL');
        await eventually(() => expect(alive(pid as number)).to.equal(false));
        if (seen.length > 10) throw new Error('the primary never gave up');
      }
      const res = await c.cli.exited;
      expect(res.code, res.stdout).to.equal(1);
      const delays = res.stdout
        .split('\n')
        .filter((l) => l.includes('died; restarting it in'))
        .map((l) => (JSON.parse(l) as { restartInMs: number }).restartInMs);
      // Five restarts within the minute, the first at once, each later one about twice as late (±20%).
      expect(delays).to.have.length(5);
      expect(delays[0]).to.equal(0);
      for (let i = 1; i < delays.length; i++) expect(delays[i]).to.be.within(400 * 2 ** (i - 1), 600 * 2 ** (i - 1));
      expect(seen).to.have.length(6);
      expect(res.stdout).to.contain('worker 2 died too often; stopping the daemon');
      const ready = JSON.parse(res.stdout.split('\n').find((l) => l.includes('observerio ready')) as string) as { pids: number[] };
      await eventually(() => expect([...seen, ...ready.pids].filter(alive)).to.deep.equal([]));
    } finally {
      if (c.cli.child.exitCode === null) c.cli.child.kill('SIGKILL');
      dir.remove();
    }
  });

  it('refuses --workers without Redis, and bad worker counts, with exit 2 and one line naming the key', async () => {
    const r = await expectUsageError(['serve', '--workers', '2', '--tcp-port', '0', '--http-port', '0'], /workers: 2 worker processes need Redis \(set REDIS_URL or --redis-url\)/);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    await expectUsageError(['serve', '--workers', '0'], '--workers: expected a number of worker processes 1-64, got "0"');
    await expectUsageError(['serve', '--workers', 'many'], '--workers: expected a number of worker processes 1-64, got "many"');
    await expectUsageError(['serve', '--workers', '65'], '--workers: expected a number of worker processes 1-64, got "65"');
    await expectUsageError(['serve'], 'OBSERVERIO_WORKERS: expected a number of worker processes 1-64, got "2x"', { env: { OBSERVERIO_WORKERS: '2x' } });
  });

  it('answers a single-process daemon as worker 1 of 1', async () => {
    const dir = tempDir();
    const cli = startCli(['serve', '--tcp-port', '0', '--http-port', '0'], { env: { OBSERVERIO_ADMIN_TOKEN: TOKEN, OBSERVERIO_DATA_DIR: dir.path, LOG_LEVEL: 'info' } });
    try {
      let http = '';
      await eventually(
        () => {
          const m = /dashboard on (http:\/\/[0-9.]+:\d+)\//.exec(cli.stdout());
          expect(m, cli.stdout() + cli.stderr()).to.not.equal(null);
          http = (m as RegExpExecArray)[1] as string;
        },
        { timeoutMs: 15_000 },
      );
      const w = await workers(http);
      expect(w.workers).to.have.length(1);
      expect(w.workers[0]).to.include({ id: 1, pid: cli.child.pid, status: 'ready' });
      expect((await json(`${http}/admin/tree?worker=1&depth=0`, { token: TOKEN })).status).to.equal(200);
      const two = await json<{ error: { code: string; message: string } }>(`${http}/admin/tree?worker=2`, { token: TOKEN });
      expect(two.status).to.equal(404);
      expect(two.body.error.message).to.contain('this daemon runs one process');
      const bad = await json<{ error: { code: string } }>(`${http}/admin/tree?worker=1&worker=1`, { token: TOKEN });
      expect(bad.status).to.equal(400);
      expect((await json(`${http}/admin/workers`)).status).to.equal(401);
      const killOne = await json<{ node: { path: string } }>(`${http}/admin/kill`, { method: 'POST', token: TOKEN, body: JSON.stringify({ path: '/observerio/store', worker: 1 }) });
      expect(killOne.status).to.equal(200);
      expect(killOne.body.node.path).to.equal('/observerio/store');
      const killTwo = await json<{ error: { message: string } }>(`${http}/admin/kill`, { method: 'POST', token: TOKEN, body: JSON.stringify({ path: '/observerio/store', worker: 2 }) });
      expect(killTwo.status).to.equal(404);
      expect(killTwo.body.error.message).to.contain('this daemon runs one process');
      expect((await fetch(`${http}/metrics?worker=1`)).status).to.equal(200);
      expect((await fetch(`${http}/metrics?worker=2`)).status).to.equal(404);
      cli.child.kill('SIGTERM');
      expect((await cli.exited).code).to.equal(0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      dir.remove();
    }
  });
});
