/**
 * Scenario (issue 12), scale-out: the ingest and fan-out loads of scenarios 1 and 3 against
 * (a) one daemon and `serve --workers 2` on the bench's one Redis, side by side in one sitting, the
 * figure of 2 workers given as a ratio to 1; (b) two daemon processes (two nodes on ports of their
 * own) on a local Redis Cluster of three masters, the connections and WebSockets split across the
 * nodes. Then devices of one key split across the nodes, each with two labels and 10 variables, get
 * dashboard changes made on the first node: every device on both nodes must receive each (the hard
 * check), and Redis's memory (INFO used_memory, before the devices and with them online) gives the
 * bytes one device costs it. Every process's CPU is reported: on a 2-core machine the generators
 * share the cores the workers would use.
 */
import { cpus } from 'node:os';
import { Cluster, Redis } from 'ioredis';
import { startRedisCluster, type RedisCluster } from '../../helpers/processes.js';
import type { BenchContext, Row, ScenarioReport } from '../lib/context.js';
import type { BenchUser, DaemonProcess } from '../lib/daemon.js';
import { CpuMeter, machineCpuMs } from '../lib/proc.js';
import { median, sleep } from '../lib/stats.js';
import type { IngestConfig, IngestConn, IngestResult } from '../gen/ingest.js';
import type { ScaleDevicesConfig, ScaleDevicesResult } from '../gen/scale-devices.js';
import type { WsClientsConfig, WsClientsResult } from '../gen/ws-clients.js';
import { medianCpu, prefixKeys, split } from './ingest.js';

const ADMIN_TOKEN = 'bench-admin-token-0123456789';

/** One deployment under test: its nodes' ports, the processes that count as "the daemon", and its Redis. */
interface Target {
  label: string;
  tcpPorts: number[];
  httpPorts: number[];
  /** Daemon processes (primary, workers, nodes): their CPU summed is the server's. */
  servers: Record<string, number>;
  /** Redis processes (one server, or the cluster's masters). */
  redisPids: Record<string, number | undefined>;
  redis: Redis | Cluster;
  /** Plain clients of the Redis processes holding data (INFO, CONFIG RESETSTAT). */
  redisNodes: Redis[];
  /** INFO used_memory summed over the Redis processes holding data. */
  usedMemory(): Promise<number>;
}

interface IngestRun {
  lines: number;
  seconds: number;
  linesPerSecond: number;
  /** CPU all daemon processes used per line, µs. */
  serverCpuUsPerLine: number;
  cpu: Record<string, number>;
}

interface FanoutRun {
  seconds: number;
  updatesPerSecond: number;
  framesPerSecond: number;
  closed: number;
  cpu: Record<string, number>;
}

interface DevicesRun {
  devices: number;
  perNode: number[];
  registeredMs: number;
  bytesPerDevice: number;
  bytesPerDeviceAfterChanges: number;
  rounds: ScaleDevicesResult['rounds'];
  allReached: boolean;
  cpu: Record<string, number>;
  /** Devices online and silent: the daemon's whole CPU (an upper bound: its timers count too) and Redis's command time per device per second (heartbeats). */
  idle: { seconds: number; cpu: Record<string, number>; daemonUsPerDeviceSecond: number; redisUsPerDeviceSecond: number; redisTop: string };
  /** Paced reports: daemon CPU (above the idle phase's) and Redis command time per `i:` report. */
  report: { reports: number; seconds: number; offeredPerSecond: number; cpu: Record<string, number>; daemonUsPerReport: number; redisUsPerReport: number; redisTop: string };
}

/**
 * CpuMeter plus the whole machine: what the listed processes used, and "rest of machine", the CPU
 * everything else used meanwhile (other work on a shared machine), and "idle", as % of one core.
 */
