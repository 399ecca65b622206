import { expect } from 'chai';
import { pino } from 'pino';
import { Metrics } from '../../../src/metrics.js';
import { resolveVar, VarChanges, type VarChangesDeps } from '../../../src/clients/var-changes.js';
import type { DeliveryAck, VarChange } from '../../../src/clients/client.js';
import type { DashboardEvent, Gateway } from '../../../src/gateway/gateway.js';
import { Registry } from '../../../src/otp/index.js';
import { channels } from '../../../src/pubsub/pubsub.js';
import { LocalPubSub } from '../../../src/pubsub/local-pubsub.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { ObserverioError } from '../../../src/errors.js';
import { eventually } from '../../helpers/eventually.js';

const API_KEY = 'AbCdEf123456';

describe('resolveVar', () => {
  const bad = (fn: () => unknown, message: RegExp) => expect(fn).to.throw(ObserverioError, message);

  it('takes the type from the request, else the existing variable, else the JSON value', () => {
    expect(resolveVar({ name: 'n', value: '3', type: 'integer' }, { name: 'n', type: 'string', value: 'x' })).to.deep.equal({ name: 'n', type: 'integer', value: '3' });
    expect(resolveVar({ name: 'n', value: '3' }, { name: 'n', type: 'float', value: '1' })).to.deep.equal({ name: 'n', type: 'float', value: '3' });
    expect(resolveVar({ name: 'n', value: 3 }, undefined).type).to.equal('integer');
    expect(resolveVar({ name: 'n', value: 3.5 }, undefined).type).to.equal('float');
    expect(resolveVar({ name: 'n', value: true }, undefined)).to.deep.equal({ name: 'n', type: 'boolean', value: 'true' });
    expect(resolveVar({ name: 'n', value: '3' }, undefined).type).to.equal('string');
  });

  it('checks and canonicalises values of the well-known types', () => {
    expect(resolveVar({ name: 'n', value: ' 0042 ', type: 'int' }, undefined).value).to.equal('42');
    expect(resolveVar({ name: 'n', value: '1', type: 'bool' }, undefined).value).to.equal('true');
    bad(() => resolveVar({ name: 'n', value: '1e400', type: 'float' }, undefined), /not a number/);
    bad(() => resolveVar({ name: 'n', value: 2 ** 60, type: 'integer' }, undefined), /not an integer/);
    bad(() => resolveVar({ name: 'n', value: 'yes', type: 'boolean' }, undefined), /not a boolean/);
    bad(() => resolveVar({ name: 'n', value: Number.NaN }, undefined), /finite/);
  });

  it('checks the name and the type as the protocol does', () => {
    bad(() => resolveVar({ name: '', value: 1 }, undefined), /1-128/);
    bad(() => resolveVar({ name: 'a\nb', value: 1 }, undefined), /control/);
    bad(() => resolveVar({ name: 'n', value: 1, type: 't'.repeat(33) }, undefined), /type/);
  });
});

