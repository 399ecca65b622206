/**
 * The dashboard's static files at `/`: served from memory with the right content types, a 404 for
 * anything else (no path ever reaches the file system), and a clear 503 page when it is not built.
 */
import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import uWS from 'uWebSockets.js';
import type { HttpContext } from '../../src/http/context.js';
import { dashboardRoutesFrom } from '../../src/http/dashboard.js';
import { Metrics } from '../../src/metrics.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { tempDir } from '../helpers/processes.js';

/** One uWS app with only the dashboard module (and the usual 404), on a free port. */
async function serve(dir: string): Promise<{ url: string; close(): void }> {
  const metrics = new Metrics();
  const ctx = { metrics, logger: pino({ level: 'silent' }) } as unknown as HttpContext;
  const app = uWS.App();
  dashboardRoutesFrom(dir)(app, ctx);
  app.any('/*', (res) => {
    res.cork(() => res.writeStatus('404 Not Found').end('not found'));
  });
  const ls = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen failed')))));
  return {
    url: `http://127.0.0.1:${uWS.us_socket_local_port(ls)}`,
    close: () => {
      uWS.us_listen_socket_close(ls);
      metrics.close();
    },
  };
}

describe('dashboard static files', () => {
  let server: { url: string; close(): void };
  let dir: string;
  let removeDir: () => void;

  before(async () => {
    const t = tempDir('observerio-dashboard-');
    dir = t.path;
    removeDir = t.remove;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>observerio</title>');
    writeFileSync(join(dir, 'app.js'), 'console.log("app")');
    writeFileSync(join(dir, 'styles.css'), 'body{}');
    writeFileSync(join(dir, 'secret.txt'), 'not for the web');
    server = await serve(dir);
  });
  after(() => {
    server.close();
    removeDir();
  });

  const cases: Array<[string, string, string]> = [
    ['/', 'text/html; charset=utf-8', '<!doctype html><title>observerio</title>'],
    ['/index.html', 'text/html; charset=utf-8', '<!doctype html><title>observerio</title>'],
    ['/app.js', 'text/javascript; charset=utf-8', 'console.log("app")'],
    ['/styles.css', 'text/css; charset=utf-8', 'body{}'],
  ];
  for (const [path, type, body] of cases) {
    it(`serves ${path} as ${type.split(';')[0]}`, async () => {
      const res = await fetch(server.url + path);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal(type);
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(await res.text()).to.equal(body);
    });
  }

  it('sends a content security policy with the page', async () => {
    const res = await fetch(server.url + '/');
    expect(res.headers.get('content-security-policy')).to.match(/default-src 'self'/);
    expect(res.headers.get('x-frame-options')).to.equal('DENY');
  });

  it('answers 404 for other files in the folder and for traversal attempts', async () => {
    for (const path of ['/secret.txt', '/app.js.map', '/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/app.js/', '/index.html/../secret.txt']) {
      const res = await fetch(server.url + path);
      expect(res.status, path).to.equal(404);
      expect(await res.text()).to.not.include('not for the web');
    }
  });

  it('serves files read at start (a later change on disk is not picked up until restart)', async () => {
    writeFileSync(join(dir, 'app.js'), 'changed');
    expect(await (await fetch(server.url + '/app.js')).text()).to.equal('console.log("app")');
  });

  it('answers 503 with a hint when the dashboard is not built', async () => {
    const empty = await serve(join(dir, 'missing'));
    try {
      const res = await fetch(empty.url + '/');
      expect(res.status).to.equal(503);
      expect(await res.text()).to.match(/not been built/);
      expect((await fetch(empty.url + '/app.js')).status).to.equal(503);
    } finally {
      empty.close();
    }
  });

  describe('in the daemon', () => {
    let daemon: Daemon;
    before(async () => {
      daemon = await startDaemon();
    });
    after(async () => {
      await daemon.stop();
    });

    it('serves the page at / and keeps the API, WebSocket and 404 routes apart', async () => {
      const page = await fetch(`${daemon.http}/`);
      expect([200, 503]).to.include(page.status);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      for (const path of ['/nope.js', '/../package.json', '/dist/dashboard/app.js', '/api/nope']) {
        expect((await fetch(daemon.http + path)).status, path).to.equal(404);
      }
    });
  });
});