class Meter {
  private readonly inner: CpuMeter;
  private m0 = machineCpuMs();
  private t0 = 0;
  constructor(pids: Record<string, number | undefined>) {
    this.inner = new CpuMeter(pids);
  }
  begin(): void {
    this.inner.begin();
    this.m0 = machineCpuMs();
    this.t0 = performance.now();
  }
  /** Call after adding the generators' own figures to `cpu`: they count as measured too. */
  static machine(cpu: Record<string, number>, m0: { busy: number; idle: number }, wallMs: number): void {
    const m1 = machineCpuMs();
    const busy = ((m1.busy - m0.busy) / wallMs) * 100;
    const measured = Object.values(cpu).reduce((a, b) => a + b, 0);
    cpu['rest of machine'] = Math.max(0, Math.round((busy - measured) * 10) / 10);
    cpu.idle = Math.round(((m1.idle - m0.idle) / wallMs) * 1000) / 10;
  }
  end(): { cpu: Record<string, number>; finish: (cpu: Record<string, number>) => void } {
    const cpu = this.inner.end();
    const { m0, t0 } = this;
    const wall = performance.now() - t0;
    return { cpu, finish: (c) => Meter.machine(c, m0, wall) };
  }
}

const serverCpu = (t: Target, cpu: Record<string, number>): number => Object.keys(t.servers).reduce((a, k) => a + (cpu[k] ?? 0), 0);

async function usedMemory(client: Redis): Promise<number> {
  const m = /used_memory:(\d+)/.exec(await client.info('memory'));
  if (!m) throw new Error('INFO memory without used_memory');
  return Number(m[1]);
}

async function redisPid(client: Redis): Promise<number | undefined> {
  const m = /process_id:(\d+)/.exec(await client.info('server'));
  return m ? Number(m[1]) : undefined;
}

/** Ingest as scenario 1 measures it; generator g streams to node g % nodes. */
async function ingestRun(ctx: BenchContext, t: Target, users: BenchUser[], load: { conns: number; generators: number; durationMs: number }, tag: string): Promise<IngestRun> {
  const sentinel = `${tag}-${Date.now()}`;
  const conns: IngestConn[] = Array.from({ length: load.conns }, (_, i) => ({ apiKey: (users[i % users.length] as BenchUser).apiKey, deviceId: `${tag}d${i}`, prefix: `${tag}c${i}` }));
  const parts = split(conns, load.generators);
  const gens = parts.map((part, g) =>
    ctx.child<IngestResult>(`scale-ingest-${g}`, 'gen/ingest.ts', { port: t.tcpPorts[g % t.tcpPorts.length] as number, conns: part, durationMs: load.durationMs, sentinel, names: 8, blockLines: 1000, window: 3 } satisfies IngestConfig),
  );
  await Promise.all(gens.map((g) => g.ready()));
  const meter = new Meter({ ...t.servers, ...t.redisPids });
  meter.begin();
  const t0 = performance.now();
  for (const g of gens) g.go();
  const results = await Promise.all(gens.map((g) => g.result(load.durationMs + 30_000)));
  // Until Redis holds every connection's last value (one key's hash is in one slot on a cluster too).
  const deadline = performance.now() + 60_000;
  let left = conns;
  while (left.length > 0) {
    const values = await Promise.all(left.map((c) => t.redis.hget(`${c.apiKey}:vs`, `${c.prefix}last:value`)));
    left = left.filter((_, i) => values[i] !== sentinel);
    if (left.length === 0) break;
    if (performance.now() > deadline) throw new Error(`${t.label}: ${left.length} of ${conns.length} last values did not reach Redis within 60 s`);
    await sleep(5);
  }
  const t1 = performance.now();
  const { cpu, finish } = meter.end();
  results.forEach((r, i) => (cpu[`generator ${i + 1}`] = r.cpuPct));
  finish(cpu);
  await Promise.all(gens.map((g) => g.close()));
  const lines = results.reduce((a, r) => a + r.result.lines, 0);
  const errors = results.reduce((a, r) => a + r.result.errors, 0);
  if (errors > 0) throw new Error(`${t.label}: ${errors} error lines, first: ${results.find((r) => r.result.firstError)?.result.firstError}`);
  const seconds = (t1 - t0) / 1000;
  return { lines, seconds, linesPerSecond: Math.round(lines / seconds), serverCpuUsPerLine: Math.round(((serverCpu(t, cpu) / 100) * seconds * 1e8) / lines) / 100, cpu };
}

