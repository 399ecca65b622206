/**
 * The observerio application: resolves the backends from configuration, builds the supervision tree
 * of DESIGN.md §1 and starts it. `stop()` is the graceful shutdown: the tree stops last-started first,
 * so HTTP and TCP stop accepting, connections drain their queued lines, pending logs are flushed to
 * the index, then pubsub and the store close.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { backendChild, HealthBoard } from './backends.js';
import { ClientActors, clientsChildSpec } from './clients/client-actors.js';
import type { DeviceConnEntry } from './clients/client.js';
import type { Config } from './config.js';
import { protocolErrorLine } from './errors.js';
import { Gateway } from './gateway/gateway.js';
import type { HttpContext } from './http/context.js';
import { DashboardSockets } from './http/dashboard-sockets.js';
import { LoginAttempts } from './http/login-attempts.js';
import { httpChildSpec } from './http/server.js';
import { SessionRevocations } from './http/session-revocations.js';
import { createLogger } from './log.js';
import { tenantLimits } from './limits/index.js';
import { logsChild, resolveLogIndex } from './log-index/index.js';
import { Metrics } from './metrics.js';
import { dynamicSupervisorHandle, Registry, Runtime, supervisor } from './otp/index.js';
import { resolvePubSub } from './pubsub/index.js';
import { resolveStore } from './store/index.js';
import type { WorkerDirectory } from './cluster/protocol.js';
import { SdkSockets } from './http/sdk-socket.js';
import { tcpChild } from './tcp/listener.js';

export interface AppOptions {
  logger?: Logger;
  /** Called if the root supervisor gives up (the CLI exits non-zero). */
  onFatal?: (reason: string) => void;
  /** Lines starting with this crash their connection actor (fault injection for tests/benchmarks). */
  crashPrefix?: string | null;
  /** How long a client actor lingers without device connections. */
  clientIdleMs?: number;
  /** Backend health probe period. */
  probeMs?: number;
  /** The other worker processes of `serve --workers N`, for the admin routes; absent when alone. */
  workers?: WorkerDirectory;
}

export interface App {
  readonly config: Config;
  readonly nodeId: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly runtime: Runtime;
  readonly ctx: HttpContext;
  stop(): Promise<void>;
}

export const ROOT = '/observerio';

