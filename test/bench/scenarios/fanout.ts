/**
 * Scenario 3, fan-out: one device streams variable changes while 1,000 dashboard WebSockets of its
 * key watch; the figure is `vars` messages delivered per second over all sockets (and the variable
 * updates they carry). The baseline broadcasts the same events with the `ws` library.
 */
import type { BenchContext, ScenarioReport } from '../lib/context.js';
import { CpuMeter } from '../lib/proc.js';
import { median, sleep } from '../lib/stats.js';
import type { IngestConfig, IngestResult } from '../gen/ingest.js';
import type { WsClientsConfig, WsClientsResult } from '../gen/ws-clients.js';
import { medianCpu, prefixKeys } from './ingest.js';

interface FanoutRun {
  sockets: number;
  seconds: number;
  messagesPerSecond: number;
  updatesPerSecond: number;
  lines: number;
  closed: number;
  cpu: Record<string, number>;
}

async function fanoutRun(
  ctx: BenchContext,
  opts: { tcpPort: number; wsPort: number; path: string; apiKey: string; sockets: number; clientProcs: number; durationMs: number; tag: string; pids: Record<string, number | undefined> },
): Promise<FanoutRun> {
  const per = Math.ceil(opts.sockets / opts.clientProcs);
  const clients = Array.from({ length: opts.clientProcs }, (_, i) =>
    ctx.child<WsClientsResult>(`ws-clients-${i}`, 'gen/ws-clients.ts', { port: opts.wsPort, path: opts.path, count: Math.min(per, opts.sockets - i * per) } satisfies WsClientsConfig),
  );
  await Promise.all(clients.map((c) => c.ready(60_000)));
  const device = ctx.child<IngestResult>('fanout-device', 'gen/ingest.ts', {
    port: opts.tcpPort,
    conns: [{ apiKey: opts.apiKey, deviceId: 'fanout-device', prefix: `${opts.tag}f` }],
    durationMs: opts.durationMs,
    sentinel: opts.tag,
    names: 64,
    blockLines: 20,
    // Deep enough that the server always has lines waiting: the figure is its fan-out, not a round trip.
    window: 64,
  } satisfies IngestConfig);
  await device.ready();
  const meter = new CpuMeter(opts.pids);
  for (const c of clients) c.go();
  meter.begin();
  device.go();
  const d = await device.result(opts.durationMs + 30_000);
  // Let what is in flight arrive.
  await sleep(1000);
  for (const c of clients) c.stop();
  const results = await Promise.all(clients.map((c) => c.result(30_000)));
  const cpu = meter.end();
  cpu.device = d.cpuPct;
  results.forEach((r, i) => (cpu[`clients ${i + 1}`] = r.cpuPct));
  await Promise.all([device.close(), ...clients.map((c) => c.close())]);
  const first = Math.min(...results.map((r) => r.result.firstAt ?? Infinity));
  const last = Math.max(...results.map((r) => r.result.lastAt ?? 0));
  const frames = results.reduce((a, r) => a + r.result.frames, 0);
  const updates = results.reduce((a, r) => a + r.result.updates, 0);
  const closed = results.reduce((a, r) => a + r.result.closed, 0);
  const seconds = Math.max(0.001, (last - first) / 1000);
  if (frames === 0) throw new Error(`${opts.tag}: no vars messages arrived`);
  return { sockets: opts.sockets, seconds, messagesPerSecond: Math.round(frames / seconds), updatesPerSecond: Math.round(updates / seconds), lines: d.result.lines, closed, cpu };
}

export async function fanoutScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const sockets = 1000;
  const durationMs = ctx.quick ? 3000 : 10_000;
  const daemon = await ctx.daemon('fanout');
  const [user] = await daemon.users('fanout', 1);
  if (!user) throw new Error('no user');
  const baseline = ctx.child<{ events: number }, { tcpPort: number; wsPort: number }>('ws-broadcast', 'baselines/ws-broadcast.ts', {});
  const basePorts = await baseline.ready();
  baseline.go();
  const ours: FanoutRun[] = [];
  const theirs: FanoutRun[] = [];
  for (let r = 0; r < ctx.runs; r++) {
    const o = await fanoutRun(ctx, { tcpPort: daemon.tcpPort, wsPort: daemon.httpPort, path: `/ws?token=${user.token}`, apiKey: user.apiKey, sockets, clientProcs: 2, durationMs, tag: `fo${r}`, pids: { daemon: daemon.pid, redis: ctx.redis.pid } });
    ctx.log(`  observerio run ${r + 1}: ${o.messagesPerSecond.toLocaleString()} messages/s, ${o.updatesPerSecond.toLocaleString()} updates/s, ${o.closed} closed, cpu ${JSON.stringify(o.cpu)}`);
    ours.push(o);
    const b = await fanoutRun(ctx, { tcpPort: basePorts.tcpPort, wsPort: basePorts.wsPort, path: '/', apiKey: user.apiKey, sockets, clientProcs: 2, durationMs, tag: `fb${r}`, pids: { baseline: baseline.pid } });
    ctx.log(`  baseline   run ${r + 1}: ${b.messagesPerSecond.toLocaleString()} messages/s, ${b.updatesPerSecond.toLocaleString()} updates/s, ${b.closed} closed, cpu ${JSON.stringify(b.cpu)}`);
    theirs.push(b);
  }
  const msgs = median(ours.map((r) => r.messagesPerSecond));
  const baseMsgs = median(theirs.map((r) => r.messagesPerSecond));
  const ups = median(ours.map((r) => r.updatesPerSecond));
  const baseUps = median(theirs.map((r) => r.updatesPerSecond));
  return {
    id: 'fan-out',
    title: `Fan-out: one device streaming i: lines (one change each), ${sockets} dashboard WebSockets of its key, ${durationMs / 1000} s`,
    rows: [
      { metric: `changes delivered/s over ${sockets} sockets (one change to one socket = 1)`, figure: ups, unit: 'changes/s', target: '≥ 3× baseline', baseline: baseUps, pass: ups >= 3 * baseUps },
      { metric: 'WebSocket vars frames delivered/s', figure: msgs, unit: 'frames/s', target: '(informative)', baseline: baseMsgs, pass: null },
    ],
    cpu: { ...prefixKeys('observerio: ', medianCpu(ours)), ...prefixKeys('baseline: ', medianCpu(theirs)) },
    runs: [...ours.map((r) => ({ server: 'observerio', ...r })), ...theirs.map((r) => ({ server: 'baseline', ...r }))],
    notes: [
      "A message is counted as what the dashboard learns: one variable change reaching one socket. The baseline sends every change as its own frame, as the `ws` README broadcasts; observerio sends a device's changes of one event-loop tick as one frame (uWS publishes it to the key's topic once), so its frames carry several changes. Frames per second are shown for both.",
    ],
  };
}
