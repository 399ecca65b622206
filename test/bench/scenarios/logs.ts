/**
 * Scenario 2, logs: devices send `l:` lines of 10 logs each at a fixed rate into Meilisearch through
 * the daemon's batching writer. Figures at the target rate (20,000 logs/s): the rate at which logs
 * became searchable while sending (Meilisearch's document count over the second half of the window)
 * and the p95 time from sending a probe log until `GET /api/logs` finds it. The same time is also
 * measured at a rate Meilisearch keeps up with on this machine, to show the pipeline's own latency.
 */
import type { BenchContext, Row, ScenarioReport } from '../lib/context.js';
import type { DaemonProcess, BenchUser } from '../lib/daemon.js';
import { CpuMeter } from '../lib/proc.js';
import { median, sleep, type LatencySummary } from '../lib/stats.js';
import type { LogsConfig, LogsResult } from '../gen/logs.js';
import { medianCpu } from './ingest.js';
import { bestOf, meiliAlone, meiliAlonePlan } from './meili-alone.js';

const TARGET_RATE = 20_000;
const TARGET_P95_MS = 2000;
/** The daemon's rate from first sent to last searchable against what Meilisearch alone indexes. */
const TARGET_RATIO = 0.9;
const TARGET_LOW_P95_MS = 1500;
const INDEX = 'observerio-logs';

interface LogsRun {
  offered: number;
  sent: number;
  durationMs: number;
  /** Logs per second from the first sent until the last was searchable (or the drain gave up). */
  searchablePerSecond: number;
  /** Meilisearch's document count over the second half of the sending window (bursty: it indexes in batches). */
  indexedPerSecond: number;
  allIndexedAfterMs: number | null;
  latency: LatencySummary;
  probes: string;
  dropped: number | null;
  cpu: Record<string, number>;
  /** Meilisearch's indexing batches of the daemon's index during the run: how it merged the daemon's writes. */
  batches: { count: number; tasks: number; sizes: number[]; busyMs: number };
}

