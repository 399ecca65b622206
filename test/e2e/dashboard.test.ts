/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a real daemon on
 * real Redis and Meilisearch. A scripted device speaks the wire protocol over TCP (raw lines, so the
 * test sees exactly what reaches the socket); everything on the page is driven and read through its
 * test ids. The steps share one daemon, one signed-in page and one device, in order.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { decodeVarsLine } from '../helpers/admin.js';
import { launchBrowser, screenshotPath } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import {
  PageWatch,
  collectPageErrors,
  expectAttr,
  expectCount,
  expectText,
  hidden,
  requireBuiltDashboard,
  textOf,
  until,
  visible,
  waitForLine,
} from './page-helpers.js';

const PASSWORD = 'correct horse battery staple';
const DEVICE_ID = 'e2e-pixel-8';
/**
 * Device rows come from `device` events plus a REST re-read every 15 s that replaces the list; a
 * re-read in flight while a device connects or leaves undoes that event until the next re-read (a
 * dashboard bug, reproduced by snapshot-race.repro.ts), so waits on device rows outlast one period.
 */
const DEVICE_WAIT_MS = 20_000;
const word = (prefix: string): string => `${prefix}${randomBytes(5).toString('hex')}`;

interface SignedIn {
  page: Page;
  watch: PageWatch;
  errors: string[];
  email: string;
  apiKey: string;
}

/** Opens the dashboard in a fresh context, creates an account in the page and waits until it is live. */
async function signUpInPage(context: BrowserContext, http: string, email: string): Promise<SignedIn> {
  const page = await context.newPage();
  const watch = new PageWatch(page);
  const errors = collectPageErrors(page);
  await page.goto(`${http}/`);
  await page.getByTestId('show-signup').click();
  await visible(page.getByTestId('signup-form'));
  await page.getByTestId('signup-email').fill(email);
  await page.getByTestId('signup-password').fill(PASSWORD);
  const mark = watch.mark();
  await page.getByTestId('signup-submit').click();
  const apiKey = await expectText(page.getByTestId('api-key'), /^[A-Za-z0-9]{12}$/);
  await expectAttr(page.getByTestId('ws-status'), 'data-state', 'open');
  await watch.waitLive(mark);
  return { page, watch, errors, email, apiKey };
}

/** The session token the page keeps in localStorage (to ask the REST API what the page would). */
async function sessionToken(page: Page): Promise<string> {
  const raw: unknown = await page.evaluate("localStorage.getItem('observerio.session')");
  expect(raw, 'session in localStorage').to.be.a('string');
  return (JSON.parse(raw as string) as { token: string }).token;
}

