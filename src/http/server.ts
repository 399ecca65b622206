/**
 * The HTTP worker: one uWebSockets.js app serving the REST API, the dashboard, the live WebSocket,
 * admin and metrics. Its init listens; its terminate stops listening and closes every WebSocket
 * explicitly (uWS keeps them open otherwise).
 */
import uWS from 'uWebSockets.js';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { worker, type ChildSpec } from '../otp/index.js';
import type { HttpContext } from './context.js';
import { routeModules } from './routes.js';
import { Reply } from './respond.js';

export interface HttpOptions {
  host: string;
  port: number;
  onListening?: (port: number) => void;
}

interface State {
  app: TemplatedApp;
  listenSocket: us_listen_socket;
  port: number;
}

/** True when the native uWS binary loaded (not the slow JS fallback). */
export function uwsIsNative(): boolean {
  return typeof (uWS as unknown as { SSLApp?: unknown }).SSLApp === 'function' && 'DEDICATED_COMPRESSOR_3KB' in uWS;
}

export function httpChildSpec(ctx: HttpContext, opts: HttpOptions): ChildSpec {
  // The app and its listen socket belong to the spec, like a connection's socket: a restart of this
  // worker keeps serving on the same port (open keep-alive connections and WebSockets would stop
  // the port from being bound again), and only the end of the worker closes them.
  let held: State | null = null;
  const listen = async (): Promise<State> => {
    const app = uWS.App();
    for (const m of routeModules) m(app, ctx);
    app.any('/*', (res) => new Reply(res).error('not_found', 'no such route'));
    const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
      app.listen(opts.host, opts.port, (ls) => (ls ? resolve(ls) : reject(new Error(`cannot listen on http://${opts.host}:${opts.port}`))));
    });
    const port = uWS.us_socket_local_port(listenSocket);
    opts.onListening?.(port);
    ctx.logger.info({ host: opts.host, port, native: uwsIsNative() }, 'http listening');
    return { app, listenSocket, port };
  };
  return {
    id: 'http',
    shutdown: 5000,
    start: worker<State, never>({
      async init() {
        // Not awaited: sign-outs from other nodes close sockets here once it is up, and it retries.
        ctx.sessionRevocations.start().catch(() => undefined);
        held ??= await listen();
        return held;
      },
      async terminate(state, _reason, restarting) {
        if (restarting) return;
        held = null;
        uWS.us_listen_socket_close(state.listenSocket);
        ctx.dashboardSockets.closeAll(1001, 'server shutting down');
        ctx.sdkSockets.closeAll(1001, 'server shutting down');
        await ctx.sessionRevocations.stop();
      },
      info(state) {
        return { host: opts.host, port: state.port, websockets: ctx.dashboardSockets.size, sdkWebsockets: ctx.sdkSockets.size, native: uwsIsNative() };
      },
    }),
  };
}
