/**
 * The live log tail only while watched (gateway/log-watch.ts, issue 14): a key whose logs reached no
 * node is muted, a watch unmutes it on every node before the watcher is ready, a publish answered
 * after a watch mutes nothing, a mute ends by itself, and forged watch messages cannot make a node
 * publish anywhere but an ack channel.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { Gateway } from '../../../src/gateway/gateway.js';
import { LOG_WATCH_CHANNEL, LogWatch } from '../../../src/gateway/log-watch.js';
import { Metrics } from '../../../src/metrics.js';
import { LocalPubSub } from '../../../src/pubsub/local-pubsub.js';
import { channels, type PubSub } from '../../../src/pubsub/pubsub.js';
import type { Store } from '../../../src/store/store.js';
import { eventually } from '../../helpers/eventually.js';

const logger = pino({ level: 'silent' });
const KEY = 'k'.repeat(32);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The local pubsub, counting publishes per channel. */
function counting(): { pubsub: LocalPubSub; published: Map<string, number> } {
  const pubsub = new LocalPubSub({ logger });
  const published = new Map<string, number>();
  const publish = pubsub.publish.bind(pubsub);
  pubsub.publish = (channel, message) => {
    published.set(channel, (published.get(channel) ?? 0) + 1);
    return publish(channel, message);
  };
  return { pubsub, published };
}

function gatewayOn(pubsub: PubSub, muteMs = 60_000): Gateway {
  return new Gateway({ store: {} as Store, pubsub, logs: { append: () => undefined }, metrics: new Metrics(), logger, nodeId: 'n1', logWatch: { muteMs } });
}

const log = (gw: Gateway, message: string) => gw.logs(KEY, 'phone-1', [{ message }]);

