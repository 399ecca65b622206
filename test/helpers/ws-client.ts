/** A dashboard-like WebSocket client for /ws tests: collects JSON frames and waits for matching ones. */
import WebSocket from 'ws';
import { eventually } from './eventually.js';

export type Frame = Record<string, unknown> & { type?: string };

export class WsClient {
  readonly frames: Frame[] = [];
  closeCode: number | null = null;
  closeReason = '';

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.frames.push(JSON.parse(String(data)) as Frame);
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
    });
    ws.on('error', () => undefined);
  }

  /** Opens /ws and waits for the server's `ready` frame (the key's events flow from then on). */
  static async open(httpPort: number, token: string, opts: { protocols?: string[]; query?: boolean } = {}): Promise<WsClient> {
    const url = opts.query === false ? `ws://127.0.0.1:${httpPort}/ws` : `ws://127.0.0.1:${httpPort}/ws?token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url, opts.protocols);
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    await client.waitFor((f) => f.type === 'ready');
    return client;
  }

  /** The status an upgrade attempt is refused with (throws if it is accepted). */
  static refusal(url: string, protocols?: string[]): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols);
      ws.once('open', () => {
        ws.close();
        reject(new Error('upgrade unexpectedly accepted'));
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.once('error', () => undefined);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits for a frame matching `pred` (already received or to come) and returns it. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    return eventually(
      () => {
        const f = this.frames.find(pred);
        if (!f) throw new Error(`no matching frame among ${JSON.stringify(this.frames).slice(0, 1500)}`);
        return f;
      },
      { timeoutMs, intervalMs: 5 },
    );
  }

  ofType(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  waitClosed(timeoutMs = 5000): Promise<number> {
    return eventually(
      () => {
        if (this.closeCode === null) throw new Error('socket still open');
        return this.closeCode;
      },
      { timeoutMs },
    );
  }

  close(): void {
    this.ws.close();
  }
}
