/**
 * Supervision seen from outside, over real TCP and HTTP: killing each kind of actor through
 * POST /admin/kill does what its supervisor's strategy promises (a connection keeps its socket, a
 * client actor its outbox, one_for_one restarts one, rest_for_one the rest), too many restarts
 * escalate one level up, fault-injected crashes stay inside one connection, and every crash and
 * restart leaves one structured log line.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { ADMIN_TOKEN, AdminClient, connectionOf, decodeVarsLine, device, nodeAt } from '../helpers/admin.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon, type DaemonOptions } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient } from '../helpers/ws-client.js';

type LogLine = Record<string, unknown> & { msg: string; level: number };

/** A pino logger that keeps every line it writes, parsed. */
function captureLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('supervision through /admin/kill', () => {
  let daemon: Daemon;
  let adm: AdminClient;
  let apiKey: string;
  let logs: LogLine[];
  const clients: LineClient[] = [];

  const start = async (opts: DaemonOptions = {}): Promise<void> => {
    const cap = captureLogger();
    logs = cap.lines;
    daemon = await startDaemon({ logger: cap.logger, clientIdleMs: 60_000, ...opts, overrides: { adminToken: ADMIN_TOKEN, ...opts.overrides } });
    adm = new AdminClient(daemon);
    apiKey = await daemon.register();
  };
  const open = async (deviceId?: string, key = apiKey): Promise<LineClient> => {
    const c = await device(daemon, key, deviceId);
    clients.push(c);
    return c;
  };
  const setVar = (c: LineClient, name: string, value: string, key = apiKey): void => c.line(`i:${key}:${b64([{ name, type: 'string', value }])}`);
  const varsOf = (key = apiKey) => daemon.ctx.store.getVars(key);
  /** A change made on the dashboard, as it reaches the key's client actor. */
  // The dashboard's own path (REST PUT and the WebSocket's set_var both go through it).
  const dashboardChange = (name: string, value: string, key = apiKey) => daemon.ctx.clients.change(key, { name, value, type: 'string' });
  const restartsOf = (path: string): number => daemon.runtime.find(path)!.restarts;

  beforeEach(() => start());
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await daemon.stop();
  });

  describe('a connection actor', () => {
    it('restarts on the same socket: the device stays connected and verified, its next lines work', async () => {
      const c = await open('phone');
      setVar(c, 'speed', '1');
      await eventually(async () => expect(await varsOf()).to.deep.equal([{ name: 'speed', type: 'string', value: '1' }]));
      const conn = connectionOf(daemon, 'phone');

      const { node, supervisor } = await adm.kill200(conn.path);
      expect(node).to.include({ path: conn.path, status: 'running', restarts: 1 });
      expect(node.lastCrash!.reason).to.equal('Killed: killed by operator');
      expect(node.info).to.include({ apiKey, deviceId: 'phone' });
      expect(supervisor).to.include({ path: '/observerio/tcp/conns', restarts: 0 });

      // Same socket, still verified: an i: line needs no new v: line.
      setVar(c, 'speed', '2');
      await eventually(async () => expect(await varsOf()).to.deep.equal([{ name: 'speed', type: 'string', value: '2' }]));
      expect(c.closed).to.equal(false);
      expect(c.lines).to.deep.equal(['OK']);
      // The restarted actor registered the socket again, so a dashboard change reaches the device.
      await eventually(() => expect(daemon.ctx.deviceConns.lookup(apiKey).map((e) => e.value.deviceId)).to.deep.equal(['phone']));
      await dashboardChange('mode', 'hard');
      expect(decodeVarsLine(await c.next(), apiKey)).to.deep.equal([{ name: 'mode', type: 'string', value: 'hard' }]);
      expect(connectionOf(daemon, 'phone')).to.include({ path: conn.path, restarts: 1 });
    });

    it("closes that socket alone once the kills exceed the connection's restart intensity", async () => {
      const victim = await open('victim');
      const bystander = await open('bystander');
      const path = connectionOf(daemon, 'victim').path;
      const intensity = daemon.config.tcp.restartIntensity;
      for (let i = 1; i <= intensity; i++) expect((await adm.kill200(path)).node).to.include({ status: 'running', restarts: i });
      const last = await adm.kill200(path);
      expect(last.node.status).to.equal('stopped');
      await victim.waitClosed();
      expect(daemon.runtime.find(path)).to.equal(undefined);
      expect((await adm.kill(path)).status).to.equal(404);

      setVar(bystander, 'alive', 'yes');
      await eventually(async () => expect(await varsOf()).to.deep.equal([{ name: 'alive', type: 'string', value: 'yes' }]));
      expect(restartsOf('/observerio/tcp/conns')).to.equal(0);
      expect(restartsOf('/observerio/tcp')).to.equal(0);
    });
  });

  describe('a client actor', () => {
    it('keeps its outbox: changes buffered while the device was away still reach it after the kill', async () => {
      const first = await open('tablet');
      const clientPath = `/observerio/clients/client-${apiKey}`;
      await eventually(() => expect(daemon.runtime.find(clientPath)?.status).to.equal('running'));
      first.close();
      await eventually(() => expect(daemon.ctx.deviceConns.countKey(apiKey)).to.equal(0));

      await dashboardChange('speed', '5');
      await dashboardChange('level', 'ice');
      await dashboardChange('speed', '7');
      const buffered = await eventually(async () => {
        const n = nodeAt(await adm.tree200(`?expand=${clientPath}`), clientPath);
        expect(n.info!.outboxLength).to.equal(2);
        return n;
      });
      expect(buffered.info).to.include({ sockets: 0 });

      const { node } = await adm.kill200(clientPath);
      expect(node).to.include({ status: 'running', restarts: 1 });
      expect(node.info).to.include({ apiKey, outboxLength: 2, sockets: 0 });
      // What waits is derived from the overrides and what the device was last sent (DESIGN.md §8), in the store.
      expect((await daemon.ctx.clients.variables.device(apiKey, 'tablet')).pendingCount).to.equal(2);

      const back = await open('tablet');
      // Buffered changes of one variable collapse to the latest value; their order is the store's.
      const delivered = decodeVarsLine(await back.next(), apiKey).sort((a, b) => a.name.localeCompare(b.name));
      expect(delivered).to.deep.equal([
        { name: 'level', type: 'string', value: 'ice' },
        { name: 'speed', type: 'string', value: '7' },
      ]);
      await eventually(async () => expect((await daemon.ctx.clients.variables.device(apiKey, 'tablet')).pendingCount).to.equal(0));
      await eventually(() => expect(daemon.runtime.tree({ expand: clientPath }).info).to.include({ outboxLength: 0, sockets: 1 }));
    });

    it('subscribes again after the kill: a connected device still gets new changes', async () => {
      const c = await open('watch');
      const clientPath = `/observerio/clients/client-${apiKey}`;
      await eventually(() => expect(daemon.runtime.find(clientPath)?.status).to.equal('running'));
      expect((await adm.kill200(clientPath)).node).to.include({ status: 'running', restarts: 1 });
      await dashboardChange('color', 'red');
      expect(decodeVarsLine(await c.next(), apiKey)).to.deep.equal([{ name: 'color', type: 'string', value: 'red' }]);
      expect(daemon.runtime.find(clientPath)!.restarts).to.equal(1);
    });
  });

  describe("a static supervisor's child", () => {
    const siblings = ['store', 'pubsub', 'logs', 'registry', 'clients', 'tcp', 'http'];

    it('one_for_one (/observerio): killing the store restarts only the store, and its data stays', async () => {
      const c = await open('pc');
      setVar(c, 'before', 'kill');
      await eventually(async () => expect(await varsOf()).to.have.length(1));
      const startedAt = Object.fromEntries(siblings.map((s) => [s, daemon.runtime.find(`/observerio/${s}`)!.startedAt]));

      const { node, supervisor } = await adm.kill200('/observerio/store');
      expect(node).to.include({ status: 'running', restarts: 1 });
      expect(supervisor).to.include({ path: '/observerio', status: 'running', restarts: 0 });
      const tree = await adm.tree200();
      for (const s of siblings) {
        const n = nodeAt(tree, `/observerio/${s}`);
        expect(n.restarts, s).to.equal(s === 'store' ? 1 : 0);
        if (s !== 'store') expect(n.startedAt, s).to.equal(startedAt[s]);
      }
      setVar(c, 'after', 'kill');
      await eventually(async () => expect((await varsOf()).map((v) => v.name)).to.deep.equal(['before', 'after']));
      expect(c.closed).to.equal(false);
    });

    it('rest_for_one (/observerio/tcp): killing conns restarts conns and the listener, which keeps its port', async () => {
      const old = await open('old');
      const port = daemon.tcpPort;
      const { node } = await adm.kill200('/observerio/tcp/conns');
      expect(node).to.include({ path: '/observerio/tcp/conns', status: 'running', restarts: 1, childCount: 0 });
      const tcp = nodeAt(await adm.tree200(), '/observerio/tcp');
      expect(tcp.restarts).to.equal(0);
      expect(nodeAt(tcp, '/observerio/tcp/conns').restarts).to.equal(1);
      const listener = nodeAt(tcp, '/observerio/tcp/listener');
      expect(listener).to.include({ status: 'running', restarts: 1 });
      expect(listener.lastCrash).to.equal(null);
      expect(listener.info).to.include({ port });
      // A restarted dynamic supervisor starts empty (as in OTP): its connections were closed.
      await old.waitClosed();
      const fresh = await open('fresh');
      setVar(fresh, 'reconnected', 'yes');
      await eventually(async () => expect(await varsOf()).to.deep.equal([{ name: 'reconnected', type: 'string', value: 'yes' }]));
      expect(daemon.tcpPort).to.equal(port);
    });

    it('rest_for_one (/observerio/tcp): killing the listener restarts it alone; open connections carry on', async () => {
      const c = await open('steady');
      const { node } = await adm.kill200('/observerio/tcp/listener');
      expect(node).to.include({ status: 'running', restarts: 1 });
      expect(node.info).to.include({ port: daemon.tcpPort, connections: 1 });
      expect(restartsOf('/observerio/tcp/conns')).to.equal(0);
      setVar(c, 'still', 'here');
      await eventually(async () => expect(await varsOf()).to.deep.equal([{ name: 'still', type: 'string', value: 'here' }]));
      await open('newcomer');
    });

    it('the http worker: the kill is answered, and the next request is served on the same port', async () => {
      const { node } = await adm.kill200('/observerio/http');
      expect(node).to.include({ status: 'running', restarts: 1 });
      expect(node.info).to.include({ port: daemon.httpPort });
      expect((await fetch(`${daemon.http}/healthz`)).status).to.equal(200);
      expect(nodeAt(await adm.tree200(), '/observerio/http').restarts).to.equal(1);
    });
  });

  describe('restart intensity', () => {
    it("exceeding the tcp supervisor's intensity restarts the tcp supervisor one level up", async () => {
      const c = await open('early');
      const intensity = nodeAt(await adm.tree200(), '/observerio/tcp').intensity!;
      for (let i = 1; i <= intensity; i++) {
        const k = await adm.kill200('/observerio/tcp/listener');
        expect(k.node.restarts).to.equal(i);
        expect(k.supervisor).to.include({ path: '/observerio/tcp', restarts: 0 });
      }
      const over = await adm.kill200('/observerio/tcp/listener');
      // The tcp supervisor gave up and /observerio restarted it: fresh children, one restart on tcp.
      expect(over.supervisor).to.include({ path: '/observerio/tcp', status: 'running', restarts: 1 });
      expect(over.supervisor!.lastCrash!.reason).to.match(/reached_max_restart_intensity \(3 in 5000 ms\); last: Killed: killed by operator/);
      expect(over.node).to.include({ path: '/observerio/tcp/listener', status: 'running', restarts: 0 });
      expect(over.node.info).to.include({ port: daemon.tcpPort });

      const tree = await adm.tree200();
      expect(tree).to.include({ status: 'running', restarts: 0 });
      expect(nodeAt(tree, '/observerio/tcp').restarts).to.equal(1);
      expect(nodeAt(tree, '/observerio/store').restarts).to.equal(0);
      await c.waitClosed();
      const again = await open('later');
      setVar(again, 'after', 'escalation');
      await eventually(async () => expect(await varsOf()).to.deep.equal([{ name: 'after', type: 'string', value: 'escalation' }]));
      expect(logs.filter((l) => l.errorContext === 'shutdown' && l.supervisor === '/observerio/tcp')).to.have.length(1);
    });
  });

  describe('logs', () => {
    it('writes one structured report per crash and one per restart', async () => {
      await open('logged');
      const path = connectionOf(daemon, 'logged').path;
      await adm.kill200(path);
      await adm.kill200(path);
      const crashes = logs.filter((l) => l.errorContext === 'child_terminated' && l.child === path);
      const restarts = logs.filter((l) => l.errorContext === 'child_restarted' && l.child === path);
      expect(crashes.map((l) => [l.level, l.supervisor, l.reason, l.restarts])).to.deep.equal([
        [50, '/observerio/tcp/conns', 'Killed: killed by operator', 0],
        [50, '/observerio/tcp/conns', 'Killed: killed by operator', 1],
      ]);
      expect(restarts.map((l) => [l.level, l.supervisor, l.reason, l.restarts])).to.deep.equal([
        [30, '/observerio/tcp/conns', 'Killed: killed by operator', 1],
        [30, '/observerio/tcp/conns', 'Killed: killed by operator', 2],
      ]);
      expect(crashes[0]!.actor).to.equal('/observerio/tcp/conns');
      expect(logs.filter((l) => l.component === 'admin' && l.path === path)).to.have.length(2);
    });

    it('reports the siblings a rest_for_one restart takes along, with why', async () => {
      await adm.kill200('/observerio/tcp/conns');
      const restarts = logs.filter((l) => l.errorContext === 'child_restarted');
      expect(restarts.map((l) => [l.child, l.reason])).to.deep.equal([
        ['/observerio/tcp/conns', 'Killed: killed by operator'],
        ['/observerio/tcp/listener', 'rest_for_one: sibling conns crashed: Killed: killed by operator'],
      ]);
      expect(logs.filter((l) => l.errorContext === 'child_terminated')).to.have.length(1);
    });
  });
});

