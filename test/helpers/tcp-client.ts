/** A raw TCP client for protocol tests: send lines or bytes, await the lines the daemon answers. */
import { connect, type Socket } from 'node:net';

export class LineClient {
  readonly lines: string[] = [];
  /** How many lines the test has taken (through `next` or `waitLines`): `next` returns the one after. */
  private taken = 0;
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  private closeWaiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const w of [...this.waiters.splice(0), ...this.closeWaiters.splice(0)]) w();
    });
  }

  /** `localAddress` picks the source address (any of 127.0.0.0/8 on loopback), as another machine would. */
  static open(port: number, host = '127.0.0.1', localAddress?: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => resolve(new LineClient(s)));
      s.once('error', reject);
    });
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  line(text: string): void {
    this.socket.write(`${text}\n`);
  }

  /** Waits until `n` lines in all have arrived (or the socket closed), then returns them. */
  async waitLines(n: number, timeoutMs = 3000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} lines, got ${this.lines.length}: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    if (this.lines.length < n) throw new Error(`socket closed after ${this.lines.length} of ${n} lines: ${JSON.stringify(this.lines)}`);
    this.taken = Math.max(this.taken, n);
    return this.lines.slice(0, n);
  }

  /**
   * Waits for the line after those already taken, not after those already arrived: two lines that
   * arrive in one read are returned by two calls, in order.
   */
  async next(timeoutMs = 3000): Promise<string> {
    const n = this.taken + 1;
    const lines = await this.waitLines(n, timeoutMs);
    return lines[n - 1] as string;
  }

  waitClosed(timeoutMs = 3000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

export const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64');
