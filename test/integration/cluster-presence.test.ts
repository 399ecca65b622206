/**
 * Issue 12 on two daemons sharing one private Redis (DESIGN.md §6, §8): a node that dies without a
 * graceful stop (SIGKILL of a real `observerio serve` process) has its devices reported gone to the
 * dashboards of the surviving node by a `device_state` event once their presence lapses, agreeing
 * with `GET /api/devices`; and a change made on A racing a device's re-verify on B always reaches the
 * device (after OK it gets every override in effect, read from the store after its registration).
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { sharedRedis, tempDir } from '../helpers/processes.js';
import { LineClient } from '../helpers/tcp-client.js';
import { WsClient, type Frame } from '../helpers/ws-client.js';
import type { DeviceListAnswer, DeviceSummary, SetOverrideAnswer } from '../../src/wire.js';

type Var = { name: string; type: string; value: string };

const BIN = join(process.cwd(), 'bin', 'observerio.js');
/** The built daemon's default presence TTL (config/default.json): how long a dead node's devices stay online. */
const DEFAULT_PRESENCE_TTL_MS = 15_000;

const varsOf = (apiKey: string, line: string): Var[] | null => {
  const prefix = `v:${apiKey}:`;
  if (!line.startsWith(prefix)) return null;
  return JSON.parse(Buffer.from(line.slice(prefix.length), 'base64').toString('utf8')) as Var[];
};

const stateOf = (f: Frame, deviceId: string): DeviceSummary | null => {
  if (f.type !== 'device_state') return null;
  const d = f.device as DeviceSummary | undefined;
  return d?.deviceId === deviceId ? d : null;
};

interface Served {
  child: ChildProcess;
  tcp: number;
  out: () => string;
}

/** `observerio serve` in its own process on the run's Redis, as an operator runs a second node. */
async function serveOnRedis(redisUrl: string, dataDir: string): Promise<Served> {
  const tcp = await freePort();
  const http = await freePort();
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('OBSERVERIO_') || ['REDIS_URL', 'MEILI_URL', 'MEILI_MASTER_KEY', 'NODE_ENV'].includes(k)) delete env[k];
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...env, REDIS_URL: redisUrl, OBSERVERIO_TCP_PORT: String(tcp), OBSERVERIO_HTTP_PORT: String(http), OBSERVERIO_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  await eventually(() => expect(out).to.contain('observerio ready'), { timeoutMs: 20_000 });
  return { child, tcp, out: () => out };
}

