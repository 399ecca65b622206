/**
 * The embedded Store: everything in Maps in this process, so the daemon runs with nothing else
 * installed. With a dataDir it survives restarts and kill -9: every mutation is an operation (plain
 * JSON) that apply() both performs and appends to the journal (`<dataDir>/journal-<n>.ndjson`,
 * journal.ts), and the journal is compacted into an atomically replaced snapshot (`store.json`) on
 * start, on stop, every `snapshotIntervalMs` and whenever it outgrows `journalCompactBytes`.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import type { StoreConfig } from '../config.js';
import { ObserverioError } from '../errors.js';
import type { BackendHealth, Session, User, Var } from '../model.js';
import { checkHistoryBounds, type HistoryBounds, type HistoryDraft, type HistoryEntry } from '../variables/history.js';
import type { Labels } from '../variables/labels.js';
import { withOverrideOps } from '../variables/override-list.js';
import type { Override } from '../variables/overrides.js';
import type { Op } from '../variables/strategies.js';
import type { CommitExpect, CommitManyOptions, CommitManyResult, CommitResult, DeviceRecord, StrategyRecord, VariablesStore } from '../variables/store-contract.js';
import { EARLIER_STATES } from '../variables/store-contract.js';
import { Journal, removeSegmentsBefore, replayJournal } from './journal.js';
import { LoginLimiter, type LoginOutcome, type LoginRule } from './login-limiter.js';
import { emailKey, hashPassword, newApiKey, newToken, verifyAgainstDummy, verifyPassword } from './passwords.js';
import type { Store } from './store.js';
import {
  applyCommit,
  byLastSeen,
  checkExpect,
  checkLimit,
  checkTtl,
  compareHistoryIds,
  formatHistoryId,
  nextHistoryId,
  parseBefore,
  parseHistoryId,
  plainDraft,
  plainLabels,
  plainOp,
  plainVar,
  reportedChanges,
  toEntry,
  uniqueVars,
} from './variables-common.js';
import { entrySchema, keyVariablesSchema, labelsSchema, opSchema, varSchema } from './variables-schema.js';

export interface MemoryStoreOptions {
  /** Where store.json and the journal live; null = nothing is persisted. */
  dataDir: string | null;
  logger?: Logger;
}

interface UserRecord {
  user: User;
  passwordHash: string;
}

interface VarValue {
  type: string;
  value: string;
}

const SNAPSHOT_FILE = 'store.json';
const SWEEP_INTERVAL_MS = 60_000;
/** After a journal write failed, a snapshot is retried at most this often (it is what clears the failure). */
const RECOVERY_RETRY_MS = 1000;

/**
 * Every mutation of the store, as data. A new mutation gets durability by adding its operation here,
 * a case in mutate() and its line in DURABLE, never by remembering to journal. Operations carry every
 * value chosen at the time (keys, tokens, timestamps, the outbox cap), so replaying one gives the
 * same state whatever the clock or configuration says then.
 */
export const storeOpSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('user.create'), email: z.string(), apiKey: z.string(), createdAt: z.number(), passwordHash: z.string() }).strict(),
  z.object({ t: z.literal('session.create'), token: z.string(), apiKey: z.string(), email: z.string(), expiresAt: z.number() }).strict(),
  z.object({ t: z.literal('session.delete'), token: z.string() }).strict(),
  z.object({ t: z.literal('session.expire'), token: z.string() }).strict(),
  z.object({ t: z.literal('vars.set'), apiKey: z.string(), vars: z.array(varSchema) }).strict(),
  z.object({ t: z.literal('vars.delete'), apiKey: z.string(), name: z.string() }).strict(),
  z.object({ t: z.literal('outbox.push'), apiKey: z.string(), vars: z.array(varSchema), cap: z.number().int().positive() }).strict(),
  z.object({ t: z.literal('outbox.take'), apiKey: z.string() }).strict(),
  // DESIGN.md §8 (store-contract.ts): devices, what each reported and was last sent, and commits.
  z.object({ t: z.literal('device.touch'), apiKey: z.string(), deviceId: z.string(), address: z.string().nullable(), generated: z.boolean(), at: z.number(), expiresAt: z.number() }).strict(),
  z.object({ t: z.literal('device.heartbeat'), apiKey: z.string(), deviceIds: z.array(z.string()), at: z.number(), expiresAt: z.number() }).strict(),
  z.object({ t: z.literal('device.labels'), apiKey: z.string(), deviceId: z.string(), labels: labelsSchema }).strict(),
  z.object({ t: z.literal('device.offline'), apiKey: z.string(), deviceId: z.string(), at: z.number() }).strict(),
  z.object({ t: z.literal('device.forget'), apiKey: z.string(), deviceIds: z.array(z.string()) }).strict(),
  z.object({ t: z.literal('device.reported'), apiKey: z.string(), deviceId: z.string(), vars: z.array(varSchema) }).strict(),
  // A report turn's fold: each variable's value replaced in its place, or appended (setReported).
  z.object({ t: z.literal('device.reported.merge'), apiKey: z.string(), deviceId: z.string(), vars: z.array(varSchema) }).strict(),
  z.object({ t: z.literal('device.sent'), apiKey: z.string(), deviceId: z.string(), vars: z.array(varSchema), replace: z.boolean() }).strict(),
  z.object({ t: z.literal('device.sent.forget'), apiKey: z.string(), deviceId: z.string(), names: z.array(z.string()) }).strict(),
  // The entry carries its id and the ops their every value, so replay rebuilds the same state.
  z.object({ t: z.literal('variables.commit'), apiKey: z.string(), ops: z.array(opSchema), entry: entrySchema, by: z.string(), maxEntries: z.number(), maxAgeMs: z.number() }).strict(),
  z.object({ t: z.literal('history.delivered'), apiKey: z.string(), id: z.string(), delivered: z.number() }).strict(),
  z.object({ t: z.literal('history.prune'), apiKey: z.string(), cutoff: z.number(), maxEntries: z.number() }).strict(),
]);
export type StoreOp = z.infer<typeof storeOpSchema>;

