/**
 * The §8 views in Chromium against a real daemon (embedded backends) with devices connected over
 * TCP: a device's page (reported, override, effective and source per variable; an override for that
 * device only reaches it and no other; reset; its log tail with change entries marked apart and a
 * kind filter), overrides with targets from the variables panel (a label selector's parse error is
 * the daemon's), strategies (create, apply to two selected devices in two clicks, the devices show
 * it, a stale edit's 409), history (live entries, revert, roll back after a confirmation, the
 * overrides list and the device page following), and the layout at 1280×800 and 390×844.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { decodeVarsLine } from '../helpers/admin.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { launchBrowser, screenshotPath } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import {
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
  waitForLine,
} from './page-helpers.js';

const VARS = [
  { name: 'speed', type: 'integer', value: '5' },
  { name: 'mode', type: 'string', value: 'easy' },
];

interface Open {
  page: Page;
  watch: PageWatch;
  errors: string[];
}

type Vars = Array<{ name: string; type: string; value: string }>;

describe('§8 views in Chromium (device page, overrides with targets, strategies, history)', function () {
  this.timeout(90_000);

  let daemon: Daemon;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const sockets: LineClient[] = [];

  before(async function () {
    this.timeout(60_000);
    requireBuiltDashboard();
    daemon = await startDaemon();
    browser = await launchBrowser();
  });

  after(async function () {
    this.timeout(30_000);
    for (const s of sockets) s.close();
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await daemon?.stop();
  });

  async function openSignedIn(user: TestUser, viewport = { width: 1280, height: 800 }, hash = ''): Promise<Open> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const session = JSON.stringify(JSON.stringify({ token: user.token, apiKey: user.apiKey, email: user.email }));
    await context.addInitScript(`localStorage.setItem('observerio.session', ${session})`);
    const page = await context.newPage();
    const watch = new PageWatch(page);
    const errors = collectPageErrors(page);
    const mark = watch.mark();
    await page.goto(`${daemon.http}/${hash}`);
    await expectAttr(page.getByTestId('ws-status'), 'data-state', 'open');
    await watch.waitLive(mark);
    return { page, watch, errors };
  }

  /** A device over TCP: verified, with labels when given, and (when given) the variables it reports. */
  async function device(user: TestUser, deviceId: string, opts: { labels?: Record<string, string>; vars?: Vars } = {}): Promise<LineClient> {
    const c = await LineClient.open(daemon.tcpPort);
    sockets.push(c);
    c.line(`v:${user.apiKey}:${deviceId}`);
    expect(await c.next(5000)).to.equal('OK');
    if (opts.labels) c.line(`d:${user.apiKey}:${b64(opts.labels)}`);
    if (opts.vars) c.line(`i:${user.apiKey}:${b64(opts.vars)}`);
    return c;
  }

  /** The `v:` lines a device got from line `from` on, decoded. */
  const pushed = (c: LineClient, apiKey: string, from = 0): Vars[] => c.lines.slice(from).filter((l) => l.startsWith('v:')).map((l) => decodeVarsLine(l, apiKey));

  const row = (page: Page, deviceId: string) => page.locator(`[data-testid="device-row"][data-device-id="${deviceId}"]`);
  const dvar = (page: Page, name: string) => page.getByTestId(`dvar-${name}`);

  /** Waits until the daemon has the device's report (its page would otherwise show no game value). */
  async function reported(user: TestUser, deviceId: string, name: string, value: string): Promise<void> {
    await until(async () => {
      const res = await call<{ vars: Array<{ name: string; reported: string | null }> }>(daemon, 'GET', `/api/devices/${deviceId}`, { token: user.token });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.vars.find((v) => v.name === name)?.reported).to.equal(value);
    });
  }

  it("shows a device's page (reported, override, effective, source) and overrides one variable for that device only", async () => {
    const user = await signedInUser(daemon);
    const phone = await device(user, 'page-phone', { labels: { platform: 'android', build: '1.4.2' }, vars: VARS });
    const other = await device(user, 'page-other', { vars: VARS });
    phone.line(`l:${user.apiKey}:${b64([{ message: 'level 1 started', level: 'info' }])}`);
    await reported(user, 'page-phone', 'speed', '5');
    await reported(user, 'page-other', 'speed', '5');
    const { page, errors } = await openSignedIn(user);

    // From the list to the device's page.
    await visible(row(page, 'page-phone'));
    await row(page, 'page-phone').getByTestId('device-link').click();
    await until(async () => expect(await page.evaluate('location.hash')).to.equal('#/devices/page-phone'));
    await visible(page.getByTestId('device-page'));
    await expectAttr(page.getByTestId('device-online'), 'data-online', 'true');
    await expectText(page.getByTestId('device-labels'), /platform=android/);
    expect(await textOf(page.getByTestId('device-labels'))).to.include('build=1.4.2');
    await expectText(page.getByTestId('device-page-strategy'), 'none');
    await expectAttr(dvar(page, 'speed'), 'data-reported', '5');
    await expectAttr(dvar(page, 'speed'), 'data-source', 'reported');
    expect(await dvar(page, 'speed').getAttribute('data-effective')).to.equal('5');
    expect(await dvar(page, 'speed').getAttribute('data-override')).to.equal('');
    await expectText(dvar(page, 'speed').getByTestId('dvar-source'), 'game');
    await expectAttr(dvar(page, 'mode'), 'data-reported', 'easy');
    // Its log tail is its own.
    const tail = page.getByTestId('device-page').getByTestId('log-list');
    await expectText(tail, /level 1 started/);

    // Override speed for this device only: it gets a v: line, the other one does not.
    const phoneFrom = phone.lines.length;
    const otherFrom = other.lines.length;
    await page.getByTestId('dvar-editor-speed').fill('9');
    await page.getByTestId('dvar-set-speed').click();
    const got = await waitForLine(phone, phoneFrom, (l) => l.startsWith('v:'));
    expect(decodeVarsLine(got.line, user.apiKey)).to.deep.equal([{ name: 'speed', type: 'integer', value: '9' }]);
    await expectAttr(dvar(page, 'speed'), 'data-source', 'override');
    expect(await dvar(page, 'speed').getAttribute('data-effective')).to.equal('9');
    expect(await dvar(page, 'speed').getAttribute('data-override')).to.equal('9');
    expect(await dvar(page, 'speed').getAttribute('data-reported'), 'the game value stays the report').to.equal('5');
    await expectText(dvar(page, 'speed').getByTestId('dvar-source'), 'override');
    expect(await textOf(dvar(page, 'speed').getByTestId('dvar-override'))).to.include('this device');
    await expectAttr(dvar(page, 'mode'), 'data-source', 'reported');
    // The other device: a later change for every device is the first v: line it gets.
    await call(daemon, 'PUT', '/api/vars/mode', { token: user.token, body: { value: 'hard' } });
    const otherGot = await waitForLine(other, otherFrom, (l) => l.startsWith('v:'));
    expect(decodeVarsLine(otherGot.line, user.apiKey), "page-other's first v: line after the override").to.deep.equal([{ name: 'mode', type: 'string', value: 'hard' }]);
    expect(pushed(other, user.apiKey, otherFrom).flat().some((v) => v.name === 'speed'), 'page-other never got speed').to.equal(false);
    await expectAttr(dvar(page, 'mode'), 'data-source', 'override');
    expect(await textOf(dvar(page, 'mode').getByTestId('dvar-override'))).to.include('all devices');

    // The change is in the device's timeline, marked apart from its game logs, and the kind filter splits them.
    const change = tail.locator('[data-kind="change"][data-name="speed"]');
    await visible(change);
    expect(await textOf(change)).to.match(new RegExp(`${user.email.replace('.', '\\.')} set speed: .* → 9`));
    await page.getByTestId('device-page').getByTestId('log-kind-filter').selectOption('log');
    await hidden(change);
    await expectText(tail, /level 1 started/);
    await page.getByTestId('device-page').getByTestId('log-kind-filter').selectOption('change');
    await visible(change);
    expect(await tail.locator('[data-kind="log"]').count(), 'game logs under "Changes"').to.equal(0);
    await page.getByTestId('device-page').getByTestId('log-kind-filter').selectOption('');

    // Reset: back to the game's value.
    expect(await page.getByTestId('dvar-reset-mode').isDisabled(), 'an override for every device is not reset from one device').to.equal(true);
    await page.getByTestId('dvar-reset-speed').click();
    await expectAttr(dvar(page, 'speed'), 'data-source', 'reported');
    expect(await dvar(page, 'speed').getAttribute('data-effective')).to.equal('5');
    const overrides = await call<{ overrides: Array<{ name: string }> }>(daemon, 'GET', '/api/overrides', { token: user.token });
    expect(overrides.body.overrides.map((o) => o.name)).to.deep.equal(['mode']);

    // Back to the list.
    await page.getByTestId('device-back').click();
    await hidden(page.getByTestId('device-page'));
    await visible(row(page, 'page-phone'));
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });

  it('sets an override for a label selector (the parse error is the daemon’s), lists it per variable and clears it', async () => {
    const user = await signedInUser(daemon);
    const android = await device(user, 'sel-android', { labels: { platform: 'android', build: '1.4.7' }, vars: VARS });
    const ios = await device(user, 'sel-ios', { labels: { platform: 'ios', build: '1.4.7' }, vars: VARS });
    await reported(user, 'sel-ios', 'speed', '5');
    const { page, errors } = await openSignedIn(user);
    await expectAttr(page.getByTestId('var-row-speed'), 'data-value', '5');

    await page.getByTestId('var-target-mode').selectOption('labels');
    await page.getByTestId('var-target-selector').fill('platform');
    await page.getByTestId('var-editor-speed').fill('7');
    await page.getByTestId('var-save-speed').click();
    const error = await expectText(page.getByTestId('var-target-error'), /.+/);
    const direct = await call<{ error: { message: string } }>(daemon, 'PUT', '/api/vars/speed', { token: user.token, body: { value: 7, target: { labels: 'platform' } } });
    expect(direct.status).to.equal(400);
    expect(error, 'the message shown is the daemon’s').to.equal(direct.body.error.message);

    const aFrom = android.lines.length;
    const iFrom = ios.lines.length;
    await page.getByTestId('var-target-selector').fill('platform=android,build=1.4.*');
    await page.getByTestId('var-save-speed').click();
    const got = await waitForLine(android, aFrom, (l) => l.startsWith('v:'));
    expect(decodeVarsLine(got.line, user.apiKey)).to.deep.equal([{ name: 'speed', type: 'integer', value: '7' }]);
    await hidden(page.getByTestId('var-target-error'));
    const listed = page.getByTestId('overrides-speed').getByTestId('override');
    await expectCount(listed, 1);
    expect(await listed.getAttribute('data-target')).to.equal('build=1.4.*,platform=android');
    expect(await listed.getAttribute('data-value')).to.equal('7');

    // A second one for every device: both listed, most specific first.
    await page.getByTestId('var-target-mode').selectOption('all');
    await page.getByTestId('var-editor-speed').fill('6');
    await page.getByTestId('var-save-speed').click();
    const iosGot = await waitForLine(ios, iFrom, (l) => l.startsWith('v:'));
    expect(decodeVarsLine(iosGot.line, user.apiKey), "sel-ios's first v: line: the every-device one, never the selector's").to.deep.equal([{ name: 'speed', type: 'integer', value: '6' }]);
    await expectCount(listed, 2);
    expect(await listed.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-target')}=${e.getAttribute('data-value')}`))).to.deep.equal(['build=1.4.*,platform=android=7', 'all devices=6']);

    // Clearing the selector's one leaves the other.
    await listed.first().getByTestId('override-clear').click();
    await expectCount(listed, 1);
    expect(await listed.getAttribute('data-target')).to.equal('all devices');
    const rest = await call<{ overrides: Array<{ target: unknown }> }>(daemon, 'GET', '/api/overrides', { token: user.token });
    expect(rest.body.overrides.map((o) => o.target)).to.deep.equal([{ all: true }]);
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });

  it('lists the first 8 overrides of a variable and the rest behind "+N more", through devices\' reports and a new list', async () => {
    const user = await signedInUser(daemon);
    const dev = await device(user, 'many-ovr-reporter', { vars: VARS });
    const override = async (i: number): Promise<void> => {
      const res = await call(daemon, 'PUT', '/api/vars/speed', { token: user.token, body: { value: String(i), target: { devices: [`many-ovr-${String(i).padStart(2, '0')}`] } } });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
    };
    for (let i = 0; i < 12; i++) await override(i);
    const { page, errors } = await openSignedIn(user);
    const listed = page.getByTestId('overrides-speed').getByTestId('override');
    const more = page.getByTestId('overrides-speed').getByTestId('overrides-more');
    await expectCount(listed, 8);
    await expectText(more, '+4 more');

    // A report re-renders the table; the list is the same list.
    dev.line(`i:${user.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '99' }])}`);
    await expectAttr(page.getByTestId('var-row-speed'), 'data-value', '99');
    await expectCount(listed, 8);

    await more.click();
    await expectCount(listed, 12);
    await expectAttr(more, 'aria-expanded', 'true');
    await expectText(more, 'Show fewer');
    // Another override brings a new list: it is shown, still expanded.
    await override(12);
    await expectCount(listed, 13);
    expect(await listed.last().getAttribute('data-target')).to.equal('many-ovr-12');
    await more.click();
    await expectCount(listed, 8);
    await expectText(more, '+5 more');
    expect(await pageWidth(page), 'no sideways scrolling').to.deep.equal({ scrollWidth: 1280, innerWidth: 1280 });
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });

  it('creates a strategy, applies it to two selected devices in two clicks, and the devices show it', async () => {
    const user = await signedInUser(daemon);
    const a = await device(user, 'strat-a', { vars: VARS });
    const b = await device(user, 'strat-b', { vars: VARS });
    const c = await device(user, 'strat-c', { vars: VARS });
    await reported(user, 'strat-c', 'speed', '5');
    const { page, errors } = await openSignedIn(user);
    await expectText(page.getByTestId('strategies-empty'), /No strategies yet/);

    await page.getByTestId('strategy-new').click();
    await page.getByTestId('strategy-name').fill('fast');
    await page.getByTestId('strategy-vars').fill('speed=12\nmode=nightmare');
    await page.getByTestId('strategy-save').click();
    const item = page.getByTestId('strategy-fast');
    await visible(item);
    expect(await item.getByTestId('strategy-var').evaluateAll((els) => els.map((e) => e.textContent))).to.deep.equal(['speed=12', 'mode=nightmare']);

    // Select two devices, then two clicks: the menu and the strategy.
    for (const id of ['strat-a', 'strat-b']) await row(page, id).getByTestId('device-select').check();
    await expectText(page.getByTestId('selected-count'), '2');
    const from = { a: a.lines.length, b: b.lines.length, c: c.lines.length };
    await page.getByTestId('apply-strategy-menu').click();
    await page.getByTestId('apply-strategy-fast').click();
    for (const [dev, n] of [
      [a, from.a],
      [b, from.b],
    ] as const) {
      const got = await waitForLine(dev, n, (l) => l.startsWith('v:'));
      const vars = decodeVarsLine(got.line, user.apiKey).sort((x, y) => x.name.localeCompare(y.name));
      expect(vars).to.deep.equal([
        { name: 'mode', type: 'string', value: 'nightmare' },
        { name: 'speed', type: 'integer', value: '12' },
      ]);
    }
    await expectAttr(row(page, 'strat-a'), 'data-strategy', 'fast');
    await expectAttr(row(page, 'strat-b'), 'data-strategy', 'fast');
    await expectText(row(page, 'strat-a').getByTestId('device-strategy'), 'fast');
    await expectText(item.getByTestId('strategy-devices'), '2 devices running it');
    expect(await row(page, 'strat-c').getAttribute('data-strategy'), 'the device not selected').to.equal('');
    expect(pushed(c, user.apiKey, from.c), 'v: lines to the device not selected').to.deep.equal([]);

    // Its page says so too.
    await row(page, 'strat-a').getByTestId('device-link').click();
    await expectText(page.getByTestId('device-page-strategy'), 'fast');
    await expectAttr(dvar(page, 'speed'), 'data-effective', '12');
    expect(await textOf(dvar(page, 'speed').getByTestId('dvar-override'))).to.include('fast');
    await page.getByTestId('device-back').click();

    // A stale edit: someone saves meanwhile; the page says so, reloads, and a second save wins.
    await item.getByTestId('strategy-edit').click();
    await page.getByTestId('strategy-vars').fill('speed=15\nmode=nightmare');
    const meanwhile = await call(daemon, 'PUT', '/api/strategies/fast', { token: user.token, body: { vars: [{ name: 'speed', value: 13 }] } });
    expect(meanwhile.status, JSON.stringify(meanwhile.body)).to.equal(200);
    await page.getByTestId('strategy-save').click();
    await expectText(page.getByTestId('strategy-error'), /Someone else saved fast while you were editing it/);
    await page.getByTestId('strategy-save').click();
    await hidden(page.getByTestId('strategy-form'));
    await until(async () => expect(await item.getByTestId('strategy-var').evaluateAll((els) => els.map((e) => e.textContent))).to.deep.equal(['speed=15', 'mode=nightmare']));
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });

  it('lists history live, reverts an entry and rolls back to one; the overrides list and the device page follow', async () => {
    const user = await signedInUser(daemon);
    const dev = await device(user, 'hist-phone', { vars: VARS });
    await reported(user, 'hist-phone', 'speed', '5');
    const { page, errors } = await openSignedIn(user);
    await expectText(page.getByTestId('history-empty'), /No changes yet/);
    const entries = page.getByTestId('history-entry');
    const listed = page.getByTestId('overrides-speed').getByTestId('override');

    // A change made in the page is an entry at once, with who, what and before → after.
    await page.getByTestId('var-editor-speed').fill('20');
    await page.getByTestId('var-save-speed').click();
    await expectCount(entries, 1);
    expect(await entries.first().getAttribute('data-action')).to.equal('override.set');
    const first = await textOf(entries.first());
    expect(first).to.include(user.email);
    expect(first).to.include('all devices');
    expect(first).to.match(/speed game's value → 20/);
    await expectText(entries.first().getByTestId('history-delivered'), /reached 1 device/);
    await expectAttr(listed, 'data-value', '20');

    // Revert: a new entry, and the override is gone.
    const from = dev.lines.length;
    await entries.first().getByTestId('history-revert').click();
    await expectCount(entries, 2);
    expect(await entries.first().getAttribute('data-action')).to.equal('revert');
    await expectCount(listed, 0);
    await waitForLine(dev, from, (l) => l.startsWith('v:'));

    // Two more changes (from the API: the page hears of them live), then roll back to the first of them.
    for (const value of [30, 31]) expect((await call(daemon, 'PUT', '/api/vars/speed', { token: user.token, body: { value } })).status).to.equal(200);
    await expectCount(entries, 4);
    await expectAttr(listed, 'data-value', '31');
    const thirty = entries.nth(1);
    expect(await textOf(thirty)).to.match(/→ 30/);
    expect(await entries.first().getByTestId('history-rollback').isDisabled(), 'the newest entry is the current state').to.equal(true);
    await thirty.getByTestId('history-rollback').click();
    await visible(page.getByTestId('confirm-dialog'));
    await page.getByTestId('confirm-cancel').click();
    await hidden(page.getByTestId('confirm-dialog'));
    expect(await entries.count(), 'cancelled: no entry').to.equal(4);
    await thirty.getByTestId('history-rollback').click();
    await page.getByTestId('confirm-ok').click();
    await expectCount(entries, 5);
    expect(await entries.first().getAttribute('data-action')).to.equal('rollback');
    await expectAttr(listed, 'data-value', '30');
    await row(page, 'hist-phone').getByTestId('device-link').click();
    await expectAttr(dvar(page, 'speed'), 'data-effective', '30');
    expect(await dvar(page, 'speed').getAttribute('data-source')).to.equal('override');
    await page.getByTestId('device-back').click();

    // Paging: older entries come with `before`.
    for (let i = 0; i < 20; i++) expect((await call(daemon, 'PUT', '/api/vars/mode', { token: user.token, body: { value: `m${i}` } })).status).to.equal(200);
    await page.reload();
    await expectCount(entries, 20);
    await page.getByTestId('history-older').click();
    await expectCount(entries, 25);
    expect(await entries.last().getAttribute('data-action')).to.equal('override.set');
    expect(await textOf(entries.last())).to.match(/speed game's value → 20/);
    expect(errors, 'uncaught errors').to.deep.equal([]);
  });

  it('fits 390×844 and 1280×800 with the new panels and the device page (no sideways scrolling)', async () => {
    const user = await signedInUser(daemon);
    await device(user, 'layout-phone-with-a-rather-long-device-name', { labels: { platform: 'android', build: '1.4.2', lab: 'north-wing' }, vars: VARS });
    await device(user, 'layout-tablet', { vars: VARS });
    await reported(user, 'layout-tablet', 'speed', '5');
    await call(daemon, 'POST', '/api/strategies', { token: user.token, body: { name: 'calm', vars: [{ name: 'speed', value: 2 }, { name: 'mode', value: 'zen' }] } });
    await call(daemon, 'POST', '/api/strategies/calm/apply', { token: user.token, body: { target: { devices: ['layout-tablet'] } } });
    await call(daemon, 'PUT', '/api/vars/mode', { token: user.token, body: { value: 'party', target: { labels: 'platform=android' } } });

    for (const viewport of [
      { width: 390, height: 844 },
      { width: 1280, height: 800 },
    ]) {
      const size = `${viewport.width}x${viewport.height}`;
      const { page, errors } = await openSignedIn(user, viewport);
      await visible(page.getByTestId('strategy-calm'));
      await expectCount(page.getByTestId('history-entry'), 3);
      await expectAttr(row(page, 'layout-tablet'), 'data-strategy', 'calm');
      await row(page, 'layout-tablet').getByTestId('device-select').check();
      await visible(page.getByTestId('overrides-mode'));
      expect(await pageWidth(page), `dashboard at ${size}`).to.deep.equal({ scrollWidth: viewport.width, innerWidth: viewport.width });
      for (const id of ['apply-strategy-menu', 'strategy-new', 'var-target-mode']) await expectOnScreen(page.getByTestId(id), `${id} at ${size}`);
      await expectOnScreen(page.getByTestId('history-entry').first().getByTestId('history-revert'), `Revert at ${size}`);
      await expectOnScreen(page.getByTestId('strategy-calm').getByTestId('strategy-apply-toggle'), `Apply… at ${size}`);
      await page.getByTestId('apply-strategy-menu').click();
      await expectOnScreen(page.getByTestId('apply-strategy-calm'), `the strategy in the menu at ${size}`);
      expect(await pageWidth(page), `with the menu open at ${size}`).to.deep.equal({ scrollWidth: viewport.width, innerWidth: viewport.width });
      await page.evaluate('window.scrollTo(0, 0)');
      await page.screenshot({ path: screenshotPath(`variables-dashboard-${size}`), fullPage: true });
      await page.getByTestId('apply-strategy-menu').click();

      await row(page, 'layout-phone-with-a-rather-long-device-name').getByTestId('device-link').click();
      await expectAttr(dvar(page, 'mode'), 'data-effective', 'party');
      await page.evaluate('window.scrollTo(0, 0)');
      await page.screenshot({ path: screenshotPath(`variables-device-page-${size}`), fullPage: true });
      expect(await pageWidth(page), `device page at ${size}`).to.deep.equal({ scrollWidth: viewport.width, innerWidth: viewport.width });
      for (const name of ['speed', 'mode']) {
        await expectOnScreen(page.getByTestId(`dvar-editor-${name}`), `${name} editor at ${size}`);
        await expectOnScreen(page.getByTestId(`dvar-set-${name}`), `${name} Set at ${size}`);
      }
      await expectOnScreen(page.getByTestId('device-page').getByTestId('log-kind-filter'), `kind filter at ${size}`);
      expect(errors, 'uncaught errors').to.deep.equal([]);
    }
  });
});
