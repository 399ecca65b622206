/**
 * Batches log writes in front of a LogIndex (DESIGN.md §3): connections append logs cheaply on the hot
 * path, and the batcher writes them a batch at a time, when `batchSize` are waiting or `flushDelayMs`
 * after the oldest arrived, whichever comes first. While the index is slow or down, logs wait (and
 * failed batches are retried in order) up to `maxPendingDocs`; past that the oldest are dropped and
 * counted, so memory stays bounded.
 */
import type { Logger } from 'pino';
import type { LogsConfig } from '../config.js';
import type { LogEntry } from '../model.js';
import type { LogIndex } from './log-index.js';

export interface LogBatcherOptions extends Pick<LogsConfig, 'batchSize' | 'flushDelayMs' | 'maxPendingDocs'> {
  /** First wait after a failed write; doubles per failure up to `retryMaxMs`. Default 100. */
  retryInitialMs?: number;
  /** Default 5000. */
  retryMaxMs?: number;
  /** How long `stop()` keeps trying to write what is pending before dropping it. Default 5000. */
  stopTimeoutMs?: number;
  /** Called after each accepted batch, e.g. to feed metrics. */
  onBatch?: (size: number, ms: number) => void;
  logger?: Logger;
}

export interface LogBatcherStats {
  /** Logs the index accepted. */
  written: number;
  /** Logs given up on: over `maxPendingDocs`, appended after stop, or still pending when stop timed out. */
  dropped: number;
  /** Accepted batches. */
  batches: number;
  /** Failed writes (each retried). */
  failures: number;
  /** Logs waiting, including the batch being written. */
  pending: number;
  lastBatchSize: number;
  lastBatchMs: number;
}

interface InFlight {
  entries: LogEntry[];
  ords: number[];
  startedAt: number;
}

interface Waiter {
  /** Resolves when every log with an ordinal below this is written or dropped. */
  target: number;
  resolve: () => void;
}

export class LogBatcher {
  private readonly batchSize: number;
  private readonly flushDelayMs: number;
  private readonly maxPendingDocs: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly stopTimeoutMs: number;
  private readonly onBatch: ((size: number, ms: number) => void) | undefined;
  private readonly logger: Logger | undefined;

  // The queue, oldest first, consumed from `head` so taking a batch or dropping the oldest is cheap.
  // `ords` numbers each log in append order; flush() waits on those numbers, which stay ascending
  // through drops and retries where plain counts would not.
  private queue: LogEntry[] = [];
  private ords: number[] = [];
  private head = 0;
  private appended = 0;
  private inFlight: InFlight | null = null;
  /** When the oldest waiting log arrived (ms), or null when none waits. */
  private oldestAt: number | null = null;
  private delayTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private pumpScheduled = false;
  private waiters: Waiter[] = [];
  private stopped = false;
  /** Set when stop() gave up: nothing is retried any more. */
  private abandoned = false;
  private dropping = false;

  private written = 0;
  private dropped = 0;
  private batches = 0;
  private failures = 0;
  private lastBatchSize = 0;
  private lastBatchMs = 0;

  constructor(
    private readonly index: LogIndex,
    opts: LogBatcherOptions,
  ) {
    for (const k of ['batchSize', 'maxPendingDocs'] as const) {
      if (!Number.isInteger(opts[k]) || opts[k] < 1) throw new RangeError(`${k} must be a positive integer, got ${opts[k]}`);
    }
    if (!(opts.flushDelayMs >= 0)) throw new RangeError(`flushDelayMs must be >= 0, got ${opts.flushDelayMs}`);
    this.batchSize = opts.batchSize;
    this.flushDelayMs = opts.flushDelayMs;
    this.maxPendingDocs = opts.maxPendingDocs;
    this.retryInitialMs = opts.retryInitialMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 5000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 5000;
    this.onBatch = opts.onBatch;
    this.logger = opts.logger;
    this.retryDelay = this.retryInitialMs;
  }

  /** Queues logs for writing; never blocks, never throws for a slow or failing index. */
  append(entries: readonly LogEntry[]): void {
    if (entries.length === 0) return;
    if (this.stopped) {
      this.dropped += entries.length;
      this.logger?.warn({ count: entries.length }, 'logs appended after the log batcher stopped; dropped');
      return;
    }
    if (this.queued === 0) this.oldestAt = Date.now();
    for (const e of entries) {
      this.queue.push(e);
      this.ords.push(this.appended++);
    }
    this.enforceBound();
    // Starting the write here would put index work (serialising the batch) inside the caller's turn.
    if (this.queued >= this.batchSize) this.schedulePump();
    else this.armDelay();
  }