/** Fan-out as scenario 3 measures it: one device on node 0, WebSocket client process i on node i % nodes. */
async function fanoutRun(ctx: BenchContext, t: Target, user: BenchUser, opts: { sockets: number; clientProcs: number; durationMs: number }, tag: string): Promise<FanoutRun> {
  const per = Math.ceil(opts.sockets / opts.clientProcs);
  const clients = Array.from({ length: opts.clientProcs }, (_, i) =>
    ctx.child<WsClientsResult>(`scale-ws-${i}`, 'gen/ws-clients.ts', { port: t.httpPorts[i % t.httpPorts.length] as number, path: `/ws?token=${user.token}`, count: Math.min(per, opts.sockets - i * per) } satisfies WsClientsConfig),
  );
  await Promise.all(clients.map((c) => c.ready(60_000)));
  const device = ctx.child<IngestResult>('scale-fanout-device', 'gen/ingest.ts', {
    port: t.tcpPorts[0] as number,
    conns: [{ apiKey: user.apiKey, deviceId: `${tag}-device`, prefix: `${tag}f` }],
    durationMs: opts.durationMs,
    sentinel: tag,
    names: 64,
    blockLines: 20,
    window: 64,
  } satisfies IngestConfig);
  await device.ready();
  const meter = new Meter({ ...t.servers, ...t.redisPids });
  for (const c of clients) c.go();
  meter.begin();
  device.go();
  const d = await device.result(opts.durationMs + 30_000);
  await sleep(1000);
  for (const c of clients) c.stop();
  const results = await Promise.all(clients.map((c) => c.result(30_000)));
  const { cpu, finish } = meter.end();
  cpu.device = d.cpuPct;
  results.forEach((r, i) => (cpu[`clients ${i + 1}`] = r.cpuPct));
  finish(cpu);
  await Promise.all([device.close(), ...clients.map((c) => c.close())]);
  const empty = results.findIndex((r) => r.result.frames === 0);
  if (empty >= 0) throw new Error(`${t.label}: WebSocket client process ${empty + 1} (node ${(empty % t.httpPorts.length) + 1}) got no vars messages`);
  const first = Math.min(...results.map((r) => r.result.firstAt ?? Infinity));
  const last = Math.max(...results.map((r) => r.result.lastAt ?? 0));
  const seconds = Math.max(0.001, (last - first) / 1000);
  const frames = results.reduce((a, r) => a + r.result.frames, 0);
  const updates = results.reduce((a, r) => a + r.result.updates, 0);
  return { seconds, updatesPerSecond: Math.round(updates / seconds), framesPerSecond: Math.round(frames / seconds), closed: results.reduce((a, r) => a + r.result.closed, 0), cpu };
}

/** Redis's own time in commands (INFO commandstats, µs) since the last CONFIG RESETSTAT, summed over `nodes`, with the top commands. */
async function commandUsec(nodes: Redis[]): Promise<{ usec: number; top: string }> {
  const per = new Map<string, number>();
  for (const n of nodes)
    for (const m of (await n.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      const name = m[1] as string;
      if (name === 'info' || name.startsWith('config')) continue;
      per.set(name, (per.get(name) ?? 0) + Number(m[3]));
    }
  const usec = [...per.values()].reduce((a, b) => a + b, 0);
  const top = [...per.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, v]) => `${k} ${Math.round((v / Math.max(1, usec)) * 100)}%`)
    .join(', ');
  return { usec, top };
}

const resetStats = (nodes: Redis[]): Promise<unknown> => Promise.all(nodes.map((n) => n.config('RESETSTAT')));

/**
 * Devices of one key split over the nodes: dashboard changes on node 0 (every device must get each),
 * Redis memory with them online, then an idle phase (heartbeats only) and a paced report phase, each
 * with the CPU of every process and Redis's own command time.
 */
