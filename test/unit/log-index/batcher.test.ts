/**
 * LogBatcher against a real in-memory index that can be made slow (a gate) or failing, with fake
 * timers so "after flushDelayMs" and "retry with backoff" are exact, not slept.
 */
import { expect } from 'chai';
import { install } from '@sinonjs/fake-timers';
import { LogBatcher, type LogBatcherOptions } from '../../../src/log-index/batcher.js';
import { MemoryLogIndex } from '../../../src/log-index/memory-log-index.js';
import type { LogEntry } from '../../../src/model.js';
import { capturingLogger } from '../../contracts/pubsub.contract.js';

const KEY = 'BATCHERKEY01';

/** The memory index, plus control over when writes finish and whether they fail. */
class ControlledLogIndex extends MemoryLogIndex {
  /** Message of every accepted batch, in order. */
  readonly accepted: string[][] = [];
  attempts = 0;
  /** What the index reports as LogIndex.queuedWrites (writes waiting behind others); set by a test. */
  queuedWrites = 0;
  inFlight = 0;
  maxInFlight = 0;
  private failuresLeft = 0;
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  failNext(n: number): void {
    this.failuresLeft = n;
  }

  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    this.gate = { promise, open };
  }

  release(): void {
    const g = this.gate;
    this.gate = null;
    g?.open();
  }

  /** The last write's LogIndex.add `onQueued`, for a test to call as an index reporting queuedWrites would. */
  onQueued: (() => void) | undefined;

  override async add(entries: readonly LogEntry[], onQueued?: () => void): Promise<void> {
    this.onQueued = onQueued;
    this.attempts += 1;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) await this.gate.promise;
      if (this.failuresLeft > 0) {
        this.failuresLeft -= 1;
        throw new Error('index unavailable');
      }
      await super.add(entries);
      this.accepted.push(entries.map((e) => e.message));
    } finally {
      this.inFlight -= 1;
    }
  }

  async messages(): Promise<string[]> {
    const res = await this.search({ apiKey: KEY, limit: 1000 });
    return res.hits.map((h) => h.message).reverse();
  }
}

let n = 0;
function logs(...names: Array<string | number>): LogEntry[] {
  return names.map((name) => {
    n += 1;
    return { id: `${1000 + n}-t-${n}`, apiKey: KEY, deviceId: null, level: 'info', message: String(name), timestamp: null, receivedAt: 1000 + n, fields: {} };
  });
}

