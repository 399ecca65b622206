/**
 * Ingest load generator: SDK connections that each stream `i:` lines as fast as the server takes
 * them for a fixed time, then one final line whose value the orchestrator waits to see in Redis.
 * Lines are built up front (a block of distinct lines per connection, written whole), so the
 * generator costs little CPU per line.
 */
import type { Socket } from 'node:net';
import { openVerified, varsLine, writeAll } from '../lib/lines.js';
import { summarise, type LatencySummary } from '../lib/stats.js';
import { runWorker } from '../lib/worker.js';

export interface IngestConn {
  apiKey: string;
  deviceId: string;
  /** Variable names of this connection start with this. */
  prefix: string;
  localAddress?: string;
}

export interface IngestConfig {
  port: number;
  conns: IngestConn[];
  durationMs: number;
  /** Written as the value of `<prefix>last` in each connection's final line. */
  sentinel: string;
  /** Distinct variable names per connection. */
  names: number;
  /** Lines per prebuilt block (each block ends with a `v:` line as an acknowledgement marker). */
  blockLines: number;
  /** Blocks a connection may have unanswered (flood mode). */
  window: number;
  /** Paced mode: each connection writes one block every `intervalMs` (open loop) instead of flooding. */
  intervalMs?: number;
}

export interface IngestResult {
  lines: number;
  errors: number;
  firstError: string | null;
  /** Block round trips (write → the marker's OK), ms: paced mode only. */
  rtt: LatencySummary | null;
}

runWorker<IngestConfig, IngestResult>(async (cfg, ctl) => {
  const sockets: Socket[] = await Promise.all(cfg.conns.map((c) => openVerified({ port: cfg.port, apiKey: c.apiKey, deviceId: c.deviceId, localAddress: c.localAddress })));
  let errors = 0;
  let firstError: string | null = null;
  const acked = sockets.map(() => 0);
  const wakers: Array<(() => void) | null> = sockets.map(() => null);
  const sentAt: number[][] = sockets.map(() => []);
  const rtts: number[] = [];
  sockets.forEach((s, i) => {
    s.on('data', (d: Buffer) => {
      // Each block ends with a `v:` line, answered `OK` once the server has read every line before it.
      const text = d.toString('latin1');
      const now = performance.now();
      for (const line of text.split('\n')) {
        if (line === 'OK') {
          const k = acked[i] as number;
          const t = sentAt[i]?.[k];
          if (t !== undefined) rtts.push(now - t);
          acked[i] = k + 1;
        } else if (line.startsWith('e:')) {
          errors += 1;
          firstError ??= line.slice(0, 200);
        }
      }
      wakers[i]?.();
    });
    s.on('error', () => undefined);
    s.on('close', () => wakers[i]?.());
  });
  const blocks = cfg.conns.map((c, ci) => {
    const parts: string[] = [];
    for (let i = 0; i < cfg.blockLines; i++) parts.push(varsLine(c.apiKey, [{ name: `${c.prefix}v${i % cfg.names}`, type: 'integer', value: String(ci * 1_000_003 + i) }]));
    parts.push(`v:${c.apiKey}:${c.deviceId}\n`);
    return Buffer.from(parts.join(''));
  });
  await ctl.ready();
  const deadline = performance.now() + cfg.durationMs;
  let lines = 0;
  await Promise.all(
    sockets.map(async (s, i) => {
      const block = blocks[i] as Buffer;
      const c = cfg.conns[i] as IngestConn;
      let sent = 0;
      const waitAcks = async (upTo: number): Promise<void> => {
        while ((acked[i] as number) < upTo && !s.destroyed) await new Promise<void>((r) => (wakers[i] = r));
        wakers[i] = null;
      };
      if (cfg.intervalMs) {
        const times = sentAt[i] as number[];
        // Spread the connections' timers over the interval.
        await new Promise((r) => setTimeout(r, (i * cfg.intervalMs!) / sockets.length));
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (performance.now() >= deadline || s.destroyed) {
              clearInterval(timer);
              resolve();
              return;
            }
            times.push(performance.now());
            s.write(block);
            sent += 1;
            lines += cfg.blockLines;
          }, cfg.intervalMs);
        });
      } else {
        while (performance.now() < deadline && !s.destroyed) {
          // At most `window` blocks unanswered: the kernel's socket buffers would otherwise hold
          // hundreds of MB and the run would measure how long they take to drain.
          await waitAcks(sent - cfg.window + 1);
          const wait = writeAll(s, block);
          sent += 1;
          lines += cfg.blockLines;
          if (wait) await wait;
        }
      }
      s.write(varsLine(c.apiKey, [{ name: `${c.prefix}last`, type: 'string', value: cfg.sentinel }]) + `v:${c.apiKey}:${c.deviceId}\n`);
      sent += 1;
      lines += 1;
      await waitAcks(sent);
      if (s.destroyed) throw new Error(`connection ${c.deviceId} closed by the server`);
    }),
  );
  // The sockets stay open until the orchestrator disconnects.
  return { lines, errors, firstError, rtt: cfg.intervalMs ? summarise(rtts) : null };
});
