/**
 * Scenario 6, supervision under fire: 90% of the connections are healthy devices, 10% keep sending a
 * line that crashes their connection actor (the daemon runs with OBSERVERIO_FAULT_INJECTION_PREFIX),
 * get closed past their restart budget and reconnect. Measured for the healthy 90%, without and with
 * the crashing 10%: throughput when flooding (lines/s until Redis has every last value, as in
 * scenario 1) and the p99 round trip of a paced load (each block of lines ends with a `v:` line whose
 * `OK` comes back once the daemon has read the block). Target: ≤ 10% less throughput, ≤ 10% higher p99
 * (or, as the issue allows, a measurement that shows this machine cannot tell: the paced load calm
 * once more after the crashers stop, so calm against calm gives the noise).
 * First, the crashers alone (no healthy load): their own daemon CPU, the share of the one event loop
 * that the healthy load cannot have under fire however cheap a crash is made (informative row).
 * And the daemon's CPU per healthy flood line, calm and under fire (informative): on cores shared
 * with other work the throughput says how much CPU the daemon was given, this what it spent.
 */
import type { BenchContext, ScenarioReport } from '../lib/context.js';
import { CpuMeter } from '../lib/proc.js';
import { median, type LatencySummary } from '../lib/stats.js';
import type { BenchUser } from '../lib/daemon.js';
import type { CrasherConfig, CrasherResult } from '../gen/crasher.js';
import type { IngestConfig, IngestConn, IngestResult } from '../gen/ingest.js';
import { ingestRun, medianCpu, split, type IngestRun } from './ingest.js';

const CRASH_PREFIX = 'x:crash';
/** A tenth of the SDK's shortest reconnect delay (1 s): a client far more persistent than the SDK. */
const RECONNECT_MS = 100;

interface PacedRun {
  rtt: LatencySummary;
  lines: number;
  cpu: Record<string, number>;
}

interface SupervisionRun {
  phase: 'calm' | 'under fire';
  flood: IngestRun;
  paced: PacedRun;
  crashers: CrasherResult | null;
}

/** The paced load once more, calm, after the phase under fire: calm against calm is this machine's noise. */
interface CalmAgainRun {
  paced: PacedRun;
}

interface AloneRun {
  seconds: number;
  crashes: number;
  reconnects: number;
  cpu: Record<string, number>;
  /** Daemon CPU per crash line, its share of the reconnects and their verifies included. */
  usPerCrash: number;
  /** Redis commands the daemon sent meanwhile, by command. */
  redisCalls: Record<string, number>;
}

/** Starts `crashing` connections that each send a crash line every 20 ms, and lets the storm begin before measuring. */
async function startCrashers(ctx: BenchContext, name: string, port: number, users: BenchUser[], crashing: number, devicePrefix: string) {
  const crashers = ctx.child<CrasherResult>(name, 'gen/crasher.ts', {
    port,
    conns: Array.from({ length: crashing }, (_, i) => ({ apiKey: (users[i % users.length] as BenchUser).apiKey, deviceId: `${devicePrefix}${i}` })),
    crashLine: `${CRASH_PREFIX} boom`,
    everyMs: 20,
    reconnectMs: RECONNECT_MS,
  } satisfies CrasherConfig);
  await crashers.ready();
  crashers.go();
  await new Promise((res) => setTimeout(res, 500));
  return crashers;
}

/**
 * The crashing connections with no healthy load: what they cost the daemon's one event loop by
 * themselves. Under fire the healthy load gets that much less of the same core, so the daemon's
 * share here, against its share while flooding calm, says how much of the difference under fire is
 * only the crashers' own work (which no crash handling can make zero) and how much is interference.
 */
async function crashersAlone(ctx: BenchContext, redis: ReturnType<BenchContext['redis']['client']>, port: number, users: BenchUser[], crashing: number, durationMs: number, pids: Record<string, number>): Promise<AloneRun> {
  const crashers = await startCrashers(ctx, 'crashers-alone', port, users, crashing, 'alone');
  const meter = new CpuMeter(pids);
  const calls0 = await redisCalls(redis);
  meter.begin();
  const t0 = performance.now();
  await new Promise((res) => setTimeout(res, durationMs));
  const cpu = meter.end();
  const calls = diffCalls(await redisCalls(redis), calls0);
  const seconds = (performance.now() - t0) / 1000;
  crashers.stop();
  const res = (await crashers.result(30_000)).result;
  await crashers.close();
  // The counts cover the head start too: scale them to the measured window.
  const share = seconds / (seconds + 0.5);
  const crashes = Math.round(res.crashLinesSent * share);
  const reconnects = Math.round(res.reconnects * share);
  return { seconds, crashes, reconnects, cpu, usPerCrash: crashes > 0 ? ((cpu.daemon ?? 0) * 10_000 * seconds) / crashes : 0, redisCalls: calls };
}

