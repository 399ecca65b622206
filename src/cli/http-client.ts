/**
 * The CLI's client for the daemon's HTTP API: JSON in and out, the daemon's `{error:{code,message}}`
 * turned into `<code>: <message>`, a clear hint when nothing answers, and where the URL and the
 * credentials come from (flags first, then OBSERVERIO_* environment variables).
 */
import { Option, type Command } from 'commander';
import { CliFailure, type CliIo } from './io.js';
import { urlArg } from './options.js';
import type { Credentials, SessionAnswer } from '../wire.js';

export const DEFAULT_URL = 'http://127.0.0.1:4000';
const DEFAULT_TIMEOUT_MS = 30_000;

/** The daemon answered with an error; the message reads `<code>: <message>`. */
export class HttpError extends CliFailure {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

/** Nothing usable answered at the URL (refused, unknown host, timeout, not the daemon). */
export class Unreachable extends CliFailure {
  override name = 'Unreachable';
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the daemon at ${url} (${reason}): is it running? Start it with 'make run' (or 'observerio serve'), or point --url / OBSERVERIO_URL at it`);
  }
}

export type Query = Record<string, string | number | undefined>;

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string | null;
  body?: unknown;
  query?: Query;
  signal?: AbortSignal;
}

function causeCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const o = e as { code?: unknown; errors?: unknown[]; cause?: unknown };
    if (typeof o.code === 'string') return o.code;
    // Happy Eyeballs: one refused attempt per address, gathered in an AggregateError.
    if (Array.isArray(o.errors) && o.errors.length > 0) e = o.errors[0];
    else e = o.cause;
  }
  return undefined;
}

function unreachableReason(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'no answer in time';
  const code = causeCode(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'connection reset';
    case undefined: {
      // fetch wraps the real reason: "fetch failed" says nothing, its cause does ("bad port", ...).
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
      return cause instanceof Error ? cause.message : String(cause);
    }
    default:
      return code;
  }
}

export class ApiClient {
  constructor(
    /** Base URL without a trailing slash. */
    readonly url: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<T> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') params.set(k, String(v));
    const qs = params.toString();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.url}${path}${qs ? `?${qs}` : ''}`, { method, headers, body, signal });
      text = await res.text();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      throw new Unreachable(this.url, unreachableReason(err));
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
      if (e && typeof e.code === 'string') throw new HttpError(res.status, e.code, typeof e.message === 'string' ? e.message : e.code);
      throw new HttpError(res.status, `http_${res.status}`, `${method} ${path} answered ${res.status} ${res.statusText}`.trim());
    }
    if (parsed === undefined) throw new CliFailure(`${this.url} answered ${method} ${path} with something other than JSON: is it the observerio daemon? (check --url / OBSERVERIO_URL)`);
    return parsed as T;
  }
}

/** What a command needs of the client; tests pass a stub. */
export type Api = Pick<ApiClient, 'request'>;

// --- where the URL and credentials come from ----------------------------------------------------

export interface UrlFlags {
  url?: string;
}

export interface SessionFlags extends UrlFlags {
  token?: string;
  email?: string;
  password?: string;
}

/** `--url` on a command that talks to the daemon. */
export function withUrl(cmd: Command): Command {
  return cmd.addOption(new Option('--url <url>', `daemon HTTP URL (env OBSERVERIO_URL, default ${DEFAULT_URL})`).argParser(urlArg));
}

/** `--url` and the ways to sign in, on a command that needs a dashboard session. */
export function withSession(cmd: Command): Command {
  return withUrl(cmd)
    .option('--token <token>', 'session token from `observerio login` (env OBSERVERIO_TOKEN)')
    .option('--email <email>', 'sign in with this email instead of a token (env OBSERVERIO_EMAIL)')
    .option('--password <password>', 'password for --email (env OBSERVERIO_PASSWORD)');
}

/** Bad use: commander prints the message and main.ts exits 2. */
export function usage(cmd: Command, message: string): never {
  cmd.error(`error: ${message}`, { exitCode: 2, code: 'observerio.usage' });
}

export function apiFor(cmd: Command, flags: UrlFlags, io: CliIo): ApiClient {
  if (flags.url) return new ApiClient(flags.url);
  const fromEnv = io.env.OBSERVERIO_URL;
  if (fromEnv === undefined || fromEnv === '') return new ApiClient(DEFAULT_URL);
  try {
    return new ApiClient(urlArg(fromEnv));
  } catch (err) {
    return usage(cmd, `OBSERVERIO_URL ${JSON.stringify(fromEnv)}: ${(err as Error).message}`);
  }
}

/** Flag, else environment variable, else undefined; an empty value counts as absent. */
export function pick(flag: string | undefined, io: CliIo, env: string): string | undefined {
  if (flag !== undefined && flag !== '') return flag;
  const v = io.env[env];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * A session token: `--token` / OBSERVERIO_TOKEN, or signing in with email and password from flags or
 * environment. With neither, it is bad use (exit 2) and the message says what to set.
 */
export async function sessionToken(cmd: Command, api: Api, flags: SessionFlags, io: CliIo): Promise<string> {
  const token = pick(flags.token, io, 'OBSERVERIO_TOKEN');
  if (token) return token;
  const email = pick(flags.email, io, 'OBSERVERIO_EMAIL');
  const password = pick(flags.password, io, 'OBSERVERIO_PASSWORD');
  if (email && password) return (await api.request<SessionAnswer>('POST', '/api/sessions', { body: { email, password } satisfies Credentials })).token;
  if (email) usage(cmd, 'a password is needed with --email: pass --password or set OBSERVERIO_PASSWORD');
  return usage(cmd, 'not signed in: set OBSERVERIO_TOKEN (see `observerio login`), or OBSERVERIO_EMAIL and OBSERVERIO_PASSWORD, or pass --token');
}

/** The admin token from `--admin-token` or OBSERVERIO_ADMIN_TOKEN. */
export function adminToken(cmd: Command, flag: string | undefined, io: CliIo): string {
  return pick(flag, io, 'OBSERVERIO_ADMIN_TOKEN') ?? usage(cmd, 'admin commands need the daemon\'s admin token: set OBSERVERIO_ADMIN_TOKEN or pass --admin-token');
}