export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const nodeId = `${hostname().slice(0, 24)}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const metrics = new Metrics({ defaultMetrics: true });
  const health = new HealthBoard();
  const probeMs = opts.probeMs ?? 5000;
  // Declared before the log batcher, which tells a refused log's sender through it.
  const deviceConns = new Registry<DeviceConnEntry>('deviceConns', 'duplicate', { id: (e) => e.connId, group: (e) => e.deviceKey });
  // Each child of the tree is made beside its spec and handed out as a handle: the store, pubsub and
  // logs handles are the backends the daemon holds, whose resources their workers open and close.
  const storeChild = backendChild('store', resolveStore(config, logger), health, { metrics, probeMs });
  const pubsubChild = backendChild('pubsub', resolvePubSub(config, logger), health, { metrics, probeMs });
  const logIndexBackend = resolveLogIndex(config, logger);
  const logs = logsChild(logIndexBackend, health, {
    metrics,
    probeMs,
    // Runs before the index closes: vars coalesced this tick reach the store, logs reach the batcher.
    beforeStop: () => gateway.flush(),
    batcher: {
      ...config.logs,
      // The memory index never fails a write: a spool on disk would only replay logs it lost anyway.
      spoolDir: logIndexBackend.kind === 'meilisearch' && config.logs.spoolDir !== null ? resolve(config.dataDir, config.logs.spoolDir) : null,
      limits: config.logs,
      onRejected: (entry, reason) => {
        metrics.logsRejected.inc({ reason });
        const line = `${protocolErrorLine('log_rejected', `log ${entry.id} refused by the log index (${reason}); not stored`)}\n`;
        // A named device's key is its id (client-actors.ts deviceKeyOf); an anonymous one's log carries no
        // id, so every anonymous socket of the key is told, as before.
        const conns = entry.deviceId !== null ? deviceConns.inGroup(entry.apiKey, entry.deviceId) : deviceConns.lookup(entry.apiKey).map((c) => c.value);
        for (const c of conns) if (c.deviceId === entry.deviceId) c.write(line);
      },
      logger: logger.child({ component: 'log-batcher' }),
      onBatch: (size, ms) => {
        metrics.logsIndexed.inc(size);
        metrics.indexBatchSize.observe(size);
        metrics.indexBatchSeconds.observe(ms / 1000);
      },
    },
  });
  const store = storeChild.handle;
  const pubsub = pubsubChild.handle;
  const { index: logIndex, batcher } = logs;
  // The gateway holds no resource of its own, only writes coalesced per tick: the logs worker (the
  // last backend to start, the first to stop) flushes it before any backend closes.
  const gateway = new Gateway({ store, pubsub, logs: batcher, metrics, logger: logger.child({ component: 'gateway' }), nodeId, retry: config.gateway });
  const clientActors = new Registry<null>('clientActors', 'unique');
  const clientsSup = dynamicSupervisorHandle();
  let runtime: Runtime | undefined;
  const rt = (): Runtime => {
    if (!runtime) throw new Error('runtime not started');
    return runtime;
  };
  const clients = new ClientActors(() => clientsSup.cell(), {
    store,
    variables: config.variables,
    pubsub,
    deviceConns,
    clientActors,
    gateway,
    metrics,
    logger,
    nodeId,
    idleMs: opts.clientIdleMs ?? 30_000,
  });
  const dashboardSockets = new DashboardSockets();
  const sessionRevocations = new SessionRevocations({ pubsub, sockets: dashboardSockets, logger: logger.child({ component: 'session-revocations' }), sessionCacheMs: config.http.sessionCacheMs });
  const loginLimiter = new LoginAttempts(store, logger.child({ component: 'login-limiter' }));

  let tcpPort = config.tcpPort;
  let httpPort = config.httpPort;
  const tcp = tcpChild({
    host: config.host,
    port: config.tcpPort,
    tcp: config.tcp,
    metrics,
    logger: logger.child({ component: 'tcp' }),
    onListening: (p) => (tcpPort = p),
    connection: {
      gateway,
      limits: tenantLimits(config.limits, store, metrics),
      nodeId,
      crashPrefix: opts.crashPrefix ?? null,
      onVerified: (conn, c) => clients.deviceVerified(conn, c.self),
      onReport: (conn, vars) => clients.deviceReported(conn, vars),
      onLabels: (conn, labels) => clients.deviceLabels(conn, labels),
    },
  });
  // The TCP listener and GET /sdk start their connections the same way, under the same `tcp/conns`.
  const ctx: HttpContext = { config, store, pubsub, logIndex, batcher, gateway, clients, deviceConns, runtime: rt, metrics, health, logger, nodeId, loginLimiter, dashboardSockets, sessionRevocations, startConnection: tcp.startConnection, sdkSockets: new SdkSockets(), workers: opts.workers ?? null, listening: () => ({ tcpPort, httpPort }) };

  const root = {
    id: 'observerio',
    start: supervisor({ strategy: 'one_for_one', intensity: 3, period: 5000 }, [
      storeChild.spec,
      pubsubChild.spec,
      logs.spec,
      clients.registryChildSpec(),
      { ...clientsChildSpec(), handle: clientsSup },
      tcp.spec,
      httpChildSpec(ctx, { host: config.host, port: config.httpPort, onListening: (p) => (httpPort = p) }),
    ]),
  };

  const started = await Runtime.start(root, {
    logger,
    onRootFailure: (reason) => {
      logger.fatal({ reason }, 'the root supervisor gave up');
      opts.onFatal?.(reason);
    },
  });
  runtime = started;
  started.events.on('crash', (e: { supervisor: string }) => metrics.crashes.inc({ supervisor: e.supervisor }));
  started.events.on('restart', (e: { supervisor: string }) => metrics.restarts.inc({ supervisor: e.supervisor }));
  metrics.readFromAtScrape({
    logsDropped: () => batcher.stats().dropped,
    logsDroppedByReason: () => batcher.stats().droppedByReason,
    logSpool: () => {
      const s = batcher.stats();
      return { pending: s.pending, bytes: s.spool.bytes };
    },
  });

  let stopping: Promise<void> | undefined;
  return {
    config,
    nodeId,
    get tcpPort() {
      return tcpPort;
    },
    get httpPort() {
      return httpPort;
    },
    runtime: started,
    ctx,
    stop() {
      stopping ??= (async () => {
        await started.stop();
        metrics.close();
      })();
      return stopping;
    },
  };
}