/** Redis's command counts (INFO commandstats), to say what a crash and a reconnect ask of the store. */
async function redisCalls(redis: ReturnType<BenchContext['redis']['client']>): Promise<Map<string, number>> {
  const text = (await redis.info('commandstats')) as string;
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1] as string, Number(m[2]));
  return out;
}

function diffCalls(after: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of after) if (n - (before.get(k) ?? 0) > 0 && k !== 'info') out[k] = n - (before.get(k) ?? 0);
  return out;
}

async function pacedRun(ctx: BenchContext, port: number, users: BenchUser[], opts: { conns: number; generators: number; intervalMs: number; blockLines: number; durationMs: number; tag: string; pids: Record<string, number> }): Promise<PacedRun> {
  const conns: IngestConn[] = Array.from({ length: opts.conns }, (_, i) => ({ apiKey: (users[i % users.length] as BenchUser).apiKey, deviceId: `paced${i}`, prefix: `${opts.tag}p${i}` }));
  const gens = split(conns, opts.generators).map((part, g) =>
    ctx.child<IngestResult>(`paced-gen-${g}`, 'gen/ingest.ts', { port, conns: part, durationMs: opts.durationMs, sentinel: opts.tag, names: 8, blockLines: opts.blockLines, window: 1, intervalMs: opts.intervalMs } satisfies IngestConfig),
  );
  await Promise.all(gens.map((g) => g.ready()));
  const meter = new CpuMeter(opts.pids);
  meter.begin();
  for (const g of gens) g.go();
  const results = await Promise.all(gens.map((g) => g.result(opts.durationMs + 30_000)));
  const cpu = meter.end();
  await Promise.all(gens.map((g) => g.close()));
  // Percentiles over all connections' samples: merge the generators' summaries conservatively (worst).
  const rtts = results.map((r) => r.result.rtt).filter((x): x is LatencySummary => x !== null);
  const rtt: LatencySummary = {
    count: rtts.reduce((a, x) => a + x.count, 0),
    p50: Math.max(...rtts.map((x) => x.p50)),
    p95: Math.max(...rtts.map((x) => x.p95)),
    p99: Math.max(...rtts.map((x) => x.p99)),
    max: Math.max(...rtts.map((x) => x.max)),
  };
  return { rtt, lines: results.reduce((a, r) => a + r.result.lines, 0), cpu };
}

