/**
 * Devices spread over several daemon nodes (scale scenario): `devices` SDK connections of one key,
 * device n on node n % nodes, each verifying, declaring two labels (`d:`) and reporting `vars`
 * variables (`i:`). Ready once the node it asks lists every device online with its labels (the
 * orchestrator then reads Redis's memory). On go, `rounds` dashboard changes (`PUT /api/vars/difficulty`,
 * every device) are made on node 0's HTTP port; for each it records, per device and per node, the
 * time from sending the request to the `v:` line carrying the new value. One process holds both ends,
 * so one clock measures both. Then, on the orchestrator's `report` command, every device reports
 * `var_0` again at an even pace (`reportsPerSecond` over all devices, for `reportMs`), the last report
 * of each carrying `sentinel`: the daemon's and Redis's cost of one report from a device that reports
 * now and then (no coalescing of a flood), which sizing needs.
 */
import type { Socket } from 'node:net';
import { b64json, openVerified, varsLine } from '../lib/lines.js';
import { summarise, type LatencySummary } from '../lib/stats.js';
import { runWorker } from '../lib/worker.js';

export interface ScaleDevicesConfig {
  /** SDK port of each node; device n connects to tcpPorts[n % length]. */
  tcpPorts: number[];
  /** HTTP port the dashboard changes are made on (node 0). */
  httpPort: number;
  apiKey: string;
  token: string;
  devices: number;
  /** Variables each device reports. */
  vars: number;
  rounds: number;
  /** How long the daemon gets to list every device online with its labels. */
  registerMs: number;
  /** How long every device gets to receive a change before the missing ones are counted. */
  reachMs: number;
  /** The report phase: reports per second over all devices, for this long; each device's last carries `sentinel` (digits: var_0 is an integer). */
  reportsPerSecond: number;
  reportMs: number;
  sentinel: string;
}

export interface ScaleRound {
  status: number;
  /** The answer's `delivered` (null when absent). */
  delivered: number | null;
  answerMs: number;
  /** Devices reached, per node. */
  reachedPerNode: number[];
  /** The last device reached per node, ms after the request left (null: none reached). */
  lastPerNode: Array<number | null>;
  latency: LatencySummary;
}

