/**
 * The SDK's browser build in Debian's Chromium: the example game (examples/browser-game/) served with
 * dist/sdk-package/browser.mjs next to it, as its README says, from another origin than the daemon's.
 * Over `ws://127.0.0.1:<http>/sdk` it reports its defaults and labels and logs; a dashboard change
 * (PUT /api/vars/:name) reaches the page's getter and the game loop; the daemon lists the device with
 * its variables and finds the log with GET /api/logs.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { launchBrowser, screenshotPath } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';

const BROWSER_BUNDLE = join(process.cwd(), 'dist', 'sdk-package', 'browser.mjs');
const EXAMPLE = join(process.cwd(), 'examples', 'browser-game');
const DEVICE = 'chromium-canvas';

/** What the page exposes (the tests' tsconfig has no DOM library). */
interface GamePage {
  observerio: { getNumber(n: string, d: number): number; getBool(n: string, d: boolean): boolean; connected: boolean; state: string } | null;
  gameState: { enemySpeed: number };
}
type Hit = { message: string; level: string; deviceId: string; fields: Record<string, unknown> };
type DeviceView = { deviceId: string; online: boolean; labels: Record<string, string>; vars: Array<{ name: string; type: string; reported: string; effective: string; source: string }> };

describe('@observerio/sdk browser build in Chromium (the example game)', function () {
  this.timeout(90_000);
  let daemon: Daemon;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let site: Server;
  let siteUrl: string;
  const pageErrors: string[] = [];

  const game = <T>(fn: (g: GamePage) => T): Promise<T> => page.evaluate(`(${fn.toString()})(globalThis)`) as Promise<T>;

  before(async function () {
    this.timeout(90_000);
    if (!existsSync(BROWSER_BUNDLE)) throw new Error("dist/sdk-package/browser.mjs is missing: run 'npm run build' first");
    daemon = await startDaemon();
    user = await signedInUser(daemon);
    browser = await launchBrowser();
    // The folder as `python3 -m http.server` would serve it, with browser.mjs copied in.
    const files: Record<string, [string, string]> = {
      '/': [join(EXAMPLE, 'index.html'), 'text/html'],
      '/game.js': [join(EXAMPLE, 'game.js'), 'text/javascript'],
      '/browser.mjs': [BROWSER_BUNDLE, 'text/javascript'],
    };
    // Chromium asks for a favicon; a 404 would show as a console error.
    const empty = new Set(['/favicon.ico']);
    site = createServer((req, res) => {
      const f = files[(req.url ?? '/').split('?')[0] as string];
      if (!f) return void res.writeHead(empty.has(req.url ?? '') ? 204 : 404).end();
      res.writeHead(200, { 'content-type': f[1] }).end(readFileSync(f[0]));
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}/`;
    page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(`${err.name}: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    await page.goto(`${siteUrl}?key=${user.apiKey}&device=${DEVICE}&daemon=${encodeURIComponent(`ws://127.0.0.1:${daemon.httpPort}/sdk`)}`);
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await new Promise((resolve) => site?.close(resolve));
  });

  it('runs the browser bundle without Buffer or node:net, connected over GET /sdk', async () => {
    await eventually(async () => expect(await game((g) => g.observerio?.connected)).to.equal(true), { timeoutMs: 15_000 });
    expect(await page.evaluate('typeof globalThis.Buffer')).to.equal('undefined');
    expect(pageErrors).to.deep.equal([]);
  });

  it('reports its defaults and labels: the daemon lists the device and its variables', async () => {
    const device = await eventually(async () => {
      const r = await call<DeviceView>(daemon, 'GET', `/api/devices/${DEVICE}`, { token: user.token });
      expect(r.status).to.equal(200);
      expect(r.body.vars.map((v) => v.name).sort()).to.deep.equal(['enemy_speed', 'god_mode', 'player_color', 'spawn_ms']);
      return r.body;
    });
    expect(device.online).to.equal(true);
    expect(device.labels).to.deep.equal({ platform: 'web', build: '1.0.0' });
    const speed = device.vars.find((v) => v.name === 'enemy_speed');
    expect(speed).to.include({ type: 'float', reported: '1.5', source: 'reported' });
    const list = await call<{ devices: Array<{ deviceId: string; online: boolean }> }>(daemon, 'GET', '/api/devices', { token: user.token });
    expect(list.body.devices.filter((d) => d.deviceId === DEVICE).map((d) => d.online)).to.deep.equal([true]);
  });

  it("logs 'game started', searchable with GET /api/logs", async () => {
    const hits = await eventually(async () => {
      const r = await call<{ hits: Hit[] }>(daemon, 'GET', `/api/logs?q=started&device=${DEVICE}`, { token: user.token });
      expect(r.status).to.equal(200);
      expect(r.body.hits).to.have.length(1);
      return r.body.hits;
    });
    expect(hits[0]).to.include({ message: 'game started', level: 'info', deviceId: DEVICE });
    expect(hits[0]?.fields).to.deep.equal({ width: 640, height: 420 });
  });

  it("applies a dashboard change: the page's getter and the game loop see the new value", async () => {
    expect(await game((g) => g.gameState.enemySpeed)).to.equal(1.5);
    const r = await call<{ delivered: number }>(daemon, 'PUT', '/api/vars/enemy_speed', { token: user.token, body: { value: 3.25 } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.delivered).to.equal(1);
    await eventually(async () => expect(await game((g) => g.observerio?.getNumber('enemy_speed', 0))).to.equal(3.25));
    await eventually(async () => expect(await game((g) => g.gameState.enemySpeed)).to.equal(3.25));
    // The override wins, and the device's own report stays its default.
    const d = await call<DeviceView>(daemon, 'GET', `/api/devices/${DEVICE}`, { token: user.token });
    expect(d.body.vars.find((v) => v.name === 'enemy_speed')).to.include({ reported: '1.5', effective: '3.25', source: 'override' });

    await call(daemon, 'PUT', '/api/vars/god_mode', { token: user.token, body: { value: true } });
    await eventually(async () => expect(await game((g) => g.observerio?.getBool('god_mode', false))).to.equal(true));
    await eventually(async () => {
      const logs = await call<{ hits: Hit[] }>(daemon, 'GET', `/api/logs?q=${encodeURIComponent('god mode')}&device=${DEVICE}&kind=log`, { token: user.token });
      expect(logs.body.hits.map((h) => h.message)).to.deep.equal(['god mode on from the dashboard']);
    });
    await page.screenshot({ path: screenshotPath('sdk-browser-game') });
    expect(pageErrors).to.deep.equal([]);
  });
});
