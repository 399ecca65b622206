/**
 * `make bench`: starts a private Redis and Meilisearch, then runs each scenario of issue 6 against the
 * daemon in its own process (the built CLI), with load generators and baselines in processes of their
 * own, and writes bench/results/<timestamp>.md and .json (and latest.md).
 *
 * QUICK=1 runs every scenario once, for a few seconds, with smaller counts. A missed target prints
 * MISSED and still exits 0; a scenario that fails to run exits non-zero.
 * BENCH_ONLY=ingest,logs picks scenarios; BENCH_PROFILE=1 writes the daemon's CPU profiles.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEILI_INDEXING_MEMORY, meiliBinary, startMeiliServer, startRedisServer } from '../helpers/processes.js';
import { createContext, type BenchContext, type ScenarioReport } from './lib/context.js';
import { REPO } from './lib/daemon.js';
import { machine, writeReports } from './lib/report.js';
import { fmt } from './lib/stats.js';
import { dashboardScenario } from './dashboard-longtasks.js';
import { bulkScenario } from './scenarios/bulk.js';
import { connectionsScenario } from './scenarios/connections.js';
import { fanoutScenario } from './scenarios/fanout.js';
import { ingestScenario } from './scenarios/ingest.js';
import { latencyScenario } from './scenarios/latency.js';
import { logsScenario } from './scenarios/logs.js';
import { meiliAloneScenario } from './scenarios/meili-alone.js';
import { idleScenario } from './scenarios/idle.js';
import { overridesScenario } from './scenarios/overrides.js';
import { supervisionScenario } from './scenarios/supervision.js';
import { scaleScenario } from './scenarios/scale.js';

type Scenario = (ctx: BenchContext) => Promise<Omit<ScenarioReport, 'seconds'>>;

const SCENARIOS: Array<[string, Scenario]> = [
  ['ingest', ingestScenario],
  ['logs', logsScenario],
  // Issue 14: the logs scenario's ceiling on its own, and idle connections past one process's file limit.
  ['meili-alone', meiliAloneScenario],
  ['idle', idleScenario],
  ['fan-out', fanoutScenario],
  ['latency', latencyScenario],
  ['overrides', overridesScenario],
  // Issue 14: dashboard changes at 10,000/s through PUT and the WebSocket.
  ['bulk', bulkScenario],
  ['connections', connectionsScenario],
  ['supervision', supervisionScenario],
  ['dashboard', dashboardScenario],
  ['scale', scaleScenario],
];

/** Longest one scenario may take before it is reported as an error. */
const SCENARIO_TIMEOUT_MS = { quick: 120_000, full: 900_000 };

function version(cmd: string, args: string[], re: RegExp): string {
  try {
    return re.exec(execFileSync(cmd, args, { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(t));
}

async function main(): Promise<number> {
  const quick = process.env.QUICK === '1' || process.env.QUICK === 'true';
  const runs = quick ? 1 : Number(process.env.BENCH_RUNS ?? 3);
  const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
  const started = performance.now();
  const loadBefore = loadavg()[0] ?? 0;
  const log = (msg: string): void => void process.stdout.write(`${msg}\n`);
  log(`observerio bench${quick ? ' (QUICK)' : ''}: ${runs} run(s) per scenario`);
  const workDir = mkdtempSync(join(tmpdir(), 'observerio-bench-'));
  // BENCH_MEILI_ARGS adds Meilisearch flags, e.g. `--max-indexing-memory 16GiB` to compare with its default.
  const meiliArgs = (process.env.BENCH_MEILI_ARGS ?? '').split(/\s+/).filter((a) => a.length > 0);
  const [redis, meili] = await Promise.all([startRedisServer(), startMeiliServer(meiliArgs)]);
  const reports: ScenarioReport[] = [];
  let failed = false;
  try {
    const ctx = createContext({ quick, runs, redis, meili, workDir, profile: process.env.BENCH_PROFILE === '1', log });
    for (const [id, scenario] of SCENARIOS) {
      if (only && !only.has(id)) continue;
      log(`\n== ${id}`);
      const t0 = performance.now();
      try {
        const r = await withTimeout(scenario(ctx), quick ? SCENARIO_TIMEOUT_MS.quick : SCENARIO_TIMEOUT_MS.full, `scenario ${id}`);
        const report = { ...r, seconds: (performance.now() - t0) / 1000 };
        reports.push(report);
        for (const row of r.rows) {
          const verdict = row.pass === null ? '' : row.pass ? 'pass' : 'MISSED';
          log(`  ${row.metric}: ${fmt(row.figure, row.digits ?? 0)} ${row.unit} (target ${row.target}${row.baseline === null ? '' : `, baseline ${fmt(row.baseline, row.digits ?? 0)}`}) ${verdict}`);
        }
      } catch (err) {
        failed = true;
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
        log(`  ERROR: ${message}`);
        reports.push({ id, title: id, rows: [], cpu: {}, runs: [], notes: [], error: message, seconds: (performance.now() - t0) / 1000 });
      } finally {
        await ctx.cleanup();
      }
    }
  } finally {
    await Promise.all([redis.stop(), meili.stop()]);
    if (process.env.BENCH_PROFILE !== '1' && process.env.BENCH_KEEP !== '1') rmSync(workDir, { recursive: true, force: true });
    else log(`profiles and daemon logs kept in ${workDir}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const m = machine(REPO, {
    redis: version('redis-server', ['--version'], /v=(\S+)/),
    // The flag that decides its per-batch cost goes into the header with the version.
    meilisearch: `${version(meiliBinary(), ['--version'], /meilisearch (\S+)/)} (--max-indexing-memory ${meiliArgs.includes('--max-indexing-memory') ? meiliArgs[meiliArgs.indexOf('--max-indexing-memory') + 1] : MEILI_INDEXING_MEMORY})`,
  }, loadBefore);
  // A run of some scenarios (BENCH_ONLY) or with other run counts leaves latest.md alone.
  const complete = only === null && (quick || runs === 3);
  const files = writeReports(join(REPO, 'bench', 'results'), m, reports, { quick, runs, seconds }, complete);
  log(`\nwrote ${files.md} and ${files.json} (${Math.round(seconds)} s)`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