/**
 * Which operations are fsynced before their method resolves. Durable: what a person waits for and
 * cannot easily redo (registration, login, logout, a change buffered for an offline device) — rare,
 * and one fsync cost about 0.2 ms where this was measured. The others are device telemetry (i: values
 * a device re-sends when it reconnects) and outbox takes (losing one means delivering a change
 * again): they are in the kernel before the method resolves and fsynced within journalFsyncMs.
 */
const DURABLE: { readonly [T in StoreOp['t']]: boolean } = {
  'user.create': true,
  'session.create': true,
  'session.delete': true,
  'session.expire': false,
  'vars.set': false,
  // A person deleted it and was told so: a variable that comes back after a crash is a surprise.
  'vars.delete': true,
  'outbox.push': true,
  'outbox.take': false,
  // A change of overrides or strategies is what a person waits for; labels decide which overrides a
  // device gets. Presence, last seen, reports and last-sent are device telemetry the device renews
  // (it reconnects, reports, is sent its overrides again after OK); delivered counts and pruning are
  // redone or harmless to lose; forgetting a device again later costs nothing.
  'device.touch': false,
  'device.heartbeat': false,
  'device.labels': true,
  'device.offline': false,
  'device.forget': false,
  'device.reported': false,
  'device.reported.merge': false,
  'device.sent': false,
  'device.sent.forget': false,
  'variables.commit': true,
  'history.delivered': false,
  'history.prune': false,
};

const snapshotSchema = z.object({
  // 1: before the journal (no seq); 2: `seq` is the last journal record the snapshot contains;
  // 3: with `variables`, the §8 data. Versions 1 and 2 load with no §8 data (there was none then).
  version: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  savedAt: z.number(),
  seq: z.number().int().min(0).optional(),
  users: z.array(z.object({ email: z.string(), apiKey: z.string(), createdAt: z.number(), passwordHash: z.string() })),
  sessions: z.array(z.object({ token: z.string(), apiKey: z.string(), email: z.string(), expiresAt: z.number() })),
  // Arrays of [apiKey, vars] rather than objects: order matters and keys must not collide with
  // Object.prototype names.
  vars: z.array(z.tuple([z.string(), z.array(varSchema)])),
  outbox: z.array(z.tuple([z.string(), z.array(varSchema)])),
  variables: z.array(z.tuple([z.string(), keyVariablesSchema])).optional(),
});
type Snapshot = z.infer<typeof snapshotSchema>;

function toVars(m: Map<string, VarValue>): Var[] {
  return [...m].map(([name, v]) => ({ name, type: v.type, value: v.value }));
}

/** Plain copies: a caller's objects may carry more fields, which must not reach the journal. */
function plainVars(vars: readonly Var[]): Var[] {
  return vars.map((v) => ({ name: v.name, type: v.type, value: v.value }));
}

const RESOLVED = Promise.resolve();

/** One API key's §8 data; laid out as the Redis store lays it out, so both answer alike. */
interface KeyVariables {
  devices: Map<string, { lastAddress: string | null; generated: boolean }>;
  labels: Map<string, Labels>;
  /** deviceId → last seen (ms): the key's devices are exactly these. */
  seen: Map<string, number>;
  /** deviceId → presence expiry (ms); online while it is in the future. */
  presence: Map<string, number>;
  reported: Map<string, Var[]>;
  sent: Map<string, Map<string, Var>>;
  /** In applyOps order, handed out as it is and never changed (override-list.ts indexes it by identity; readonly by type, not frozen: V8 scans frozen arrays slower). */
  overrides: readonly Override[];
  strategies: Map<string, StrategyRecord>;
  stateVersion: number;
  /** Oldest first, ids increasing. */
  history: HistoryEntry[];
  /** The newest id ever given, kept after pruning so ids never repeat. */
  lastId: string | null;
}

const NO_OVERRIDES: readonly Override[] = Object.freeze([]);

function emptyKeyVariables(): KeyVariables {
  return {
    devices: new Map(),
    labels: new Map(),
    seen: new Map(),
    presence: new Map(),
    reported: new Map(),
    sent: new Map(),
    overrides: NO_OVERRIDES,
    strategies: new Map(),
    stateVersion: 0,
    history: [],
    lastId: null,
  };
}

