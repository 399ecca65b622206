/**
 * Dashboard smoothness with 1,000 devices (issue 11): the built daemon, `observerio simulate
 * --devices 1000` in its own process logging steadily, and the dashboard in Debian's Chromium
 * (playwright-core). The page's long tasks (PerformanceObserver 'longtask', tasks over 50 ms) are
 * collected while it loads and renders the 1,000 devices, then during a steady window in which the
 * devices keep logging and the devices list is scrolled. Reported: the longest task and the total
 * blocking time (the sum of each task's time over 50 ms) of each phase, and the CPU the page's
 * renderer process used in each (from /proc: on a shared machine, long tasks stretch with whatever
 * else runs, CPU seconds much less). Screenshots of the loaded page at 1280×800 and 390×844 go to
 * test-output/ (not committed).
 *
 *   BENCH_ONLY=dashboard QUICK=1 node --import tsx test/bench/run.ts
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchBrowser, screenshotPath } from '../helpers/browser.js';
import type { BenchContext, Row, ScenarioReport } from './lib/context.js';
import { REPO } from './lib/daemon.js';
import { median, sleep } from './lib/stats.js';

const DEVICES = 1000;
/** Log lines per second per simulated device: 1,000 lines/s reach the page. */
const RATE = 1;
/** A long task blocks input for everything it lasts beyond this (the usual TBT definition). */
const BLOCKING_MS = 50;

interface Phase {
  longestMs: number;
  blockingMs: number;
  tasks: number;
  /** CPU seconds of Chromium's renderer processes in the phase; null where /proc cannot tell. */
  rendererCpuS: number | null;
}

interface DashboardRun {
  load: Phase;
  steady: Phase;
  steadyMs: number;
  devicesShown: number;
}

/** Installed before any page script: records every long task the page has from its start. */
const OBSERVE_LONG_TASKS = `
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
`;

function phase(tasks: Array<{ duration: number }>, rendererCpuS: number | null): Phase {
  let longestMs = 0;
  let blockingMs = 0;
  for (const t of tasks) {
    longestMs = Math.max(longestMs, t.duration);
    blockingMs += Math.max(0, t.duration - BLOCKING_MS);
  }
  return { longestMs, blockingMs, tasks: tasks.length, rendererCpuS };
}

/**
 * User plus system CPU seconds used so far by each Chromium renderer process this process started
 * (descendants with --type=renderer; the page's main thread lives in one), by pid; null off Linux.
 */
