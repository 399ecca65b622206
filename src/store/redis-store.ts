/**
 * The Store on Redis (ioredis): what several daemons share, so a user, a session, a variable or a
 * buffered change written through one node is seen by every other node and survives restarts.
 *
 * Redis layout. `P` is the key prefix, `observerio:` unless the `keyPrefix` option says otherwise
 * (tests use it to isolate themselves); the variables hash never takes a prefix because the original
 * daemon and its tools read it by that exact name.
 *
 *   <apiKey>:vs                  hash    fields `<name>:type` and `<name>:value` for each variable,
 *                                        exactly as the original daemon wrote them; new fields are only
 *                                        ever added with HSET, never deleted and recreated, so a small
 *                                        hash keeps them in first-seen order (`HKEYS` gives
 *                                        testing1:type, testing1:value, testing2:type, ...).
 *   P varorder:{<apiKey>:vs}     zset    variable name → first-seen sequence (0, 1, 2, ...). Redis stops
 *                                        keeping hash fields in insertion order once a hash outgrows its
 *                                        listpack encoding (by default more than 256 variables, or any
 *                                        value over 64 bytes), so first-seen order is kept here. A hash
 *                                        the original daemon wrote is indexed in its field order by the
 *                                        first setVars that finds this zset empty.
 *   P user:<emailKey(email)>     hash    email (as registered), apiKey, passwordHash
 *                                        (`scrypt$N$r$p$salt$hash`, never the password), createdAt (ms).
 *   P apikey:<apiKey>            string  emailKey(email): the email lowercased, Unicode NFC.
 *   P session:<token>            string  JSON {apiKey, email, expiresAt}, with a PX expiry at expiresAt.
 *   P outbox:{<apiKey>:vs}       hash    variable name → JSON {type, value} waiting for a device.
 *   P outbox-order:{<apiKey>:vs} zset    variable name → push sequence; a replaced variable gets a new,
 *                                        higher sequence (moves to the end), and past `outboxMaxPerKey`
 *                                        names the lowest sequences are dropped (ZPOPMIN).
 *
 * Every write that touches more than one key runs as one Lua script, so it is atomic against other
 * daemons and costs one round trip. On Redis Cluster a script's keys must share a hash slot: every key
 * of one API key carries the hash tag `{<apiKey>:vs}`, which hashes like the untagged `<apiKey>:vs`
 * (API keys are [A-Za-z0-9], never braces), so they all live in that key's slot. User, API key and
 * session records are read and written one key at a time. Keys written before the tags existed
 * (`P varorder:<apiKey>`, `P outbox:<apiKey>`, `P outbox-order:<apiKey>`) are renamed once, at the
 * first start on a plain Redis (src/redis/migrate-keys.ts).
 */
import { createHash } from 'node:crypto';
import { createRedisClient, redactRedisUrl, type RedisClient } from '../redis/connect.js';
import { migrateUntaggedKeys } from '../redis/migrate-keys.js';
import { pino, type Logger } from 'pino';
import type { StoreConfig } from '../config.js';
import { ObserverioError } from '../errors.js';
import type { BackendHealth, Session, User, Var } from '../model.js';
import { emailKey, hashPassword, newApiKey, newToken, verifyAgainstDummy, verifyPassword } from './passwords.js';
import type { Store } from './store.js';

export interface RedisStoreOptions {
  url: string;
  logger?: Logger;
  /** Prefix of every key except `<apiKey>:vs`; default `observerio:`. */
  keyPrefix?: string;
}

const HEALTH_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 5000;

interface LuaScript {
  lua: string;
  sha: string;
}

function script(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * KEYS: user hash. ARGV: email, apiKey, passwordHash, createdAt. → 1 created, 0 email taken. One key:
 * the user (by email) and its API key record live in different slots on a cluster, so createUser
 * reserves the API key first, on its own, and releases it if the email turns out to be taken.
 */
const CREATE_USER = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'email', ARGV[1], 'apiKey', ARGV[2], 'passwordHash', ARGV[3], 'createdAt', ARGV[4])
return 1
`);

/** KEYS: <apiKey>:vs, varorder. ARGV: name, type, value, name, type, value, ... */
const SET_VARS = script(`
local n = redis.call('ZCARD', KEYS[2])
if n == 0 then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, -5) == ':type' then
      redis.call('ZADD', KEYS[2], 'NX', n, string.sub(field, 1, -6))
      n = n + 1
    end
  end
