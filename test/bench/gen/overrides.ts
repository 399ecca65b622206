/**
 * Overrides generator (issue 11): one process holding both ends so one clock measures both. It opens
 * `devices` raw TCP line clients that verify as `dev-<n>` and declare labels with `d:` (PROTOCOL.md
 * §13), waits until the daemon lists them all with their labels, then on go: (1) `PUT /api/vars/
 * difficulty` to a label selector, (2) a strategy of three variables created and applied to the same
 * selector. For each it records, per matching device, the time from sending the request to the `v:`
 * line that completes the change for it, and which devices outside the selector got any `v:` line.
 */
import type { Socket } from 'node:net';
import { b64json, openVerified } from '../lib/lines.js';
import { summarise, type LatencySummary } from '../lib/stats.js';
import { runWorker } from '../lib/worker.js';

export interface OverridesConfig {
  tcpPort: number;
  httpPort: number;
  apiKey: string;
  token: string;
  devices: number;
  /** Rounds of (override, strategy) on the same devices, each with values of its own. */
  rounds: number;
  /** How long the daemon gets to list every device online with its labels before the rounds start anyway. */
  registerMs: number;
  /** How long matching devices get to be reached before the missing ones are counted. */
  reachMs: number;
  /** How long after the last matching device the others are still watched for a stray `v:`. */
  settleMs: number;
}

export interface PhaseResult {
  what: 'override' | 'strategy';
  round: number;
  status: number;
  /** The answer's `delivered` and `pending` (null when absent). */
  delivered: number | null;
  pending: number | null;
  /** Time from sending the request to its HTTP answer. */
  answerMs: number;
  matching: number;
  reached: number;
  /** The first few matching devices not reached. */
  missing: string[];
  others: number;
  /** Devices outside the selector that got a `v:` line during the phase. */
  strays: number;
  strayIds: string[];
  /** Send → `v:` per reached device; unreached ones are not in it (they are counted in `missing`). */
  latency: LatencySummary;
  /** The last matching device reached, ms after the request left. */
  lastReachedMs: number | null;
}

export interface OverridesResult {
  selector: string;
  devices: number;
  /** From the first connect until the daemon listed every device online with its labels (null: not within registerMs). */
  registeredMs: number | null;
  /** What GET /api/devices showed when the rounds started. */
  listing: string;
  phases: PhaseResult[];
  /** Device connections that closed during the measured phases. */
  closed: number;
  firstError: string | null;
}

/** Half android, half ios; a third of the builds are 1.5.x, the rest 1.4.x. */
export function labelsOf(n: number): { platform: string; build: string } {
  return { platform: n % 2 === 0 ? 'android' : 'ios', build: `1.${n % 3 === 0 ? 5 : 4}.${n % 10}` };
}
export const SELECTOR = 'platform=android,build=1.4.*';
function matches(n: number): boolean {
  const l = labelsOf(n);
  return l.platform === 'android' && l.build.startsWith('1.4.');
}