describe('fault injection (crashPrefix)', () => {
  let daemon: Daemon;
  let apiKey: string;
  const clients: LineClient[] = [];
  const INTENSITY = 3;

  before(async () => {
    daemon = await startDaemon({
      crashPrefix: '!boom',
      overrides: { adminToken: ADMIN_TOKEN, tcp: { restartIntensity: INTENSITY, restartPeriodMs: 60_000 } },
    });
    apiKey = await daemon.register();
  });
  after(async () => {
    for (const c of clients.splice(0)) c.close();
    await daemon.stop();
  });

  it(`restarts a crashing connection up to tcp.restartIntensity (${INTENSITY}), then closes it; the others and the daemon carry on`, async () => {
    const bad = await device(daemon, apiKey, 'crasher');
    const good = await device(daemon, apiKey, 'steady');
    clients.push(bad, good);
    const path = connectionOf(daemon, 'crasher').path;
    const adm = new AdminClient(daemon);

    for (let i = 1; i <= INTENSITY; i++) {
      bad.line(`!boom ${i}`);
      // The restarted actor answers on the same socket, still verified (v: again answers OK).
      bad.line(`v:${apiKey}:crasher`);
      expect(await bad.next()).to.equal('OK');
      const n = nodeAt(await adm.tree200(`?expand=${path}`), path);
      expect(n).to.include({ status: 'running', restarts: i });
      expect(n.lastCrash!.reason).to.equal(`fault injected by "!boom ${i}"`);
      good.line(`i:${apiKey}:${b64([{ name: 'round', type: 'integer', value: String(i) }])}`);
    }
    bad.line('!boom over');
    await bad.waitClosed();
    expect(daemon.runtime.find(path)).to.equal(undefined);

    good.line(`i:${apiKey}:${b64([{ name: 'round', type: 'integer', value: 'done' }])}`);
    await eventually(async () => expect(await daemon.ctx.store.getVars(apiKey)).to.deep.equal([{ name: 'round', type: 'integer', value: 'done' }]));
    expect(good.closed).to.equal(false);
    const tree = await adm.tree200();
    expect(tree).to.include({ status: 'running', restarts: 0 });
    expect(nodeAt(tree, '/observerio/tcp/conns')).to.include({ status: 'running', restarts: 0, childCount: 1 });
    expect(nodeAt(tree, '/observerio/tcp')).to.include({ restarts: 0 });
    expect(connectionOf(daemon, 'steady').restarts).to.equal(0);
  });
});