describe('LogBatcher', () => {
  let clock: ReturnType<typeof install>;
  let index: ControlledLogIndex;
  let batcher: LogBatcher | undefined;

  const make = (opts: Partial<LogBatcherOptions> = {}) => {
    batcher = new LogBatcher(index, { batchSize: 3, flushDelayMs: 50, maxPendingDocs: 1000, retryInitialMs: 100, retryMaxMs: 400, ...opts });
    return batcher;
  };
  /** Lets queued microtasks and promise chains run without moving the clock. */
  const settle = () => clock.tickAsync(0);

  beforeEach(() => {
    clock = install({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    index = new ControlledLogIndex();
    batcher = undefined;
  });

  afterEach(async () => {
    index.release();
    index.failNext(0);
    const stopping = batcher?.stop();
    await clock.runAllAsync();
    await stopping;
    clock.uninstall();
  });

  describe('append', () => {
    it('returns without writing, even when a batch is full', async () => {
      const b = make();
      b.append(logs('a', 'b', 'c', 'd'));
      expect(index.attempts).to.equal(0);
      await settle();
      expect(index.accepted).to.deep.equal([['a', 'b', 'c']]);
    });
  });

  describe('flush triggers', () => {
    it('writes a full batch at once, batchSize documents per write', async () => {
      const b = make();
      b.append(logs('a', 'b'));
      await settle();
      expect(index.attempts).to.equal(0);
      b.append(logs('c', 'd', 'e', 'f', 'g'));
      await settle();
      expect(index.accepted).to.deep.equal([
        ['a', 'b', 'c'],
        ['d', 'e', 'f'],
      ]);
      await clock.tickAsync(50);
      expect(index.accepted.at(-1)).to.deep.equal(['g']);
    });

    it('writes a partial batch flushDelayMs after its first document, not after the last', async () => {
      const b = make({ batchSize: 100 });
      b.append(logs('a'));
      await clock.tickAsync(30);
      b.append(logs('b'));
      await clock.tickAsync(19);
      expect(index.attempts).to.equal(0);
      await clock.tickAsync(1);
      expect(index.accepted).to.deep.equal([['a', 'b']]);
    });
  });

  describe('one write in flight', () => {
    it('accumulates appends while a write is in flight and writes them next, in order', async () => {
      const b = make({ batchSize: 2 });
      index.hold();
      b.append(logs(1, 2));
      await settle();
      expect(index.inFlight).to.equal(1);
      b.append(logs(3));
      b.append(logs(4));
      b.append(logs(5));
      await clock.tickAsync(500);
      expect(index.attempts).to.equal(1);
      index.release();
      await settle();
      await clock.tickAsync(50);
      expect(index.accepted).to.deep.equal([
        ['1', '2'],
        ['3', '4'],
        ['5'],
      ]);
      expect(index.maxInFlight).to.equal(1);
    });
  });

  describe('writes the index reports queued', () => {
    it('sends past the window while the index reports its writes queued, and stops when it reports them processing', async () => {
      const b = make({ batchSize: 2, maxInFlightBatches: 1 });
      index.hold();
      b.append(logs(1, 2));
      await settle();
      expect(index.attempts).to.equal(1);
      // The one write is being processed: the window is full, the next batch waits.
      b.append(logs(3, 4));
      await clock.tickAsync(100);
      expect(index.attempts).to.equal(1);
      // Reported queued: it will be merged with whatever joins it, so the next goes out at once; that
      // one counts as being processed until the index says otherwise.
      index.queuedWrites = 1;
      b.append(logs(5, 6));
      await settle();
      expect(index.attempts).to.equal(2);
      await clock.tickAsync(100);
      expect(index.attempts).to.equal(2);
      index.queuedWrites = 2;
      b.append(logs(7, 8));
      await settle();
      expect(index.attempts).to.equal(3);
      expect(index.inFlight).to.equal(3);
      index.queuedWrites = 0;
      index.release();
      await clock.tickAsync(100);
      expect(index.accepted).to.deep.equal([
        ['1', '2'],
        ['3', '4'],
        ['5', '6'],
        ['7', '8'],
      ]);
      expect(await index.messages()).to.deep.equal(['1', '2', '3', '4', '5', '6', '7', '8']);
    });

    it('sends the next batch when the index says a write is queued, without waiting for another append', async () => {
      const b = make({ batchSize: 2, maxInFlightBatches: 1 });
      index.hold();
      b.append(logs(1, 2, 3, 4));
      await clock.tickAsync(100);
      expect(index.attempts).to.equal(1);
      index.queuedWrites = 1;
      await clock.tickAsync(100);
      expect(index.attempts).to.equal(1);
      index.onQueued?.();
      await settle();
      expect(index.attempts).to.equal(2);
      index.queuedWrites = 0;
      index.release();
      await clock.tickAsync(100);
      expect(await index.messages()).to.deep.equal(['1', '2', '3', '4']);
    });

    it('keeps at most maxPendingDocs logs in flight however many writes are queued', async () => {
      const b = make({ batchSize: 2, maxInFlightBatches: 1, maxPendingDocs: 4 });
      index.hold();
      index.queuedWrites = 100;
      b.append(logs(1, 2, 3, 4));
      await settle();
      expect(index.attempts).to.equal(2);
      b.append(logs(5, 6));
      await clock.tickAsync(100);
      expect(index.attempts).to.equal(2);
      expect(b.stats()).to.include({ pending: 6, dropped: 0 });
      index.queuedWrites = 0;
      index.release();
      await clock.tickAsync(100);
      expect(index.accepted).to.deep.equal([
        ['1', '2'],
        ['3', '4'],
        ['5', '6'],
      ]);
    });

    it('while writes fail, probes one at a time whatever the index reports queued', async () => {
      const b = make({ batchSize: 2, maxInFlightBatches: 4, retryInitialMs: 100 });
      index.failNext(1);
      b.append(logs(1, 2));
      await settle();
      expect(index.attempts).to.equal(1);
      index.hold();
      index.queuedWrites = 3;
      b.append(logs(3, 4, 5, 6));
      await clock.tickAsync(100); // the retry: one write, the probe
      expect(index.inFlight).to.equal(1);
      index.queuedWrites = 0;
      index.release();
      await clock.tickAsync(100);
      expect(await index.messages()).to.deep.equal(['1', '2', '3', '4', '5', '6']);
    });
  });

  describe('failures', () => {
    it('retries with backoff, keeping every document and their order', async () => {
      const cap = capturingLogger();
      const b = make({ batchSize: 10, flushDelayMs: 10, logger: cap.logger });
      index.failNext(2);
      b.append(logs(1, 2, 3));
      await clock.tickAsync(10);
      expect(index.attempts).to.equal(1);
      b.append(logs(4, 5));
      await clock.tickAsync(99);
      expect(index.attempts).to.equal(1);
      await clock.tickAsync(1); // first retry after 100 ms, fails again
      expect(index.attempts).to.equal(2);
      await clock.tickAsync(199);
      expect(index.attempts).to.equal(2);
      await clock.tickAsync(1); // second retry after 200 ms
      expect(index.accepted).to.deep.equal([['1', '2', '3', '4', '5']]);
      expect(await index.messages()).to.deep.equal(['1', '2', '3', '4', '5']);
      expect(b.stats()).to.include({ written: 5, failures: 2, batches: 1, dropped: 0, pending: 0 });
      expect(cap.records.filter((r) => r.msg === 'log index write failed; retrying')).to.have.length(2);
    });

    it('caps the backoff at retryMaxMs and resets it after a success', async () => {
      const b = make({ batchSize: 1 });
      index.failNext(4);
      b.append(logs('x'));
      await settle(); // attempt 1 fails; waits 100, 200, 400, 400 (capped)
      for (const wait of [100, 200, 400, 400]) {
        const before = index.attempts;
        await clock.tickAsync(wait - 1);
        expect(index.attempts, `before ${wait}`).to.equal(before);
        await clock.tickAsync(1);
        expect(index.attempts, `after ${wait}`).to.equal(before + 1);
      }
      expect(index.accepted).to.deep.equal([['x']]);
      index.failNext(1);
      b.append(logs('y'));
      await settle();
      await clock.tickAsync(100);
      expect(index.accepted).to.deep.equal([['x'], ['y']]);
    });
  });

  describe('maxPendingDocs', () => {
    it('drops the oldest waiting documents beyond the bound and counts them', async () => {
      const b = make({ batchSize: 100, maxPendingDocs: 5 });
      b.append(logs(1, 2, 3, 4, 5, 6, 7, 8));
      expect(b.stats()).to.include({ dropped: 3, pending: 5 });
      await b.flush();
      expect(await index.messages()).to.deep.equal(['4', '5', '6', '7', '8']);
    });

    it('drops the oldest across a failed write, keeping the newest in order', async () => {
      const cap = capturingLogger();
      const b = make({ batchSize: 3, maxPendingDocs: 5, logger: cap.logger });
      index.hold();
      b.append(logs(1, 2, 3));
      await settle();
      b.append(logs(4, 5, 6, 7, 8, 9, 10)); // 7 waiting: 4 and 5 go
      expect(b.stats()).to.include({ dropped: 2, pending: 8 });
      index.failNext(1);
      index.release();
      await settle(); // 1,2,3 come back to the front: 8 waiting, 1,2,3 go
      expect(b.stats()).to.include({ dropped: 5, pending: 5, failures: 1 });
      const flushed = b.flush();
      await clock.tickAsync(100); // the retry
      await flushed;
      expect(await index.messages()).to.deep.equal(['6', '7', '8', '9', '10']);
      expect(cap.records.filter((r) => r.msg === 'log index is behind; dropping the oldest pending logs').length).to.be.at.least(1);
    });
  });

  describe('flush()', () => {
    it('writes what is pending without waiting for the delay, and resolves once accepted', async () => {
      const b = make({ batchSize: 100, flushDelayMs: 60_000 });
      b.append(logs('a', 'b'));
      index.hold();
      let done = false;
      const flushed = b.flush().then(() => (done = true));
      await settle();
      expect(index.attempts).to.equal(1);
      expect(done).to.equal(false);
      index.release();
      await flushed;
      expect(index.accepted).to.deep.equal([['a', 'b']]);
    });

    it('waits through retries', async () => {
      const b = make({ batchSize: 100 });
      index.failNext(1);
      b.append(logs('a'));
      let done = false;
      const flushed = b.flush().then(() => (done = true));
      await settle();
      expect(done).to.equal(false);
      await clock.tickAsync(100);
      await flushed;
      expect(index.accepted).to.deep.equal([['a']]);
    });

    it('resolves at once with nothing pending', async () => {
      await make().flush();
      expect(index.attempts).to.equal(0);
    });

    it('does not wait for logs appended after it was called', async () => {
      const b = make({ batchSize: 2, flushDelayMs: 60_000 });
      index.hold();
      b.append(logs('a'));
      const flushed = b.flush();
      b.append(logs('b', 'c', 'd'));
      await settle();
      expect(index.inFlight).to.equal(1);
      // Let the first batch through but hold the next one.
      index.release();
      index.hold();
      await flushed;
      // 'a' went with 'b' (the first batch); the second batch, held, still has 'c','d'.
      expect(index.accepted).to.deep.equal([['a', 'b']]);
      expect(b.stats().pending).to.equal(2);
    });
  });

  describe('stop()', () => {
    it('drains what is pending, then refuses and counts further logs', async () => {
      const b = make({ batchSize: 100, flushDelayMs: 60_000 });
      b.append(logs('a', 'b'));
      await b.stop();
      expect(index.accepted).to.deep.equal([['a', 'b']]);
      b.append(logs('late'));
      await clock.tickAsync(60_000);
      expect(b.stats()).to.include({ written: 2, dropped: 1 });
      expect(index.attempts).to.equal(1);
    });

    it('gives up after stopTimeoutMs when the index keeps failing, counting what it drops', async () => {
      const cap = capturingLogger();
      const b = make({ batchSize: 100, stopTimeoutMs: 1000, logger: cap.logger });
      index.failNext(1_000_000);
      b.append(logs('a', 'b', 'c'));
      const stopped = b.stop();
      await clock.tickAsync(1000);
      await stopped;
      expect(b.stats()).to.include({ written: 0, dropped: 3, pending: 0 });
      const attempts = index.attempts;
      await clock.tickAsync(10_000);
      expect(index.attempts).to.equal(attempts);
      expect(cap.records.some((r) => r.level === 50 && r.lost === 3)).to.equal(true);
    });
  });

  describe('stats() and onBatch', () => {
    it('reports size and latency of each accepted batch', async () => {
      const seen: Array<[number, number]> = [];
      const b = make({ batchSize: 2, onBatch: (size, ms) => seen.push([size, ms]) });
      index.hold();
      b.append(logs(1, 2));
      await settle();
      await clock.tickAsync(30);
      index.release();
      await settle();
      expect(seen).to.deep.equal([[2, 30]]);
      expect(b.stats()).to.deep.equal({
        written: 2,
        dropped: 0,
        droppedByReason: { spool_full: 0, stopped: 0, stop_timeout: 0 },
        rejected: 0,
        rejectedByReason: {},
        batches: 1,
        failures: 0,
        pending: 0,
        lastBatchSize: 2,
        lastBatchMs: 30,
        retrying: false,
        lastError: null,
        spool: { kind: 'memory', dir: null, files: 0, bytes: 0 },
      });
    });

    it('logs a throwing onBatch and keeps writing', async () => {
      const cap = capturingLogger();
      const b = make({
        batchSize: 1,
        logger: cap.logger,
        onBatch: () => {
          throw new Error('metrics bug');
        },
      });
      b.append(logs(1, 2));
      await b.flush();
      expect(index.accepted).to.deep.equal([['1'], ['2']]);
      expect(cap.records.filter((r) => r.msg === 'log batcher onBatch callback threw')).to.have.length(2);
    });
  });

  describe('options', () => {
    it('refuses nonsensical sizes', () => {
      expect(() => make({ batchSize: 0 })).to.throw(RangeError);
      expect(() => make({ maxPendingDocs: -1 })).to.throw(RangeError);
      expect(() => make({ flushDelayMs: Number.NaN })).to.throw(RangeError);
      batcher = undefined;
    });
  });
});
