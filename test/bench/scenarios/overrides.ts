/**
 * Scenario (issue 11), overrides: 1,000 online devices with labels (half android, half ios; builds
 * 1.4.x and 1.5.x); a dashboard change to the selector `platform=android,build=1.4.*` — one variable
 * by `PUT /api/vars/difficulty`, then a strategy of three applied by `POST /api/strategies/:name/apply`
 * — must reach every matching device and no other. Figures: PUT → `v:` per matching device (p50,
 * p99, the last device reached); the hard check is that exactly the matching devices got it and the
 * answer's `delivered` says so. QUICK runs one round (1,000 devices register in a few seconds).
 */
import type { BenchContext, Row, ScenarioReport } from '../lib/context.js';
import { CpuMeter } from '../lib/proc.js';
import { median } from '../lib/stats.js';
import type { OverridesConfig, OverridesResult, PhaseResult } from '../gen/overrides.js';

const exact = (p: PhaseResult): boolean => p.reached === p.matching && p.strays === 0 && p.delivered === p.matching;

export async function overridesScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  // QUICK keeps to a few seconds: the daemon takes far longer than that to take 1,000 devices of one key (see the notes).
  const devices = 1000;
  const daemon = await ctx.daemon('overrides');
  const [user] = await daemon.users('overrides', 1);
  if (!user) throw new Error('no user');
  const registerMs = ctx.quick ? 20_000 : 300_000;
  // The same devices for every round: each round's override and strategy carry values of their own.
  const gen = ctx.child<OverridesResult>('overrides-gen', 'gen/overrides.ts', {
    tcpPort: daemon.tcpPort,
    httpPort: daemon.httpPort,
    apiKey: user.apiKey,
    token: user.token,
    devices,
    rounds: ctx.runs,
    registerMs,
    reachMs: ctx.quick ? 5000 : 30_000,
    settleMs: ctx.quick ? 300 : 1000,
  } satisfies OverridesConfig);
  await gen.ready(registerMs + 60_000);
  const meter = new CpuMeter({ daemon: daemon.pid, redis: ctx.redis.pid });
  meter.begin();
  gen.go();
  const res = await gen.result(ctx.runs * 2 * (ctx.quick ? 10_000 : 40_000) + 30_000);
  const cpu = meter.end();
  cpu.generator = res.cpuPct;
  await gen.close();
  const x = res.result;
  if (!daemon.alive) throw new Error(`the daemon died:\n${daemon.logTail()}`);
  ctx.log(`  ${x.devices} devices listed online with labels ${x.registeredMs === null ? `NOT within ${registerMs / 1000} s (${x.listing})` : `${(x.registeredMs / 1000).toFixed(1)} s after the first connect`}`);
  for (const p of x.phases)
    ctx.log(
      `  ${p.what.padEnd(8)} round ${p.round + 1}: ${p.reached}/${p.matching} matching reached, ${p.strays}/${p.others} others got a v:, delivered ${p.delivered} pending ${p.pending}, answer ${p.answerMs.toFixed(1)} ms; → v: p50 ${p.latency.p50.toFixed(1)} p99 ${p.latency.p99.toFixed(1)} last ${p.lastReachedMs?.toFixed(1) ?? '—'} ms` +
        (p.missing.length ? `; missing ${p.missing.join(',')}` : '') +
        (p.strayIds.length ? `; strays ${p.strayIds.join(',')}` : ''),
    );
  ctx.log(`  ${x.closed} device connections closed while measuring, cpu ${JSON.stringify(cpu)}${x.firstError ? `, first device error ${x.firstError}` : ''}`);
  const selector = x.selector;

  const rows: Row[] = [
    {
      metric: `${devices.toLocaleString()} devices connected, verified and declared labels → all listed online with them (GET /api/devices)`,
      figure: x.registeredMs === null ? null : x.registeredMs / 1000,
      unit: 's',
      target: '(informative)',
      baseline: null,
      pass: null,
      digits: 1,
    },
  ];
  const notes: string[] = [];
  if (x.registeredMs === null) notes.push(`The daemon had not listed all ${devices} devices online with their labels ${registerMs / 1000} s after the first connect (${x.listing}); the rounds ran anyway.`);
  if (x.closed > 0) notes.push(`${x.closed} device connections closed while measuring.`);
  if (x.firstError) notes.push(`A device got an error line: ${x.firstError}`);
  const label = { override: 'PUT /api/vars/difficulty', strategy: 'strategy of 3 vars applied' } as const;
  for (const what of ['override', 'strategy'] as const) {
    const ps = x.phases.filter((p) => p.what === what);
    const first = ps[0];
    if (!first) continue;
    rows.push({
      metric: `${label[what]} → v: per matching device, p99 (p50 ${median(ps.map((p) => p.latency.p50)).toFixed(1)} ms)`,
      figure: median(ps.map((p) => p.latency.p99)),
      unit: 'ms',
      target: '(informative)',
      baseline: null,
      pass: null,
      digits: 1,
    });
    rows.push({
      metric: `${label[what]} → last matching device reached`,
      figure: median(ps.map((p) => p.lastReachedMs ?? Number.NaN)),
      unit: 'ms',
      target: '(informative)',
      baseline: null,
      pass: null,
      digits: 1,
    });
    const ok = ps.every(exact);
    const worst = ps.find((p) => !exact(p)) ?? first;
    rows.push({
      metric: `${label[what]}: reached exactly the ${first.matching} matching devices (${worst.reached} reached, ${worst.strays} of ${worst.others} others got it, delivered ${worst.delivered})`,
      figure: worst.reached,
      unit: 'devices',
      target: `= ${first.matching}, 0 others, delivered = ${first.matching}`,
      baseline: null,
      pass: ok,
    });
    for (const p of ps)
      if (!exact(p))
        notes.push(
          `${label[what]}, round ${p.round + 1}: ${p.reached} of ${p.matching} matching devices reached${p.missing.length ? ` (not: ${p.missing.join(', ')}${p.matching - p.reached > p.missing.length ? ', …' : ''})` : ''}, ${p.strays} of ${p.others} others got a v: line${p.strayIds.length ? ` (${p.strayIds.join(', ')})` : ''}, answer delivered ${p.delivered}, pending ${p.pending}.`,
        );
  }
  notes.push(
    `Devices: dev-0…dev-${devices - 1}, labels platform = android for even n else ios, build = 1.5.<n%10> when n%3 = 0 else 1.4.<n%10>; selector ${selector}. Times are from the request leaving the generator to the v: line that completes the change on a device (for the strategy, the line carrying the last of its three variables), measured in one process that holds the devices and the HTTP client.`,
  );
  return {
    id: 'overrides',
    title: `Overrides: ${devices} online devices with labels, a change to a label selector (one variable, then a strategy of three)`,
    rows,
    cpu,
    runs: [{ devices: x.devices, registeredMs: x.registeredMs, listing: x.listing, closed: x.closed, firstError: x.firstError, cpu, phases: x.phases }],
    notes,
  };
}
