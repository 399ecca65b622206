/**
 * A minimal HTTP/1.1 client for open-loop load: requests go out on a pool of keep-alive connections
 * at the pace the generator sets, one request at a time per connection (uWS does not answer requests
 * pipelined behind an asynchronous one); with every connection busy, requests queue here, and that
 * wait counts in the measured latency. Responses are only framed and counted by status.
 * (fetch would cost more CPU per request than the server under test.)
 */
import { connect, type Socket } from 'node:net';

class Conn {
  private buf: Buffer = Buffer.alloc(0);
  inFlight = 0;

  constructor(
    readonly socket: Socket,
    private readonly onResponse: (status: number, body: string) => void,
  ) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.toString('latin1', 0, end);
      const status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!m) throw new Error(`response without Content-Length: ${head.slice(0, 200)}`);
      const len = Number(m[1]);
      if (this.buf.length < end + 4 + len) return;
      const body = this.buf.toString('utf8', end + 4, end + 4 + len);
      this.buf = this.buf.subarray(end + 4 + len);
      this.inFlight -= 1;
      this.onResponse(status, body);
    }
  }
}

export class RawHttp {
  private conns: Conn[] = [];
  private idle: Conn[] = [];
  private queue: string[] = [];
  private queueHead = 0;
  readonly statuses = new Map<number, number>();
  responses = 0;
  firstErrorBody: string | null = null;

  private constructor(
    private readonly port: number,
    private readonly headers: string,
  ) {}

  static async open(port: number, conns: number, headers: Record<string, string>): Promise<RawHttp> {
    const h = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const c = new RawHttp(port, h);
    await Promise.all(
      Array.from(
        { length: conns },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve());
            s.once('error', reject);
            const conn: Conn = new Conn(s, (status, body) => {
              c.responses += 1;
              c.statuses.set(status, (c.statuses.get(status) ?? 0) + 1);
              if (status >= 300 && c.firstErrorBody === null) c.firstErrorBody = `${status} ${body.slice(0, 200)}`;
              c.onIdle(conn);
            });
            c.conns.push(conn);
            c.idle.push(conn);
          }),
      ),
    );
    return c;
  }

  /** Sends one request on an idle connection, or queues it until one is free; the response is only counted. */
  request(method: string, path: string, body: string): void {
    const text = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n${this.headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const conn = this.idle.pop();
    if (conn) this.send(conn, text);
    else this.queue.push(text);
  }

  private send(conn: Conn, text: string): void {
    conn.inFlight += 1;
    conn.socket.write(text);
  }

  private onIdle(conn: Conn): void {
    if (this.queueHead < this.queue.length) {
      const next = this.queue[this.queueHead++] as string;
      if (this.queueHead === this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
      }
      this.send(conn, next);
    } else this.idle.push(conn);
  }

  /** Requests waiting for a free connection. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  get inFlight(): number {
    return this.conns.reduce((a, c) => a + c.inFlight, 0);
  }

  close(): void {
    for (const c of this.conns) c.socket.destroy();
  }
}