interface Phase {
  start: number;
  /** name → value a matching device must get. */
  want: Map<string, string>;
  /** Per device: the wanted names still missing (matching devices only). */
  left: Array<Set<string> | null>;
  reachedAt: Array<number | null>;
  stray: boolean[];
  reached: number;
  onAllReached: () => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

runWorker<OverridesConfig, OverridesResult>(async (cfg, ctl) => {
  const base = `http://127.0.0.1:${cfg.httpPort}`;
  const headers = { authorization: `Bearer ${cfg.token}`, 'content-type': 'application/json' };
  const ids = Array.from({ length: cfg.devices }, (_, n) => `dev-${n}`);
  const isMatch = ids.map((_, n) => matches(n));
  const matching = isMatch.filter(Boolean).length;
  let phase: Phase | null = null;
  let firstError: string | null = null;
  let closed = 0;
  let closedEver = 0;
  let measuring = false;
  const onV = (n: number, payload: string, now: number): void => {
    const p = phase;
    if (!p) return;
    if (!isMatch[n]) {
      p.stray[n] = true;
      return;
    }
    const left = p.left[n];
    if (!left || left.size === 0) return;
    let vars: Array<{ name: string; value: string }>;
    try {
      vars = JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as Array<{ name: string; value: string }>;
    } catch {
      firstError ??= `dev-${n}: v: line that is not base64 JSON`;
      return;
    }
    for (const v of vars) if (p.want.get(v.name) === v.value) left.delete(v.name);
    if (left.size === 0) {
      p.reachedAt[n] = now - p.start;
      p.reached += 1;
      if (p.reached === matching) p.onAllReached();
    }
  };
  const sockets: Socket[] = [];
  const vPrefix = `v:${cfg.apiKey}:`;
  const open = async (n: number): Promise<void> => {
    const s = await openVerified({ port: cfg.tcpPort, apiKey: cfg.apiKey, deviceId: ids[n], timeoutMs: 30_000 });
    let pending = '';
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      pending += d.toString('latin1');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith(vPrefix)) onV(n, line.slice(vPrefix.length), now);
        else if (line.startsWith('e:')) firstError ??= `dev-${n}: ${line.slice(0, 200)}`;
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      closedEver += 1;
      if (measuring) closed += 1;
    });
    s.write(`d:${cfg.apiKey}:${b64json(labelsOf(n))}\n`);
    sockets[n] = s;
  };
  const tConnect = performance.now();
  // A few dozen at a time: a thousand SYNs at once would measure the accept backlog instead.
  for (let i = 0; i < cfg.devices; i += 50) await Promise.all(ids.slice(i, i + 50).map((_, j) => open(i + j)));

  // The daemon applies `d:` asynchronously: wait until it lists every device online with its labels.
  let listing = '';
  const labelled = async (): Promise<number> => {
    const r = await fetch(`${base}/api/devices`, { headers });
    if (r.status !== 200) throw new Error(`GET /api/devices: ${r.status} ${(await r.text()).slice(0, 200)}`);
    const body = (await r.json()) as { devices: Array<{ deviceId: string; online: boolean; labels: Record<string, string> }> };
    listing = `${body.devices.length} listed, ${body.devices.filter((d) => d.online).length} online, ${body.devices.filter((d) => d.labels.platform !== undefined).length} with labels; ${closedEver} connections closed here`;
    return body.devices.filter((d) => d.online && d.labels.platform !== undefined).length;
  };
  const deadline = tConnect + cfg.registerMs;
  let registeredMs: number | null = null;
  for (;;) {
    if (firstError) throw new Error(`a device was refused: ${firstError}`);
    if ((await labelled()) >= cfg.devices) {
      registeredMs = performance.now() - tConnect;
      break;
    }
    if (performance.now() > deadline) break;
    await sleep(100);
  }

  const request = async (method: string, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${base}${path}`, { method, headers, body: JSON.stringify(body) });
    const text = await r.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { text: text.slice(0, 200) };
    }
    return { status: r.status, body: parsed };
  };

  const run = async (what: PhaseResult['what'], round: number, want: Map<string, string>, send: () => Promise<{ status: number; body: Record<string, unknown> }>): Promise<PhaseResult> => {
    let allReached: () => void = () => undefined;
    const all = new Promise<void>((r) => (allReached = r));
    const p: Phase = {
      start: 0,
      want,
      left: isMatch.map((m) => (m ? new Set(want.keys()) : null)),
      reachedAt: ids.map(() => null),
      stray: ids.map(() => false),
      reached: 0,
      onAllReached: allReached,
    };
    p.start = performance.now();
    phase = p;
    const answer = await send();
    const answerMs = performance.now() - p.start;
    if (answer.status < 200 || answer.status >= 300) throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
    await Promise.race([all, sleep(Math.max(0, cfg.reachMs - answerMs))]);
    // Strays to devices outside the selector could still be on their way.
    await sleep(cfg.settleMs);
    phase = null;
    const times = p.reachedAt.filter((t): t is number => t !== null);
    return {
      what,
      round,
      status: answer.status,
      delivered: typeof answer.body.delivered === 'number' ? answer.body.delivered : null,
      pending: typeof answer.body.pending === 'number' ? answer.body.pending : null,
      answerMs,
      matching,
      reached: p.reached,
      missing: ids.filter((_, n) => isMatch[n] && p.reachedAt[n] === null).slice(0, 10),
      others: cfg.devices - matching,
      strays: p.stray.filter(Boolean).length,
      strayIds: ids.filter((_, n) => p.stray[n]).slice(0, 10),
      latency: summarise(times),
      lastReachedMs: times.length ? Math.max(...times) : null,
    };
  };

  // Warm the HTTP client's connection, so the first measured request does not pay for it.
  await labelled();
  const strategies = Array.from({ length: cfg.rounds }, (_, r) => ({
    name: `fast-${r}`,
    vars: [
      { name: 'enemy_speed', value: String(7 + r), type: 'integer' },
      { name: 'spawn_ms', value: String(400 + r), type: 'integer' },
      { name: 'boss', value: `boss-${r}`, type: 'string' },
    ],
  }));
  for (const st of strategies) {
    const created = await request('POST', '/api/strategies', { name: st.name, vars: st.vars.map((v) => ({ name: v.name, value: v.type === 'integer' ? Number(v.value) : v.value, type: v.type })) });
    if (created.status !== 201) throw new Error(`POST /api/strategies: ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`);
  }

  await ctl.ready();
  measuring = true;
  const target = { labels: SELECTOR };
  const phases: PhaseResult[] = [];
  for (const [r, st] of strategies.entries()) {
    const value = `hard-${r}`;
    phases.push(await run('override', r, new Map([['difficulty', value]]), () => request('PUT', '/api/vars/difficulty', { value, type: 'string', target })));
    phases.push(await run('strategy', r, new Map(st.vars.map((v) => [v.name, v.value])), () => request('POST', `/api/strategies/${st.name}/apply`, { target })));
  }
  measuring = false;
  for (const s of sockets) s?.destroy();
  return { selector: SELECTOR, devices: cfg.devices, registeredMs, listing, phases, closed, firstError };
});
