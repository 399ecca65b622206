/**
 * The daemon's configuration: one schema (type, default, one-line doc per key), filled from
 * config/default.json, then config/<NODE_ENV>.json, then environment variables, validated once at
 * boot and frozen. Leaf modules receive their slice and never read process.env themselves.
 */
import { readFileSync, existsSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseRedisUrl, RedisUrlError } from './redis/url.js';

const port = z.number().int().min(0).max(65535);
/** Far past any core count this daemon runs on; a bound so a typo does not fork a thousand processes. */
export const MAX_WORKERS = 64;
const positiveInt = z.number().int().positive();
/** `redis://`, `rediss://`, or a `redis-cluster://h1:p1,h2:p2` node list (src/redis/url.ts), with the parser's reason. */
const redisUrl = z
  .string()
  .superRefine((s, ctx) => {
    try {
      parseRedisUrl(s);
    } catch (err) {
      if (!(err instanceof RedisUrlError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
    }
  })
  .nullable();
/** What devices are told to connect to: a port 1-65535 (never 0, which only makes sense for binding), or null. */
const advertisedPort = z.number().int().min(1).max(65535).nullable();

/** True for the wildcard bind addresses (0.0.0.0, ::, [::]): a device cannot connect to them. */
export function isWildcardHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return h === '0.0.0.0' || (isIPv6(h) && /^[0:]+$/.test(h));
}

const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * Why `host` cannot go into an SDK snippet as the address to connect to, or null when it can: an IPv4
 * or IPv6 address (no brackets, no zone) or a DNS name, with no scheme, port, path or white space.
 * Shared by `advertise.host` and the Host header the connect info is derived from, since both end up
 * inside code a developer pastes into a game.
 */
export function hostProblem(host: string): string | null {
  if (host.length === 0) return 'must not be empty';
  if (host.length > 253) return 'must be at most 253 characters';
  if (isIPv4(host)) return isWildcardHost(host) ? 'is a wildcard bind address; give the address devices should connect to' : null;
  if (host.startsWith('[')) return 'must be an IPv6 address without brackets';
  if (isIPv6(host)) {
    if (host.includes('%')) return 'must not carry an IPv6 zone id';
    return isWildcardHost(host) ? 'is a wildcard bind address; give the address devices should connect to' : null;
  }
  if (host.includes('://')) return 'must be a host name or address, without a scheme';
  if (/^[^:]+:\d*$/.test(host)) return 'must not carry a port (the advertised ports are set apart)';
  const labels = host.replace(/\.$/, '').split('.');
  if (!labels.every((l) => DNS_LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1] ?? ''))
    return 'must be an IPv4 address, an IPv6 address or a host name of letters, digits, - and _ between dots';
  return null;
}

