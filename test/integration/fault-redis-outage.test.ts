/**
 * Observerio issue 10, the Redis outage: a private, persistent redis-server per test is stopped while
 * a device streams `i:` lines and started again on the same port. Every test counts exactly what was
 * sent, what was refused and what Redis holds afterwards; what is promised kept must all be there.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { decodeVarsLine } from '../helpers/admin.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { startRedisServer, tempDir, type RedisServer } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

const BIN = join(process.cwd(), 'bin', 'observerio.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A private Redis that keeps its data across a stop and a start on the same port and folder. */
class OutageRedis {
  server!: RedisServer;
  private readonly dir = tempDir('observerio-outage-redis-');
  async start(port?: number): Promise<void> {
    this.server = await startRedisServer({ port, dir: this.dir.path });
  }
  get url(): string {
    return this.server.url;
  }
  /** Stops the server (SIGTERM: it writes its append-only file) and starts it again after `downMs`. */
  async outage(downMs: number): Promise<void> {
    const port = this.server.port;
    await this.server.stop();
    await sleep(downMs);
    await this.start(port);
  }
  async remove(): Promise<void> {
    await this.server?.stop();
    this.dir.remove();
  }
}

/** Sends one `i:` line per `everyMs` of elapsed time until stopped: each sets a fresh variable `n<i>` and cycles `c<i % 5>`. */
class Streamer {
  sent = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly dev: LineClient,
    private readonly apiKey: string,
  ) {}
  start(everyMs = 10): void {
    // Paced by the clock, not by the timer's ticks: on a loaded machine an interval fires late and
    // the stream would fall short of its rate (and of the counts the tests expect); a late tick
    // sends the lines that were due meanwhile.
    const t0 = performance.now();
    this.timer = setInterval(() => {
      const due = Math.floor((performance.now() - t0) / everyMs) + 1;
      while (this.sent < due) {
        const i = this.sent++;
        this.dev.line(`i:${this.apiKey}:${b64([
          { name: `n${i}`, type: 'integer', value: String(i) },
          { name: `c${i % 5}`, type: 'integer', value: String(i) },
        ])}`);
      }
    }, everyMs);
  }
  stop(): void {
    clearInterval(this.timer);
  }
  /** What `<apiKey>:vs` must hold once everything sent has landed. */
  expected(accepted: (i: number) => boolean = () => true): Record<string, string> {
    const out: Record<string, string> = {};
    for (let i = 0; i < this.sent; i++) {
      if (!accepted(i)) continue;
      out[`n${i}:type`] = 'integer';
      out[`n${i}:value`] = String(i);
      out[`c${i % 5}:type`] = 'integer';
      out[`c${i % 5}:value`] = String(i);
    }
    return out;
  }
}

/** Fields of `expected` that Redis does not hold with that value, as variables (the loss count). */
function lostVars(expected: Record<string, string>, stored: Record<string, string>): string[] {
  return Object.keys(expected)
    .filter((f) => f.endsWith(':value') && stored[f] !== expected[f])
    .map((f) => f.slice(0, -':value'.length));
}

