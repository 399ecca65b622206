/**
 * Connections under fire: each verifies, then keeps sending a line that crashes its connection actor
 * (the daemon's fault-injection prefix) followed by an ordinary `i:` line, every `everyMs`. Past its
 * restart budget the daemon closes the socket; the connection then reconnects after `reconnectMs`
 * and carries on, until the orchestrator says stop.
 */
import type { Socket } from 'node:net';
import { openVerified, varsLine } from '../lib/lines.js';
import { runWorker } from '../lib/worker.js';

export interface CrasherConfig {
  port: number;
  conns: Array<{ apiKey: string; deviceId: string }>;
  crashLine: string;
  everyMs: number;
  /** Wait before reconnecting after the daemon closed the socket (the SDK waits at least 1 s). */
  reconnectMs: number;
}

export interface CrasherResult {
  crashLinesSent: number;
  closedByServer: number;
  reconnects: number;
  connectFailures: number;
}

runWorker<CrasherConfig, CrasherResult>(async (cfg, ctl) => {
  let crashLinesSent = 0;
  let closedByServer = 0;
  let reconnects = 0;
  let connectFailures = 0;
  const open = new Set<Socket>();
  await ctl.ready();
  const loop = async (c: { apiKey: string; deviceId: string }, i: number): Promise<void> => {
    const normal = varsLine(c.apiKey, [{ name: `crasher${i}`, type: 'integer', value: String(i) }]);
    let first = true;
    while (!ctl.isStopped) {
      let s: Socket;
      try {
        s = await openVerified({ port: cfg.port, apiKey: c.apiKey, deviceId: c.deviceId, timeoutMs: 10_000 });
      } catch {
        connectFailures += 1;
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (!first) reconnects += 1;
      first = false;
      open.add(s);
      s.on('error', () => undefined);
      s.on('data', () => undefined);
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (ctl.isStopped) {
            clearInterval(timer);
            s.destroy();
            return;
          }
          s.write(`${cfg.crashLine}\n${normal}`);
          crashLinesSent += 1;
        }, cfg.everyMs);
        s.once('close', () => {
          clearInterval(timer);
          open.delete(s);
          if (!ctl.isStopped) closedByServer += 1;
          resolve();
        });
      });
      await new Promise((r) => setTimeout(r, cfg.reconnectMs));
    }
  };
  const all = Promise.all(cfg.conns.map((c, i) => loop(c, i)));
  await ctl.stopped;
  for (const s of open) s.destroy();
  await all;
  return { crashLinesSent, closedByServer, reconnects, connectFailures };
});
