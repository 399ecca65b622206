/**
 * Writes to a store that may go away for a while (a Redis outage), keyed and collapsed: at most one
 * write per key is in flight, what arrives meanwhile waits collapsed per item id (a newer item with
 * the same id replaces the older one in the older one's first-seen place), and a write that fails
 * with a connection-class error goes back, under anything newer, and is retried with backoff until
 * the store answers. So items land in the order they were accepted per key, and no older value of an
 * id ever lands after a newer one.
 *
 * What waits for a key whose last write failed is bounded (items and bytes across keys); callers ask
 * `wouldGrow` before accepting more and refuse past the bound instead of dropping silently. Generic:
 * the gateway's variables use it, and any other keyed store write (device presence) can.
 */
import { ObserverioError } from '../errors.js';

export interface RetryQueueOptions<T> {
  /** Writes one key's items, in this order. */
  write(key: string, items: T[]): Promise<void>;
  /** Items with the same id collapse: the newer replaces the older (a variable's name). */
  id(item: T): string;
  /** Memory an item holds while it waits, for the byte bound (roughly: its strings' lengths). */
  bytes(item: T): number;
  /** Items waiting for retry (across keys) past which `wouldGrow` refuses. */
  maxItems: number;
  /** Bytes waiting for retry (across keys) past which `wouldGrow` refuses. */
  maxBytes: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** True when the failure is the store's reachability, worth a retry; anything else drops the batch. */
  retryable?(err: unknown): boolean;
  /** A failed write went back to wait (metrics, a log line). */
  onRetry?(key: string, items: number, attempt: number, err: unknown): void;
  /** A write failed with a non-retryable error: its items are lost (metrics, a log line). */
  onDrop?(key: string, items: number, err: unknown): void;
  /** The amount waiting for retry changed (a gauge). */
  onSize?(items: number, bytes: number): void;
}

interface KeyState<T> {
  /** Accepted, not yet handed to write(); in first-seen order by id. */
  pending: Map<string, T> | null;
  /** The batch being written right now. */
  inFlight: T[] | null;
  promise: Promise<void> | null;
  /** Failed attempts in a row; > 0 means the key's items count against the bound. */
  failures: number;
  timer: NodeJS.Timeout | null;
  /** What this key adds to the totals while failures > 0. */
  items: number;
  bytes: number;
}

const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'EAI_AGAIN']);
/** Redis replies that mean "not now" rather than "wrong command". */
const RETRYABLE_REPLIES = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|READONLY|CLUSTERDOWN)\b/;

/**
 * Connection-class failures: the store could not be reached or is restarting (ioredis giving up on
 * a command, a closed connection, the backend gate's `unavailable`), as opposed to a programming
 * error (a bad argument, WRONGTYPE), which a retry would only repeat.
 */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof ObserverioError) return err.code === 'unavailable';
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && RETRYABLE_CODES.has(code)) return true;
  const m = err.message;
  return m === 'Connection is closed.' || m.includes("Stream isn't writeable") || m.includes('timed out') || RETRYABLE_REPLIES.test(m);
}

export class RetryQueue<T> {
  private readonly keys = new Map<string, KeyState<T>>();
  private totalItems = 0;
  private totalBytes = 0;
  private readonly retryable: (err: unknown) => boolean;

  constructor(private readonly opts: RetryQueueOptions<T>) {
    this.retryable = opts.retryable ?? isConnectionError;
  }