async function metric(daemon: Daemon, name: string): Promise<number> {
  const text = await daemon.ctx.metrics.render();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('fault: a Redis outage under load (private redis-server, stopped and started on its port)', function () {
  this.timeout(60_000);
  let redis: OutageRedis;
  let daemon: Daemon | undefined;
  let admin: Redis | undefined;
  const devices: LineClient[] = [];

  beforeEach(async () => {
    redis = new OutageRedis();
    await redis.start();
  });
  afterEach(async () => {
    for (const d of devices.splice(0)) d.close();
    admin?.disconnect();
    admin = undefined;
    await daemon?.stop();
    daemon = undefined;
    await redis.remove();
  });

  async function up(overrides: Record<string, unknown> = {}): Promise<{ user: TestUser; dev: LineClient }> {
    daemon = await startDaemon({ overrides: { redisUrl: redis.url, ...overrides } });
    const user = await signedInUser(daemon);
    const dev = await LineClient.open(daemon.tcpPort);
    devices.push(dev);
    dev.line(`v:${user.apiKey}`);
    expect(await dev.next()).to.equal('OK');
    return { user, dev };
  }

  it('the reproduction: i: at ~100/s through a 5 s outage loses no variable, keeps first-seen order, and tells the device nothing', async () => {
    const { user, dev } = await up();
    const s = new Streamer(dev, user.apiKey);
    s.start();
    await sleep(1000);
    const sentBefore = s.sent;
    await redis.outage(5000);
    await sleep(1000);
    s.stop();
    const sentDuring = s.sent - sentBefore;
    admin = redis.server.client();
    const expected = s.expected();
    let stored: Record<string, string> = {};
    await eventually(
      async () => {
        stored = await admin!.hgetall(`${user.apiKey}:vs`);
        expect(lostVars(expected, stored), `lost of ${s.sent} lines`).to.deep.equal([]);
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${lostVars(expected, stored).length} of ${s.sent + 5} variables lost (${sentDuring} lines sent around the outage): ${err.message}`);
    });
    expect(stored).to.deep.equal(expected);
    // First-seen order: c0..c4 came with lines 0..4, the n<i> in sending order.
    const order = await admin.zrange(`observerio:varorder:{${user.apiKey}:vs}`, 0, -1);
    const want = ['n0', 'c0', 'n1', 'c1', 'n2', 'c2', 'n3', 'c3', 'n4', 'c4'];
    for (let i = 5; i < s.sent; i++) want.push(`n${i}`);
    expect(order).to.deep.equal(want);
    expect(dev.lines.filter((l) => l.startsWith('e:'))).to.deep.equal([]);
    expect(s.sent).to.be.greaterThan(500);
    expect(await metric(daemon!, 'observerio_gateway_writes_retried_total')).to.be.greaterThan(0);
    expect(await metric(daemon!, 'observerio_gateway_retry_queue_vars')).to.equal(0);
    expect(await metric(daemon!, 'observerio_gateway_vars_refused_total')).to.equal(0);
  });

  it('past the bound: lines that would grow the queue are answered e:unavailable, counted by the metric; nothing accepted is lost', async () => {
    const { user, dev } = await up({ gateway: { retryMaxVars: 40 } });
    const s = new Streamer(dev, user.apiKey);
    s.start();
    await sleep(300);
    const port = redis.server.port;
    await redis.server.stop();
    // /healthz says degraded while changes wait for the store.
    await eventually(async () => {
      const h = await call<{ status: string; backends: Record<string, { ok: boolean }> }>(daemon!, 'GET', '/healthz');
      expect(h.body.status).to.equal('degraded');
      expect(h.body.backends['store-retry-queue']?.ok).to.equal(false);
    });
    await eventually(() => expect(dev.lines.filter((l) => l.startsWith('e:unavailable:')).length).to.be.greaterThan(20), { timeoutMs: 10_000 });
    await redis.start(port);
    await sleep(500);
    s.stop();
    const refused = () => dev.lines.filter((l) => l.startsWith('e:unavailable:')).length;
    expect(dev.lines.filter((l) => l.startsWith('e:') && !l.startsWith('e:unavailable:'))).to.deep.equal([]);
    expect(dev.closed).to.equal(false);
    admin = redis.server.client();
    let stored: Record<string, string> = {};
    await eventually(
      async () => {
        stored = await admin!.hgetall(`${user.apiKey}:vs`);
        const storedLines = Object.keys(stored).filter((f) => /^n\d+:value$/.test(f)).length;
        expect(storedLines + refused(), 'stored + refused = sent').to.equal(s.sent);
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    const n = refused();
    expect(await metric(daemon!, 'observerio_gateway_vars_refused_total')).to.equal(n);
    // Every stored n<i> holds its own value; the refused lines are exactly the missing ones.
    for (const [f, v] of Object.entries(stored)) if (/^n\d+:value$/.test(f)) expect(v).to.equal(f.slice(1, -':value'.length));
    const accepted = new Set(Object.keys(stored).filter((f) => /^n\d+:value$/.test(f)).map((f) => Number(f.slice(1, -':value'.length))));
    expect(stored).to.deep.equal(s.expected((i) => accepted.has(i)));
    await eventually(async () => expect((await call<{ status: string }>(daemon!, 'GET', '/healthz')).body.status).to.equal('ok'), { timeoutMs: 10_000 });
  });

  it('dashboard changes during the outage answer 503 unavailable (no hang); once Redis is back a PUT works', async () => {
    const { user, dev } = await up();
    const s = new Streamer(dev, user.apiKey);
    s.start(20);
    const put = (value: number) => call<{ error?: { code: string }; var?: { value: string } }>(daemon!, 'PUT', '/api/vars/speed', { token: user.token, body: { value } });
    expect((await put(1)).status).to.equal(200);
    const port = redis.server.port;
    await redis.server.stop();
    const t0 = Date.now();
    const during = await put(2);
    expect(during.status).to.equal(503);
    expect(during.body.error?.code).to.equal('unavailable');
    expect(Date.now() - t0, 'answered before the HTTP client would give up').to.be.below(10_000);
    await redis.start(port);
    const after = await eventually(async () => {
      const r = await put(3);
      expect(r.status).to.equal(200);
      return r;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    expect(after.body.var?.value).to.equal('3');
    s.stop();
    admin = redis.server.client();
    // A PUT is an override (DESIGN.md §8): `<apiKey>:vs` holds exactly what the device reported...
    await eventually(async () => expect(await admin!.hgetall(`${user.apiKey}:vs`)).to.deep.equal(s.expected()), { timeoutMs: 15_000, intervalMs: 200 });
    // ...the override in effect is the last accepted value, and the refused 2 was never kept...
    const o = await call<{ overrides: Array<{ name: string; type: string; value: string; target: unknown }> }>(daemon!, 'GET', '/api/overrides', { token: user.token });
    expect(o.status).to.equal(200);
    expect(o.body.overrides.map(({ name, type, value, target }) => ({ name, type, value, target }))).to.deep.equal([{ name: 'speed', type: 'integer', value: '3', target: { all: true } }]);
    // ...and the connected device got 1, then 3, and never the refused 2.
    const speeds = () =>
      dev.lines
        .filter((l) => l.startsWith(`v:${user.apiKey}:`))
        .flatMap((l) => decodeVarsLine(l, user.apiKey))
        .filter((v) => v.name === 'speed')
        .map((v) => `${v.type}:${v.value}`);
    await eventually(() => expect(speeds().at(-1)).to.equal('integer:3'), { timeoutMs: 15_000, intervalMs: 100 });
    expect(speeds()[0]).to.equal('integer:1');
    expect([...new Set(speeds())].sort()).to.deep.equal(['integer:1', 'integer:3']);
  });
});

describe('fault: kill -9 of the daemon in Redis mode under load (built CLI, own process)', function () {
  this.timeout(60_000);
  let redis: OutageRedis;
  let admin: Redis | undefined;
  const children: ChildProcess[] = [];

  before(function () {
    if (!existsSync(join(process.cwd(), 'dist', 'cli', 'main.js'))) throw new Error("dist/ is missing: run 'make build' (make test does)");
  });
  beforeEach(async () => {
    redis = new OutageRedis();
    await redis.start();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    admin?.disconnect();
    admin = undefined;
    await redis.remove();
  });

  async function serve(): Promise<{ child: ChildProcess; tcp: number; base: string }> {
    const tcp = await freePort();
    const http = await freePort();
    const data = tempDir('observerio-kill9-');
    const env = { ...process.env };
    for (const k of ['MEILI_URL', 'MEILI_MASTER_KEY', 'OBSERVERIO_ADMIN_TOKEN', 'NODE_ENV']) delete env[k];
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...env, REDIS_URL: redis.url, OBSERVERIO_TCP_PORT: String(tcp), OBSERVERIO_HTTP_PORT: String(http), OBSERVERIO_DATA_DIR: data.path, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    await eventually(() => expect(out).to.contain('observerio ready'), { timeoutMs: 15_000 });
    return { child, tcp, base: `http://127.0.0.1:${http}` };
  }

  it('what reached Redis before the kill is intact and consistent; the daemon restarts and serves', async () => {
    const a = await serve();
    const email = `k${Date.now()}@example.com`;
    const reg = await fetch(`${a.base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'correct horse battery' }) });
    expect(reg.status).to.equal(201);
    const { apiKey } = (await reg.json()) as { apiKey: string };
    const dev = await LineClient.open(a.tcp);
    dev.line(`v:${apiKey}`);
    expect(await dev.next()).to.equal('OK');
    const s = new Streamer(dev, apiKey);
    s.start(2);
    admin = redis.server.client();
    await eventually(async () => expect(await admin!.hlen(`${apiKey}:vs`)).to.be.greaterThan(600), { timeoutMs: 10_000 });
    a.child.kill('SIGKILL');
    s.stop();
    dev.close();
    await new Promise((r) => a.child.once('exit', r));

    // No corruption: every variable has both fields, the value it was sent, and exactly one place in
    // the first-seen order; the n<i> that landed are a prefix of what was sent (writes land in order).
    const stored = await admin.hgetall(`${apiKey}:vs`);
    const names = new Set(Object.keys(stored).map((f) => f.replace(/:(type|value)$/, '')));
    for (const n of names) {
      expect(stored[`${n}:type`], n).to.equal('integer');
      expect(stored[`${n}:value`], n).to.match(/^\d+$/);
    }
    const ns = [...names].filter((n) => n.startsWith('n')).map((n) => Number(n.slice(1)));
    const landed = ns.length;
    expect(landed).to.be.greaterThan(290).and.at.most(s.sent);
    for (const i of ns) expect(stored[`n${i}:value`]).to.equal(String(i));
    expect([...ns].sort((x, y) => x - y)).to.deep.equal([...Array(landed).keys()]);
    // A cycled c<k> holds the last value of it that landed: the highest i ≡ k (mod 5) below `landed`.
    for (let k = 0; k < 5 && k < landed; k++) expect(stored[`c${k}:value`]).to.equal(String(k + 5 * Math.floor((landed - 1 - k) / 5)));
    const order = await admin.zrange(`observerio:varorder:{${apiKey}:vs}`, 0, -1);
    expect(new Set(order)).to.deep.equal(names);
    expect(order.length).to.equal(names.size);

    const b = await serve();
    const dev2 = await LineClient.open(b.tcp);
    dev2.line(`v:${apiKey}`);
    expect(await dev2.next()).to.equal('OK');
    dev2.line(`i:${apiKey}:${b64([{ name: 'after', type: 'string', value: 'restart' }])}`);
    await eventually(async () => expect(await admin!.hget(`${apiKey}:vs`, 'after:value')).to.equal('restart'));
    const session = await fetch(`${b.base}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'correct horse battery' }) });
    expect(session.status).to.equal(200);
    const { token } = (await session.json()) as { token: string };
    const vars = await fetch(`${b.base}/api/vars`, { headers: { authorization: `Bearer ${token}` } });
    expect(vars.status).to.equal(200);
    dev2.close();
  });
});
