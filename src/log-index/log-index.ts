/**
 * The LogIndex contract: one shared index of every key's logs, filtered by API key on every query.
 * Implemented in memory (embedded default) and on Meilisearch; one contract suite
 * (test/contracts/log-index.contract.ts) runs against both. Writes arrive already batched (batcher.ts).
 */
import type { BackendHealth, LogEntry } from '../model.js';

export interface LogQuery {
  apiKey: string;
  /** Full-text query over the message (and other searchable fields); empty = everything. */
  q?: string;
  level?: string;
  device?: string;
  /** receivedAt lower bound, inclusive (ms since epoch). */
  from?: number;
  /** receivedAt upper bound, inclusive (ms since epoch). */
  to?: number;
  /** Default 100, at most 1000. */
  limit?: number;
  /** `change`: only the timeline's change entries; `log`: only the games' own logs; absent: both. */
  kind?: 'log' | 'change';
}

export interface LogSearchResult {
  /** Newest first (receivedAt, then id, descending). */
  hits: LogEntry[];
  /** How many match in all (may be an estimate on Meilisearch). */
  total: number;
}

export interface LogIndex {
  readonly kind: 'memory' | 'meilisearch';
  /** Creates the index if needed and applies its settings. */
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): Promise<BackendHealth>;
  /**
   * Writes one batch, each entry normalised first (normalize.ts) so its content cannot fail the batch.
   * Resolves once the entries are stored (Meilisearch: their task succeeded). Rejects with
   * LogWriteRefused when the backend refuses what the batch holds (sending it again unchanged cannot
   * succeed; the batcher bisects it), with any other error when the backend could not take it now
   * (down, overloaded, timed out: worth retrying as it is). An index that reports `queuedWrites`
   * calls `onQueued` once the write is queued there (it then counts in `queuedWrites`).
   */
  add(entries: readonly LogEntry[], onQueued?: () => void): Promise<void>;
  /** Resolves once everything accepted so far is searchable (tests and shutdown use it). */
  settle(): Promise<void>;
  search(query: LogQuery): Promise<LogSearchResult>;
  /**
   * Optional: how many of the writes this index has accepted and not finished cost it nothing to
   * have waiting (Meilisearch: our tasks still `enqueued`, and all but one of those it processes
   * together, as one indexing batch). Meilisearch merges every queued addition of an index into its
   * next batch, so the batcher does not count these against its window of writes in flight: under a
   * backlog the documents meet in fewer, bigger batches, while a light load still goes out at once.
   * A property, not a method: it is read on the hot path and never waits.
   */
  readonly queuedWrites?: number;
}

export const MAX_SEARCH_LIMIT = 1000;
export const DEFAULT_SEARCH_LIMIT = 100;

/** The backend refused a batch for what it holds; `reason` is a short stable code (a metric label). */
export class LogWriteRefused extends Error {
  override name = 'LogWriteRefused';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}
