/**
 * `observerio serve`: loads and validates the configuration (files, environment, flags), starts the
 * daemon in the foreground, and shuts it down gracefully on SIGTERM/SIGINT — stop accepting, drain
 * connections, flush pending logs, close backends — exiting 0, or 1 if that took too long.
 * With `--workers N` (Redis only) this process becomes the primary of N such daemons (cluster/).
 */
import type { Command } from 'commander';
import cluster from 'node:cluster';
import { checkWorkers, ConfigError, loadConfig, parseWorkers, type Config } from '../config.js';
import { workerRole } from '../cluster/protocol.js';
import type { Logger } from 'pino';
import { createLogger } from '../log.js';
import { processHeapReducer } from '../heap-reducer.js';

interface ServeFlags {
  host?: string;
  tcpPort?: string;
  httpPort?: string;
  redisUrl?: string;
  meiliUrl?: string;
  dataDir?: string;
  logLevel?: string;
  workers?: string;
}

function portFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new ConfigError(`--${name}: expected a port number 0-65535, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** A port in use somewhere in an error's cause chain (the listener's EADDRINUSE, wrapped by each supervisor), or null. */
export function portInUse(err: unknown): { port: number; address: string | null; certain: boolean } | null {
  let e: unknown = err;
  for (let i = 0; i < 10 && typeof e === 'object' && e !== null; i++) {
    const o = e as { code?: unknown; port?: unknown; address?: unknown; cause?: unknown };
    if (o.code === 'EADDRINUSE') return { port: typeof o.port === 'number' ? o.port : -1, address: typeof o.address === 'string' ? o.address : null, certain: true };
    // uWebSockets.js reports no errno: the HTTP server says "cannot listen on http://host:port".
    const m = e instanceof Error ? /cannot listen on https?:\/\/(\[[^\]]+\]|[^:/\s]+):(\d+)/.exec(e.message) : null;
    if (m) return { port: Number(m[2]), address: m[1] ?? null, certain: false };
    e = o.cause;
  }
  return null;
}

/**
 * Once the daemon runs: after a busy spell (a connection storm) the heap V8 grew for it is given back
 * when the process is quiet again (heap-reducer.ts), instead of staying committed for minutes.
 */
function reduceHeapWhenQuiet(config: Config, logger: Logger): void {
  if (!config.memory.reduceAfterBusySpell) return;
  processHeapReducer((r) =>
    logger.info(
      { committedBefore: r.before.committed, committedAfter: r.after.committed, usedAfter: r.after.used, ms: Math.round(r.ms) },
      `quiet after a busy spell: heap ${(r.before.committed / 2 ** 20).toFixed(0)} → ${(r.after.committed / 2 ** 20).toFixed(0)} MiB committed (${(r.after.used / 2 ** 20).toFixed(0)} MiB live), ${Math.round(r.ms)} ms`,
    ),
    { quietUtilization: config.memory.quietUtilization },
  ).start();
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the daemon in the foreground (embedded backends unless REDIS_URL / MEILI_URL are set)')
    .option('--host <address>', 'address to bind (env OBSERVERIO_HOST)')
    .option('--tcp-port <port>', 'SDK TCP port (env OBSERVERIO_TCP_PORT)')
    .option('--http-port <port>', 'HTTP port (env OBSERVERIO_HTTP_PORT)')
    .option('--redis-url <url>', 'Redis URL (env REDIS_URL)')
    .option('--meili-url <url>', 'Meilisearch URL (env MEILI_URL)')
    .option('--data-dir <dir>', 'embedded store snapshot folder (env OBSERVERIO_DATA_DIR)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env LOG_LEVEL)')
    .option('--workers <n>', 'daemon processes sharing the ports, e.g. one per core; more than 1 needs Redis (env OBSERVERIO_WORKERS)')
    .action(async (flags: ServeFlags) => {
      const overrides: Record<string, unknown> = {};
      const set = (k: string, v: unknown) => v !== undefined && (overrides[k] = v);
      set('host', flags.host);
      set('tcpPort', portFlag('tcp-port', flags.tcpPort));
      set('httpPort', portFlag('http-port', flags.httpPort));
      set('redisUrl', flags.redisUrl);
      set('meiliUrl', flags.meiliUrl);
      set('dataDir', flags.dataDir);
      set('logLevel', flags.logLevel);
      if (flags.workers !== undefined) set('workers', parseWorkers('--workers', flags.workers));
      // A worker of --workers: the primary chose the ports (a configured 0 must mean one port for all).
      const role = cluster.isWorker ? workerRole() : null;
      if (role) Object.assign(overrides, { tcpPort: role.tcpPort, httpPort: role.httpPort });
      const config = loadConfig({ overrides });
      checkWorkers(config);
      if (config.workers > 1 && !role) {
        const { runPrimary } = await import('../cluster/primary.js');
        const logger = createLogger({ level: config.logLevel });
        await runPrimary({ config, logger, exit: (code) => process.exit(code) });
        return;
      }
      // Loaded here, not at the top: the other commands should not pay for the whole daemon.
      const { startApp } = await import('../app.js');
      if (role) {
        const logger = createLogger({ level: config.logLevel }).child({ worker: role.id });
        const { runWorker } = await import('../cluster/worker.js');
        await runWorker({
          config,
          role,
          logger,
          start: (link, onFatal) =>
            startApp(config, { logger, crashPrefix: config.faultInjectionPrefix, workers: link, onFatal }).then(
              (app) => {
                reduceHeapWhenQuiet(config, logger);
                return app;
              },
              (err: unknown) => {
                logger.fatal({ err }, 'cannot start');
                throw err;
              },
            ),
        });
        return;
      }
      const logger = createLogger({ level: config.logLevel });
      let exiting = false;
      const app = await startApp(config, {
        logger,
        crashPrefix: config.faultInjectionPrefix,
        onFatal: () => {
          if (exiting) return;
          exiting = true;
          void app.stop().finally(() => process.exit(1));
        },
      }).catch((err: unknown) => {
        const busy = portInUse(err);
        if (busy) {
          // One line that says what to change, instead of the supervisors' StartError around StartError.
          const which = busy.port === config.tcpPort ? 'the SDK TCP port; set OBSERVERIO_TCP_PORT or --tcp-port' : busy.port === config.httpPort ? 'the HTTP port; set OBSERVERIO_HTTP_PORT or --http-port' : 'set OBSERVERIO_TCP_PORT / OBSERVERIO_HTTP_PORT';
          const where = `${busy.address ?? config.host}:${busy.port}`;
          throw new Error(`cannot start: ${busy.certain ? `${where} is already in use` : `cannot listen on ${where}, most likely it is in use`} (${which} to another port, or stop what listens there)`);
        }
        logger.fatal({ err }, 'cannot start');
        throw err;
      });
      logger.info(
        { tcp: `${config.host}:${app.tcpPort}`, http: `http://${config.host}:${app.httpPort}/`, store: app.ctx.store.kind, logs: app.ctx.logIndex.kind, pubsub: app.ctx.pubsub.kind, node: app.nodeId },
        `observerio ready: SDK on ${config.host}:${app.tcpPort}, dashboard on http://${config.host}:${app.httpPort}/`,
      );
      reduceHeapWhenQuiet(config, logger);
      if (config.faultInjectionPrefix !== null) logger.warn({ prefix: config.faultInjectionPrefix }, 'fault injection is on: lines starting with this prefix crash their connection actor (tests and benchmarks only)');
      const shutdown = (signal: string): void => {
        if (exiting) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(130);
        }
        exiting = true;
        logger.info({ signal }, 'shutting down');
        const timer = setTimeout(() => {
          logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting');
          process.exit(1);
        }, config.shutdownTimeoutMs);
        timer.unref();
        app.stop().then(
          () => {
            logger.info('stopped');
            logger.flush?.();
            process.exit(0);
          },
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
    });
}
