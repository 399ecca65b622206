/**
 * Parsing of `REDIS_URL` with no client attached, so config validation (src/config.ts) can use it
 * without loading ioredis: a plain `redis://`/`rediss://` URL is passed on as it is (ioredis parses
 * it), a `redis-cluster://h1:p1,h2:p2,...` list is checked node by node with a reason for each fault.
 */

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean };

export const CLUSTER_SCHEMES = ['redis-cluster', 'rediss-cluster'] as const;
export const SINGLE_SCHEMES = ['redis', 'rediss'] as const;
/** More seed nodes than this is a pasted mistake, not a cluster: ioredis discovers the rest itself. */
export const MAX_CLUSTER_SEEDS = 64;
const MAX_URL_LENGTH = 4096;

export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

export function isClusterUrl(url: string): boolean {
  return CLUSTER_SCHEMES.some((s) => url.startsWith(`${s}://`));
}

/**
 * Parses a Redis URL. A plain URL is passed through as it is (ioredis parses it); a cluster URL is
 * `redis-cluster://[user[:password]@]host:port[,host:port...][/]`, user and password percent-encoded,
 * IPv6 hosts in brackets. Throws RedisUrlError saying what is wrong.
 */
export function parseRedisUrl(url: string): RedisTarget {
  if (url.length > MAX_URL_LENGTH) throw new RedisUrlError(`is ${url.length} characters long; at most ${MAX_URL_LENGTH}`);
  if (SINGLE_SCHEMES.some((s) => url.startsWith(`${s}://`))) return { kind: 'single', url };
  const scheme = CLUSTER_SCHEMES.find((s) => url.startsWith(`${s}://`));
  if (!scheme) throw new RedisUrlError(`must start with ${[...SINGLE_SCHEMES, ...CLUSTER_SCHEMES].map((p) => `${p}://`).join(' or ')}`);
  let rest = url.slice(scheme.length + 3);
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    try {
      username = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo) || undefined;
      password = colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) || undefined : undefined;
    } catch {
      throw new RedisUrlError('has a malformed percent-encoding in its user or password');
    }
  }
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (/[/?#]/.test(rest)) throw new RedisUrlError('a cluster URL takes no path, database number or query: redis-cluster://host:port,host:port');
  if (rest === '') throw new RedisUrlError('lists no nodes: expected redis-cluster://host:port,host:port,...');
  const parts = rest.split(',');
  if (parts.length > MAX_CLUSTER_SEEDS) throw new RedisUrlError(`lists ${parts.length} nodes; at most ${MAX_CLUSTER_SEEDS} (a few seeds are enough, the rest are discovered)`);
  const nodes = parts.map((part, i) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(part);
    if (!m) throw new RedisUrlError(`node ${i + 1} ${JSON.stringify(part.slice(0, 100))} is not host:port`);
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new RedisUrlError(`node ${i + 1} ${JSON.stringify(part)} has port ${port}, outside 1..65535`);
    const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
    return { host, port };
  });
  return { kind: 'cluster', nodes, ...(username !== undefined && { username }), ...(password !== undefined && { password }), tls: scheme === 'rediss-cluster' };
}

/** The URL without its password, fit for logs and error messages. */
export function redactRedisUrl(url: string): string {
  if (isClusterUrl(url)) {
    const at = url.lastIndexOf('@');
    if (at < 0) return url;
    const scheme = url.slice(0, url.indexOf('://') + 3);
    const userinfo = url.slice(scheme.length, at);
    const colon = userinfo.indexOf(':');
    return colon >= 0 ? `${scheme}${userinfo.slice(0, colon)}:***${url.slice(at)}` : url;
  }
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable Redis URL)';
  }
}
