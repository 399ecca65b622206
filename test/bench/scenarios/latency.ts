/**
 * Scenario 4, latency: device `i:` → dashboard WebSocket event, and dashboard `PUT /api/vars/:name` →
 * device `v:` line, at 1,000 and 10,000 changes/s (open loop: changes leave on schedule whether or not
 * earlier ones arrived). Targets (issue 14), against the floor of the same run (the daemon's own
 * `v:` → `OK` round trip, measured first): at 1,000/s, `i:` → event p99 ≤ 2× the floor's p99 and
 * PUT → `v:` p99 ≤ 3× it, with nothing lost.
 */
import type { BenchContext, Row, ScenarioReport } from '../lib/context.js';
import { CpuMeter } from '../lib/proc.js';
import { redisCalls } from '../lib/redis-calls.js';
import { median, type LatencySummary } from '../lib/stats.js';
import type { LatencyConfig, LatencyResult } from '../gen/latency.js';
import { medianCpu } from './ingest.js';

/** p99 at 1,000/s as a multiple of the floor's p99 (v: → OK) in the same run. */
const TARGET_TIMES_FLOOR = { ingest: 2, put: 3 } as const;

interface LatencyRun {
  path: 'ingest' | 'put' | 'echo';
  rate: number;
  sent: number;
  received: number;
  skipped: number;
  latency: LatencySummary;
  statuses: Record<string, number>;
  cpu: Record<string, number>;
}

export async function latencyScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const durationMs = ctx.quick ? 3000 : 10_000;
  const daemon = await ctx.daemon('latency');
  const [user] = await daemon.users('latency', 1);
  if (!user) throw new Error('no user');
  const redis = ctx.redis.client();
  const runs: LatencyRun[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  const label = { ingest: 'i: → WS ', put: 'PUT → v:', echo: 'v: → OK ' } as const;
  let floorP99 = Number.NaN;
  // BENCH_LATENCY_MODES=echo,ingest runs only those paths (the floor always runs: the targets need it).
  const only = process.env.BENCH_LATENCY_MODES?.split(',');
  for (const mode of (['echo', 'ingest', 'put'] as const).filter((m) => m === 'echo' || !only || only.includes(m))) {
    // BENCH_LATENCY_RATES=1000 measures only those rates (a profile of the 1,000/s path alone).
    const rates = process.env.BENCH_LATENCY_RATES?.split(',').map(Number) ?? [1000, 10_000];
    for (const rate of mode === 'echo' ? [1000] : rates) {
      const mine: LatencyRun[] = [];
      for (let r = 0; r < ctx.runs; r++) {
        const gen = ctx.child<LatencyResult>('latency-gen', 'gen/latency.ts', {
          tcpPort: daemon.tcpPort,
          httpPort: daemon.httpPort,
          apiKey: user.apiKey,
          token: user.token,
          mode,
          rate,
          durationMs,
          names: Number(process.env.BENCH_LATENCY_NAMES ?? 1024),
          warmupMs: ctx.quick ? 500 : 1000,
        } satisfies LatencyConfig);
        await gen.ready();
        // Redis commands per change (INFO commandstats; EVALSHA counts once, what its script calls apart).
        await redis.config('RESETSTAT');
        const meter = new CpuMeter({ daemon: daemon.pid, redis: ctx.redis.pid });
        meter.begin();
        const t0 = performance.now();
        gen.go();
        const res = await gen.result(durationMs + 30_000);
        const cpu = meter.end();
        const calls = await redisCalls(redis);
        const cpuPerChangeUs = (((cpu.daemon ?? 0) / 100) * (performance.now() - t0) * 1000) / Math.max(1, res.result.received);
        cpu.generator = res.cpuPct;
        await gen.close();
        const x = res.result;
        if (x.firstError) throw new Error(`${mode} at ${rate}/s: ${x.firstError}`);
        if (x.received === 0 && rate === 1000) throw new Error(`${mode} at ${rate}/s: nothing arrived (${x.sent} sent, HTTP statuses ${JSON.stringify(x.statuses)})`);
        const run: LatencyRun = { path: mode, rate, sent: x.sent, received: x.received, skipped: x.skipped, latency: x.latency, statuses: x.statuses, cpu };
        ctx.log(
          `  ${label[mode]} at ${rate.toLocaleString()}/s run ${r + 1}: p50 ${x.latency.p50.toFixed(2)} p99 ${x.latency.p99.toFixed(2)} max ${x.latency.max.toFixed(1)} ms, ${x.received}/${x.sent} arrived${x.skipped ? `, ${x.skipped} not sent (server too far behind)` : ''}, HTTP ${JSON.stringify(x.statuses)}, daemon CPU ${cpuPerChangeUs.toFixed(0)} µs per change arrived, ${(calls.total / Math.max(1, x.received)).toFixed(2)} Redis commands per change arrived (${JSON.stringify(calls.top)}), cpu ${JSON.stringify(cpu)}`,
        );
        mine.push(run);
        runs.push(run);
      }
      const p99 = median(mine.map((m) => m.latency.p99));
      const lost = mine.reduce((a, m) => a + (m.sent - m.received), 0);
      const skipped = mine.reduce((a, m) => a + m.skipped, 0);
      if (lost > 0 || skipped > 0)
        notes.push(
          `${label[mode].trim()} at ${rate.toLocaleString()}/s: ${lost.toLocaleString()} changes had not arrived 2 s after the end (counted with the time they had waited)` +
            (skipped ? `, and ${skipped.toLocaleString()} were not sent because a second's worth already waited: the daemon did not keep up.` : '.'),
        );
      const what = { ingest: 'device i: → dashboard WS event', put: 'dashboard PUT → device v: line', echo: 'device v: → OK (daemon round trip, no backend; the floor)' }[mode];
      if (mode === 'echo') floorP99 = p99;
      const times = mode === 'echo' || rate !== 1000 ? null : TARGET_TIMES_FLOOR[mode];
      const bound = times === null ? null : times * floorP99;
      rows.push({
        metric: `${what}, p99 at ${rate.toLocaleString()}/s (p50 ${median(mine.map((m) => m.latency.p50)).toFixed(2)} ms)`,
        figure: p99,
        unit: 'ms',
        target: bound === null ? '(informative)' : `≤ ${times}× the floor = ${bound.toFixed(2)} ms`,
        baseline: null,
        pass: bound === null ? null : p99 <= bound && lost === 0 && skipped === 0,
        digits: 2,
      });
    }
  }
  redis.disconnect();
  return {
    id: 'latency',
    title: `Latency: one device and one dashboard of its key, ${durationMs / 1000} s per rate, open loop`,
    rows,
    cpu: medianCpu(runs),
    runs,
    notes,
  };
}
