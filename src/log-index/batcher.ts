/**
 * Batches log writes in front of a LogIndex (DESIGN.md §3): connections append logs cheaply on the hot
 * path, and the batcher writes them a batch at a time, when `batchSize` are waiting or `flushDelayMs`
 * after the oldest arrived, whichever comes first, with up to `maxInFlightBatches` writes unconfirmed.
 * Writes the index reports queued, not yet processed, do not count against that window: Meilisearch
 * merges every queued addition into its next indexing batch, and each batch costs it time of its own
 * (more in a bigger index), so under a backlog the logs should wait there, to meet in one batch,
 * rather than here behind a full window, trickling in over many (the logs bench: 22 batches for what
 * now takes 4). At most `maxPendingDocs` logs are in flight.
 *
 * Nothing is lost silently (issue 10). A batch the index refuses for what it holds is bisected until
 * the one refused log is found; the rest are stored and that one is counted, logged and handed to
 * `onRejected`. A batch the index could not take now (down, timing out) is retried with exponential
 * backoff, oldest logs first; meanwhile logs wait in the spool, on disk when `spoolDir` is set (a
 * restart delivers them), else in memory. Past `maxPendingDocs` logs or `spoolMaxBytes` on disk the
 * oldest are dropped and counted by reason.
 */
import type { Logger } from 'pino';
import type { LogsConfig } from '../config.js';
import type { LogEntry } from '../model.js';
import { LogWriteRefused, type LogIndex } from './log-index.js';
import { DEFAULT_LOG_LIMITS, normalizeLogEntry, type LogLimits } from './normalize.js';
import { DiskSpool, type SpoolSegment } from './spool.js';

export interface LogBatcherOptions extends Pick<LogsConfig, 'batchSize' | 'flushDelayMs' | 'maxPendingDocs'> {
  /**
   * Writes sent and not yet confirmed, at most, not counting those the index reports still queued
   * behind others (LogIndex.queuedWrites: Meilisearch merges those into its next batch). Default 1.
   */
  maxInFlightBatches?: number;
  /** Absolute directory of the on-disk spool; null or absent = in memory (lost on restart). */
  spoolDir?: string | null;
  /** Largest the on-disk spool may grow. Default 256 MiB. */
  spoolMaxBytes?: number;
  /** How logs are normalised before they go to disk (the index normalises again, to the same shape). */
  limits?: LogLimits;
  /** First wait after a failed write; doubles per failure up to `retryMaxMs`. Default 100. */
  retryInitialMs?: number;
  /** Default 5000. */
  retryMaxMs?: number;
  /** How long `stop()` keeps trying to write what is pending before giving up on it. Default 5000. */
  stopTimeoutMs?: number;
  /** Called after each accepted batch, e.g. to feed metrics. */
  onBatch?: (size: number, ms: number) => void;
  /** Called for each log the index refused, alone, for what it holds; `reason` is a short code. */
  onRejected?: (entry: LogEntry, reason: string) => void;
  logger?: Logger;
}

/** Why logs were dropped: spool over its bound, appended after stop, still pending when stop gave up (memory spool). */
export type LogDropReason = 'spool_full' | 'stopped' | 'stop_timeout';

export interface LogBatcherStats {
  /** Logs the index accepted. */
  written: number;
  /** Logs given up on, in all (see droppedByReason). */
  dropped: number;
  droppedByReason: Record<LogDropReason, number>;
  /** Logs the index refused for what they hold, after bisecting. */
  rejected: number;
  rejectedByReason: Record<string, number>;
  /** Accepted batches. */
  batches: number;
  /** Failed writes (each retried or bisected). */
  failures: number;
  /** Logs waiting, including the batches being written. */
  pending: number;
  lastBatchSize: number;
  lastBatchMs: number;
  /** True while writes fail and are retried with backoff. */
  retrying: boolean;
  /** The last failed write's error, or null. */
  lastError: string | null;
  spool: { kind: 'disk' | 'memory'; dir: string | null; files: number; bytes: number };
}

interface Item {
  entry: LogEntry;
  /** Append order; flush() waits on these numbers, which stay ascending through drops and retries. */
  ord: number;
  /** The spool segment holding it on disk, or null while only in memory. */
  seg: SpoolSegment | null;
  /** Its size on disk (0 while only in memory). */
  bytes: number;
}