/** Stored objects are handed out as they are, so nobody may change them (targets' device sets are cached by identity). */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** Drops the entries older than `cutoff` (by their id's time), then the oldest past `maxEntries`; returns how many. */
function pruneEntries(history: HistoryEntry[], cutoff: number, maxEntries: number): number {
  let drop = 0;
  while (drop < history.length && (parseHistoryId((history[drop] as HistoryEntry).id)?.ms ?? 0) < cutoff) drop++;
  drop = Math.max(drop, history.length - maxEntries);
  if (drop > 0) history.splice(0, drop);
  return drop;
}

export class MemoryStore implements Store, VariablesStore {
  readonly kind = 'memory' as const;
  private readonly log: Logger;
  private readonly dataDir: string | null;
  private readonly file: string | null;

  /** Keyed by emailKey(email). */
  private readonly users = new Map<string, UserRecord>();
  /** apiKey → emailKey. */
  private readonly apiKeys = new Map<string, string>();
  private readonly sessions = new Map<string, Session>();
  /** A Map per key keeps variables in first-seen order; set() on an existing name keeps its place. */
  private readonly vars = new Map<string, Map<string, VarValue>>();
  /** Map order is push order: a replaced variable is deleted and re-added so it moves to the end. */
  private readonly outbox = new Map<string, Map<string, VarValue>>();
  /** apiKey → its §8 data. */
  private readonly variables = new Map<string, KeyVariables>();
  /** Per key, the version this store's last commitMany left, while nothing refused since (CommitManyOptions.chained). */
  private readonly lastCommitLeft = new Map<string, number>();
  /** Per key, the states its last commits replaced, newest first (EARLIER_STATES): lastState(key, version). */
  private readonly earlier = new Map<string, Array<{ overrides: readonly Override[]; strategies: readonly StrategyRecord[]; stateVersion: number }>>();
  /** Failed sign-ins per emailKey; never journaled (a restart forgets them, as it always has). */
  private readonly logins = new LoginLimiter();

  /** Null before start() and after stop(), and always without a dataDir: then apply() only mutates. */
  private journal: Journal | null = null;
  /** False until start() has read (or set aside) the old snapshot: only then may stop() replace it. */
  private loaded = false;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Bumped on every change, so an idle store does not rewrite the same snapshot every interval. */
  private changes = 0;
  private savedChanges = 0;
  /** Size of the last snapshot: the journal is compacted once it outgrows both this and journalCompactBytes. */
  private snapshotBytes = 0;
  /** The journal record the last snapshot written or loaded contains. */
  private snapshotSeq = 0;
  private compacting = false;
  private lastRecoveryAttempt = 0;
  /** Snapshots are serialised: a timer tick must not race the final one written by stop(). */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly cfg: StoreConfig,
    opts: MemoryStoreOptions,
  ) {
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.dataDir = opts.dataDir;
    this.file = opts.dataDir === null ? null : join(opts.dataDir, SNAPSHOT_FILE);
  }

  async start(): Promise<void> {
    if (this.sweepTimer) return;
    if (this.dataDir && this.file) {
      await mkdir(this.dataDir, { recursive: true });
      // A restart of the store's worker (stop, then start) keeps the data in memory, which is newer
      // than the snapshot (writes between stop and start are memory only): only the first start loads
      // the snapshot and replays the journal into memory; a later one only finds where the journal ends.
      const restarting = this.loaded;
      const snapshotSeq = restarting ? this.snapshotSeq : await this.load(this.file);
      const report = await replayJournal(this.dataDir, snapshotSeq, (raw) => storeOpSchema.parse(raw), (op) => (restarting ? undefined : this.mutate(op)), this.log);
      if (report.applied > 0 || report.skipped > 0 || report.tornTail || report.corrupt) {
        const { applied, skipped, tornTail, lastSeq } = report;
        this.log.info({ applied, skipped, tornTail, corrupt: report.corrupt !== null, lastSeq, restarting }, 'store journal replayed');
      }
      this.loaded = true;
      // Compacted before the journal reopens, so the replayed records are not replayed again at every
      // start and a segment set aside is not needed to rebuild this state. If the snapshot cannot be
      // written the old segments stay and the daemon runs on: the journal alone keeps it durable.
      let compacted = true;
      if (report.applied > 0 || report.tornTail || report.corrupt || (restarting && this.changes !== this.savedChanges)) {
        await this.serialised(() => this.writeSnapshot(report.lastSeq)).catch((err: Error) => {
          compacted = false;
          this.log.error({ err, file: this.file }, 'store snapshot after replay failed; keeping the journal');
        });
      }
      if (compacted) await removeSegmentsBefore(this.dataDir, report.lastGeneration + 1);
      this.journal = new Journal({ dir: this.dataDir, fsyncMs: this.cfg.journalFsyncMs, logger: this.log }, report.lastSeq, report.lastGeneration);
      if (this.cfg.snapshotIntervalMs > 0) {
        this.snapshotTimer = setInterval(() => void this.snapshotIfChanged(), this.cfg.snapshotIntervalMs);
        this.snapshotTimer.unref();
      }
    }
    this.sweepTimer = setInterval(() => this.sweepSessions(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.snapshotTimer);
    clearInterval(this.sweepTimer);
    this.snapshotTimer = undefined;
    this.sweepTimer = undefined;
    const journal = this.journal;
    // From here on mutations are memory only, as before start(): the final snapshot is the last word.
    this.journal = null;
    if (journal) await journal.close();
    if (!this.file || !this.loaded) return;
    await this.serialised(async () => {
      await this.writeSnapshot(journal?.lastSeq ?? 0);
      // Everything is in the snapshot: a clean stop leaves store.json alone in the folder.
      await journal?.removeBefore(Infinity);
    });
  }

  async health(): Promise<BackendHealth> {
    if (!this.file) return { ok: true, kind: 'memory', detail: 'not persisted' };
    const failure = this.journal?.failure;
    if (failure) return { ok: false, kind: 'memory', detail: `journal write failed: ${failure.message}` };
    return { ok: true, kind: 'memory', detail: this.journal ? `snapshot ${this.file}, journal ${this.journal.file}` : `snapshot ${this.file}` };
  }

  async createUser(email: string, password: string): Promise<User> {
    const id = emailKey(email);
    // Checked before hashing to save the work, and again after: another createUser may have won meanwhile.
    if (this.users.has(id)) throw new ObserverioError('email_taken');
    const passwordHash = await hashPassword(password);
    if (this.users.has(id)) throw new ObserverioError('email_taken');
    let apiKey = newApiKey();
    while (this.apiKeys.has(apiKey)) apiKey = newApiKey();
    const createdAt = Date.now();
    await this.apply({ t: 'user.create', email, apiKey, createdAt, passwordHash });
    return { email, apiKey, createdAt };
  }

  async authenticate(email: string, password: string): Promise<User | null> {
    const rec = this.users.get(emailKey(email));
    if (!rec) return verifyAgainstDummy(password).then(() => null);
    return (await verifyPassword(password, rec.passwordHash)) ? { ...rec.user } : null;
  }

  async verifyApiKey(apiKey: string): Promise<boolean> {
    return this.apiKeys.has(apiKey);
  }

  async createSession(user: User, ttlMs: number): Promise<Session> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`session ttl must be a positive number of ms, got ${ttlMs}`);
    const session: Session = { token: newToken(), apiKey: user.apiKey, email: user.email, expiresAt: Date.now() + Math.ceil(ttlMs) };
    await this.apply({ t: 'session.create', ...session });
    return session;
  }

  async getSession(token: string): Promise<Session | null> {
    const s = this.sessions.get(token);
    if (!s) return null;
    if (s.expiresAt <= Date.now()) {
      this.expire(token);
      return null;
    }
    return { ...s };
  }

  async deleteSession(token: string): Promise<void> {
    if (this.sessions.has(token)) await this.apply({ t: 'session.delete', token });
  }

  async loginBegin(key: string, rule: LoginRule): Promise<number | null> {
    return this.logins.begin(key, rule);
  }

  async loginEnd(key: string, outcome: LoginOutcome, rule: LoginRule): Promise<void> {
    this.logins.end(key, outcome, rule);
  }

  async setVars(apiKey: string, vars: readonly Var[]): Promise<void> {
    if (vars.length === 0) return;
    await this.apply({ t: 'vars.set', apiKey, vars: plainVars(vars) });
  }

  async getVars(apiKey: string): Promise<Var[]> {
    const m = this.vars.get(apiKey);
    return m ? toVars(m) : [];
  }

  async getVarTypes(apiKey: string, names: readonly string[]): Promise<Map<string, string>> {
    const m = this.vars.get(apiKey);
    const out = new Map<string, string>();
    for (const name of names) {
      const v = m?.get(name);
      if (v) out.set(name, v.type);
    }
    return out;
  }

  async deleteVar(apiKey: string, name: string): Promise<boolean> {
    if (!this.vars.get(apiKey)?.has(name)) return false;
    await this.apply({ t: 'vars.delete', apiKey, name });
    return true;
  }

  async outboxPush(apiKey: string, vars: readonly Var[]): Promise<number> {
    if (vars.length === 0) return this.outbox.get(apiKey)?.size ?? 0;
    const written = this.apply({ t: 'outbox.push', apiKey, vars: plainVars(vars), cap: this.cfg.outboxMaxPerKey });
    // Read now: by the time the write is durable, other pushes or a take may have changed it.
    const length = this.outbox.get(apiKey)?.size ?? 0;
    await written;
    return length;
  }

  async outboxTake(apiKey: string): Promise<Var[]> {
    const m = this.outbox.get(apiKey);
    if (!m) return [];
    const taken = toVars(m);
    await this.apply({ t: 'outbox.take', apiKey });
    return taken;
  }

  async outboxLength(apiKey: string): Promise<number> {
    return this.outbox.get(apiKey)?.size ?? 0;
  }

  // DESIGN.md §8 (store-contract.ts) ------------------------------------------------------------------

  private keyVars(apiKey: string): KeyVariables | undefined {
    return this.variables.get(apiKey);
  }

  private keyVarsFor(apiKey: string): KeyVariables {
    let k = this.variables.get(apiKey);
    if (!k) this.variables.set(apiKey, (k = emptyKeyVariables()));
    return k;
  }

  async touchDevice(apiKey: string, device: { deviceId: string; address: string | null; generated: boolean }, at: number, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    await this.apply({ t: 'device.touch', apiKey, deviceId: device.deviceId, address: device.address, generated: device.generated, at, expiresAt: at + ttl });
  }

  async touchDevices(apiKey: string, devices: ReadonlyArray<{ deviceId: string; address: string | null; generated: boolean }>, at: number, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    // In order, one journal entry each: the same records as that many touchDevice calls.
    await Promise.all(devices.map((d) => this.apply({ t: 'device.touch', apiKey, deviceId: d.deviceId, address: d.address, generated: d.generated, at, expiresAt: at + ttl })));
  }

  async heartbeat(apiKey: string, deviceIds: readonly string[], at: number, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    if (deviceIds.length === 0) return;
    await this.apply({ t: 'device.heartbeat', apiKey, deviceIds: [...new Set(deviceIds)], at, expiresAt: at + ttl });
  }

  async setLabels(apiKey: string, deviceId: string, labels: Labels): Promise<void> {
    await this.apply({ t: 'device.labels', apiKey, deviceId, labels: plainLabels(labels) });
  }

  async markOffline(apiKey: string, deviceId: string, at: number): Promise<void> {
    const k = this.keyVars(apiKey);
    if (!k || (!k.seen.has(deviceId) && !k.presence.has(deviceId))) return;
    await this.apply({ t: 'device.offline', apiKey, deviceId, at });
  }

  private deviceRecord(k: KeyVariables, deviceId: string, lastSeen: number, now: number): DeviceRecord {
    const d = k.devices.get(deviceId);
    return {
      deviceId,
      labels: k.labels.get(deviceId) ?? {},
      online: (k.presence.get(deviceId) ?? 0) > now,
      lastSeen,
      lastAddress: d?.lastAddress ?? null,
      generated: d?.generated ?? false,
    };
  }

  async listDevices(apiKey: string, rememberMs: number, now: number): Promise<DeviceRecord[]> {
    const k = this.keyVars(apiKey);
    if (!k) return [];
    const out: DeviceRecord[] = [];
    for (const [id, lastSeen] of k.seen) if (lastSeen >= now - rememberMs || (k.presence.get(id) ?? 0) > now) out.push(this.deviceRecord(k, id, lastSeen, now));
    return out.sort(byLastSeen);
  }

  async listOfflineDevices(apiKey: string, rememberMs: number, now: number): Promise<Array<{ deviceId: string; labels: Labels }>> {
    const k = this.keyVars(apiKey);
    if (!k) return [];
    const out: Array<{ deviceId: string; labels: Labels }> = [];
    for (const [id, lastSeen] of k.seen) if (lastSeen >= now - rememberMs && !((k.presence.get(id) ?? 0) > now)) out.push({ deviceId: id, labels: k.labels.get(id) ?? {} });
    return out;
  }

  async listDeviceViews(apiKey: string, rememberMs: number, now: number): Promise<Array<{ deviceId: string; labels: Labels }>> {
    const k = this.keyVars(apiKey);
    if (!k) return [];
    const out: Array<{ deviceId: string; labels: Labels }> = [];
    for (const [id, lastSeen] of k.seen) if (lastSeen >= now - rememberMs || (k.presence.get(id) ?? 0) > now) out.push({ deviceId: id, labels: k.labels.get(id) ?? {} });
    return out;
  }

  async getDevice(apiKey: string, deviceId: string, now: number): Promise<DeviceRecord | null> {
    const k = this.keyVars(apiKey);
    const lastSeen = k?.seen.get(deviceId);
    return k && lastSeen !== undefined ? this.deviceRecord(k, deviceId, lastSeen, now) : null;
  }

  async forgetDevices(apiKey: string, before: number): Promise<number> {
    const k = this.keyVars(apiKey);
    if (!k) return 0;
    const now = Date.now();
    const ids: string[] = [];
    for (const [id, lastSeen] of k.seen) if (lastSeen < before && !((k.presence.get(id) ?? 0) > now)) ids.push(id);
    if (ids.length > 0) await this.apply({ t: 'device.forget', apiKey, deviceIds: ids });
    return ids.length;
  }

  async setReported(apiKey: string, deviceId: string, vars: readonly Var[]): Promise<void> {
    // The stored list with values changed and names appended (a report turn's fold): the journal gets
    // only those, not the whole list (a device of a thousand variables wrote 50 KB a turn).
    const before = this.keyVars(apiKey)?.reported.get(deviceId);
    const places = before && vars.length > 0 ? reportedChanges(before, vars) : null;
    if (places) return places.length > 0 ? this.apply({ t: 'device.reported.merge', apiKey, deviceId, vars: places.map((i) => plainVar(vars[i] as Var)) }) : undefined;
    await this.apply({ t: 'device.reported', apiKey, deviceId, vars: uniqueVars(vars) });
  }

  async getReported(apiKey: string, deviceId: string): Promise<Var[]> {
    return (this.keyVars(apiKey)?.reported.get(deviceId) ?? []).map((v) => ({ ...v }));
  }

  async setLastSent(apiKey: string, deviceId: string, vars: readonly Var[], replace: boolean): Promise<void> {
    if (vars.length === 0 && !replace) return;
    await this.apply({ t: 'device.sent', apiKey, deviceId, vars: uniqueVars(vars), replace });
  }

  async forgetLastSent(apiKey: string, deviceId: string, names: readonly string[]): Promise<void> {
    const sent = this.keyVars(apiKey)?.sent.get(deviceId);
    if (!sent || !names.some((n) => sent.has(n))) return;
    await this.apply({ t: 'device.sent.forget', apiKey, deviceId, names: [...names] });
  }

  async getLastSent(apiKey: string, deviceId: string): Promise<Map<string, Var>> {
    const sent = this.keyVars(apiKey)?.sent.get(deviceId);
    return new Map([...(sent ?? [])].map(([n, v]) => [n, { ...v }]));
  }

  async getSentAndReported(apiKey: string, deviceIds: readonly string[], names?: readonly string[]): Promise<Array<{ lastSent: Map<string, Var>; reported: Var[] }>> {
    return Promise.all(
      deviceIds.map(async (id) => {
        const all = await this.getLastSent(apiKey, id);
        const lastSent = names ? new Map(names.flatMap((n) => (all.has(n) ? [[n, all.get(n) as Var] as const] : []))) : all;
        return { lastSent, reported: await this.getReported(apiKey, id) };
      }),
    );
  }

  async addLastSent(apiKey: string, sends: ReadonlyArray<{ deviceId: string; vars: readonly Var[] }>): Promise<void> {
    await Promise.all(sends.map((s) => this.setLastSent(apiKey, s.deviceId, s.vars, false)));
  }

  async replaceLastSent(apiKey: string, sends: ReadonlyArray<{ deviceId: string; vars: readonly Var[] }>): Promise<void> {
    await Promise.all(sends.map((x) => this.setLastSent(apiKey, x.deviceId, x.vars, true)));
  }

  async readState(apiKey: string): Promise<{ overrides: readonly Override[]; strategies: StrategyRecord[]; stateVersion: number }> {
    const k = this.keyVars(apiKey);
    return { overrides: k?.overrides ?? NO_OVERRIDES, strategies: [...(k?.strategies.values() ?? [])], stateVersion: k?.stateVersion ?? 0 };
  }

  /** The current state (this store is the only one), or the one at `version` while it is among the last few. */
  lastState(apiKey: string, version?: number): Promise<{ overrides: readonly Override[]; strategies: StrategyRecord[]; stateVersion: number }> {
    const at = version === undefined ? undefined : this.earlier.get(apiKey)?.find((s) => s.stateVersion === version);
    return at ? Promise.resolve({ overrides: at.overrides, strategies: [...at.strategies], stateVersion: at.stateVersion }) : this.readState(apiKey);
  }

  async listOverrides(apiKey: string): Promise<Override[]> {
    return [...(this.keyVars(apiKey)?.overrides ?? [])];
  }

  async listStrategies(apiKey: string): Promise<StrategyRecord[]> {
    return [...(this.keyVars(apiKey)?.strategies.values() ?? [])];
  }

  async getStrategy(apiKey: string, name: string): Promise<StrategyRecord | null> {
    return this.keyVars(apiKey)?.strategies.get(name) ?? null;
  }

  /** One commit, with its strategy check: commitMany of one, called in the same synchronous step as the check. */
  async commit(apiKey: string, ops: readonly Op[], draft: HistoryDraft, expect: CommitExpect, bounds: HistoryBounds, by: string): Promise<CommitResult> {
    checkHistoryBounds(bounds);
    const k = this.keyVars(apiKey);
    const failed = checkExpect(k?.stateVersion ?? 0, [...(k?.strategies.values() ?? [])], expect);
    if (failed) return failed;
    const r = await this.commitMany(apiKey, [{ ops, draft, by }], k?.stateVersion ?? 0, bounds);
    return r.ok ? { ok: true, entry: r.entries[0] as HistoryEntry, stateVersion: r.stateVersion } : { ok: false, stateVersion: r.stateVersion };
  }

  async commitMany(apiKey: string, commits: ReadonlyArray<{ ops: readonly Op[]; draft: HistoryDraft; by: string }>, stateVersion: number, bounds: HistoryBounds, options: CommitManyOptions = {}): Promise<CommitManyResult> {
    checkHistoryBounds(bounds);
    // One synchronous step, as commit: checked once, then every commit applied before anything else runs.
    const now = this.keyVars(apiKey)?.stateVersion ?? 0;
    // Chained: only right behind this store's last commitMany of the key, taken and with nothing
    // committed since (the version it left is still the key's).
    const behind = !options.chained || this.lastCommitLeft.get(apiKey) === stateVersion;
    if (now !== stateVersion || !behind) {
      this.lastCommitLeft.delete(apiKey);
      return { ok: false, stateVersion: now };
    }
    // The state these commits replace, for lastState(key, version): a delivery pass of it may run after them.
    const replaced = this.keyVars(apiKey);
    if (replaced && commits.length > 0) {
      const list = this.earlier.get(apiKey) ?? [];
      list.unshift({ overrides: replaced.overrides, strategies: [...replaced.strategies.values()], stateVersion: replaced.stateVersion });
      if (list.length > EARLIER_STATES) list.length = EARLIER_STATES;
      this.earlier.set(apiKey, list);
    }
    const entries: HistoryEntry[] = [];
    const written: Promise<void>[] = [];
    for (const c of commits) {
      const k = this.keyVars(apiKey);
      const last = k?.lastId ? parseHistoryId(k.lastId) : null;
      const entry = toEntry(formatHistoryId(nextHistoryId(last, c.draft.at)), plainDraft(c.draft));
      written.push(this.apply({ t: 'variables.commit', apiKey, ops: c.ops.map(plainOp), entry, by: c.by, maxEntries: bounds.maxEntries, maxAgeMs: bounds.maxAgeMs }));
      entries.push(entry);
    }
    const after = this.keyVars(apiKey)?.stateVersion ?? 0;
    // As on Redis, nothing to commit is nothing to chain on.
    if (commits.length > 0) this.lastCommitLeft.set(apiKey, after);
    else this.lastCommitLeft.delete(apiKey);
    await Promise.all(written);
    return { ok: true, entries, stateVersion: after };
  }

  async setDelivered(apiKey: string, entryId: string, delivered: number): Promise<void> {
    await this.setDeliveredMany(apiKey, [{ id: entryId, delivered }]);
  }

  async setDeliveredMany(apiKey: string, counts: ReadonlyArray<{ id: string; delivered: number }>): Promise<void> {
    const h = this.keyVars(apiKey)?.history;
    if (!h || counts.length === 0) return;
    // One pass over the history for the lot, not one each (thousands of entries, hundreds of counts).
    const ids = new Set(h.map((e) => e.id));
    const written: Array<Promise<void>> = [];
    for (const c of counts) if (ids.has(c.id)) written.push(this.apply({ t: 'history.delivered', apiKey, id: c.id, delivered: c.delivered }));
    await Promise.all(written);
  }

  async listHistory(apiKey: string, options: { limit: number; before?: string }): Promise<HistoryEntry[]> {
    const limit = checkLimit(options.limit);
    const before = parseBefore(options.before);
    const h = this.keyVars(apiKey)?.history ?? [];
    const out: HistoryEntry[] = [];
    for (let i = h.length - 1; i >= 0 && out.length < limit; i--) {
      const e = h[i] as HistoryEntry;
      if (before && compareHistoryIds(parseHistoryId(e.id) ?? { ms: 0, seq: 0 }, before) >= 0) continue;
      out.push(e);
    }
    return out;
  }

  async getHistoryEntry(apiKey: string, id: string): Promise<HistoryEntry | null> {
    return this.keyVars(apiKey)?.history.find((e) => e.id === id) ?? null;
  }

  async historySince(apiKey: string, id: string): Promise<HistoryEntry[] | null> {
    const h = this.keyVars(apiKey)?.history ?? [];
    const at = h.findIndex((e) => e.id === id);
    return at < 0 ? null : h.slice(at).reverse();
  }

  async pruneHistory(apiKey: string, bounds: HistoryBounds, now: number): Promise<number> {
    checkHistoryBounds(bounds);
    const h = this.keyVars(apiKey)?.history;
    if (!h) return 0;
    const cutoff = now - bounds.maxAgeMs;
    const dropped = pruneEntries([...h], cutoff, bounds.maxEntries);
    if (dropped > 0) await this.apply({ t: 'history.prune', apiKey, cutoff, maxEntries: bounds.maxEntries });
    return dropped;
  }

  /**
   * The one way state changes: performs the operation, then journals it. The returned promise settles
   * when the journal has it (durable operations: fsynced); memory changes at once, so readers see the
   * change before it is durable, and it is in the kernel before any reader's answer can leave.
   */
  private apply(op: StoreOp): Promise<void> {
    this.mutate(op);
    this.changes++;
    const journal = this.journal;
    if (!journal) return RESOLVED;
    const written = journal.append(op, DURABLE[op.t]);
    this.compactIfDue(journal);
    return written.catch((err: Error) => {
      throw new ObserverioError('unavailable', `the embedded store cannot write its journal (${err.message})`);
    });
  }

  /** Pure state change; replay calls it for every journal record, so it must not journal or fail. */
  private mutate(op: StoreOp): void {
    switch (op.t) {
      case 'user.create': {
        const id = emailKey(op.email);
        this.users.set(id, { user: { email: op.email, apiKey: op.apiKey, createdAt: op.createdAt }, passwordHash: op.passwordHash });
        this.apiKeys.set(op.apiKey, id);
        return;
      }
      case 'session.create':
        this.sessions.set(op.token, { token: op.token, apiKey: op.apiKey, email: op.email, expiresAt: op.expiresAt });
        return;
      case 'session.delete':
      case 'session.expire':
        this.sessions.delete(op.token);
        return;
      case 'vars.set': {
        let m = this.vars.get(op.apiKey);
        if (!m) this.vars.set(op.apiKey, (m = new Map()));
        for (const v of op.vars) m.set(v.name, { type: v.type, value: v.value });
        return;
      }
      case 'vars.delete': {
        const m = this.vars.get(op.apiKey);
        if (m?.delete(op.name) && m.size === 0) this.vars.delete(op.apiKey);
        return;
      }
      case 'outbox.push': {
        let m = this.outbox.get(op.apiKey);
        if (!m) this.outbox.set(op.apiKey, (m = new Map()));
        for (const v of op.vars) {
          m.delete(v.name);
          m.set(v.name, { type: v.type, value: v.value });
        }
        for (const oldest of m.keys()) {
          if (m.size <= op.cap) break;
          m.delete(oldest);
        }
        return;
      }
      case 'outbox.take':
        this.outbox.delete(op.apiKey);
        return;
      case 'device.touch': {
        const k = this.keyVarsFor(op.apiKey);
        k.devices.set(op.deviceId, { lastAddress: op.address, generated: op.generated });
        k.seen.set(op.deviceId, Math.max(k.seen.get(op.deviceId) ?? -Infinity, op.at));
        k.presence.set(op.deviceId, Math.max(k.presence.get(op.deviceId) ?? -Infinity, op.expiresAt));
        return;
      }
      case 'device.heartbeat': {
        const k = this.keyVarsFor(op.apiKey);
        for (const id of op.deviceIds) {
          k.seen.set(id, Math.max(k.seen.get(id) ?? -Infinity, op.at));
          k.presence.set(id, Math.max(k.presence.get(id) ?? -Infinity, op.expiresAt));
        }
        return;
      }
      case 'device.labels':
        this.keyVarsFor(op.apiKey).labels.set(op.deviceId, deepFreeze(op.labels));
        return;
      case 'device.offline': {
        const k = this.keyVarsFor(op.apiKey);
        k.presence.delete(op.deviceId);
        const seen = k.seen.get(op.deviceId);
        if (seen !== undefined) k.seen.set(op.deviceId, Math.max(seen, op.at));
        return;
      }
      case 'device.forget': {
        const k = this.keyVarsFor(op.apiKey);
        for (const id of op.deviceIds) {
          k.devices.delete(id);
          k.labels.delete(id);
          k.seen.delete(id);
          k.presence.delete(id);
          k.reported.delete(id);
          k.sent.delete(id);
        }
        return;
      }
      case 'device.reported': {
        const k = this.keyVarsFor(op.apiKey);
        if (op.vars.length === 0) k.reported.delete(op.deviceId);
        else k.reported.set(op.deviceId, op.vars);
        return;
      }
      case 'device.reported.merge': {
        const k = this.keyVarsFor(op.apiKey);
        const list = [...(k.reported.get(op.deviceId) ?? [])];
        const at = new Map(list.map((v, i) => [v.name, i]));
        for (const v of op.vars) {
          const i = at.get(v.name);
          if (i !== undefined) list[i] = v;
          else at.set(v.name, list.push(v) - 1);
        }
        if (list.length > 0) k.reported.set(op.deviceId, list);
        return;
      }
      case 'device.sent': {
        const k = this.keyVarsFor(op.apiKey);
        const sent = op.replace ? new Map<string, Var>() : (k.sent.get(op.deviceId) ?? new Map<string, Var>());
        for (const v of op.vars) sent.set(v.name, v);
        if (sent.size === 0) k.sent.delete(op.deviceId);
        else k.sent.set(op.deviceId, sent);
        return;
      }
      case 'device.sent.forget': {
        const k = this.keyVarsFor(op.apiKey);
        const sent = k.sent.get(op.deviceId);
        if (!sent) return;
        for (const n of op.names) sent.delete(n);
        if (sent.size === 0) k.sent.delete(op.deviceId);
        return;
      }
      case 'variables.commit': {
        const k = this.keyVarsFor(op.apiKey);
        // Only the overrides set here are new; the rest of the list is frozen already.
        for (const o of op.ops) if (o.kind === 'override.set') deepFreeze(o.override);
        const next = applyCommit({ overrides: k.overrides, strategies: [...k.strategies.values()] }, op.ops, op.entry.at, op.by);
        k.overrides = next.overrides;
        k.strategies = new Map(next.strategies.map((s) => [s.name, deepFreeze(s)]));
        k.stateVersion++;
        k.history.push(deepFreeze(op.entry));
        k.lastId = op.entry.id;
        pruneEntries(k.history, (parseHistoryId(op.entry.id)?.ms ?? 0) - op.maxAgeMs, op.maxEntries);
        return;
      }
      case 'history.delivered': {
        const h = this.keyVarsFor(op.apiKey).history;
        // Counts are set right after their commit: the entry is among the newest, so look from the end.
        const i = h.findLastIndex((e) => e.id === op.id);
        if (i >= 0) h[i] = deepFreeze({ ...(h[i] as HistoryEntry), delivered: op.delivered });
        return;
      }
      case 'history.prune':
        pruneEntries(this.keyVarsFor(op.apiKey).history, op.cutoff, op.maxEntries);
        return;
      default: {
        const never: never = op;
        throw new Error(`unknown store operation ${JSON.stringify(never)}`);
      }
    }
  }

  /** Expiry is journaled like any change but nobody waits for it; a failure is already logged by the journal. */
  private expire(token: string): void {
    this.apply({ t: 'session.expire', token }).catch(() => undefined);
  }

  private sweepSessions(): void {
    const now = Date.now();
    for (const [token, s] of this.sessions) if (s.expiresAt <= now) this.expire(token);
  }

  private compactIfDue(journal: Journal): void {
    if (this.compacting) return;
    if (journal.failure) {
      if (Date.now() - this.lastRecoveryAttempt < RECOVERY_RETRY_MS) return;
      this.lastRecoveryAttempt = Date.now();
    } else if (journal.bytes < Math.max(this.cfg.journalCompactBytes, this.snapshotBytes)) {
      return;
    }
    this.compacting = true;
    this.compact()
      .catch((err: Error) => this.log.error({ err, file: this.file }, 'store journal compaction failed'))
      .finally(() => (this.compacting = false));
  }

  /**
   * Starts a new journal segment and writes a snapshot of exactly what the older segments hold, in
   * one synchronous step; once the snapshot is safely on disk the older segments are deleted.
   */
  private compact(): Promise<void> {
    return this.serialised(async () => {
      const journal = this.journal;
      if (!journal) return;
      const { cutSeq, generation } = journal.rotate();
      await this.writeSnapshot(cutSeq);
      journal.recovered();
      await journal.removeBefore(generation);
    });
  }

  private async load(file: string): Promise<number> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      await this.setAside(file, err as Error);
      return 0;
    }
    let snap: Snapshot;
    try {
      snap = snapshotSchema.parse(JSON.parse(text));
    } catch (err) {
      await this.setAside(file, err as Error);
      return 0;
    }
    const now = Date.now();
    for (const u of snap.users) {
      const id = emailKey(u.email);
      this.users.set(id, { user: { email: u.email, apiKey: u.apiKey, createdAt: u.createdAt }, passwordHash: u.passwordHash });
      this.apiKeys.set(u.apiKey, id);
    }
    for (const s of snap.sessions) if (s.expiresAt > now) this.sessions.set(s.token, s);
    for (const [apiKey, vs] of snap.vars) this.vars.set(apiKey, new Map(vs.map((v) => [v.name, { type: v.type, value: v.value }])));
    for (const [apiKey, vs] of snap.outbox) this.outbox.set(apiKey, new Map(vs.map((v) => [v.name, { type: v.type, value: v.value }])));
    for (const [apiKey, k] of snap.variables ?? []) {
      this.variables.set(apiKey, {
        devices: new Map(k.devices),
        labels: new Map(k.labels.map(([id, l]) => [id, deepFreeze(l)])),
        seen: new Map(k.seen),
        presence: new Map(k.presence),
        reported: new Map(k.reported),
        sent: new Map(k.sent.map(([id, vs]) => [id, new Map(vs.map((v) => [v.name, v]))])),
        // As a Map by overrideKey would keep them: a key listed twice, the later in the first one's place.
        overrides: withOverrideOps(NO_OVERRIDES, k.overrides.map((o): Op => ({ kind: 'override.set', override: deepFreeze(o) }))),
        strategies: new Map(k.strategies.map((s) => [s.name, deepFreeze(s)])),
        stateVersion: k.stateVersion,
        history: k.history.map(deepFreeze),
        lastId: k.lastId,
      });
    }
    this.snapshotBytes = text.length;
    this.log.info({ file, users: this.users.size, keys: this.vars.size, seq: snap.seq ?? 0 }, 'store snapshot loaded');
    this.snapshotSeq = snap.seq ?? 0;
    return this.snapshotSeq;
  }

  /**
   * A snapshot we cannot read is moved out of the way, not deleted (someone may want to recover it)
   * and not left in place (the next snapshot would overwrite it). If even the rename fails we refuse to
   * start rather than silently replace the operator's data on the next write.
   */
  private async setAside(file: string, reason: Error): Promise<void> {
    const aside = `${file}.corrupt-${Date.now()}`;
    try {
      await rename(file, aside);
    } catch (err) {
      throw new Error(`store snapshot ${file} is unreadable (${reason.message}) and cannot be moved aside: ${(err as Error).message}`);
    }
    this.log.warn({ file, movedTo: aside, err: reason.message }, 'store snapshot unreadable; moved aside, starting empty');
  }

  private async snapshotIfChanged(): Promise<void> {
    if (this.changes === this.savedChanges) return;
    await this.compact().catch((err: Error) => this.log.error({ err, file: this.file }, 'store snapshot failed'));
  }

  private serialised(run: () => Promise<void>): Promise<void> {
    const next = this.writing.then(run, run);
    this.writing = next.catch(() => undefined);
    return next;
  }

  /**
   * Captures the state (synchronously, so it is exactly the state after record `seq`), writes it to a
   * temp file, fsyncs it, renames it over store.json and fsyncs the folder, so a crash leaves the old
   * or the new file, never half of one, and the rename itself is durable.
   */
  private async writeSnapshot(seq: number): Promise<void> {
    const file = this.file;
    if (!file) return;
    const changes = this.changes;
    const now = Date.now();
    const snap: Snapshot = {
      version: 3,
      savedAt: now,
      seq,
      users: [...this.users.values()].map((r) => ({ ...r.user, passwordHash: r.passwordHash })),
      sessions: [...this.sessions.values()].filter((s) => s.expiresAt > now),
      vars: [...this.vars].map(([k, m]) => [k, toVars(m)]),
      outbox: [...this.outbox].map(([k, m]) => [k, toVars(m)]),
      variables: [...this.variables].map(([apiKey, k]) => [
        apiKey,
        {
          devices: [...k.devices],
          labels: [...k.labels],
          seen: [...k.seen],
          presence: [...k.presence],
          reported: [...k.reported],
          sent: [...k.sent].map(([id, m]) => [id, [...m.values()]]),
          overrides: [...k.overrides],
          strategies: [...k.strategies.values()],
          stateVersion: k.stateVersion,
          history: k.history,
          lastId: k.lastId,
        },
      ]),
    };
    const text = JSON.stringify(snap);
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      // 0600: the file holds password hashes and live session tokens.
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    fsyncDir(dirname(file));
    this.snapshotBytes = text.length;
    this.snapshotSeq = seq;
    this.savedChanges = changes;
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
