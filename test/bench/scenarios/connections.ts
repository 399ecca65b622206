/**
 * Scenario 5, connections: 15,000 SDK connections opened and verified as fast as several generator
 * processes can (each from its own loopback source address, so ephemeral ports never run out), then
 * held. Figures: connections verified per second, and the daemon's resident memory per connection
 * (RSS with every connection open minus RSS before, over the count).
 */
import type { BenchContext, ScenarioReport } from '../lib/context.js';
import { CpuMeter, cpuMs, fdCount, rssBytes } from '../lib/proc.js';
import { redisCalls } from '../lib/redis-calls.js';
import { median, sleep } from '../lib/stats.js';
import type { ConnectionsConfig, ConnectionsResult } from '../gen/connections.js';
import { medianCpu } from './ingest.js';
import { readFileSync } from 'node:fs';

/** The process's CPU in the kernel (system calls, loopback TCP), ms; null when it is gone. */
function sysMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) * 1000) / 100;
  } catch {
    return null;
  }
}

/** Issue 14: raw Node `net` holds about 8 KB per idle socket. */
const TARGET_BYTES = 8 * 1024;
const TARGET_RATE = 5000;

interface ConnectionsRun {
  connections: number;
  perSecond: number;
  rssBefore: number;
  rssAfter: number;
  bytesPerConnection: number;
  heapPerConnection: number | null;
  /** Daemon CPU per connection accepted and verified, µs (robust to other load, unlike the rate). */
  daemonCpuUsPerConnection: number | null;
  /**
   * Daemon CPU per connection from the first connect until the daemon is idle again, µs: what the
   * connection cost in all (the client actors' store work after OK included), whatever the wall clock.
   */
  daemonCpuUsUntilIdle: number | null;
  /** How long after the last OK the daemon went idle (its client actors caught up), ms. */
  settleMs: number;
  /** Of daemonCpuUsUntilIdle, the part in the kernel (system time), µs. */
  daemonSysUsUntilIdle: number | null;
  /** Redis commands per connection from the first connect until the daemon is idle again (INFO commandstats; EVALSHA counts once). */
  redisCallsPerConnection: number;
  /** The most called commands over the run, in all. */
  redisTop: Record<string, number>;
  cpu: Record<string, number>;
}

/** Waits until the process uses under a tenth of a core over 250 ms; gives the ms waited. */
export async function untilIdle(pid: number, maxMs: number): Promise<number> {
  const t0 = Date.now();
  let last = cpuMs(pid) ?? 0;
  while (Date.now() - t0 < maxMs) {
    await sleep(250);
    const now = cpuMs(pid) ?? 0;
    if (now - last < 25) return Date.now() - t0 - 250;
    last = now;
  }
  return Date.now() - t0;
}

