/**
 * The embedded Store: everything in Maps in this process, so the daemon runs with nothing else
 * installed. With a dataDir it survives restarts through an atomically replaced JSON snapshot
 * (`<dataDir>/store.json`), written on stop and every `snapshotIntervalMs`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import type { StoreConfig } from '../config.js';
import { ObserverioError } from '../errors.js';
import type { BackendHealth, Session, User, Var } from '../model.js';
import { emailKey, hashPassword, newApiKey, newToken, verifyAgainstDummy, verifyPassword } from './passwords.js';
import type { Store } from './store.js';

export interface MemoryStoreOptions {
  /** Where store.json lives; null = nothing is persisted. */
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

const varSchema = z.object({ name: z.string(), type: z.string(), value: z.string() });
const snapshotSchema = z.object({
  version: z.literal(1),
  savedAt: z.number(),
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

  /** False until start() has read (or set aside) the old snapshot: only then may stop() replace it. */
  private loaded = false;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Bumped on every change, so an idle store does not rewrite the same snapshot every interval. */
  private changes = 0;
  private savedChanges = 0;
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
      await this.load(this.file);
      this.loaded = true;
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
    if (this.file && this.loaded) await this.snapshot();
  }

  async health(): Promise<BackendHealth> {
    return { ok: true, kind: 'memory', detail: this.file ? `snapshot ${this.file}` : 'not persisted' };
  }

  async createUser(email: string, password: string): Promise<User> {
    const id = emailKey(email);
    // Checked before hashing to save the work, and again after: another createUser may have won meanwhile.
    if (this.users.has(id)) throw new ObserverioError('email_taken');
    const passwordHash = await hashPassword(password);
    if (this.users.has(id)) throw new ObserverioError('email_taken');
    let apiKey = newApiKey();
    while (this.apiKeys.has(apiKey)) apiKey = newApiKey();
    const user: User = { email, apiKey, createdAt: Date.now() };
    this.users.set(id, { user, passwordHash });
    this.apiKeys.set(apiKey, id);
    this.changes++;
    return { ...user };
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
    this.sessions.set(session.token, session);
    this.changes++;
    return { ...session };
  }

  async getSession(token: string): Promise<Session | null> {
    const s = this.sessions.get(token);
    if (!s) return null;
    if (s.expiresAt <= Date.now()) {
      this.sessions.delete(token);
      this.changes++;
      return null;
    }
    return { ...s };
  }

  async deleteSession(token: string): Promise<void> {
    if (this.sessions.delete(token)) this.changes++;
  }

  async setVars(apiKey: string, vars: readonly Var[]): Promise<void> {
    if (vars.length === 0) return;
    let m = this.vars.get(apiKey);
    if (!m) this.vars.set(apiKey, (m = new Map()));
    for (const v of vars) m.set(v.name, { type: v.type, value: v.value });
    this.changes++;
  }

  async getVars(apiKey: string): Promise<Var[]> {
    const m = this.vars.get(apiKey);
    return m ? toVars(m) : [];
  }

  async deleteVar(apiKey: string, name: string): Promise<boolean> {
    const m = this.vars.get(apiKey);
    if (!m?.delete(name)) return false;
    if (m.size === 0) this.vars.delete(apiKey);
    this.changes++;
    return true;
  }

  async outboxPush(apiKey: string, vars: readonly Var[]): Promise<number> {
    let m = this.outbox.get(apiKey);
    if (!m) {
      if (vars.length === 0) return 0;
      this.outbox.set(apiKey, (m = new Map()));
    }
    for (const v of vars) {
      m.delete(v.name);
      m.set(v.name, { type: v.type, value: v.value });
    }
    for (const oldest of m.keys()) {
      if (m.size <= this.cfg.outboxMaxPerKey) break;
      m.delete(oldest);
    }
    if (vars.length > 0) this.changes++;
    return m.size;
  }

  async outboxTake(apiKey: string): Promise<Var[]> {
    const m = this.outbox.get(apiKey);
    if (!m) return [];
    this.outbox.delete(apiKey);
    this.changes++;
    return toVars(m);
  }

  async outboxLength(apiKey: string): Promise<number> {
    return this.outbox.get(apiKey)?.size ?? 0;
  }

  private sweepSessions(): void {
    const now = Date.now();
    for (const [token, s] of this.sessions) {
      if (s.expiresAt <= now) {
        this.sessions.delete(token);
        this.changes++;
      }
    }
  }

  private async load(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      return this.setAside(file, err as Error);
    }
    let snap: Snapshot;
    try {
      snap = snapshotSchema.parse(JSON.parse(text));
    } catch (err) {
      return this.setAside(file, err as Error);
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
    this.log.info({ file, users: this.users.size, keys: this.vars.size }, 'store snapshot loaded');
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
    await this.snapshot().catch((err: Error) => this.log.error({ err, file: this.file }, 'store snapshot failed'));
  }

  /** Writes a temp file, fsyncs it and renames it over store.json, so a crash leaves the old or the new file, never half of one. */
  private snapshot(): Promise<void> {
    const run = async (): Promise<void> => {
      if (!this.file) return;
      const changes = this.changes;
      const now = Date.now();
      const snap: Snapshot = {
        version: 1,
        savedAt: now,
        users: [...this.users.values()].map((r) => ({ ...r.user, passwordHash: r.passwordHash })),
        sessions: [...this.sessions.values()].filter((s) => s.expiresAt > now),
        vars: [...this.vars].map(([k, m]) => [k, toVars(m)]),
        outbox: [...this.outbox].map(([k, m]) => [k, toVars(m)]),
      };
      const tmp = `${this.file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        // 0600: the file holds password hashes and live session tokens.
        const fh = await open(tmp, 'w', 0o600);
        try {
          await fh.writeFile(JSON.stringify(snap));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.file);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      this.savedChanges = changes;
    };
    const next = this.writing.then(run, run);
    this.writing = next.catch(() => undefined);
    return next;
  }
}