const advertisedHost = z
  .string()
  .superRefine((s, ctx) => {
    const problem = hostProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .nullable();

const url = (schemes: string[]) =>
  z
    .string()
    .refine((s) => schemes.some((p) => s.startsWith(`${p}://`)), { message: `must start with ${schemes.map((p) => `${p}://`).join(' or ')}` })
    .nullable();

export const configSchema = z
  .object({
    host: z.string().min(1).describe('address the TCP and HTTP listeners bind to'),
    tcpPort: port.describe('TCP port for SDK connections (0 picks a free port)'),
    httpPort: port.describe('HTTP port for the API, dashboard, WebSocket, admin and metrics (0 picks a free port)'),
    advertise: z
      .object({
        host: advertisedHost.describe('host SDKs are told to connect to (dashboard snippets, GET /api/connect-info); null = the bound host, or the Host header of the request when bound to 0.0.0.0 or ::'),
        tcpPort: advertisedPort.describe('TCP port SDKs are told to connect to, e.g. a proxy\'s; null = the port the TCP listener is bound to'),
        httpPort: advertisedPort.describe('HTTP port browser SDKs are told to open ws://host:port/sdk on; null = the port the HTTP listener is bound to'),
        tls: z
          .boolean()
          .nullable()
          .describe('whether browser SDKs are told wss:// (true: a TLS-terminating proxy in front of the HTTP port) or ws:// (false); null = wss:// when the dashboard request came over HTTPS as a proxy reports it (X-Forwarded-Proto or Forwarded proto=https), else ws://'),
      })
      .strict(),
    redisUrl: redisUrl.describe('Redis for vars, users, sessions, outbox and pubsub (redis://, rediss://, or redis-cluster://host:port,host:port for Redis Cluster); null = embedded in-process store'),
    meiliUrl: url(['http', 'https']).describe('Meilisearch for logs; null = embedded in-process log index'),
    meiliMasterKey: z.string().nullable().describe('Meilisearch API key, if the server has a master key'),
    adminToken: z.string().min(16, 'must be at least 16 characters').nullable().describe('bearer token for /admin; null disables the admin routes'),
    dataDir: z.string().min(1).describe('where the embedded store snapshots its data'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).describe('pino log level'),
    workers: z
      .number()
      .int()
      .min(1)
      .max(MAX_WORKERS)
      .describe('daemon processes on this machine sharing the TCP and HTTP ports (serve --workers); more than 1 needs Redis (redisUrl)'),
    tcp: z
      .object({
        maxLineBytes: positiveInt.describe('longest line a device may send; longer lines are answered e:line_too_long'),
        verifyTimeoutMs: positiveInt.describe('a connection that has not sent a valid v: line by then is closed'),
        idleTimeoutMs: positiveInt.describe('a connection that sends nothing for this long is closed'),
        maxConnections: positiveInt.describe('connections beyond this are refused'),
        maxErrors: positiveInt.describe('protocol errors within errorWindowMs before the connection is closed as abusive'),
        errorWindowMs: positiveInt.describe('window for maxErrors'),
        restartIntensity: z.number().int().min(0).describe('crashes of one connection actor tolerated within restartPeriodMs before its socket is closed'),
        restartPeriodMs: positiveInt.describe('window for restartIntensity'),
        restartBackoff: z
          .object({
            initialMs: positiveInt.describe('delay before the second restart in a row (the first after a stable run is immediate)'),
            maxMs: positiveInt.describe('longest delay; each crash in a row doubles it (±20% jitter) up to this'),
            resetAfterMs: positiveInt.describe('a connection actor that runs this long without crashing restarts at once again'),
          })
          .strict()
          .refine((b) => b.maxMs >= b.initialMs, { message: 'must be at least initialMs', path: ['maxMs'] })
          .nullable()
          .describe('delays the restarts of a connection actor that keeps crashing (counted by restartIntensity all the same); null = immediate'),
      })
      .strict(),
    limits: z
      .object({
        maxVarsPerKey: positiveInt.describe('variables one API key may have; new names in an i: line past it are dropped with e:too_many_vars (updates are never refused)'),
        newVarsPerMinute: positiveInt.describe('new variable names per API key per minute (refill of the newVarsBurst bucket); past it, e:too_many_new_vars'),
        newVarsBurst: positiveInt.describe('new variable names an API key may add at once, e.g. a game registering its variables on first connect'),
        varsRefreshMs: positiveInt.describe("longest this node trusts its copy of a key's variable names before re-reading them from the store to decide a new name (bounds the overshoot across Redis nodes)"),
        maxConnectionsPerKey: positiveInt.describe('verified connections per API key on this node; the next v: gets e:too_many_connections and is closed'),
        maxConnectionsPerAddress: positiveInt.describe('open connections per remote address on this node; the next gets e:too_many_connections before any line and is closed'),
        logsPerSecond: positiveInt.describe('log entries per API key per second (refill of the logsBurst bucket); entries past it are dropped with e:rate_limited'),
        logsBurst: positiveInt.describe('log entries an API key may send at once above logsPerSecond'),
        metricsMaxKeys: positiveInt.describe('API keys with their own label on observerio_limit_refusals_total; refusals of later keys count under apiKey="_other"'),
      })
      .strict(),
    logs: z
      .object({
        indexName: z.string().regex(/^[A-Za-z0-9_-]+$/).describe('the one shared log index'),
        batchSize: positiveInt.describe('documents per index write; a full batch is written at once'),
        flushDelayMs: z.number().int().min(0).describe('longest a log waits before its batch is written'),
        maxPendingDocs: positiveInt.describe('logs waiting for the index (in the spool) while it is slow or down; beyond this the oldest are dropped and counted'),
        maxInFlightBatches: positiveInt.describe('batches sent to the index and not yet confirmed stored, at most; writes the index holds queued and not yet processing do not count (Meilisearch merges them into its next batch); at most maxPendingDocs logs in flight in all'),
        spoolDir: z
          .string()
          .min(1)
          .nullable()
          .describe('Meilisearch only: where logs waiting for the index are kept on disk, relative to dataDir, so a restart delivers them; null = memory only'),
        spoolMaxBytes: positiveInt.describe('largest the on-disk spool may grow; beyond this the oldest logs are dropped and counted'),
        maxMessageChars: positiveInt.describe('a longer log message is cut, ending in …'),
        maxFieldsDepth: positiveInt.describe('nesting kept in a log\'s fields; deeper values are kept as their JSON text'),
        maxFields: positiveInt.describe('keys kept in a log\'s fields, at all levels; the rest are kept as JSON text under _overflow'),
        maxFieldsChars: z.number().int().min(256).describe('largest a log\'s fields may be as JSON; a larger one is kept as cut JSON text under _overflow'),
      })
      .strict(),
    store: z
      .object({
        snapshotIntervalMs: z.number().int().min(0).describe('embedded store: snapshot period (0 = only on shutdown)'),
        sessionTtlMs: positiveInt.describe('dashboard session lifetime'),
        outboxMaxPerKey: positiveInt.describe('distinct variables buffered per API key while no device is connected'),
        journalFsyncMs: z
          .number()
          .int()
          .min(0)
          .describe('embedded store: longest a journaled change waits for its fsync (0 = fsync every change before answering); users, sessions and buffered changes always are'),
        journalCompactBytes: positiveInt.describe('embedded store: the journal is compacted into the snapshot once it is this big and bigger than the last snapshot'),
      })
      .strict(),
    gateway: z
      .object({
        retryMaxVars: positiveInt.describe('variable changes held in memory while the store is unreachable (default sized for minutes of an outage); past it, i: lines that would add more are answered e:unavailable'),
        retryMaxBytes: positiveInt.describe('bytes of variable changes (names, types, values) held while the store is unreachable; past it, i: lines are answered e:unavailable'),
        retryInitialMs: positiveInt.describe('delay before the first retry of a store write that failed to reach the store; doubled per failure'),
        retryMaxMs: positiveInt.describe('longest delay between retries of a store write'),
      })
      .strict()
      .refine((g) => g.retryMaxMs >= g.retryInitialMs, { message: 'must be at least retryInitialMs', path: ['retryMaxMs'] }),
    http: z
      .object({
        maxBodyBytes: positiveInt.describe('largest accepted HTTP request body'),
        wsMaxPayloadBytes: positiveInt.describe('largest accepted WebSocket frame'),
        wsMaxBackpressureBytes: positiveInt.describe('a WebSocket client that falls this far behind is closed'),
        wsIdleTimeoutS: z.number().int().min(0).describe('WebSocket idle timeout in seconds (0 disables)'),
        sessionCacheMs: z
          .number()
          .int()
          .min(0)
          .max(60_000)
          .describe('how long a node answers a dashboard session from memory instead of the store (0 disables); a node that missed a sign-out accepts that token this long at most'),
      })
      .strict(),
    variables: z
      .object({
        historyMaxEntries: positiveInt.describe('history entries kept per API key (the newest)'),
        historyMaxAgeMs: positiveInt.describe('history entries older than this are dropped'),
        deviceRememberMs: positiveInt.describe('an offline device is still listed (and its reported values kept) this long after it was last seen'),
        presenceTtlMs: positiveInt.describe('a device whose node stops heartbeating counts as offline after this'),
        heartbeatMs: positiveInt.describe('how often each node refreshes the presence of its connected devices (well under presenceTtlMs)'),
        maxCommitRetries: positiveInt.describe('a change recomputed after a concurrent commit won, at most this many times before 503'),
      })
      .strict()
      .refine((v) => v.heartbeatMs < v.presenceTtlMs, { message: 'must be less than presenceTtlMs', path: ['heartbeatMs'] }),
    memory: z
      .object({
        reduceAfterBusySpell: z
          .boolean()
          .describe('once a process is quiet after a busy spell (a connection storm), give back the heap V8 grew for it with one compacting full collection, which pauses that process for about 5-12 ms per MiB live (src/heap-reducer.ts); false = leave it to V8'),
        quietUtilization: z
          .number()
          .min(0)
          .max(1)
          .describe('event-loop utilization (0-1) at or under which a process counts as quiet for that collection, three 2 s checks in a row'),
      })
      .strict(),
    shutdownTimeoutMs: positiveInt.describe('longest a graceful shutdown may take before the process exits anyway'),
    faultInjectionPrefix: z
      .string()
      .min(1)
      .nullable()
      .describe('tests and benchmarks only: lines starting with this crash their connection actor on purpose; null (the default) = off'),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type TcpConfig = Config['tcp'];
export type LogsConfig = Config['logs'];
export type LimitsConfig = Config['limits'];
export type StoreConfig = Config['store'];
export type HttpConfig = Config['http'];
export type GatewayConfig = Config['gateway'];
export type VariablesConfig = Config['variables'];
export type AdvertiseConfig = Config['advertise'];
export type MemoryConfig = Config['memory'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Environment variables that override the files (DESIGN.md §4). */
const ENV: Record<string, (c: Record<string, unknown>, v: string) => void> = {
  OBSERVERIO_HOST: (c, v) => (c.host = v),
  OBSERVERIO_TCP_PORT: (c, v) => (c.tcpPort = parsePort('OBSERVERIO_TCP_PORT', v)),
  OBSERVERIO_HTTP_PORT: (c, v) => (c.httpPort = parsePort('OBSERVERIO_HTTP_PORT', v)),
  OBSERVERIO_ADVERTISED_HOST: (c, v) => (advertise(c).host = v || null),
  OBSERVERIO_ADVERTISED_TCP_PORT: (c, v) => (advertise(c).tcpPort = v ? parseAdvertisedPort('OBSERVERIO_ADVERTISED_TCP_PORT', v) : null),
  OBSERVERIO_ADVERTISED_HTTP_PORT: (c, v) => (advertise(c).httpPort = v ? parseAdvertisedPort('OBSERVERIO_ADVERTISED_HTTP_PORT', v) : null),
  OBSERVERIO_ADVERTISED_TLS: (c, v) => (advertise(c).tls = parseTls('OBSERVERIO_ADVERTISED_TLS', v)),
  REDIS_URL: (c, v) => (c.redisUrl = v || null),
  MEILI_URL: (c, v) => (c.meiliUrl = v || null),
  MEILI_MASTER_KEY: (c, v) => (c.meiliMasterKey = v || null),
  OBSERVERIO_ADMIN_TOKEN: (c, v) => (c.adminToken = v || null),
  OBSERVERIO_DATA_DIR: (c, v) => (c.dataDir = v),
  LOG_LEVEL: (c, v) => (c.logLevel = v),
  OBSERVERIO_WORKERS: (c, v) => (c.workers = parseWorkers('OBSERVERIO_WORKERS', v)),
  // Tests and benchmarks only (fault injection for a daemon in its own process); never set in production.
  OBSERVERIO_FAULT_INJECTION_PREFIX: (c, v) => (c.faultInjectionPrefix = v || null),
};

function parsePort(name: string, v: string): number {
  if (!/^\d{1,5}$/.test(v)) throw new ConfigError(`${name}: expected a port number 0-65535, got ${JSON.stringify(v)}`);
  return Number(v);
}

function parseAdvertisedPort(name: string, v: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new ConfigError(`${name}: expected a port number 1-65535 (or empty for the bound port), got ${JSON.stringify(v.slice(0, 40))}`);
  return Number(v);
}

/** true, false, or empty for null (derived from the request). */
function parseTls(name: string, v: string): boolean | null {
  if (v === '') return null;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new ConfigError(`${name}: expected true, false or empty (derived from the request), got ${JSON.stringify(v.slice(0, 40))}`);
}

/** The `advertise` object of the raw configuration, made a fresh copy so a file's object is never written to. */
function advertise(c: Record<string, unknown>): Record<string, unknown> {
  const a = isPlainObject(c.advertise) ? { ...c.advertise } : {};
  c.advertise = a;
  return a;
}

/** A whole number 1..MAX_WORKERS, for OBSERVERIO_WORKERS and --workers. */
export function parseWorkers(name: string, v: string): number {
  if (!/^\d{1,3}$/.test(v) || Number(v) < 1 || Number(v) > MAX_WORKERS) throw new ConfigError(`${name}: expected a number of worker processes 1-${MAX_WORKERS}, got ${JSON.stringify(v.slice(0, 40))}`);
  return Number(v);
}

/** `workers` > 1 shares everything through Redis: the embedded store lives in one process. */
export function checkWorkers(config: Config): void {
  if (config.workers > 1 && config.redisUrl === null)
    throw new ConfigError(`workers: ${config.workers} worker processes need Redis (set REDIS_URL or --redis-url); the embedded store lives in one process`);
}

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'config');

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read (${(err as Error).message})`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${file}: invalid JSON (${(err as Error).message})`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? merge(b, v) : v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (isPlainObject(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export interface LoadOptions {
  /** Environment to read overrides from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Directory holding default.json and <NODE_ENV>.json (default the repo's config/). */
  configDir?: string;
  /** Last overrides, e.g. from CLI flags or tests. */
  overrides?: Record<string, unknown>;
}

/** Builds, validates and freezes the configuration; throws ConfigError naming every bad key. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const dir = opts.configDir ?? CONFIG_DIR;
  let raw = readJson(join(dir, 'default.json'));
  const profile = env.NODE_ENV;
  if (profile) {
    if (!/^[a-z0-9_-]+$/i.test(profile)) throw new ConfigError(`NODE_ENV: invalid profile name ${JSON.stringify(profile)}`);
    const file = join(dir, `${profile}.json`);
    if (existsSync(file)) raw = merge(raw, readJson(file));
  }
  for (const [name, apply] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined) apply(raw, v);
  }
  if (opts.overrides) raw = merge(raw, opts.overrides);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return deepFreeze(parsed.data);
}
