/** Protocol lines as an SDK writes them (DESIGN.md §2), built once up front so generators only write bytes. */
import { connect, type Socket } from 'node:net';

export interface WireVar {
  name: string;
  type: string;
  value: string;
}

export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64');
}

export function varsLine(apiKey: string, vars: WireVar[]): string {
  return `i:${apiKey}:${b64json(vars)}\n`;
}

export function logsLine(apiKey: string, logs: Array<Record<string, unknown>>): string {
  return `l:${apiKey}:${b64json(logs)}\n`;
}

/** Connects (optionally from a given loopback source address) and verifies; resolves once `OK` arrives. */
export function openVerified(opts: { port: number; apiKey: string; deviceId?: string; localAddress?: string; timeoutMs?: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: opts.port, localAddress: opts.localAddress, noDelay: true });
    let buf = '';
    const timer = setTimeout(() => fail(new Error('no OK within the timeout')), opts.timeoutMs ?? 15_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl).trim();
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', fail);
      if (line !== 'OK') {
        s.destroy();
        reject(new Error(`verify answered ${JSON.stringify(line.slice(0, 120))}`));
        return;
      }
      resolve(s);
    };
    s.on('data', onData);
    s.once('error', fail);
    s.once('connect', () => s.write(opts.deviceId ? `v:${opts.apiKey}:${opts.deviceId}\n` : `v:${opts.apiKey}\n`));
  });
}

/** Writes `buf` and resolves once the socket accepted it (waits for drain when its buffer is full). */
export function writeAll(s: Socket, buf: Buffer | string): Promise<void> | null {
  if (s.write(buf)) return null;
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      s.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      s.off('drain', onDrain);
      reject(new Error('socket closed while writing'));
    };
    s.once('drain', onDrain);
    s.once('close', onClose);
  });
}
