/**
 * `GET /sdk`: the browser SDK's WebSocket (DESIGN.md §9, docs/PROTOCOL.md "WebSocket transport").
 * The line protocol as on TCP, run by the same connection actor under `tcp/conns` through a
 * WsTransport: the same commands, replies, errors and limits (`maxConnections`, per address and per
 * key), and the API key checked by `v:`, so the upgrade asks for no session (a game has none). A
 * device on it is like any other in every view. This module only glues uWS's handlers to the
 * transport and keeps the node's open sockets, which the HTTP worker closes at shutdown with 1001.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { TcpConfig } from '../config.js';
import { WsTransport } from '../tcp/ws-transport.js';
import type { HttpContext, RouteModule } from './context.js';

/** What each socket carries from its upgrade. */
interface SdkSocketData {
  /** The peer's address without a port, for the per-address limit. */
  host: string;
  transport: WsTransport | null;
  /** Gives back the address slot (startConnection's answer). */
  release: (() => void) | null;
  closed: boolean;
}

/** Subprotocol a client may offer; echoed back when offered, never required. */
export const SDK_WS_PROTOCOL = 'observerio-lines';
/**
 * Room in a message for more than one line of the maximum length: a message may carry several
 * lines, but not without bound (uWS drops a bigger one before it is read, without a close frame).
 */
export const SDK_WS_PAYLOAD_SLACK = 64 * 1024;
/**
 * uWS's own cap on what a socket may have queued, past which it closes the socket. Above the
 * connection's 8 MiB write backlog, which closes a slow reader first, with room for the message
 * written while just under it.
 */
export const SDK_WS_MAX_BACKPRESSURE = 16 * 1024 * 1024;

/** The largest message `GET /sdk` accepts. */
export function sdkMaxPayload(tcp: TcpConfig): number {
  return tcp.maxLineBytes + SDK_WS_PAYLOAD_SLACK;
}

/** This node's open SDK WebSockets; one per daemon, built by app.ts and passed in the HTTP context. */
export class SdkSockets {
  private readonly open = new Set<WsTransport>();

  add(t: WsTransport): void {
    this.open.add(t);
  }

  remove(t: WsTransport): void {
    this.open.delete(t);
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * Closes every socket (shutdown): the HTTP worker stops before `tcp/conns`, so each connection
   * actor hears its transport close and stops after the lines already in its mailbox.
   */
  closeAll(code: number, reason: string): void {
    for (const t of [...this.open]) t.endWith(code, reason);
    this.open.clear();
  }
}

export const sdkSocketRoutes: RouteModule = (app: TemplatedApp, ctx: HttpContext) => {
  const { metrics } = ctx;
  const sockets = ctx.sdkSockets;

  app.ws<SdkSocketData>('/sdk', {
    maxPayloadLength: sdkMaxPayload(ctx.config.tcp),
    maxBackpressure: SDK_WS_MAX_BACKPRESSURE,
    closeOnBackpressureLimit: 1,
    // The connection's idle timeout (tcp.idleTimeoutMs) applies, as on TCP; uWS's own would close
    // at its own granularity, and its pings would keep a silent device's socket open.
    idleTimeout: 0,
    sendPingsAutomatically: false,

    upgrade: (res, req, context) => {
      // No session and no Origin check: a game on any page connects, and `v:` checks its key.
      const offered = (req.getHeader('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim());
      const data: SdkSocketData = { host: Buffer.from(res.getRemoteAddressAsText()).toString(), transport: null, release: null, closed: false };
      res.upgrade(data, req.getHeader('sec-websocket-key'), offered.includes(SDK_WS_PROTOCOL) ? SDK_WS_PROTOCOL : '', req.getHeader('sec-websocket-extensions'), context);
      metrics.httpRequests.inc({ route: 'sdk_upgrade', status: '101' });
    },

    open: (ws) => {
      const data = ws.getUserData();
      const transport = new WsTransport(ws, data.host);
      data.transport = transport;
      sockets.add(transport);
      // A refusal writes its e: line and closes the socket from within this call.
      const release = ctx.startConnection(transport, data.host);
      if (data.closed) release?.();
      else data.release = release;
    },

    message: (ws, message, isBinary) => {
      ws.getUserData().transport?.message(message, isBinary);
    },

    close: (ws, code) => {
      const data = ws.getUserData();
      data.closed = true;
      if (data.transport) {
        data.transport.peerClosed(code);
        sockets.remove(data.transport);
      }
      data.release?.();
      data.release = null;
    },
  });
};
