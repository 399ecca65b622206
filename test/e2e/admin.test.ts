/**
 * The admin view (`#/admin`) in a real browser against a daemon on embedded backends with an admin
 * token: sign in with the token, the supervision tree, a device's connection actor, and killing the
 * TCP listener from the page (cancel first, then for real) with the restart visible afterwards, and
 * a connection actor killed twice in a row waiting out its restart backoff.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN_TOKEN, AdminClient, connectionOf, device, nodeAt } from '../helpers/admin.js';
import { launchBrowser, screenshotPath } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import type { LineClient } from '../helpers/tcp-client.js';
import { collectPageErrors, expectAttr, expectText, hidden, requireBuiltDashboard, textOf, until, visible } from './page-helpers.js';

const ROOT = '/observerio';
const TOP_LEVEL = ['store', 'pubsub', 'logs', 'registry', 'clients', 'tcp', 'http'];
const LISTENER = '/observerio/tcp/listener';
const CONNS = '/observerio/tcp/conns';
const DEVICE_ID = 'e2e-admin-device';
// Delays longer than the page's 1.5 s poll, so a wait is seen in the page; a short stable period.
const BACKOFF = { initialMs: 4000, maxMs: 8000, resetAfterMs: 3000 };

describe('admin view in Chromium', function () {
  this.timeout(60_000);

  let daemon: Daemon;
  let admin: AdminClient;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  let apiKey: string;
  const sockets: LineClient[] = [];
  /** Every POST /admin/kill the page sent. */
  const kills: string[] = [];

  before(async function () {
    this.timeout(60_000);
    requireBuiltDashboard();
    daemon = await startDaemon({ overrides: { adminToken: ADMIN_TOKEN, tcp: { restartBackoff: BACKOFF } } });
    admin = new AdminClient(daemon);
    apiKey = await daemon.register();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    errors = collectPageErrors(page);
    page.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/admin/kill') kills.push(req.postData() ?? '');
    });
  });

  after(async function () {
    this.timeout(30_000);
    for (const s of sockets) s.close();
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await daemon?.stop();
  });

  it('refuses a wrong admin token with an error', async () => {
    await page.goto(`${daemon.http}/#/admin`);
    await visible(page.getByTestId('admin-signin-form'));
    await page.getByTestId('admin-token').fill('not-the-admin-token-at-all');
    await page.getByTestId('admin-signin-submit').click();
    await expectText(page.getByTestId('admin-error'), 'That admin token was rejected.');
    await hidden(page.getByTestId('tree'), 1000);
  });

  it('signs in with the token and draws the supervision tree', async () => {
    await page.getByTestId('admin-token').fill(ADMIN_TOKEN);
    await page.getByTestId('admin-signin-submit').click();
    await visible(page.getByTestId('tree'));
    await hidden(page.getByTestId('admin-signin-form'));

    const root = page.getByTestId(`tree-node-${ROOT}`);
    await expectAttr(root, 'data-kind', 'supervisor');
    await expectAttr(root, 'data-status', 'running');
    await expectAttr(root, 'data-restarts', '0');
    for (const name of TOP_LEVEL) {
      const node = page.getByTestId(`tree-node-${ROOT}/${name}`);
      await visible(node);
      expect(await node.getAttribute('data-status'), name).to.equal('running');
      expect(await textOf(page.getByTestId(`tree-status-${ROOT}/${name}`)), name).to.equal('running');
    }
    // The top two levels are open by default: tcp's children show, the connections supervisor is shut.
    await visible(page.getByTestId(`tree-node-${CONNS}`));
    await visible(page.getByTestId(`tree-node-${LISTENER}`));
    expect(await page.getByTestId(`tree-node-${LISTENER}`).getAttribute('data-kind')).to.equal('worker');
    await expectText(page.getByTestId(`tree-restarts-${LISTENER}`), '↻ 0');
    expect(await page.getByTestId(`tree-crash-${LISTENER}`).count()).to.equal(0);
    await expectText(page.getByTestId('tree-summary'), /0 restarts in all/);
  });

  it("shows a connected device's connection actor under tcp/conns", async () => {
    const dev = await device(daemon, apiKey, DEVICE_ID);
    sockets.push(dev);
    const conn = connectionOf(daemon, DEVICE_ID);

    // The tree refreshes by itself; once it knows a child, conns (third level, shut) gets a toggle.
    const toggle = page.getByTestId(`tree-toggle-${CONNS}`);
    await visible(toggle);
    await expectAttr(toggle, 'aria-label', 'Expand conns');
    const node = page.getByTestId(`tree-node-${conn.path}`);
    expect(await node.count(), 'connection shown before expanding conns').to.equal(0);
    await toggle.click();
    await visible(node);
    await expectAttr(node, 'data-kind', 'worker');
    await expectAttr(node, 'data-status', 'running');
    const facts = await textOf(node);
    expect(facts).to.include(DEVICE_ID);
    expect(facts).to.include(apiKey);

    // Collapsing hides it again.
    await toggle.click();
    await hidden(node);
    await toggle.click();
    await visible(node);
  });

  it('kills nothing when the confirmation is cancelled', async () => {
    await page.getByTestId(`kill-${LISTENER}`).click();
    const dialog = page.getByTestId('confirm-dialog');
    await visible(dialog);
    expect(await textOf(dialog)).to.include(LISTENER);
    // The safe answer has the focus.
    await until(async () => expect(await page.evaluate('document.activeElement?.dataset?.testid')).to.equal('confirm-cancel'));
    await page.getByTestId('confirm-cancel').click();
    await hidden(dialog);

    // Escape cancels too.
    await page.getByTestId(`kill-${LISTENER}`).click();
    await visible(dialog);
    await page.keyboard.press('Escape');
    await hidden(dialog);

    expect(kills, 'kill requests sent').to.deep.equal([]);
    const listener = nodeAt(await admin.tree200(), LISTENER);
    expect(listener.restarts).to.equal(0);
    expect(listener.lastCrash).to.equal(null);
    // Still drawn as untouched after the next refreshes.
    await expectAttr(page.getByTestId(`tree-node-${LISTENER}`), 'data-restarts', '0');
    expect(await page.getByTestId(`tree-crash-${LISTENER}`).count()).to.equal(0);
  });

  it('kills the TCP listener from the page; the restart shows and new devices still connect', async () => {
    const before = connectionOf(daemon, DEVICE_ID);
    await page.getByTestId(`kill-${LISTENER}`).click();
    await visible(page.getByTestId('confirm-dialog'));
    await page.getByTestId('confirm-ok').click();
    await hidden(page.getByTestId('confirm-dialog'));
    await until(() => expect(kills.map((k) => JSON.parse(k) as unknown)).to.deep.equal([{ path: LISTENER }]));

    await visible(page.getByTestId('toast').filter({ hasText: `Killed ${LISTENER}` }));
    const node = page.getByTestId(`tree-node-${LISTENER}`);
    await expectAttr(node, 'data-restarts', '1');
    await expectAttr(node, 'data-status', 'running');
    await expectText(page.getByTestId(`tree-restarts-${LISTENER}`), '↻ 1');
    await expectText(page.getByTestId(`tree-crash-${LISTENER}`), /^last crash: .*killed by operator/i);
    await expectText(page.getByTestId('tree-summary'), /1 restart in all/);

    // The restarted listener accepts and verifies a new device on the same port...
    const fresh = await device(daemon, apiKey, `${DEVICE_ID}-2`);
    sockets.push(fresh);
    // ...and the device connected before the kill kept its connection (rest_for_one: conns comes first).
    const [old] = sockets;
    expect(old?.closed, 'the earlier device was disconnected').to.equal(false);
    const after = connectionOf(daemon, DEVICE_ID);
    expect(after.path).to.equal(before.path);
    expect(after.restarts).to.equal(0);

    await page.getByTestId('tree-expand-all').click();
    await visible(page.getByTestId(`tree-node-${connectionOf(daemon, `${DEVICE_ID}-2`).path}`));
    await page.screenshot({ path: screenshotPath('admin'), fullPage: true });
    expect(errors, 'uncaught errors in the page').to.deep.equal([]);
  });

  it("shows a connection actor's restart backoff: the wait while restarting, then the delay in force until stable", async () => {
    await expectText(page.getByTestId(`tree-node-${CONNS}`).locator('.tree-main'), /simple_one_for_one · max 5 restarts \/ 10s · backoff 4s–8s/);
    const conn = connectionOf(daemon, DEVICE_ID);
    const badge = page.getByTestId(`tree-backoff-${conn.path}`);
    // The first kill after a stable run restarts at once: no badge.
    expect((await admin.kill200(conn.path)).node).to.include({ status: 'running', backoffMs: 0 });
    await expectAttr(page.getByTestId(`tree-node-${conn.path}`), 'data-restarts', '1');
    expect(await badge.count()).to.equal(0);

    // The second in a row waits initialMs ± 20%, shown while it lasts.
    const second = admin.kill200(conn.path);
    await expectAttr(page.getByTestId(`tree-node-${conn.path}`), 'data-status', 'restarting');
    const waiting = await expectText(badge, /^restart in \d+ ms$/);
    const ms = Number(/\d+/.exec(waiting)![0]);
    expect(ms).to.be.within(3200, 4800);
    const { node } = await second;
    expect(node).to.include({ status: 'running', restarts: 2, backoffMs: ms });
    await expectAttr(page.getByTestId(`tree-node-${conn.path}`), 'data-status', 'running', 10_000);
    await expectText(badge, `backoff ${ms} ms`);
    await page.screenshot({ path: screenshotPath('admin-backoff'), fullPage: true });

    // Stable for resetAfterMs: the badge goes.
    await hidden(badge, 10_000);
    expect(nodeAt(await admin.tree200(`?expand=${encodeURIComponent(conn.path)}`), conn.path).backoffMs).to.equal(0);
    expect(errors, 'uncaught errors in the page').to.deep.equal([]);
  });
});
