/**
 * observerio on a real Redis Cluster (DESIGN.md §6): the keys of one API key all in the slot of
 * `<apiKey>:vs`; registration racing across two slots; two daemons on the cluster delivering to each
 * other's devices; a master failing over to its replica survived; and the once-only rename of the keys
 * written before the hash tags, on a plain Redis.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Cluster, type Redis } from 'ioredis';
import { pino } from 'pino';
import { ObserverioError } from '../../src/errors.js';
import { LAYOUT_VERSION } from '../../src/redis/migrate-keys.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { newApiKey } from '../../src/store/passwords.js';
import { contractStoreConfig } from '../contracts/store.contract.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis, sharedRedisCluster, startRedisCluster, type RedisCluster } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

type Var = { name: string; type: string; value: string };

const decodeV = (apiKey: string, line: string): Var[] => {
  expect(line.startsWith(`v:${apiKey}:`), line).to.equal(true);
  return JSON.parse(Buffer.from(line.slice(`v:${apiKey}:`.length), 'base64').toString('utf8')) as Var[];
};
const lineAt = async (c: LineClient, i: number): Promise<string> => (await c.waitLines(i + 1))[i] as string;

function adminOf(cluster: RedisCluster): Cluster {
  const c = new Cluster(cluster.nodes.filter((n) => n.running).map((n) => ({ host: '127.0.0.1', port: n.port })));
  c.on('error', () => undefined);
  return c;
}

/** Every key under `match` on every master (KEYS is per node on a cluster). */
async function keysOnCluster(admin: Cluster, match: string): Promise<string[]> {
  const per = await Promise.all(admin.nodes('master').map((n) => n.keys(match)));
  return per.flat().sort();
}

/** Port of the master serving `key`'s slot, as CLUSTER SLOTS says now. */
async function masterOf(admin: Cluster, key: string): Promise<number> {
  const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', key));
  const slots = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const range = slots.find(([lo, hi]) => slot >= lo && slot <= hi);
  if (!range) throw new Error(`no master serves slot ${slot}`);
  return Number(range[2][1]);
}

describe('Redis Cluster: the store', () => {
  let cluster: RedisCluster;
  let admin: Cluster;
  let prefix: string;
  const stores: RedisStore[] = [];
  const newStore = async (): Promise<RedisStore> => {
    const s = new RedisStore(contractStoreConfig, { url: cluster.url, keyPrefix: prefix });
    stores.push(s);
    await s.start();
    return s;
  };

  before(async () => {
    cluster = await sharedRedisCluster();
    admin = adminOf(cluster);
    await admin.ping();
  });
  after(() => admin.disconnect());
  beforeEach(() => {
    prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
  });

  it('puts every key of one API key in the slot of <apiKey>:vs, and API keys spread over the masters', async () => {
    const store = await newStore();
    const users = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => store.createUser(`slot${i}-${prefix}@example.com`, 'pw')));
    for (const u of users) {
      await store.setVars(u.apiKey, [{ name: 'a', type: 'string', value: '1' }]);
      await store.outboxPush(u.apiKey, [{ name: 'a', type: 'string', value: '2' }]);
    }
    const masters = new Set<number>();
    for (const u of users) {
      const vsSlot = Number(await admin.call('CLUSTER', 'KEYSLOT', `${u.apiKey}:vs`));
      const ours = (await keysOnCluster(admin, `${prefix}*`)).filter((k) => k.includes(u.apiKey) && !k.startsWith(`${prefix}apikey:`));
      expect(ours.map((k) => k.slice(prefix.length))).to.have.members([`varorder:{${u.apiKey}:vs}`, `outbox:{${u.apiKey}:vs}`, `outbox-order:{${u.apiKey}:vs}`]);
      for (const k of ours) expect(Number(await admin.call('CLUSTER', 'KEYSLOT', k)), k).to.equal(vsSlot);
      masters.add(await masterOf(admin, `${u.apiKey}:vs`));
    }
    expect(masters.size).to.be.greaterThan(1);
  });

  it('lets one registration win when two daemons race for one email, leaving one API key record', async () => {
    const [a, b] = [await newStore(), await newStore()];
    const email = `race-${prefix}@example.com`;
    const results = await Promise.allSettled([a.createUser(email, '1'), b.createUser(email.toUpperCase(), '2'), a.createUser(email, '3'), b.createUser(email, '4')]);
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as ObserverioError).code).to.equal('email_taken');
    const winner = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ apiKey: string }>;
    expect(await keysOnCluster(admin, `${prefix}apikey:*`)).to.deep.equal([`${prefix}apikey:${winner.value.apiKey}`]);
    expect(await b.verifyApiKey(winner.value.apiKey)).to.equal(true);
  });

  it('start() fails clearly when no node of the list answers', async () => {
    const s = new RedisStore(contractStoreConfig, { url: 'redis-cluster://127.0.0.1:1,127.0.0.1:2', keyPrefix: prefix });
    let err: Error | undefined;
    await s.start().catch((e: Error) => (err = e));
    expect(err?.message).to.match(/^cannot connect to Redis at redis-cluster:\/\/127\.0\.0\.1:1,127\.0\.0\.1:2: /);
    expect((await s.health()).ok).to.equal(false);
    await s.stop();
  });
});

