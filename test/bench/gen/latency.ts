/**
 * Latency generator, one process holding both ends so one clock measures both: a device (TCP) and a
 * dashboard (WebSocket + REST). Mode `ingest`: the device sends changes at a fixed rate, each a
 * distinct variable whose value is its sequence number, and the time until the WebSocket `vars` event
 * carrying it is recorded. Mode `put`: `PUT /api/vars/:name` at a fixed rate, and the time until the
 * device's `v:` line carrying it. Mode `echo`: the device sends `v:` lines (the daemon answers `OK`
 * without touching a backend), the floor the other two paths start from.
 */
import type { Socket } from 'node:net';
import { openVerified, varsLine } from '../lib/lines.js';
import { RawHttp } from '../lib/raw-http.js';
import { RawWs } from '../lib/raw-ws.js';
import { summarise, type LatencySummary } from '../lib/stats.js';
import { runWorker } from '../lib/worker.js';

export interface LatencyConfig {
  tcpPort: number;
  httpPort: number;
  apiKey: string;
  token: string;
  mode: 'ingest' | 'put' | 'echo';
  rate: number;
  durationMs: number;
  /** Distinct variable names cycled through, so a change is never coalesced away by a later one. */
  names: number;
  /** Samples before this (ms from go) are warm-up and not counted. */
  warmupMs: number;
}

export interface LatencyResult {
  sent: number;
  received: number;
  /** Changes not sent because a second's worth of requests already waited for a connection. */
  skipped: number;
  /** Changes that never arrived count in the percentiles with the time they had waited at the end. */
  latency: LatencySummary;
  statuses: Record<string, number>;
  firstError: string | null;
}

const VARS = Buffer.from('{"type":"vars"');

runWorker<LatencyConfig, LatencyResult>(async (cfg, ctl) => {
  const sentAt = new Map<number, number>();
  const samples: number[] = [];
  let received = 0;
  let firstError: string | null = null;
  const record = (seq: number): void => {
    const at = sentAt.get(seq);
    if (at === undefined) return;
    sentAt.delete(seq);
    received += 1;
    if (at >= warmupEnd) samples.push(performance.now() - at);
  };
  let warmupEnd = Infinity;
  const device: Socket = await openVerified({ port: cfg.tcpPort, apiKey: cfg.apiKey, deviceId: 'latency-device' });
  let pending = '';
  // Echo mode: OKs come back in order, one per `v:` line sent.
  let echoNext = 0;
  device.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith('v:')) {
        const vars = JSON.parse(Buffer.from(line.slice(line.indexOf(':', 2) + 1), 'base64').toString('utf8')) as Array<{ name: string; value: string }>;
        for (const v of vars) if (v.name.startsWith('lat')) record(Number(v.value));
      } else if (line === 'OK' && cfg.mode === 'echo') record(echoNext++);
      else if (line.startsWith('e:')) firstError ??= line.slice(0, 200);
    }
  });
  device.on('error', () => undefined);
  let wsReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (wsReady = r));
  const ws = await RawWs.open({
    port: cfg.httpPort,
    path: `/ws?token=${cfg.token}`,
    onFrame: (p) => {
      if (p.subarray(0, VARS.length).equals(VARS)) {
        if (cfg.mode !== 'ingest') return;
        const ev = JSON.parse(p.toString('utf8')) as { vars: Array<{ name: string; value: string }> };
        for (const v of ev.vars) if (v.name.startsWith('lat')) record(Number(v.value));
      } else if (p.includes('"type":"ready"')) wsReady();
    },
  });
  await ready;
  const http = await RawHttp.open(cfg.httpPort, 64, { authorization: `Bearer ${cfg.token}`, 'content-type': 'application/json' });
  // Lines prebuilt: JSON and base64 work stays out of the measured path.
  const lines: string[] = [];
  if (cfg.mode === 'ingest') for (let i = 0; i < 200_000 && i < (cfg.rate * cfg.durationMs) / 1000 + 1000; i++) lines.push(varsLine(cfg.apiKey, [{ name: `lat${i % cfg.names}`, type: 'integer', value: String(i) }]));
  await ctl.ready();
  const t0 = performance.now();
  warmupEnd = t0 + cfg.warmupMs;
  let seq = 0;
  let skipped = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const elapsed = now - t0;
      const due = Math.floor((Math.min(elapsed, cfg.durationMs) * cfg.rate) / 1000) - seq;
      if (cfg.mode === 'echo') {
        let text = '';
        for (let i = 0; i < due; i++) {
          sentAt.set(seq++, now);
          text += `v:${cfg.apiKey}:latency-device\n`;
        }
        if (text) device.write(text);
      } else if (cfg.mode === 'ingest') {
        let text = '';
        for (let i = 0; i < due; i++) {
          const s = seq++;
          text += lines[s % lines.length];
          sentAt.set(s, now);
        }
        if (text) device.write(text);
      } else {
        for (let i = 0; i < due; i++) {
          const s = seq++;
          // Past a second of backlog the server is not keeping up; queueing more only measures the queue.
          if (http.queued > cfg.rate) {
            skipped += 1;
            continue;
          }
          sentAt.set(s, now);
          http.request('PUT', `/api/vars/lat${s % cfg.names}`, `{"value":${s},"type":"integer"}`);
        }
      }
      if (elapsed >= cfg.durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  // What is still in flight gets two seconds.
  const until = performance.now() + 2000;
  while (sentAt.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  const end = performance.now();
  for (const at of sentAt.values()) if (at >= warmupEnd) samples.push(end - at);
  const statuses: Record<string, number> = {};
  for (const [k, v] of http.statuses) statuses[String(k)] = v;
  if (http.firstErrorBody) firstError ??= http.firstErrorBody;
  http.close();
  ws.close();
  device.destroy();
  return { sent: seq - skipped, received, skipped, latency: summarise(samples), statuses, firstError };
});