async function devicesRun(ctx: BenchContext, t: Target, user: BenchUser, opts: { devices: number; rounds: number; idleMs: number; reportsPerSecond: number; reportMs: number }): Promise<DevicesRun> {
  const before = await t.usedMemory();
  const sentinel = String(Date.now());
  const gen = ctx.child<ScaleDevicesResult, { registeredMs: number }>('scale-devices', 'gen/scale-devices.ts', {
    tcpPorts: t.tcpPorts,
    httpPort: t.httpPorts[0] as number,
    apiKey: user.apiKey,
    token: user.token,
    devices: opts.devices,
    vars: 10,
    rounds: opts.rounds,
    registerMs: 60_000,
    reachMs: 10_000,
    reportsPerSecond: opts.reportsPerSecond,
    reportMs: opts.reportMs,
    sentinel,
  } satisfies ScaleDevicesConfig);
  const { registeredMs } = await gen.ready(90_000);
  // Listed online with labels; the reported variables may land a moment later.
  const keys = Array.from({ length: opts.devices }, (_, n) => `observerio:reported:{${user.apiKey}:vs}:dev-${n}`);
  const deadline = Date.now() + 30_000;
  while ((await t.redis.exists(...keys)) < opts.devices) {
    if (Date.now() > deadline) throw new Error(`${t.label}: not every device's reported variables reached Redis within 30 s`);
    await sleep(50);
  }
  const online = await t.usedMemory();
  const pids = { ...t.servers, ...t.redisPids, generator: gen.pid };
  const phase = async (want: string, limitMs: number): Promise<Record<string, unknown>> => {
    const until = Date.now() + limitMs;
    for (;;) {
      const e = gen.events.find((x) => (x as { phase?: string }).phase === want) as Record<string, unknown> | undefined;
      if (e) return e;
      if (Date.now() > until) throw new Error(`${t.label}: the devices' ${want} phase did not finish within ${limitMs} ms`);
      await sleep(50);
    }
  };
  const meter = new Meter(pids);
  meter.begin();
  gen.go();
  await phase('rounds', opts.rounds * 11_000 + 10_000);
  const rounds = meter.end();
  rounds.finish(rounds.cpu);
  const changed = await t.usedMemory();

  // Idle: every device online and silent; what is left is the nodes' presence heartbeats.
  await resetStats(t.redisNodes);
  const idleMeter = new Meter(pids);
  idleMeter.begin();
  await sleep(opts.idleMs);
  const idle = idleMeter.end();
  idle.finish(idle.cpu);
  const idleRedis = await commandUsec(t.redisNodes);

  // Reports at an even pace, until Redis holds every device's last one.
  await resetStats(t.redisNodes);
  const reportMeter = new Meter(pids);
  reportMeter.begin();
  const r0 = performance.now();
  gen.cmd('report');
  const { reports } = (await phase('reported', opts.reportMs + 30_000)) as { reports: number };
  const until = Date.now() + 30_000;
  let left = keys;
  // A device's reported variables are a hash, name → `<place>\0<type>\0<value>` (README, data
  // layout); the reports carry var_0.
  const last = `\u0000${sentinel}`;
  while (left.length > 0) {
    const values = await Promise.all(left.map((k) => t.redis.hget(k, 'var_0')));
    left = left.filter((_, i) => !(values[i] ?? '').endsWith(last));
    if (left.length === 0) break;
    if (Date.now() > until) throw new Error(`${t.label}: ${left.length} devices' last reports did not reach Redis within 30 s of the last sent`);
    // Seldom: this MGET's own time must stay out of Redis's command time per report.
    await sleep(250);
  }
  const reportSeconds = (performance.now() - r0) / 1000;
  const rep = reportMeter.end();
  rep.finish(rep.cpu);
  const repRedis = await commandUsec(t.redisNodes);

  gen.stop();
  const res = await gen.result(30_000);
  await gen.close();
  const x = res.result;
  if (x.firstError) throw new Error(`${t.label}: a device got an error line: ${x.firstError}`);
  const allReached = x.rounds.every((r) => r.reachedPerNode.every((n, k) => n === x.perNode[k]));
  const idleSeconds = opts.idleMs / 1000;
  return {
    devices: x.devices,
    perNode: x.perNode,
    registeredMs,
    bytesPerDevice: Math.round((online - before) / opts.devices),
    bytesPerDeviceAfterChanges: Math.round((changed - before) / opts.devices),
    rounds: x.rounds,
    allReached,
    cpu: rounds.cpu,
    idle: {
      seconds: idleSeconds,
      cpu: idle.cpu,
      daemonUsPerDeviceSecond: Math.round(((serverCpu(t, idle.cpu) / 100) * 1e6 * 100) / x.devices) / 100,
      redisUsPerDeviceSecond: Math.round((idleRedis.usec / (x.devices * idleSeconds)) * 100) / 100,
      redisTop: idleRedis.top,
    },
    report: {
      reports,
      seconds: reportSeconds,
      offeredPerSecond: opts.reportsPerSecond,
      cpu: rep.cpu,
      daemonUsPerReport: Math.round((((serverCpu(t, rep.cpu) - serverCpu(t, idle.cpu)) / 100) * reportSeconds * 1e6 * 10) / reports) / 10,
      redisUsPerReport: Math.round((repRedis.usec / reports) * 10) / 10,
      redisTop: repRedis.top,
    },
  };
}

