/**
 * The batcher's adaptive batch size: batchSize at low rates, up to maxBatchSize only while a backlog
 * persists, batchSize again once it is gone. The index is a fake with Meilisearch's shape of cost
 * (writes processed one after another, a fixed cost per write plus a cost per document), on fake
 * timers, so rates and backlogs are exact.
 */
import { expect } from 'chai';
import { install } from '@sinonjs/fake-timers';
import { LogBatcher, type LogBatcherOptions } from '../../../src/log-index/batcher.js';
import { MemoryLogIndex } from '../../../src/log-index/memory-log-index.js';
import type { LogEntry } from '../../../src/model.js';

const KEY = 'ADAPTKEY0001';

/** Writes one at a time, each 20 ms + 0.05 ms per document: ~11,000 docs/s in 500s, ~16,700/s in 2,000s. */
class SerialCostIndex extends MemoryLogIndex {
  /** Size and start time (fake ms) of every write, in order. */
  readonly writes: Array<{ size: number; at: number }> = [];
  readonly order: number[] = [];
  private chain: Promise<void> = Promise.resolve();

  override add(entries: readonly LogEntry[]): Promise<void> {
    this.writes.push({ size: entries.length, at: Date.now() });
    const run = this.chain.then(
      () =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            for (const e of entries) this.order.push(Number(e.message));
            resolve();
          }, 20 + entries.length * 0.05),
        ),
    );
    this.chain = run;
    return run;
  }
}

let seq = 0;
function logs(count: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = 0; i < count; i++) {
    seq += 1;
    out.push({ id: `${seq}-a`, apiKey: KEY, deviceId: null, level: 'info', message: String(seq), timestamp: null, receivedAt: seq, fields: {} });
  }
  return out;
}

describe('LogBatcher adaptive batch size', () => {
  let clock: ReturnType<typeof install>;
  const batchers: LogBatcher[] = [];

  const make = (index: SerialCostIndex, opts: Partial<LogBatcherOptions> = {}) => {
    const b = new LogBatcher(index, { batchSize: 500, maxBatchSize: 2000, flushDelayMs: 50, maxPendingDocs: 1_000_000, maxInFlightBatches: 2, ...opts });
    batchers.push(b);
    return b;
  };
  /** Offers `perSecond` logs a second for `ms`, in 10 ms steps, as connections do. */
  const offer = async (b: LogBatcher, perSecond: number, ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      b.append(logs(perSecond / 100));
      await clock.tickAsync(10);
    }
  };

  beforeEach(() => {
    clock = install({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    seq = 0;
  });

  afterEach(async () => {
    const stopping = Promise.all(batchers.splice(0).map((b) => b.stop()));
    await clock.runAllAsync();
    await stopping;
    clock.uninstall();
  });

  it('at 2,000 logs/s writes exactly what it writes with no maxBatchSize, never above batchSize, then grows under a backlog', async () => {
    const adaptive = new SerialCostIndex();
    const fixed = new SerialCostIndex();
    const a = make(adaptive);
    const f = make(fixed, { maxBatchSize: undefined });
    for (let t = 0; t < 2000; t += 10) {
      a.append(logs(20));
      seq -= 20;
      f.append(logs(20));
      await clock.tickAsync(10);
    }
    await clock.tickAsync(200);
    expect(adaptive.writes.map((w) => w.size)).to.deep.equal(fixed.writes.map((w) => w.size));
    expect(Math.max(...adaptive.writes.map((w) => w.size))).to.be.at.most(500);
    expect(adaptive.order.length).to.equal(4000);

    // The same batcher, offered more than the index takes in 500s, writes bigger batches.
    await offer(a, 20_000, 1500);
    expect(Math.max(...adaptive.writes.map((w) => w.size))).to.equal(2000);
  });

  it('grows to maxBatchSize under a sustained backlog, never above it, keeping every log in order', async () => {
    const index = new SerialCostIndex();
    const b = make(index);
    await offer(b, 20_000, 2000);
    const sizes = index.writes.map((w) => w.size);
    expect(Math.max(...sizes)).to.equal(2000);
    // Once grown, the backlog is written at the cap: most of the second half's writes are full.
    const late = index.writes.filter((w) => w.at >= 1000).map((w) => w.size);
    expect(late.filter((s) => s === 2000).length).to.be.at.least(late.length - 1);
    const flushed = b.flush();
    await clock.runAllAsync();
    await flushed;
    expect(index.order).to.deep.equal(Array.from({ length: 40_000 }, (_, i) => i + 1));
  });

  it('writes batchSize again once the backlog is gone', async () => {
    const index = new SerialCostIndex();
    const b = make(index);
    await offer(b, 20_000, 1000);
    expect(Math.max(...index.writes.map((w) => w.size))).to.equal(2000);
    // A low rate after the burst: the backlog drains, then every write is batchSize or less again.
    await offer(b, 1000, 4000);
    const drainedAt = index.writes.findLastIndex((w) => w.size > 500);
    expect(drainedAt).to.be.greaterThan(-1);
    const after = index.writes.slice(drainedAt + 1);
    expect(after.length).to.be.greaterThan(20);
    expect(Math.max(...after.map((w) => w.size))).to.be.at.most(500);
    // The last big write left in the first second or so after the burst, not at the end.
    expect(index.writes[drainedAt]!.at).to.be.below(3000);
  });

  it('does not grow for a burst the window absorbs within a flush delay', async () => {
    const index = new SerialCostIndex();
    const b = make(index);
    // 1,600 at once: two 500s go out at once; the 600 left wait for the window, but under 50 ms.
    b.append(logs(1600));
    await clock.tickAsync(1000);
    expect(index.writes.map((w) => w.size)).to.deep.equal([500, 500, 500, 100]);
  });

  it('refuses a maxBatchSize below batchSize or not a positive integer', () => {
    const index = new SerialCostIndex();
    for (const maxBatchSize of [499, 0, -1, 1.5, Number.NaN]) expect(() => make(index, { maxBatchSize }), String(maxBatchSize)).to.throw(RangeError, /maxBatchSize/);
  });
});