describe('LogWatch: the live log tail only while watched', () => {
  it('publishes a key’s logs while a dashboard listens, and stops once a publish reached nobody', async () => {
    const { pubsub, published } = counting();
    await pubsub.start();
    const gw = gatewayOn(pubsub);
    const seen: string[] = [];
    const unsub = await pubsub.subscribe(channels.logs(KEY), (m) => seen.push(...(m as { logs: Array<{ message: string }> }).logs.map((l) => l.message)));
    await gw.watchLogs(KEY);
    log(gw, 'one');
    await eventually(() => expect(seen).to.deep.equal(['one']));
    await unsub();
    // The first publish after the dashboard left reaches nobody and mutes the key (this node listens
    // for watches since its own).
    log(gw, 'two');
    await eventually(() => expect(gw.unwatchedLogKeys).to.equal(1));
    const before = published.get(channels.logs(KEY));
    for (let i = 0; i < 20; i++) {
      log(gw, `unwatched ${i}`);
      await sleep(1);
    }
    await gw.flush();
    expect(published.get(channels.logs(KEY))).to.equal(before);
  });

  it('a watch from any node unmutes the key everywhere before it resolves; the watcher gets the next log', async () => {
    // Two gateways on one pubsub: two nodes sharing a Redis, as far as channels go.
    const { pubsub } = counting();
    await pubsub.start();
    const nodeA = gatewayOn(pubsub);
    const nodeB = new Gateway({ store: {} as Store, pubsub, logs: { append: () => undefined }, metrics: new Metrics(), logger, nodeId: 'n2' });
    // The first publish nobody got makes A listen for watches; the next one mutes.
    await eventually(() => {
      log(nodeA, 'nobody');
      expect(nodeA.unwatchedLogKeys).to.equal(1);
    });
    // A dashboard on B: subscribe first, then watch (as http/ws.ts KeyFeeds does), then it is ready.
    const seen: string[] = [];
    await pubsub.subscribe(channels.logs(KEY), (m) => seen.push(...(m as { logs: Array<{ message: string }> }).logs.map((l) => l.message)));
    await nodeB.watchLogs(KEY);
    expect(nodeA.unwatchedLogKeys).to.equal(0);
    log(nodeA, 'watched');
    // (A 'nobody' published before the mute may still be on its way: logs before ready may show.)
    await eventually(() => expect(seen).to.include('watched'));
  });

  it('a publish that reached nobody but is answered after a watch mutes nothing', async () => {
    const pubsub = new LocalPubSub({ logger });
    await pubsub.start();
    const w = new LogWatch({ pubsub, nodeId: 'n1', logger });
    // Listening (so it may mute), then a publish leaves, a watch arrives, and its answer says 0.
    w.reached(KEY, w.mark, 0);
    await eventually(() => {
      w.reached(KEY, w.mark, 0);
      expect(w.mutedKeys).to.equal(1);
    });
    await w.watch(KEY);
    const mark = w.mark;
    await w.watch('other-key');
    w.reached(KEY, mark, 0);
    expect(w.live(KEY)).to.equal(true);
    expect(w.mutedKeys).to.equal(0);
  });

  it('a mute ends after muteMs: one publish goes out again, and mutes again while still nobody listens', async () => {
    const { pubsub, published } = counting();
    await pubsub.start();
    const gw = gatewayOn(pubsub, 50);
    log(gw, 'a');
    await eventually(() => {
      log(gw, 'again');
      expect(gw.unwatchedLogKeys).to.equal(1);
    });
    const before = published.get(channels.logs(KEY)) ?? 0;
    await sleep(80);
    log(gw, 'b');
    await eventually(() => expect(published.get(channels.logs(KEY))).to.equal(before + 1));
    await eventually(() => expect(gw.unwatchedLogKeys).to.equal(1));
  });

  it('ignores malformed and hostile watch messages: no ack to a channel that is not an ack channel, no crash', async () => {
    const { pubsub, published } = counting();
    await pubsub.start();
    const w = new LogWatch({ pubsub, nodeId: 'n1', logger });
    await w.watch(KEY);
    const hostile: unknown[] = [
      null,
      'text',
      42,
      [],
      {},
      { apiKey: KEY, requestId: 'r', replyTo: 'somebody:else' },
      { apiKey: KEY, requestId: 'r', replyTo: `${KEY}:vars:callback` },
      { apiKey: 'x'.repeat(10_000), requestId: 'r', replyTo: 'observerio:logs:watch-acks:n1' },
      { apiKey: KEY, requestId: { nested: true }, replyTo: 'observerio:logs:watch-acks:n1' },
    ];
    for (const m of hostile) await pubsub.publish(LOG_WATCH_CHANNEL, m);
    await sleep(20);
    expect([...published.keys()].filter((c) => c !== LOG_WATCH_CHANNEL && !c.startsWith('observerio:logs:watch-acks:'))).to.deep.equal([]);
    // Still working.
    await w.watch(KEY);
  });

  it('past maxMuted, ended mutes make room: a long-lived node keeps muting new keys', async () => {
    const pubsub = new LocalPubSub({ logger });
    await pubsub.start();
    const w = new LogWatch({ pubsub, nodeId: 'n1', logger, muteMs: 20, maxMuted: 3 });
    await w.watch('warm-up');
    for (const k of ['k1', 'k2', 'k3']) w.reached(k, w.mark, 0);
    expect(w.mutedKeys).to.equal(3);
    // Full, and none has ended: a fourth key is published as before.
    w.reached('k4', w.mark, 0);
    expect(w.live('k4')).to.equal(true);
    await sleep(30);
    // Those keys logged nothing since: their ended mutes are swept for the new one.
    w.reached('k5', w.mark, 0);
    expect(w.live('k5')).to.equal(false);
    expect(w.mutedKeys).to.equal(1);
  });

  it('watch() resolves after the ack wait when a node that heard it stays silent', async () => {
    const pubsub = new LocalPubSub({ logger });
    await pubsub.start();
    // Two nodes heard the watch (as Redis would count a second, silent daemon); only this one acks.
    const publish = pubsub.publish.bind(pubsub);
    pubsub.publish = async (channel, message) => (await publish(channel, message)) + (channel === LOG_WATCH_CHANNEL ? 1 : 0);
    const w = new LogWatch({ pubsub, nodeId: 'n1', logger, ackTimeoutMs: 50 });
    const t0 = Date.now();
    await w.watch(KEY);
    expect(Date.now() - t0).to.be.within(40, 1000);
  });
});
