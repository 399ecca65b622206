/** The gateway's retry queue: order, collapsing, retry on connection errors only, the bound, and its default size. */
import { expect } from 'chai';
import { pino } from 'pino';
import { loadConfig } from '../../../src/config.js';
import { ObserverioError } from '../../../src/errors.js';
import { Gateway, varBytes } from '../../../src/gateway/gateway.js';
import { isConnectionError, RetryQueue } from '../../../src/gateway/retry-queue.js';
import { Metrics } from '../../../src/metrics.js';
import type { Var } from '../../../src/model.js';
import type { PubSub } from '../../../src/pubsub/pubsub.js';
import type { Store } from '../../../src/store/store.js';
import { eventually } from '../../helpers/eventually.js';

const v = (name: string, value: string): Var => ({ name, type: 'string', value });
const batch = (...vars: Var[]) => new Map(vars.map((x) => [x.name, x]));
const down = () => Object.assign(new Error('Reached the max retries per request limit (which is 2).'), { name: 'MaxRetriesPerRequestError' });

/** A store write that fails while `up` is false, recording what landed in order. */
class FlakyStore {
  up = true;
  landed: string[] = [];
  attempts = 0;
  failWith: () => Error = down;
  async setVars(key: string, vars: readonly Var[]): Promise<void> {
    this.attempts += 1;
    await Promise.resolve();
    if (!this.up) throw this.failWith();
    for (const x of vars) this.landed.push(`${key}/${x.name}=${x.value}`);
  }
}

function queue(store: FlakyStore, over: Partial<{ maxItems: number; maxBytes: number }> = {}) {
  return new RetryQueue<Var>({
    write: (k, vars) => store.setVars(k, vars),
    id: (x) => x.name,
    bytes: varBytes,
    maxItems: over.maxItems ?? 1000,
    maxBytes: over.maxBytes ?? 1 << 20,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
  });
}

