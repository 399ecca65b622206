/**
 * LogBatcher when the index refuses or fails (issue 10): a refused batch is bisected so the good logs
 * land and the bad one is reported; an unavailable index is retried with backoff from the spool,
 * oldest first, bounded and counted; the disk spool survives a restart. A real in-memory index with
 * switches, fake timers so backoff is exact.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { install } from '@sinonjs/fake-timers';
import { LogBatcher, type LogBatcherOptions } from '../../../src/log-index/batcher.js';
import { LogWriteRefused } from '../../../src/log-index/log-index.js';
import { MemoryLogIndex } from '../../../src/log-index/memory-log-index.js';
import type { LogEntry } from '../../../src/model.js';
import { capturingLogger } from '../../contracts/pubsub.contract.js';
import { tempDir } from '../../helpers/processes.js';

const KEY = 'BATCHFAULTS1';

/** The memory index, refusing any batch holding a message starting with 'poison', or down. */
class FaultyLogIndex extends MemoryLogIndex {
  readonly attempts: string[][] = [];
  readonly accepted: string[][] = [];
  down = false;
  inFlight = 0;
  maxInFlight = 0;
  private gate: { promise: Promise<void>; open: () => void } | null = null;

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

  override async add(entries: readonly LogEntry[]): Promise<void> {
    const msgs = entries.map((e) => e.message);
    this.attempts.push(msgs);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) await this.gate.promise;
      if (this.down) throw new Error('connect ECONNREFUSED');
      if (msgs.some((m) => m.startsWith('poison'))) throw new LogWriteRefused('invalid_document', 'the batch holds a document this index refuses');
      await super.add(entries);
      this.accepted.push(msgs);
    } finally {
      this.inFlight -= 1;
    }
  }

  async messages(): Promise<string[]> {
    return (await this.search({ apiKey: KEY, limit: 1000 })).hits.map((h) => h.message).reverse();
  }
}

let n = 0;
function logs(...names: Array<string | number>): LogEntry[] {
  return names.map((name) => {
    n += 1;
    return { id: `${1000 + n}-t-${n}`, apiKey: KEY, deviceId: 'dev', level: 'info', message: String(name), timestamp: null, receivedAt: 1000 + n, fields: {} };
  });
}