interface InFlight {
  items: Item[];
  startedAt: number;
}

interface Waiter {
  /** Resolves when every log with an ordinal below this is written, refused or dropped. */
  target: number;
  resolve: () => void;
}

export class LogBatcher {
  private readonly batchSize: number;
  private readonly flushDelayMs: number;
  private readonly maxPendingDocs: number;
  private readonly maxInFlight: number;
  private readonly spoolMaxBytes: number;
  private readonly limits: LogLimits;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly stopTimeoutMs: number;
  private readonly onBatch: ((size: number, ms: number) => void) | undefined;
  private readonly onRejected: ((entry: LogEntry, reason: string) => void) | undefined;
  private readonly logger: Logger | undefined;
  private readonly disk: DiskSpool | null;

  // The queue, oldest first, consumed from `head` so taking a batch or dropping the oldest is cheap.
  private queue: Item[] = [];
  private head = 0;
  /** Halves of refused batches, oldest first: each is sent as a batch of its own, before the queue. */
  private bisect: Item[][] = [];
  private readonly inFlight = new Set<InFlight>();
  /** Logs in the writes of `inFlight`. */
  private inFlightDocs = 0;
  private appended = 0;
  /** When the oldest waiting log arrived (ms), or null when none waits. */
  private oldestAt: number | null = null;
  private delayTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private persistTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private pumpScheduled = false;
  private waiters: Waiter[] = [];
  private stopped = false;
  /** Set when stop() gave up: nothing is retried any more. */
  private abandoned = false;
  /** Set by a failed write, cleared by a stored one: while set, one write at a time, and logs go to disk. */
  private failing = false;
  private dropping = false;
  private diskFailed = false;
  /**
   * Bytes on disk of the logs still pending, which `spoolMaxBytes` bounds. A segment's file goes only
   * once all its logs are done, so the files may hold somewhat more.
   */
  private spooledBytes = 0;

  private written = 0;
  private readonly droppedBy: Record<LogDropReason, number> = { spool_full: 0, stopped: 0, stop_timeout: 0 };
  private readonly rejectedBy: Record<string, number> = {};
  private rejected = 0;
  private batches = 0;
  private failures = 0;
  private lastBatchSize = 0;
  private lastBatchMs = 0;
  private lastError: string | null = null;

