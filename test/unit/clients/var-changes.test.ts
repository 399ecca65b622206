import { expect } from 'chai';
import { pino } from 'pino';
import { Metrics } from '../../../src/metrics.js';
import { isVarChangeBatch, overridesEventMs, resolveVar, VarChanges, type VarChangesDeps } from '../../../src/clients/var-changes.js';
import { ALL, clearOverride, commit, createStrategy, setOverride, updateStrategy, type EntryMeta, type Op } from '../../../src/variables/index.js';
import type { DeliveryAck, VarChange } from '../../../src/clients/client.js';
import type { DashboardEvent, Gateway } from '../../../src/gateway/gateway.js';
import { Registry } from '../../../src/otp/index.js';
import { channels } from '../../../src/pubsub/pubsub.js';
import { LocalPubSub } from '../../../src/pubsub/local-pubsub.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { ObserverioError } from '../../../src/errors.js';
import { install } from '@sinonjs/fake-timers';
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

describe('isVarChangeBatch (a vars:callback message of several changes)', () => {
  it('takes a batch of changes and refuses what is malformed or oversized, which is then read as one change as before', () => {
    expect(isVarChangeBatch({ batch: [{ historyId: '1-0', actor: 'a', action: 'override.set' }] })).to.equal(true);
    expect(isVarChangeBatch({ batch: [] })).to.equal(true);
    for (const m of [null, 'x', 7, [], {}, { batch: 'nope' }, { batch: { length: 1 } }, { batch: Array.from({ length: 10_001 }, () => ({})) }])
      expect(isVarChangeBatch(m), JSON.stringify(m)?.slice(0, 40)).to.equal(false);
  });
});

describe('overridesEventMs', () => {
  it('lets a burst share one overrides event for 25 ms, longer in proportion for a long list, at most 100 ms', () => {
    expect([0, 1, 250, 251, 500, 1024, 100_000].map(overridesEventMs)).to.deep.equal([25, 25, 25, 26, 50, 100, 100]);
  });
});

