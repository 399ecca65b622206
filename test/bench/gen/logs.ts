/**
 * Logs load generator: SDK connections sending `l:` lines of 10 logs each at a fixed total rate, plus
 * a probe log every `probeEveryMs` carrying a unique word. A poller searches the daemon's
 * `GET /api/logs` for the run's word and records when each probe first shows up: time until searchable.
 * With `probeEveryMs` 0 there are no probes and no searches (a run that measures indexing alone).
 */
import type { Socket } from 'node:net';
import { logsLine, openVerified } from '../lib/lines.js';
import { summarise, type LatencySummary } from '../lib/stats.js';
import { runWorker } from '../lib/worker.js';
import { prng } from '../../../src/cli/simulated-device.js';
import { LOGS_PER_LINE, logPools, message } from '../lib/log-text.js';

export interface LogsConfig {
  port: number;
  http: string;
  /** A token of the user owning the first connection's API key: the probes go on that key's connections. */
  token: string;
  conns: Array<{ apiKey: string; deviceId: string }>;
  logsPerSecond: number;
  durationMs: number;
  /** A letters-only word unique to the run; every probe carries it. */
  runWord: string;
  /** 0: no probes and no poller. */
  probeEveryMs: number;
  pollMs: number;
  /** Longest to wait for the last probes after sending stops. */
  drainMs: number;
}

export interface LogsResult {
  logs: number;
  probesSent: number;
  probesFound: number;
  latency: LatencySummary;
  /** performance.now() offsets from go, ms: when sending stopped, when the last probe was found. */
  sendMs: number;
  searchRequests: number;
  searchErrors: number;
}

/** Letters only, so the search engine sees one word. */
function letters(n: number, width = 6): string {
  let s = '';
  for (let i = 0; i < width; i++) {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26);
  }
  return s;
}

runWorker<LogsConfig, LogsResult>(async (cfg, ctl) => {
  const sockets: Socket[] = await Promise.all(cfg.conns.map((c) => openVerified({ port: cfg.port, apiKey: c.apiKey, deviceId: c.deviceId })));
  let errorLine: string | null = null;
  for (const s of sockets) {
    s.on('data', (d: Buffer) => (errorLine ??= d.toString('latin1').slice(0, 200)));
    s.on('error', () => undefined);
  }
  const rnd = prng(42);
  const pools = logPools(cfg.conns.length, rnd, Date.now()).map((pool, i) => pool.map((logs) => logsLine((cfg.conns[i] as { apiKey: string }).apiKey, logs)));
  // Probes are searched with one user's token, so they go only on the connections of its key.
  const probeConns = cfg.conns.flatMap((c, i) => (c.apiKey === cfg.conns[0]?.apiKey ? [i] : []));
  await ctl.ready();
  const t0 = performance.now();
  const linesPerMs = cfg.logsPerSecond / LOGS_PER_LINE / 1000;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let lines = 0;
  let probes = 0;
  let turn = 0;
  let searchRequests = 0;
  let searchErrors = 0;

  // The sender: every few ms, the lines due by now, spread over the connections.
  const sending = new Promise<number>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - t0;
      const end = elapsed >= cfg.durationMs;
      const due = Math.floor(Math.min(elapsed, cfg.durationMs) * linesPerMs) - lines;
      const batches: string[][] = sockets.map(() => []);
      for (let i = 0; i < due; i++) {
        const c = turn++ % sockets.length;
        const pool = pools[c] as string[];
        (batches[c] as string[]).push(pool[(lines + i) % pool.length] as string);
      }
      const probesDue = cfg.probeEveryMs > 0 ? Math.floor(Math.min(elapsed, cfg.durationMs) / cfg.probeEveryMs) - probes : 0;
      for (let p = 0; p < probesDue; p++) {
        const word = `probe${letters(probes++)}`;
        const c = probeConns[probes % probeConns.length] as number;
        const conn = cfg.conns[c] as { apiKey: string };
        const logs = [{ message: `${cfg.runWord} ${word}`, level: 'info', timestamp: Date.now() }, ...Array.from({ length: LOGS_PER_LINE - 1 }, () => ({ message: message(rnd), level: 'info' }))];
        (batches[c] as string[]).push(logsLine(conn.apiKey, logs));
        sentAt.set(word, performance.now());
        lines += 1;
      }
      batches.forEach((b, i) => b.length && (sockets[i] as Socket).write(b.join('')));
      lines += due;
      if (end) {
        clearInterval(timer);
        resolve(performance.now() - t0);
      }
    }, 5);
  });

  // The poller: one search for the run's word, newest first; each probe counts the first time it shows up.
  let stopPolling = cfg.probeEveryMs <= 0;
  const polling = (async () => {
    while (!stopPolling) {
      const started = performance.now();
      try {
        const res = await fetch(`${cfg.http}/api/logs?q=${cfg.runWord}&limit=100`, { headers: { authorization: `Bearer ${cfg.token}` } });
        searchRequests += 1;
        if (res.status !== 200) {
          searchErrors += 1;
        } else {
          const body = (await res.json()) as { hits: Array<{ message: string }> };
          const now = performance.now();
          for (const h of body.hits) {
            const word = h.message.split(' ')[1] ?? '';
            const at = sentAt.get(word);
            if (at !== undefined) {
              latencies.push(now - at);
              sentAt.delete(word);
            }
          }
        }
      } catch {
        searchErrors += 1;
      }
      const wait = cfg.pollMs - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();

  const sendMs = await sending;
  const drainUntil = performance.now() + cfg.drainMs;
  while (sentAt.size > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
  stopPolling = true;
  await polling;
  if (errorLine) throw new Error(`the daemon answered: ${errorLine}`);
  // A probe never found counts as the whole wait.
  for (const at of sentAt.values()) latencies.push(drainUntil - at);
  return { logs: lines * LOGS_PER_LINE, probesSent: probes, probesFound: probes - sentAt.size, latency: summarise(latencies), sendMs, searchRequests, searchErrors };
});
