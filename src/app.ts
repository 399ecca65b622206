/**
 * The observerio application: resolves the backends from configuration, builds the supervision tree
 * of DESIGN.md §1 and starts it. `stop()` is the graceful shutdown: the tree stops last-started first,
 * so HTTP and TCP stop accepting, connections drain their queued lines, pending logs are flushed to
 * the index, then pubsub and the store close.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { backendChildSpec, HealthBoard } from './backends.js';
import type { SocketEntry } from './clients/client.js';
import { Clients, clientsChildSpec } from './clients/clients-supervisor.js';
import type { Config } from './config.js';
import { Gateway, type DeviceInfo } from './gateway/gateway.js';
import type { HttpContext } from './http/context.js';
import { httpChildSpec } from './http/server.js';
import { createLogger } from './log.js';
import { tenantLimits } from './limits/index.js';
import { LogBatcher } from './log-index/batcher.js';
import { resolveLogIndex } from './log-index/index.js';
import { Metrics } from './metrics.js';
import { Registry, Runtime, supervisor, worker, type ActorRef } from './otp/index.js';
import { resolvePubSub } from './pubsub/index.js';
import { resolveStore } from './store/index.js';
import type { ConnectionMsg } from './tcp/connection.js';
import { tcpChildSpec } from './tcp/listener.js';

export interface AppOptions {
  logger?: Logger;
  /** Called if the root supervisor gives up (the CLI exits non-zero). */
  onFatal?: (reason: string) => void;
  /** Lines starting with this crash their connection actor (fault injection for tests/benchmarks). */
  crashPrefix?: string | null;
  /** How long a client actor lingers without sockets. */
  clientIdleMs?: number;
  /** Backend health probe period. */
  probeMs?: number;
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
  const store = resolveStore(config, logger);
  const pubsub = resolvePubSub(config, logger);
  const logIndex = resolveLogIndex(config, logger);
  const batcher = new LogBatcher(logIndex, {
    ...config.logs,
    logger: logger.child({ component: 'log-batcher' }),
    onBatch: (size, ms) => {
      metrics.logsIndexed.inc(size);
      metrics.indexBatchSize.observe(size);
      metrics.indexBatchSeconds.observe(ms / 1000);
    },
  });
  const gateway = new Gateway({ store, pubsub, logs: batcher, metrics, logger: logger.child({ component: 'gateway' }), nodeId });
  const sockets = new Registry<SocketEntry>('sockets', 'duplicate');
  const clientsRegistry = new Registry<null>('clients', 'unique');
  const health = new HealthBoard();
  let runtime: Runtime | undefined;
  const rt = (): Runtime => {
    if (!runtime) throw new Error('runtime not started');
    return runtime;
  };
  const clients = new Clients(() => rt().dynamicSupervisor(`${ROOT}/clients`), {
    store,
    pubsub,
    sockets,
    clients: clientsRegistry,
    gateway,
    metrics,
    logger,
    nodeId,
    idleMs: opts.clientIdleMs ?? 30_000,
  });
  const ctx: HttpContext = { config, store, pubsub, logIndex, batcher, gateway, clients, sockets, runtime: rt, metrics, health, logger, nodeId };

  let tcpPort = config.tcpPort;
  let httpPort = config.httpPort;
  const probeMs = opts.probeMs ?? 5000;

  const onVerified = (
    conn: { id: string; verified: { apiKey: string; deviceId: string | null } | null; write(line: string): boolean; device(nodeId: string): DeviceInfo },
    self: ActorRef<ConnectionMsg>,
  ): void => {
    const v = conn.verified;
    if (!v) return;
    sockets.register(v.apiKey, self, { connId: conn.id, deviceId: v.deviceId, write: (line) => conn.write(line), device: () => conn.device(nodeId) });
    self.monitor(() => clients.notify(v.apiKey, { kind: 'socket_down' }));
    clients.ensure(v.apiKey).then(
      (ref) => ref.send({ kind: 'socket_up', connId: conn.id }),
      (err: unknown) => logger.error({ err, apiKey: v.apiKey }, 'cannot start client actor'),
    );
  };

  const root = {
    id: 'observerio',
    start: supervisor({ strategy: 'one_for_one', intensity: 3, period: 5000 }, [
      backendChildSpec('store', store, health, { metrics, probeMs }),
      backendChildSpec('pubsub', pubsub, health, { metrics, probeMs }),
      backendChildSpec('logs', logIndex, health, {
        metrics,
        probeMs,
        // Before the index closes: vars coalesced this tick reach the store, logs reach the index.
        beforeStop: async (reason) => {
          await gateway.flush();
          if (reason === 'shutdown') await batcher.stop();
          else await batcher.flush();
        },
        info: () => ({ ...batcher.stats() }),
      }),
      {
        id: 'registry',
        start: worker<null, never>({
          init: () => null,
          info: () => ({ sockets: sockets.size, keysWithSockets: sockets.keysList().length, clients: clientsRegistry.size }),
        }),
      },
      clientsChildSpec(),
      tcpChildSpec({
        host: config.host,
        port: config.tcpPort,
        tcp: config.tcp,
        metrics,
        logger: logger.child({ component: 'tcp' }),
        conns: () => rt().dynamicSupervisor(`${ROOT}/tcp/conns`),
        onListening: (p) => (tcpPort = p),
        connection: { gateway, limits: tenantLimits(config.limits, store, metrics), nodeId, crashPrefix: opts.crashPrefix ?? null, onVerified: (conn, c) => onVerified(conn, c.self) },
      }),
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
  metrics.readFromAtScrape({ logsDropped: () => batcher.stats().dropped });

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

