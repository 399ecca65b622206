/**
 * The LogIndex on Meilisearch: one index shared by every API key (DESIGN.md §3), each query filtered
 * by the key. Writes are enqueued as Meilisearch tasks; a single follower waits on them in order so
 * `settle()` can tell when they are searchable and a failed task is logged rather than lost silently.
 *
 * Meilisearch compares filter strings case-insensitively, while API keys (and device ids) are
 * case-sensitive: filtering on `apiKey = "abcDEF123456"` would also return the logs of
 * `ABCdef123456`. So the key and the device are filtered through hex copies of themselves
 * (`apiKeyHex`, `deviceIdHex`), which keep every distinction and need no quoting.
 */
import { Meilisearch, MeilisearchApiError, type Index, type Settings, type Task } from 'meilisearch';
import type { Logger } from 'pino';
import type { BackendHealth, LogEntry } from '../model.js';
import type { LogIndex, LogQuery, LogSearchResult } from './log-index.js';
import { idOrderParts } from './log-order.js';
import { normaliseQuery } from './query.js';

export interface MeiliLogIndexConfig {
  url: string;
  masterKey: string | null;
  indexName: string;
}

/** What is stored: the LogEntry plus the filter and sort helpers, which `search` strips again. */
interface LogDocument extends LogEntry {
  apiKeyHex: string;
  deviceIdHex: string | null;
  sortNode: string;
  sortSeq: number;
}

const ENTRY_KEYS = ['id', 'apiKey', 'deviceId', 'level', 'message', 'timestamp', 'receivedAt', 'fields'] as const satisfies readonly (keyof LogEntry)[];

/** Meilisearch's rule for document ids; anything else fails the whole batch's task. */
const DOCUMENT_ID_RE = /^[A-Za-z0-9_-]{1,511}$/;

export const MEILI_LOG_SETTINGS: Settings = {
  filterableAttributes: ['apiKeyHex', 'deviceIdHex', 'level', 'receivedAt'],
  // `id` would sort as a string (…-10 before …-9); its numeric parts are stored separately instead.
  sortableAttributes: ['receivedAt', 'sortNode', 'sortSeq'],
  searchableAttributes: ['message', 'fields'],
  // 'sort' first: a log view is a timeline, so relevance only decides which logs match, not their order.
  rankingRules: ['sort', 'words', 'typo', 'proximity', 'attribute', 'exactness'],
  // Log search is closer to grep than to a shop search: no fuzzy matches of identifiers or codes.
  typoTolerance: { enabled: false },
  facetSearch: false,
  // The reported total is capped here (default 1000); a log view wants "12,345 matches", not "1000".
  pagination: { maxTotalHits: 100_000 },
};

const SORT = ['receivedAt:desc', 'sortNode:desc', 'sortSeq:desc'];
const SETUP_TASK_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 15_000;
const TASK_POLL_MS = 50;

export class MeiliLogIndex implements LogIndex {
  readonly kind = 'meilisearch' as const;
  private readonly client: Meilisearch;
  private readonly index: Index<LogDocument>;
  private readonly logger: Logger | undefined;
  /** Waits on enqueued tasks one after another; Meilisearch runs one index's tasks in order. */
  private follower: Promise<void> = Promise.resolve();
  private lastTaskUid: number | null = null;
  private failed = 0;
  private skipped = 0;

  constructor(
    private readonly cfg: MeiliLogIndexConfig,
    logger?: Logger,
  ) {
    this.logger = logger;
    this.client = new Meilisearch({ host: cfg.url, apiKey: cfg.masterKey ?? undefined, timeout: REQUEST_TIMEOUT_MS });
    this.index = this.client.index<LogDocument>(cfg.indexName);
  }

  /** Tasks Meilisearch reported as failed (their documents are not in the index). */
  get failedTasks(): number {
    return this.failed;
  }

  /** Entries refused before sending (an id Meilisearch would reject, or not JSON-serialisable). */
  get skippedEntries(): number {
    return this.skipped;
  }

  async start(): Promise<void> {
    const name = this.cfg.indexName;
    try {
      const info = await this.client.getRawIndex(name);
      if (info.primaryKey && info.primaryKey !== 'id') {
        throw new Error(`Meilisearch index ${name} has primary key ${JSON.stringify(info.primaryKey)}, expected "id"`);
      }
    } catch (err) {
      if (!(err instanceof MeilisearchApiError && err.cause?.code === 'index_not_found')) throw err;
      const task = await this.client.createIndex(name, { primaryKey: 'id' }).waitTask({ timeout: SETUP_TASK_TIMEOUT_MS });
      // Another daemon may have created it between our look and our create; that is fine.
      if (task.status !== 'succeeded' && task.error?.code !== 'index_already_exists') throw taskError(`create index ${name}`, task);
    }
    const task = await this.index.updateSettings(MEILI_LOG_SETTINGS).waitTask({ timeout: SETUP_TASK_TIMEOUT_MS });
    if (task.status !== 'succeeded') throw taskError(`apply settings to ${name}`, task);
    this.logger?.info({ index: name }, 'Meilisearch log index ready');
  }

