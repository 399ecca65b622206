/**
 * `GET /api/connect-info` → {host, tcpPort, httpPort, sdkUrl, apiKey}: what a game of the signed-in
 * user connects to, so the dashboard's SDK snippets carry this daemon's real address rather than the
 * defaults (issue #13). The `advertise` config wins; else the ports are the bound ones and the host is
 * the bound one, or, bound to a wildcard address, the host the browser reached the dashboard at.
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

/** Where games connect, from the config, the bound ports and (only when needed) the request. */
export function connectAddress(config: Config, bound: { tcpPort: number; httpPort: number }, info: Pick<RequestInfo, 'headers'>): Omit<ConnectInfoAnswer, 'apiKey'> {
  const host = config.advertise.host ?? (isWildcardHost(config.host) ? hostOfHeader(info.headers.host) : config.host);
  const tcpPort = config.advertise.tcpPort ?? bound.tcpPort;
  const httpPort = config.advertise.httpPort ?? bound.httpPort;
  return { host, tcpPort, httpPort, sdkUrl: `ws://${isIPv6(host) ? `[${host}]` : host}:${httpPort}/sdk` };
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
