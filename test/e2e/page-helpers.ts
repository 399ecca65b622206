/**
 * What the browser end-to-end tests share: polling assertions on Playwright locators (playwright-core
 * has no `expect`), a recorder of the page's WebSocket frames (to wait for the server's `ready`), a
 * collector of uncaught page errors, and a line waiter for raw TCP devices.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Locator, Page } from 'playwright-core';
import { eventually } from '../helpers/eventually.js';
import type { LineClient } from '../helpers/tcp-client.js';

/** The built dashboard the daemon serves; `make test` builds it first. */
export const DASHBOARD_INDEX = fileURLToPath(new URL('../../dist/dashboard/index.html', import.meta.url));

export function requireBuiltDashboard(): void {
  if (!existsSync(DASHBOARD_INDEX)) {
    throw new Error(
      `${DASHBOARD_INDEX} is missing: build the dashboard first with 'node scripts/build-dashboard.mjs' (or run 'make test' / 'make e2e', which build it)`,
    );
  }
}

/** How long a single UI expectation may take before it fails (bounded; tests have 60 s each). */
export const UI_TIMEOUT_MS = 15_000;
/** Each probe inside a polling expectation gives up quickly so the poll loop stays responsive. */
const PROBE_MS = 1_000;

/** Polls `fn` until it stops throwing. With E2E_TRACE=1, waits over 500 ms are printed with their caller. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = UI_TIMEOUT_MS): Promise<T> {
  const t0 = Date.now();
  const r = await eventually(fn, { timeoutMs, intervalMs: 50 });
  if (process.env.E2E_TRACE && Date.now() - t0 > 500) console.log(`  slow wait ${Date.now() - t0} ms ${new Error().stack?.split('\n')[3]?.trim() ?? ''}`);
  return r;
}

export async function textOf(loc: Locator): Promise<string> {
  return ((await loc.textContent({ timeout: PROBE_MS })) ?? '').replace(/\s+/g, ' ').trim();
}

/** Waits until the locator's (whitespace-collapsed) text matches. */
export async function expectText(loc: Locator, want: string | RegExp, timeoutMs = UI_TIMEOUT_MS): Promise<string> {
  return until(async () => {
    const text = await textOf(loc);
    if (typeof want === 'string') expect(text, `text of ${loc}`).to.equal(want);
    else expect(text, `text of ${loc}`).to.match(want);
    return text;
  }, timeoutMs);
}

/** Waits until the locator's attribute equals `want`. */
export async function expectAttr(loc: Locator, name: string, want: string, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
  await until(async () => expect(await loc.getAttribute(name, { timeout: PROBE_MS }), `${name} of ${loc}`).to.equal(want), timeoutMs);
}

/** Waits until the locator matches exactly `n` elements. */
export async function expectCount(loc: Locator, n: number, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
  await until(async () => expect(await loc.count(), `count of ${loc}`).to.equal(n), timeoutMs);
}

export async function visible(loc: Locator, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
  await loc.waitFor({ state: 'visible', timeout: timeoutMs });
}

export async function hidden(loc: Locator, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
  await loc.waitFor({ state: 'hidden', timeout: timeoutMs });
}

type Seen =
  | { seq: number; kind: 'ws'; ws: number }
  | { seq: number; kind: 'frame'; ws: number; data: Record<string, unknown> }
  | { seq: number; kind: 'done'; path: string; issued: number };

/** The REST snapshots each dashboard panel reads when its live socket opens. */
export const SNAPSHOT_PATHS = ['/api/devices', '/api/vars', '/api/logs'];

/**
 * What the page does on the network, in the order Playwright reports it: WebSockets opened, JSON
 * frames received on them, and /api/ requests finished (with when each was issued). Tests use it to
 * start device traffic only once the page is really live:
 * - the daemon sends `{"type":"ready"}` once a dashboard socket's key subscription is live (events
 *   published before that are not delivered);
 * - each panel re-reads a REST snapshot when the socket opens and *replaces* its list with the answer,
 *   so an event that arrives while that snapshot is in flight is overwritten: a device row or a
 *   variable vanishes (a dashboard bug, reproduced by snapshot-race.repro.ts). Waiting for those
 *   snapshots keeps the tests deterministic until it is fixed.
 */
export class PageWatch {
  readonly seen: Seen[] = [];
  private seq = 0;
  private wsCount = 0;
  private readonly issued = new WeakMap<object, number>();

