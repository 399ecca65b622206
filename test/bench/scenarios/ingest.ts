/**
 * Scenario 1, ingest: many SDK connections stream `i:` lines as fast as they can; the figure is lines
 * per second from the first line until Redis holds every connection's last value. The same load runs
 * against the naive baseline (plain `net` + one ioredis `HSET` per line) in the same run.
 */
import type { Redis } from 'ioredis';
import type { BenchContext, ScenarioReport } from '../lib/context.js';
import { CpuMeter } from '../lib/proc.js';
import { median, sleep } from '../lib/stats.js';
import type { BenchUser } from '../lib/daemon.js';
import type { IngestConfig, IngestConn, IngestResult } from '../gen/ingest.js';

export interface IngestLoad {
  conns: number;
  keys: number;
  generators: number;
  durationMs: number;
}

export interface IngestRun {
  lines: number;
  seconds: number;
  linesPerSecond: number;
  /** CPU the server used per line, µs (robust to other load on the machine, unlike lines/s). */
  serverCpuUsPerLine: number | null;
  cpu: Record<string, number>;
  errors: number;
}

/** Splits `items` into `n` nearly equal parts. */
export function split<T>(items: T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: n }, () => []);
  items.forEach((it, i) => out[i % n]?.push(it));
  return out.filter((p) => p.length > 0);
}

/** Polls Redis until every connection's `<prefix>last` holds the sentinel; resolves with the time (ms). */
export async function waitForSentinels(redis: Redis, conns: IngestConn[], sentinel: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let left = conns;
  while (left.length > 0) {
    const pipe = redis.pipeline();
    for (const c of left) pipe.hget(`${c.apiKey}:vs`, `${c.prefix}last:value`);
    const res = (await pipe.exec()) ?? [];
    left = left.filter((_, i) => res[i]?.[1] !== sentinel);
    if (left.length === 0) break;
    if (performance.now() > deadline) throw new Error(`${left.length} of ${conns.length} connections' last values did not reach Redis within ${timeoutMs} ms`);
    await sleep(5);
  }
  return performance.now();
}

/** One measured run: generators stream to `port`, the clock stops when Redis has every last value. */
export async function ingestRun(
  ctx: BenchContext,
  redis: Redis,
  opts: { port: number; users: BenchUser[]; load: IngestLoad; tag: string; pids: Record<string, number | undefined>; sourceBase?: number },
): Promise<IngestRun> {
  const { load } = opts;
  const sentinel = `${opts.tag}-${Date.now()}`;
  const conns: IngestConn[] = Array.from({ length: load.conns }, (_, i) => ({
    apiKey: (opts.users[i % opts.users.length] as BenchUser).apiKey,
    deviceId: `dev${i}`,
    prefix: `${opts.tag}c${i}`,
  }));
  const gens = split(conns, load.generators).map((part, g) =>
    ctx.child<IngestResult>(`ingest-gen-${g}`, 'gen/ingest.ts', { port: opts.port, conns: part, durationMs: load.durationMs, sentinel, names: 8, blockLines: 1000, window: 3 } satisfies IngestConfig),
  );
  await Promise.all(gens.map((g) => g.ready()));
  const meter = new CpuMeter(opts.pids);
  meter.begin();
  const t0 = performance.now();
  for (const g of gens) g.go();
  const results = await Promise.all(gens.map((g) => g.result(load.durationMs + 30_000)));
  const t1 = await waitForSentinels(redis, conns, sentinel, 60_000);
  const cpu = meter.end();
  results.forEach((r, i) => (cpu[`generator ${i + 1}`] = r.cpuPct));
  await Promise.all(gens.map((g) => g.close()));
  const lines = results.reduce((a, r) => a + r.result.lines, 0);
  const errors = results.reduce((a, r) => a + r.result.errors, 0);
  if (errors > 0) throw new Error(`${opts.tag}: ${errors} error lines, first: ${results.find((r) => r.result.firstError)?.result.firstError}`);
  const seconds = (t1 - t0) / 1000;
  const server = cpu.daemon ?? cpu.baseline;
  const serverCpuUsPerLine = server === undefined ? null : Math.round(((server / 100) * seconds * 1e6 * 100) / lines) / 100;
  return { lines, seconds, linesPerSecond: Math.round(lines / seconds), serverCpuUsPerLine, cpu, errors };
}

export function medianCpu(runs: Array<{ cpu: Record<string, number> }>): Record<string, number> {
  const names = new Set(runs.flatMap((r) => Object.keys(r.cpu)));
  const out: Record<string, number> = {};
  for (const n of names) out[n] = median(runs.map((r) => r.cpu[n] ?? Number.NaN));
  return out;
}

export async function ingestScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const load: IngestLoad = ctx.quick ? { conns: 50, keys: 10, generators: 2, durationMs: 3000 } : { conns: 100, keys: 10, generators: 2, durationMs: 10_000 };
  const redis = ctx.redis.client();
  try {
    const daemon = await ctx.daemon('ingest');
    const users = await daemon.users('ingest', load.keys);
    const baseline = ctx.child<{ lines: number }, { port: number }>('naive-ingest', 'baselines/naive-ingest.ts', { redisUrl: ctx.redis.url });
    const { port: basePort } = await baseline.ready();
    baseline.go();
    const ours: IngestRun[] = [];
    const theirs: IngestRun[] = [];
    for (let r = 0; r < ctx.runs; r++) {
      const o = await ingestRun(ctx, redis, { port: daemon.tcpPort, users, load, tag: `o${r}`, pids: { daemon: daemon.pid, redis: ctx.redis.pid } });
      ctx.log(`  observerio run ${r + 1}: ${o.linesPerSecond.toLocaleString()} lines/s (${o.lines.toLocaleString()} lines in ${o.seconds.toFixed(2)} s, ${o.serverCpuUsPerLine} µs CPU/line) cpu ${JSON.stringify(o.cpu)}`);
      ours.push(o);
      const b = await ingestRun(ctx, redis, { port: basePort, users, load, tag: `b${r}`, pids: { baseline: baseline.pid, redis: ctx.redis.pid } });
      ctx.log(`  baseline   run ${r + 1}: ${b.linesPerSecond.toLocaleString()} lines/s (${b.lines.toLocaleString()} lines in ${b.seconds.toFixed(2)} s, ${b.serverCpuUsPerLine} µs CPU/line) cpu ${JSON.stringify(b.cpu)}`);
      theirs.push(b);
    }
    const figure = median(ours.map((r) => r.linesPerSecond));
    const base = median(theirs.map((r) => r.linesPerSecond));
    return {
      id: 'ingest',
      title: `Ingest: ${load.conns} connections, ${load.keys} keys, i: lines of 1 variable, ${load.durationMs / 1000} s`,
      rows: [{ metric: 'lines/s until Redis holds every last value', figure, unit: 'lines/s', target: '≥ 150,000 and ≥ 2× baseline', baseline: base, pass: figure >= 150_000 && figure >= 2 * base }],
      cpu: { ...prefixKeys('observerio: ', medianCpu(ours)), ...prefixKeys('baseline: ', medianCpu(theirs)) },
      runs: [...ours.map((r) => ({ server: 'observerio', ...r })), ...theirs.map((r) => ({ server: 'baseline', ...r }))],
      notes: [],
    };
  } finally {
    redis.disconnect();
  }
}

export function prefixKeys(prefix: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}${k}`, v]));
}
