/**
 * The connect panel in Chromium against a daemon on a non-default TCP port (issue #13): every SDK's
 * snippet carries that port (the browser's the HTTP port), the host, the API key, a device id,
 * labels, defaults and an install line; picking an SDK changes the snippet and is remembered; Copy
 * puts the exact text on the clipboard; and the snippets run as pasted: the TypeScript one with node
 * (its `@observerio/sdk` import resolved to this repo's dist/sdk), the browser one in a page on the built
 * browser bundle (dist/sdk-package/browser.mjs), the raw protocol one with bash (its
 * `nc` a small real TCP client), the C# one compiled with mcs beside Observerio.cs and run with mono;
 * each device then appears in GET /api/devices with its labels. Fits 1280×800 and 390×844.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DeviceAnswer } from '../../src/wire.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { launchBrowser, screenshotPath } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/free-port.js';
import { tempDir } from '../helpers/processes.js';
import { PageWatch, collectPageErrors, expectAttr, expectOnScreen, expectText, pageWidth, requireBuiltDashboard, textOf, until, visible } from './page-helpers.js';

const SDK_INDEX = fileURLToPath(new URL('../../dist/sdk/index.js', import.meta.url));
const BROWSER_BUNDLE = fileURLToPath(new URL('../../dist/sdk-package/browser.mjs', import.meta.url));
const CSHARP_SDK = fileURLToPath(new URL('../../src/sdk-csharp/Observerio.cs', import.meta.url));
const SDKS = ['node', 'browser', 'csharp', 'raw'] as const;
type Sdk = (typeof SDKS)[number];
const INSTALL: Record<Sdk, string> = {
  node: 'npm i @observerio/sdk',
  browser: 'npm i @observerio/sdk',
  csharp: 'cp observerio/src/sdk-csharp/Observerio.cs Assets/Scripts/',
  raw: 'sudo apt install netcat-openbsd # or: brew install netcat',
};
const DEVICE: Record<Sdk, string> = { node: 'node-dev-1', browser: 'browser-dev-1', csharp: 'unity-editor', raw: 'nc-test' };

interface DeviceRow {
  deviceId: string;
  labels: Record<string, string>;
  online: boolean;
}

describe('connect panel snippets in Chromium (real ports, SDK picker, snippets that run)', function () {
  this.timeout(120_000);

  let daemon: Daemon;
  let browser: Browser;
  let user: TestUser;
  const contexts: BrowserContext[] = [];
  const closers: Array<() => Promise<void>> = [];
  const children: ChildProcess[] = [];
  const dirs: Array<{ path: string; remove(): void }> = [];

  before(async function () {
    this.timeout(60_000);
    requireBuiltDashboard();
    let tcpPort = await freePort();
    while (tcpPort === 4040) tcpPort = await freePort();
    daemon = await startDaemon({ overrides: { tcpPort, httpPort: 0 } });
    expect(daemon.tcpPort, 'the TCP port the daemon was started on').to.equal(tcpPort);
    browser = await launchBrowser();
    user = await signedInUser(daemon);
  });

  after(async function () {
    this.timeout(30_000);
    for (const c of children) stopChild(c);
    for (const c of contexts) await c.close().catch(() => undefined);
    for (const close of closers.splice(0)) await close();
    await browser?.close().catch(() => undefined);
    await daemon?.stop();
    for (const d of dirs) d.remove();
  });

  /** Ends a child this test started (and, for bash, what it started: its process group). */
  function stopChild(c: ChildProcess): void {
    if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      c.kill('SIGKILL');
    }
  }

  function tmp(prefix: string): string {
    const d = tempDir(prefix);
    dirs.push(d);
    mkdirSync(d.path, { recursive: true });
    return d.path;
  }

  /** Runs a snippet as a game would, in its own process group; its output is kept for failure messages. */
  function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; output: () => string } {
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    return { child, output: () => out };
  }

  async function openSignedIn(viewport: { width: number; height: number }): Promise<{ page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: daemon.http });
    const session = JSON.stringify(JSON.stringify({ token: user.token, apiKey: user.apiKey, email: user.email }));
    await context.addInitScript(`localStorage.setItem('observerio.session', ${session})`);
    const page = await context.newPage();
    const watch = new PageWatch(page);
    const errors = collectPageErrors(page);
    const mark = watch.mark();
    await page.goto(`${daemon.http}/`);
    await expectAttr(page.getByTestId('ws-status'), 'data-state', 'open');
    await watch.waitLive(mark);
    await visible(page.getByTestId('sdk-snippet'));
    return { page, errors };
  }

  /** The snippet exactly as shown (white space and line breaks kept), once the picked SDK's is rendered. */
  async function snippetOf(page: Page, sdk: Sdk): Promise<string> {
    await page.getByTestId(`sdk-choice-${sdk}`).click();
    await expectAttr(page.getByTestId('sdk-snippet'), 'data-sdk', sdk);
    await expectAttr(page.getByTestId(`sdk-choice-${sdk}`), 'aria-selected', 'true');
    return (await page.getByTestId('sdk-snippet').textContent()) ?? '';
  }

  /** Waits until GET /api/devices lists the device online, with `labels` once its d: line was applied. */
  async function waitDevice(deviceId: string, what: () => string, labels?: Record<string, string>): Promise<DeviceRow> {
    return until(async () => {
      const r = await call<{ devices: DeviceRow[] }>(daemon, 'GET', '/api/devices', { token: user.token });
      expect(r.status).to.equal(200);
      const d = r.body.devices.find((x) => x.deviceId === deviceId);
      expect(d, `${deviceId} in GET /api/devices; the game printed:\n${what()}`).to.not.equal(undefined);
      expect(d!.online, `${deviceId} online`).to.equal(true);
      if (labels) expect(d!.labels, `${deviceId} labels`).to.deep.equal(labels);
      return d!;
    }, 30_000);
  }

  const snippets = {} as Record<Sdk, string>;

  it("shows the daemon's real host and ports, the key, a device id, labels, defaults and an install line in every SDK's snippet", async () => {
    const { page, errors } = await openSignedIn({ width: 1280, height: 800 });
    const host = '127.0.0.1';
    for (const sdk of SDKS) {
      const text = await snippetOf(page, sdk);
      snippets[sdk] = text;
      expect(text, `${sdk}: API key`).to.include(user.apiKey);
      expect(text, `${sdk}: device id`).to.include(DEVICE[sdk]);
      expect(text, `${sdk}: the default port is nowhere`).to.not.match(/\b4040\b/);
      expect(await textOf(page.getByTestId('sdk-install')), `${sdk}: install line`).to.equal(INSTALL[sdk]);
      expect(await textOf(page.getByTestId('sdk-note')), `${sdk}: note`).to.include(host);
    }
    const { tcpPort, httpPort } = daemon;
    expect(snippets.node).to.include(`host: '${host}',\n  port: ${tcpPort},`).and.include(`from '@observerio/sdk'`);
    expect(snippets.node).to.include(`labels: { platform: 'node', build: '1.0.0' }`).and.include('defaults: { enemy_speed: 1.5, god_mode: false }');
    expect(snippets.browser).to.include(`url: 'ws://${host}:${httpPort}/sdk',`).and.include(`labels: { platform: 'web', build: '1.0.0' }`).and.not.include('port:');
    expect(snippets.csharp).to.include(`Host = "${host}",\n            Port = ${tcpPort},`).and.include('ObserverioClient.Connect(new ObserverioOptions').and.include('{ "enemy_speed", 1.5 }');
    expect(snippets.raw).to.include(`| nc ${host} ${tcpPort}`).and.include(`v:${user.apiKey}:nc-test\\n`);
    expect(new Set(Object.values(snippets)).size, 'four different snippets').to.equal(4);

    // Copy puts exactly the shown snippet on the clipboard (and the install line likewise).
    await page.getByTestId('sdk-choice-node').click();
    await page.getByTestId('copy-snippet').click();
    await expectAttr(page.getByTestId('copy-snippet'), 'data-state', 'copied');
    expect(await page.evaluate('navigator.clipboard.readText()'), 'clipboard after Copy').to.equal(snippets.node);
    await page.getByTestId('copy-install').click();
    expect(await page.evaluate('navigator.clipboard.readText()'), 'clipboard after copying the install line').to.equal('npm i @observerio/sdk');

    // The choice survives a reload (localStorage), and an unknown stored value falls back to Node.
    await snippetOf(page, 'csharp');
    expect(await page.evaluate("localStorage.getItem('observerio.sdk')")).to.equal('csharp');
    await page.reload();
    await expectAttr(page.getByTestId('sdk-snippet'), 'data-sdk', 'csharp');
    await page.evaluate("localStorage.setItem('observerio.sdk', '<img src=x>')");
    await page.reload();
    await expectAttr(page.getByTestId('sdk-snippet'), 'data-sdk', 'node');

    expect(await pageWidth(page), 'nothing sideways at 1280 px').to.deep.equal({ scrollWidth: 1280, innerWidth: 1280 });
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: screenshotPath('connect-snippets-1280x800') });
    await page.locator('section.connect').screenshot({ path: screenshotPath('connect-panel-node-1280x800') });
    expect(errors, 'uncaught errors in the page').to.deep.equal([]);
  });

  it('fits a 390×844 screen with every SDK picked', async () => {
    const { page, errors } = await openSignedIn({ width: 390, height: 844 });
    for (const sdk of SDKS) {
      await snippetOf(page, sdk);
      expect(await pageWidth(page), `${sdk} at 390 px`).to.deep.equal({ scrollWidth: 390, innerWidth: 390 });
      for (const s of SDKS) await expectOnScreen(page.getByTestId(`sdk-choice-${s}`), `${s} choice with ${sdk} picked`);
      for (const id of ['sdk-install', 'copy-install', 'sdk-snippet', 'copy-snippet', 'copy-api-key']) await expectOnScreen(page.getByTestId(id), `${id} with ${sdk} picked`);
      const box = await page.locator('section.connect').evaluate((el) => ({ right: el.getBoundingClientRect().right, scroll: el.scrollWidth, client: el.clientWidth }));
      expect(box.right, `${sdk}: the card's right edge`).to.be.at.most(390);
      expect(box.scroll, `${sdk}: nothing wider than the card inside it`).to.be.at.most(box.client);
      await page.locator('section.connect').screenshot({ path: screenshotPath(`connect-panel-${sdk}-390x844`) });
    }
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: screenshotPath('connect-snippets-390x844') });
    expect(errors, 'uncaught errors in the page').to.deep.equal([]);
  });

  it('says so when the address cannot be read, shows no snippet with a guessed port, and retries', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    const session = JSON.stringify(JSON.stringify({ token: user.token, apiKey: user.apiKey, email: user.email }));
    await context.addInitScript(`localStorage.setItem('observerio.session', ${session})`);
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    const body = JSON.stringify({ error: { code: 'unavailable', message: 'the store is unreachable; retry' } });
    await page.route('**/api/connect-info', (r) => r.fulfill({ status: 503, contentType: 'application/json', body }));
    await page.goto(`${daemon.http}/`);
    await expectText(page.getByTestId('connect-info-error'), "Cannot read this daemon's address: the store is unreachable; retry Retry");
    expect(await page.getByTestId('sdk-snippet').count(), 'a snippet without the real address').to.equal(0);
    await visible(page.getByTestId('api-key'));
    await page.unroute('**/api/connect-info');
    await page.getByTestId('connect-info-retry').click();
    await expectText(page.getByTestId('sdk-snippet'), new RegExp(`port: ${daemon.tcpPort},`));
    expect(await page.getByTestId('connect-info-error').count()).to.equal(0);
    expect(errors, 'uncaught errors in the page').to.deep.equal([]);
  });

  it("runs the TypeScript snippet as pasted with node: its device appears with its labels and defaults", async () => {
    expect(snippets.node, 'the first test read the snippet').to.be.a('string');
    const dir = tmp('observerio-snippet-node-');
    // `npm i @observerio/sdk`, stood in for by this repo's build of the SDK.
    const pkg = join(dir, 'node_modules', '@observerio', 'sdk');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@observerio/sdk', type: 'module', exports: './index.js' }));
    writeFileSync(join(pkg, 'index.js'), `export * from ${JSON.stringify(pathToFileURL(SDK_INDEX).href)};\n`);
    writeFileSync(join(dir, 'game.mjs'), snippets.node);
    const game = run(process.execPath, ['game.mjs'], dir);
    await waitDevice('node-dev-1', game.output, { platform: 'node', build: '1.0.0' });
    await until(async () => {
      const r = await call<{ vars: Array<{ name: string; value: string }> }>(daemon, 'GET', '/api/vars', { token: user.token });
      expect(r.body.vars.find((v) => v.name === 'enemy_speed')?.value, 'enemy_speed reported').to.equal('1.5');
    });
    expect(game.child.exitCode, `the game is still running; it printed:\n${game.output()}`).to.equal(null);
    stopChild(game.child);
  });

  it('runs the raw protocol snippet as pasted with bash (nc a real TCP client): its device appears with its labels', async () => {
    expect(snippets.raw, 'the first test read the snippet').to.be.a('string');
    const dir = tmp('observerio-snippet-raw-');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // `nc HOST PORT`: stdin to the socket, the socket to stdout (the machine has no netcat).
    writeFileSync(
      join(bin, 'nc'),
      `#!${process.execPath}\nconst s = require('node:net').connect(Number(process.argv[3]), process.argv[2]);\nprocess.stdin.pipe(s);\ns.pipe(process.stdout);\n`,
    );
    chmodSync(join(bin, 'nc'), 0o755);
    writeFileSync(join(dir, 'device.sh'), snippets.raw);
    const game = run('bash', ['device.sh'], dir, { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` });
    await waitDevice('nc-test', game.output, { platform: 'shell', build: '1.0.0' });
    await until(() => expect(game.output().split('\n')[0], 'the daemon answered v:').to.equal('OK'));
    expect(game.output(), 'no error lines from the daemon').to.not.match(/^e:/m);
    await until(async () => {
      const r = await call<{ hits: Array<{ message: string }> }>(daemon, 'GET', '/api/logs?device=nc-test', { token: user.token });
      expect(r.body.hits.map((h) => h.message)).to.include('hello from nc');
    });
    stopChild(game.child);
  });

  it('compiles the C# / Unity snippet with mcs beside Observerio.cs and runs it: its device appears with its labels', async () => {
    expect(snippets.csharp, 'the first test read the snippet').to.be.a('string');
    const dir = tmp('observerio-snippet-csharp-');
    writeFileSync(join(dir, 'Observed.cs'), snippets.csharp);
    // What Unity would provide: a MonoBehaviour base, and an engine loop calling Start, then Update every frame.
    writeFileSync(
      join(dir, 'Engine.cs'),
      [
        'namespace UnityEngine { public class MonoBehaviour { } }',
        'public static class Engine {',
        '  public static void Main() {',
        '    var o = new Observed();',
        '    var flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic;',
        '    typeof(Observed).GetMethod("Start", flags).Invoke(o, null);',
        '    var update = typeof(Observed).GetMethod("Update", flags);',
        '    for (int i = 0; i < 1200; i++) { update.Invoke(o, null); System.Threading.Thread.Sleep(50); }',
        '    typeof(Observed).GetMethod("OnDestroy", flags).Invoke(o, null);',
        '  }',
        '}',
      ].join('\n'),
    );
    const exe = join(dir, 'game.exe');
    try {
      await promisify(execFile)('mcs', ['-noconfig', '-r:System.dll', '-r:System.Core.dll', `-out:${exe}`, CSHARP_SDK, join(dir, 'Observed.cs'), join(dir, 'Engine.cs')]);
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`the C# snippet does not compile:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    const game = run('mono', [exe], dir);
    await waitDevice('unity-editor', game.output, { platform: 'unity', build: '1.0.0' });
    stopChild(game.child);
  });

  it('runs the browser snippet as pasted in a page, on the built @observerio/sdk browser bundle: its device, labels, defaults and log appear', async () => {
    expect(snippets.browser, 'the first test read the snippet').to.be.a('string');
    expect(/url: '([^']+)'/.exec(snippets.browser)?.[1], 'the url in the browser snippet').to.equal(`ws://127.0.0.1:${daemon.httpPort}/sdk`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    // A game's own origin (a dev server on loopback; Chromium's local network access checks refuse a
    // page routed in from nowhere), not the daemon's; the import map stands in for the game's bundler.
    const html = [
      '<!doctype html><title>game</title>',
      '<script type="importmap">{"imports":{"@observerio/sdk":"/browser.mjs"}}</script>',
      `<script type="module">\n${snippets.browser}\nwindow.snippetRan = true;\n</script>`,
    ].join('\n');
    const site = createServer((req, res) => {
      if (req.url === '/browser.mjs') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(BROWSER_BUNDLE));
      if (req.url === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => site.close(() => resolve())));
    await page.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
    page.on('console', (m) => errors.push(`console: ${m.text()}`));
    await until(async () => expect(await page.evaluate('globalThis.snippetRan === true'), errors.join('\n')).to.equal(true), 15_000);
    await waitDevice('browser-dev-1', () => errors.join('\n'), { platform: 'web', build: '1.0.0' });
    await until(async () => {
      const r = await call<DeviceAnswer>(daemon, 'GET', '/api/devices/browser-dev-1', { token: user.token });
      expect(r.body.vars.find((v) => v.name === 'enemy_speed')?.reported, 'the default enemy_speed, reported').to.equal('1.5');
    }, 15_000);
    await until(async () => {
      const r = await call<{ hits: Array<{ message: string }> }>(daemon, 'GET', '/api/logs?device=browser-dev-1', { token: user.token });
      expect(r.body.hits.map((h) => h.message)).to.include('game started');
    }, 15_000);
    expect(errors, 'page errors').to.deep.equal([]);
  });
});