  /** Items waiting because a write of their key failed (0 while the store answers). */
  get items(): number {
    return this.totalItems;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Keys whose last write failed and that wait for a retry. */
  get keysWaiting(): number {
    let n = 0;
    for (const st of this.keys.values()) if (st.failures > 0) n += 1;
    return n;
  }

  /**
   * Whether accepting `items` for `key` would grow a queue that is at its bound: true only while the
   * bound is reached and the key is one that waits for a retry, unless every id already waits (a
   * replacement, counted by the item bound as nothing new). A key that is not waiting goes straight
   * to the store; if that write fails too, it joins the queue past the bound by that one batch.
   */
  wouldGrow(key: string, items: readonly T[]): boolean {
    if (this.totalItems < this.opts.maxItems && this.totalBytes < this.opts.maxBytes) return false;
    const st = this.keys.get(key);
    if (st === undefined || st.failures === 0) return false;
    if (this.totalBytes >= this.opts.maxBytes) return true;
    const pending = st.pending;
    if (pending === null) return true;
    for (const item of items) if (!pending.has(this.opts.id(item))) return true;
    return false;
  }

  /** Hands over one key's batch (ids unique, in first-seen order); the queue owns the map from here. */
  submit(key: string, batch: Map<string, T>): void {
    if (batch.size === 0) return;
    let st = this.keys.get(key);
    if (st === undefined) {
      st = { pending: null, inFlight: null, promise: null, failures: 0, timer: null, items: 0, bytes: 0 };
      this.keys.set(key, st);
    }
    if (st.inFlight === null && st.timer === null) {
      this.start(key, st, batch);
      return;
    }
    if (st.pending === null) {
      st.pending = batch;
      if (st.failures > 0) for (const item of batch.values()) this.account(st, 1, this.opts.bytes(item));
      return;
    }
    for (const [id, item] of batch) {
      if (st.failures > 0) {
        const old = st.pending.get(id);
        this.account(st, old === undefined ? 1 : 0, this.opts.bytes(item) - (old === undefined ? 0 : this.opts.bytes(old)));
      }
      // Map.set on an existing id keeps its place: first-seen order, newest value.
      st.pending.set(id, item);
    }
    if (st.failures > 0) this.reportSize();
  }

  /**
   * One more attempt now for every key waiting on a backoff, then waits for the writes in flight and
   * those that follow them (shutdown, tests), but not for a key's next retry: once a key's write has
   * failed again it stays queued (in memory: lost if the process ends), so a flush during an outage
   * returns after one round instead of waiting for the store.
   */
  async flush(): Promise<void> {
    for (const [key, st] of this.keys) {
      if (st.timer === null) continue;
      clearTimeout(st.timer);
      st.timer = null;
      const batch = st.pending;
      st.pending = null;
      if (batch !== null) this.start(key, st, batch);
    }
    const failuresAtStart = new Map<KeyState<T>, number>();
    for (;;) {
      const writing: Promise<void>[] = [];
      for (const st of this.keys.values()) {
        let f = failuresAtStart.get(st);
        if (f === undefined) failuresAtStart.set(st, (f = st.failures));
        if (st.promise !== null && st.failures === f) writing.push(st.promise);
      }
      if (writing.length === 0) return;
      await Promise.allSettled(writing);
    }
  }

  /** Stops the backoff timers (the process is ending); what waits is dropped and returned as a count. */
  close(): number {
    const left = this.totalItems;
    for (const st of this.keys.values()) if (st.timer !== null) clearTimeout(st.timer);
    this.keys.clear();
    this.totalItems = this.totalBytes = 0;
    this.reportSize();
    return left;
  }

  private account(st: KeyState<T>, items: number, bytes: number): void {
    st.items += items;
    st.bytes += bytes;
    this.totalItems += items;
    this.totalBytes += bytes;
  }

  private reportSize(): void {
    this.opts.onSize?.(this.totalItems, this.totalBytes);
  }

  private start(key: string, st: KeyState<T>, batch: Map<string, T>): void {
    const items = [...batch.values()];
    st.inFlight = items;
    const p: Promise<void> = this.opts.write(key, items).then(
      (): void => this.written(key, st, p),
      (err: unknown): void => this.failed(key, st, p, err),
    );
    st.promise = p;
  }

  private written(key: string, st: KeyState<T>, p: Promise<void>): void {
    if (st.promise === p) st.promise = null;
    st.inFlight = null;
    if (this.keys.get(key) !== st) return; // closed meanwhile
    if (st.failures > 0) this.settle(st);
    this.next(key, st);
  }

  private failed(key: string, st: KeyState<T>, p: Promise<void>, err: unknown): void {
    if (st.promise === p) st.promise = null;
    const items = st.inFlight ?? [];
    st.inFlight = null;
    if (this.keys.get(key) !== st) return; // closed meanwhile
    if (!this.retryable(err)) {
      this.opts.onDrop?.(key, items.length, err);
      if (st.failures > 0) this.settle(st);
      this.next(key, st);
      return;
    }
    // The failed batch goes back under what came after it: its ids keep their first-seen places, the
    // newer values win, and ids first seen since come after.
    const merged = new Map<string, T>();
    const newer = st.pending;
    for (const item of items) {
      const id = this.opts.id(item);
      merged.set(id, newer?.get(id) ?? item);
    }
    if (newer !== null) for (const [id, item] of newer) if (!merged.has(id)) merged.set(id, item);
    st.pending = merged;
    st.failures += 1;
    // Recounted exactly at each failure: between failures the count may only overestimate.
    let bytes = 0;
    for (const item of merged.values()) bytes += this.opts.bytes(item);
    this.account(st, merged.size - st.items, bytes - st.bytes);
    this.reportSize();
    this.opts.onRetry?.(key, items.length, st.failures, err);
    const delay = Math.min(this.opts.maxBackoffMs, this.opts.initialBackoffMs * 2 ** Math.min(st.failures - 1, 20));
    st.timer = setTimeout(() => {
      st.timer = null;
      const batch = st.pending;
      st.pending = null;
      if (batch !== null) this.start(key, st, batch);
      else this.next(key, st);
    }, delay);
    st.timer.unref();
  }

  /** The key's write succeeded (or its retry was given up): it no longer counts against the bound. */
  private settle(st: KeyState<T>): void {
    this.account(st, -st.items, -st.bytes);
    st.failures = 0;
    this.reportSize();
  }

  private next(key: string, st: KeyState<T>): void {
    const batch = st.pending;
    st.pending = null;
    if (batch !== null && batch.size > 0) this.start(key, st, batch);
    else if (st.timer === null && st.inFlight === null) this.keys.delete(key);
  }
}