  constructor(
    private readonly index: LogIndex,
    opts: LogBatcherOptions,
  ) {
    for (const k of ['batchSize', 'maxPendingDocs', 'maxInFlightBatches', 'spoolMaxBytes'] as const) {
      const v = opts[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new RangeError(`${k} must be a positive integer, got ${v}`);
    }
    if (!(opts.flushDelayMs >= 0)) throw new RangeError(`flushDelayMs must be >= 0, got ${opts.flushDelayMs}`);
    this.batchSize = opts.batchSize;
    this.flushDelayMs = opts.flushDelayMs;
    this.maxPendingDocs = opts.maxPendingDocs;
    this.maxInFlight = opts.maxInFlightBatches ?? 1;
    this.spoolMaxBytes = opts.spoolMaxBytes ?? 256 * 1024 * 1024;
    this.limits = opts.limits ?? DEFAULT_LOG_LIMITS;
    this.retryInitialMs = opts.retryInitialMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 5000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 5000;
    this.onBatch = opts.onBatch;
    this.onRejected = opts.onRejected;
    this.logger = opts.logger;
    this.retryDelay = this.retryInitialMs;
    this.disk = opts.spoolDir ? new DiskSpool(opts.spoolDir, this.logger) : null;
    if (this.disk) this.loadSpool(this.disk);
  }

  /** Queues logs for writing; never blocks, never throws for a slow or failing index. */
  append(entries: readonly LogEntry[]): void {
    if (entries.length === 0) return;
    if (this.stopped) {
      this.droppedBy.stopped += entries.length;
      this.logger?.warn({ count: entries.length }, 'logs appended after the log batcher stopped; dropped');
      return;
    }
    if (this.queued === 0) this.oldestAt = Date.now();
    for (const entry of entries) this.queue.push({ entry, ord: this.appended++, seg: null, bytes: 0 });
    this.enforceBound();
    if (this.failing) this.armPersist();
    // Starting the write here would put index work (serialising the batch) inside the caller's turn.
    if (this.queued >= this.batchSize) this.schedulePump();
    else this.armDelay();
  }

  /** Writes everything appended so far, without waiting for the delay; resolves once it is stored, refused or dropped. */
  flush(): Promise<void> {
    const target = this.appended;
    if (this.minPendingOrd() >= target) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiters.push({ target, resolve });
      this.schedulePump();
    });
  }

  /**
   * Refuses further logs and flushes. After `stopTimeoutMs` whatever still waits is kept in the disk
   * spool for the next start, or, with a memory spool, dropped and counted.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.flush().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    this.clearTimers();
    if (!timedOut) return;
    // A write still in flight is left to finish; if it fails it is not retried.
    this.abandoned = true;
    const waiting = this.bisect.flat().concat(this.queue.slice(this.head));
    const inFlight = [...this.inFlight].reduce((n, f) => n + f.items.length, 0);
    this.bisect = [];
    this.queue = [];
    this.head = 0;
    this.oldestAt = null;
    if (this.disk) {
      const kept = this.persist(waiting.concat(...[...this.inFlight].map((f) => f.items)));
      this.logger?.warn({ kept, inFlight, dir: this.disk.dir }, 'log index did not accept pending logs before the stop timeout; kept in the spool for the next start');
    } else {
      this.droppedBy.stop_timeout += waiting.length;
      this.logger?.error({ lost: waiting.length, inFlight }, 'log index did not accept pending logs before the stop timeout; dropped');
    }
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  stats(): LogBatcherStats {
    return {
      written: this.written,
      dropped: this.dropped,
      droppedByReason: { ...this.droppedBy },
      rejected: this.rejected,
      rejectedByReason: { ...this.rejectedBy },
      batches: this.batches,
      failures: this.failures,
      pending: this.pending,
      lastBatchSize: this.lastBatchSize,
      lastBatchMs: this.lastBatchMs,
      retrying: this.failing,
      lastError: this.lastError,
      spool: this.disk
        ? { kind: 'disk', dir: this.disk.dir, files: this.disk.files, bytes: this.disk.bytes }
        : { kind: 'memory', dir: null, files: 0, bytes: 0 },
    };
  }

  private get dropped(): number {
    return this.droppedBy.spool_full + this.droppedBy.stopped + this.droppedBy.stop_timeout;
  }

  private get queued(): number {
    return this.queue.length - this.head;
  }

  private get pending(): number {
    let n = this.queued;
    for (const b of this.bisect) n += b.length;
    for (const f of this.inFlight) n += f.items.length;
    return n;
  }

  /** The ordinal of the oldest log not yet written, refused or dropped. */
  private minPendingOrd(): number {
    let min = this.queued > 0 ? this.queue[this.head]!.ord : this.appended;
    for (const b of this.bisect) min = Math.min(min, b[0]!.ord);
    for (const f of this.inFlight) min = Math.min(min, f.items[0]!.ord);
    return min;
  }

  private loadSpool(disk: DiskSpool): void {
    let loaded;
    try {
      loaded = disk.load();
    } catch (err) {
      this.logger?.error({ err, dir: disk.dir }, 'cannot read the log spool; starting without it');
      return;
    }
    if (loaded.length === 0) return;
    for (const { entry, seg, bytes } of loaded) {
      this.queue.push({ entry, ord: this.appended++, seg, bytes });
      this.spooledBytes += bytes;
    }
    // Due at once: these have waited long enough.
    this.oldestAt = Date.now() - this.flushDelayMs;
    this.logger?.info({ logs: loaded.length, bytes: disk.bytes, dir: disk.dir }, 'log spool from an earlier run loaded; delivering it first');
    this.enforceBound();
    this.armDelay();
  }

  private enforceBound(): void {
    let over = 0;
    while (this.queued > 0 && (this.queued > this.maxPendingDocs || this.spooledBytes > this.spoolMaxBytes)) {
      const item = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Item;
      this.release(item);
      over += 1;
    }
    if (over === 0) return;
    this.droppedBy.spool_full += over;
    if (!this.dropping) {
      this.dropping = true;
      this.logger?.warn({ dropped: over, maxPendingDocs: this.maxPendingDocs, spoolMaxBytes: this.disk ? this.spoolMaxBytes : undefined }, 'log index is behind; dropping the oldest pending logs');
    }
    if (this.queued === 0) this.oldestAt = null;
    this.compact();
    this.resolveWaiters();
  }

  /** The log is done with (stored, refused or dropped): its share of the spool goes. */
  private release(item: Item): void {
    if (!item.seg) return;
    this.disk?.release(item.seg);
    this.spooledBytes -= item.bytes;
    item.seg = null;
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Writes the logs not yet on disk to a new segment; returns how many are on disk now. */
  private persist(items: readonly Item[]): number {
    if (!this.disk) return 0;
    const fresh = items.filter((i) => i.seg === null).sort((a, b) => a.ord - b.ord);
    if (fresh.length > 0) {
      const lines: string[] = [];
      const kept: Item[] = [];
      for (const i of fresh) {
        try {
          const line = JSON.stringify(normalizeLogEntry(i.entry, this.limits));
          lines.push(line);
          i.bytes = Buffer.byteLength(line) + 1;
          kept.push(i);
        } catch (err) {
          this.logger?.error({ err, id: i.entry.id, apiKey: i.entry.apiKey }, 'log entry cannot be written to the spool; kept in memory only');
        }
      }
      try {
        if (lines.length > 0) {
          const seg = this.disk.write(lines);
          for (const i of kept) {
            i.seg = seg;
            this.spooledBytes += i.bytes;
          }
        }
        this.diskFailed = false;
      } catch (err) {
        if (!this.diskFailed) this.logger?.error({ err, dir: this.disk.dir }, 'cannot write the log spool; pending logs are in memory only');
        this.diskFailed = true;
      }
    }
    this.enforceBound();
    return items.filter((i) => i.seg !== null).length;
  }

  private persistPending(): void {
    const all: Item[] = this.queue.slice(this.head);
    for (const b of this.bisect) all.push(...b);
    for (const f of this.inFlight) all.push(...f.items);
    this.persist(all);
  }

  private armPersist(): void {
    if (!this.disk || this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      if (this.failing) this.persistPending();
    }, Math.max(this.flushDelayMs, 10));
  }

  private armDelay(): void {
    if (this.delayTimer || this.oldestAt === null || this.retryTimer) return;
    const wait = Math.max(0, this.oldestAt + this.flushDelayMs - Date.now());
    this.delayTimer = setTimeout(() => {
      this.delayTimer = null;
      this.pump();
    }, wait);
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** A write is queued at the index: it no longer takes a place in the window. */
  private readonly onQueued = (): void => this.schedulePump();

  private pump(): void {
    if (this.abandoned || this.retryTimer) return;
    // While writes fail, one at a time: a probe, not a burst of doomed writes.
    const window = this.failing ? 1 : this.maxInFlight;
    while (this.working() < window && (this.inFlight.size === 0 || this.inFlightDocs < this.maxPendingDocs)) {
      const half = this.bisect.shift();
      if (half) {
        this.send(half);
        continue;
      }
      if (this.queued === 0) return;
      const due =
        this.queued >= this.batchSize ||
        this.waiters.length > 0 ||
        this.stopped ||
        (this.oldestAt !== null && Date.now() - this.oldestAt >= this.flushDelayMs);
      if (!due) {
        this.armDelay();
        return;
      }
      if (this.delayTimer) {
        clearTimeout(this.delayTimer);
        this.delayTimer = null;
      }
      const end = this.head + Math.min(this.batchSize, this.queued);
      const items = this.queue.slice(this.head, end);
      this.queue.fill(undefined as unknown as Item, this.head, end);
      this.head = end;
      // What remains arrived while the batch filled up; it is written as soon as there is room.
      if (this.queued === 0) this.oldestAt = null;
      this.compact();
      this.send(items);
    }
  }

  /** Writes in flight the index may be working on: all of them while failing, else those it does not report queued. */
  private working(): number {
    if (this.failing) return this.inFlight.size;
    const queued = this.index.queuedWrites ?? 0;
    return Math.max(0, this.inFlight.size - queued);
  }

  private send(items: Item[]): void {
    const batch: InFlight = { items, startedAt: performance.now() };
    this.inFlight.add(batch);
    this.inFlightDocs += items.length;
    Promise.resolve()
      .then(() => this.index.add(items.map((i) => i.entry), this.onQueued))
      .then(
        () => this.succeeded(batch),
        (err: unknown) => this.failed(batch, err),
      );
  }

  private succeeded(batch: InFlight): void {
    const ms = performance.now() - batch.startedAt;
    const size = batch.items.length;
    this.inFlight.delete(batch);
    this.inFlightDocs -= size;
    for (const i of batch.items) this.release(i);
    this.written += size;
    this.batches += 1;
    this.lastBatchSize = size;
    this.lastBatchMs = ms;
    this.retryDelay = this.retryInitialMs;
    this.dropping = false;
    if (this.failing) {
      this.failing = false;
      this.logger?.info({ pending: this.pending }, 'log index writes succeed again');
    }
    try {
      this.onBatch?.(size, ms);
    } catch (err) {
      this.logger?.error({ err }, 'log batcher onBatch callback threw');
    }
    this.resolveWaiters();
    this.pump();
  }

  private failed(batch: InFlight, err: unknown): void {
    this.inFlight.delete(batch);
    this.inFlightDocs -= batch.items.length;
    this.failures += 1;
    this.lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    if (err instanceof LogWriteRefused) this.refused(batch.items, err);
    else this.unavailable(batch.items, err);
    this.resolveWaiters();
    this.pump();
  }

  /** The index refused what the batch holds: halve it until the refused log stands alone. */
  private refused(items: Item[], err: LogWriteRefused): void {
    if (items.length === 1) {
      this.reject(items[0]!, err);
      return;
    }
    const mid = items.length >>> 1;
    // Ahead of everything else still waiting: these are the oldest logs.
    this.bisect.push(items.slice(0, mid), items.slice(mid));
    this.bisect.sort((a, b) => a[0]!.ord - b[0]!.ord);
    this.logger?.debug({ docs: items.length, reason: err.reason }, 'log index refused a batch; bisecting it');
  }

  private reject(item: Item, err: LogWriteRefused): void {
    this.release(item);
    this.rejected += 1;
    this.rejectedBy[err.reason] = (this.rejectedBy[err.reason] ?? 0) + 1;
    const e = item.entry;
    this.logger?.warn({ apiKey: e.apiKey, deviceId: e.deviceId, id: e.id, reason: err.reason, detail: err.message }, 'log entry refused by the log index; not indexed');
    try {
      this.onRejected?.(e, err.reason);
    } catch (cbErr) {
      this.logger?.error({ err: cbErr }, 'log batcher onRejected callback threw');
    }
  }

  /** The index could not take the batch now: back to the front, retried after a backoff. */
  private unavailable(items: Item[], err: unknown): void {
    if (this.abandoned) {
      if (this.disk) this.persist(items);
      else this.droppedBy.stop_timeout += items.length;
      this.logger?.error({ err, docs: items.length, kept: this.disk !== null }, 'log index write failed after stop; not retried');
      return;
    }
    this.requeue(items);
    this.failing = true;
    this.persistPending();
    this.enforceBound();
    if (this.retryTimer) return;
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = null;
    }
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
    this.logger?.warn({ err, docs: items.length, pending: this.pending, retryInMs: delay }, 'log index write failed; retrying');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, delay);
  }

  /** Puts logs back into the queue in append order, ahead of anything appended after them. */
  private requeue(items: Item[]): void {
    const rest = this.queue.slice(this.head);
    const merged: Item[] = new Array<Item>(rest.length + items.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < items.length && j < rest.length) merged[k++] = items[i]!.ord < rest[j]!.ord ? items[i++]! : rest[j++]!;
    while (i < items.length) merged[k++] = items[i++]!;
    while (j < rest.length) merged[k++] = rest[j++]!;
    this.queue = merged;
    this.head = 0;
    this.oldestAt = Math.min(this.oldestAt ?? Date.now(), Date.now() - this.flushDelayMs);
  }

  private resolveWaiters(): void {
    if (this.waiters.length === 0) return;
    const min = this.minPendingOrd();
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (min >= w.target) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private clearTimers(): void {
    for (const t of [this.delayTimer, this.retryTimer, this.persistTimer]) if (t) clearTimeout(t);
    this.delayTimer = null;
    this.retryTimer = null;
    this.persistTimer = null;
  }
}
