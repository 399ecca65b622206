/**
 * The TCP side of the tree (ranch's listener + conns_sup): a `conns` dynamic supervisor with one
 * connection actor per socket, and the listener that accepts sockets and starts those actors. The
 * supervisor is rest_for_one, so if `conns` restarts, the listener restarts after it. The browser
 * SDK's WebSocket (`GET /sdk`, src/http/sdk-socket.ts) starts its connections here too. The
 * connections' device events go out in turns (device-events.ts) while the listener runs.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { TcpConfig } from '../config.js';
import { errorReply } from './protocol.js';
import type { Metrics } from '../metrics.js';
import { dynamicSupervisor, dynamicSupervisorHandle, supervisor, worker, type ChildHandle, type ChildSpec, type DynamicSupervisorCell } from '../otp/index.js';
import type { Gateway } from '../gateway/gateway.js';
import { Connection, connectionChildSpec, newConnectionId, type ConnectionDeps, type ConnectionGateway, type ConnectionMsg } from './connection.js';
import { DeviceEvents } from './device-events.js';
import { NetTransport } from './net-transport.js';
import type { LineTransport } from './transport.js';

export interface ListenerOptions {
  host: string;
  port: number;
  tcp: TcpConfig;
  metrics: Metrics;
  logger: Logger;
  /** The gateway's `device` is called through DeviceEvents, which publishes with its publishMany. */
  connection: Omit<ConnectionDeps, 'tcp' | 'metrics' | 'gateway'> & { gateway: ConnectionGateway & Pick<Gateway, 'publishMany'> };
  /** Told the bound port (0 in config picks a free one). */
  onListening?: (port: number) => void;
}

interface ListenerState {
  server: Server;
  port: number;
}

/**
 * Admits a new SDK transport and starts its connection actor under `tcp/conns`: the one way a
 * connection starts, for the TCP listener and `GET /sdk` alike, so both share `maxConnections`
 * and the per-address limit (`host` is the address without a port: every connection from one
 * machine shares its slots). A refused transport gets the error line and is ended. Returns what
 * gives the address slot back, for the caller to run once the transport has closed (its own close
 * event: the actor may never start), or null when refused.
 */
export type StartConnection = (transport: LineTransport, host: string) => (() => void) | null;

/** The TCP subtree's spec, and how anything else that carries the protocol starts a connection. */
export interface TcpChild {
  spec: ChildSpec;
  startConnection: StartConnection;
}

export function tcpChild(opts: ListenerOptions): TcpChild {
  // The listener and GET /sdk find `conns` through this handle, whichever incarnation runs.
  const conns = dynamicSupervisorHandle();
  const deviceEvents = new DeviceEvents(opts.connection.gateway);
  const startConnection = connectionStarter(opts, conns, deviceEvents);
  const spec: ChildSpec = {
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
      { id: 'listener', start: listenerBehaviour(opts, conns, startConnection, deviceEvents) },
    ]),
  };
  return { spec, startConnection };
}

function connectionStarter(opts: ListenerOptions, connsHandle: ChildHandle<DynamicSupervisorCell>, deviceEvents: DeviceEvents): StartConnection {
  const g = opts.connection.gateway;
  const gateway: ConnectionGateway = {
    verifyKey: (apiKey) => g.verifyKey(apiKey),
    logs: (apiKey, deviceId, logs) => g.logs(apiKey, deviceId, logs),
    vars: (apiKey, deviceId, vars) => g.vars(apiKey, deviceId, vars),
    device: (event, device) => deviceEvents.device(event, device),
  };
  const deps: ConnectionDeps = { ...opts.connection, gateway, tcp: opts.tcp, metrics: opts.metrics };
  const { metrics, tcp } = opts;
  const { limits } = opts.connection;

  const refuse = (transport: LineTransport, line: string): null => {
    metrics.connectionsRefused.inc({ transport: transport.kind });
    transport.write(line);
    transport.end();
    return null;
  };

  return (transport, host) => {
    metrics.connectionsAccepted.inc({ transport: transport.kind });
    let conns: DynamicSupervisorCell;
    try {
      conns = connsHandle.cell();
    } catch (err) {
      // Only while the tree stops: the listeners close before `conns` does.
      opts.logger.warn({ err }, 'no conns supervisor for a new connection');
      transport.destroy();
      return null;
    }
    if (conns.size >= tcp.maxConnections) {
      return refuse(transport, errorReply({ code: 'server_busy', message: `connection limit of ${tcp.maxConnections} reached; retry later` }));
    }
    if (!limits.acquireAddress(host)) {
      return refuse(transport, errorReply({ code: 'too_many_connections', message: `connection limit of ${limits.cfg.maxConnectionsPerAddress} per address reached; retry later` }));
    }
    const conn = new Connection(newConnectionId(), transport, tcp);
    conns.startChild<ConnectionMsg>(connectionChildSpec(conn, deps)).catch((err: unknown) => {
      opts.logger.warn({ err }, 'cannot start a connection actor');
      transport.destroy();
    });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      limits.releaseAddress(host);
    };
  };
}

function listenerBehaviour(opts: ListenerOptions, connsHandle: ChildHandle<DynamicSupervisorCell>, startConnection: StartConnection, deviceEvents: DeviceEvents) {
  const { tcp } = opts;
  const { limits } = opts.connection;
  let boundPort = opts.port;

  const accept = (socket: Socket): void => {
    // The transport handles the socket's errors from here on; the actor listens to it once started.
    // The address slot comes back when the socket closes (the transport's close handler, not the
    // connection actor's: however the socket ends, also if the actor never starts).
    const transport = new NetTransport(socket);
    transport.onClose = startConnection(transport, socket.remoteAddress ?? '?');
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
      deviceEvents.setBatching(true);
      return { server, port: boundPort };
    },
    terminate(state) {
      // Stop accepting; open connections are their own actors and close with `conns` (stopped after
      // this at shutdown): their disconnects go out one by one, while pubsub is still up.
      deviceEvents.setBatching(false);
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