  /** Writes everything appended so far, without waiting for the delay; resolves once it is accepted (or dropped). */
  flush(): Promise<void> {
    const target = this.appended;
    if (this.minPendingOrd() >= target) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiters.push({ target, resolve });
      this.schedulePump();
    });
  }

  /** Refuses further logs and flushes; after `stopTimeoutMs` whatever still waits is dropped and counted. */
  async stop(): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.flush().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    this.clearTimers();
    if (timedOut) {
      // A write still in flight is left to finish; if it fails it is dropped, not retried.
      this.abandoned = true;
      const lost = this.queued;
      this.dropped += lost;
      this.queue = [];
      this.ords = [];
      this.head = 0;
      this.oldestAt = null;
      this.logger?.error({ lost, inFlight: this.inFlight?.entries.length ?? 0 }, 'log index did not accept pending logs before the stop timeout; dropped');
      for (const w of this.waiters.splice(0)) w.resolve();
    }
  }

  stats(): LogBatcherStats {
    return {
      written: this.written,
      dropped: this.dropped,
      batches: this.batches,
      failures: this.failures,
      pending: this.pending,
      lastBatchSize: this.lastBatchSize,
      lastBatchMs: this.lastBatchMs,
    };
  }

  private get queued(): number {
    return this.queue.length - this.head;
  }

  private get pending(): number {
    return this.queued + (this.inFlight?.entries.length ?? 0);
  }

  /** The ordinal of the oldest log not yet written or dropped (the batch in flight is older than the queue). */
  private minPendingOrd(): number {
    if (this.inFlight) return this.inFlight.ords[0]!;
    return this.queued > 0 ? this.ords[this.head]! : this.appended;
  }

  private enforceBound(): void {
    const over = this.queued - this.maxPendingDocs;
    if (over <= 0) return;
    this.head += over;
    this.dropped += over;
    if (!this.dropping) {
      this.dropping = true;
      this.logger?.warn({ dropped: over, maxPendingDocs: this.maxPendingDocs }, 'log index is behind; dropping the oldest pending logs');
    }
    this.compact();
    this.resolveWaiters();
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.ords = this.ords.slice(this.head);
      this.head = 0;
    }
  }

  private armDelay(): void {
    if (this.delayTimer || this.oldestAt === null || this.inFlight || this.retryTimer) return;
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

  private pump(): void {
    if (this.abandoned || this.inFlight || this.retryTimer || this.queued === 0) return;
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
    const batch: InFlight = { entries: this.queue.slice(this.head, end), ords: this.ords.slice(this.head, end), startedAt: performance.now() };
    this.head = end;
    // What remains arrived while the batch filled up; it is written as soon as this batch is through.
    if (this.queued === 0) this.oldestAt = null;
    this.compact();
    this.inFlight = batch;
    Promise.resolve()
      .then(() => this.index.add(batch.entries))
      .then(
        () => this.succeeded(batch),
        (err: unknown) => this.failed(batch, err),
      );
  }

  private succeeded(batch: InFlight): void {
    const ms = performance.now() - batch.startedAt;
    const size = batch.entries.length;
    this.inFlight = null;
    this.written += size;
    this.batches += 1;
    this.lastBatchSize = size;
    this.lastBatchMs = ms;
    this.retryDelay = this.retryInitialMs;
    this.dropping = false;
    try {
      this.onBatch?.(size, ms);
    } catch (err) {
      this.logger?.error({ err }, 'log batcher onBatch callback threw');
    }
    this.resolveWaiters();
    this.pump();
  }

  private failed(batch: InFlight, err: unknown): void {
    this.inFlight = null;
    this.failures += 1;
    if (this.abandoned) {
      this.dropped += batch.entries.length;
      this.logger?.error({ err, lost: batch.entries.length }, 'log index write failed after stop; dropped');
      return;
    }
    // Back at the front, ahead of anything appended meanwhile, so the index sees logs in order.
    this.queue = batch.entries.concat(this.queue.slice(this.head));
    this.ords = batch.ords.concat(this.ords.slice(this.head));
    this.head = 0;
    this.oldestAt = Math.min(this.oldestAt ?? Date.now(), Date.now() - this.flushDelayMs);
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
    this.logger?.warn({ err, docs: batch.entries.length, pending: this.queued, retryInMs: delay }, 'log index write failed; retrying');
    this.enforceBound();
    this.resolveWaiters();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, delay);
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
    if (this.delayTimer) clearTimeout(this.delayTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.delayTimer = null;
    this.retryTimer = null;
  }
}
