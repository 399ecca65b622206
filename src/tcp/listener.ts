/**
 * The TCP side of the tree (ranch's listener + conns_sup): a `conns` dynamic supervisor with one
 * connection actor per socket, and the listener that accepts sockets and starts those actors. The
 * supervisor is rest_for_one, so if `conns` restarts, the listener restarts after it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { TcpConfig } from '../config.js';
import { errorReply } from './protocol.js';
import type { Metrics } from '../metrics.js';
import { dynamicSupervisor, dynamicSupervisorHandle, supervisor, worker, type ChildHandle, type ChildSpec, type DynamicSupervisorCell } from '../otp/index.js';
import { Connection, connectionChildSpec, newConnectionId, type ConnectionDeps, type ConnectionMsg } from './connection.js';
import { NetTransport } from './net-transport.js';

export interface ListenerOptions {
  host: string;
  port: number;
  tcp: TcpConfig;
  metrics: Metrics;
  logger: Logger;
  connection: Omit<ConnectionDeps, 'tcp' | 'metrics'>;
  /** Told the bound port (0 in config picks a free one). */
  onListening?: (port: number) => void;
}

interface ListenerState {
  server: Server;
  port: number;
}

export function tcpChildSpec(opts: ListenerOptions): ChildSpec {
  // The listener finds its sibling through this handle, whichever incarnation of `conns` runs.
  const conns = dynamicSupervisorHandle();
  return {
    id: 'tcp',
    start: supervisor({ strategy: 'rest_for_one', intensity: 3, period: 5000 }, [
      {
        id: 'conns',
        start: dynamicSupervisor({
          maxChildren: opts.tcp.maxConnections,
          childIntensity: opts.tcp.restartIntensity,
          childPeriod: opts.tcp.restartPeriodMs,
          backoff: opts.tcp.restartBackoff,
        }),
        shutdown: 10_000,
        handle: conns,
      },
      { id: 'listener', start: listenerBehaviour(opts, conns) },
    ]),
  };
}

function listenerBehaviour(opts: ListenerOptions, connsHandle: ChildHandle<DynamicSupervisorCell>) {
  const deps: ConnectionDeps = { ...opts.connection, tcp: opts.tcp, metrics: opts.metrics };
  const { metrics, tcp } = opts;
  const { limits } = opts.connection;
  let boundPort = opts.port;

  const refuse = (socket: Socket, line: string): void => {
    metrics.connectionsRefused.inc();
    socket.end(line);
    socket.on('error', () => undefined);
  };

  const accept = (socket: Socket): void => {
    metrics.connectionsAccepted.inc();
    let conns: DynamicSupervisorCell;
    try {
      conns = connsHandle.cell();
    } catch (err) {
      // Only while the tree stops: the listener closes before `conns` does.
      opts.logger.warn({ err }, 'no conns supervisor for an accepted socket');
      socket.destroy();
      return;
    }
    if (conns.size >= tcp.maxConnections) {
      refuse(socket, errorReply({ code: 'server_busy', message: `connection limit of ${tcp.maxConnections} reached; retry later` }));
      return;
    }
    // The host alone: every connection from one machine shares its slots, whatever its source port.
    const address = socket.remoteAddress ?? '?';
    if (!limits.acquireAddress(address)) {
      refuse(socket, errorReply({ code: 'too_many_connections', message: `connection limit of ${limits.cfg.maxConnectionsPerAddress} per address reached; retry later` }));
      return;
    }
    // On the socket, not the connection actor: the slot comes back however the socket ends, also if
    // the actor never starts.
    socket.once('close', () => limits.releaseAddress(address));
    // The transport handles the socket's errors from here on; the actor listens to it once started.
    const transport = new NetTransport(socket);
    const conn = new Connection(newConnectionId(), transport, tcp);
    conns.startChild<ConnectionMsg>(connectionChildSpec(conn, deps)).catch((err: unknown) => {
      opts.logger.warn({ err }, 'cannot start a connection actor');
      transport.destroy();
    });
  };

  return worker<ListenerState, never>({
    async init() {
      // No delay is set on each accepted socket by the server itself (setting it again per socket
      // cost another system call per connection in a reconnect storm). No TCP keep-alive: the idle
      // timeout closes a silent connection long before Linux's keep-alive probes (60 s, then 9 × 75 s)
      // would have declared it dead, and each option is a system call per accepted socket.
      const server = createServer({ noDelay: true }, accept);
      server.maxConnections = tcp.maxConnections + 100;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: opts.host, port: boundPort, backlog: 4096 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address();
      // Keep the same port across restarts (config 0 picks one the first time).
      if (typeof addr === 'object' && addr) boundPort = addr.port;
      server.on('error', (err) => opts.logger.error({ err }, 'tcp listener error'));
      opts.onListening?.(boundPort);
      opts.logger.info({ host: opts.host, port: boundPort }, 'tcp listening');
      return { server, port: boundPort };
    },
    terminate(state) {
      // Stop accepting; open connections are their own actors and close with `conns`.
      return new Promise<void>((resolve) => {
        state.server.close(() => resolve());
        setTimeout(resolve, 100).unref();
      });
    },
    info(state) {
      return { host: opts.host, port: state.port, connections: connsHandle.cell().size, limits: limits.stats() };
    },
  });
}
