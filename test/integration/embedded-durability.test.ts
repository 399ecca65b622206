/**
 * Observerio issue 10: the embedded store keeps acknowledged writes across kill -9. The built CLI runs
 * in its own process with the defaults `make run` uses (embedded backends, a data folder, no
 * NODE_ENV), is killed with SIGKILL shortly after the writes, and restarted on the same folder.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeVarsLine } from '../helpers/admin.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { tempDir } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

const BIN = join(process.cwd(), 'bin', 'observerio.js');

interface Served {
  child: ChildProcess;
  out: () => string;
  tcp: number;
  base: string;
}

async function serve(dataDir: string): Promise<Served> {
  const tcp = await freePort();
  const http = await freePort();
  const env = { ...process.env };
  for (const k of ['REDIS_URL', 'MEILI_URL', 'MEILI_MASTER_KEY', 'OBSERVERIO_ADMIN_TOKEN', 'NODE_ENV']) delete env[k];
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...env, OBSERVERIO_TCP_PORT: String(tcp), OBSERVERIO_HTTP_PORT: String(http), OBSERVERIO_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  await eventually(() => expect(out).to.contain('observerio ready'), { timeoutMs: 15_000 });
  return { child, out: () => out, tcp, base: `http://127.0.0.1:${http}` };
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.signalCode ?? child.exitCode) : child.once('exit', (code, signal) => resolve(signal ?? code))));
}

async function kill9(s: Served): Promise<void> {
  s.child.kill('SIGKILL');
  expect(await exited(s.child)).to.equal('SIGKILL');
}

async function json<T>(s: Served, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${s.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

type V = { name: string; type: string; value: string };

describe('embedded store durability (real process, kill -9)', function () {
  this.timeout(90_000);
  let dir: { path: string; remove(): void };
  const running: Served[] = [];

  before(function () {
    if (!existsSync(join(process.cwd(), 'dist', 'cli', 'main.js'))) throw new Error("dist/ is missing: run 'make build' (make test does)");
  });
  beforeEach(() => {
    dir = tempDir('observerio-durability-');
  });
  afterEach(async () => {
    for (const s of running.splice(0)) if (s.child.exitCode === null && s.child.signalCode === null) await kill9(s);
    dir.remove();
  });

  async function start(): Promise<Served> {
    const s = await serve(dir.path);
    running.push(s);
    return s;
  }

  it('keeps a new user, its session, two i: vars and a buffered PUT after kill -9 within a second', async () => {
    const email = 'durable@example.com';
    const password = 'hunter2hunter2';
    let s = await start();
    const created = await json<{ apiKey: string }>(s, 'POST', '/api/users', { email, password });
    expect(created.status).to.equal(201);
    const { apiKey } = created.body;
    const login = await json<{ token: string }>(s, 'POST', '/api/sessions', { email, password });
    expect(login.status).to.equal(200);
    const { token } = login.body;

    const dev = await LineClient.open(s.tcp);
    dev.line(`v:${apiKey}`);
    expect(await dev.next()).to.equal('OK');
    dev.line(`i:${apiKey}:${b64([{ name: 'speed', type: 'integer', value: '3' }, { name: 'ship', type: 'string', value: 'argo' }])}`);
    await eventually(async () => expect((await json<{ vars: V[] }>(s, 'GET', '/api/vars', undefined, token)).body.vars).to.have.length(2));
    dev.close();
    await eventually(async () => expect((await json<{ devices: Array<{ online: boolean }> }>(s, 'GET', '/api/devices', undefined, token)).body.devices.map((d) => d.online)).to.deep.equal([false]));

    const put = await json<{ delivered: number; buffered: boolean }>(s, 'PUT', '/api/vars/speed', { value: 7 }, token);
    expect(put.status).to.equal(200);
    expect(put.body).to.include({ delivered: 0, buffered: true });
    const answeredAt = Date.now();
    await kill9(s);
    expect(Date.now() - answeredAt, 'killed within a second of the last answer').to.be.below(1000);

    s = await start();
    expect((await json(s, 'POST', '/api/sessions', { email, password })).status).to.equal(200);
    const vars = await json<{ vars: V[] }>(s, 'GET', '/api/vars', undefined, token);
    expect(vars.status, 'the session created before the kill still works').to.equal(200);
    // <apiKey>:vs is what the device reported; the PUT is an override (DESIGN.md §8), kept as well.
    expect(vars.body.vars).to.deep.equal([
      { name: 'speed', type: 'integer', value: '3' },
      { name: 'ship', type: 'string', value: 'argo' },
    ]);
    const overrides = await json<{ overrides: V[] }>(s, 'GET', '/api/overrides', undefined, token);
    expect(overrides.body.overrides.map(({ name, type, value }) => ({ name, type, value }))).to.deep.equal([{ name: 'speed', type: 'integer', value: '7' }]);
    const dev2 = await LineClient.open(s.tcp);
    dev2.line(`v:${apiKey}`);
    expect(await dev2.next()).to.equal('OK');
    expect(decodeVarsLine(await dev2.next(), apiKey)).to.deep.equal([{ name: 'speed', type: 'integer', value: '7' }]);
    dev2.close();
  });

  it('keeps every i: change the daemon applied before kill -9: 200 changes over 2 s, no holes', async () => {
    const email = 'stream@example.com';
    const password = 'hunter2hunter2';
    let s = await start();
    const { apiKey } = (await json<{ apiKey: string }>(s, 'POST', '/api/users', { email, password })).body;
    const { token } = (await json<{ token: string }>(s, 'POST', '/api/sessions', { email, password })).body;
    const dev = await LineClient.open(s.tcp);
    dev.line(`v:${apiKey}`);
    expect(await dev.next()).to.equal('OK');

    const TOTAL = 200;
    const sentAt: number[] = [];
    // Polls what the daemon shows while the stream runs: whatever it showed must survive the kill.
    let seen = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await json<{ vars: V[] }>(s, 'GET', '/api/vars', undefined, token).catch(() => null);
        if (r?.status === 200) seen = Math.max(seen, r.body.vars.length);
      }
    })();
    for (let k = 1; k <= TOTAL; k++) {
      dev.line(`i:${apiKey}:${b64([{ name: `n${k}`, type: 'integer', value: String(k) }])}`);
      sentAt.push(Date.now());
      await new Promise((r) => setTimeout(r, 10));
    }
    polling = false;
    await poller;
    const seenBeforeKill = seen;
    const killedAt = Date.now();
    await kill9(s);

    s = await start();
    const res = await json<{ vars: V[] }>(s, 'GET', '/api/vars', undefined, token);
    expect(res.status, 'the session created before the kill still works').to.equal(200);
    const after = res.body.vars;
    const survived = after.length;
    // A prefix in send order: the journal never keeps a later change and drops an earlier one.
    expect(after).to.deep.equal(Array.from({ length: survived }, (_, i) => ({ name: `n${i + 1}`, type: 'integer', value: String(i + 1) })));
    expect(survived, 'every change the daemon showed before the kill').to.be.at.least(seenBeforeKill);
    const olderThanWindow = sentAt.filter((t) => killedAt - t > 1000).length;
    expect(survived, `changes sent more than 1 s before the kill (${olderThanWindow})`).to.be.at.least(olderThanWindow);
    expect(seenBeforeKill).to.be.greaterThan(0);
    expect(survived).to.be.at.most(TOTAL);
  });

  it('leaves only store.json after a clean stop', async () => {
    const s = await start();
    expect((await json(s, 'POST', '/api/users', { email: 'clean@example.com', password: 'hunter2hunter2' })).status).to.equal(201);
    s.child.kill('SIGTERM');
    expect(await exited(s.child)).to.equal(0);
    expect(readdirSync(dir.path)).to.deep.equal(['store.json']);
  });
});