describe('backend workers own their resources: a kill reconnects', () => {
  let redis: RedisServer;
  let admin: Redis;
  let daemon: Daemon;
  let adm: AdminClient;
  let user: TestUser;
  const clients: LineClient[] = [];
  const sockets: WsClient[] = [];

  /** The ids of the Redis connections named `name` (CLIENT SETNAME), as CLIENT LIST shows them. */
  const connectionIds = async (name: string): Promise<string[]> => {
    const list = (await admin.client('LIST')) as string;
    return list
      .split('\n')
      .map((line) => Object.fromEntries(line.split(' ').map((kv) => kv.split('=', 2) as [string, string])))
      .filter((c) => c.name === name)
      .map((c) => c.id!);
  };
  /** Waits until exactly one connection named `name` is open, and returns its id. */
  const theConnection = (name: string): Promise<string> =>
    eventually(async () => {
      const ids = await connectionIds(name);
      expect(ids, name).to.have.length(1);
      return ids[0]!;
    });
  const open = async (deviceId: string, key = user.apiKey): Promise<LineClient> => {
    const c = await device(daemon, key, deviceId);
    clients.push(c);
    return c;
  };
  const setVar = (c: LineClient, name: string, value: string): void => c.line(`i:${user.apiKey}:${b64([{ name, type: 'string', value }])}`);
  const varsOf = () => daemon.ctx.store.getVars(user.apiKey);

  before(async () => {
    redis = await startRedisServer();
    admin = redis.client();
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const s of sockets.splice(0)) s.close();
    await daemon.stop();
  });

  describe('on Redis', () => {
    beforeEach(async () => {
      daemon = await startDaemon({ clientIdleMs: 60_000, overrides: { adminToken: ADMIN_TOKEN, redisUrl: redis.url } });
      adm = new AdminClient(daemon);
      user = await signedInUser(daemon);
    });

    it('killing the store closes its Redis connection and opens a new one; TCP and HTTP carry on, data stays', async () => {
      const c = await open('console');
      setVar(c, 'before', 'kill');
      await eventually(async () => expect(await varsOf()).to.have.length(1));
      const old = await theConnection('observerio:store');

      const { node } = await adm.kill200('/observerio/store');
      expect(node).to.include({ status: 'running', restarts: 1 });
      expect(node.info).to.include({ kind: 'redis', ok: true, incarnations: 2 });
      const fresh = await theConnection('observerio:store');
      expect(fresh).to.not.equal(old);

      // The same socket goes on (i:), a new one verifies (v:), and HTTP reaches the store.
      setVar(c, 'after', 'kill');
      await eventually(async () => expect((await varsOf()).map((v) => v.name)).to.deep.equal(['before', 'after']));
      const other = await signedInUser(daemon);
      await open('newcomer', other.apiKey);
      const vars = await call<{ vars: unknown[] }>(daemon, 'GET', '/api/vars', { token: user.token });
      expect(vars.status).to.equal(200);
      expect(vars.body.vars).to.have.length(2);
      expect(await connectionIds('observerio:store')).to.deep.equal([fresh]);
    });

    it('killing pubsub reconnects both connections and restores every subscription: the device and the dashboard still get events', async () => {
      const c = await open('watch');
      const ws = await WsClient.open(daemon.httpPort, user.token);
      sockets.push(ws);
      const channel = `${user.apiKey}:vars:callback`;
      await eventually(async () => expect(await admin.pubsub('NUMSUB', channel)).to.deep.equal([channel, 1]));
      const oldSub = await theConnection('observerio:pubsub:sub');
      const oldPub = await theConnection('observerio:pubsub:pub');

      const { node } = await adm.kill200('/observerio/pubsub');
      expect(node).to.include({ status: 'running', restarts: 1 });
      expect(node.info).to.include({ kind: 'redis', ok: true, incarnations: 2 });
      const newSub = await theConnection('observerio:pubsub:sub');
      expect(newSub).to.not.equal(oldSub);
      expect(await theConnection('observerio:pubsub:pub')).to.not.equal(oldPub);
      // Subscribed again on the new connection, before the kill was answered.
      expect(await admin.pubsub('NUMSUB', channel)).to.deep.equal([channel, 1]);
      expect(await admin.pubsub('NUMSUB', `${user.apiKey}:vars`)).to.deep.equal([`${user.apiKey}:vars`, 1]);

      // A change made on the dashboard reaches the device through the client actor's subscription.
      await daemon.ctx.clients.change(user.apiKey, { name: 'mode', value: 'hard', type: 'string' });
      // (change() resolves once delivered, so the line may be in before we wait for it.)
      expect(decodeVarsLine((await c.waitLines(2))[1]!, user.apiKey)).to.deep.equal([{ name: 'mode', type: 'string', value: 'hard' }]);
      // The dashboard's /ws still gets what the device sends.
      setVar(c, 'speed', '9');
      await ws.waitFor((f) => f.type === 'vars' && JSON.stringify(f).includes('"speed"'));
    });
  });

  describe('on Meilisearch', () => {
    beforeEach(async () => {
      daemon = await startDaemon({ meili: true, overrides: { adminToken: ADMIN_TOKEN } });
      adm = new AdminClient(daemon);
      user = await signedInUser(daemon);
    });

    it('killing logs while devices send them loses none: pending logs are flushed, and those sent during the restart wait for it', async () => {
      const c = await open('chatty');
      let sent = 0;
      const burst = (n: number): void => {
        const logs = Array.from({ length: n }, () => ({ message: `line ${++sent}` }));
        c.line(`l:${user.apiKey}:${b64(logs)}`);
      };
      for (let round = 0; round < 3; round++) {
        burst(25);
        // The kill is under way while the next burst arrives.
        const killed = adm.kill200('/observerio/logs');
        burst(25);
        const { node } = await killed;
        expect(node).to.include({ status: 'running', restarts: round + 1 });
        burst(10);
      }
      await eventually(async () => expect((await daemon.ctx.logIndex.search({ apiKey: user.apiKey, limit: 1 })).total).to.equal(sent), { timeoutMs: 15_000 });
      expect(sent).to.equal(180);
      // Searchable can come a moment before the batcher hears its task succeeded: wait for that too.
      await eventually(() => expect(daemon.ctx.batcher.stats()).to.include({ dropped: 0, pending: 0 }));
      const messages = (await daemon.ctx.logIndex.search({ apiKey: user.apiKey, limit: 1000 })).hits.map((h) => h.message);
      expect(new Set(messages).size).to.equal(180);
    });
  });
});
