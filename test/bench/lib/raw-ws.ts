/**
 * A minimal WebSocket client for load generation: the HTTP upgrade by hand, then server frames parsed
 * straight from the socket's buffers (server frames are never masked). Far cheaper per frame than a
 * full client library, so a thousand of them in one process do not become the bottleneck. Answers
 * pings; never sends data frames.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RawWsHandlers {
  /** Called with each complete text or binary frame's payload (a view valid during the call only). */
  onFrame?(payload: Buffer): void;
  onClose?(code: number | null): void;
}

export class RawWs {
  frames = 0;
  closed = false;
  closeCode: number | null = null;
  private pending: Buffer | null = null;

  private constructor(
    readonly socket: Socket,
    private readonly handlers: RawWsHandlers,
  ) {}

  static open(opts: { port: number; path: string; localAddress?: string; timeoutMs?: number } & RawWsHandlers): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: opts.port, localAddress: opts.localAddress, noDelay: true });
      const key = randomBytes(16).toString('base64');
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new Error('WebSocket upgrade timed out')), opts.timeoutMs ?? 15_000);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        s.destroy();
        reject(err);
      };
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        s.off('data', onData);
        s.off('error', fail);
        const status = head.toString('latin1', 0, head.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 101/.test(status)) return fail(new Error(`upgrade refused: ${status}`));
        const ws = new RawWs(s, opts);
        s.on('data', (chunk: Buffer) => ws.onData(chunk));
        s.on('error', () => undefined);
        s.on('close', () => {
          if (!ws.closed) {
            ws.closed = true;
            opts.onClose?.(ws.closeCode);
          }
        });
        const rest = head.subarray(end + 4);
        if (rest.length) ws.onData(rest);
        resolve(ws);
      };
      s.on('data', onData);
      s.once('error', fail);
      s.once('connect', () =>
        s.write(`GET ${opts.path} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
      );
    });
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let at = 0;
    for (;;) {
      if (buf.length - at < 2) break;
      const b0 = buf[at] as number;
      let len = (buf[at + 1] as number) & 0x7f;
      let off = at + 2;
      if (len === 126) {
        if (buf.length - at < 4) break;
        len = buf.readUInt16BE(at + 2);
        off = at + 4;
      } else if (len === 127) {
        if (buf.length - at < 10) break;
        len = Number(buf.readBigUInt64BE(at + 2));
        off = at + 10;
      }
      if (buf.length - off < len) break;
      const opcode = b0 & 0x0f;
      const payload = buf.subarray(off, off + len);
      at = off + len;
      if (opcode === 0x1 || opcode === 0x2) {
        this.frames += 1;
        this.handlers.onFrame?.(payload);
      } else if (opcode === 0x9) {
        this.sendControl(0xa, payload);
      } else if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        this.close();
      }
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }

  /** A masked control frame (clients must mask). */
  private sendControl(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const frame = Buffer.alloc(6 + payload.length);
    frame[0] = 0x80 | opcode;
    frame[1] = 0x80 | payload.length;
    mask.copy(frame, 2);
    for (let i = 0; i < payload.length; i++) frame[6 + i] = (payload[i] as number) ^ (mask[i & 3] as number);
    this.socket.write(frame);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }
}
