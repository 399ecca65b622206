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
import { Journal, removeSegmentsBefore, replayJournal } from './journal.js';
import { emailKey, hashPassword, newApiKey, newToken, verifyAgainstDummy, verifyPassword } from './passwords.js';
import type { Store } from './store.js';

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

const varSchema = z.object({ name: z.string(), type: z.string(), value: z.string() }).strict();

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
};

const snapshotSchema = z.object({
  // 1: before the journal (no seq); 2: `seq` is the last journal record the snapshot contains.
  version: z.union([z.literal(1), z.literal(2)]),
  savedAt: z.number(),
  seq: z.number().int().min(0).optional(),
  users: z.array(z.object({ email: z.string(), apiKey: z.string(), createdAt: z.number(), passwordHash: z.string() })),
  sessions: z.array(z.object({ token: z.string(), apiKey: z.string(), email: z.string(), expiresAt: z.number() })),
  // Arrays of [apiKey, vars] rather than objects: order matters and keys must not collide with
  // Object.prototype names.
  vars: z.array(z.tuple([z.string(), z.array(varSchema)])),
  outbox: z.array(z.tuple([z.string(), z.array(varSchema)])),
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

export class MemoryStore implements Store {
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

  async setVars(apiKey: string, vars: readonly Var[]): Promise<void> {
    if (vars.length === 0) return;
    await this.apply({ t: 'vars.set', apiKey, vars: plainVars(vars) });
  }

  async getVars(apiKey: string): Promise<Var[]> {
    const m = this.vars.get(apiKey);
    return m ? toVars(m) : [];
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
      version: 2,
      savedAt: now,
      seq,
      users: [...this.users.values()].map((r) => ({ ...r.user, passwordHash: r.passwordHash })),
      sessions: [...this.sessions.values()].filter((s) => s.expiresAt > now),
      vars: [...this.vars].map(([k, m]) => [k, toVars(m)]),
      outbox: [...this.outbox].map(([k, m]) => [k, toVars(m)]),
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
