/**
 * The dashboard in Chromium against a real daemon (embedded backends, an admin token, fixed ports so
 * it can be stopped and started again on the same address): the page fits a 390 px phone and still
 * looks right at 1280 px; devices turn "unknown" while the daemon is unreachable and are re-read when
 * it is back; devices that came and went are told apart from none ever connected; the Admin tab is
 * only offered once an operator token was given; a variable can be deleted (after a confirmation, in
 * every open dashboard of the key); and a long devices list is windowed, with search boxes instead of
 * a dropdown per device.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN_TOKEN } from '../helpers/admin.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { launchBrowser, screenshotPath } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/free-port.js';
import { tempDir } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import {
  type BrowserGlobals,
  PageWatch,
  collectPageErrors,
  expectAttr,
  expectCount,
  expectOnScreen,
  expectText,
  hidden,
  pageWidth,
  requireBuiltDashboard,
  textOf,
  until,
  visible,
} from './page-helpers.js';

const VARS = [
  { name: 'speed', type: 'integer', value: '42' },
  { name: 'gravity', type: 'float', value: '9.81' },
  { name: 'godMode', type: 'boolean', value: 'false' },
  { name: 'playerName', type: 'string', value: 'Ada Lovelace of the Analytical Engine' },
];

interface Open {
  page: Page;
  watch: PageWatch;
  errors: string[];
  context: BrowserContext;
}

describe('dashboard views in Chromium (layout, device states, admin entry, deleting variables, many devices)', function () {
  this.timeout(90_000);

  let daemon: Daemon;
  let browser: Browser;
  let ports: { httpPort: number; tcpPort: number };
  const data = tempDir('observerio-e2e-views-');
  const contexts: BrowserContext[] = [];
  const sockets: LineClient[] = [];

  const start = (): Promise<Daemon> => startDaemon({ dataDir: data.path, overrides: { adminToken: ADMIN_TOKEN, ...ports } });

  before(async function () {
    this.timeout(60_000);
    requireBuiltDashboard();
    ports = { httpPort: await freePort(), tcpPort: await freePort() };
    daemon = await start();
    browser = await launchBrowser();
  });

  after(async function () {
    this.timeout(30_000);
    for (const s of sockets) s.close();
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await daemon?.stop();
    data.remove();
  });

  /** A page signed in as `user` (session put where the page keeps it), live and with its snapshots read. */
  async function openSignedIn(user: TestUser, viewport = { width: 1280, height: 800 }): Promise<Open> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const session = JSON.stringify(JSON.stringify({ token: user.token, apiKey: user.apiKey, email: user.email }));
    await context.addInitScript(`localStorage.setItem('observerio.session', ${session})`);
    const page = await context.newPage();
    const watch = new PageWatch(page);
    const errors = collectPageErrors(page);
    const mark = watch.mark();
    await page.goto(`${daemon.http}/`);
    await expectAttr(page.getByTestId('ws-status'), 'data-state', 'open');
    await watch.waitLive(mark);
    return { page, watch, errors, context };
  }

  async function device(apiKey: string, deviceId: string): Promise<LineClient> {
    const c = await LineClient.open(daemon.tcpPort);
    sockets.push(c);
    c.line(`v:${apiKey}:${deviceId}`);
    expect(await c.next(5000)).to.equal('OK');
    return c;
  }

  const row = (page: Page, deviceId: string) => page.locator(`[data-testid="device-row"][data-device-id="${deviceId}"]`);

  /** Pairs of boxes inside one admin tree row that overlap (a name running under the status chip, ...). */
  async function treeOverlaps(page: Page): Promise<string[]> {
    return page.locator('.tree-row').evaluateAll((rows) => {
      const out: string[] = [];
      for (const r of rows) {
        const parts = [...r.querySelectorAll('.tree-main > *, .tree-facts > *')].filter((e) => e.getBoundingClientRect().width > 0);
        const boxes = parts.map((e) => ({ e, b: e.getBoundingClientRect() }));
        for (let i = 0; i < boxes.length; i++) {
          for (let j = i + 1; j < boxes.length; j++) {
            const a = boxes[i]!.b;
            const b = boxes[j]!.b;
            const overlap = Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
            if (overlap) out.push(`${r.getAttribute('data-testid')}: "${boxes[i]!.e.textContent}" overlaps "${boxes[j]!.e.textContent}"`);
          }
        }
        const right = r.getBoundingClientRect().right;
        if (right > (globalThis as unknown as BrowserGlobals).innerWidth + 0.5) out.push(`${r.getAttribute('data-testid')} ends at ${right} px`);
      }
      return out;
    });
  }

  it('fits a 390×844 screen (dashboard and admin view) and still lays out side by side at 1280×800', async () => {
    const user = await signedInUser(daemon);
    const dev = await device(user.apiKey, 'narrow-phone');
    const { page, errors } = await openSignedIn(user, { width: 390, height: 844 });
    dev.line(`i:${user.apiKey}:${b64(VARS)}`);
    dev.line(`l:${user.apiKey}:${b64([{ message: 'a log line long enough to wrap on a phone screen, with a field', level: 'warn', zone: 'north' }])}`);
    for (const v of VARS) await expectAttr(page.getByTestId(`var-row-${v.name}`), 'data-value', v.value);
    await visible(page.getByTestId('log-row'));
    await visible(row(page, 'narrow-phone'));

    expect(await pageWidth(page), 'dashboard at 390 px').to.deep.equal({ scrollWidth: 390, innerWidth: 390 });
    await expectOnScreen(page.locator('.topbar .brand'), 'brand');
    await expectOnScreen(page.getByTestId('ws-status'), 'connection badge');
    await expectOnScreen(page.getByTestId('signout'), 'Sign out');
    await expectOnScreen(page.getByTestId('copy-snippet'), 'Copy snippet');
    await expectOnScreen(page.getByTestId('new-var-toggle'), '+ Add');
    for (const v of VARS) {
      await expectOnScreen(page.getByTestId(`var-editor-${v.name}`), `${v.name} editor`);
      await expectOnScreen(page.getByTestId(`var-save-${v.name}`), `${v.name} Save`);
    }
    for (const id of ['log-search', 'log-level-filter', 'log-device-filter', 'logs-pause', 'logs-clear']) await expectOnScreen(page.getByTestId(id), id);
    await expectOnScreen(row(page, 'narrow-phone'), 'device row');
    expect(await pageWidth(page), 'after scrolling through it').to.deep.equal({ scrollWidth: 390, innerWidth: 390 });
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: screenshotPath('views-dashboard-390x844'), fullPage: true });

    // The admin view, signed out and then with the tree.
    await page.goto(`${daemon.http}/#/admin`);
    await visible(page.getByTestId('admin-signin-form'));
    expect(await pageWidth(page), 'admin sign-in at 390 px').to.deep.equal({ scrollWidth: 390, innerWidth: 390 });
    await page.getByTestId('admin-token').fill(ADMIN_TOKEN);
    await page.getByTestId('admin-signin-submit').click();
    await visible(page.getByTestId('tree'));
    await visible(page.getByTestId('tree-node-/observerio/tcp/listener'));
    expect(await pageWidth(page), 'admin tree at 390 px').to.deep.equal({ scrollWidth: 390, innerWidth: 390 });
    for (const id of ['admin-live', 'tree-expand-all', 'tree-collapse-all', 'admin-signout', 'kill-/observerio/tcp/listener']) await expectOnScreen(page.getByTestId(id), id);
    expect(await treeOverlaps(page), 'overlapping parts of tree rows at 390 px').to.deep.equal([]);
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: screenshotPath('views-admin-390x844'), fullPage: true });

    // 1280×800: nothing sideways either, variables and devices side by side, the tree in one line a row.
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(await pageWidth(page), 'admin tree at 1280 px').to.deep.equal({ scrollWidth: 1280, innerWidth: 1280 });
    expect(await treeOverlaps(page), 'overlapping parts of tree rows at 1280 px').to.deep.equal([]);
    await page.goto(`${daemon.http}/#/`);
    await visible(row(page, 'narrow-phone'));
    expect(await pageWidth(page), 'dashboard at 1280 px').to.deep.equal({ scrollWidth: 1280, innerWidth: 1280 });
    const vars = await page.locator('section.vars').boundingBox();
    const devices = await page.locator('section.devices').boundingBox();
    expect(vars && devices && devices.x >= vars.x + vars.width && Math.abs(devices.y - vars.y) < 1, `vars ${JSON.stringify(vars)} and devices ${JSON.stringify(devices)} side by side`).to.equal(true);
    for (const v of VARS) await expectOnScreen(page.getByTestId(`var-save-${v.name}`), `${v.name} Save at 1280 px`);
    for (const id of ['ws-status', 'signout', 'log-search', 'log-level-filter', 'log-device-filter', 'logs-pause']) await expectOnScreen(page.getByTestId(id), `${id} at 1280 px`);
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: screenshotPath('views-dashboard-1280x800') });
    expect(errors, 'uncaught errors in the page').to.deep.equal([]);
  });

  it('offers the Admin tab only once an operator token was given in the tab', async () => {
    const user = await signedInUser(daemon);
    const { page } = await openSignedIn(user);
    await visible(page.getByTestId('nav-dashboard'));
    expect(await page.getByTestId('nav-admin').count(), 'Admin tab for a game developer').to.equal(0);

    // The operator's way in: the admin URL (or the small link at the foot of the page) asks for the token.
    await expectOnScreen(page.getByTestId('operator-link'), 'operator link');
    await page.getByTestId('operator-link').click();
    await visible(page.getByTestId('admin-signin-form'));
    expect(await page.getByTestId('nav-admin').count(), 'Admin tab before the token is accepted').to.equal(0);
    await page.getByTestId('admin-token').fill('not-the-admin-token-at-all');
    await page.getByTestId('admin-signin-submit').click();
    await expectText(page.getByTestId('admin-error'), 'That admin token was rejected.');
    expect(await page.getByTestId('nav-admin').count(), 'Admin tab after a rejected token').to.equal(0);

    await page.getByTestId('admin-token').fill(ADMIN_TOKEN);
    await page.getByTestId('admin-signin-submit').click();
    await visible(page.getByTestId('tree'));
    await visible(page.getByTestId('nav-admin'));
    await page.getByTestId('nav-dashboard').click();
    await visible(page.getByTestId('api-key'));
    await page.getByTestId('nav-admin').click();
    await visible(page.getByTestId('tree'));

    // Forgetting the token takes the tab away again.
    await page.getByTestId('admin-signout').click();
    await visible(page.getByTestId('admin-signin-form'));
    await hidden(page.getByTestId('nav-admin'));
    expect(await page.getByTestId('nav-admin').count()).to.equal(0);
  });

  it('deletes a variable after a confirmation, and every open dashboard of the key drops it', async () => {
    const user = await signedInUser(daemon);
    const dev = await device(user.apiKey, 'deleting-device');
    const a = await openSignedIn(user);
    const b = await openSignedIn(user);
    dev.line(`i:${user.apiKey}:${b64(VARS)}`);
    for (const p of [a.page, b.page]) for (const v of VARS) await expectAttr(p.getByTestId(`var-row-${v.name}`), 'data-value', v.value);

    // Cancel keeps it.
    await a.page.getByTestId('var-delete-gravity').click();
    await visible(a.page.getByTestId('confirm-dialog'));
    expect(await textOf(a.page.getByTestId('confirm-dialog'))).to.include('gravity');
    await a.page.getByTestId('confirm-cancel').click();
    await hidden(a.page.getByTestId('confirm-dialog'));
    await visible(a.page.getByTestId('var-row-gravity'));

    await a.page.getByTestId('var-delete-gravity').click();
    await a.page.getByTestId('confirm-ok').click();
    await hidden(a.page.getByTestId('var-row-gravity'));
    // The other tab made no request: it heard of it on its live socket.
    await hidden(b.page.getByTestId('var-row-gravity'));
    for (const p of [a.page, b.page]) for (const name of ['speed', 'godMode', 'playerName']) await visible(p.getByTestId(`var-row-${name}`));
    const rest = await call<{ vars: Array<{ name: string }> }>(daemon, 'GET', '/api/vars', { token: user.token });
    expect(rest.body.vars.map((v) => v.name)).to.deep.equal(['speed', 'godMode', 'playerName']);

    // A reload reads the same; a device reporting it again brings it back.
    await a.page.reload();
    await visible(a.page.getByTestId('var-row-speed'));
    expect(await a.page.getByTestId('var-row-gravity').count()).to.equal(0);
    dev.line(`i:${user.apiKey}:${b64([{ name: 'gravity', type: 'float', value: '1.62' }])}`);
    await expectAttr(b.page.getByTestId('var-row-gravity'), 'data-value', '1.62');
    expect(a.errors.concat(b.errors), 'uncaught errors').to.deep.equal([]);
  });

  it('tells devices that came and went apart from none ever connected', async () => {
    const user = await signedInUser(daemon);
    const { page } = await openSignedIn(user);
    await expectText(page.getByTestId('devices-empty'), /No devices connected yet/);

    const one = await device(user.apiKey, 'came-and-went-1');
    const two = await device(user.apiKey, 'came-and-went-2');
    await visible(row(page, 'came-and-went-1'));
    await visible(row(page, 'came-and-went-2'));
    await expectText(page.getByTestId('device-count'), '2');
    one.close();
    two.close();
    await expectText(page.getByTestId('device-count'), '0');
    const empty = page.getByTestId('devices-empty');
    await expectText(empty, /No devices online — 2 seen before/);
    expect(await textOf(empty)).to.not.include('connected yet');
    // The ones seen are listed, greyed, as gone.
    const gone = page.getByTestId('device-gone-row');
    await expectCount(gone, 2);
    expect(await gone.evaluateAll((els) => els.map((e) => e.getAttribute('data-device-id')).sort())).to.deep.equal(['came-and-went-1', 'came-and-went-2']);
    expect(await row(page, 'came-and-went-1').count(), 'a gone device is not an online row').to.equal(0);

    // Coming back makes it an online row again, and only one of it.
    await device(user.apiKey, 'came-and-went-1');
    await visible(row(page, 'came-and-went-1'));
    await expectAttr(row(page, 'came-and-went-1'), 'data-state', 'online');
    await expectCount(gone, 1);
    await expectText(page.getByTestId('device-count'), '1');
  });

  it('windows a long devices list and offers search boxes instead of a dropdown per device', async () => {
    const user = await signedInUser(daemon);
    const N = 150;
    const devs: LineClient[] = [];
    for (let i = 0; i < N; i += 25) devs.push(...(await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, j) => device(user.apiKey, `many-${String(i + j).padStart(3, '0')}`)))));
    const { page, errors } = await openSignedIn(user);
    await expectText(page.getByTestId('device-count'), String(N));
    const rendered = await page.getByTestId('device-row').count();
    expect(rendered, 'device rows in the DOM').to.be.within(1, 60);

    // Scrolling the list brings the last one in.
    await page.getByTestId('devices-list').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await visible(row(page, `many-${N - 1}`));
    await expectOnScreen(row(page, `many-${N - 1}`), 'the last device after scrolling');

    // The devices card's search box.
    await page.getByTestId('device-filter').fill('many-042');
    await expectCount(page.getByTestId('device-row'), 1);
    await visible(row(page, 'many-042'));
    await page.getByTestId('device-filter').fill('');
    await until(async () => expect(await page.getByTestId('device-row').count()).to.be.greaterThan(1));

    // The log tail's device filter is a search box, not a 150-option dropdown.
    for (const i of [7, 8, 9]) devs[i]!.line(`l:${user.apiKey}:${b64([{ message: `hello from ${i}`, level: 'info' }])}`);
    await expectCount(page.getByTestId('log-list').getByTestId('log-row'), 3);
    expect(await page.locator('select option').count(), 'options in all dropdowns').to.be.below(20);
    await page.getByTestId('log-device-filter').fill('many-008');
    await expectCount(page.getByTestId('log-list').getByTestId('log-row'), 1);
    expect(await textOf(page.getByTestId('log-list'))).to.include('hello from 8');
    await page.getByTestId('log-device-filter').fill('');
    await expectCount(page.getByTestId('log-list').getByTestId('log-row'), 3);
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });

  it('puts the newest 100 lines of a busy tail in the page and the older ones as the list is scrolled', async () => {
    const user = await signedInUser(daemon);
    const dev = await device(user.apiKey, 'chatty-phone');
    const { page, errors } = await openSignedIn(user);
    const N = 250;
    for (let i = 0; i < N; i += 50) dev.line(`l:${user.apiKey}:${b64(Array.from({ length: 50 }, (_, j) => ({ message: `chatty line ${i + j}`, level: 'info' })))}`);
    const list = page.getByTestId('log-list');
    const rows = list.getByTestId('log-row');
    await expectText(page.getByTestId('log-summary'), /250 lines/);
    await expectCount(rows, 100);
    await expectText(page.getByTestId('log-more'), /150 older lines/);

    // Scrolling to the end brings the next hundred, then the rest; back at the top the page holds 100 again.
    const toEnd = (): Promise<void> => list.evaluate((el) => void (el.scrollTop = el.scrollHeight));
    await toEnd();
    await expectCount(rows, 200);
    await toEnd();
    await expectCount(rows, N);
    await hidden(page.getByTestId('log-more'));
    const text = await textOf(list);
    for (let i = 0; i < N; i++) expect(text).to.include(`chatty line ${i}`);
    await list.evaluate((el) => void (el.scrollTop = 0));
    await expectCount(rows, 100);
    await visible(page.getByTestId('log-more'));
    expect(await pageWidth(page), 'no overflow from the note').to.deep.equal({ scrollWidth: 1280, innerWidth: 1280 });
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });

  it('shows devices as unknown while the daemon is unreachable and re-reads them when it is back', async () => {
    const user = await signedInUser(daemon);
    await device(user.apiKey, 'stale-phone');
    const { page, watch, errors } = await openSignedIn(user);
    const r = row(page, 'stale-phone');
    await visible(r);
    await expectAttr(r, 'data-state', 'online');
    expect(await r.locator('.dot').getAttribute('class')).to.include('running');

    await daemon.stop();
    await until(async () => expect(await page.getByTestId('ws-status').getAttribute('data-state')).to.not.equal('open'));
    await expectText(page.getByTestId('ws-status'), /unreachable/i);
    await expectAttr(r, 'data-state', 'unknown');
    expect(await r.locator('.dot').getAttribute('class'), 'the dot while unreachable').to.not.include('running');
    await expectText(page.getByTestId('devices-stale'), /unknown/i);
    await page.screenshot({ path: screenshotPath('views-daemon-unreachable') });

    // Back on the same address (the session survives in the data dir): the page re-reads the list,
    // where the device is gone (its socket died with the daemon) until it connects again.
    const mark = watch.mark();
    daemon = await start();
    if ((await page.getByTestId('ws-retry').count()) > 0) await page.getByTestId('ws-retry').click().catch(() => undefined);
    await expectAttr(page.getByTestId('ws-status'), 'data-state', 'open', 30_000);
    await watch.waitLive(mark);
    await hidden(page.getByTestId('devices-stale'));
    await expectText(page.getByTestId('device-count'), '0');
    await visible(page.locator('[data-testid="device-gone-row"][data-device-id="stale-phone"]'));
    await device(user.apiKey, 'stale-phone');
    await expectAttr(row(page, 'stale-phone'), 'data-state', 'online');
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });
});