end
for i = 1, #ARGV, 3 do
  local name = ARGV[i]
  redis.call('HSET', KEYS[1], name .. ':type', ARGV[i + 1], name .. ':value', ARGV[i + 2])
  if redis.call('ZADD', KEYS[2], 'NX', n, name) == 1 then n = n + 1 end
end
return n
`);

/**
 * KEYS: <apiKey>:vs, varorder. ARGV: name → hash fields removed. The order is renumbered 0..n-1 after a
 * removal, because SET_VARS takes ZCARD as the next sequence: a gap would give two names one score.
 */
const DELETE_VAR = script(`
local removed = redis.call('HDEL', KEYS[1], ARGV[1] .. ':type', ARGV[1] .. ':value')
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  for i, name in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do redis.call('ZADD', KEYS[2], i - 1, name) end
end
return removed
`);

/** KEYS: outbox hash, outbox-order zset. ARGV: max, then name, json, name, json, ... → names waiting. */
const OUTBOX_PUSH = script(`
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local seq = 0
if top[2] then seq = tonumber(top[2]) end
for i = 2, #ARGV, 2 do
  seq = seq + 1
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], seq, ARGV[i])
end
local len = redis.call('ZCARD', KEYS[2])
local over = len - tonumber(ARGV[1])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for j = 1, #popped, 2 do redis.call('HDEL', KEYS[1], popped[j]) end
  len = len - over