describe('LogBatcher under faults', () => {
  let clock: ReturnType<typeof install>;
  let index: FaultyLogIndex;
  const batchers: LogBatcher[] = [];
  const dirs: Array<{ remove(): void }> = [];

  const make = (opts: Partial<LogBatcherOptions> = {}, on: FaultyLogIndex = index) => {
    const b = new LogBatcher(on, { batchSize: 100, flushDelayMs: 10, maxPendingDocs: 1000, retryInitialMs: 100, retryMaxMs: 400, ...opts });
    batchers.push(b);
    return b;
  };
  const spoolDir = () => {
    const d = tempDir('observerio-spool-test-');
    dirs.push(d);
    return join(d.path, 'spool');
  };
  const segments = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.ndjson')) : []);

  beforeEach(() => {
    clock = install({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    index = new FaultyLogIndex();
  });

  afterEach(async () => {
    index.release();
    index.down = false;
    const stopping = Promise.all(batchers.splice(0).map((b) => b.stop()));
    await clock.runAllAsync();
    await stopping;
    clock.uninstall();
    for (const d of dirs.splice(0)) d.remove();
  });

  describe('a refused batch', () => {
    it('is bisected: every good log is stored, the refused one reported once with its reason', async () => {
      const cap = capturingLogger();
      const rejected: Array<[string, string]> = [];
      const b = make({ logger: cap.logger, onRejected: (e, reason) => rejected.push([e.message, reason]) });
      b.append(logs(1, 2, 3, 4, 5, 'poison', 7, 8));
      await b.flush();
      expect(await index.messages()).to.deep.equal(['1', '2', '3', '4', '5', '7', '8']);
      expect(rejected).to.deep.equal([['poison', 'invalid_document']]);
      // 8 → 4+4 → 2+2 → 1+1: one refused write per level below the first, plus the good halves.
      expect(index.attempts.length).to.equal(7);
      expect(b.stats()).to.include({ written: 7, rejected: 1, dropped: 0, pending: 0, retrying: false });
      expect(b.stats().rejectedByReason).to.deep.equal({ invalid_document: 1 });
      const rec = cap.records.find((r) => r.msg === 'log entry refused by the log index; not indexed');
      expect(rec).to.include({ apiKey: KEY, reason: 'invalid_document', deviceId: 'dev' });
    });

    it('with several bad logs reports each of them and stores all the rest, without backoff', async () => {
      const rejected: string[] = [];
      const b = make({ onRejected: (e) => rejected.push(e.message) });
      b.append(logs('poison-a', 2, 3, 'poison-b', 5, 6, 7, 'poison-c', 9));
      const flushed = b.flush();
      await clock.tickAsync(0);
      await flushed;
      expect(await index.messages()).to.deep.equal(['2', '3', '5', '6', '7', '9']);
      expect(rejected).to.deep.equal(['poison-a', 'poison-b', 'poison-c']);
    });

    it('goes ahead of logs appended meanwhile', async () => {
      const b = make({ batchSize: 4 });
      index.hold();
      b.append(logs(1, 'poison', 3, 4));
      await clock.tickAsync(0);
      b.append(logs(5, 6, 7, 8));
      index.release();
      await b.flush();
      expect(index.accepted.flat()).to.deep.equal(['1', '3', '4', '5', '6', '7', '8']);
    });

    it('keeps going when onRejected throws', async () => {
      const cap = capturingLogger();
      const b = make({ logger: cap.logger, onRejected: () => { throw new Error('hook bug'); } });
      b.append(logs('poison', 2));
      await b.flush();
      expect(await index.messages()).to.deep.equal(['2']);
      expect(cap.records.some((r) => r.msg === 'log batcher onRejected callback threw')).to.equal(true);
    });
  });

  describe('an unavailable index', () => {
    it('is retried with backoff, one write at a time, spooled logs before newer ones; full window after', async () => {
      const b = make({ batchSize: 2, maxInFlightBatches: 3 });
      index.down = true;
      b.append(logs(1, 2, 3, 4, 5, 6));
      await clock.tickAsync(0);
      expect(index.attempts.length).to.equal(3); // the window was open: three writes, all failed
      expect(b.stats()).to.include({ retrying: true, pending: 6 });
      expect(b.stats().lastError).to.match(/ECONNREFUSED/);
      const before = index.attempts.length;
      index.maxInFlight = 0;
      await clock.tickAsync(100 + 200 + 400);
      expect(index.attempts.length - before).to.equal(3);
      expect(index.maxInFlight).to.equal(1);
      b.append(logs(7, 8));
      index.down = false;
      index.hold();
      await clock.tickAsync(400);
      index.release();
      await b.flush();
      expect(index.accepted.flat()).to.deep.equal(['1', '2', '3', '4', '5', '6', '7', '8']);
      expect(b.stats()).to.include({ written: 8, dropped: 0, retrying: false });
      index.hold();
      index.maxInFlight = 0;
      b.append(logs(9, 10, 11, 12, 13, 14, 15, 16));
      await clock.tickAsync(0);
      expect(index.maxInFlight).to.equal(3);
    });

    it('drops the oldest past maxPendingDocs, counted as spool_full', async () => {
      const b = make({ batchSize: 3, maxPendingDocs: 5 });
      index.down = true;
      b.append(logs(1, 2, 3));
      await clock.tickAsync(0);
      b.append(logs(4, 5, 6, 7, 8));
      expect(b.stats().droppedByReason).to.deep.equal({ spool_full: 3, stopped: 0, stop_timeout: 0 });
      index.down = false;
      await clock.tickAsync(100);
      await b.flush();
      expect(await index.messages()).to.deep.equal(['4', '5', '6', '7', '8']);
    });
  });

  describe('the disk spool', () => {
    it('holds the logs while the index is down, and a new batcher on it delivers them first', async () => {
      const dir = spoolDir();
      const cap = capturingLogger();
      const first = make({ spoolDir: dir, stopTimeoutMs: 1000, logger: cap.logger });
      index.down = true;
      first.append(logs('a', 'b', 'c'));
      await clock.tickAsync(10);
      expect(segments(dir).length).to.be.greaterThan(0);
      first.append(logs('d'));
      await clock.tickAsync(10); // written to disk too, though not sent yet
      const stopping = first.stop();
      await clock.tickAsync(1000);
      await stopping;
      expect(first.stats()).to.include({ dropped: 0 });
      expect(cap.records.some((r) => r.msg === 'log index did not accept pending logs before the stop timeout; kept in the spool for the next start' && r.kept === 4)).to.equal(true);

      const healthy = new FaultyLogIndex();
      const second = make({ spoolDir: dir }, healthy);
      expect(second.stats().pending).to.equal(4);
      second.append(logs('e'));
      await second.flush();
      expect(healthy.accepted.flat()).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
      expect(segments(dir)).to.deep.equal([]);
      expect(second.stats().spool).to.deep.include({ kind: 'disk', files: 0, bytes: 0 });
    });

    it('writes nothing while the index is healthy', async () => {
      const dir = spoolDir();
      const b = make({ spoolDir: dir });
      b.append(logs(1, 2, 3));
      await b.flush();
      expect(readdirSync(dir)).to.deep.equal([]);
    });

    it('drops the oldest past spoolMaxBytes, counted as spool_full', async () => {
      const dir = spoolDir();
      const b = make({ spoolDir: dir, batchSize: 1000, spoolMaxBytes: 2000 });
      index.down = true;
      b.append(logs(...Array.from({ length: 20 }, (_, i) => `log ${i} ${'x'.repeat(100)}`)));
      await clock.tickAsync(10);
      const s = b.stats();
      expect(s.droppedByReason.spool_full).to.be.greaterThan(0);
      expect(s.pending + s.droppedByReason.spool_full).to.equal(20);
      index.down = false;
      await clock.tickAsync(100);
      await b.flush();
      const stored = await index.messages();
      expect(stored.length).to.equal(s.pending);
      expect(stored.at(-1)).to.match(/^log 19 /);
    });

    it('forgets a refused log from disk as well', async () => {
      const dir = spoolDir();
      const b = make({ spoolDir: dir });
      index.down = true;
      b.append(logs(1, 'poison', 3));
      await clock.tickAsync(10);
      expect(segments(dir).length).to.equal(1);
      index.down = false;
      await clock.tickAsync(100);
      await b.flush();
      expect(await index.messages()).to.deep.equal(['1', '3']);
      expect(segments(dir)).to.deep.equal([]);
    });
  });

  describe('memory spool at stop', () => {
    it('drops what the index did not take before the timeout, counted as stop_timeout', async () => {
      const b = make({ stopTimeoutMs: 500 });
      index.down = true;
      b.append(logs(1, 2));
      const stopping = b.stop();
      await clock.tickAsync(500);
      await stopping;
      b.append(logs(3));
      expect(b.stats().droppedByReason).to.deep.equal({ spool_full: 0, stopped: 1, stop_timeout: 2 });
    });
  });

  it('refuses a nonsensical window or spool size', () => {
    expect(() => make({ maxInFlightBatches: 0 })).to.throw(RangeError);
    expect(() => make({ spoolMaxBytes: 1.5 })).to.throw(RangeError);
    batchers.splice(0);
  });
});
