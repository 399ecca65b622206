/**
 * Runs the PubSub contract against both implementations, plus what only Redis can show: two daemons
 * sharing one Redis, one Redis subscription per channel, and re-subscription after a reconnect.
 */
import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { LocalPubSub } from '../../src/pubsub/local-pubsub.js';
import { RedisPubSub } from '../../src/pubsub/redis-pubsub.js';
import { resolvePubSub } from '../../src/pubsub/index.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { sharedRedis, sharedRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '../helpers/processes.js';
import { capturingLogger, pubsubContract } from './pubsub.contract.js';

pubsubContract('LocalPubSub', (logger) => new LocalPubSub({ logger }));

pubsubContract('RedisPubSub', async (logger) => new RedisPubSub({ url: (await sharedRedis()).url, logger }));

// Sharded channels on a real three-master cluster: publish's count must still be the nodes with a subscriber.
pubsubContract('RedisPubSub (Redis Cluster)', async (logger) => new RedisPubSub({ url: (await sharedRedisCluster()).url, logger }));

describe('RedisPubSub (Redis only)', () => {
  let redis: RedisServer;
  const opened: RedisPubSub[] = [];
  const open = async (): Promise<RedisPubSub> => {
    const ps = new RedisPubSub({ url: redis.url, logger: capturingLogger().logger });
    opened.push(ps);
    await ps.start();
    return ps;
  };

  before(async () => {
    redis = await sharedRedis();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((ps) => ps.stop()));
  });

  async function numsub(channel: string): Promise<number> {
    const c = redis.client();
    try {
      const reply = (await c.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
      return Number(reply[1]);
    } finally {
      c.disconnect();
    }
  }

  it('carries a message from one daemon to a subscriber on another, both ways', async () => {
    const nodeA = await open();
    const nodeB = await open();
    const onB: unknown[] = [];
    const onA: unknown[] = [];
    await nodeB.subscribe('CROSSNODE001:logs', (m) => onB.push(m));
    await nodeA.subscribe('CROSSNODE001:vars:callback', (m) => onA.push(m));
    await nodeA.publish('CROSSNODE001:logs', { from: 'A' });
    await nodeB.publish('CROSSNODE001:vars:callback', [{ name: 'speed', type: 'integer', value: '3' }]);
    await eventually(() => {
      expect(onB).to.deep.equal([{ from: 'A' }]);
      expect(onA).to.deep.equal([[{ name: 'speed', type: 'integer', value: '3' }]]);
    });
  });

  it('holds one Redis subscription per channel however many local handlers, and drops it with the last', async () => {
    const ps = await open();
    const ch = 'ONESUBSCRIB1:vars';
    const offs = await Promise.all([1, 2, 3].map(() => ps.subscribe(ch, () => undefined)));
    expect(await numsub(ch)).to.equal(1);
    await offs[0]!();
    await offs[1]!();
    expect(await numsub(ch)).to.equal(1);
    await offs[2]!();
    expect(await numsub(ch)).to.equal(0);
  });

  it('ends subscribed when a subscribe races the last unsubscribe', async () => {
    const ps = await open();
    const ch = 'RACESUBSCRIB:vars';
    const off = await ps.subscribe(ch, () => undefined);
    const got: unknown[] = [];
    const [, off2] = await Promise.all([off(), ps.subscribe(ch, (m) => got.push(m))]);
    expect(await numsub(ch)).to.equal(1);
    await ps.publish(ch, 'still here');
    await eventually(() => expect(got).to.deep.equal(['still here']));
    await off2();
    expect(await numsub(ch)).to.equal(0);
  });

  it('re-subscribes after its subscriber connection is killed (ioredis autoResubscribe)', async () => {
    const ps = await open();
    // Published by another node: this node's own messages reach its handlers without Redis.
    const other = await open();
    const ch = 'RECONNECT001:vars';
    const got: unknown[] = [];
    await ps.subscribe(ch, (m) => got.push(m));
    const admin = redis.client();
    try {
      const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      expect(Number(killed)).to.be.greaterThan(0);
      // Messages during the gap are lost (Redis pub/sub is at-most-once), so keep publishing until
      // one arrives through the re-established subscription.
      let n = 0;
      await eventually(
        async () => {
          await other.publish(ch, ++n);
          expect(got.length).to.be.greaterThan(0);
        },
        { timeoutMs: 10000, intervalMs: 50 },
      );
      expect(await numsub(ch)).to.equal(1);
    } finally {
      admin.disconnect();
    }
  });

  describe("a node's own messages (delivered locally, their Redis echo dropped)", () => {
    /** A raw Redis subscriber: what a node puts on the wire. */
    async function rawSubscriber(channel: string): Promise<{ payloads: string[]; close(): void }> {
      const c = redis.client();
      const payloads: string[] = [];
      c.on('message', (_ch: string, text: string) => payloads.push(text));
      await c.subscribe(channel);
      return { payloads, close: () => c.disconnect() };
    }

    it('reach its own handlers exactly once, before publish resolves, and another node exactly once', async () => {
      const nodeA = await open();
      const nodeB = await open();
      const ch = 'OWNMESSAGE01:vars';
      const onA: unknown[] = [];
      const onA2: unknown[] = [];
      const onB: unknown[] = [];
      await nodeA.subscribe(ch, (m) => onA.push(m));
      await nodeA.subscribe(ch, (m) => onA2.push(m));
      await nodeB.subscribe(ch, (m) => onB.push(m));
      const p = nodeA.publish(ch, { n: 1 });
      // Within this turn's microtasks, long before Redis could have answered: no round trip.
      await Promise.resolve();
      await Promise.resolve();
      expect(onA).to.deep.equal([{ n: 1 }]);
      expect(await p).to.equal(2);
      // B's sentinel leaves after B got A's message, so A's echo came back to A before it.
      await eventually(() => expect(onB).to.deep.equal([{ n: 1 }]));
      await nodeB.publish(ch, 'sentinel');
      await eventually(() => expect(onA).to.deep.equal([{ n: 1 }, 'sentinel']));
      expect(onA2).to.deep.equal([{ n: 1 }, 'sentinel']);
      expect(onB).to.deep.equal([{ n: 1 }, 'sentinel']);
    });

    it('counts every node with a subscriber, this one included (var-changes waits for that many acks)', async () => {
      const nodeA = await open();
      const nodeB = await open();
      const ch = 'OWNCOUNT0001:vars:callback';
      expect(await nodeA.publish(ch, 'nobody')).to.equal(0);
      await nodeA.subscribe(ch, () => undefined);
      expect(await nodeA.publish(ch, 'only me')).to.equal(1);
      await nodeB.subscribe(ch, () => undefined);
      expect(await nodeA.publish(ch, 'both')).to.equal(2);
      expect(await nodeB.publish(ch, 'both')).to.equal(2);
    });

    it('keep per-channel order on this node and on another for a burst of 1000 over three channels', async () => {
      const nodeA = await open();
      const nodeB = await open();
      const chs = ['OWNORDER0001:vars', 'OWNORDER0001:logs', 'OWNORDER0001:devices'];
      const onA = chs.map(() => [] as number[]);
      const onB = chs.map(() => [] as number[]);
      for (const [i, ch] of chs.entries()) {
        await nodeA.subscribe(ch, (m) => onA[i]!.push(m as number));
        await nodeB.subscribe(ch, (m) => onB[i]!.push(m as number));
      }
      const sent = Array.from({ length: 1000 }, (_, i) => i);
      const counts = await Promise.all(sent.map((i) => nodeA.publish(chs[i % 3]!, i)));
      expect(new Set(counts)).to.deep.equal(new Set([2]));
      await eventually(() => {
        expect(onA.flat()).to.have.length(1000);
        expect(onB.flat()).to.have.length(1000);
      });
      for (const c of [0, 1, 2]) {
        const want = sent.filter((i) => i % 3 === c);
        expect(onA[c]).to.deep.equal(want);
        expect(onB[c]).to.deep.equal(want);
      }
    });

    it("carry this node's origin mark on the wire, and a forged payload with that mark is dropped here only", async () => {
      const nodeA = await open();
      const nodeB = await open();
      const ch = 'OWNMARK00001:vars';
      const raw = await rawSubscriber(ch);
      try {
        const onA: unknown[] = [];
        const onB: unknown[] = [];
        await nodeA.subscribe(ch, (m) => onA.push(m));
        await nodeB.subscribe(ch, (m) => onB.push(m));
        await nodeA.publish(ch, { n: 1 });
        await eventually(() => expect(raw.payloads).to.have.length(1));
        // JSON whitespace: any reader, even one that knows nothing of marks, decodes it as it is.
        const mark = /^[ \t\n\r]{32}/.exec(raw.payloads[0]!)?.[0];
        expect(mark, 'a 32-character whitespace mark').to.be.a('string');
        expect(JSON.parse(raw.payloads[0]!)).to.deep.equal({ n: 1 });
        const injector = redis.client();
        try {
          await injector.publish(ch, `${mark}"forged as A"`);
          // From a third publisher, so both nodes get both through Redis, in Redis's order.
          await injector.publish(ch, '"sentinel"');
        } finally {
          injector.disconnect();
        }
        await eventually(() => expect(onA).to.deep.equal([{ n: 1 }, 'sentinel']));
        // B reads its own connection: A having the sentinel says nothing of when B reads it.
        await eventually(() => expect(onB).to.deep.equal([{ n: 1 }, 'forged as A', 'sentinel']));
      } finally {
        raw.close();
      }
    });

    it('hands a text handler another node’s message as its decoded value, and drops a foreign non-JSON payload for it too', async () => {
      const nodeA = await open();
      const nodeB = await open();
      const ch = 'TEXTCROSS001:vars';
      const onB: unknown[] = [];
      await nodeB.subscribeText(ch, (m) => onB.push(m));
      await nodeA.publish(ch, { type: 'vars', n: 1 });
      const injector = redis.client();
      try {
        await injector.publish(ch, 'garbage{');
        await injector.publish(ch, ' {"type":"x"}');
      } finally {
        injector.disconnect();
      }
      await eventually(() => expect(onB).to.have.length(2));
      expect(onB).to.deep.equal([
        { own: false, value: { type: 'vars', n: 1 } },
        { own: false, value: { type: 'x' } },
      ]);
      expect(Object.isFrozen((onB[0] as { value: object }).value) || process.env.NODE_ENV !== 'test').to.equal(true);
    });

    it('decode what other publishers put on the channel without a mark, and survive hostile payloads', async () => {
      const cap = capturingLogger();
      const ps = new RedisPubSub({ url: redis.url, logger: cap.logger });
      opened.push(ps);
      await ps.start();
      const ch = 'FOREIGNPUB01:vars';
      const got: unknown[] = [];
      await ps.subscribe(ch, (m) => got.push(m));
      // A second handler: the message is shared, so it is frozen whatever NODE_ENV says.
      await ps.subscribe(ch, () => undefined);
      const big = { blob: 'x'.repeat(1024 * 1024) };
      const otherMark = ' \t'.repeat(16);
      const injector = redis.client();
      try {
        const deep = '['.repeat(100_000) + ']'.repeat(100_000);
        for (const payload of ['{"from":"redis-cli"}', 'garbage{', '', otherMark, `${otherMark}{"from":"another node"}`, JSON.stringify(big), deep, '"last"']) {
          await injector.publish(ch, payload);
        }
      } finally {
        injector.disconnect();
      }
      await eventually(() => expect(got.at(-1)).to.equal('last'));
      expect(got).to.have.length(5);
      expect(got[0]).to.deep.equal({ from: 'redis-cli' });
      expect(got[1]).to.deep.equal({ from: 'another node' });
      expect(got[2]).to.deep.equal(big);
      // Nested past what recursion takes: delivered, frozen, and the daemon still fine.
      expect(Array.isArray(got[3]) && Object.isFrozen(got[3])).to.equal(true);
      const warnings = cap.records.filter((r) => r.level === 40 && r.msg === 'pubsub message is not JSON; dropped');
      expect(warnings.map((w) => w.bytes)).to.deep.equal(['garbage{'.length, 0, otherMark.length]);
      expect((await ps.health()).ok).to.equal(true);
    });

    it('Redis down: publish rejects and delivers nothing, not even here', async function () {
      // ioredis gives up on a queued command after 20 reconnect attempts (about 10 s).
      this.timeout(40000);
      const own = await startRedisServer();
      const ps = new RedisPubSub({ url: own.url, logger: capturingLogger().logger });
      try {
        await ps.start();
        const ch = 'REDISDOWN001:vars';
        const got: unknown[] = [];
        await ps.subscribe(ch, (m) => got.push(m));
        expect(await ps.publish(ch, 'up')).to.equal(1);
        await eventually(() => expect(got).to.deep.equal(['up']));
        await own.stop();
        // Down for the publisher itself: health also fails when only the subscriber connection has
        // noticed so far, and a publisher that still counts as ready writes its PUBLISH and delivers
        // here (the one case the module documents: a connection breaking with the PUBLISH written).
        await eventually(async () => expect((await ps.health()).detail ?? '').to.match(/^publisher/));
        let err: unknown;
        await ps.publish(ch, 'down').catch((e: unknown) => (err = e));
        expect(err).to.be.instanceOf(Error);
        // Anything queued behind it would have been delivered by now; nothing was.
        await new Promise((r) => setImmediate(r));
        expect(got).to.deep.equal(['up']);
      } finally {
        await ps.stop();
        await own.stop().catch(() => undefined);
      }
    });
  });

  it('start() fails clearly, and health() says why, when Redis is unreachable', async () => {
    const port = await freePort();
    const ps = new RedisPubSub({ url: `redis://127.0.0.1:${port}` });
    let err: unknown;
    await ps.start().catch((e: unknown) => (err = e));
    expect((err as Error).message).to.match(/pubsub: cannot connect to Redis/);
    const h = await ps.health();
    expect(h.ok).to.equal(false);
    expect(h.detail).to.match(/publisher connection/);
    await ps.stop();
  });
});