end
return len
`);

/** KEYS: outbox hash, outbox-order zset. → name, json, name, json, ... oldest first; both keys deleted. */
const OUTBOX_TAKE = script(`
local names = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGET', KEYS[1], name) or ''
end
redis.call('DEL', KEYS[1], KEYS[2])
return out
`);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private redis: RedisClient;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly where: string;
  /** Until start() succeeds a failed connection is final, so start() can report it; afterwards ioredis reconnects. */
  private started = false;
  /** Set once a start() has succeeded: later starts (worker restarts) keep retrying in the background. */
  private everStarted = false;
  /** Set by stop(): the next start() opens a new connection. */
  private closed = false;
  private lastError: string | undefined;

  private readonly key = {
    vars: (apiKey: string) => `${apiKey}:vs`,
    varOrder: (apiKey: string) => `${this.prefix}varorder:{${apiKey}:vs}`,
    user: (email: string) => `${this.prefix}user:${emailKey(email)}`,
    apiKey: (apiKey: string) => `${this.prefix}apikey:${apiKey}`,
    session: (token: string) => `${this.prefix}session:${token}`,
    outbox: (apiKey: string) => `${this.prefix}outbox:{${apiKey}:vs}`,
    outboxOrder: (apiKey: string) => `${this.prefix}outbox-order:{${apiKey}:vs}`,
  };

  constructor(
    private readonly cfg: StoreConfig,
    private readonly opts: RedisStoreOptions,
  ) {
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.prefix = opts.keyPrefix ?? 'observerio:';
    this.where = redactRedisUrl(opts.url);
    this.redis = this.connection();
  }

  /** A fresh, not yet connected client: one per incarnation of the store's worker. */
  private connection(): RedisClient {
    // A Redis or, for a redis-cluster:// URL, a Cluster with the same options on every node connection.
    const redis = createRedisClient(this.opts.url, {
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Named so an operator (and the supervision tests) can tell this connection in CLIENT LIST.
      connectionName: 'observerio:store',
      // Fail a command after a couple of reconnects instead of queueing it for a minute: callers
      // (a TCP line, an HTTP request) would rather get an error they can report.
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => (this.started ? Math.min(times * 200, 2000) : null),
      // Every command issued in one tick leaves in one write: a write to a socket costs more than
      // most of these commands do in Redis, and a busy tick issues many (one setVars per key, an
      // outbox check per verified socket). Order is kept.
      enableAutoPipelining: true,
    });
    // Without a listener ioredis's 'error' would be an unhandled EventEmitter error and kill the process.
    redis.on('error', (err: Error) => {
      if (err.message === this.lastError) return;
      this.lastError = err.message;
      this.log.warn({ err, redis: this.where }, 'redis connection error');
    });
    redis.on('ready', () => {
      if (this.lastError !== undefined) this.log.info({ redis: this.where }, 'redis connection restored');
      this.lastError = undefined;
    });
    return redis;
  }

  /**
   * Connects. After a stop() (the store's worker restarting) it opens a new connection. The first
   * start fails fast when Redis is unreachable, so a wrong URL is reported at boot; a later one
   * still rejects, but leaves ioredis reconnecting in the background, so a restart during an outage
   * recovers by itself once Redis is back.
   */
  async start(): Promise<void> {
    if (this.closed) {
      this.redis = this.connection();
      this.closed = false;
    }
    if (this.redis.status === 'ready') return;
    this.started = this.everStarted;
    try {
      await this.redis.connect();
    } catch (err) {
      if (!this.everStarted) this.redis.disconnect();
      throw new Error(`cannot connect to Redis at ${this.where}: ${this.lastError ?? (err as Error).message}`);
    }
    if (!this.everStarted) {
      try {
        await migrateUntaggedKeys(this.redis, this.prefix, this.log);
      } catch (err) {
        this.redis.disconnect();
        throw new Error(`cannot rename the untagged keys at ${this.where}: ${(err as Error).message}`, { cause: err });
      }
    }
    this.started = true;
    this.everStarted = true;
  }

  /** Closes this incarnation's connection (commands in flight get their replies first). */
  async stop(): Promise<void> {
    this.started = false;
    this.closed = true;
    const redis = this.redis;
    if (redis.status === 'end') return;
    if (redis.status !== 'ready') {
      redis.disconnect();
      return;
    }
    await withTimeout(redis.quit(), CONNECT_TIMEOUT_MS, 'redis QUIT').catch(() => redis.disconnect());
  }

  async health(): Promise<BackendHealth> {
    if (this.redis.status !== 'ready') {
      return { ok: false, kind: 'redis', detail: `${this.where}: connection ${this.redis.status}${this.lastError ? ` (${this.lastError})` : ''}` };
    }
    const t0 = performance.now();
    try {
      await withTimeout(this.redis.ping(), HEALTH_TIMEOUT_MS, 'PING');
      return { ok: true, kind: 'redis', detail: `${this.where}: PING ${(performance.now() - t0).toFixed(1)} ms` };
    } catch (err) {
      return { ok: false, kind: 'redis', detail: `${this.where}: ${(err as Error).message}` };
    }
  }

  /** EVALSHA with a fallback to EVAL the first time a server has not seen the script. */
  private async run(s: LuaScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(s.lua, keys.length, ...keys, ...args);
    }
  }

  async createUser(email: string, password: string): Promise<User> {
    const userKey = this.key.user(email);
    // Saves the hashing work for a taken email; the script below is what makes it race-free.
    if ((await this.redis.exists(userKey)) === 1) throw new ObserverioError('email_taken');
    const passwordHash = await hashPassword(password);
    const createdAt = Date.now();
    for (let attempt = 0; attempt < 5; attempt++) {
      const apiKey = newApiKey();
      // Reserved before the user exists, so a user never points at an API key that does not verify; a
      // crash between the two leaves only a reservation nobody knows the key of.
      if ((await this.redis.set(this.key.apiKey(apiKey), emailKey(email), 'NX')) === null) continue; // a 71-bit key collided; draw again
      const res = await this.run(CREATE_USER, [userKey], [email, apiKey, passwordHash, createdAt]);
      if (res === 1) return { email, apiKey, createdAt };
      await this.redis.del(this.key.apiKey(apiKey));
      throw new ObserverioError('email_taken');
    }
    throw new ObserverioError('internal', 'could not allocate a unique API key');
  }

  async authenticate(email: string, password: string): Promise<User | null> {
    const h = await this.redis.hgetall(this.key.user(email));
    const { apiKey, passwordHash, createdAt } = h;
    if (apiKey === undefined || passwordHash === undefined) return verifyAgainstDummy(password).then(() => null);
    if (!(await verifyPassword(password, passwordHash))) return null;
    return { email: h.email ?? email, apiKey, createdAt: Number(createdAt ?? 0) };
  }

  async verifyApiKey(apiKey: string): Promise<boolean> {
    return (await this.redis.exists(this.key.apiKey(apiKey))) === 1;
  }

  async createSession(user: User, ttlMs: number): Promise<Session> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`session ttl must be a positive number of ms, got ${ttlMs}`);
    const ttl = Math.ceil(ttlMs);
    const session: Session = { token: newToken(), apiKey: user.apiKey, email: user.email, expiresAt: Date.now() + ttl };
    const { token: _token, ...stored } = session;
    await this.redis.set(this.key.session(session.token), JSON.stringify(stored), 'PX', ttl);
    return session;
  }

  async getSession(token: string): Promise<Session | null> {
    const raw = await this.redis.get(this.key.session(token));
    if (raw === null) return null;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      v = undefined;
    }
    if (!isRecord(v) || typeof v.apiKey !== 'string' || typeof v.email !== 'string' || typeof v.expiresAt !== 'number') {
      this.log.warn({ key: this.key.session('<token>') }, 'malformed session record ignored');
      return null;
    }
    // Redis expires the key itself; this guards the last milliseconds and clock skew between nodes.
    if (v.expiresAt <= Date.now()) return null;
    return { token, apiKey: v.apiKey, email: v.email, expiresAt: v.expiresAt };
  }

  async deleteSession(token: string): Promise<void> {
    await this.redis.del(this.key.session(token));
  }

  async setVars(apiKey: string, vars: readonly Var[]): Promise<void> {
    if (vars.length === 0) return;
    const args: string[] = [];
    for (const v of vars) args.push(v.name, v.type, v.value);
    await this.run(SET_VARS, [this.key.vars(apiKey), this.key.varOrder(apiKey)], args);
  }

  async getVars(apiKey: string): Promise<Var[]> {
    const res = await this.redis.multi().hgetall(this.key.vars(apiKey)).zrange(this.key.varOrder(apiKey), 0, -1).exec();
    const [hash, order] = (res ?? []).map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    // Every field ends in ':type' or ':value', so none looks like an array index and the object ioredis
    // builds keeps Redis's field order.
    const fields = isRecord(hash) ? (hash as Record<string, string>) : {};
    const byName = new Map<string, { type: string; value: string }>();
    for (const [field, value] of Object.entries(fields)) {
      let name: string;
      let part: 'type' | 'value';
      if (field.endsWith(':type')) [name, part] = [field.slice(0, -5), 'type'];
      else if (field.endsWith(':value')) [name, part] = [field.slice(0, -6), 'value'];
      else continue;
      let v = byName.get(name);
      if (!v) byName.set(name, (v = { type: '', value: '' }));
      v[part] = value;
    }
    const ordered = new Set(Array.isArray(order) ? (order as string[]) : []);
    const out: Var[] = [];
    // Names without an order entry come from a hash only the original daemon has written to so far.
    for (const [name, v] of byName) if (!ordered.has(name)) out.push({ name, ...v });
    for (const name of ordered) {
      const v = byName.get(name);
      if (v) out.push({ name, ...v });
    }
    return out;
  }

  async deleteVar(apiKey: string, name: string): Promise<boolean> {
    return Number(await this.run(DELETE_VAR, [this.key.vars(apiKey), this.key.varOrder(apiKey)], [name])) > 0;
  }

  async outboxPush(apiKey: string, vars: readonly Var[]): Promise<number> {
    const args: (string | number)[] = [this.cfg.outboxMaxPerKey];
    for (const v of vars) args.push(v.name, JSON.stringify({ type: v.type, value: v.value }));
    return Number(await this.run(OUTBOX_PUSH, [this.key.outbox(apiKey), this.key.outboxOrder(apiKey)], args));
  }

  async outboxTake(apiKey: string): Promise<Var[]> {
    const flat = await this.run(OUTBOX_TAKE, [this.key.outbox(apiKey), this.key.outboxOrder(apiKey)], []);
    if (!Array.isArray(flat)) return [];
    const out: Var[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = String(flat[i]);
      try {
        const v: unknown = JSON.parse(String(flat[i + 1]));
        if (isRecord(v) && typeof v.type === 'string' && typeof v.value === 'string') {
          out.push({ name, type: v.type, value: v.value });
          continue;
        }
      } catch {
        // reported below
      }
      this.log.warn({ apiKey, name }, 'malformed outbox entry dropped');
    }
    return out;
  }

  async outboxLength(apiKey: string): Promise<number> {
    return this.redis.zcard(this.key.outboxOrder(apiKey));
  }
}
