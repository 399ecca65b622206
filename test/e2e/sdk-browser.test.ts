/**
 * `GET /sdk` from a real browser (Debian's Chromium through playwright-core): a page's own
 * `new WebSocket('ws://127.0.0.1:<http>/sdk')` verifies with `v:`, reports a variable with `i:`, gets
 * a dashboard change as a `v:` message, and is closed with 1003 for a binary message. No session and
 * no Origin check: a game's page on any origin connects, and `v:` checks its key.
 */
import { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { launchBrowser } from '../helpers/browser.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';

interface PageSocket {
  messages: string[];
  close: { code: number; reason: string } | null;
}

/** The page's globals (the tests' tsconfig has no DOM library: the socket is typed as far as used). */
interface PageGlobals {
  sdk: { send(data: string | Uint8Array): void };
  sdkSeen: PageSocket;
}

describe('GET /sdk from Chromium', function () {
  this.timeout(60_000);
  let daemon: Daemon;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  /** The game's page, served from another origin than the daemon's. */
  let game: Server;
  let gameUrl: string;

  const seen = (): Promise<PageSocket> => page.evaluate(() => (globalThis as unknown as PageGlobals).sdkSeen);
  /** Opens the page's socket and waits until it is open. */
  const openSocket = (port: number): Promise<void> =>
    page.evaluate(
      (p) =>
        new Promise<void>((resolve, reject) => {
          const g = globalThis as unknown as PageGlobals;
          const ws = new WebSocket(`ws://127.0.0.1:${p}/sdk`);
          g.sdk = ws;
          g.sdkSeen = { messages: [], close: null };
          ws.onmessage = (e) => g.sdkSeen.messages.push(typeof e.data === 'string' ? e.data : '<binary>');
          ws.onclose = (e) => (g.sdkSeen.close = { code: e.code, reason: e.reason });
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error('the WebSocket failed'));
        }),
      port,
    );

  before(async function () {
    this.timeout(60_000);
    daemon = await startDaemon();
    browser = await launchBrowser();
    game = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>game</title><canvas></canvas>'));
    await new Promise<void>((resolve) => game.listen(0, '127.0.0.1', resolve));
    gameUrl = `http://127.0.0.1:${(game.address() as { port: number }).port}/`;
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await new Promise((resolve) => game?.close(resolve));
  });
  beforeEach(async () => {
    user = await signedInUser(daemon);
    page = await browser.newPage();
    // A page of another origin than the daemon's HTTP port: nothing checks where a game runs.
    // (Not about:blank: Chromium's local network access checks block that page from loopback.)
    await page.goto(gameUrl);
  });
  afterEach(async () => {
    await page.close();
  });

  it('verifies with v:, reports i:, and gets a dashboard change as a v: message', async () => {
    await openSocket(daemon.httpPort);
    await page.evaluate((key) => (globalThis as unknown as PageGlobals).sdk.send(`v:${key}:chromium-game`), user.apiKey);
    await eventually(async () => expect((await seen()).messages).to.deep.equal(['OK\n']));

    const payload = Buffer.from(JSON.stringify([{ name: 'lives', type: 'integer', value: '3' }])).toString('base64');
    await page.evaluate(([key, b64]) => (globalThis as unknown as PageGlobals).sdk.send(`i:${key}:${b64}\n`), [user.apiKey, payload] as const);
    await eventually(async () => expect(await daemon.ctx.store.getVars(user.apiKey)).to.deep.equal([{ name: 'lives', type: 'integer', value: '3' }]));

    const r = await call<{ delivered: number }>(daemon, 'PUT', '/api/vars/lives', { token: user.token, body: { value: 9 } });
    expect(r.status).to.equal(200);
    expect(r.body.delivered).to.equal(1);
    const pushed = await eventually(async () => {
      const m = (await seen()).messages;
      expect(m).to.have.length(2);
      return m[1] as string;
    });
    expect(pushed.endsWith('\n')).to.equal(true);
    const [cmd, key, b64] = pushed.trim().split(':');
    expect([cmd, key]).to.deep.equal(['v', user.apiKey]);
    expect(JSON.parse(Buffer.from(b64 ?? '', 'base64').toString('utf8'))).to.deep.equal([{ name: 'lives', type: 'integer', value: '9' }]);
    expect((await seen()).close).to.equal(null);
  });

  it('is closed with 1003 for a binary message', async () => {
    await openSocket(daemon.httpPort);
    await page.evaluate((key) => (globalThis as unknown as PageGlobals).sdk.send(new TextEncoder().encode(`v:${key}\n`)), user.apiKey);
    const close = await eventually(async () => {
      const c = (await seen()).close;
      expect(c).to.not.equal(null);
      return c!;
    });
    expect(close.code).to.equal(1003);
    expect(close.reason).to.match(/binary/);
    expect((await seen()).messages).to.deep.equal([]);
  });
});
