/**
 * The live tail's muting (gateway/log-tail.ts) on the local pubsub: a key's logs are published only
 * while some subscriber listens on `<key>:logs`, a watch unmutes the key on every "node" (LogTail
 * instance) before it resolves, a stale zero count mutes nothing, and hostile watch messages are
 * ignored.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { Gateway } from '../../../src/gateway/gateway.js';
import { LOG_WATCH_CHANNEL, LogTail, parseWatchMessage } from '../../../src/gateway/log-tail.js';
import { Metrics } from '../../../src/metrics.js';
import type { LogEntry } from '../../../src/model.js';
import { LocalPubSub } from '../../../src/pubsub/local-pubsub.js';
import { channels, type PubSub } from '../../../src/pubsub/pubsub.js';
import type { Store } from '../../../src/store/store.js';
import { eventually } from '../../helpers/eventually.js';

const logger = pino({ level: 'silent' });
const KEY = 'abcdef123456';

function gatewayOn(pubsub: PubSub, tail: LogTail | undefined, sink: LogEntry[] = []): Gateway {
  return new Gateway({ store: {} as Store, pubsub, logs: { append: (e) => sink.push(...e) }, metrics: new Metrics(), logger, nodeId: 'n1', tail });
}

const published = async (gw: Gateway): Promise<number> => {
  const m = await (gw as unknown as { deps: { metrics: Metrics } }).deps.metrics.messagesPublished.get();
  return m.values.find((v) => v.labels.kind === 'logs')?.value ?? 0;
};

describe('LogTail on the local pubsub', () => {
  let pubsub: LocalPubSub;
  const tails: LogTail[] = [];
  const tail = (nodeId = `n${tails.length}`, ackTimeoutMs = 2000) => {
    const t = new LogTail({ pubsub, logger, nodeId, ackTimeoutMs });
    tails.push(t);
    return t;
  };

  beforeEach(async () => {
    pubsub = new LocalPubSub({ logger });
    await pubsub.start();
  });
  afterEach(async () => {
    for (const t of tails.splice(0)) await t.stop();
  });

  it('mutes a key whose logs reached no subscriber, and publishes nothing more of it; the index still gets every log', async () => {
    const t = tail();
    await t.start();
    const indexed: LogEntry[] = [];
    const gw = gatewayOn(pubsub, t, indexed);
    gw.logs(KEY, 'dev', [{ message: 'one' }]);
    await gw.flush();
    expect(t.wanted(KEY)).to.equal(false);
    expect(await published(gw)).to.equal(1);
    for (let i = 0; i < 5; i++) {
      gw.logs(KEY, 'dev', [{ message: `more ${i}` }]);
      await gw.flush();
    }
    expect(await published(gw)).to.equal(1);
    expect(indexed.map((e) => e.message)).to.deep.equal(['one', 'more 0', 'more 1', 'more 2', 'more 3', 'more 4']);
  });

  it('keeps publishing while a subscriber listens, and mutes again once it is gone', async () => {
    const t = tail();
    await t.start();
    const gw = gatewayOn(pubsub, t);
    const got: unknown[] = [];
    const unsub = await pubsub.subscribe(channels.logs(KEY), (m) => got.push(m));
    await t.watch(KEY);
    for (let i = 0; i < 3; i++) {
      gw.logs(KEY, 'dev', [{ message: `m${i}` }]);
      await gw.flush();
    }
    await eventually(() => expect(got).to.have.length(3));
    expect(t.wanted(KEY)).to.equal(true);
    await unsub();
    gw.logs(KEY, 'dev', [{ message: 'nobody' }]);
    await gw.flush();
    expect(t.wanted(KEY)).to.equal(false);
  });

  it('a watch resolves only once every node that heard it has unmuted the key, and the first log after it arrives', async () => {
    const a = tail('a');
    const b = tail('b');
    await Promise.all([a.start(), b.start()]);
    const gwA = gatewayOn(pubsub, a);
    gwA.logs(KEY, 'dev', [{ message: 'before' }]);
    await gwA.flush();
    expect(a.wanted(KEY)).to.equal(false);
    // "Node" b opens a tail: subscribe, then watch.
    const got: Array<{ logs: Array<{ message: string }> }> = [];
    await pubsub.subscribe(channels.logs(KEY), (m) => got.push(m as (typeof got)[number]));
    await b.watch(KEY);
    // Not eventually: the watch's promise is the guarantee.
    expect(a.wanted(KEY)).to.equal(true);
    gwA.logs(KEY, 'dev', [{ message: 'first after ready' }]);
    await gwA.flush();
    await eventually(() => expect(got.map((m) => m.logs[0]?.message)).to.deep.equal(['first after ready']));
  });

  it('a zero count for a publish sent before a watch was heard mutes nothing', async () => {
    const t = tail();
    await t.start();
    const ticket = t.ticket();
    await t.watch(KEY);
    t.published(KEY, ticket, 0);
    expect(t.wanted(KEY)).to.equal(true);
    t.published(KEY, t.ticket(), 0);
    expect(t.wanted(KEY)).to.equal(false);
  });

  it('mutes nothing until it hears watches, and nothing after stop', async () => {
    const t = tail();
    t.published(KEY, t.ticket(), 0);
    expect(t.wanted(KEY)).to.equal(true);
    await t.start();
    const early = new LogTail({ pubsub, logger, nodeId: 'x' }).ticket();
    t.published(KEY, { ...early, listening: false }, 0);
    expect(t.wanted(KEY)).to.equal(true);
    t.published(KEY, t.ticket(), 0);
    expect(t.wanted(KEY)).to.equal(false);
    await t.stop();
    expect(t.wanted(KEY)).to.equal(true);
    t.published(KEY, t.ticket(), 0);
    expect(t.wanted(KEY)).to.equal(true);
  });

  it('a node that never acknowledges delays a watch by the ack timeout only', async () => {
    const t = tail('t', 150);
    await t.start();
    // A foreign subscriber: counted by the publish, never acks.
    const silent = await pubsub.subscribe(LOG_WATCH_CHANNEL, () => undefined);
    const local = pubsub.publish.bind(pubsub);
    // Local pubsub counts nodes as 1 or 0; a second node that stays silent is what Redis would count.
    pubsub.publish = async (ch, m) => (await local(ch, m)) + (ch === LOG_WATCH_CHANNEL ? 1 : 0);
    const t0 = performance.now();
    await t.watch(KEY);
    const ms = performance.now() - t0;
    expect(ms).to.be.greaterThan(100);
    expect(ms).to.be.lessThan(2000);
    await silent();
  });

  it('ignores malformed and hostile watch messages and keeps working', async () => {
    const t = tail();
    await t.start();
    const gw = gatewayOn(pubsub, t);
    gw.logs(KEY, 'dev', [{ message: 'x' }]);
    await gw.flush();
    for (const m of [null, 'watch', [], { type: 'watch' }, { type: 'watch', apiKey: KEY }, { type: 'watch', apiKey: 5, id: 'i' }, { type: 'watch', apiKey: 'k'.repeat(10_000), id: 'i' }, { type: 'ack', id: 'x'.repeat(10_000) }, { type: 'nope', apiKey: KEY, id: 'i' }, { type: 'watch', apiKey: '', id: 'i' }]) {
      await pubsub.publish(LOG_WATCH_CHANNEL, m);
    }
    await new Promise((r) => setImmediate(r));
    expect(t.wanted(KEY)).to.equal(false);
    await t.watch(KEY);
    expect(t.wanted(KEY)).to.equal(true);
  });

  it('parseWatchMessage takes exactly the two shapes', () => {
    expect(parseWatchMessage({ type: 'watch', apiKey: 'k', id: 'i' })).to.deep.equal({ type: 'watch', apiKey: 'k', id: 'i' });
    expect(parseWatchMessage({ type: 'ack', id: 'i', extra: 1 })).to.deep.equal({ type: 'ack', id: 'i' });
    expect(parseWatchMessage({ type: 'ack' })).to.equal(null);
    expect(parseWatchMessage({ type: 'watch', apiKey: 'k'.repeat(257), id: 'i' })).to.equal(null);
    expect(parseWatchMessage({ type: 'watch', apiKey: 'k', id: '' })).to.equal(null);
  });

  it('without a tail the gateway publishes every key’s logs, as before', async () => {
    const gw = gatewayOn(pubsub, undefined);
    for (let i = 0; i < 3; i++) {
      gw.logs(KEY, 'dev', [{ message: `m${i}` }]);
      await gw.flush();
    }
    expect(await published(gw)).to.equal(3);
  });
});