describe('VarChanges (commit, then deliver)', () => {
  let pubsub: LocalPubSub;
  let store: MemoryStore;
  let events: DashboardEvent[];
  let changes: VarChanges;

  const make = (over: Partial<VarChangesDeps> = {}) =>
    new VarChanges({
      store,
      metrics: new Metrics(),
      pubsub,
      gateway: { publish: (_ch: string, e: DashboardEvent) => events.push(e), publishMany: (_ch: string, es: DashboardEvent[]) => events.push(...es) } as unknown as Gateway,
      logger: pino({ level: 'silent' }),
      nodeId: 'node-1',
      ackTimeoutMs: 100,
      variables: { historyMaxEntries: 100, historyMaxAgeMs: 3_600_000, deviceRememberMs: 60_000, presenceTtlMs: 5000, heartbeatMs: 1000, maxCommitRetries: 5 },
      ...over,
    });

  /** An override for every device, as PUT /api/vars/:name without a target makes it. */
  const change = (c: VarChanges, name: string, value: string | number, type?: string) =>
    c.act(API_KEY, 'me@example.com', (state) => setOverride({ overrides: state.overrides, strategies: [] }, name, value, type, ALL, undefined, { actor: 'me@example.com', at: Date.now() }));

  /** The changes of one `vars:callback` message: one, or the batch committed together, as the client actor reads them. */
  const unpack = (m: unknown): VarChange[] => (isVarChangeBatch(m) ? m.batch : [m as VarChange]);

  /** A fake node's client actor: answers each change with the given ack. */
  const node = (ack: Omit<DeliveryAck, 'requestId'> | null, messages?: unknown[]) =>
    pubsub.subscribe(channels.varsCallback(API_KEY), (m) => {
      messages?.push(m);
      for (const c of unpack(m)) if (ack && c.requestId && c.replyTo) void pubsub.publish(c.replyTo, { requestId: c.requestId, ...ack });
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

  it('with no node listening, commits the override with its history entry and says nobody got it; <apiKey>:vs is left alone', async () => {
    const r = await change(changes, 'speed', 4);
    expect(r.delivered).to.equal(0);
    expect(r.entry).to.include({ actor: 'me@example.com', action: 'override.set', delivered: 0 });
    expect((await store.listOverrides(API_KEY)).map((o) => [o.name, o.type, o.value])).to.deep.equal([['speed', 'integer', '4']]);
    expect((await store.listHistory(API_KEY, { limit: 5 })).map((e) => e.id)).to.deep.equal([r.entry.id]);
    expect(await store.getVars(API_KEY)).to.deep.equal([]);
    expect(events.map((e) => e.type)).to.deep.equal(['overrides', 'vars', 'delivery', 'history']);
  });

  it('sums the acks of the nodes it reached and records them in the entry', async () => {
    await node({ delivered: 2 });
    await node({ delivered: 1 });
    const r = await change(changes, 'speed', 4);
    expect(r.delivered).to.equal(3);
    expect((await store.getHistoryEntry(API_KEY, r.entry.id))?.delivered).to.equal(3);
  });

  it('calls `sent` once every node has acked, before the answer, which waits for the delivered count to be written', async () => {
    await node({ delivered: 1 });
    await node({ delivered: 2 });
    // The count's write held back: `sent` must not wait for it, the answer must.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const write = store.setDeliveredMany.bind(store);
    let written: Array<{ id: string; delivered: number }> | null = null;
    store.setDeliveredMany = async (key, counts) => {
      await held;
      written = [...counts];
      return write(key, counts);
    };
    let sentCalls = 0;
    let answered = false;
    const p = changes.act(API_KEY, 'me@example.com', (state) => setOverride({ overrides: state.overrides, strategies: [] }, 'speed', 4, undefined, ALL, undefined, { actor: 'me@example.com', at: Date.now() }), { sent: () => (sentCalls += 1) });
    void p.then(() => (answered = true));
    await eventually(() => expect(sentCalls).to.equal(1));
    expect(answered).to.equal(false);
    expect(written).to.equal(null);
    release();
    const r = await p;
    expect(r.delivered).to.equal(3);
    expect(written).to.deep.equal([{ id: r.entry.id, delivered: 3 }]);
    expect((await store.getHistoryEntry(API_KEY, r.entry.id))?.delivered).to.equal(3);
    expect(sentCalls).to.equal(1);
  });

  it('calls `sent` once for a change that fails, and for one whose nodes stay silent (at the ack timeout)', async () => {
    let failedSent = 0;
    const bad = changes.act(API_KEY, 'me@example.com', () => {
      throw new ObserverioError('bad_request', 'no');
    }, { sent: () => (failedSent += 1) });
    await bad.then(
      () => expect.fail('should fail'),
      (err: unknown) => expect(err).to.be.instanceOf(ObserverioError),
    );
    expect(failedSent).to.equal(1);
    await node(null);
    let silentSent = 0;
    const r = await changes.act(API_KEY, 'me@example.com', (state) => setOverride({ overrides: state.overrides, strategies: [] }, 's', 'x', undefined, ALL, undefined, { actor: 'me@example.com', at: Date.now() }), { sent: () => (silentSent += 1) });
    expect(r).to.include({ delivered: 0, unconfirmed: 1 });
    expect(silentSent).to.equal(1);
  });

  it('answers after the ack timeout with what it has, naming the silent nodes', async () => {
    await node(null);
    const started = Date.now();
    const r = await change(changes, 's', 'x');
    expect(Date.now() - started).to.be.within(90, 1000);
    expect(r).to.include({ delivered: 0, unconfirmed: 1 });
  });

  it('ignores acks for unknown requests and malformed acks', async () => {
    await changes.start();
    await pubsub.publish(changes.replyTo, { requestId: 'nope', delivered: 1 });
    await pubsub.publish(changes.replyTo, { hello: 1 });
    await node({ delivered: 1 });
    expect((await change(changes, 's', 'x')).delivered).to.equal(1);
  });

  it('takes a node’s acks for several changes in one message, and ignores a malformed or oversized batch', async () => {
    const seen: VarChange[] = [];
    await pubsub.subscribe(channels.varsCallback(API_KEY), (m) => {
      seen.push(...unpack(m));
      // Answers once both changes are out, in one message, as a client actor that delivered them together does.
      if (seen.length < 2) return;
      const [a, b] = seen as [VarChange, VarChange];
      void pubsub.publish(changes.replyTo, { acks: 'nope' });
      void pubsub.publish(changes.replyTo, { acks: Array.from({ length: 100_001 }, () => ({ requestId: a.requestId, delivered: 50 })) });
      void pubsub.publish(changes.replyTo, { acks: [{ requestId: a.requestId, delivered: 2 }, { hello: 1 }, { requestId: b.requestId, delivered: 1 }] });
    });
    const [r1, r2] = await Promise.all([change(changes, 's', 1), change(changes, 't', 2)]);
    expect(r1).to.include({ delivered: 2 });
    expect(r1.unconfirmed).to.equal(undefined);
    expect(r2).to.include({ delivered: 1 });
    expect(r2.unconfirmed).to.equal(undefined);
  });

  it('applies concurrent changes of one key in the order they were made', async () => {
    const sent: string[] = [];
    await pubsub.subscribe(channels.varsCallback(API_KEY), (m) => {
      for (const c of unpack(m)) {
        sent.push(c.historyId ?? '');
        void pubsub.publish(c.replyTo ?? '', { requestId: c.requestId, delivered: 1 });
      }
    });
    const results = await Promise.all([change(changes, 's', 1), change(changes, 's', 2, 'integer'), change(changes, 's', 3)]);
    expect(results.map((r) => r.after.overrides[0]?.value)).to.deep.equal(['1', '2', '3']);
    expect((await store.listOverrides(API_KEY)).map((o) => o.value)).to.deep.equal(['3']);
    await eventually(() => expect(sent).to.deep.equal(results.map((r) => r.entry.id)));
  });

  it('commits changes that queued up together, each computed from the state the ones before it leave, one failing alone', async () => {
    const messages: unknown[] = [];
    await node({ delivered: 1 }, messages);
    let batches = 0;
    const commitMany = store.commitMany.bind(store);
    store.commitMany = (...args) => {
      batches += 1;
      return commitMany(...args);
    };
    const seen: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        changes
          .act(API_KEY, `user${i}`, (state) => {
            // What each plan saw: the changes made before it, this batch's included.
            seen.push(state.overrides.length);
            if (i === 7) throw new ObserverioError('bad_request', 'no seven');
            return setOverride({ overrides: state.overrides, strategies: [] }, `v${i}`, i, undefined, ALL, undefined, { actor: `user${i}`, at: Date.now() });
          })
          .catch((err: unknown) => err),
      ),
    );
    expect(results[7]).to.be.instanceOf(ObserverioError).with.property('code', 'bad_request');
    const ok = results.filter((r, i) => i !== 7) as Array<Awaited<ReturnType<VarChanges['act']>>>;
    expect(ok.map((r) => r.delivered)).to.deep.equal(ok.map(() => 1));
    expect(seen).to.deep.equal(Array.from({ length: 30 }, (_, i) => (i <= 7 ? i : i - 1)));
    // In the order made, each entry the change's own, each `before` what the one before left.
    const history = (await store.listHistory(API_KEY, { limit: 50 })).reverse();
    expect(history.map((e) => e.actor)).to.deep.equal(Array.from({ length: 30 }, (_, i) => `user${i}`).filter((_, i) => i !== 7));
    expect(ok.map((r) => r.entry.id)).to.deep.equal(history.map((e) => e.id));
    ok.forEach((r, i) => expect(r.before.overrides.length).to.equal(i));
    expect((await store.readState(API_KEY)).stateVersion).to.equal(29);
    // All but the first change waited behind the first commit: a handful of commits, not 29.
    expect(batches).to.be.within(1, 3);
    // Delivered as committed: one vars:callback message per commit, carrying its changes in order.
    expect(messages).to.have.length(batches);
    expect(messages.flatMap(unpack).map((c) => c.historyId)).to.deep.equal(history.map((e) => e.id));
    expect(history.map((e) => e.delivered)).to.deep.equal(history.map(() => 1));
    // Dashboards get the whole list of overrides: the newest one last, not one list per change.
    await eventually(() => {
      const lists = events.flatMap((e) => (e.type === 'overrides' ? [e.overrides.map((o) => o.name)] : []));
      expect(lists.at(-1)).to.deep.equal(history.map((e) => e.changes[0]?.name));
      expect(lists.length).to.be.within(1, 6);
    });
    expect(events.filter((e) => e.type === 'history')).to.have.length(29);
  });

  it('refuses, within a batch, a strategy edit made against a version the batch has moved on from', async () => {
    const { createStrategy, updateStrategy } = await import('../../../src/variables/index.js');
    const s = (value: string) => ({ name: 'fast', vars: [{ name: 's', type: 'string', value }] });
    await changes.act(API_KEY, 'me', (state) => ({ ...createStrategy(state, s('0'), { actor: 'me', at: Date.now() }), strategyExpect: { name: 'fast', version: null, fromEditor: true } }));
    // Two editors who both read version 1: the first edit wins, the second is told, as it would be one by one.
    const edit = (value: string) => changes.act(API_KEY, 'me', (state) => ({ ...updateStrategy(state, s(value), { actor: 'me', at: Date.now() }), strategyExpect: { name: 'fast', version: 1, fromEditor: true } }));
    const [a, b] = await Promise.all([edit('1'), edit('2').catch((e: unknown) => e)]);
    expect(a.entry.action).to.equal('strategy.update');
    expect(b).to.be.instanceOf(ObserverioError).with.property('code', 'conflict');
    expect(await store.getStrategy(API_KEY, 'fast')).to.deep.include({ version: 2, vars: s('1').vars });
  });

  it("sends a batch's commit before the batch ahead of it is answered, chained on it, and answers both in order", async () => {
    await node({ delivered: 1 });
    const calls: Array<{ version: number; chained: boolean }> = [];
    const held: Array<() => void> = [];
    const commitMany = store.commitMany.bind(store);
    store.commitMany = (apiKey, commits, version, bounds, options) => {
      calls.push({ version, chained: options?.chained === true });
      const r = commitMany(apiKey, commits, version, bounds, options);
      // The first answer held back until the test lets it go.
      if (calls.length > 1) return r;
      return new Promise((resolve) => held.push(() => resolve(r)));
    };
    const order: string[] = [];
    const first = change(changes, 'a', 1).then((r) => (order.push('a'), r));
    await eventually(() => expect(calls).to.have.length(1));
    const second = change(changes, 'b', 2).then((r) => (order.push('b'), r));
    // Computed from what the first leaves, and sent while the first's answer is still held.
    await eventually(() => expect(calls).to.deep.equal([{ version: 0, chained: false }, { version: 1, chained: true }]));
    expect(order).to.deep.equal([]);
    held.forEach((release) => release());
    const [ra, rb] = await Promise.all([first, second]);
    expect(order).to.deep.equal(['a', 'b']);
    expect(rb.before.overrides.map((o) => o.name)).to.deep.equal(['a']);
    expect([ra.delivered, rb.delivered]).to.deep.equal([1, 1]);
    expect((await store.listHistory(API_KEY, { limit: 5 })).map((e) => e.id)).to.deep.equal([rb.entry.id, ra.entry.id]);
  });

  it('sends the changes of one event-loop turn behind a batch on its way as one batch, not the first alone', async () => {
    await node({ delivered: 1 });
    const sizes: number[] = [];
    const held: Array<() => void> = [];
    const commitMany = store.commitMany.bind(store);
    store.commitMany = (apiKey, commits, version, bounds, options) => {
      sizes.push(commits.length);
      const r = commitMany(apiKey, commits, version, bounds, options);
      if (sizes.length > 1) return r;
      return new Promise((resolve) => held.push(() => resolve(r)));
    };
    const first = change(changes, 'a', 1);
    await eventually(() => expect(sizes).to.have.length(1));
    // Three requests read in one turn, each its own callback (as uWS calls a handler per request).
    const rest = await new Promise<Array<Promise<unknown>>>((resolve) => {
      const out: Array<Promise<unknown>> = [];
      for (const [name, value] of [['b', 2], ['c', 3], ['d', 4]] as const)
        setImmediate(() => {
          out.push(change(changes, name, value));
          if (out.length === 3) resolve(out);
        });
    });
    await eventually(() => expect(sizes).to.deep.equal([1, 3]));
    held.forEach((release) => release());
    const answers = (await Promise.all([first, ...rest])) as Array<{ delivered: number; entry: { changes: Array<{ name: string }> } }>;
    expect(answers.map((r) => [r.entry.changes[0]?.name, r.delivered])).to.deep.equal([
      ['a', 1],
      ['b', 1],
      ['c', 1],
      ['d', 1],
    ]);
  });

  it('computes both again, in order, when the batch ahead is refused and the one chained on it with it', async () => {
    const bounds = { maxEntries: 100, maxAgeMs: 3_600_000 };
    const calls: Array<{ version: number; chained: boolean }> = [];
    let gate: (() => void) | null = null;
    const commitMany = store.commitMany.bind(store);
    let otherNode = false;
    store.commitMany = async (apiKey, commits, version, b, options) => {
      if (otherNode) return commitMany(apiKey, commits, version, b, options);
      calls.push({ version, chained: options?.chained === true });
      if (calls.length === 1) {
        // Another node commits first (through the same store: its commit is a commitMany of one):
        // this one, sent at version 0, is refused.
        const state = await store.readState(API_KEY);
        const other = setOverride({ overrides: state.overrides, strategies: [] }, 'x', 1, undefined, ALL, undefined, { actor: 'other', at: Date.now() });
        otherNode = true;
        expect((await store.commit(API_KEY, other.ops, commit(state, other.ops, other.meta).draft, { stateVersion: state.stateVersion }, bounds, 'other')).ok).to.equal(true);
        otherNode = false;
        const r = commitMany(apiKey, commits, version, b, options);
        await new Promise<void>((resolve) => (gate = resolve));
        return r;
      }
      return commitMany(apiKey, commits, version, b, options);
    };
    const first = change(changes, 'a', 1);
    await eventually(() => expect(gate).to.not.equal(null));
    const second = change(changes, 'b', 2);
    await eventually(() => expect(calls).to.have.length(2));
    (gate as unknown as () => void)();
    const [ra, rb] = await Promise.all([first, second]);
    // The chained one was refused behind it (another node's commit came between), then both were
    // computed again from a fresh read, in the order made.
    expect(calls[1]).to.deep.equal({ version: 1, chained: true });
    expect((await store.listHistory(API_KEY, { limit: 5 })).map((e) => e.actor)).to.deep.equal(['me@example.com', 'me@example.com', 'other']);
    expect((await store.listHistory(API_KEY, { limit: 5 })).slice(0, 2).map((e) => e.id)).to.deep.equal([rb.entry.id, ra.entry.id]);
    expect(ra.before.overrides.map((o) => o.name)).to.deep.equal(['x']);
    expect(rb.before.overrides.map((o) => o.name)).to.deep.equal(['x', 'a']);
  });

  it('recomputes a change whose commit lost a race with another node', async () => {
    let raced = false;
    const r = await changes.act(API_KEY, 'me', async (state) => {
      if (!raced) {
        raced = true;
        // Another node commits between this read and this commit.
        const other = setOverride({ overrides: state.overrides, strategies: [] }, 'x', 1, undefined, ALL, undefined, { actor: 'other', at: Date.now() });
        const { commit } = await import('../../../src/variables/index.js');
        const { draft } = commit({ overrides: state.overrides, strategies: [] }, other.ops, other.meta);
        expect((await store.commit(API_KEY, other.ops, draft, { stateVersion: state.stateVersion }, { maxEntries: 100, maxAgeMs: 3_600_000 }, 'other')).ok).to.equal(true);
      }
      return setOverride({ overrides: state.overrides, strategies: [] }, 'y', 2, undefined, ALL, undefined, { actor: 'me', at: Date.now() });
    });
    expect(r.after.overrides.map((o) => o.name).sort()).to.deep.equal(['x', 'y']);
    expect((await store.listHistory(API_KEY, { limit: 5 })).map((e) => e.actor)).to.deep.equal(['me', 'other']);
  });

  it('computes from the state the store last saw, and when another node moved it on, answers as from a fresh read', async () => {
    const bounds = { maxEntries: 100, maxAgeMs: 3_600_000 };
    const s = (value: string) => ({ name: 'fast', vars: [{ name: 'a', type: 'integer', value }] });
    const other = async (a: { ops: Op[]; meta: EntryMeta }) => {
      const state = await store.readState(API_KEY);
      expect((await store.commit(API_KEY, a.ops, commit(state, a.ops, a.meta).draft, { stateVersion: state.stateVersion }, bounds, 'other')).ok).to.equal(true);
    };
    // One attempt on fresh reads: the attempt from the stale state must not use it up.
    const strict = make({ variables: { historyMaxEntries: 100, historyMaxAgeMs: 3_600_000, deviceRememberMs: 60_000, presenceTtlMs: 5000, heartbeatMs: 1000, maxCommitRetries: 1 } });
    try {
      await change(strict, 'a', 1);
      // A store whose cache still holds this, while another node commits on.
      const stale = await store.readState(API_KEY);
      let lastStates = 0;
      store.lastState = async () => {
        lastStates += 1;
        return stale;
      };
      const who = { actor: 'other', at: Date.now() };
      await other(setOverride({ overrides: stale.overrides, strategies: [] }, 'b', 2, undefined, ALL, undefined, who));
      await other(createStrategy(await store.readState(API_KEY), s('5'), who));
      // A change computed from the stale state: its commit is refused, it is computed again and gets in.
      const set = await change(strict, 'c', 3);
      expect(set.before.overrides.map((o) => o.name)).to.deep.equal(['a', 'b']);
      // Refused on the stale state (no override b there), done on the fresh one.
      const cleared = await strict.act(API_KEY, 'me', (state) => clearOverride({ overrides: state.overrides, strategies: [] }, 'b', ALL, { actor: 'me', at: Date.now() }));
      expect(cleared.entry.changes.map((c) => [c.name, c.before?.value, c.after])).to.deep.equal([['b', '2', null]]);
      // An editor who read version 1 of a strategy the stale state does not have.
      const edited = await strict.act(API_KEY, 'me', (state) => ({
        ...updateStrategy({ overrides: state.overrides, strategies: state.strategies }, s('7'), { actor: 'me', at: Date.now() }),
        strategyExpect: { name: 'fast', version: state.strategies.find((x) => x.name === 'fast')?.version ?? null, fromEditor: true },
      })).catch((err: unknown) => err);
      // (On the stale state the plan itself refuses: no strategy fast. A fresh read finds version 1.)
      expect(edited).to.not.be.instanceOf(Error);
      expect(await store.getStrategy(API_KEY, 'fast')).to.deep.include({ version: 2, vars: s('7').vars });
      // And a refusal on a state that is still the key's stands, after one check.
      const fresh = await store.readState(API_KEY);
      store.lastState = async () => fresh;
      const missing = await strict.act(API_KEY, 'me', (state) => clearOverride({ overrides: state.overrides, strategies: [] }, 'nope', ALL, { actor: 'me', at: Date.now() })).catch((err: unknown) => err);
      expect(missing).to.be.instanceOf(ObserverioError).with.property('code', 'not_found');
      expect(lastStates).to.be.greaterThan(0);
    } finally {
      await strict.stop();
    }
  });

  it('sends dashboards one overrides list per spell while changes keep coming, the first at once, and at once again after a quiet spell', async () => {
    const clock = install({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const lists = () => events.flatMap((e) => (e.type === 'overrides' ? [e.overrides.map((o) => `${o.name}=${o.value}`)] : []));
      // A short list: a spell of 25 ms. Ten spells with three changes each.
      for (let spell = 0; spell < 10; spell++) {
        for (let i = 0; i < 3; i++) await change(changes, `v${i}`, spell * 10 + i);
        if (spell === 0) expect(lists(), 'the first at once').to.have.length(1);
        await clock.tickAsync(overridesEventMs(3));
      }
      // The first, then the newest of each spell at its end: 11, not two per spell.
      expect(lists()).to.have.length(11);
      expect(lists().at(-1)).to.deep.equal(['v0=90', 'v1=91', 'v2=92']);
      // A quiet spell ends it; the next change's list goes out with its events, at once.
      await clock.tickAsync(overridesEventMs(3));
      expect(lists()).to.have.length(11);
      await change(changes, 'v0', 100);
      expect(lists()).to.have.length(12);
      expect(lists().at(-1)).to.deep.equal(['v0=100', 'v1=91', 'v2=92']);
      expect(events.at(-4)?.type).to.equal('overrides');
    } finally {
      clock.uninstall();
    }
  });

  it('turns a pubsub failure into a 503 after the change is committed', async () => {
    await changes.start();
    const failing = make({ pubsub: Object.assign(Object.create(pubsub) as LocalPubSub, { publish: () => Promise.reject(new Error('down')) }) });
    try {
      const err = await change(failing, 's', 'x').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ObserverioError).with.property('code', 'unavailable');
      expect((await store.listOverrides(API_KEY)).map((o) => o.value)).to.deep.equal(['x']);
    } finally {
      await failing.stop();
    }
  });
});