export async function connectionsScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const total = ctx.quick ? 6000 : 15_000;
  const procs = 3;
  const pace = Number(process.env.BENCH_CONNECT_RATE ?? 0);
  const runs: ConnectionsRun[] = [];
  const redis = ctx.redis.client();
  // Source addresses 127.<net>.<run>.<process>, <net> drawn per benchmark: a port still in TIME_WAIT
  // from an earlier run (60 s) makes binding to the same address slow, for the generators and the kernel.
  const net = 10 + Math.floor(Math.random() * 240);
  for (let r = 0; r < ctx.runs; r++) {
    // A fresh daemon per run, so "before" is a daemon that has never held these connections.
    const daemon = await ctx.daemon(`connections${r}`);
    const users = await daemon.users('conn', 10);
    // Warm-up: a few hundred connections through every code path, then closed again.
    const warm = ctx.child<ConnectionsResult>('connections-warmup', 'gen/connections.ts', {
      port: daemon.tcpPort,
      count: 500,
      apiKeys: users.map((u) => u.apiKey),
      devicePrefix: `w${r}-`,
      localAddress: `127.${net}.250.${r + 1}`,
      concurrency: 100,
    } satisfies ConnectionsConfig);
    await warm.ready();
    warm.go();
    await warm.result(60_000);
    await warm.close();
    await sleep(1500);
    const heap0 = await daemon.metric('observerio_nodejs_heap_size_used_bytes');
    const rssBefore = rssBytes(daemon.pid) ?? 0;
    const per = Math.ceil(total / procs);
    const gens = Array.from({ length: procs }, (_, g) =>
      ctx.child<ConnectionsResult>(`connections-${g}`, 'gen/connections.ts', {
        port: daemon.tcpPort,
        count: Math.min(per, total - g * per),
        apiKeys: users.map((u) => u.apiKey),
        devicePrefix: `r${r}g${g}-`,
        localAddress: `127.${net}.${r}.${2 + g}`,
        concurrency: 200,
        // BENCH_CONNECT_RATE=<connections/s over all generators> paces the storm (A/B runs of CPU per connection).
        ...(pace > 0 && { perSecond: pace / procs }),
      } satisfies ConnectionsConfig),
    );
    await Promise.all(gens.map((g) => g.ready()));
    const meter = new CpuMeter({ daemon: daemon.pid, redis: ctx.redis.pid });
    await redis.config('RESETSTAT');
    const cpu0 = cpuMs(daemon.pid);
    const sys0 = sysMs(daemon.pid);
    meter.begin();
    const t0 = Date.now();
    for (const g of gens) g.go();
    const results = await Promise.all(gens.map((g) => g.result(120_000)));
    const cpu = meter.end();
    results.forEach((x, i) => (cpu[`generator ${i + 1}`] = x.cpuPct));
    const verified = results.reduce((a, x) => a + x.result.verified, 0);
    const failed = results.reduce((a, x) => a + x.result.failed, 0);
    if (failed > 0) throw new Error(`${failed} connections failed, first: ${results.find((x) => x.result.firstError)?.result.firstError}`);
    const doneAt = Math.max(...results.map((x) => x.result.doneAt));
    // Let the daemon settle (client actors, device events) before reading its memory.
    const settleMs = await untilIdle(daemon.pid, 30_000);
    const cpuIdle = cpuMs(daemon.pid);
    const sysIdle = sysMs(daemon.pid);
    const calls = await redisCalls(redis, 8);
    await sleep(Math.max(0, 2000 - settleMs));
    const rssAfter = rssBytes(daemon.pid) ?? 0;
    const heap1 = await daemon.metric('observerio_nodejs_heap_size_used_bytes');
    const fds = fdCount(daemon.pid);
    const run: ConnectionsRun = {
      connections: verified,
      perSecond: Math.round((verified / (doneAt - t0)) * 1000),
      rssBefore,
      rssAfter,
      bytesPerConnection: Math.round((rssAfter - rssBefore) / verified),
      heapPerConnection: heap0 !== null && heap1 !== null ? Math.round((heap1 - heap0) / verified) : null,
      daemonCpuUsPerConnection: cpu.daemon === undefined ? null : Math.round(((cpu.daemon / 100) * (doneAt - t0) * 1000) / verified),
      daemonCpuUsUntilIdle: cpu0 === null || cpuIdle === null ? null : Math.round(((cpuIdle - cpu0) * 1000) / verified),
      daemonSysUsUntilIdle: sys0 === null || sysIdle === null ? null : Math.round(((sysIdle - sys0) * 1000) / verified),
      settleMs,
      redisCallsPerConnection: Math.round((calls.total / verified) * 100) / 100,
      redisTop: calls.top,
      cpu,
    };
    ctx.log(
      `  run ${r + 1}: ${verified.toLocaleString()} verified in ${doneAt - t0} ms = ${run.perSecond.toLocaleString()}/s (daemon ${run.daemonCpuUsPerConnection} µs CPU each, ${run.daemonCpuUsUntilIdle} µs until idle, ${run.daemonSysUsUntilIdle} µs of it system, ${settleMs} ms after the last OK); RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MiB = ${run.bytesPerConnection.toLocaleString()} B/connection (JS heap ${run.heapPerConnection?.toLocaleString() ?? '?'} B), ${fds} fds, Redis ${run.redisCallsPerConnection} commands each ${JSON.stringify(calls.top)}, cpu ${JSON.stringify(cpu)}`,
    );
    runs.push(run);
    await Promise.all(gens.map((g) => g.close(10_000)));
    await daemon.stop();
  }
  redis.disconnect();
  const rate = median(runs.map((r) => r.perSecond));
  const bytes = median(runs.map((r) => r.bytesPerConnection));
  return {
    id: 'connections',
    title: `Connections: ${total.toLocaleString()} concurrent verified SDK connections from ${procs} generator processes`,
    rows: [
      { metric: 'daemon memory (RSS) per connection', figure: bytes / 1024, unit: 'KB', target: '≤ 8 KB', baseline: null, pass: bytes <= TARGET_BYTES, digits: 1 },
      { metric: `connections verified/s (all ${total.toLocaleString()})`, figure: rate, unit: 'conn/s', target: `≥ ${TARGET_RATE.toLocaleString()}`, baseline: null, pass: rate >= TARGET_RATE },
    ],
    cpu: medianCpu(runs),
    runs,
    notes: [],
  };
}
