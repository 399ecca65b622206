/**
 * The embedded LogIndex: every key's recent logs in process memory, for a daemon running without
 * Meilisearch. Each key keeps at most `maxPerKey` logs (oldest dropped), so memory stays bounded
 * whatever devices send; logs are lost on restart.
 */
import type { Logger } from 'pino';
import type { BackendHealth, LogEntry } from '../model.js';
import type { LogIndex, LogQuery, LogSearchResult } from './log-index.js';
import { compareOrder, orderKey, type LogOrderKey } from './log-order.js';
import { DEFAULT_LOG_LIMITS, normalizeLogEntry, type LogLimits } from './normalize.js';
import { normaliseQuery } from './query.js';
import { searchText, textMatcher } from './text-match.js';

export const DEFAULT_MAX_PER_KEY = 100_000;

export interface MemoryLogIndexOptions {
  /** Logs kept per API key; the oldest (by receivedAt) go first. */
  maxPerKey?: number;
  /** How entries are normalised before they are stored (default DEFAULT_LOG_LIMITS), as on Meilisearch. */
  limits?: LogLimits;
  logger?: Logger;
}

interface Stored extends LogOrderKey {
  deviceId: string | null;
  /** Lower-cased: Meilisearch compares filter strings without case, and so does this. */
  level: string;
  change: boolean;
  text: string;
  /** The entry as JSON, as Meilisearch would store it; each hit is a fresh copy. */
  json: string;
}

/** One key's logs, oldest first, with a moving head so dropping the oldest is O(1). */
class KeyLog {
  private items: (Stored | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  insert(s: Stored): void {
    const last = this.items[this.items.length - 1];
    // Logs arrive in receive order on one node, so appending is the rule and searching the exception.
    if (this.size === 0 || compareOrder(last!, s) <= 0) {
      this.items.push(s);
      return;
    }
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareOrder(this.items[mid]!, s) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, s);
  }

  dropOldest(n: number): void {
    for (let i = 0; i < n && this.head < this.items.length; i++) this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Newest first. */
  *newestFirst(): Generator<Stored> {
    for (let i = this.items.length - 1; i >= this.head; i--) yield this.items[i]!;
  }
}

export class MemoryLogIndex implements LogIndex {
  readonly kind = 'memory' as const;
  private readonly maxPerKey: number;
  private readonly byKey = new Map<string, KeyLog>();
  private evicted = 0;
  private readonly logger: Logger | undefined;
  private readonly limits: LogLimits;

  constructor(opts: MemoryLogIndexOptions = {}) {
    this.logger = opts.logger;
    this.limits = opts.limits ?? DEFAULT_LOG_LIMITS;
    this.maxPerKey = opts.maxPerKey ?? DEFAULT_MAX_PER_KEY;
    if (!Number.isInteger(this.maxPerKey) || this.maxPerKey < 1) throw new RangeError(`maxPerKey must be a positive integer, got ${this.maxPerKey}`);
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async health(): Promise<BackendHealth> {
    return { ok: true, kind: this.kind };
  }

  /** Logs dropped so far because a key went over `maxPerKey`. */
  get evictedCount(): number {
    return this.evicted;
  }

  async add(entries: readonly LogEntry[]): Promise<void> {
    for (const raw of entries) {
      const e = normalizeLogEntry(raw, this.limits);
      let json: string;
      try {
        json = JSON.stringify(e);
      } catch (err) {
        // Meilisearch could not take it either; skipping one keeps the batch (and the batcher) moving.
        this.logger?.error({ err, id: e.id, apiKey: e.apiKey }, 'log entry is not JSON-serialisable; skipped');
        continue;
      }
      let log = this.byKey.get(e.apiKey);
      if (!log) {
        log = new KeyLog();
        this.byKey.set(e.apiKey, log);
      }
      log.insert({
        ...orderKey(e),
        deviceId: e.deviceId,
        level: e.level.toLowerCase(),
        change: e.kind === 'change',
        text: searchText(e.message, e.fields),
        json,
      });
      const over = log.size - this.maxPerKey;
      if (over > 0) {
        log.dropOldest(over);
        this.evicted += over;
      }
    }
  }

  async settle(): Promise<void> {}

  async search(query: LogQuery): Promise<LogSearchResult> {
    const q = normaliseQuery(query);
    const log = this.byKey.get(q.apiKey);
    if (!log) return { hits: [], total: 0 };
    const matches = textMatcher(q.q);
    const level = q.level?.toLowerCase() ?? null;
    const hits: LogEntry[] = [];
    let total = 0;
    for (const s of log.newestFirst()) {
      if (q.to !== null && s.receivedAt > q.to) continue;
      // Stored oldest first: once below the lower bound, nothing further can match.
      if (q.from !== null && s.receivedAt < q.from) break;
      if (level !== null && s.level !== level) continue;
      if (q.device !== null && s.deviceId !== q.device) continue;
      if (q.kind !== null && s.change !== (q.kind === 'change')) continue;
      if (matches && !matches(s.text)) continue;
      total += 1;
      if (hits.length < q.limit) hits.push(JSON.parse(s.json) as LogEntry);
    }
    return { hits, total };
  }
}
