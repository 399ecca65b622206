/**
 * The daemon's HTTP API as typed functions. Every failure becomes an ApiError carrying the server's
 * stable error code, so views can word their messages per case (wrong password, email taken, ...).
 */
import type {
  ApplyStrategyAnswer,
  ClearOverrideAnswer,
  ConnectInfoAnswer,
  CreateUserAnswer,
  Device,
  DeviceAnswer,
  DeviceSummary,
  HistoryActionAnswer,
  HistoryAnswer,
  HistoryEntry,
  LogSearchQuery,
  LogSearchResult,
  Override,
  OverridesAnswer,
  SessionAnswer,
  SetOverrideAnswer,
  SetOverrideBody,
  StrategiesAnswer,
  StrategyAnswer,
  StrategyBody,
  Target,
  Var,
  VarsAnswer,
} from '../wire.js';
import { debug } from './debug';
import { toDeviceView, type DeviceView } from './devices';

/** A target as the dashboard sends it: a selector string goes as typed so the daemon's parse error names it. */
export type TargetInput = Target | { labels: string };

/** `GET /api/logs` query with the timeline's kind (`log` game lines, `change` dashboard changes). */
export type LogsQuery = LogSearchQuery & { kind?: 'log' | 'change' | '' };

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    /** HTTP status, or 0 when the daemon could not be reached at all. */
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, from a Retry-After header on 429. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

interface RequestOptions {
  body?: unknown;
  token?: string | null;
  signal?: AbortSignal;
}

function codeForStatus(status: number): string {
  if (status === 400) return 'bad_request';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 429) return 'too_many_requests';
  if (status >= 500) return 'unavailable';
  return 'http_' + String(status);
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `Cannot reach the daemon at ${location.host}. Is it running?`);
  }
  debug(method, path, res.status);
  const text = res.status === 204 ? '' : await res.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const retry = Number(res.headers.get('retry-after'));
    throw new ApiError(
      res.status,
      typeof err?.code === 'string' ? err.code : codeForStatus(res.status),
      typeof err?.message === 'string' ? err.message : res.statusText || `HTTP ${res.status}`,
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
  }
  return data as T;
}

export function signUp(email: string, password: string): Promise<CreateUserAnswer> {
  return request('POST', '/api/users', { body: { email, password } });
}

export function signIn(email: string, password: string): Promise<SessionAnswer> {
  return request('POST', '/api/sessions', { body: { email, password } });
}

/** The calls that need a signed-in user; `onUnauthorized` fires when the session is no longer valid. */
export class Api {
  constructor(
    private readonly token: string,
    private readonly onUnauthorized: () => void,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    try {
      return await request<T>(method, path, { body, token: this.token, signal });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.onUnauthorized();
      throw err;
    }
  }

  async vars(): Promise<Var[]> {
    const res = await this.call<Partial<VarsAnswer>>('GET', '/api/vars');
    return Array.isArray(res?.vars) ? res.vars : [];
  }

  /** Sets an override: for every device without `target`, else for those it names. */
  putVar(name: string, value: string, type?: string, target?: TargetInput): Promise<SetOverrideAnswer> {
    const body: SetOverrideBody = { value };
    if (type) body.type = type;
    if (target && !('all' in target)) body.target = target;
    return this.call('PUT', `/api/vars/${encodeURIComponent(name)}`, body);
  }

  /** Clears one override ("back to the game's value" for the devices of `target`). */
  clearOverride(name: string, target?: TargetInput): Promise<ClearOverrideAnswer> {
    return this.call('DELETE', `/api/vars/${encodeURIComponent(name)}/override`, target && !('all' in target) ? { target } : {});
  }

  async overrides(): Promise<Override[]> {
    const res = await this.call<Partial<OverridesAnswer>>('GET', '/api/overrides');
    return Array.isArray(res?.overrides) ? res.overrides : [];
  }

  async strategies(): Promise<StrategyAnswer[]> {
    const res = await this.call<Partial<StrategiesAnswer>>('GET', '/api/strategies');
    return Array.isArray(res?.strategies) ? res.strategies : [];
  }

  createStrategy(body: StrategyBody): Promise<StrategyAnswer> {
    return this.call('POST', '/api/strategies', body);
  }

  /** 409 when `version` is no longer the stored one (someone else saved meanwhile). */
  updateStrategy(name: string, body: StrategyBody): Promise<StrategyAnswer> {
    return this.call('PUT', `/api/strategies/${encodeURIComponent(name)}`, body);
  }

  async deleteStrategy(name: string): Promise<void> {
    await this.call('DELETE', `/api/strategies/${encodeURIComponent(name)}`);
  }

  applyStrategy(name: string, target?: TargetInput): Promise<ApplyStrategyAnswer> {
    return this.call('POST', `/api/strategies/${encodeURIComponent(name)}/apply`, target && !('all' in target) ? { target } : {});
  }

  async history(limit: number, before?: string): Promise<HistoryEntry[]> {
    const params = new URLSearchParams({ limit: String(limit) });
    if (before) params.set('before', before);
    const res = await this.call<Partial<HistoryAnswer>>('GET', `/api/history?${params.toString()}`);
    return Array.isArray(res?.entries) ? res.entries : [];
  }

  revert(id: string): Promise<HistoryActionAnswer> {
    return this.call('POST', `/api/history/${encodeURIComponent(id)}/revert`, {});
  }

  rollback(to: string): Promise<HistoryActionAnswer> {
    return this.call('POST', '/api/history/rollback', { to });
  }

  device(deviceId: string, signal?: AbortSignal): Promise<DeviceAnswer> {
    return this.call('GET', `/api/devices/${encodeURIComponent(deviceId)}`, undefined, signal);
  }

  /** Removes the variable from the key's store (404 when it is already gone). */
  async deleteVar(name: string): Promise<void> {
    await this.call('DELETE', `/api/vars/${encodeURIComponent(name)}`);
  }

  async logs(query: LogsQuery, signal?: AbortSignal): Promise<LogSearchResult> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== '') params.set(k, String(v));
    }
    const qs = params.toString();
    const res = await this.call<Partial<LogSearchResult>>('GET', `/api/logs${qs ? '?' + qs : ''}`, undefined, signal);
    const hits = Array.isArray(res?.hits) ? res.hits : [];
    return { hits, total: typeof res?.total === 'number' ? res.total : hits.length };
  }

  /** The key's devices, online and remembered (older daemons list connections: read as online devices). */
  async devices(): Promise<DeviceView[]> {
    const res = await this.call<{ devices?: Array<DeviceSummary | Device> }>('GET', '/api/devices');
    return Array.isArray(res?.devices) ? res.devices.flatMap((d) => toDeviceView(d) ?? []) : [];
  }

  /** Where this user's games connect: the daemon's real (or advertised) host and ports, and the API key. */
  connectInfo(signal?: AbortSignal): Promise<ConnectInfoAnswer> {
    return this.call('GET', '/api/connect-info', undefined, signal);
  }

  /** Best effort: the local session is dropped whatever the server answers. */
  async signOut(): Promise<void> {
    try {
      await request('DELETE', '/api/sessions', { token: this.token });
    } catch {
      // already invalid or unreachable: nothing left to revoke from here
    }
  }
}