describe('presence and races across two daemons on one Redis (issue 12)', function () {
  this.timeout(60_000);

  describe('a node killed with SIGKILL', () => {
    let nodeA: Daemon;
    let nodeB: Served | null = null;
    const dir = tempDir('observerio-presence-');
    const closers: Array<() => void> = [];

    before(async function () {
      if (!existsSync(join(process.cwd(), 'dist', 'cli', 'main.js'))) throw new Error("dist/ is missing: run 'npm run --silent build'");
      // A checks presence often; B is the built daemon with its default TTL and heartbeat.
      nodeA = await startDaemon({ redis: true, overrides: { variables: { heartbeatMs: 300, presenceTtlMs: 2000 } } });
      nodeB = await serveOnRedis((await sharedRedis()).url, dir.path);
    });
    after(async () => {
      for (const c of closers.splice(0)) c();
      if (nodeB && nodeB.child.exitCode === null && nodeB.child.signalCode === null) nodeB.child.kill('SIGKILL');
      await nodeA.stop();
      dir.remove();
    });

    it("tells A's dashboard that B's devices are gone, within the presence TTL and one check, as GET /api/devices says", async () => {
      const u: TestUser = await signedInUser(nodeA);
      const ws = await WsClient.open(nodeA.httpPort, u.token);
      closers.push(() => ws.close());
      const b = nodeB as Served;
      const dev = await LineClient.open(b.tcp);
      closers.push(() => dev.close());
      dev.line(`v:${u.apiKey}:phone-b`);
      expect(await dev.next()).to.equal('OK');
      dev.line(`d:${u.apiKey}:${Buffer.from(JSON.stringify({ platform: 'android' })).toString('base64')}`);

      // Coming online (and its labels) reach A's dashboard as device_state too.
      const up = await ws.waitFor((f) => stateOf(f, 'phone-b')?.online === true && stateOf(f, 'phone-b')?.labels.platform === 'android', 5000);
      expect(stateOf(up, 'phone-b')).to.include({ online: true, generated: false });

      b.child.kill('SIGKILL');
      await new Promise<void>((r) => (b.child.exitCode !== null || b.child.signalCode !== null ? r() : b.child.once('exit', () => r())));
      const killedAt = Date.now();
      const gone = await ws.waitFor((f) => stateOf(f, 'phone-b')?.online === false, DEFAULT_PRESENCE_TTL_MS + 5000);
      expect(Date.now() - killedAt).to.be.below(DEFAULT_PRESENCE_TTL_MS + 2000);
      const state = stateOf(gone, 'phone-b') as DeviceSummary;

      // The event and the REST list agree, field for field.
      const list = await call<DeviceListAnswer>(nodeA, 'GET', '/api/devices', { token: u.token });
      expect(list.status).to.equal(200);
      const listed = list.body.devices.find((d) => d.deviceId === 'phone-b');
      expect(listed).to.deep.equal(state);
      expect(Object.keys(state).sort()).to.deep.equal(['deviceId', 'generated', 'labels', 'lastAddress', 'lastSeen', 'online', 'pendingCount', 'strategy']);
      expect(state.labels).to.deep.equal({ platform: 'android' });
    });
  });

  describe('a change on A racing a re-verify on B', () => {
    let nodeA: Daemon;
    let nodeB: Daemon;
    const sockets: LineClient[] = [];
    const ITERATIONS = Number(process.env.RACE_N ?? 150);

    before(async () => {
      [nodeA, nodeB] = await Promise.all([startDaemon({ redis: true }), startDaemon({ redis: true })]);
    });
    after(async () => {
      for (const s of sockets.splice(0)) s.close();
      await Promise.all([nodeA.stop(), nodeB.stop()]);
    });

    it(`the device ends up with the new value every time (${ITERATIONS} of ${ITERATIONS})`, async function () {
      this.timeout(180_000);
      const u = await signedInUser(nodeA);
      const verified = async (): Promise<LineClient> => {
        const c = await LineClient.open(nodeB.tcpPort);
        sockets.push(c);
        c.line(`v:${u.apiKey}:racer`);
        expect(await c.next()).to.equal('OK');
        return c;
      };
      let current = await verified();
      const misses: string[] = [];
      for (let i = 0; i < ITERATIONS; i++) {
        const value = String(1000 + i);
        const next = await LineClient.open(nodeB.tcpPort);
        sockets.push(next);
        current.close();
        const put = call<SetOverrideAnswer>(nodeA, 'PUT', '/api/vars/speed', { token: u.token, body: { value, type: 'integer', target: { devices: ['racer'] } } });
        await sleep(i % 4);
        next.line(`v:${u.apiKey}:racer`);
        const answer = await put;
        expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
        try {
          expect((await next.waitLines(1))[0]).to.equal('OK');
          await eventually(
            () => {
              const got = next.lines.slice(1).some((l) => varsOf(u.apiKey, l)?.some((v) => v.name === 'speed' && v.value === value));
              if (!got) throw new Error(`lines ${JSON.stringify(next.lines)}`);
            },
            { timeoutMs: 3000 },
          );
        } catch (err) {
          misses.push(`#${i} (${i % 4} ms): ${(err as Error).message.slice(0, 200)}`);
        }
        current = next;
      }
      expect(misses, `${ITERATIONS - misses.length} of ${ITERATIONS} got the new value`).to.deep.equal([]);
    });
  });
});
