/**
 * Bulk change generator (issue 14): one process holds a device (TCP) and the dashboard end, so one
 * clock measures both. Changes are offered at a fixed rate (open loop) through `PUT /api/vars/:name`
 * (mode `put`, over many keep-alive connections) or the WebSocket's `set_var` (mode `ws`, over several
 * sockets, each with at most the daemon's 64 frames waiting), each to one of `names` variables with
 * its sequence number as value. A change has reached the device when its `v:` line carries that
 * value or a later one of the same variable (§8: pending collapses per variable, so a change
 * overtaken on its way arrives as the later value).
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { openVerified } from '../lib/lines.js';
import { RawHttp } from '../lib/raw-http.js';
import { summarise, type LatencySummary } from '../lib/stats.js';
import { runWorker } from '../lib/worker.js';

export interface BulkConfig {
  tcpPort: number;
  httpPort: number;
  apiKey: string;
  token: string;
  mode: 'put' | 'ws';
  rate: number;
  durationMs: number;
  names: number;
  /** HTTP connections (put) or WebSocket sockets (ws). */
  connections: number;
  warmupMs: number;
}

export interface BulkResult {
  offered: number;
  sent: number;
  /** Not sent: every connection already had a second's worth (put) or 64 frames (ws) waiting. */
  skipped: number;
  reached: number;
  answered: number;
  errors: number;
  firstError: string | null;
  /** Changes that reached the device per second, from the first sent to the last reached. */
  reachedPerSecond: number;
  /** Send to reached, counted after warm-up; never reached: the time waited at the end. */
  latency: LatencySummary;
}

/** set_var frames the daemon lets one socket have waiting (src/http/ws.ts MAX_PENDING_FRAMES). */
const WS_MAX_PENDING = 64;

/** How the daemon's answers to set_var begin (src/http/ws.ts sendJson of SetVarAnswer or an error frame). */
const ANSWER_PREFIXES = ['{"type":"var_delivery"', '{"type":"error"'].map((p) => Buffer.from(p));

runWorker<BulkConfig, BulkResult>(async (cfg, ctl) => {
  // Per variable, the changes not yet seen on the device, oldest first: [seq, sent at].
  const outstanding: Array<Array<[number, number]>> = Array.from({ length: cfg.names }, () => []);
  let open = 0;
  const samples: number[] = [];
  let reached = 0;
  let lastReached = 0;
  let warmupEnd = Infinity;
  let firstError: string | null = null;
  const seen = (nameIdx: number, seq: number, now: number): void => {
    const list = outstanding[nameIdx];
    if (!list) return;
    let n = 0;
    while (n < list.length && (list[n] as [number, number])[0] <= seq) {
      const at = (list[n] as [number, number])[1];
      if (at >= warmupEnd) samples.push(now - at);
      n += 1;
    }
    if (n === 0) return;
    list.splice(0, n);
    open -= n;
    reached += n;
    lastReached = now;
  };

  const device: Socket = await openVerified({ port: cfg.tcpPort, apiKey: cfg.apiKey, deviceId: 'bulk-device' });
  let buf = '';
  device.on('data', (d: Buffer) => {
    const now = performance.now();
    buf += d.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('v:')) {
        const vars = JSON.parse(Buffer.from(line.slice(line.indexOf(':', 2) + 1), 'base64').toString('utf8')) as Array<{ name: string; value: string }>;
        for (const v of vars) if (v.name.startsWith('bulk')) seen(Number(v.name.slice(4)), Number(v.value), now);
      } else if (line.startsWith('e:')) firstError ??= line.slice(0, 200);
    }
  });
  device.on('error', () => undefined);

  let answered = 0;
  let errors = 0;
  let send: (seq: number) => boolean;
  let close: () => void;
  if (cfg.mode === 'put') {
    const http = await RawHttp.open(cfg.httpPort, cfg.connections, { authorization: `Bearer ${cfg.token}`, 'content-type': 'application/json' });
    send = (seq) => {
      if (http.queued > cfg.rate) return false;
      http.request('PUT', `/api/vars/bulk${seq % cfg.names}`, `{"value":${seq},"type":"integer"}`);
      return true;
    };
    close = () => {
      answered = http.responses;
      for (const [status, n] of http.statuses) if (status >= 300) errors += n;
      if (http.firstErrorBody) firstError ??= http.firstErrorBody;
      http.close();
    };
  } else {
    const sockets = await Promise.all(
      Array.from(
        { length: cfg.connections },
        () =>
          new Promise<{ ws: WebSocket; pending: number }>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${cfg.httpPort}/ws?token=${cfg.token}`, { perMessageDeflate: false });
            const s = { ws, pending: 0 };
            ws.on('message', (data: Buffer) => {
              // Only answers to our frames: var_delivery or error with an id. Each socket is also a
              // dashboard of the key and gets its events, a frame each (history entries with ids
              // among them): told apart by their first bytes, not parsed, so the generator's CPU goes
              // to sending and counting rather than to decoding events it does not count.
              if (!ANSWER_PREFIXES.some((p) => data.subarray(0, p.length).equals(p)) || !data.includes('"id":')) return;
              const m = JSON.parse(data.toString('utf8')) as { type: string; id?: number; message?: string };
              if (m.id === undefined) return;
              s.pending -= 1;
              answered += 1;
              if (m.type === 'error') {
                errors += 1;
                firstError ??= `ws error ${m.message ?? ''}`.slice(0, 200);
              }
            });
            ws.once('open', () => resolve(s));
            ws.once('error', reject);
          }),
      ),
    );
    let next = 0;
    send = (seq) => {
      for (let i = 0; i < sockets.length; i++) {
        const s = sockets[(next + i) % sockets.length] as { ws: WebSocket; pending: number };
        if (s.pending >= WS_MAX_PENDING) continue;
        next = (next + i + 1) % sockets.length;
        s.pending += 1;
        s.ws.send(`{"type":"set_var","name":"bulk${seq % cfg.names}","value":${seq},"varType":"integer","id":${seq}}`);
        return true;
      }
      return false;
    };
    close = () => {
      for (const s of sockets) s.ws.terminate();
    };
  }

  await ctl.ready();
  const t0 = performance.now();
  warmupEnd = t0 + cfg.warmupMs;
  let seq = 0;
  let sent = 0;
  let skipped = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const elapsed = now - t0;
      const due = Math.floor((Math.min(elapsed, cfg.durationMs) * cfg.rate) / 1000) - seq;
      for (let i = 0; i < due; i++) {
        const s = seq++;
        if (!send(s)) {
          skipped += 1;
          continue;
        }
        sent += 1;
        outstanding[s % cfg.names]?.push([s, now]);
        open += 1;
      }
      if (elapsed >= cfg.durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  // What is still on its way gets five seconds.
  const until = performance.now() + 5000;
  while (open > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  const end = performance.now();
  for (const list of outstanding) for (const [, at] of list) if (at >= warmupEnd) samples.push(end - at);
  close();
  device.destroy();
  const span = (lastReached - t0) / 1000;
  return { offered: seq, sent, skipped, reached, answered, errors, firstError, reachedPerSecond: span > 0 ? reached / span : 0, latency: summarise(samples) };
});
