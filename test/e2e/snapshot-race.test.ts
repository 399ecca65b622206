/**
 * Regression test for a dashboard race: live events that arrive while a REST snapshot is in flight
 * must survive the snapshot. The panels once replaced their lists with the `GET /api/devices` and
 * `GET /api/vars` answers, so a `device`/`vars` event arriving between the moment the server computed
 * that answer and the moment the page applied it was lost: the device row vanished until the next
 * 15 s re-read, the variable until the next reconnect. Here the answers are held back
 * (Playwright routes: fetched from the daemon first, delivered to the page later) so the window is
 * wide open instead of a few milliseconds.
 */
import { expect } from 'chai';
import type { Browser, BrowserContext, Page, Route, APIResponse } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { PageWatch, requireBuiltDashboard, until, visible } from './page-helpers.js';

describe('REPRO: dashboard snapshots overwrite live events that arrive meanwhile', function () {
  this.timeout(60_000);
  let daemon: Daemon;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const sockets: LineClient[] = [];

  before(async () => {
    requireBuiltDashboard();
    daemon = await startDaemon();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const s of sockets) s.close();
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await daemon?.stop();
  });

  /** A signed-in page whose answers to `path` are fetched at once but delivered only on release(). */
  async function pageHolding(path: string): Promise<{ page: Page; watch: PageWatch; apiKey: string; held: () => number; release: () => Promise<void> }> {
    const email = `race-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
    const password = 'correct horse battery';
    const apiKey = await daemon.register(email, password);
    const res = await fetch(`${daemon.http}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
    const { token } = (await res.json()) as { token: string };
    const context = await browser.newContext();
    contexts.push(context);
    await context.addInitScript(`localStorage.setItem('observerio.session', ${JSON.stringify(JSON.stringify({ token, apiKey, email }))})`);
    const page = await context.newPage();
    const watch = new PageWatch(page);
    const held: Array<{ route: Route; response: APIResponse }> = [];
    await page.route((url) => url.pathname === path, async (route) => {
      held.push({ route, response: await route.fetch() });
    });
    await page.goto(`${daemon.http}/`);
    return {
      page,
      watch,
      apiKey,
      held: () => held.length,
      release: async () => {
        for (const h of held.splice(0)) await h.route.fulfill({ response: h.response });
      },
    };
  }

  it('a device that connects while GET /api/devices is in flight gets its row', async () => {
    const p = await pageHolding('/api/devices');
    await p.watch.waitFrame((d) => d.type === 'ready', 0);
    // Both snapshots (on mount and on socket open) have been computed by the daemon: no device yet.
    await until(() => expect(p.held()).to.equal(2));
    const dev = await LineClient.open(daemon.tcpPort);
    sockets.push(dev);
    dev.line(`v:${p.apiKey}:race-device`);
    expect(await dev.next()).to.equal('OK');
    await p.watch.waitFrame((d) => d.type === 'device' && d.event === 'connected', 0);
    await p.release();
    await visible(p.page.locator('[data-testid="device-row"][data-device-id="race-device"]'), 5000);
  });

  it('a variable reported while GET /api/vars is in flight stays in the table', async () => {
    const p = await pageHolding('/api/vars');
    await p.watch.waitFrame((d) => d.type === 'ready', 0);
    await until(() => expect(p.held()).to.equal(2));
    const dev = await LineClient.open(daemon.tcpPort);
    sockets.push(dev);
    dev.line(`v:${p.apiKey}:race-device-2`);
    expect(await dev.next()).to.equal('OK');
    dev.line(`i:${p.apiKey}:${b64([{ name: 'raceVar', type: 'integer', value: '7' }])}`);
    await p.watch.waitFrame((d) => d.type === 'vars', 0);
    await p.release();
    await visible(p.page.getByTestId('var-row-raceVar'), 5000);
  });
});