export async function supervisionScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const total = ctx.quick ? 50 : 100;
  const crashing = total / 10;
  const healthy = total - crashing;
  const durationMs = ctx.quick ? 3000 : 8000;
  const daemon = await ctx.daemon('supervision', { faultPrefix: CRASH_PREFIX });
  const users = await daemon.users('sup', 10);
  const redis = ctx.redis.client();
  const pids = { daemon: daemon.pid, redis: ctx.redis.pid as number };
  const runs: SupervisionRun[] = [];
  const again: CalmAgainRun[] = [];
  const alone: AloneRun[] = [];
  try {
    for (let r = 0; r < ctx.runs; r++) {
      alone.push(await crashersAlone(ctx, redis, daemon.tcpPort, users, crashing, durationMs, pids));
      const a = alone.at(-1) as AloneRun;
      ctx.log(
        `  run ${r + 1} crashers alone: ${a.crashes} crash lines and ${a.reconnects} reconnects in ${(a.seconds).toFixed(1)} s; daemon ${a.cpu.daemon?.toFixed(1)}% of a core (${a.usPerCrash.toFixed(0)} µs per crash line, reconnects included), redis ${a.cpu.redis?.toFixed(1)}%; Redis commands ${JSON.stringify(a.redisCalls)}`,
      );
      // BENCH_SUPERVISION_ALONE_ONLY=1: only this phase, to compare the crash path's cost alone, repeatedly.
      if (process.env.BENCH_SUPERVISION_ALONE_ONLY === '1') continue;
      // A flood not counted before the first calm one: calm always goes first, and a cold daemon (JIT,
      // first keys) made calm look slower than under fire run after run.
      if (r === 0) await ingestRun(ctx, redis, { port: daemon.tcpPort, users, load: { conns: healthy, keys: users.length, generators: 2, durationMs: 1500 }, tag: 'warm', pids });
      for (const phase of ['calm', 'under fire'] as const) {
        let crashers: ReturnType<typeof ctx.child<CrasherResult>> | null = null;
        if (phase === 'under fire') {
          crashers = await startCrashers(ctx, 'crashers', daemon.tcpPort, users, crashing, 'crasher');
        }
        const tag = `s${r}${phase === 'calm' ? 'c' : 'f'}`;
        const flood = await ingestRun(ctx, redis, { port: daemon.tcpPort, users, load: { conns: healthy, keys: users.length, generators: 2, durationMs }, tag: `${tag}f`, pids });
        const paced = await pacedRun(ctx, daemon.tcpPort, users, { conns: healthy, generators: 2, intervalMs: 20, blockLines: 20, durationMs, tag: `${tag}p`, pids });
        let crasherResult: CrasherResult | null = null;
        if (crashers) {
          crashers.stop();
          crasherResult = (await crashers.result(30_000)).result;
          await crashers.close();
        }
        ctx.log(
          `  run ${r + 1} ${phase.padEnd(10)}: flood ${flood.linesPerSecond.toLocaleString()} lines/s; paced ${(paced.lines / (durationMs / 1000)).toFixed(0)} lines/s, round trip p50 ${paced.rtt.p50.toFixed(2)} p99 ${paced.rtt.p99.toFixed(2)} ms` +
            (crasherResult ? `; ${crasherResult.crashLinesSent} crash lines, ${crasherResult.closedByServer} sockets closed by the daemon, ${crasherResult.reconnects} reconnects` : '') +
            `; cpu ${JSON.stringify(flood.cpu)}`,
        );
        runs.push({ phase, flood, paced, crashers: crasherResult });
      }
      // Calm once more, the crashers gone: the same measurement twice without a difference between
      // them says how far apart two calm p99s fall here, the smallest rise this machine can tell.
      const paced = await pacedRun(ctx, daemon.tcpPort, users, { conns: healthy, generators: 2, intervalMs: 20, blockLines: 20, durationMs, tag: `s${r}a`, pids });
      again.push({ paced });
      ctx.log(`  run ${r + 1} calm again: paced round trip p50 ${paced.rtt.p50.toFixed(2)} p99 ${paced.rtt.p99.toFixed(2)} ms`);
    }
  } finally {
    redis.disconnect();
  }
  const aloneRow = {
    metric: `daemon CPU of the crashing connections alone, no healthy load (${Math.round(median(alone.map((a) => a.usPerCrash)))} µs per crash line, reconnects included)`,
    figure: median(alone.map((a) => a.cpu.daemon ?? 0)),
    unit: '% of a core',
    target: '(informative)',
    baseline: null,
    pass: null,
    digits: 1,
  };
  const perCrash = (a: AloneRun): number => Object.values(a.redisCalls).reduce((x, n) => x + n, 0) / Math.max(1, a.crashes);
  const aloneNote = `Alone, each crash line (a crash, a restart on the same socket with its re-registration and resync, the i: line after it, and a tenth of a reconnect) cost the daemon ${Math.round(median(alone.map((a) => a.usPerCrash)))} µs of CPU and ${median(alone.map(perCrash)).toFixed(1)} Redis commands (INFO commandstats, script calls included).`;
  if (runs.length === 0) return { id: 'supervision', title: 'Supervision: the crashing connections alone', rows: [aloneRow], cpu: {}, runs: alone, notes: [aloneNote] };
  const calm = runs.filter((x) => x.phase === 'calm');
  const fire = runs.filter((x) => x.phase === 'under fire');
  const thrCalm = median(calm.map((x) => x.flood.linesPerSecond));
  const thrFire = median(fire.map((x) => x.flood.linesPerSecond));
  const p99Calm = median(calm.map((x) => x.paced.rtt.p99));
  const p99Fire = median(fire.map((x) => x.paced.rtt.p99));
  const loss = 1 - thrFire / thrCalm;
  // Daemon CPU per healthy flood line: what the daemon spent, not what the shared cores let it have.
  const usPerLine = (x: SupervisionRun): number => ((x.flood.cpu.daemon ?? 0) * 10_000) / Math.max(1, x.flood.linesPerSecond);
  const cpuCalm = median(calm.map(usPerLine));
  const cpuFire = median(fire.map(usPerLine));
  const daemonShare = (xs: SupervisionRun[]): string => spread(xs.map((x) => x.flood.cpu.daemon ?? 0));
  const rise = p99Fire / p99Calm - 1;
  // Per run, how far the second calm p99 fell from the first (either way): the machine's noise.
  const aa = median(calm.map((x, i) => Math.abs((again[i]?.paced.rtt.p99 ?? x.paced.rtt.p99) / x.paced.rtt.p99 - 1)));
  const p99Again = median(again.map((x) => x.paced.rtt.p99));
  const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
  // Crashers ran during the flood and the paced phase (plus the 0.5 s head start).
  const fireSeconds = (durationMs * 2) / 1000 + 0.5;
  const crashes = median(fire.map((x) => (x.crashers?.crashLinesSent ?? 0) / fireSeconds));
  const reconnects = median(fire.map((x) => (x.crashers?.reconnects ?? 0) / fireSeconds));
  return {
    id: 'supervision',
    title: `Supervision under fire: ${healthy} healthy connections, ${crashing} crashing every 20 ms (closed past 5 crashes in 10 s, reconnecting ${RECONNECT_MS} ms later)`,
    rows: [
      { ...aloneRow, metric: `${aloneRow.metric.slice(0, -1)}; the calm flood kept the daemon at ${median(calm.map((x) => x.flood.cpu.daemon ?? 0)).toFixed(0)}%)` },
      {
        metric: `daemon CPU per healthy flood line under fire, the crashers' work included (${changeText(cpuFire / cpuCalm - 1)} calm; the daemon got ${daemonShare(calm)}% of a core calm and ${daemonShare(fire)}% under fire)`,
        figure: cpuFire,
        unit: 'µs/line',
        target: '(informative)',
        baseline: cpuCalm,
        pass: null,
        digits: 2,
      },
      { metric: `healthy throughput under fire (${changeText(-loss)} calm)`, figure: thrFire, unit: 'lines/s', target: '≤ 10% lower than calm', baseline: thrCalm, pass: loss <= 0.1 },
      {
        metric: `healthy round trip p99, calm again after the crashers stopped: the same calm measurement twice (median difference per run ${(aa * 100).toFixed(1)}%, either way), the smallest rise this machine can tell apart`,
        figure: p99Again,
        unit: 'ms',
        target: '(informative)',
        baseline: p99Calm,
        pass: null,
        digits: 2,
      },
      {
        metric: `healthy round trip p99 under fire (${changeText(rise)} calm; calm against calm again ${(aa * 100).toFixed(1)}% apart)`,
        figure: p99Fire,
        unit: 'ms',
        target: '≤ 10% higher than calm, or within calm against calm again',
        baseline: p99Calm,
        pass: rise <= Math.max(0.1, aa),
        digits: 2,
      },
    ],
    cpu: { ...prefix('calm: ', medianCpu(calm.map((x) => x.flood))), ...prefix('under fire: ', medianCpu(fire.map((x) => x.flood))) },
    runs: [...runs, ...again.map((a) => ({ phase: 'calm again', ...a }))],
    notes: [
      `The p99 target is the issue's "≤ 1.1× calm, or a measurement that shows why this machine cannot tell": each run measures calm, under fire, and calm again; when the two calm p99s of a run fall further apart than the rise under fire, that rise cannot be told from noise on this machine, and the row says so by passing within that difference (its figure and the difference are both in the row).`,
      `Per run, calm p99 ranged ${spread(calm.map((x) => x.paced.rtt.p99))} ms and under fire ${spread(fire.map((x) => x.paced.rtt.p99))} ms; calm throughput ${spread(calm.map((x) => x.flood.linesPerSecond / 1000))}k and under fire ${spread(fire.map((x) => x.flood.linesPerSecond / 1000))}k lines/s: differences within that spread are noise on a shared 2-core machine.`,
      `The crashers' own work runs on the daemon's one event loop: alone they took ${spread(alone.map((a) => a.cpu.daemon ?? 0))}% of a core, which a flood that keeps that loop busy loses to them whatever crash handling costs, on top of their generator's and Redis's share of the 2 shared cores.`,
      aloneNote,
      `"baseline" here is the same daemon without the crashing connections. About ${Math.round(crashes)} crash lines/s and ${Math.round(reconnects)} reconnects/s while under fire; every crash is a real actor crash (error, crash report in the log, restart on the same socket).`,
    ],
  };
}

function prefix(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}${k}`, v]));
}

/** "4.2% higher than" / "3.1% lower than" for a relative change. */
function changeText(change: number): string {
  return `${Math.abs(change * 100).toFixed(1)}% ${change >= 0 ? 'higher than' : 'lower than'}`;
}