  constructor(private readonly page: Page) {
    page.on('websocket', (ws) => {
      const id = ++this.wsCount;
      this.seen.push({ seq: ++this.seq, kind: 'ws', ws: id });
      ws.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string') return;
        try {
          this.seen.push({ seq: ++this.seq, kind: 'frame', ws: id, data: JSON.parse(payload) as Record<string, unknown> });
        } catch {
          // not JSON: not ours to check here
        }
      });
    });
    page.on('request', (req) => {
      if (new URL(req.url()).pathname.startsWith('/api/')) this.issued.set(req, ++this.seq);
    });
    page.on('requestfinished', (req) => {
      const issued = this.issued.get(req);
      if (issued !== undefined) this.seen.push({ seq: ++this.seq, kind: 'done', path: new URL(req.url()).pathname, issued });
    });
  }

  /** A position to wait from: only what happens after it counts. */
  mark(): number {
    return this.seq;
  }

  /** The data of WebSocket frames received so far (for assertions and failure messages). */
  frames(after = 0): Array<Record<string, unknown>> {
    return this.seen.flatMap((x) => (x.kind === 'frame' && x.seq > after ? [x.data] : []));
  }

  async waitFrame(pred: (d: Record<string, unknown>) => boolean, after: number, timeoutMs = UI_TIMEOUT_MS): Promise<{ seq: number; ws: number; data: Record<string, unknown> }> {
    return until(() => {
      const f = this.seen.find((x) => x.seq > after && x.kind === 'frame' && pred(x.data));
      if (!f || f.kind !== 'frame') throw new Error(`no matching WebSocket frame after #${after}; last frames: ${JSON.stringify(this.frames().slice(-5))}`);
      return f;
    }, timeoutMs);
  }

  /**
   * Waits until a socket opened after `after` is live (`ready`) and the snapshots the panels read
   * when it opened have come back and been rendered.
   */
  async waitLive(after: number, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
    const ready = await this.waitFrame((d) => d.type === 'ready', after, timeoutMs);
    const opened = this.seen.find((x) => x.kind === 'ws' && x.ws === ready.ws)?.seq ?? after;
    await until(() => {
      for (const path of SNAPSHOT_PATHS) {
        const done = this.seen.some((x) => x.kind === 'done' && x.path === path && x.issued > opened);
        if (!done) throw new Error(`the page has not re-read ${path} since its socket opened`);
      }
    }, timeoutMs);
    // Let the page apply those answers: a frame and a task after they arrived.
    await this.page.evaluate('new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))');
  }
}

/** Collects uncaught exceptions thrown in the page, so a test can assert there were none. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`${err.name}: ${err.message}`));
  return errors;
}

/** Waits for the first line at index ≥ `from` that satisfies `pred`; returns it with its index. */
export async function waitForLine(client: LineClient, from: number, pred: (line: string) => boolean, timeoutMs = UI_TIMEOUT_MS): Promise<{ line: string; index: number }> {
  const deadline = Date.now() + timeoutMs;
  for (let i = from; ; i++) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no matching line from #${from}; got ${JSON.stringify(client.lines.slice(from))}`);
    const lines = await client.waitLines(i + 1, left);
    const line = lines[i] as string;
    if (pred(line)) return { line, index: i };
  }
}

/**
 * Where an element is on screen, checked as a person would see it: the window is scrolled (vertically
 * only, so a horizontally scrolled box is not cheated into view) until the element is on screen, then
 * its box must lie inside the viewport's width and the point at its centre must hit the element itself
 * (nothing covers it and no overflowing ancestor clips it away).
 */
/** The few browser globals the in-page checks use (the tests compile without the DOM library). */
export interface BrowserGlobals {
  innerWidth: number;
  innerHeight: number;
  scrollX: number;
  scrollY: number;
  scrollTo(x: number, y: number): void;
  document: { documentElement: { scrollWidth: number }; elementFromPoint(x: number, y: number): unknown };
}

export async function onScreen(loc: Locator): Promise<{ left: number; right: number; width: number; viewport: number; hit: boolean }> {
  return loc.evaluate((el) => {
    const w = globalThis as unknown as BrowserGlobals;
    const r0 = el.getBoundingClientRect();
    w.scrollTo(w.scrollX, w.scrollY + r0.top - w.innerHeight / 3);
    const r = el.getBoundingClientRect();
    const at = w.document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) as typeof el | null;
    return { left: r.left, right: r.right, width: r.width, viewport: w.innerWidth, hit: !!at && (at === el || el.contains(at)) };
  });
}

/** Fails unless `loc` is fully inside the viewport's width and not covered or clipped (see onScreen). */
export async function expectOnScreen(loc: Locator, what: string): Promise<void> {
  const box = await onScreen(loc);
  expect(box.width, `${what}: width`).to.be.greaterThan(0);
  expect(box.left, `${what}: left edge`).to.be.at.least(0);
  expect(box.right, `${what}: right edge within the ${box.viewport} px viewport`).to.be.at.most(box.viewport);
  expect(box.hit, `${what}: visible at its centre (not covered or clipped)`).to.equal(true);
}

/** The document's width and the viewport's: equal when nothing makes the page scroll sideways. */
export async function pageWidth(page: Page): Promise<{ scrollWidth: number; innerWidth: number }> {
  return page.evaluate(() => {
    const w = globalThis as unknown as BrowserGlobals;
    return { scrollWidth: w.document.documentElement.scrollWidth, innerWidth: w.innerWidth };
  });
}