describe('Redis Cluster: two daemons', () => {
  let nodeA: Daemon;
  let nodeB: Daemon;
  let user: TestUser;
  const devices: LineClient[] = [];
  const device = async (d: Daemon, deviceId: string) => {
    const c = await LineClient.open(d.tcpPort);
    devices.push(c);
    c.line(`v:${user.apiKey}:${deviceId}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };

  before(async () => {
    const { url } = await sharedRedisCluster();
    [nodeA, nodeB] = await Promise.all([startDaemon({ overrides: { redisUrl: url } }), startDaemon({ overrides: { redisUrl: url } })]);
  });
  after(async () => {
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  });
  beforeEach(async () => {
    user = await signedInUser(nodeA);
  });
  afterEach(() => {
    for (const d of devices.splice(0)) d.close();
  });

  it('a change made on one node reaches a device on the other, counted from both nodes', async () => {
    const onB = await device(nodeB, 'on-b');
    const r1 = await call<Record<string, unknown>>(nodeA, 'PUT', '/api/vars/speed', { token: user.token, body: { value: 4 } });
    // An override for every device (DESIGN.md §8), recorded in the history.
    expect(r1.body).to.have.keys(['var', 'target', 'delivered', 'pending', 'buffered', 'historyId']);
    expect(r1.body).to.deep.include({ var: { name: 'speed', type: 'integer', value: '4' }, target: { all: true }, delivered: 1, pending: 0, buffered: false });
    expect(r1.body.historyId).to.match(/^\d+-\d+$/);
    expect(decodeV(user.apiKey, await lineAt(onB, 1))).to.deep.equal([{ name: 'speed', type: 'integer', value: '4' }]);
    const onA = await device(nodeA, 'on-a');
    const r2 = await call(nodeB, 'PUT', '/api/vars/speed', { token: user.token, body: { value: 5 } });
    expect(r2.body).to.include({ delivered: 2, buffered: false });
    // onA verified while speed=4 was in effect: right after OK it gets 4 (§8), then 5; or only 5 when
    // its verify read the overrides after the second PUT committed. Either way it ends on 5, in order.
    await eventually(() => expect(decodeV(user.apiKey, onA.lines[onA.lines.length - 1] ?? '')).to.deep.equal([{ name: 'speed', type: 'integer', value: '5' }]));
    expect(JSON.stringify(onA.lines.slice(1).map((l) => decodeV(user.apiKey, l).map((v) => v.value)))).to.be.oneOf(['[["5"]]', '[["4"],["5"]]']);
    expect(decodeV(user.apiKey, await lineAt(onB, 2))).to.deep.equal([{ name: 'speed', type: 'integer', value: '5' }]);
  });

  it('buffers a change when no device is online on any node, and a device on the other node gets it after OK', async () => {
    const r = await call(nodeA, 'PUT', '/api/vars/name', { token: user.token, body: { value: 'bob' } });
    expect(r.body).to.include({ delivered: 0, buffered: true });
    const c = await LineClient.open(nodeB.tcpPort);
    devices.push(c);
    c.line(`v:${user.apiKey}:late`);
    expect(await c.next()).to.equal('OK');
    expect(decodeV(user.apiKey, await lineAt(c, 1))).to.deep.equal([{ name: 'name', type: 'string', value: 'bob' }]);
  });

  it('variables a device reports on one node are listed by the other', async () => {
    const onB = await device(nodeB, 'reporter');
    onB.line(`i:${user.apiKey}:${b64([{ name: 'hp', type: 'integer', value: '10' }])}`);
    await eventually(async () => {
      const r = await call<{ vars: Var[] }>(nodeA, 'GET', '/api/vars', { token: user.token });
      expect(r.body.vars).to.deep.include({ name: 'hp', type: 'integer', value: '10' });
    });
  });
});

describe('Redis Cluster: a master failing over', function () {
  // Its own cluster: this test kills a master, which the shared one must not see.
  this.timeout(90_000);
  let cluster: RedisCluster;
  let admin: Cluster;
  let daemon: Daemon;
  let user: TestUser;
  const devices: LineClient[] = [];

  before(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    daemon = await startDaemon({ overrides: { redisUrl: cluster.url } });
    admin = adminOf(cluster);
    await admin.ping();
  });
  after(async () => {
    for (const d of devices.splice(0)) d.close();
    admin?.disconnect();
    await daemon?.stop();
    await cluster?.stop();
  });

  it('serves again once the replica of the stopped master has taken over: a dashboard PUT reaches the device, i: writes land', async () => {
    user = await signedInUser(daemon);
    const dev = await LineClient.open(daemon.tcpPort);
    devices.push(dev);
    dev.line(`v:${user.apiKey}:survivor`);
    expect(await dev.next()).to.equal('OK');
    const before = await call(daemon, 'PUT', '/api/vars/speed', { token: user.token, body: { value: 1 } });
    expect(before.body).to.include({ delivered: 1 });
    expect(decodeV(user.apiKey, await lineAt(dev, 1))).to.deep.equal([{ name: 'speed', type: 'integer', value: '1' }]);

    // The master of this API key's slot: its vars, outbox and the channel `<apiKey>:vars` all live there.
    const victim = await masterOf(admin, `${user.apiKey}:vs`);
    expect(await masterOf(admin, `${user.apiKey}:vars`)).to.be.a('number');
    const mastersBefore = await cluster.masters();
    expect(mastersBefore).to.have.length(3).and.include(victim);
    const killedAt = Date.now();
    await cluster.stopNode(victim);

    // The replica is promoted: three masters again, the victim not among them.
    await eventually(
      async () => {
        const now = await cluster.masters();
        expect(now).to.have.length(3);
        expect(now).to.not.include(victim);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const promotedAfter = Date.now() - killedAt;

    // The daemon serves again within a bound: a PUT is delivered to the connected device, and an i:
    // line from that device is stored. Changes made while the slot had no master may be refused or
    // buffered; keep trying until one is delivered live.
    let n = 1;
    let delivered: { var: Var } | undefined;
    await eventually(
      async () => {
        n++;
        const r = await call<{ var: Var; delivered: number }>(daemon, 'PUT', '/api/vars/speed', { token: user.token, body: { value: n } });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        expect(r.body.delivered, JSON.stringify(r.body)).to.equal(1);
        delivered = r.body;
      },
      // Sharded subscriptions move to the promoted master in the background; on a loaded machine that took over 20 s once.
      { timeoutMs: 45_000, intervalMs: 250 },
    );
    expect(delivered?.var.value).to.equal(String(n));
    await eventually(() => expect(dev.lines.some((l) => l.startsWith(`v:${user.apiKey}:`) && decodeV(user.apiKey, l).some((v) => v.value === String(n)))).to.equal(true), { timeoutMs: 5000 });

    dev.line(`i:${user.apiKey}:${b64([{ name: 'after_failover', type: 'integer', value: '42' }])}`);
    await eventually(
      async () => {
        const r = await call<{ vars: Var[] }>(daemon, 'GET', '/api/vars', { token: user.token });
        expect(r.body.vars).to.deep.include({ name: 'after_failover', type: 'integer', value: '42' });
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    // The device's connection lived through it all: no second OK, no error lines.
    expect(dev.lines.filter((l) => l === 'OK')).to.have.length(1);
    const servedAfter = Date.now() - killedAt;
    expect(servedAfter, `promoted after ${promotedAfter} ms, served after ${servedAfter} ms`).to.be.lessThan(60_000);
    const h = await call<{ backends?: unknown }>(daemon, 'GET', '/healthz');
    expect(h.status, JSON.stringify(h.body)).to.equal(200);
  });
});

describe('the untagged keys of earlier versions (plain Redis)', () => {
  let raw: Redis;
  let prefix: string;
  const stores: RedisStore[] = [];
  let url: string;
  const newStore = async (): Promise<RedisStore> => {
    const s = new RedisStore(contractStoreConfig, { url, keyPrefix: prefix, logger: pino({ level: 'silent' }) });
    stores.push(s);
    await s.start();
    return s;
  };

  before(async () => {
    const server = await sharedRedis();
    url = server.url;
    raw = server.client();
  });
  after(() => raw.disconnect());
  beforeEach(() => {
    prefix = `observerio-test-${randomBytes(4).toString('hex')}:`;
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
  });

  it('are renamed to their {<apiKey>:vs} names at the first start, keeping order and outbox', async () => {
    const k = newApiKey();
    // As the previous version left them: the hash in an order Redis lost, the order index, an outbox.
    await raw.hset(`${k}:vs`, 'b:type', 'string', 'b:value', '2', 'a:type', 'string', 'a:value', '1');
    await raw.zadd(`${prefix}varorder:${k}`, 0, 'a', 1, 'b');
    await raw.hset(`${prefix}outbox:${k}`, 'x', JSON.stringify({ type: 'integer', value: '7' }), 'y', JSON.stringify({ type: 'string', value: 'z' }));
    await raw.zadd(`${prefix}outbox-order:${k}`, 1, 'y', 2, 'x');
    const store = await newStore();
    expect((await store.getVars(k)).map((v) => v.name)).to.deep.equal(['a', 'b']);
    expect(await store.outboxLength(k)).to.equal(2);
    expect(await store.outboxTake(k)).to.deep.equal([
      { name: 'y', type: 'string', value: 'z' },
      { name: 'x', type: 'integer', value: '7' },
    ]);
    const left = (await raw.keys(`${prefix}*`)).sort();
    expect(left).to.deep.equal([`${prefix}layout`, `${prefix}varorder:{${k}:vs}`]);
    expect(await raw.get(`${prefix}layout`)).to.equal(LAYOUT_VERSION);
    await raw.del(`${k}:vs`);
  });

  it('leaves an old key whose new name is taken where it is, and does not scan again once done', async () => {
    const k = newApiKey();
    await raw.zadd(`${prefix}varorder:${k}`, 0, 'old');
    await raw.zadd(`${prefix}varorder:{${k}:vs}`, 0, 'new');
    await newStore();
    expect(await raw.zrange(`${prefix}varorder:{${k}:vs}`, 0, -1)).to.deep.equal(['new']);
    expect(await raw.zrange(`${prefix}varorder:${k}`, 0, -1)).to.deep.equal(['old']);
    // Written after the move (an old-version daemon still running): a later start leaves it, the marker says done.
    const k2 = newApiKey();
    await raw.zadd(`${prefix}outbox-order:${k2}`, 1, 'late');
    await newStore();
    expect(await raw.exists(`${prefix}outbox-order:${k2}`)).to.equal(1);
    expect(await raw.exists(`${prefix}outbox-order:{${k2}:vs}`)).to.equal(0);
  });

  it('touches only bare 12-character API keys under its own prefix', async () => {
    const k = newApiKey();
    const other = `observerio-other-${randomBytes(4).toString('hex')}:`;
    await raw.zadd(`${other}varorder:${k}`, 0, 'theirs');
    await raw.zadd(`${prefix}varorder:not-an-api-key`, 0, 'odd');
    await newStore();
    expect(await raw.exists(`${other}varorder:${k}`)).to.equal(1);
    expect(await raw.exists(`${prefix}varorder:not-an-api-key`)).to.equal(1);
    await raw.del(`${other}varorder:${k}`);
  });
});
