/**
 * `GET /api/connect-info` → {host, tcpPort, httpPort, sdkUrl, apiKey}: what a game of the signed-in
 * user connects to, so the dashboard's SDK snippets carry this daemon's real address rather than the
 * defaults (issue #13). The `advertise` config wins; else the ports are the bound ones and the host is
 * the bound one, or, bound to a wildcard address, the host the browser reached the dashboard at; the
 * browser SDK's URL is wss:// when advertise.tls says so, or when a proxy reports the dashboard was
 * reached over HTTPS.
 */
import { isIPv6 } from 'node:net';
import { hostProblem, isWildcardHost, type Config } from '../../config.js';
import { ObserverioError } from '../../errors.js';
import type { ConnectInfoAnswer } from '../../wire.js';
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import type { RequestInfo } from '../respond.js';

/** Far longer than any host name and port; a longer header is refused before it is parsed. */
const MAX_HOST_HEADER = 300;

/** The host name of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), checked as advertise.host is. */
export function hostOfHeader(header: string | undefined): string {
  if (header === undefined || header === '') throw new ObserverioError('bad_request', 'missing Host header: cannot tell which address games should connect to (set advertise.host)');
  if (header.length > MAX_HOST_HEADER) throw new ObserverioError('bad_request', `Host header longer than ${MAX_HOST_HEADER} characters`);
  const m = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(header) ?? /^([^:[\]]*)(?::\d{1,5})?$/.exec(header);
  const host = m?.[1];
  const bracketed = header.startsWith('[');
  const problem = host === undefined ? 'is not host[:port]' : bracketed && !isIPv6(host) ? 'holds no IPv6 address between its brackets' : hostProblem(host);
  if (problem !== null) throw new ObserverioError('bad_request', `Host header ${JSON.stringify(header.slice(0, 80))}: ${problem}; set advertise.host`);
  return host as string;
}

/** Longer than any proxy's forwarding header worth reading; a longer one is ignored (the scheme is ws://). */
const MAX_FORWARDED_HEADER = 1000;

/**
 * Whether the request reached a proxy over HTTPS, as that proxy says: the first hop of
 * X-Forwarded-Proto, else the first `proto=` of Forwarded (RFC 7239). Only the snippet's scheme
 * depends on it (a browser on an HTTPS page may not open ws://), so a forged header misleads no one
 * but the sender; anything unreadable counts as plain HTTP.
 */
export function forwardedHttps(headers: Readonly<Record<string, string>>): boolean {
  const xfp = headers['x-forwarded-proto'];
  if (xfp !== undefined && xfp.length <= MAX_FORWARDED_HEADER) return (xfp.split(',')[0] ?? '').trim().toLowerCase() === 'https';
  const fwd = headers.forwarded;
  if (fwd === undefined || fwd.length > MAX_FORWARDED_HEADER) return false;
  const first = fwd.split(',')[0] ?? '';
  for (const pair of first.split(';')) {
    const [k, v] = pair.split('=');
    if (k?.trim().toLowerCase() === 'proto') return (v ?? '').trim().replace(/^"(.*)"$/, '$1').toLowerCase() === 'https';
  }
  return false;
}

/** Where games connect, from the config, the bound ports and (only when needed) the request. */
export function connectAddress(config: Config, bound: { tcpPort: number; httpPort: number }, info: Pick<RequestInfo, 'headers'>): Omit<ConnectInfoAnswer, 'apiKey'> {
  const host = config.advertise.host ?? (isWildcardHost(config.host) ? hostOfHeader(info.headers.host) : config.host);
  const tcpPort = config.advertise.tcpPort ?? bound.tcpPort;
  const httpPort = config.advertise.httpPort ?? bound.httpPort;
  const scheme = (config.advertise.tls ?? forwardedHttps(info.headers)) ? 'wss' : 'ws';
  return { host, tcpPort, httpPort, sdkUrl: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${httpPort}/sdk` };
}

export const connectInfoRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/api/connect-info',
    route(ctx, 'get_connect_info', async (reply, info) => {
      const session = await requireSession(ctx, info);
      if (info.query !== '') throw new ObserverioError('bad_request', 'GET /api/connect-info takes no query parameters');
      reply.json(200, { ...connectAddress(ctx.config, ctx.listening(), info), apiKey: session.apiKey } satisfies ConnectInfoAnswer);
    }),
  );
};
