/**
 * Scenario 2, logs: devices send `l:` lines of 10 logs each at a fixed rate into Meilisearch through
 * the daemon's batching writer. Figures at the target rate (20,000 logs/s): the rate at which logs
 * became searchable while sending (Meilisearch's document count over the second half of the window)
 * and the p95 time from sending a probe log until `GET /api/logs` finds it. The same time is also
 * measured at a rate Meilisearch keeps up with on this machine, to show the pipeline's own latency.
 * The ratio to Meilisearch alone (measured first, same documents and settings) is taken at the target
 * rate, or, when Meilisearch alone outpaces the target rate by more than 1 / 0.9, offered 1.1×
 * Meilisearch alone for as long as it takes to send the same number of logs it indexed, with no
 * probe searching meanwhile (one more run with them shows what they cost).
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
/**
 * Offered logs per second per API key, at most: the daemon limits each key (limits.logsPerSecond,
 * 25,000 by default), so a faster run spreads its connections over several keys, as many games would.
 */
const PER_KEY_RATE = 20_000;
const CONNS = 10;

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
  batches: { count: number; tasks: number; sizes: number[]; busyMs: number; slowest: SlowBatch | null };
}

/** The run's longest indexing batch and where Meilisearch says its time went (its progressTrace, longest steps first). */
interface SlowBatch {
  uid: number;
  documents: number;
  ms: number;
  /** When it started, ms after the run's first log was sent. */
  startedAfterMs: number;
  steps: string;
  /** Meilisearch's whole progressTrace of it, as it answered. */
  trace: Record<string, string>;
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
async function indexingBatches(ctx: BenchContext, after: number, sentAt: number): Promise<LogsRun['batches']> {
  const res = await fetch(`${ctx.meili.url}/batches?limit=1000&indexUids=${INDEX}`, { headers: { authorization: `Bearer ${ctx.meili.masterKey}` } });
  const body = (await res.json()) as {
    results: Array<{ uid: number; stats: { totalNbTasks: number; progressTrace?: Record<string, string> }; details: { receivedDocuments?: number }; duration: string | null; startedAt: string }>;
  };
  const mine = body.results.filter((b) => b.uid > after && b.details.receivedDocuments !== undefined).reverse();
  const seconds = (d: string | null) => {
    const m = d ? /^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$/.exec(d) : null;
    return m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : 0;
  };
  const longest = mine.reduce<(typeof mine)[number] | null>((a, b) => (a === null || seconds(b.duration) > seconds(a.duration) ? b : a), null);
  // progressTrace: step name → duration ("12.34ms", "1.2s"); the leaves are what Meilisearch did.
  const ms = (d: string) => {
    const m = /^([\d.]+)(ms|s|µs|ns)$/.exec(d);
    return m ? Number(m[1]) * ({ ms: 1, s: 1000, 'µs': 1e-3, ns: 1e-6 }[m[2] as 'ms']) : 0;
  };
  const slowest: SlowBatch | null = longest
    ? {
        uid: longest.uid,
        documents: longest.details.receivedDocuments ?? 0,
        ms: Math.round(seconds(longest.duration) * 1000),
        startedAfterMs: Math.round(Date.parse(longest.startedAt) - sentAt),
        steps: Object.entries(longest.stats.progressTrace ?? {})
          .map(([step, d]) => [step, ms(d)] as const)
          .filter(([, d]) => d >= 20)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 6)
          .map(([step, d]) => `${step} ${Math.round(d)} ms`)
          .join('; '),
        trace: longest.stats.progressTrace ?? {},
      }
    : null;
  return {
    slowest,
    count: mine.length,
    tasks: mine.reduce((n, b) => n + b.stats.totalNbTasks, 0),
    sizes: mine.map((b) => b.details.receivedDocuments ?? 0),
    busyMs: Math.round(mine.reduce((n, b) => n + seconds(b.duration), 0) * 1000),
  };
}