describe('VarChanges', () => {
  let pubsub: LocalPubSub;
  let store: MemoryStore;
  let events: DashboardEvent[];
  let changes: VarChanges;
  const notified: string[] = [];

  const make = (over: Partial<VarChangesDeps> = {}) =>
    new VarChanges({
      store,
      metrics: new Metrics(),
      pubsub,
      gateway: { publish: (_ch: string, e: DashboardEvent) => events.push(e) } as unknown as Gateway,
      deviceConns: new Registry('deviceConns', 'duplicate'),
      clients: { notify: (k) => notified.push(k), ensure: async (k) => ({ send: () => void notified.push(k) }) },
      logger: pino({ level: 'silent' }),
      nodeId: 'node-1',
      ackTimeoutMs: 100,
      ...over,
    });

  /** A fake node's client actor: answers each change with the given ack. */
  const node = (ack: Omit<DeliveryAck, 'requestId'> | null) =>
    pubsub.subscribe(channels.varsCallback(API_KEY), (m) => {
      const c = m as VarChange;
      if (ack && c.requestId && c.replyTo) void pubsub.publish(c.replyTo, { requestId: c.requestId, ...ack });
    });

  beforeEach(async () => {
    pubsub = new LocalPubSub();
    await pubsub.start();
    store = new MemoryStore({ snapshotIntervalMs: 0, sessionTtlMs: 60_000, outboxMaxPerKey: 100, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 }, { dataDir: null });
    await store.start();
    events = [];
    changes = make();
  });
  afterEach(async () => {
    await changes.stop();
    await store.stop();
    await pubsub.stop();
  });

  it('with no node listening, stores the change, puts it in the outbox and says so', async () => {
    const r = await changes.change(API_KEY, { name: 'speed', value: 4 });
    expect(r).to.deep.equal({ var: { name: 'speed', type: 'integer', value: '4' }, delivered: 0, buffered: true });
    expect(await store.getVars(API_KEY)).to.deep.equal([{ name: 'speed', type: 'integer', value: '4' }]);
    expect(await store.outboxTake(API_KEY)).to.deep.equal([{ name: 'speed', type: 'integer', value: '4' }]);
    expect(events.map((e) => e.type)).to.deep.equal(['vars', 'delivery']);
  });

  it('sums the acks of the nodes it reached', async () => {
    await node({ delivered: 2 });
    const r = await changes.change(API_KEY, { name: 'speed', value: 4 });
    expect(r).to.deep.equal({ var: { name: 'speed', type: 'integer', value: '4' }, delivered: 2, buffered: false });
    expect(await store.outboxLength(API_KEY)).to.equal(0);
  });

  it('buffers the change itself when the nodes it reached had no socket for it', async () => {
    await node({ delivered: 0 });
    expect(await changes.change(API_KEY, { name: 's', value: 'x' })).to.include({ delivered: 0, buffered: true });
    expect(await store.outboxTake(API_KEY)).to.deep.equal([{ name: 's', type: 'string', value: 'x' }]);
  });

  it('does not buffer a change that a socket on any node got', async () => {
    await node({ delivered: 0 });
    await node({ delivered: 1 });
    expect(await changes.change(API_KEY, { name: 's', value: 'x' })).to.include({ delivered: 1, buffered: false });
    expect(await store.outboxLength(API_KEY)).to.equal(0);
  });

  it('answers after the ack timeout with what it has, naming the silent nodes', async () => {
    await node(null);
    const started = Date.now();
    const r = await changes.change(API_KEY, { name: 's', value: 'x' });
    expect(Date.now() - started).to.be.within(90, 1000);
    // Nobody confirmed a delivery: the change waits in the outbox rather than being lost.
    expect(r).to.deep.equal({ var: { name: 's', type: 'string', value: 'x' }, delivered: 0, buffered: true, unconfirmed: 1 });
  });

  it('ignores acks for unknown requests and malformed acks', async () => {
    await changes.start();
    await pubsub.publish(changes.replyTo, { requestId: 'nope', delivered: 1 });
    await pubsub.publish(changes.replyTo, { hello: 1 });
    await node({ delivered: 1 });
    expect(await changes.change(API_KEY, { name: 's', value: 'x' })).to.include({ delivered: 1 });
  });

  it('applies concurrent changes of one key in the order they were made', async () => {
    const sent: string[] = [];
    await pubsub.subscribe(channels.varsCallback(API_KEY), (m) => {
      const c = m as VarChange;
      sent.push(c.vars[0]?.value ?? '');
      void pubsub.publish(c.replyTo ?? '', { requestId: c.requestId, delivered: 1 });
    });
    // The first needs a store read to find its type, the second does not: unserialised, the second
    // would be written first and then overwritten by the older value.
    const results = await Promise.all([
      changes.change(API_KEY, { name: 's', value: 1 }),
      changes.change(API_KEY, { name: 's', value: 2, type: 'integer' }),
      changes.change(API_KEY, { name: 's', value: 3 }),
    ]);
    expect(results.map((r) => r.var.value)).to.deep.equal(['1', '2', '3']);
    expect(await store.getVars(API_KEY)).to.deep.equal([{ name: 's', type: 'integer', value: '3' }]);
    await eventually(() => expect(sent).to.deep.equal(['1', '2', '3']));
  });

  it('turns a pubsub failure into a 503 after the value is stored', async () => {
    await changes.start();
    const failing = make({ pubsub: Object.assign(Object.create(pubsub) as LocalPubSub, { publish: () => Promise.reject(new Error('down')) }) });
    try {
      const err = await failing.change(API_KEY, { name: 's', value: 'x' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ObserverioError).with.property('code', 'unavailable');
      expect(await store.getVars(API_KEY)).to.deep.equal([{ name: 's', type: 'string', value: 'x' }]);
    } finally {
      await failing.stop();
    }
  });
});