async function indexStats(ctx: BenchContext): Promise<{ documents: number; indexing: boolean }> {
  const res = await fetch(`${ctx.meili.url}/indexes/${INDEX}/stats`, { headers: { authorization: `Bearer ${ctx.meili.masterKey}` } });
  if (res.status === 404) return { documents: 0, indexing: false };
  if (!res.ok) throw new Error(`meilisearch stats: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { numberOfDocuments: number; isIndexing: boolean };
  return { documents: body.numberOfDocuments, indexing: body.isIndexing };
}

/** Deletes every document of the daemon's index (the index and its settings stay) and waits until it is done. */
async function clearIndex(ctx: BenchContext): Promise<void> {
  const headers = { authorization: `Bearer ${ctx.meili.masterKey}` };
  const res = await fetch(`${ctx.meili.url}/indexes/${INDEX}/documents`, { method: 'DELETE', headers });
  if (res.status === 404) return;
  if (!res.ok) throw new Error(`meilisearch clear: ${res.status} ${await res.text()}`);
  const { taskUid } = (await res.json()) as { taskUid: number };
  for (;;) {
    const t = (await (await fetch(`${ctx.meili.url}/tasks/${taskUid}`, { headers })).json()) as { status: string };
    if (t.status === 'succeeded') return;
    if (t.status === 'failed' || t.status === 'canceled') throw new Error(`meilisearch clear: task ${taskUid} ${t.status}`);
    await sleep(50);
  }
}

async function lastBatchUid(ctx: BenchContext): Promise<number> {
  const res = await fetch(`${ctx.meili.url}/batches?limit=1`, { headers: { authorization: `Bearer ${ctx.meili.masterKey}` } });
  const body = (await res.json()) as { results: Array<{ uid: number }> };
  return body.results[0]?.uid ?? -1;
}

/** The daemon index's batches after `after`: how many, how many tasks and documents each, time spent processing. */
async function indexingBatches(ctx: BenchContext, after: number): Promise<LogsRun['batches']> {
  const res = await fetch(`${ctx.meili.url}/batches?limit=1000&indexUids=${INDEX}`, { headers: { authorization: `Bearer ${ctx.meili.masterKey}` } });
  const body = (await res.json()) as { results: Array<{ uid: number; stats: { totalNbTasks: number }; details: { receivedDocuments?: number }; duration: string | null }> };
  const mine = body.results.filter((b) => b.uid > after && b.details.receivedDocuments !== undefined).reverse();
  const seconds = (d: string | null) => {
    const m = d ? /^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$/.exec(d) : null;
    return m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : 0;
  };
  return {
    count: mine.length,
    tasks: mine.reduce((n, b) => n + b.stats.totalNbTasks, 0),
    sizes: mine.map((b) => b.details.receivedDocuments ?? 0),
    busyMs: Math.round(mine.reduce((n, b) => n + seconds(b.duration), 0) * 1000),
  };
}

async function logsRun(ctx: BenchContext, daemon: DaemonProcess, user: BenchUser, opts: { rate: number; durationMs: number; drainMs: number; tag: string }): Promise<LogsRun> {
  const runWord = `run${opts.tag}${Math.random().toString(36).replace(/[^a-z]/g, '').slice(0, 6)}`;
  const gen = ctx.child<LogsResult>('logs-gen', 'gen/logs.ts', {
    port: daemon.tcpPort,
    http: daemon.http,
    token: user.token,
    conns: Array.from({ length: 10 }, (_, i) => ({ apiKey: user.apiKey, deviceId: `logdev${i}` })),
    logsPerSecond: opts.rate,
    durationMs: opts.durationMs,
    runWord,
    probeEveryMs: 100,
    pollMs: 50,
    drainMs: opts.drainMs,
  } satisfies LogsConfig);
  await gen.ready();
  const docs0 = (await indexStats(ctx)).documents;
  const batch0 = await lastBatchUid(ctx);
  const dropped0 = await daemon.metric('observerio_logs_dropped_total');
  const meter = new CpuMeter({ daemon: daemon.pid, meilisearch: ctx.meili.pid });
  meter.begin();
  const t0 = performance.now();
  gen.go();
  // Document counts while sending: their rate over the second half is what the index sustains.
  const samples: Array<[number, number]> = [];
  const resultP = gen.result(opts.durationMs + opts.drainMs + 30_000);
  let finished = false;
  resultP.then(
    () => (finished = true),
    () => (finished = true),
  );
  while (!finished && performance.now() - t0 < opts.durationMs + 2000) {
    samples.push([performance.now() - t0, (await indexStats(ctx)).documents - docs0]);
    await sleep(250);
  }
  const res = await resultP;
  const cpu = meter.end();
  cpu.generator = res.cpuPct;
  await gen.close();
  // Then until every log sent is searchable (bounded), so the next run starts on an idle index.
  let allIndexedAt: number | null = null;
  let indexed = 0;
  const drainDeadline = performance.now() + opts.drainMs;
  for (;;) {
    indexed = (await indexStats(ctx)).documents - docs0;
    if (indexed >= res.result.logs) {
      allIndexedAt = performance.now() - t0;
      break;
    }
    if (performance.now() > drainDeadline) break;
    await sleep(50);
  }
  const until = allIndexedAt ?? performance.now() - t0;
  const half = samples.filter(([t]) => t >= opts.durationMs / 2 && t <= opts.durationMs);
  const a = half[0];
  const b = half[half.length - 1];
  const dropped1 = await daemon.metric('observerio_logs_dropped_total');
  const batches = await indexingBatches(ctx, batch0);
  return {
    offered: opts.rate,
    sent: res.result.logs,
    durationMs: opts.durationMs,
    searchablePerSecond: Math.round((Math.min(indexed, res.result.logs) / until) * 1000),
    indexedPerSecond: a && b && b[0] > a[0] ? Math.round(((b[1] - a[1]) / (b[0] - a[0])) * 1000) : 0,
    allIndexedAfterMs: allIndexedAt === null ? null : Math.round(allIndexedAt),
    latency: res.result.latency,
    probes: `${res.result.probesFound}/${res.result.probesSent}`,
    dropped: dropped0 === null || dropped1 === null ? null : dropped1 - dropped0,
    cpu,
    batches,
  };
}

export async function logsScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const low = Number(process.env.BENCH_LOGS_LOW_RATE ?? 2000);
  const plans = [
    { rate: TARGET_RATE, durationMs: ctx.quick ? 4000 : 10_000, drainMs: ctx.quick ? 15_000 : 60_000 },
    { rate: low, durationMs: ctx.quick ? 3000 : 10_000, drainMs: ctx.quick ? 10_000 : 30_000 },
  ];
  // The ceiling first, in the same sitting: Meilisearch alone with these documents and settings, as
  // many as one run at the target rate sends (indexing slows as an index grows: fewer would flatter it).
  const alone = await meiliAlone(ctx, meiliAlonePlan(ctx.quick));
  const daemon = await ctx.daemon('logs');
  const [user] = await daemon.users('logs', 1);
  if (!user) throw new Error('no user');
  const byRate = new Map<number, LogsRun[]>();
  const notes: string[] = [];
  let n = 0;
  for (const plan of plans) {
    const runs: LogsRun[] = [];
    for (let r = 0; r < ctx.runs; r++) {
      // Each run at the target rate starts on an empty index, as Meilisearch alone does on a fresh one.
      if (plan.rate === TARGET_RATE) await clearIndex(ctx);
      const run = await logsRun(ctx, daemon, user, { ...plan, tag: String.fromCharCode(97 + n++) });
      ctx.log(
        `  ${plan.rate.toLocaleString()} logs/s run ${r + 1}: ${run.searchablePerSecond.toLocaleString()} logs/s from first sent to last searchable (${run.indexedPerSecond.toLocaleString()} logs/s indexed during the second half of sending); all ${run.sent.toLocaleString()} searchable ${run.allIndexedAfterMs === null ? `not within ${plan.drainMs / 1000} s of the end` : `after ${(run.allIndexedAfterMs / 1000).toFixed(1)} s`}; until searchable p50 ${run.latency.p50.toFixed(0)} p95 ${run.latency.p95.toFixed(0)} ms (${run.probes} probes found)${run.dropped ? `, ${run.dropped} dropped` : ''}; cpu ${JSON.stringify(run.cpu)}; Meilisearch ${run.batches.count} indexing batches of ${run.batches.tasks} tasks (${run.batches.sizes.join(', ')} documents), busy ${(run.batches.busyMs / 1000).toFixed(1)} s`,
      );
      runs.push(run);
    }
    byRate.set(plan.rate, runs);
    const notAll = runs.filter((x) => x.allIndexedAfterMs === null).length;
    if (notAll) notes.push(`At ${plan.rate.toLocaleString()} logs/s, ${notAll} of ${runs.length} runs were not all searchable within ${plan.drainMs / 1000} s after sending stopped.`);
  }
  const atTarget = byRate.get(TARGET_RATE) ?? [];
  const atLow = byRate.get(low) ?? [];
  const rate = median(atTarget.map((r) => r.searchablePerSecond));
  const keptUp = atTarget.filter((r) => r.allIndexedAfterMs !== null && r.allIndexedAfterMs <= r.durationMs + TARGET_P95_MS).length;
  const p95 = median(atTarget.map((r) => r.latency.p95));
  const p95Low = median(atLow.map((r) => r.latency.p95));
  const rows: Row[] = [
    {
      metric: `logs/s from first sent to last searchable, offered ${TARGET_RATE.toLocaleString()}/s`,
      figure: rate,
      unit: 'logs/s',
      target: `≥ ${TARGET_RATE.toLocaleString()} sustained (all searchable ≤ 2 s after the last is sent)`,
      baseline: null,
      pass: keptUp * 2 > atTarget.length,
    },
    { metric: `time until searchable at ${TARGET_RATE.toLocaleString()} logs/s, p95`, figure: p95, unit: 'ms', target: `≤ ${TARGET_P95_MS.toLocaleString()}`, baseline: null, pass: p95 <= TARGET_P95_MS },
    { metric: `time until searchable at ${low.toLocaleString()} logs/s, p95`, figure: p95Low, unit: 'ms', target: `≤ ${TARGET_LOW_P95_MS.toLocaleString()}`, baseline: null, pass: p95Low <= TARGET_LOW_P95_MS },
  ];
  const { best, bySize } = bestOf(alone);
  if (best) {
    rows.splice(1, 0, {
      // The ratio is the figure; Meilisearch alone's docs/s goes into the words (a baseline cell would print it with the ratio's decimals).
      metric: `logs/s first sent to last searchable, offered ${TARGET_RATE.toLocaleString()}/s, against Meilisearch alone (${best.docsPerSecond.toLocaleString()} docs/s in batches of ${best.batchSize.toLocaleString()})`,
      figure: rate / best.docsPerSecond,
      unit: '×',
      target: `≥ ${TARGET_RATIO}× Meilisearch alone`,
      baseline: null,
      pass: rate / best.docsPerSecond >= TARGET_RATIO,
      digits: 2,
    });
    notes.push(`Meilisearch alone (the same ${alone[0]!.docs.toLocaleString()} logs one run at ${TARGET_RATE.toLocaleString()}/s sends, same index settings, a fresh index, every batch enqueued at once, this sitting; each run at ${TARGET_RATE.toLocaleString()}/s starts on an emptied index likewise): ${[...bySize].map(([size, r]) => `${r.toLocaleString()} docs/s in batches of ${size.toLocaleString()}`).join(', ')}.`);
  }
  notes.push(
    `The rate is every log sent over the time from the first sent until Meilisearch holds them all; sustaining ${TARGET_RATE.toLocaleString()}/s means all are searchable within 2 s of the last being sent (then the rate is at least ${TARGET_RATE.toLocaleString()} × sending time / (sending time + 2 s)). Time until searchable: a probe log every 100 ms, found by polling GET /api/logs every 50 ms.`,
  );
  return {
    id: 'logs',
    title: `Logs: 10 connections, l: lines of 10 logs, at ${TARGET_RATE.toLocaleString()} and ${low.toLocaleString()} logs/s, into Meilisearch`,
    rows,
    cpu: medianCpu(atTarget),
    runs: [...atTarget, ...atLow, ...alone],
    notes,
  };
}