describe('RedisPubSub (Redis Cluster only: sharded channels)', () => {
  let cluster: RedisCluster;
  let admin: Cluster;
  const opened: RedisPubSub[] = [];
  const open = async (): Promise<RedisPubSub> => {
    const ps = new RedisPubSub({ url: cluster.url, logger: capturingLogger().logger });
    opened.push(ps);
    await ps.start();
    return ps;
  };
  // Channel names whose slots fall on each of the three masters (the 12-character keys are arbitrary).
  const channels = ['CLUSTERCH001:vars', 'CLUSTERCH002:vars', 'CLUSTERCH003:vars', 'CLUSTERCH004:vars', 'CLUSTERCH005:vars', 'CLUSTERCH006:vars'];

  before(async () => {
    cluster = await sharedRedisCluster();
    admin = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    await admin.ping();
  });
  after(() => admin.disconnect());
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((ps) => ps.stop()));
  });

  /** Sharded subscribers of a channel summed over every master (SHARDNUMSUB is per node). */
  async function shardNumsub(channel: string): Promise<number> {
    const counts = await Promise.all(admin.nodes('master').map(async (n) => Number(((await n.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1])));
    return counts.reduce((a, b) => a + b, 0);
  }

  it('spreads the test channels over more than one master (or the tests below would prove little)', async () => {
    const owners = new Set<string>();
    for (const ch of channels) {
      const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', ch));
      const slots = (await admin.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      const range = slots.find(([lo, hi]) => slot >= lo && slot <= hi);
      owners.add(`${range?.[2][0]}:${range?.[2][1]}`);
    }
    expect(owners.size).to.be.greaterThan(1);
  });

  it('counts every daemon subscribed, on every master (classic PUBLISH counts only the receiving node)', async () => {
    const nodeA = await open();
    const nodeB = await open();
    const onB: unknown[] = [];
    for (const ch of channels) {
      expect(await nodeA.publish(ch, 'nobody')).to.equal(0);
      await nodeA.subscribe(ch, () => undefined);
      expect(await nodeB.publish(ch, 'one')).to.equal(1);
      await nodeB.subscribe(ch, (m) => onB.push(m));
      expect(await nodeA.publish(ch, `two:${ch}`)).to.equal(2);
    }
    await eventually(() => expect(onB).to.deep.equal(channels.map((ch) => `two:${ch}`)));
  });

  it("delivers a node's own messages once to itself and once to another node, in order, on every master", async () => {
    const nodeA = await open();
    const nodeB = await open();
    const onA = new Map<string, unknown[]>(channels.map((ch) => [ch, []]));
    const onB = new Map<string, unknown[]>(channels.map((ch) => [ch, []]));
    for (const ch of channels) {
      await nodeA.subscribe(ch, (m) => onA.get(ch)!.push(m));
      await nodeB.subscribe(ch, (m) => onB.get(ch)!.push(m));
    }
    const sent = Array.from({ length: 300 }, (_, i) => i);
    const counts = await Promise.all(sent.map((i) => nodeA.publish(channels[i % channels.length]!, i)));
    expect(new Set(counts)).to.deep.equal(new Set([2]));
    const want = (ch: string) => sent.filter((i) => channels[i % channels.length] === ch);
    await eventually(() => {
      for (const ch of channels) expect(onB.get(ch), ch).to.deep.equal(want(ch));
    });
    // B's sentinels leave after B got all of A's messages: A's echoes came back to A before them.
    for (const ch of channels) await nodeB.publish(ch, 'sentinel');
    await eventually(() => {
      for (const ch of channels) expect(onA.get(ch), ch).to.deep.equal([...want(ch), 'sentinel']);
    });
  });

  it('holds one sharded subscription per channel however many local handlers, and drops it with the last', async () => {
    const ps = await open();
    const ch = channels[0]!;
    const offs = await Promise.all([1, 2, 3].map(() => ps.subscribe(ch, () => undefined)));
    expect(await shardNumsub(ch)).to.equal(1);
    await offs[0]!();
    await offs[1]!();
    expect(await shardNumsub(ch)).to.equal(1);
    await offs[2]!();
    expect(await shardNumsub(ch)).to.equal(0);
  });

  it('re-subscribes after its sharded subscriber connections are killed', async () => {
    const ps = await open();
    // Published by another node: this node's own messages reach its handlers without Redis.
    const other = await open();
    const got = new Map<string, unknown[]>(channels.map((ch) => [ch, []]));
    for (const ch of channels) await ps.subscribe(ch, (m) => got.get(ch)!.push(m));
    let killed = 0;
    for (const n of admin.nodes('master')) killed += Number(await n.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    expect(killed).to.be.greaterThan(1);
    let n = 0;
    await eventually(
      async () => {
        n++;
        for (const ch of channels) await other.publish(ch, n);
        for (const ch of channels) expect(got.get(ch)!.length, ch).to.be.greaterThan(0);
      },
      { timeoutMs: 15000, intervalMs: 100 },
    );
    for (const ch of channels) expect(await shardNumsub(ch), ch).to.equal(1);
  });
});

describe('resolvePubSub', () => {
  const logger = pino({ level: 'silent' });
  it('is local without a Redis URL', () => {
    expect(resolvePubSub({ redisUrl: null }, logger).kind).to.equal('local');
  });
  it('is Redis with a Redis URL, without connecting until started', () => {
    expect(resolvePubSub({ redisUrl: 'redis://127.0.0.1:1' }, logger).kind).to.equal('redis');
  });
  it('is Redis with a Redis Cluster URL, without connecting until started', () => {
    expect(resolvePubSub({ redisUrl: 'redis-cluster://127.0.0.1:1,127.0.0.1:2' }, logger).kind).to.equal('redis');
  });
});
