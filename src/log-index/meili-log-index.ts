/**
 * The LogIndex on Meilisearch: one index shared by every API key (DESIGN.md §3), each query filtered
 * by the key. Writes are enqueued as Meilisearch tasks; a single follower waits on them in order so
 * `settle()` can tell when they are searchable and a failed task is logged rather than lost silently.
 *
 * Meilisearch compares filter strings case-insensitively, while API keys (and device ids) are
 * case-sensitive: filtering on `apiKey = "abcDEF123456"` would also return the logs of
 * `ABCdef123456`. So the key and the device are filtered through hex copies of themselves
 * (`apiKeyHex`, `deviceIdHex`), which keep every distinction and need no quoting.
 *
 * Meilisearch counts every attribute name it ever saw in an index against one limit (65,535): stored
 * as nested objects, the fields of one tenant's logs could use it up and make every later write of
 * every tenant fail. So `fields` is stored as its JSON text (`fieldsJson`) and searched through the
 * text of its values (`fieldsText`): a document has the same dozen attributes whatever a device sends.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Meilisearch, MeilisearchApiError, type Index, type Settings, type Task } from 'meilisearch';
import type { Logger } from 'pino';
import type { BackendHealth, LogEntry } from '../model.js';
import { LogWriteRefused, type LogIndex, type LogQuery, type LogSearchResult } from './log-index.js';
import { idOrderParts } from './log-order.js';
import { DEFAULT_LOG_LIMITS, normalizeLogEntry, type LogLimits } from './normalize.js';
import { normaliseQuery } from './query.js';

export interface MeiliLogIndexConfig {
  url: string;
  masterKey: string | null;
  indexName: string;
  /** How entries are normalised before they are sent (default DEFAULT_LOG_LIMITS). */
  limits?: LogLimits;
}

/** What is stored: the LogEntry (fields as text) plus the filter and sort helpers, which `search` strips again. */
interface LogDocument extends Omit<LogEntry, 'fields'> {
  /** Documents written before fields were stored as text hold them here. */
  fields?: Record<string, unknown>;
  fieldsJson: string;
  fieldsText: string;
  apiKeyHex: string;
  deviceIdHex: string | null;
  sortNode: string;
  sortSeq: number;
}

const RETRIEVED = ['id', 'apiKey', 'deviceId', 'level', 'message', 'timestamp', 'receivedAt', 'fieldsJson', 'fields', 'kind'] as const satisfies readonly (keyof LogDocument)[];

/** Meilisearch's rule for document ids; anything else fails the whole batch's task. */
const DOCUMENT_ID_RE = /^[A-Za-z0-9_-]{1,511}$/;

export const MEILI_LOG_SETTINGS: Settings = {
  filterableAttributes: ['apiKeyHex', 'deviceIdHex', 'level', 'receivedAt', 'kind'],
  // `id` would sort as a string (…-10 before …-9); its numeric parts are stored separately instead.
  sortableAttributes: ['receivedAt', 'sortNode', 'sortSeq'],
  // 'fields' last: documents written before fieldsText existed stay searchable.
  searchableAttributes: ['message', 'fieldsText', 'fields'],
  // 'sort' first: a log view is a timeline, so relevance only decides which logs match, not their order.
  rankingRules: ['sort', 'words', 'typo', 'proximity', 'attribute', 'exactness'],
  // Log search is closer to grep than to a shop search: no fuzzy matches of identifiers or codes.
  typoTolerance: { enabled: false },
  // Word pairs' distances are Meilisearch's costliest index to build (the largest step of a batch's
  // progressTrace) and decide nothing here: results are ordered by the sort, which is unique per log
  // (receivedAt, node, seq), before proximity is looked at, and matching every word ('all') does not
  // depend on it. Per attribute, a quoted phrase matches its words within one attribute, as the
  // memory index matches words anywhere. Indexing the logs bench's documents: about 1.5-2× faster.
  proximityPrecision: 'byAttribute',
  facetSearch: false,
  // The reported total is capped here (default 1000); a log view wants "12,345 matches", not "1000".
  pagination: { maxTotalHits: 100_000 },
};

const SORT = ['receivedAt:desc', 'sortNode:desc', 'sortSeq:desc'];
/** Invalid-request errors about the index, not the documents: every log would be refused alike. */
const INDEX_ERRORS = new Set(['index_primary_key_already_exists', 'index_not_found', 'index_already_exists', 'invalid_api_key', 'missing_authorization_header']);
const SETUP_TASK_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** How often the follower asks about unfinished write tasks. */
export const TASK_POLL_MS = 50;

