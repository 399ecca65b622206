/**
 * A device on `GET /sdk` for tests, with the `ws` client: sends protocol lines as text messages and
 * awaits the lines the daemon answers, as LineClient does over TCP. Also keeps each message as it
 * came, to check that every reply is a message of its own.
 */
import WebSocket from 'ws';
import { eventually } from './eventually.js';

export class SdkWsClient {
  /** The daemon's lines, split out of its messages. */
  readonly lines: string[] = [];
  /** The daemon's text messages, whole. */
  readonly messages: string[] = [];
  closeCode: number | null = null;
  closeReason = '';
  /** How many lines `next` and `waitLines` have handed out. */
  private read = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = String(data);
      this.messages.push(isBinary ? `<binary ${text}>` : text);
      for (const line of text.split('\n')) if (line !== '') this.lines.push(line);
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
    });
    ws.on('error', () => undefined);
  }

  /** Opens ws://127.0.0.1:<httpPort>/sdk (from `localAddress`, any of 127.0.0.0/8, when given). */
  static async open(httpPort: number, opts: { protocols?: string[]; localAddress?: string } = {}): Promise<SdkWsClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/sdk`, opts.protocols, opts.localAddress ? { localAddress: opts.localAddress } : {});
    const client = new SdkWsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return client;
  }

  /** One text message, as is. */
  send(text: string): void {
    this.ws.send(text);
  }

  /** One line, as one message ending with its newline. */
  line(text: string): void {
    this.ws.send(`${text}\n`);
  }

  get closed(): boolean {
    return this.closeCode !== null;
  }

  /** Waits until `n` lines in all have arrived, then returns them (`next` goes on after them). */
  waitLines(n: number, timeoutMs = 3000): Promise<string[]> {
    return eventually(
      () => {
        if (this.lines.length >= n) {
          this.read = Math.max(this.read, n);
          return this.lines.slice(0, n);
        }
        throw new Error(`expected ${n} lines, got ${this.lines.length}${this.closed ? ` (closed ${this.closeCode})` : ''}: ${JSON.stringify(this.lines).slice(0, 1500)}`);
      },
      { timeoutMs, intervalMs: 5 },
    );
  }

  /** Waits for the line after those `next` and `waitLines` already handed out. */
  async next(timeoutMs = 3000): Promise<string> {
    const n = this.read + 1;
    return (await this.waitLines(n, timeoutMs))[n - 1] as string;
  }

  /** Waits for the close and returns its code. */
  waitClosed(timeoutMs = 3000): Promise<number> {
    return eventually(
      () => {
        if (this.closeCode === null) throw new Error('socket still open');
        return this.closeCode;
      },
      { timeoutMs, intervalMs: 5 },
    );
  }

  close(): void {
    this.ws.close();
  }
}