function fmtCpu(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .map(([k, v]) => `${k} ${Math.round(v)}%`)
    .join(', ');
}

export async function scaleScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  // QUICK (CI) must stay well inside run.ts's 120 s per scenario on a busy machine: fewer keys (each
  // user costs two scrypt hashes), shorter phases; its figures are a smoke test, not the README's.
  const q = ctx.quick;
  const ingestLoad = q ? { conns: 50, keys: 4, generators: 2, durationMs: 2000 } : { conns: 100, keys: 10, generators: 2, durationMs: 10_000 };
  const fanout = q ? { sockets: 500, clientProcs: 2, durationMs: 2000 } : { sockets: 1000, clientProcs: 2, durationMs: 10_000 };
  const devs = q ? { devices: 200, rounds: 2, idleMs: 2000, reportsPerSecond: 1000, reportMs: 1500 } : { devices: 2000, rounds: 10, idleMs: 15_200, reportsPerSecond: 4000, reportMs: 10_000 };
  const notes: string[] = [];
  const log = (m: string): void => ctx.log(`  ${m}`);

  // (a) one Redis: a single daemon and serve --workers 2, both running, measured alternately.
  const redis = ctx.redis.client();
  let cluster: RedisCluster | null = null;
  const clients: Array<Redis | Cluster> = [redis];
  try {
    const one = await ctx.daemon('scale-1w');
    const two = await ctx.daemon('scale-2w', { workers: 2, adminToken: ADMIN_TOKEN });
    const workerPids = await two.workerPids();
    const redisMem = (): Promise<number> => usedMemory(redis);
    const t1: Target = { label: '1 worker', tcpPorts: [one.tcpPort], httpPorts: [one.httpPort], servers: { daemon: one.pid }, redisPids: { redis: ctx.redis.pid }, redis, redisNodes: [redis], usedMemory: redisMem };
    const t2: Target = {
      label: '2 workers',
      tcpPorts: [two.tcpPort],
      httpPorts: [two.httpPort],
      servers: { primary: two.pid, ...Object.fromEntries(workerPids.map((p, i) => [`worker ${i + 1}`, p])) },
      redisPids: { redis: ctx.redis.pid },
      redis,
      redisNodes: [redis],
      usedMemory: redisMem,
    };
    // Users and sessions live in Redis: both daemons serve the same ones.
    const users = await one.users('scale', ingestLoad.keys);
    const [fanUser, devUser] = await one.users('scale-fan', 2);
    if (!fanUser || !devUser) throw new Error('no user');

    const ing: Record<string, IngestRun[]> = { '1w': [], '2w': [], cluster: [] };
    const fan: Record<string, FanoutRun[]> = { '1w': [], '2w': [], cluster: [] };
    for (let r = 0; r < ctx.runs; r++) {
      for (const [k, t] of [['1w', t1], ['2w', t2]] as const) {
        const x = await ingestRun(ctx, t, users, ingestLoad, `s${k}${r}`);
        log(`${t.label} ingest run ${r + 1}: ${x.linesPerSecond.toLocaleString()} lines/s (${x.lines.toLocaleString()} in ${x.seconds.toFixed(2)} s, ${x.serverCpuUsPerLine} µs daemon CPU/line) cpu ${fmtCpu(x.cpu)}`);
        ing[k]?.push(x);
      }
      for (const [k, t] of [['1w', t1], ['2w', t2]] as const) {
        const x = await fanoutRun(ctx, t, fanUser, fanout, `sf${k}${r}`);
        log(`${t.label} fan-out run ${r + 1}: ${x.updatesPerSecond.toLocaleString()} changes/s, ${x.framesPerSecond.toLocaleString()} frames/s, ${x.closed} closed, cpu ${fmtCpu(x.cpu)}`);
        fan[k]?.push(x);
      }
    }
    const devOne = await devicesRun(ctx, t2, devUser, devs);
    const devLog = (d: DevicesRun): string =>
      `idle ${d.idle.seconds} s: daemon ${d.idle.daemonUsPerDeviceSecond} µs CPU and Redis ${d.idle.redisUsPerDeviceSecond} µs per device per second (${d.idle.redisTop}), cpu ${fmtCpu(d.idle.cpu)}; ` +
      `${d.report.reports.toLocaleString()} reports at ${d.report.offeredPerSecond.toLocaleString()}/s in ${d.report.seconds.toFixed(1)} s: daemon ${d.report.daemonUsPerReport} µs CPU and Redis ${d.report.redisUsPerReport} µs per report (${d.report.redisTop}), cpu ${fmtCpu(d.report.cpu)}`;
    log(`2 workers, ${devOne.devices} devices: listed in ${(devOne.registeredMs / 1000).toFixed(1)} s, Redis ${devOne.bytesPerDevice} B/device online, ${devOne.bytesPerDeviceAfterChanges} B/device after ${devs.rounds} changes; rounds ${devOne.rounds.map((x) => `${x.reachedPerNode.join('+')} reached, last ${x.lastPerNode.map((v) => v?.toFixed(0) ?? '—').join('/')} ms`).join('; ')}`);
    log(`2 workers, ${devLog(devOne)}`);
    await Promise.all([one.stop(), two.stop()]);

    // (b) two nodes on a Redis Cluster of three masters (no replicas: the figure is the spread, not failover).
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
    const masters = await cluster.masters();
    const masterClients = masters.map((p) => (cluster as RedisCluster).nodeClient(p));
    clients.push(...masterClients);
    const cc = new Cluster(masters.map((port) => ({ host: '127.0.0.1', port })));
    clients.push(cc);
    const pids = await Promise.all(masterClients.map(redisPid));
    const nodeA = await ctx.daemon('scale-node-a', { redisUrl: cluster.url });
    const nodeB = await ctx.daemon('scale-node-b', { redisUrl: cluster.url });
    const tc: Target = {
      label: 'cluster',
      tcpPorts: [nodeA.tcpPort, nodeB.tcpPort],
      httpPorts: [nodeA.httpPort, nodeB.httpPort],
      servers: { 'node A': nodeA.pid, 'node B': nodeB.pid },
      redisPids: Object.fromEntries(pids.map((p, i) => [`redis ${i + 1}`, p])),
      redis: cc,
      redisNodes: masterClients,
      usedMemory: async () => (await Promise.all(masterClients.map(usedMemory))).reduce((a, b) => a + b, 0),
    };
    const cusers = await nodeA.users('scale-c', ingestLoad.keys);
    const [cFan, cDev] = await nodeB.users('scale-cfan', 2);
    if (!cFan || !cDev) throw new Error('no user');
    for (let r = 0; r < ctx.runs; r++) {
      const x = await ingestRun(ctx, tc, cusers, ingestLoad, `sc${r}`);
      log(`2 nodes on Redis Cluster ingest run ${r + 1}: ${x.linesPerSecond.toLocaleString()} lines/s (${x.lines.toLocaleString()} in ${x.seconds.toFixed(2)} s, ${x.serverCpuUsPerLine} µs daemon CPU/line) cpu ${fmtCpu(x.cpu)}`);
      ing.cluster?.push(x);
      const f = await fanoutRun(ctx, tc, cFan, fanout, `scf${r}`);
      log(`2 nodes on Redis Cluster fan-out run ${r + 1}: ${f.updatesPerSecond.toLocaleString()} changes/s, ${f.framesPerSecond.toLocaleString()} frames/s, ${f.closed} closed, cpu ${fmtCpu(f.cpu)}`);
      fan.cluster?.push(f);
    }
    const devC = await devicesRun(ctx, tc, cDev, devs);
    log(`2 nodes on Redis Cluster, ${devC.devices} devices (${devC.perNode.join(' + ')}): listed in ${(devC.registeredMs / 1000).toFixed(1)} s, Redis ${devC.bytesPerDevice} B/device online, ${devC.bytesPerDeviceAfterChanges} B/device after ${devs.rounds} changes; rounds ${devC.rounds.map((x) => `${x.reachedPerNode.join('+')} reached, last ${x.lastPerNode.map((v) => v?.toFixed(0) ?? '—').join('/')} ms`).join('; ')}`);
    log(`2 nodes on Redis Cluster, ${devLog(devC)}`);

    const lps = (k: string): number => median((ing[k] ?? []).map((x) => x.linesPerSecond));
    const cps = (k: string): number => median((fan[k] ?? []).map((x) => x.updatesPerSecond));
    const [i1, i2, ic] = [lps('1w'), lps('2w'), lps('cluster')];
    const [f1, f2, fc] = [cps('1w'), cps('2w'), cps('cluster')];
    const us = (k: string): string => `${median((ing[k] ?? []).map((x) => x.serverCpuUsPerLine)).toFixed(2)} µs daemon CPU/line`;
    const lastAll = (d: DevicesRun): number => median(d.rounds.map((x) => Math.max(...x.lastPerNode.map((v) => v ?? Number.NaN))));
    const p50 = (d: DevicesRun): number => median(d.rounds.map((x) => x.latency.p50));
    const rows: Row[] = [
      { metric: `ingest, 1 daemon process, one Redis (${us('1w')})`, figure: i1, unit: 'lines/s', target: '(informative)', baseline: null, pass: null },
      { metric: `ingest, --workers 2, one Redis (${us('2w')}); ratio to 1 worker`, figure: i2, unit: 'lines/s', target: '(informative)', baseline: i1, pass: null },
      { metric: `ingest, 2 nodes on a 3-master Redis Cluster, connections split (${us('cluster')}); ratio to 1 worker`, figure: ic, unit: 'lines/s', target: '(informative)', baseline: i1, pass: null },
      { metric: `fan-out over ${fanout.sockets} sockets, 1 daemon process`, figure: f1, unit: 'changes/s', target: '(informative)', baseline: null, pass: null },
      { metric: `fan-out over ${fanout.sockets} sockets, --workers 2; ratio to 1 worker`, figure: f2, unit: 'changes/s', target: '(informative)', baseline: f1, pass: null },
      { metric: `fan-out, device on node A, sockets split over 2 nodes on Redis Cluster; ratio to 1 worker`, figure: fc, unit: 'changes/s', target: '(informative)', baseline: f1, pass: null },
      {
        metric: `dashboard change on one worker → all ${devOne.devices} devices of --workers 2, last reached (p50 per device ${p50(devOne).toFixed(1)} ms)`,
        figure: lastAll(devOne),
        unit: 'ms',
        target: 'every device reached',
        baseline: null,
        pass: devOne.allReached,
        digits: 1,
      },
      {
        metric: `dashboard change on node A → all ${devC.devices} devices on nodes A and B (Redis Cluster), last reached (p50 per device ${p50(devC).toFixed(1)} ms)`,
        figure: lastAll(devC),
        unit: 'ms',
        target: 'every device on both nodes reached',
        baseline: null,
        pass: devC.allReached,
        digits: 1,
      },
      { metric: 'Redis memory per online device (presence, labels, 10 reported vars), one Redis', figure: devOne.bytesPerDevice, unit: 'B', target: '(informative)', baseline: null, pass: null },
      { metric: `Redis memory per device after ${devs.rounds} dashboard changes to all, one Redis`, figure: devOne.bytesPerDeviceAfterChanges, unit: 'B', target: '(informative)', baseline: null, pass: null },
      { metric: 'Redis memory per online device, Redis Cluster (sum over 3 masters)', figure: devC.bytesPerDevice, unit: 'B', target: '(informative)', baseline: null, pass: null },
      { metric: `daemon CPU per device report (i: of 1 variable, ${devs.reportsPerSecond.toLocaleString()}/s over ${devOne.devices} devices; above idle), --workers 2`, figure: devOne.report.daemonUsPerReport, unit: 'µs', target: '(informative)', baseline: null, pass: null, digits: 1 },
      { metric: `Redis command time per device report (${devOne.report.redisTop})`, figure: devOne.report.redisUsPerReport, unit: 'µs', target: '(informative)', baseline: null, pass: null, digits: 1 },
      { metric: 'idle online device: daemon CPU per device per second (all of the daemon\'s idle CPU, over the devices: an upper bound)', figure: devOne.idle.daemonUsPerDeviceSecond, unit: 'µs', target: '(informative)', baseline: null, pass: null, digits: 2 },
      { metric: `idle online device: Redis command time per device per second (${devOne.idle.redisTop})`, figure: devOne.idle.redisUsPerDeviceSecond, unit: 'µs', target: '(informative)', baseline: null, pass: null, digits: 2 },
    ];
    for (const [d, where] of [
      [devOne, '--workers 2'],
      [devC, 'Redis Cluster'],
    ] as const) {
      if (d.allReached) continue;
      const bad = d.rounds.find((x) => x.reachedPerNode.some((n, k) => n !== d.perNode[k]));
      notes.push(`${where}: a dashboard change did not reach every device: ${bad?.reachedPerNode.join(' + ')} of ${d.perNode.join(' + ')} (delivered ${bad?.delivered}).`);
    }
    notes.push(
      `Same machine for all: the daemon processes, Redis (one server, or three cluster masters), and the generators (${ingestLoad.generators} ingest generators; ${fanout.clientProcs} WebSocket client processes and one device for fan-out) share its ${cpus().length} cores. A second worker can only help as far as a core is free: compare the CPU per process below.`,
      `Ingest: ${ingestLoad.conns} connections, ${ingestLoad.keys} keys, ${ingestLoad.durationMs / 1000} s per run; with --workers 2 node:cluster hands the connections to the workers in turn; on the cluster, generator 1 streams to node A and generator 2 to node B. Fan-out: ${fanout.sockets} dashboard WebSockets of one key, ${fanout.durationMs / 1000} s; with --workers 2 the kernel spreads them over the workers (SO_REUSEPORT), on the cluster client process 1 is on node A and 2 on node B, the streaming device on node A.`,
      `Devices: dev-n on node n % 2 (with --workers 2, one port: node:cluster spreads them); each verifies, declares 2 labels and reports 10 integer variables; Redis memory is INFO used_memory before the devices connected and once every device was listed online with its labels and its reported variables were in Redis (then again after ${devs.rounds} changes of one variable to every device, which adds what each was last sent). Changes: PUT /api/vars/difficulty to every device, made on the first node; times from the request leaving to each device's v: line. Then ${devs.idleMs / 1000} s idle (only the nodes' presence heartbeats, every 5 s by default) and ${devs.reportMs / 1000} s of i: reports of one variable at an even ${devs.reportsPerSecond.toLocaleString()}/s over all devices, until Redis holds each device's last; Redis command time is INFO commandstats (usec) after CONFIG RESETSTAT, CPU per process from /proc.`,
    );
    const cpu = {
      ...prefixKeys('1 worker ingest: ', medianCpu(ing['1w'] ?? [])),
      ...prefixKeys('2 workers ingest: ', medianCpu(ing['2w'] ?? [])),
      ...prefixKeys('cluster ingest: ', medianCpu(ing.cluster ?? [])),
      ...prefixKeys('1 worker fan-out: ', medianCpu(fan['1w'] ?? [])),
      ...prefixKeys('2 workers fan-out: ', medianCpu(fan['2w'] ?? [])),
      ...prefixKeys('cluster fan-out: ', medianCpu(fan.cluster ?? [])),
    };
    return {
      id: 'scale',
      title: `Scale-out: ingest and fan-out with 1 and 2 workers on one Redis, and on 2 nodes over a 3-master Redis Cluster; ${devs.devices} devices across the nodes`,
      rows,
      cpu,
      runs: [
        ...Object.entries(ing).flatMap(([k, rs]) => rs.map((x) => ({ part: `ingest ${k}`, ...x }))),
        ...Object.entries(fan).flatMap(([k, rs]) => rs.map((x) => ({ part: `fan-out ${k}`, ...x }))),
        { part: 'devices 2w', ...devOne },
        { part: 'devices cluster', ...devC },
      ],
      notes,
    };
  } finally {
    await ctx.cleanup();
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  }
}