async function logsRun(ctx: BenchContext, daemon: DaemonProcess, users: readonly BenchUser[], opts: { rate: number; durationMs: number; drainMs: number; tag: string; probes: boolean }): Promise<LogsRun> {
  const runWord = `run${opts.tag}${Math.random().toString(36).replace(/[^a-z]/g, '').slice(0, 6)}`;
  const gen = ctx.child<LogsResult>('logs-gen', 'gen/logs.ts', {
    port: daemon.tcpPort,
    http: daemon.http,
    // The probes go on the first key's connections and are searched with its user's token.
    token: users[0]!.token,
    conns: Array.from({ length: CONNS }, (_, i) => ({ apiKey: users[i % users.length]!.apiKey, deviceId: `logdev${i}` })),
    logsPerSecond: opts.rate,
    durationMs: opts.durationMs,
    runWord,
    probeEveryMs: opts.probes ? 100 : 0,
    pollMs: 50,
    drainMs: opts.drainMs,
  } satisfies LogsConfig);
  await gen.ready();
  const docs0 = (await indexStats(ctx)).documents;
  const batch0 = await lastBatchUid(ctx);
  const dropped0 = await daemon.metric('observerio_logs_dropped_total');
  const meter = new CpuMeter({ daemon: daemon.pid, meilisearch: ctx.meili.pid, redis: ctx.redis.pid });
  meter.begin();
  const t0 = performance.now();
  const sentAt = Date.now();
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
  const batches = await indexingBatches(ctx, batch0, sentAt);
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
  /** A run's plan; `key` names its runs in the report (several plans may share a rate). */
  interface Plan {
    key: 'target' | 'ceiling' | 'ceiling-probed' | 'low';
    rate: number;
    durationMs: number;
    drainMs: number;
    probes: boolean;
    runs: number;
  }
  const plans: Plan[] = [
    { key: 'target', rate: TARGET_RATE, durationMs: ctx.quick ? 4000 : 10_000, drainMs: ctx.quick ? 15_000 : 60_000, probes: true, runs: ctx.runs },
    { key: 'low', rate: low, durationMs: ctx.quick ? 3000 : 10_000, drainMs: ctx.quick ? 10_000 : 30_000, probes: true, runs: ctx.runs },
  ];
  // The ceiling first, in the same sitting: Meilisearch alone with these documents and settings, as
  // many as one run at the target rate sends (indexing slows as an index grows: fewer would flatter it).
  const alone = await meiliAlone(ctx, meiliAlonePlan(ctx.quick));
  const { best, bySize } = bestOf(alone);
  // The ratio asks whether the daemon carries logs at Meilisearch's own ceiling. Offered 20,000/s a
  // daemon reaches at most about 20,000/s, so when Meilisearch alone indexes more than 20,000 / 0.9
  // the target rate cannot tell: the ratio is then measured offered 1.1× Meilisearch alone, sending
  // as many logs as Meilisearch alone indexed (a bigger index indexes slower: more would be unfair).
  const ceiling = best && best.docsPerSecond > TARGET_RATE / TARGET_RATIO ? Math.ceil((best.docsPerSecond * 1.1) / 1000) * 1000 : null;
  if (ceiling !== null) {
    const target = plans[0]!;
    const ceilingPlan = { ...target, rate: ceiling, durationMs: Math.round((target.durationMs * TARGET_RATE) / ceiling) };
    // Without probes: Meilisearch alone answers no searches while it indexes, and the probes' poller
    // has the daemon search it 20 times a second; the times until searchable are the other runs'
    // rows. One run with the probes shows, in the notes, what they cost.
    plans.splice(1, 0, { ...ceilingPlan, key: 'ceiling', probes: false }, { ...ceilingPlan, key: 'ceiling-probed', probes: true, runs: 1 });
  }
  const daemon = await ctx.daemon('logs');
  const users = await daemon.users('logs', Math.min(CONNS, Math.ceil(Math.max(...plans.map((p) => p.rate)) / PER_KEY_RATE)));
  const byPlan = new Map<Plan['key'], LogsRun[]>();
  const notes: string[] = [];
  let n = 0;
  for (const plan of plans) {
    const runs: LogsRun[] = [];
    for (let r = 0; r < plan.runs; r++) {
      // Each run at the target rate starts on an empty index, as Meilisearch alone does on a fresh one.
      if (plan.key !== 'low') await clearIndex(ctx);
      const keys = Math.min(CONNS, Math.ceil(plan.rate / PER_KEY_RATE));
      const run = await logsRun(ctx, daemon, users.slice(0, keys), { ...plan, tag: String.fromCharCode(97 + n++) });
      ctx.log(
        `  ${plan.rate.toLocaleString()} logs/s${plan.key === 'ceiling-probed' ? ' with probes' : ''} run ${r + 1}: ${run.searchablePerSecond.toLocaleString()} logs/s from first sent to last searchable (${run.indexedPerSecond.toLocaleString()} logs/s indexed during the second half of sending); all ${run.sent.toLocaleString()} searchable ${run.allIndexedAfterMs === null ? `not within ${plan.drainMs / 1000} s of the end` : `after ${(run.allIndexedAfterMs / 1000).toFixed(1)} s`}; ${plan.probes ? `until searchable p50 ${run.latency.p50.toFixed(0)} p95 ${run.latency.p95.toFixed(0)} ms (${run.probes} probes found)` : 'no probes, no searches'}${run.dropped ? `, ${run.dropped} dropped` : ''}; cpu ${JSON.stringify(run.cpu)}; Meilisearch ${run.batches.count} indexing batches of ${run.batches.tasks} tasks (${run.batches.sizes.join(', ')} documents), busy ${(run.batches.busyMs / 1000).toFixed(1)} s${run.batches.slowest ? `; longest batch ${run.batches.slowest.ms} ms of ${run.batches.slowest.documents} documents, started ${run.batches.slowest.startedAfterMs} ms into the run (${run.batches.slowest.steps})` : ''}`,
      );
      runs.push(run);
    }
    byPlan.set(plan.key, runs);
    const notAll = runs.filter((x) => x.allIndexedAfterMs === null).length;
    if (notAll) notes.push(`At ${plan.rate.toLocaleString()} logs/s, ${notAll} of ${runs.length} runs were not all searchable within ${plan.drainMs / 1000} s after sending stopped.`);
  }
  const atTarget = byPlan.get('target') ?? [];
  const atLow = byPlan.get('low') ?? [];
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
  if (best) {
    const ratioRate = ceiling === null ? rate : median((byPlan.get('ceiling') ?? []).map((r) => r.searchablePerSecond));
    const offered =
      ceiling === null
        ? `offered ${TARGET_RATE.toLocaleString()}/s`
        : `offered ${ceiling.toLocaleString()}/s over ${Math.ceil(ceiling / PER_KEY_RATE)} API keys (1.1× Meilisearch alone, which outpaces ${TARGET_RATE.toLocaleString()}/s), searched by no probe, as Meilisearch alone is not: ${ratioRate.toLocaleString()} logs/s`;
    rows.splice(1, 0, {
      // The ratio is the figure; Meilisearch alone's docs/s goes into the words (a baseline cell would print it with the ratio's decimals).
      metric: `logs/s first sent to last searchable, ${offered}, against Meilisearch alone (${best.docsPerSecond.toLocaleString()} docs/s in batches of ${best.batchSize.toLocaleString()})`,
      figure: ratioRate / best.docsPerSecond,
      unit: '×',
      target: `≥ ${TARGET_RATIO}× Meilisearch alone`,
      baseline: null,
      pass: ratioRate / best.docsPerSecond >= TARGET_RATIO,
      digits: 2,
    });
    const probed = byPlan.get('ceiling-probed')?.[0];
    if (ceiling !== null && probed)
      notes.push(
        `The ratio's runs send no probes and nothing searches meanwhile, as nothing searches Meilisearch alone; one more run offered ${ceiling.toLocaleString()}/s with the probes (a search every 50 ms): ${probed.searchablePerSecond.toLocaleString()} logs/s (${(probed.searchablePerSecond / best.docsPerSecond).toFixed(2)}×), until searchable p95 ${probed.latency.p95.toFixed(0)} ms.`,
      );
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
    runs: [...atTarget, ...(byPlan.get('ceiling') ?? []), ...(byPlan.get('ceiling-probed') ?? []), ...atLow, ...alone],
    notes,
  };
}
