/**
 * Scenario (issue 14), bulk changes: 10,000 dashboard changes/s offered to one key with one device
 * online, through `PUT /api/vars/:name` and through the WebSocket's `set_var`, open loop, each to one
 * of 1,024 variables. Figures: changes that reached the device per second (sustained, first sent to
 * last reached; target ≥ 10,000/s, what one worker must take), and send → `v:` latency. A change
 * overtaken by a later one of its variable on its way counts as reached by that later value (§8:
 * pending collapses per variable). The strategy applied by label to 1,000 devices is measured by the
 * overrides scenario (its "strategy of 3 vars applied → last matching device reached" row).
 * Meilisearch's CPU is measured beside the daemon's: every change reached is a timeline entry it
 * indexes on the same cores.
 */
import type { BenchContext, Row, ScenarioReport } from '../lib/context.js';
import { CpuMeter } from '../lib/proc.js';
import { redisCalls } from '../lib/redis-calls.js';
import { median } from '../lib/stats.js';
import type { BulkConfig, BulkResult } from '../gen/bulk.js';
import { medianCpu } from './ingest.js';

const RATE = 10_000;
const TARGET_PER_S = 10_000;

/** A latency in ms; none measured (nothing reached the device after warm-up) is a dash. */
const ms = (v: number | null | undefined): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(1) : '—');

interface BulkRun extends BulkResult {
  mode: BulkConfig['mode'];
  cpu: Record<string, number>;
}

export async function bulkScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const durationMs = ctx.quick ? 3000 : 10_000;
  const daemon = await ctx.daemon('bulk');
  const [user] = await daemon.users('bulk', 1);
  if (!user) throw new Error('no user');
  const redis = ctx.redis.client();
  const runs: BulkRun[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  const label = { put: 'PUT /api/vars/:name', ws: 'WebSocket set_var' } as const;
  // BENCH_BULK_MODES=put or ws measures one path alone (a profile of one of them).
  const modes = (process.env.BENCH_BULK_MODES ?? 'put,ws').split(',').filter((m): m is 'put' | 'ws' => m === 'put' || m === 'ws');
  for (const mode of modes) {
    const mine: BulkRun[] = [];
    for (let r = 0; r < ctx.runs; r++) {
      const gen = ctx.child<BulkResult>('bulk-gen', 'gen/bulk.ts', {
        tcpPort: daemon.tcpPort,
        httpPort: daemon.httpPort,
        apiKey: user.apiKey,
        token: user.token,
        mode,
        rate: RATE,
        durationMs,
        names: 1024,
        connections: mode === 'put' ? 128 : 32,
        warmupMs: ctx.quick ? 500 : 1000,
      } satisfies BulkConfig);
      await gen.ready();
      // Redis commands per change (INFO commandstats; EVALSHA counts once, what its script calls apart).
      await redis.config('RESETSTAT');
      const meter = new CpuMeter({ daemon: daemon.pid, redis: ctx.redis.pid, meilisearch: ctx.meili.pid });
      meter.begin();
      const t0 = performance.now();
      gen.go();
      const res = await gen.result(durationMs + 60_000);
      const cpu = meter.end();
      const calls = await redisCalls(redis);
      const wallMs = performance.now() - t0;
      cpu.generator = res.cpuPct;
      await gen.close();
      const x = res.result;
      if (!daemon.alive) throw new Error(`the daemon died:\n${daemon.logTail()}`);
      if (x.reached === 0) throw new Error(`${mode}: no change reached the device (${x.sent} sent, ${x.errors} errors, first ${x.firstError ?? '—'})`);
      ctx.log(
        `  ${label[mode]} run ${r + 1}: ${Math.round(x.reachedPerSecond).toLocaleString()} changes/s reached the device, ${x.reached}/${x.sent} reached (${x.offered} offered, ${x.skipped} not sent), ${x.answered} answered, ${x.errors} errors; → v: p50 ${ms(x.latency.p50)} p99 ${ms(x.latency.p99)} ms, daemon CPU ${(((cpu.daemon ?? 0) / 100) * wallMs * 1000 / Math.max(1, x.answered)).toFixed(0)} µs per answered change, ${(calls.total / Math.max(1, x.answered)).toFixed(2)} Redis commands per answered change (${JSON.stringify(calls.top)}), cpu ${JSON.stringify(cpu)}${x.firstError ? `, first error ${x.firstError}` : ''}`,
      );
      const run: BulkRun = { ...x, mode, cpu };
      mine.push(run);
      runs.push(run);
    }
    const perS = median(mine.map((m) => m.reachedPerSecond));
    const lost = mine.reduce((a, m) => a + (m.sent - m.reached), 0);
    const skipped = mine.reduce((a, m) => a + m.skipped, 0);
    rows.push({
      metric: `${label[mode]}, ${RATE.toLocaleString()} changes/s offered: changes reaching the device per second, sustained`,
      figure: perS,
      unit: 'changes/s',
      target: `≥ ${TARGET_PER_S.toLocaleString()}`,
      baseline: null,
      pass: perS >= TARGET_PER_S && lost === 0 && skipped === 0,
    });
    rows.push({
      metric: `${label[mode]} → device v:, p99 at ${RATE.toLocaleString()}/s offered (p50 ${ms(median(mine.map((m) => m.latency.p50)))} ms)`,
      figure: median(mine.map((m) => m.latency.p99)),
      unit: 'ms',
      target: '(informative)',
      baseline: null,
      pass: null,
      digits: 1,
    });
    if (lost > 0 || skipped > 0)
      notes.push(
        `${label[mode]}: ${lost.toLocaleString()} changes sent had not reached the device 5 s after the last was sent (counted with the time they had waited)` +
          (skipped ? `, and ${skipped.toLocaleString()} were not sent because every connection already had a backlog: the daemon did not keep up.` : '.'),
      );
  }
  redis.disconnect();
  notes.push('One worker (`observerio serve`), one API key, one device online, 1,024 variables; PUT over 128 keep-alive connections, set_var over 32 sockets (the daemon lets each have 64 frames waiting).');
  notes.push(
    "Each change that reaches the device is also a `change` entry of its log timeline (DESIGN.md §8), indexed by Meilisearch on the same cores: its CPU is in the CPU line above, beside the daemon's, Redis's and the generator's, which share the machine's cores with it.",
  );
  return {
    id: 'bulk',
    title: `Bulk changes: ${RATE.toLocaleString()} dashboard changes/s offered for ${durationMs / 1000} s, through PUT and through the WebSocket`,
    rows,
    cpu: medianCpu(runs),
    runs,
    notes,
  };
}
