/**
 * A small real TCP server that speaks the SDK protocol for the SDK's integration tests: it frames and
 * parses lines with the daemon's own LineFramer and parseLine, answers v: like the daemon (OK for a
 * known key, e:<code> otherwise), records every line, buffers pushed variables for a key with no
 * socket and flushes them right after OK, and can drop sockets or stop listening to test reconnection.
 * With `labels: false` it is a daemon from before the devices extension (docs/PROTOCOL.md §13): it
 * answers `d:` with e:unknown_command, as this daemon's parser did, so the SDK's tolerance stays tested.
 *
 * The tests only use the members of {@link SdkTestServer}, so the same suites can later run against
 * the real daemon behind an adapter with the same shape.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { LineFramer } from '../../src/tcp/line-framer.js';
import { OK_REPLY, errorReply, packVars, parseLine, type Command, type ProtocolError } from '../../src/tcp/protocol.js';
import type { Var } from '../../src/model.js';
import { freePort } from '../helpers/free-port.js';

export interface ReceivedLine {
  /** Connection number, from 1 in accept order. */
  conn: number;
  line: string;
  parsed: Command | ProtocolError;
}

/** What the SDK suites need from a daemon, real or fake. */
export interface SdkTestServer {
  readonly host: string;
  readonly port: number;
  /** Every line received, in order. */
  readonly received: ReceivedLine[];
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Sends a variable change to the key's verified sockets, or buffers it (latest per name) until one verifies. */
  push(apiKey: string, vars: Var[]): void;
  /** Destroys every open connection. */
  dropAll(): Promise<void>;
  /** Stops accepting connections (the port refuses) until resume(). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestDaemonOptions {
  /** Registered API keys. */
  keys: string[];
  /** Overrides the reply to a valid v: line: a line to send (without newline), or null to stay silent as the original daemon did for unknown keys. */
  verifyReply?: (apiKey: string, deviceId: string | null) => string | null;
  /** False: no devices extension; a `d:` line is an unknown command, as before §13. Default true (the parser's own answer). */
  labels?: boolean;
}

/** This daemon's parser before the devices extension: `d:` was an unknown command like any other. */
function parseWithoutLabels(line: string): Command | ProtocolError {
  if (!line.startsWith('d:')) return parseLine(line);
  return { kind: 'error', code: 'unknown_command', message: `unknown command ${JSON.stringify(line.slice(0, 16))}; expected v:, l: or i:` };
}

interface Conn {
  id: number;
  socket: Socket;
  apiKey: string | null;
}

export class TestDaemon implements SdkTestServer {
  readonly host = '127.0.0.1';
  readonly received: ReceivedLine[] = [];
  accepted = 0;
  readonly keys: Set<string>;
  verifyReply: TestDaemonOptions['verifyReply'];
  private readonly parse: (line: string) => Command | ProtocolError;
  private readonly conns = new Set<Conn>();
  private readonly outbox = new Map<string, Map<string, Var>>();
  private server: Server | null = null;

  private constructor(
    readonly port: number,
    opts: TestDaemonOptions,
  ) {
    this.keys = new Set(opts.keys);
    this.verifyReply = opts.verifyReply;
    this.parse = opts.labels === false ? parseWithoutLabels : parseLine;
  }

  static async start(opts: TestDaemonOptions): Promise<TestDaemon> {
    const d = new TestDaemon(await freePort(), opts);
    await d.resume();
    return d;
  }

  /** Received lines whose parse result has this kind ('verify', 'logs', 'vars' or 'error'). */
  of<K extends (Command | ProtocolError)['kind']>(kind: K): Array<Extract<Command | ProtocolError, { kind: K }> & { conn: number; line: string }> {
    return this.received
      .filter((r) => r.parsed.kind === kind)
      .map((r) => ({ ...(r.parsed as Extract<Command | ProtocolError, { kind: K }>), conn: r.conn, line: r.line }));
  }

  /** Open connections. */
  get open(): number {
    return this.conns.size;
  }

  push(apiKey: string, vars: Var[]): void {
    const targets = [...this.conns].filter((c) => c.apiKey === apiKey);
    if (targets.length > 0) {
      for (const c of targets) c.socket.write(packVars(apiKey, vars));
      return;
    }
    let box = this.outbox.get(apiKey);
    if (!box) this.outbox.set(apiKey, (box = new Map()));
    for (const v of vars) box.set(v.name, v);
  }

  /** Writes raw text to every open connection. */
  sendRaw(text: string): void {
    for (const c of this.conns) c.socket.write(text);
  }

  async dropAll(): Promise<void> {
    const closed = [...this.conns].map((c) => new Promise<void>((r) => (c.socket.destroyed ? r() : c.socket.once('close', () => r()))));
    for (const c of this.conns) c.socket.destroy();
    await Promise.all(closed);
  }

  async pause(): Promise<void> {
    const srv = this.server;
    this.server = null;
    if (!srv) return;
    // close()'s callback waits for every open connection to end; the port stops accepting at once,
    // and one turn of the event loop lets the listening handle go so resume() can bind it again.
    srv.close();
    await new Promise((r) => setImmediate(r));
  }

  async resume(): Promise<void> {
    if (this.server) return;
    const srv = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.port, this.host, () => resolve());
    });
    this.server = srv;
  }

  async stop(): Promise<void> {
    const paused = this.pause();
    await this.dropAll();
    await paused;
  }

  private accept(socket: Socket): void {
    const conn: Conn = { id: ++this.accepted, socket, apiKey: null };
    this.conns.add(conn);
    const framer = new LineFramer(1024 * 1024);
    socket.on('error', () => undefined);
    socket.on('close', () => this.conns.delete(conn));
    socket.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.kind === 'line') this.onLine(conn, ev.line);
        else if (ev.kind === 'too_long') socket.write(errorReply({ code: 'line_too_long', message: 'line exceeds the maximum length' }));
        else socket.destroy();
      }
    });
  }

  private onLine(conn: Conn, line: string): void {
    const parsed = this.parse(line);
    this.received.push({ conn: conn.id, line, parsed });
    const { socket } = conn;
    if (parsed.kind === 'error') {
      socket.write(errorReply(parsed));
      return;
    }
    if (parsed.kind === 'verify') {
      if (this.verifyReply) {
        const reply = this.verifyReply(parsed.apiKey, parsed.deviceId);
        if (reply === null) return;
        if (reply !== 'OK') {
          socket.write(`${reply}\n`);
          return;
        }
      } else if (!this.keys.has(parsed.apiKey)) {
        socket.write(errorReply({ code: 'unknown_api_key', message: `API key ${parsed.apiKey} is not registered` }));
        return;
      }
      conn.apiKey = parsed.apiKey;
      socket.write(OK_REPLY);
      const box = this.outbox.get(parsed.apiKey);
      if (box) {
        this.outbox.delete(parsed.apiKey);
        socket.write(packVars(parsed.apiKey, [...box.values()]));
      }
      return;
    }
    if (conn.apiKey === null) socket.write(errorReply({ code: 'not_verified', message: 'send v:<apiKey> before l: or i:' }));
    else if (conn.apiKey !== parsed.apiKey) socket.write(errorReply({ code: 'key_mismatch', message: 'API key differs from the one this connection verified' }));
  }
}