/** Waits until Meilisearch has indexed a log containing `q` for this session's key. */
async function waitIndexed(http: string, token: string, q: string): Promise<void> {
  await until(async () => {
    const res = await fetch(`${http}/api/logs?q=${encodeURIComponent(q)}&limit=10`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { hits: Array<{ message: string }> };
    expect(body.hits.map((h) => h.message).join('\n')).to.include(q);
  }, 20_000);
}

/** Verifies a raw device for `apiKey`; returns it after its `OK`. */
async function connectDevice(daemon: Daemon, apiKey: string, deviceId: string): Promise<LineClient> {
  const c = await LineClient.open(daemon.tcpPort);
  c.line(`v:${apiKey}:${deviceId}`);
  expect(await c.next(5000)).to.equal('OK');
  return c;
}

describe('dashboard in Chromium (real Redis + Meilisearch)', function () {
  this.timeout(60_000);

  let daemon: Daemon;
  let browser: Browser;
  let contextA: BrowserContext;
  let contextB: BrowserContext | undefined;
  let A: SignedIn;
  let device: LineClient | undefined;
  const sockets: LineClient[] = [];

  const emailA = `${word('alice-')}@example.com`;
  const unique = word('zephyrquartz');
  const logs = [
    { message: `player spawned near the ${unique} gate`, level: 'info', timestamp: Date.now(), zone: 'north' },
    { message: 'frame time above budget', level: 'warn', timestamp: Date.now(), ms: 41 },
    { message: 'shader compile failed: water.frag', level: 'error', timestamp: Date.now() },
    { message: 'asset cache warmed', level: 'debug', timestamp: Date.now() },
  ];
  /** Every log line the page's tail should hold, as sent. */
  const tail: Array<{ message: string; level: string }> = logs.map(({ message, level }) => ({ message, level }));
  /**
   * Every change that reached the device, oldest first: each is an entry of its own kind in the
   * device's timeline, so in the tail beside the game's lines (DESIGN.md §8 Timeline); the daemon
   * records them at level info.
   */
  const changes: Array<{ name: string; before: string; after: string }> = [];
  /** What the tail shows in all: the game's lines and the changes. */
  const rowsInTail = (): number => tail.length + changes.length;
  /** The tail's change rows are exactly `changes`, newest first, each saying who set what from what to what. */
  const expectChangeRows = async (page: Page): Promise<void> => {
    const rows = page.getByTestId('log-list').locator('[data-testid="log-row"][data-kind="change"]');
    const want = [...changes].reverse().map((c) => [c.name, 'info', DEVICE_ID, `${emailA} set ${c.name}: ${c.before} → ${c.after}`]);
    await until(async () => {
      const shown = await rows.evaluateAll((els) =>
        els.map((e) => [e.getAttribute('data-name'), e.getAttribute('data-level'), e.getAttribute('data-device-id'), (e.querySelector('[data-testid="change-text"]')?.textContent ?? '').replace(/\s+/g, ' ').trim()]),
      );
      expect(shown, 'change rows of the tail, newest first').to.deep.equal(want);
    });
  };
  const vars = [
    { name: 'speed', type: 'integer', value: '42' },
    { name: 'gravity', type: 'float', value: '9.81' },
    { name: 'godMode', type: 'boolean', value: 'false' },
    { name: 'playerName', type: 'string', value: 'Ada Lovelace' },
  ];

  before(async function () {
    this.timeout(60_000);
    requireBuiltDashboard();
    daemon = await startDaemon({ redis: true, meili: true });
    browser = await launchBrowser();
    contextA = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  });

  after(async function () {
    this.timeout(30_000);
    for (const s of sockets) s.close();
    await contextB?.close().catch(() => undefined);
    await contextA?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await daemon?.stop();
  });

  it('signs up, signs out, refuses a wrong password and signs in again', async () => {
    A = await signUpInPage(contextA, daemon.http, emailA);
    const { page, watch } = A;
    await expectText(page.getByTestId('user-email'), emailA);
    expect(await textOf(page.getByTestId('sdk-snippet'))).to.include(A.apiKey);
    await visible(page.getByTestId('devices-empty'));
    await visible(page.getByTestId('vars-empty'));
    await visible(page.getByTestId('logs-empty'));

    await page.getByTestId('signout').click();
    await visible(page.getByTestId('signin-form'));
    await expectText(page.getByTestId('auth-notice'), 'Signed out.');
    await hidden(page.getByTestId('api-key'));

    await page.getByTestId('signin-email').fill(emailA);
    await page.getByTestId('signin-password').fill(`${PASSWORD}-wrong`);
    await page.getByTestId('signin-submit').click();
    await expectText(page.getByTestId('auth-error'), 'Wrong email or password.');
    await hidden(page.getByTestId('api-key'), 1000);

    await page.getByTestId('signin-password').fill(PASSWORD);
    const mark = watch.mark();
    await page.getByTestId('signin-submit').click();
    await expectText(page.getByTestId('api-key'), A.apiKey);
    await expectText(page.getByTestId('user-email'), emailA);
    await expectAttr(page.getByTestId('ws-status'), 'data-state', 'open');
    await watch.waitLive(mark);
  });

  it("shows a scripted device's row, variables and logs live", async () => {
    const { page } = A;
    device = await connectDevice(daemon, A.apiKey, DEVICE_ID);
    sockets.push(device);

    const row = page.locator(`[data-testid="device-row"][data-device-id="${DEVICE_ID}"]`);
    await visible(row, DEVICE_WAIT_MS);
    await expectText(page.getByTestId('device-count'), '1', DEVICE_WAIT_MS);
    expect(await textOf(row.getByTestId('device-address'))).to.match(/^127\.0\.0\.1:\d+$/);

    device.line(`i:${A.apiKey}:${b64(vars)}`);
    device.line(`l:${A.apiKey}:${b64(logs)}`);

    for (const v of vars) {
      const r = page.getByTestId(`var-row-${v.name}`);
      await expectAttr(r, 'data-value', v.value);
      expect(await r.getAttribute('data-type')).to.equal(v.type);
    }
    expect(await page.getByTestId('var-editor-speed').getAttribute('type')).to.equal('number');
    expect(await page.getByTestId('var-editor-gravity').getAttribute('type')).to.equal('number');
    expect(await page.getByTestId('var-editor-godMode').getAttribute('type')).to.equal('checkbox');
    expect(await page.getByTestId('var-editor-godMode').isChecked()).to.equal(false);
    expect(await page.getByTestId('var-editor-playerName').inputValue()).to.equal('Ada Lovelace');

    const list = page.getByTestId('log-list');
    await expectAttr(list, 'data-mode', 'tail');
    await expectCount(list.getByTestId('log-row'), logs.length);
    // Newest first: one line, so all four share a receive time and must all be there, each with its level.
    const levels = await list.getByTestId('log-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-level')));
    expect([...levels].sort()).to.deep.equal(['debug', 'error', 'info', 'warn']);
    const text = await textOf(list);
    for (const l of logs) expect(text).to.include(l.message);
    expect(text).to.include(DEVICE_ID);

    // A later line lands on top of the tail.
    device.line(`l:${A.apiKey}:${b64([{ message: 'checkpoint reached', level: 'info' }])}`);
    await expectCount(list.getByTestId('log-row'), tail.length + 1);
    expect(await textOf(list.getByTestId('log-row').first())).to.include('checkpoint reached');
    tail.push({ message: 'checkpoint reached', level: 'info' });
    await visible(page.getByTestId('rate-chart'));
    expect(device.lines.filter((l) => l.startsWith('e:')), 'protocol errors').to.deep.equal([]);
  });

  it('delivers a value edited in the page to the device as a v: line', async () => {
    const { page } = A;
    const dev = device as LineClient;
    const from = dev.lines.length;

    await page.getByTestId('var-editor-speed').fill('77');
    await page.getByTestId('var-save-speed').click();
    const { line, index } = await waitForLine(dev, from, (l) => l.startsWith('v:'));
    expect(decodeVarsLine(line, A.apiKey)).to.deep.equal([{ name: 'speed', type: 'integer', value: '77' }]);
    const status = page.getByTestId('var-status-speed');
    await expectAttr(status, 'data-state', 'delivered');
    await expectText(status, /delivered to 1 device/);
    await expectAttr(page.getByTestId('var-row-speed'), 'data-value', '77');
    changes.push({ name: 'speed', before: '42', after: '77' });
    await expectChangeRows(page);

    // The boolean editor is a switch, saved explicitly too.
    await page.getByTestId('var-editor-godMode').check();
    await page.getByTestId('var-save-godMode').click();
    const flag = await waitForLine(dev, index + 1, (l) => l.startsWith('v:'));
    expect(decodeVarsLine(flag.line, A.apiKey)).to.deep.equal([{ name: 'godMode', type: 'boolean', value: 'true' }]);
    await expectText(page.getByTestId('var-status-godMode'), /delivered to 1 device/);
    await expectAttr(page.getByTestId('var-row-godMode'), 'data-value', 'true');
    changes.push({ name: 'godMode', before: 'false', after: 'true' });
    await expectChangeRows(page);
    await expectCount(page.getByTestId('log-list').getByTestId('log-row'), rowsInTail());
    expect(dev.lines.filter((l) => l.startsWith('e:')), 'protocol errors').to.deep.equal([]);
  });

  it('keeps a change while no device is connected and delivers it right after the next OK', async () => {
    const { page } = A;
    (device as LineClient).close();
    await visible(page.getByTestId('devices-empty'), DEVICE_WAIT_MS);
    await expectText(page.getByTestId('device-count'), '0', DEVICE_WAIT_MS);

    await page.getByTestId('var-editor-speed').fill('88');
    await page.getByTestId('var-save-speed').click();
    const status = page.getByTestId('var-status-speed');
    await expectAttr(status, 'data-state', 'waiting');
    await expectText(status, /waiting for a device/);
    await expectAttr(page.getByTestId('var-row-speed'), 'data-value', '88');

    device = await LineClient.open(daemon.tcpPort);
    sockets.push(device);
    device.line(`v:${A.apiKey}:${DEVICE_ID}`);
    const [ok, pushed] = await device.waitLines(2, 10_000);
    expect(ok).to.equal('OK');
    // Right after OK the device gets every override in effect for it (DESIGN.md §8), in the order they
    // were first set: the one made while it was away and the one it already had.
    expect(decodeVarsLine(pushed as string, A.apiKey)).to.deep.equal([
      { name: 'speed', type: 'integer', value: '88' },
      { name: 'godMode', type: 'boolean', value: 'true' },
    ]);

    await visible(page.locator(`[data-testid="device-row"][data-device-id="${DEVICE_ID}"]`), DEVICE_WAIT_MS);
    await expectAttr(status, 'data-state', 'delivered');
    await expectText(status, /delivered to 1 device/);
    // Only what it had not been sent before is a change in its timeline; godMode it already held.
    changes.push({ name: 'speed', before: '77', after: '88' });
    await expectChangeRows(page);
  });

  it('shows a second tab of the account where a change made in the first one went', async () => {
    const second = await contextA.newPage();
    try {
      const watch = new PageWatch(second);
      const errors = collectPageErrors(second);
      const mark = watch.mark();
      await second.goto(`${daemon.http}/`);
      await watch.waitLive(mark);
      const dev = device as LineClient;
      const from = dev.lines.length;

      await A.page.getByTestId('var-editor-gravity').fill('3.5');
      await A.page.getByTestId('var-save-gravity').click();
      const { line } = await waitForLine(dev, from, (l) => l.startsWith('v:'));
      expect(decodeVarsLine(line, A.apiKey)).to.deep.equal([{ name: 'gravity', type: 'float', value: '3.5' }]);
      // The second tab made no request: what it shows comes from the key's `vars` and `delivery` events.
      await expectAttr(second.getByTestId('var-row-gravity'), 'data-value', '3.5');
      const status = second.getByTestId('var-status-gravity');
      await expectAttr(status, 'data-state', 'delivered');
      await expectText(status, /delivered to 1 device/);
      changes.push({ name: 'gravity', before: '9.81', after: '3.5' });
      await expectChangeRows(A.page);
      expect(errors, 'uncaught errors in the second tab').to.deep.equal([]);
    } finally {
      await second.close();
    }
  });

  it('finds a log by a unique word with the search box, and only that log', async () => {
    const { page } = A;
    await waitIndexed(daemon.http, await sessionToken(page), unique);
    const list = page.getByTestId('log-list');
    const target = list.getByTestId('log-row').filter({ hasText: unique });
    const targetId = await target.getAttribute('data-log-id', { timeout: 5000 });

    await page.getByTestId('log-search').fill(unique);
    await expectAttr(list, 'data-mode', 'search');
    await expectText(page.getByTestId('log-search-summary'), new RegExp(`^1 match for “${unique}”`));
    await expectCount(list.getByTestId('log-row'), 1);
    const hit = list.getByTestId('log-row').first();
    expect(await hit.getAttribute('data-log-id')).to.equal(targetId);
    expect(await textOf(hit)).to.include(`player spawned near the ${unique} gate`);

    // A word no log has: an empty result with its own message.
    await page.getByTestId('log-search').fill(word('nomatch'));
    await expectText(page.getByTestId('log-search-summary'), /^0 matches for/);
    await visible(list.getByTestId('logs-empty'));
    await expectCount(list.getByTestId('log-row'), 0);

    await page.getByTestId('log-search').fill('');
    await expectAttr(list, 'data-mode', 'tail');
    await expectCount(list.getByTestId('log-row'), rowsInTail());
  });

  it('filters the tail by level', async () => {
    const { page } = A;
    const list = page.getByTestId('log-list');
    const rows = list.getByTestId('log-row');
    const filter = page.getByTestId('log-level-filter');
    const levelsShown = () => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-level')));

    for (const level of ['error', 'warn', 'info', 'debug']) {
      await filter.selectOption(level);
      const n = tail.filter((l) => l.level === level).length + (level === 'info' ? changes.length : 0);
      await expectCount(rows, n);
      expect(await levelsShown()).to.deep.equal(Array(n).fill(level));
    }
    await filter.selectOption('error');
    await expectCount(rows, 1);
    expect(await textOf(rows.first())).to.include('shader compile failed');

    // The filter applies to search results too.
    await page.getByTestId('log-search').fill(unique);
    await expectAttr(list, 'data-mode', 'search');
    await expectText(page.getByTestId('log-search-summary'), /^0 matches for .* at error/);
    await page.getByTestId('log-search').fill('');

    await filter.selectOption('');
    await expectAttr(list, 'data-mode', 'tail');
    await expectCount(rows, rowsInTail());

    // The kind filter keeps the game's lines or the changes apart.
    const kindFilter = page.getByTestId('log-kind-filter');
    await kindFilter.selectOption('log');
    await expectCount(rows, tail.length);
    expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).to.deep.equal(Array(tail.length).fill('log'));
    await kindFilter.selectOption('change');
    await expectCount(rows, changes.length);
    await expectChangeRows(page);
    await kindFilter.selectOption('');
    await expectCount(rows, rowsInTail());
  });

  it("shows a second user, in another browser context, none of the first user's data", async () => {
    contextB = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const B = await signUpInPage(contextB, daemon.http, `${word('bob-')}@example.com`);
    const pb = B.page;
    expect(B.apiKey).to.not.equal(A.apiKey);
    await visible(pb.getByTestId('devices-empty'));
    await expectText(pb.getByTestId('device-count'), '0');
    await visible(pb.getByTestId('vars-empty'));
    await visible(pb.getByTestId('logs-empty'));

    // While B watches, A's device keeps talking; A sees it, B does not.
    const canary = word('canary');
    const dev = device as LineClient;
    dev.line(`i:${A.apiKey}:${b64([{ name: 'canaryVar', type: 'string', value: canary }])}`);
    dev.line(`l:${A.apiKey}:${b64([{ message: `tenant check ${canary}`, level: 'warn' }])}`);
    await expectAttr(A.page.getByTestId('var-row-canaryVar'), 'data-value', canary);
    await visible(A.page.getByTestId('log-list').getByTestId('log-row').filter({ hasText: canary }));
    tail.push({ message: `tenant check ${canary}`, level: 'warn' });

    // B's own device shows up for B only.
    const devB = await connectDevice(daemon, B.apiKey, 'bob-tablet');
    sockets.push(devB);
    devB.line(`i:${B.apiKey}:${b64([{ name: 'bobOnly', type: 'integer', value: '5' }])}`);
    await visible(pb.locator('[data-testid="device-row"][data-device-id="bob-tablet"]'), DEVICE_WAIT_MS);
    await expectAttr(pb.getByTestId('var-row-bobOnly'), 'data-value', '5');

    // A search on B's page for a word of A's (already indexed: A's search found it) finds nothing.
    await pb.getByTestId('log-search').fill(unique);
    await expectText(pb.getByTestId('log-search-summary'), new RegExp(`^0 matches for “${unique}”`));
    await pb.getByTestId('log-search').fill('');

    expect(await textOf(pb.getByTestId('device-count'))).to.equal('1');
    expect(await pb.locator(`[data-testid="device-row"][data-device-id="${DEVICE_ID}"]`).count()).to.equal(0);
    const bVars = await pb.locator('[data-testid^="var-row-"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')));
    expect(bVars).to.deep.equal(['var-row-bobOnly']);
    await visible(pb.getByTestId('logs-empty'));
    expect(await pb.getByTestId('log-row').count()).to.equal(0);
    expect(await textOf(pb.locator('body'))).to.not.include(A.apiKey);
    expect(await textOf(pb.locator('body'))).to.not.include(canary);

    // And A never saw B's device or variable.
    await expectText(A.page.getByTestId('device-count'), '1', DEVICE_WAIT_MS);
    expect(await A.page.getByTestId('var-row-bobOnly').count()).to.equal(0);
    expect(await A.page.locator('[data-testid="device-row"][data-device-id="bob-tablet"]').count()).to.equal(0);
    // Nothing of A's ever reached B's WebSocket either.
    const bFrames = JSON.stringify(B.watch.frames());
    expect(bFrames).to.not.include(A.apiKey);
    expect(bFrames).to.not.include(canary);
    expect(bFrames).to.not.include(DEVICE_ID);
    expect(B.errors, 'uncaught errors in the second page').to.deep.equal([]);
  });

  it('saves a full-page screenshot with live data', async () => {
    const { page } = A;
    const dev = device as LineClient;
    // A little more traffic so the rate chart has something to draw.
    for (let i = 0; i < 5; i++) dev.line(`l:${A.apiKey}:${b64([{ message: `tick ${i}`, level: 'debug', frame: i }])}`);
    await expectCount(page.getByTestId('log-list').getByTestId('log-row'), rowsInTail() + 5);
    await until(async () => expect(Number(await textOf(page.getByTestId('rate-current')))).to.be.greaterThan(0));
    await expectAttr(page.getByTestId('ws-status'), 'data-state', 'open');
    const file = screenshotPath('dashboard');
    await page.screenshot({ path: file, fullPage: true });
    expect(A.errors, 'uncaught errors in the page').to.deep.equal([]);
  });
});
