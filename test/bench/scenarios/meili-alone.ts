/**
 * Meilisearch alone: the ceiling the logs scenario is judged against. The same documents the daemon
 * writes (gateway-shaped entries with the bench's log text, turned into documents by the daemon's own
 * meiliDocument), into a fresh index with the daemon's settings (MEILI_LOG_SETTINGS), as NDJSON
 * batches of a few sizes straight to its HTTP API: every batch enqueued at once, so Meilisearch
 * batches its queue as it likes, and timed from the first POST until the last task has succeeded.
 * That is what Meilisearch indexes on this machine with nothing in front of it.
 */
import { MEILI_LOG_SETTINGS, meiliDocument } from '../../../src/log-index/meili-log-index.js';
import { prng } from '../../../src/cli/simulated-device.js';
import type { LogEntry } from '../../../src/model.js';
import type { BenchContext, ScenarioReport } from '../lib/context.js';
import { CpuMeter } from '../lib/proc.js';
import { sleep } from '../lib/stats.js';
import { LINES_PER_POOL, LOGS_PER_LINE, logPools } from '../lib/log-text.js';

export interface MeiliAloneRun {
  batchSize: number;
  docs: number;
  ms: number;
  docsPerSecond: number;
  cpu: Record<string, number>;
}

const TASK_POLL_MS = 50;

async function meili(ctx: BenchContext, method: string, path: string, body?: string, contentType = 'application/json'): Promise<unknown> {
  const res = await fetch(`${ctx.meili.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ctx.meili.masterKey}`, ...(body !== undefined && { 'content-type': contentType }) },
    ...(body !== undefined && { body }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`meilisearch ${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

async function waitTask(ctx: BenchContext, uid: number, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = (await meili(ctx, 'GET', `/tasks/${uid}`)) as { status: string; error?: unknown };
    if (t.status === 'succeeded') return;
    if (t.status === 'failed' || t.status === 'canceled') throw new Error(`meilisearch task ${uid} ${t.status}: ${JSON.stringify(t.error)}`);
    if (Date.now() > deadline) throw new Error(`meilisearch task ${uid} still ${t.status} after ${timeoutMs} ms`);
    await sleep(TASK_POLL_MS);
  }
}

/**
 * `count` documents as the daemon makes them from the logs generator's `l:` lines: the same logs (its
 * pools, see logPools), in the order it sends them (line n from connection n % 10, its pool's line
 * n % 200), 10 devices, ids `<ms>-<node>-<seq>`, about 20 logs per millisecond as at 20,000 logs/s.
 */
export function benchDocuments(count: number, apiKey = 'BenchAlone01'): string[] {
  const conns = 10;
  const t0 = Date.now();
  const pools = logPools(conns, prng(42), t0);
  const node = 'bench-alone-0';
  const out: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const line = Math.floor(i / LOGS_PER_LINE);
    const log = pools[line % conns]![line % LINES_PER_POOL]![i % LOGS_PER_LINE]!;
    const receivedAt = t0 + Math.floor(i / 20);
    const { message, level, timestamp, ...fields } = log;
    const entry: LogEntry = {
      id: `${receivedAt}-${node}-${i.toString(36)}`,
      apiKey,
      deviceId: `logdev${line % conns}`,
      level,
      message,
      timestamp,
      receivedAt,
      fields,
    };
    out[i] = JSON.stringify(meiliDocument(entry));
  }
  return out;
}

/** One measurement per batch size, each on a fresh index that is deleted afterwards. */
export async function meiliAlone(ctx: BenchContext, opts: { batchSizes: readonly number[]; docs: number }): Promise<MeiliAloneRun[]> {
  const lines = benchDocuments(opts.docs);
  const out: MeiliAloneRun[] = [];
  for (const batchSize of opts.batchSizes) {
    const index = `bench-meili-alone-${batchSize}-${Math.random().toString(36).slice(2, 8)}`;
    await waitTask(ctx, ((await meili(ctx, 'POST', '/indexes', JSON.stringify({ uid: index, primaryKey: 'id' }))) as { taskUid: number }).taskUid);
    await waitTask(ctx, ((await meili(ctx, 'PATCH', `/indexes/${index}/settings`, JSON.stringify(MEILI_LOG_SETTINGS))) as { taskUid: number }).taskUid);
    const bodies: string[] = [];
    for (let i = 0; i < lines.length; i += batchSize) bodies.push(lines.slice(i, i + batchSize).join('\n'));
    const meter = new CpuMeter({ meilisearch: ctx.meili.pid });
    meter.begin();
    const t0 = performance.now();
    let last = -1;
    for (const body of bodies) {
      last = ((await meili(ctx, 'POST', `/indexes/${index}/documents?primaryKey=id`, body, 'application/x-ndjson')) as { taskUid: number }).taskUid;
    }
    await waitTask(ctx, last);
    const ms = performance.now() - t0;
    const cpu = meter.end();
    const stats = (await meili(ctx, 'GET', `/indexes/${index}/stats`)) as { numberOfDocuments: number };
    if (stats.numberOfDocuments !== lines.length) throw new Error(`meilisearch alone: ${stats.numberOfDocuments} of ${lines.length} documents indexed`);
    await waitTask(ctx, ((await meili(ctx, 'DELETE', `/indexes/${index}`)) as { taskUid: number }).taskUid);
    const run = { batchSize, docs: lines.length, ms: Math.round(ms), docsPerSecond: Math.round((lines.length / ms) * 1000), cpu };
    ctx.log(`  Meilisearch alone, batches of ${batchSize.toLocaleString()}: ${run.docs.toLocaleString()} documents in ${run.ms} ms = ${run.docsPerSecond.toLocaleString()} docs/s; cpu ${JSON.stringify(cpu)}`);
    out.push(run);
  }
  return out;
}

export function meiliAlonePlan(quick: boolean): { batchSizes: number[]; docs: number } {
  // As many documents as one run of the logs scenario at 20,000 logs/s sends (4 s QUICK, 10 s full).
  return quick ? { batchSizes: [1000, 5000], docs: 80_000 } : { batchSizes: [250, 1000, 2000, 5000, 10_000], docs: 200_000 };
}

/** The best of each batch size over the runs, and the best overall. */
export function bestOf(runs: readonly MeiliAloneRun[]): { best: MeiliAloneRun | null; bySize: Map<number, number> } {
  const bySize = new Map<number, number>();
  let best: MeiliAloneRun | null = null;
  for (const r of runs) {
    bySize.set(r.batchSize, Math.max(bySize.get(r.batchSize) ?? 0, r.docsPerSecond));
    if (!best || r.docsPerSecond > best.docsPerSecond) best = r;
  }
  return { best, bySize };
}

export async function meiliAloneScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const plan = meiliAlonePlan(ctx.quick);
  const runs: MeiliAloneRun[] = [];
  for (let r = 0; r < ctx.runs; r++) runs.push(...(await meiliAlone(ctx, plan)));
  const { bySize } = bestOf(runs);
  return {
    id: 'meili-alone',
    title: `Meilisearch alone: ${plan.docs.toLocaleString()} of the logs scenario's documents with the daemon's index settings, straight to its HTTP API`,
    rows: [...bySize].map(([size, rate]) => ({ metric: `docs/s indexed, batches of ${size.toLocaleString()}`, figure: rate, unit: 'docs/s', target: '(informative)', baseline: null, pass: null })),
    cpu: {},
    runs,
    notes: ['Every batch is enqueued at once (Meilisearch merges queued additions into one indexing batch); timed from the first POST to the last task succeeded. The logs scenario measures this too, in the same sitting, for its ratio.'],
  };
}
