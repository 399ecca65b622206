/**
 * Everything the HTTP layer (REST, WebSocket, admin, metrics, dashboard) may use, passed in once;
 * and `route()`, which wraps a handler with request copying, error answers and metrics. The services
 * are built by app.ts (as fastify's `decorate` does), so src/http/ holds no state of its own and two
 * daemons in one process never share any.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { HealthBoard } from '../backends.js';
import type { ClientActors } from '../clients/client-actors.js';
import type { DeviceConnEntry } from '../clients/client.js';
import type { WorkerDirectory } from '../cluster/protocol.js';
import type { Config } from '../config.js';
import type { Gateway } from '../gateway/gateway.js';
import type { LogBatcher } from '../log-index/batcher.js';
import type { LogIndex } from '../log-index/log-index.js';
import type { Metrics } from '../metrics.js';
import type { Registry, Runtime } from '../otp/index.js';
import type { PubSub } from '../pubsub/pubsub.js';
import type { Store } from '../store/store.js';
import type { StartConnection } from '../tcp/listener.js';
import type { DashboardSockets } from './dashboard-sockets.js';
import type { LoginAttempts } from './login-attempts.js';
import type { SdkSockets } from './sdk-socket.js';
import type { SessionRevocations } from './session-revocations.js';
import { Reply, requestInfo, type RequestInfo } from './respond.js';

export interface HttpContext {
  config: Config;
  store: Store;
  pubsub: PubSub;
  logIndex: LogIndex;
  batcher: LogBatcher;
  gateway: Gateway;
  /** The client actors and their API, variable changes included. */
  clients: ClientActors;
  /** Verified device connections on this node by API key. */
  deviceConns: Registry<DeviceConnEntry>;
  /** Failed sign-ins per email, cluster-wide on Redis. */
  loginLimiter: LoginAttempts;
  /** This node's open dashboard WebSockets. */
  dashboardSockets: DashboardSockets;
  /** Starts the connection actor of an SDK transport other than the TCP listener's (GET /sdk). */
  startConnection: StartConnection;
  /** This node's open SDK WebSockets (GET /sdk). */
  sdkSockets: SdkSockets;
  /** Sign-outs told to every node, which close that session's sockets there. */
  sessionRevocations: SessionRevocations;
  /** The running actor tree (set once the runtime has started). */
  runtime: () => Runtime;
  metrics: Metrics;
  health: HealthBoard;
  logger: Logger;
  nodeId: string;
  /** The ports the TCP and HTTP listeners are bound to: the real ones when 0 was configured (tests). */
  listening: () => { tcpPort: number; httpPort: number };
  /** The worker processes of `serve --workers N` (admin routes); null in a single-process daemon. */
  workers: WorkerDirectory | null;
}

export type RouteModule = (app: TemplatedApp, ctx: HttpContext) => void;

export type Handler = (reply: Reply, info: RequestInfo) => void | Promise<void>;

/** Wraps a handler: copies the request before any await, answers thrown errors, counts the request. */
export function route(ctx: HttpContext, name: string, handler: Handler, paramCount = 0) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const info = requestInfo(res, req, paramCount);
    const reply = new Reply(res);
    const finish = (): void => {
      ctx.metrics.httpRequests.inc({ route: name, status: String(reply.status || (reply.aborted ? 499 : 0)) });
    };
    const onError = (err: unknown): void => {
      if (!(err instanceof Error && err.name === 'ObserverioError')) ctx.logger.error({ err, route: name }, 'request failed');
      reply.fail(err);
      finish();
    };
    try {
      const r = handler(reply, info);
      if (r && typeof r.then === 'function') r.then(finish, onError);
      else finish();
    } catch (err) {
      onError(err);
    }
  };
}