describe('gateway retry queue', () => {
  it('classifies connection-class errors as retryable and programming errors as not', () => {
    expect(isConnectionError(down())).to.equal(true);
    expect(isConnectionError(new Error('Connection is closed.'))).to.equal(true);
    expect(isConnectionError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).to.equal(true);
    expect(isConnectionError(new Error('LOADING Redis is loading the dataset in memory'))).to.equal(true);
    expect(isConnectionError(new ObserverioError('unavailable', 'the store backend is restarting'))).to.equal(true);
    expect(isConnectionError(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).to.equal(false);
    expect(isConnectionError(new TypeError("Cannot read properties of undefined (reading 'name')"))).to.equal(false);
    expect(isConnectionError(new ObserverioError('bad_request'))).to.equal(false);
    expect(isConnectionError('a string')).to.equal(false);
  });

  it('keeps what failed, collapses per variable in first-seen order, and lands nothing older after something newer', async () => {
    const store = new FlakyStore();
    const q = queue(store);
    store.up = false;
    q.submit('k', batch(v('a', '1'), v('b', '1')));
    await eventually(() => expect(q.items).to.equal(2));
    q.submit('k', batch(v('c', '1'), v('a', '2')));
    q.submit('k', batch(v('b', '3')));
    await eventually(() => expect(store.attempts).to.be.greaterThan(2));
    expect(store.landed).to.deep.equal([]);
    expect(q.items).to.equal(3);
    store.up = true;
    await eventually(() => expect(q.items).to.equal(0));
    await q.flush();
    expect(store.landed).to.deep.equal(['k/a=2', 'k/b=3', 'k/c=1']);
  });

  it('writes one batch per key at a time, so a later batch never overtakes an earlier one', async () => {
    const store = new FlakyStore();
    const q = queue(store);
    q.submit('k', batch(v('a', '1')));
    q.submit('k', batch(v('a', '2')));
    q.submit('k', batch(v('a', '3'), v('b', '1')));
    q.submit('j', batch(v('a', 'x')));
    await q.flush();
    expect(store.landed).to.deep.equal(['k/a=1', 'j/a=x', 'k/a=3', 'k/b=1']);
    expect(q.items).to.equal(0);
  });

  it('drops a batch that fails with a programming error, once, and carries on with the next', async () => {
    const store = new FlakyStore();
    const dropped: number[] = [];
    const q = new RetryQueue<Var>({ write: (k, vars) => store.setVars(k, vars), id: (x) => x.name, bytes: varBytes, maxItems: 10, maxBytes: 1 << 20, initialBackoffMs: 5, maxBackoffMs: 5, onDrop: (_k, n) => dropped.push(n) });
    store.up = false;
    store.failWith = () => new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    q.submit('k', batch(v('a', '1'), v('b', '1')));
    await q.flush();
    expect(dropped).to.deep.equal([2]);
    expect(store.attempts).to.equal(1);
    store.up = true;
    q.submit('k', batch(v('c', '1')));
    await q.flush();
    expect(store.landed).to.deep.equal(['k/c=1']);
  });

  it('refuses, past the bound, only what would grow the queue of a waiting key', async () => {
    const store = new FlakyStore();
    const q = queue(store, { maxItems: 3 });
    store.up = false;
    q.submit('k', batch(v('a', '1'), v('b', '1'), v('c', '1')));
    await eventually(() => expect(q.items).to.equal(3));
    expect(q.wouldGrow('k', [v('d', '1')])).to.equal(true);
    expect(q.wouldGrow('k', [v('a', '2'), v('c', '2')]), 'a replacement adds nothing').to.equal(false);
    expect(q.wouldGrow('other', [v('d', '1')]), 'a key that is not waiting goes to the store').to.equal(false);
    store.up = true;
    await eventually(() => expect(q.items).to.equal(0));
    expect(q.wouldGrow('k', [v('d', '1')])).to.equal(false);
  });

  it('the default bound holds a 30 s outage of 100 distinct changes/s (the fault test rate), collapsed or not', async () => {
    const cfg = loadConfig({ env: {} }).gateway;
    const store = new FlakyStore();
    store.up = false;
    const q = new RetryQueue<Var>({ write: (k, vars) => store.setVars(k, vars), id: (x) => x.name, bytes: varBytes, maxItems: cfg.retryMaxVars, maxBytes: cfg.retryMaxBytes, initialBackoffMs: 60_000, maxBackoffMs: 60_000 });
    let refused = 0;
    q.submit('k', batch(v('n0', '0')));
    await eventually(() => expect(q.items).to.equal(1));
    // 30 s at 100 lines/s, each line a fresh variable with a 64-character value plus a cycled one.
    for (let i = 1; i < 3000; i++) {
      const line = [v(`n${i}`, String(i).padStart(64, '0')), v(`c${i % 5}`, String(i))];
      if (q.wouldGrow('k', line)) refused += 1;
      else q.submit('k', batch(...line));
    }
    expect(refused).to.equal(0);
    expect(q.items).to.be.at.least(3000);
    expect(q.items).to.be.below(cfg.retryMaxVars);
    expect(q.bytes).to.be.below(cfg.retryMaxBytes);
    q.close();
  });
});

describe('gateway: vars during a store outage', () => {
  it('accepts until the bound, then refuses and counts the refusals; all accepted land when the store returns', async () => {
    const store = new FlakyStore();
    const metrics = new Metrics();
    const gw = new Gateway({
      store: store as unknown as Store,
      pubsub: { publish: async () => 0 } as unknown as PubSub,
      logs: { append: () => undefined },
      metrics,
      logger: pino({ level: 'silent' }),
      nodeId: 'n',
      retry: { retryMaxVars: 4, retryMaxBytes: 1 << 20, retryInitialMs: 5, retryMaxMs: 10 },
    });
    store.up = false;
    const answers: boolean[] = [];
    for (let i = 0; i < 3; i++) answers.push(gw.vars('k', null, [v(`a${i}`, '1'), v(`b${i}`, '1')]));
    await eventually(() => expect(gw.retryQueued().vars).to.equal(6));
    for (let i = 3; i < 6; i++) answers.push(gw.vars('k', null, [v(`a${i}`, '1')]));
    answers.push(gw.vars('k', null, [v('a0', '2')]));
    expect(answers).to.deep.equal([true, true, true, false, false, false, true]);
    // The accepted replacement joins the queue on the gateway's next tick: only then may the store
    // come back, or the queued batch could land before it (still newest last, but not in one write).
    await new Promise((r) => setImmediate(r));
    expect((await metrics.registry.getSingleMetric('observerio_gateway_vars_refused_total')?.get())?.values[0]?.value).to.equal(3);
    store.up = true;
    await eventually(() => expect(gw.retryQueued().vars).to.equal(0));
    await gw.flush();
    expect(store.landed).to.deep.equal(['k/a0=2', 'k/b0=1', 'k/a1=1', 'k/b1=1', 'k/a2=1', 'k/b2=1']);
    metrics.close();
  });
});