  async stop(): Promise<void> {
    // Enqueued tasks are durable in Meilisearch; there is nothing to flush or close here.
  }

  async health(): Promise<BackendHealth> {
    try {
      const h = await this.client.health();
      return h.status === 'available' ? { ok: true, kind: this.kind } : { ok: false, kind: this.kind, detail: `status ${String(h.status)}` };
    } catch (err) {
      return { ok: false, kind: this.kind, detail: (err as Error).message };
    }
  }

  async add(entries: readonly LogEntry[]): Promise<void> {
    // NDJSON built here, one entry at a time, so one bad entry is skipped instead of failing the batch.
    const lines: string[] = [];
    for (const e of entries) {
      if (!DOCUMENT_ID_RE.test(e.id)) {
        this.skip(e, new Error('id must be 1-511 characters of [A-Za-z0-9_-]'));
        continue;
      }
      try {
        lines.push(JSON.stringify(toDocument(e)));
      } catch (err) {
        this.skip(e, err);
      }
    }
    if (lines.length === 0) return;
    const enqueued = await this.index.addDocumentsFromString(lines.join('\n'), 'application/x-ndjson', { primaryKey: 'id' });
    const uid = enqueued.taskUid;
    this.lastTaskUid = uid;
    this.follower = this.follower.then(() => this.follow(uid, lines.length));
  }

  async settle(): Promise<void> {
    await this.follower;
  }

  async search(query: LogQuery): Promise<LogSearchResult> {
    const q = normaliseQuery(query);
    const filter = [`apiKeyHex = "${hex(q.apiKey)}"`];
    if (q.level !== null) filter.push(`level = ${quote(q.level)}`);
    if (q.device !== null) filter.push(`deviceIdHex = "${hex(q.device)}"`);
    if (q.from !== null) filter.push(`receivedAt >= ${q.from}`);
    if (q.to !== null) filter.push(`receivedAt <= ${q.to}`);
    const res = await this.index.search(q.q, {
      filter,
      sort: SORT,
      limit: q.limit,
      // Every word must match, as in the memory index; the default drops words until something does.
      matchingStrategy: 'all',
      attributesToRetrieve: [...ENTRY_KEYS],
    });
    return { hits: res.hits.map(toEntry), total: res.estimatedTotalHits };
  }

  private async follow(uid: number, docs: number): Promise<void> {
    let task: Task;
    try {
      task = await this.client.tasks.waitForTask(uid, { timeout: 0, interval: TASK_POLL_MS });
    } catch (err) {
      this.logger?.warn({ err, taskUid: uid, docs }, 'cannot confirm a Meilisearch log write; its logs may be missing');
      return;
    }
    if (task.status === 'failed' || task.status === 'canceled') {
      this.failed += 1;
      this.logger?.error({ taskUid: uid, docs, status: task.status, error: task.error, index: this.cfg.indexName }, 'Meilisearch log write failed; these logs are not indexed');
    }
  }

  private skip(e: LogEntry, err: unknown): void {
    this.skipped += 1;
    this.logger?.error({ err, id: e.id, apiKey: e.apiKey }, 'log entry cannot be indexed; skipped');
  }

  /** The uid of the last write task, for tests and metrics. */
  get lastTask(): number | null {
    return this.lastTaskUid;
  }
}

function toDocument(e: LogEntry): LogDocument {
  const { node, seq } = idOrderParts(e.id);
  return {
    id: e.id,
    apiKey: e.apiKey,
    apiKeyHex: hex(e.apiKey),
    deviceId: e.deviceId,
    deviceIdHex: e.deviceId === null ? null : hex(e.deviceId),
    level: e.level,
    message: e.message,
    timestamp: e.timestamp,
    receivedAt: e.receivedAt,
    fields: e.fields,
    sortNode: node,
    sortSeq: seq,
  };
}

function toEntry(h: Partial<LogEntry>): LogEntry {
  return {
    id: String(h.id),
    apiKey: String(h.apiKey),
    deviceId: h.deviceId ?? null,
    level: h.level ?? '',
    message: h.message ?? '',
    timestamp: h.timestamp ?? null,
    receivedAt: h.receivedAt ?? 0,
    fields: h.fields ?? {},
  };
}

function hex(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex');
}

/** A Meilisearch filter string literal: double-quoted, with backslash and quote escaped. */
export function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function taskError(what: string, task: Task): Error {
  return new Error(`Meilisearch: cannot ${what}: task ${task.uid} ${task.status}${task.error ? `: ${task.error.code}: ${task.error.message}` : ''}`);
}