export class MeiliLogIndex implements LogIndex {
  readonly kind = 'meilisearch' as const;
  private readonly client: Meilisearch;
  private readonly index: Index<LogDocument>;
  private readonly logger: Logger | undefined;
  private readonly limits: LogLimits;
  /** Writes not yet finished, for settle(). */
  private readonly writing = new Set<Promise<void>>();
  private lastTaskUid: number | null = null;
  /** Tasks enqueued and not yet known to be finished, each with the write waiting on it; `started` once seen processing. */
  private readonly following = new Map<number, { resolve: (t: Task) => void; reject: (err: unknown) => void; started: boolean }>();
  private follower: Promise<void> | null = null;
  private failed = 0;
  private skipped = 0;
  /** Where a batch's documents are POSTed, and the connections kept open for it (see post()). */
  private readonly documentsUrl: URL;
  private readonly searchUrl: URL;
  private readonly tasksUrl: URL;
  private readonly agent: HttpAgent;

  constructor(
    private readonly cfg: MeiliLogIndexConfig,
    logger?: Logger,
  ) {
    this.logger = logger;
    this.limits = cfg.limits ?? DEFAULT_LOG_LIMITS;
    // Uncompressed answers: fetch asks for gzip by default, so Meilisearch compressed every search and
    // task answer and this process inflated it again, CPU both spent beside the indexing (the logs
    // bench's profile: zlib was a tenth of the daemon's busy time); the index is usually a neighbour.
    this.client = new Meilisearch({ host: cfg.url, apiKey: cfg.masterKey ?? undefined, timeout: REQUEST_TIMEOUT_MS, requestInit: { headers: { 'accept-encoding': 'identity' } } });
    this.index = this.client.index<LogDocument>(cfg.indexName);
    const base = new URL(cfg.url.endsWith('/') ? cfg.url : `${cfg.url}/`);
    this.documentsUrl = new URL(`indexes/${encodeURIComponent(cfg.indexName)}/documents?primaryKey=id`, base);
    this.searchUrl = new URL(`indexes/${encodeURIComponent(cfg.indexName)}/search`, base);
    this.tasksUrl = new URL('tasks', base);
    this.agent = base.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 8 }) : new HttpAgent({ keepAlive: true, maxSockets: 8 });
  }

  /** Write tasks Meilisearch reported as failed (each one's add() rejected). */
  get failedTasks(): number {
    return this.failed;
  }

  /**
   * Writes Meilisearch holds that cost it nothing to wait: tasks enqueued (not yet seen processing),
   * and all but one of those being processed, which it processes as one batch.
   */
  get queuedWrites(): number {
    let started = 0;
    for (const f of this.following.values()) if (f.started) started += 1;
    return this.following.size - Math.min(started, 1);
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
    // Enqueued tasks are durable in Meilisearch; only the idle write connections are closed.
    this.agent.destroy();
  }

  async health(): Promise<BackendHealth> {
    try {
      const h = await this.client.health();
      return h.status === 'available' ? { ok: true, kind: this.kind } : { ok: false, kind: this.kind, detail: `status ${String(h.status)}` };
    } catch (err) {
      return { ok: false, kind: this.kind, detail: (err as Error).message };
    }
  }

  async add(entries: readonly LogEntry[], onQueued?: () => void): Promise<void> {
    const write = this.write(entries, onQueued);
    this.writing.add(write);
    try {
      await write;
    } finally {
      this.writing.delete(write);
    }
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.writing]);
  }

  async search(query: LogQuery): Promise<LogSearchResult> {
    const q = normaliseQuery(query);
    const filter = [`apiKeyHex = "${hex(q.apiKey)}"`];
    if (q.level !== null) filter.push(`level = ${quote(q.level)}`);
    if (q.device !== null) filter.push(`deviceIdHex = "${hex(q.device)}"`);
    // Game logs carry no kind (older documents neither): NOT … matches a missing attribute too.
    if (q.kind === 'change') filter.push('kind = "change"');
    else if (q.kind === 'log') filter.push('NOT kind = "change"');
    if (q.from !== null) filter.push(`receivedAt >= ${q.from}`);
    if (q.to !== null) filter.push(`receivedAt <= ${q.to}`);
    const res = await this.requestOk(
      'POST',
      this.searchUrl,
      JSON.stringify({
        q: q.q,
        filter,
        sort: SORT,
        limit: q.limit,
        // Every word must match, as in the memory index; the default drops words until something does.
        matchingStrategy: 'all',
        attributesToRetrieve: RETRIEVED,
      }),
    );
    const hits = Array.isArray(res.hits) ? (res.hits as Partial<LogDocument>[]) : [];
    return { hits: hits.map(toEntry), total: typeof res.estimatedTotalHits === 'number' ? res.estimatedTotalHits : hits.length };
  }

  private async write(entries: readonly LogEntry[], onQueued?: () => void): Promise<void> {
    // NDJSON built here, one entry at a time, so one bad entry is skipped instead of failing the batch.
    const lines: string[] = [];
    const lineOf = documentLines();
    for (const e of entries) {
      if (!DOCUMENT_ID_RE.test(e.id)) {
        this.skip(e, new Error('id must be 1-511 characters of [A-Za-z0-9_-]'));
        continue;
      }
      try {
        lines.push(lineOf(normalizeLogEntry(e, this.limits)));
      } catch (err) {
        this.skip(e, err);
      }
    }
    if (lines.length === 0) return;
    const uid = await this.postDocuments(lines.join('\n'));
    this.lastTaskUid = uid;
    // Meilisearch tells what it thinks of the documents only once it processed the task; until then
    // the batch stays with the caller, which sends it again if this cannot be confirmed.
    const finished = this.finished(uid);
    onQueued?.();
    const task = await finished;
    if (task.status === 'succeeded') return;
    this.failed += 1;
    this.logger?.warn({ taskUid: uid, docs: lines.length, status: task.status, error: task.error, index: this.cfg.indexName }, 'Meilisearch log write task failed');
    // A document error is about what was sent; anything else (internal, disk full, canceled, the index
    // itself misconfigured) is not cured by bisecting, and may pass next time.
    if (task.status === 'failed' && task.error?.type === 'invalid_request' && !INDEX_ERRORS.has(task.error.code)) {
      throw new LogWriteRefused(reasonCode(task.error.code), task.error.message);
    }
    throw new Error(`Meilisearch log write task ${uid} ${task.status}${task.error ? `: ${task.error.code}: ${task.error.message}` : ''}`);
  }

  /**
   * POSTs one batch's NDJSON and resolves with its task's uid. The answer's errors are judged as the
   * client's were: a 4xx for the payload is a refusal, anything else may pass next time.
   */
  private async postDocuments(body: string): Promise<number> {
    const { status, answer, text } = await this.request('POST', this.documentsUrl, body, 'application/x-ndjson');
    if (status >= 200 && status < 300 && typeof answer?.taskUid === 'number') return answer.taskUid;
    const code = typeof answer?.code === 'string' ? answer.code : undefined;
    const message = typeof answer?.message === 'string' ? answer.message : `HTTP ${status}: ${text.slice(0, 200)}`;
    throw refusalOfAnswer(status, code, message) ?? new Error(`Meilisearch document write answered ${status}${code ? ` ${code}` : ''}: ${message}`);
  }

  /** A JSON answer that must be a 2xx, as the client's requests treated them; anything else rejects. */
  private async requestOk(method: 'GET' | 'POST', url: URL, body?: string): Promise<Record<string, unknown>> {
    const { status, answer, text } = await this.request(method, url, body, 'application/json');
    if (status >= 200 && status < 300 && answer) return answer;
    const code = typeof answer?.code === 'string' ? answer.code : undefined;
    throw new Error(`Meilisearch ${method} ${url.pathname} answered ${status}${code ? ` ${code}` : ''}: ${typeof answer?.message === 'string' ? answer.message : text.slice(0, 200)}`);
  }

  /**
   * One request on node:http with kept-alive connections, for the requests the daemon makes all the
   * time (document writes, task polls, searches), not through the client's fetch: undici's fetch
   * (streams, header objects, abort signals per request) was a sixth of the daemon's busy time in the
   * logs bench, for requests that are one body and one JSON answer.
   */
  private request(method: 'GET' | 'POST', url: URL, body: string | undefined, contentType: string): Promise<{ status: number; answer: Record<string, unknown> | null; text: string }> {
    const headers: Record<string, string | number> = {
      // As the client's requests: an uncompressed answer, nothing to inflate here.
      'accept-encoding': 'identity',
    };
    if (body !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = Buffer.byteLength(body);
    }
    if (this.cfg.masterKey) headers.authorization = `Bearer ${this.cfg.masterKey}`;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.agent, timeout: REQUEST_TIMEOUT_MS }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, answer: parseAnswer(text), text });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`Meilisearch ${method} ${url.pathname} timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Resolves with the task once Meilisearch finished it; rejects if its status cannot be read. */
  private finished(uid: number): Promise<Task> {
    return new Promise<Task>((resolve, reject) => {
      this.following.set(uid, { resolve, reject, started: false });
      this.startFollower();
    });
  }

  private startFollower(): void {
    if (this.follower) return;
    this.follower = this.follow().finally(() => {
      this.follower = null;
      // A task enqueued between the loop's last look and now would wait for nobody.
      if (this.following.size > 0) this.startFollower();
    });
  }

  /** While tasks are unfinished: every TASK_POLL_MS, one GET /tasks for all of them (finished ones end their write; processing ones are no longer queued). */
  private async follow(): Promise<void> {
    while (this.following.size > 0) {
      await new Promise((r) => setTimeout(r, TASK_POLL_MS));
      const uids = [...this.following.keys()];
      let seen: Task[];
      try {
        const url = new URL(this.tasksUrl);
        url.searchParams.set('uids', uids.join(','));
        url.searchParams.set('limit', String(uids.length));
        const answer = await this.requestOk('GET', url);
        if (!Array.isArray(answer.results)) throw new Error('Meilisearch GET /tasks answered without results');
        seen = answer.results as Task[];
      } catch (err) {
        // As a write whose task cannot be confirmed: each caller sends its batch again later.
        for (const uid of uids) {
          this.following.get(uid)?.reject(err);
          this.following.delete(uid);
        }
        continue;
      }
      for (const task of seen) {
        const f = this.following.get(task.uid);
        if (!f) continue;
        if (task.status === 'enqueued') continue;
        if (task.status === 'processing') {
          f.started = true;
          continue;
        }
        f.resolve(task);
        this.following.delete(task.uid);
      }
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

/** Meilisearch's JSON answer to a write, or null for anything else (judged by its status then). */
function parseAnswer(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A 4xx answer to a write that says the payload is at fault; auth, missing index and rate limits are not. */
function refusalOfAnswer(status: number, code: string | undefined, message: string): LogWriteRefused | null {
  if (status < 400 || status >= 500 || [401, 403, 404, 408, 429].includes(status)) return null;
  return new LogWriteRefused(reasonCode(code ?? `http_${status}`), message);
}

/** Meilisearch's error codes are snake_case words; anything else would be a poor metric label. */
function reasonCode(code: string | undefined): string {
  return code !== undefined && /^[a-z0-9_]{1,64}$/.test(code) ? code : 'invalid_document';
}

/** The values of the fields, as the text Meilisearch searches (it searched nested values, not keys, before). */
function fieldsText(fields: Record<string, unknown>): string {
  const out: string[] = [];
  const collect = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (typeof v === 'number' && Number.isFinite(v)) out.push(String(v));
    else if (typeof v === 'object' && v !== null) for (const x of Array.isArray(v) ? v : Object.values(v)) collect(x);
  };
  collect(fields);
  return out.join('\n');
}

/**
 * The document one entry becomes, as add() sends it (one NDJSON line each): for benchmarks that feed
 * Meilisearch the daemon's very documents without the daemon.
 */
export function meiliDocument(e: LogEntry, limits: LogLimits = DEFAULT_LOG_LIMITS): Record<string, unknown> {
  return { ...toDocument(normalizeLogEntry(e, limits)) };
}

/**
 * Makes the NDJSON lines of one batch's normalised entries: JSON.stringify(toDocument(e)), with the hex
 * copies of keys and devices made once per batch (one batch holds many logs of few keys and devices;
 * the copies were a tenth of the document's cost).
 */
export function documentLines(): (e: LogEntry) => string {
  const hexes = new Map<string, string>();
  const hexOf = (s: string): string => {
    let h = hexes.get(s);
    if (h === undefined) hexes.set(s, (h = hex(s)));
    return h;
  };
  return (e) => JSON.stringify(toDocument(e, hexOf));
}

function toDocument(e: LogEntry, hexOf: (s: string) => string = hex): LogDocument {
  const { node, seq } = idOrderParts(e.id);
  return {
    id: e.id,
    apiKey: e.apiKey,
    apiKeyHex: hexOf(e.apiKey),
    deviceId: e.deviceId,
    deviceIdHex: e.deviceId === null ? null : hexOf(e.deviceId),
    level: e.level,
    message: e.message,
    timestamp: e.timestamp,
    receivedAt: e.receivedAt,
    fieldsJson: JSON.stringify(e.fields),
    fieldsText: fieldsText(e.fields),
    sortNode: node,
    sortSeq: seq,
    ...(e.kind === 'change' ? { kind: 'change' as const } : {}),
  };
}

function toEntry(h: Partial<LogDocument>): LogEntry {
  return {
    id: String(h.id),
    apiKey: String(h.apiKey),
    deviceId: h.deviceId ?? null,
    level: h.level ?? '',
    message: h.message ?? '',
    timestamp: h.timestamp ?? null,
    receivedAt: h.receivedAt ?? 0,
    fields: typeof h.fieldsJson === 'string' ? parseFields(h.fieldsJson) : (h.fields ?? {}),
    ...(h.kind === 'change' ? { kind: 'change' as const } : {}),
  };
}

function parseFields(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
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