function rendererCpu(): Map<number, number> | null {
  try {
    const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] ?? '' }));
    const mine = new Set([process.pid]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const r of rows) {
        if (mine.has(r.pid) || !mine.has(r.ppid)) continue;
        mine.add(r.pid);
        grew = true;
      }
    }
    const out = new Map<number, number>();
    for (const r of rows) {
      if (!mine.has(r.pid) || !r.args.includes('--type=renderer')) continue;
      // After the command name, utime and stime are the 12th and 13th fields (clock ticks, 100 a second).
      const f = (readFileSync(`/proc/${r.pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
      out.set(r.pid, (Number(f[11]) + Number(f[12])) / 100);
    }
    return out;
  } catch {
    return null;
  }
}

/** CPU seconds the renderers used since `from`; one that started meanwhile counts whole, one that ended not at all. */
function cpuSince(from: Map<number, number> | null): number | null {
  const now = rendererCpu();
  if (from === null || now === null) return null;
  let s = 0;
  for (const [pid, cpu] of now) s += cpu - (from.get(pid) ?? 0);
  return s;
}

/** Takes (and forgets) the long tasks recorded so far. */
async function takeTasks(page: Page): Promise<Array<{ start: number; duration: number }>> {
  return page.evaluate('window.__longTasks.splice(0)') as Promise<Array<{ start: number; duration: number }>>;
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The device count the page shows (the devices card's counter). */
async function devicesShown(page: Page): Promise<number> {
  const text = await page.getByTestId('device-count').textContent({ timeout: 1000 });
  return Number((text ?? '').replace(/[^0-9]/g, ''));
}

function startSimulator(tcpPort: number, apiKey: string, seconds: number): ChildProcess {
  const args = [join(REPO, 'bin', 'observerio.js'), 'simulate', '--api-key', apiKey, '--devices', String(DEVICES), '--duration', String(seconds), '--tcp', `127.0.0.1:${tcpPort}`, '--rate', String(RATE), '--var-interval', '5', '--quiet', '--json'];
  return spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } });
}

export async function dashboardScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, 'seconds'>> {
  const steadyMs = ctx.quick ? 5000 : 15_000;
  const daemon = await ctx.daemon('dashboard');
  const user = await daemon.user('dashboard');
  const runs: DashboardRun[] = [];
  // Long enough for the devices to connect, every run's load and steady phases, and the screenshots.
  const sim = startSimulator(daemon.tcpPort, user.apiKey, 60 + ctx.runs * (steadyMs / 1000 + 40));
  const browser = await launchBrowser();
  try {
    await until(`${DEVICES} devices connected`, 60_000, async () => {
      const res = await fetch(`${daemon.http}/api/devices`, { headers: { authorization: `Bearer ${user.token}` } });
      const n = ((await res.json()) as { devices: unknown[] }).devices.length;
      return n >= DEVICES;
    });
    ctx.log(`  ${DEVICES} simulated devices connected, ${RATE} line/s each`);
    const session = JSON.stringify(JSON.stringify({ token: user.token, apiKey: user.apiKey, email: user.email }));
    for (let r = 0; r < ctx.runs; r++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript(`localStorage.setItem('observerio.session', ${session}); ${OBSERVE_LONG_TASKS}`);
      const page = await context.newPage();
      const loadCpu = rendererCpu();
      await page.goto(`${daemon.http}/`);
      await until('the page to list the devices', 30_000, async () => (await devicesShown(page)) >= DEVICES);
      // Let the first snapshot's render and the first tail flushes settle into the load phase.
      await sleep(1000);
      const load = phase(await takeTasks(page), cpuSince(loadCpu));

      const steadyCpu = rendererCpu();
      const started = Date.now();
      const devices = page.locator('section.devices');
      await devices.hover();
      while (Date.now() - started < steadyMs) {
        await page.mouse.wheel(0, 400);
        await sleep(250);
      }
      const steady = phase(await takeTasks(page), cpuSince(steadyCpu));
      const shown = await devicesShown(page);
      runs.push({ load, steady, steadyMs, devicesShown: shown });
      const cpu = (p: Phase): string => (p.rendererCpuS === null ? '' : `, renderer CPU ${p.rendererCpuS.toFixed(2)} s`);
      ctx.log(
        `  run ${r + 1}: load longest ${load.longestMs.toFixed(0)} ms, TBT ${load.blockingMs.toFixed(0)} ms (${load.tasks} long tasks${cpu(load)}); ` +
          `steady ${steadyMs / 1000} s longest ${steady.longestMs.toFixed(0)} ms, TBT ${steady.blockingMs.toFixed(0)} ms (${steady.tasks} long tasks${cpu(steady)})`,
      );
      if (r === 0) {
        await page.evaluate('window.scrollTo(0, 0)');
        await page.screenshot({ path: screenshotPath('dashboard-1000-1280x800') });
        await page.screenshot({ path: screenshotPath('dashboard-1000-1280x800-full'), fullPage: true });
        await page.setViewportSize({ width: 390, height: 844 });
        await sleep(1500);
        await page.screenshot({ path: screenshotPath('dashboard-1000-390x844') });
        await page.screenshot({ path: screenshotPath('dashboard-1000-390x844-full'), fullPage: true });
      }
      await context.close();
    }
  } finally {
    await browser.close().catch(() => undefined);
    sim.kill('SIGTERM');
  }
  const m = (f: (r: DashboardRun) => number): number => median(runs.map(f));
  const rows: Row[] = [
    { metric: `longest task while loading ${DEVICES.toLocaleString()} devices`, figure: m((r) => r.load.longestMs), unit: 'ms', target: '(informative)', baseline: null, pass: null },
    { metric: 'total blocking time while loading', figure: m((r) => r.load.blockingMs), unit: 'ms', target: '(informative)', baseline: null, pass: null },
    { metric: `longest task, ${steadyMs / 1000} s of ${(DEVICES * RATE).toLocaleString()} lines/s while scrolling`, figure: m((r) => r.steady.longestMs), unit: 'ms', target: '(informative)', baseline: null, pass: null },
    { metric: `total blocking time in those ${steadyMs / 1000} s`, figure: m((r) => r.steady.blockingMs), unit: 'ms', target: '(informative)', baseline: null, pass: null },
  ];
  const steadyCpu = runs.map((r) => r.steady.rendererCpuS);
  if (steadyCpu.every((c): c is number => c !== null)) {
    const share = median(steadyCpu.map((c, i) => (c / (runs[i] as DashboardRun).steadyMs) * 1000 * 100));
    rows.push({ metric: `page's renderer CPU in those ${steadyMs / 1000} s (share of one core)`, figure: share, unit: '%', target: '(informative)', baseline: null, pass: null });
  }
  return {
    id: 'dashboard',
    title: `Dashboard in Chromium with ${DEVICES.toLocaleString()} simulated devices (long tasks, 1280×800)`,
    rows,
    cpu: {},
    runs,
    notes: ['Long tasks are main-thread tasks over 50 ms (PerformanceObserver "longtask"); total blocking time sums what each lasts beyond 50 ms. Screenshots in test-output/dashboard-1000-*.png.'],
  };
}