export interface ScaleDevicesResult {
  devices: number;
  /** `i:` lines written in the report phase (the sentinels included). */
  reports: number;
  perNode: number[];
  registeredMs: number;
  rounds: ScaleRound[];
  closed: number;
  firstError: string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

runWorker<ScaleDevicesConfig, ScaleDevicesResult>(async (cfg, ctl) => {
  const nodes = cfg.tcpPorts.length;
  const base = `http://127.0.0.1:${cfg.httpPort}`;
  const headers = { authorization: `Bearer ${cfg.token}`, 'content-type': 'application/json' };
  const nodeOf = (n: number): number => n % nodes;
  let want: string | null = null;
  let start = 0;
  let reachedAt: Array<number | null> = [];
  let reached = 0;
  let onAll: () => void = () => undefined;
  let firstError: string | null = null;
  let closed = 0;
  const vPrefix = `v:${cfg.apiKey}:`;
  const onV = (n: number, payload: string, now: number): void => {
    if (want === null || reachedAt[n] !== null) return;
    let vars: Array<{ name: string; value: string }>;
    try {
      vars = JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as Array<{ name: string; value: string }>;
    } catch {
      firstError ??= `dev-${n}: v: line that is not base64 JSON`;
      return;
    }
    if (!vars.some((v) => v.name === 'difficulty' && v.value === want)) return;
    reachedAt[n] = now - start;
    reached += 1;
    if (reached === cfg.devices) onAll();
  };
  const sockets: Socket[] = [];
  const open = async (n: number): Promise<void> => {
    const s = await openVerified({ port: cfg.tcpPorts[nodeOf(n)] as number, apiKey: cfg.apiKey, deviceId: `dev-${n}`, timeoutMs: 30_000 });
    let pending = '';
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      pending += d.toString('latin1');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith(vPrefix)) onV(n, line.slice(vPrefix.length), now);
        else if (line.startsWith('e:')) firstError ??= `dev-${n}: ${line.slice(0, 200)}`;
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => (closed += 1));
    const vars = Array.from({ length: cfg.vars }, (_, i) => ({ name: `var_${i}`, type: 'integer', value: String(n * 100 + i) }));
    s.write(`d:${cfg.apiKey}:${b64json({ platform: n % 2 === 0 ? 'android' : 'ios', build: `1.4.${n % 10}` })}\n` + varsLine(cfg.apiKey, vars));
    sockets[n] = s;
  };
  const t0 = performance.now();
  // A few dozen at a time: a thousand SYNs at once would measure the accept backlog instead.
  for (let i = 0; i < cfg.devices; i += 50) await Promise.all(Array.from({ length: Math.min(50, cfg.devices - i) }, (_, j) => open(i + j)));
  let listing = '';
  for (;;) {
    if (firstError) throw new Error(`a device was refused: ${firstError}`);
    const r = await fetch(`${base}/api/devices`, { headers });
    if (r.status !== 200) throw new Error(`GET /api/devices: ${r.status} ${(await r.text()).slice(0, 200)}`);
    const body = (await r.json()) as { devices: Array<{ online: boolean; labels: Record<string, string> }> };
    const ok = body.devices.filter((d) => d.online && d.labels.platform !== undefined).length;
    listing = `${body.devices.length} listed, ${body.devices.filter((d) => d.online).length} online, ${ok} with labels; ${closed} connections closed`;
    if (ok >= cfg.devices) break;
    if (performance.now() - t0 > cfg.registerMs) throw new Error(`not every device was listed online with labels within ${cfg.registerMs} ms: ${listing}`);
    await sleep(100);
  }
  const registeredMs = performance.now() - t0;
  await ctl.ready({ registeredMs });
  const rounds: ScaleRound[] = [];
  for (let r = 0; r < cfg.rounds; r++) {
    const value = `r${r}-${Date.now()}`;
    const all = new Promise<void>((res) => (onAll = res));
    reachedAt = sockets.map(() => null);
    reached = 0;
    want = value;
    start = performance.now();
    const res = await fetch(`${base}/api/vars/difficulty`, { method: 'PUT', headers, body: JSON.stringify({ value, type: 'string' }) });
    const answerMs = performance.now() - start;
    const body = (await res.json().catch(() => ({}))) as { delivered?: unknown };
    if (res.status !== 200) throw new Error(`PUT /api/vars/difficulty: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    await Promise.race([all, sleep(cfg.reachMs)]);
    want = null;
    const reachedPerNode = Array.from({ length: nodes }, () => 0);
    const lastPerNode: Array<number | null> = Array.from({ length: nodes }, () => null);
    reachedAt.forEach((t, n) => {
      if (t === null) return;
      const k = nodeOf(n);
      reachedPerNode[k] = (reachedPerNode[k] as number) + 1;
      lastPerNode[k] = Math.max(lastPerNode[k] ?? 0, t);
    });
    rounds.push({ status: res.status, delivered: typeof body.delivered === 'number' ? body.delivered : null, answerMs, reachedPerNode, lastPerNode, latency: summarise(reachedAt.filter((t): t is number => t !== null)) });
    // Apart, so one round's tail is not the next one's head.
    await sleep(200);
  }
  // The orchestrator reads Redis's memory now, with every device still online, then says report.
  let reportNow: () => void = () => undefined;
  const reportCmd = new Promise<void>((r) => (reportNow = r));
  ctl.onCmd((c) => {
    if (c === 'report') reportNow();
  });
  ctl.event({ phase: 'rounds' });
  await reportCmd;
  const intervalMs = (cfg.devices * 1000) / cfg.reportsPerSecond;
  // var_0 keeps its type (integer): the sentinel is a number too.
  const reportLine = (n: number, value: string): string => varsLine(cfg.apiKey, [{ name: 'var_0', type: 'integer', value }]);
  let reports = 0;
  // Each device on its own timer, spread over the interval: an even, open-loop pace.
  await Promise.all(
    sockets.map(
      (s, n) =>
        new Promise<void>((resolve) => {
          const end = performance.now() + cfg.reportMs;
          let k = 0;
          const tick = (): void => {
            if (performance.now() >= end || s.destroyed) {
              s.write(reportLine(n, cfg.sentinel));
              reports += 1;
              resolve();
              return;
            }
            s.write(reportLine(n, String(n * 1_000_000 + k++)));
            reports += 1;
            setTimeout(tick, intervalMs);
          };
          setTimeout(tick, (n * intervalMs) / cfg.devices);
        }),
    ),
  );
  ctl.event({ phase: 'reported', reports });
  await ctl.stopped;
  for (const s of sockets) s.destroy();
  const perNode = Array.from({ length: nodes }, (_, k) => sockets.filter((_, n) => nodeOf(n) === k).length);
  return { devices: cfg.devices, reports, perNode, registeredMs, rounds, closed, firstError };
});
