/**
 * GET /admin/tree and POST /admin/kill over real HTTP on a real daemon: authentication (and the
 * routes being absent with no token configured), query and body validation, what every node of the
 * tree carries, paging, and a tree of a few thousand real TCP connections staying one small answer.
 */
import { expect } from 'chai';
import type { TreeNode } from '../../src/otp/index.js';
import { ADMIN_TOKEN, AdminClient, connectionOf, device, nodeAt } from '../helpers/admin.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

describe('admin endpoints', () => {
  describe('with no admin token configured', () => {
    let daemon: Daemon;
    before(async () => {
      daemon = await startDaemon();
    });
    after(() => daemon.stop());

    it('GET /admin/tree answers 404 as if the route did not exist, token or not', async () => {
      for (const token of [null, ADMIN_TOKEN, 'anything']) {
        const a = await new AdminClient(daemon, token).tree();
        expect(a.status).to.equal(404);
        expect(a.body).to.deep.equal({ error: { code: 'not_found', message: 'no such route' } });
      }
    });

    it('POST /admin/kill answers 404 and kills nothing', async () => {
      const a = await new AdminClient(daemon, ADMIN_TOKEN).kill('/observerio/store');
      expect(a.status).to.equal(404);
      expect(daemon.runtime.find('/observerio/store')!.restarts).to.equal(0);
    });
  });

  describe('with an admin token', () => {
    let daemon: Daemon;
    let adm: AdminClient;
    let apiKey: string;
    const clients: LineClient[] = [];

    before(async () => {
      daemon = await startDaemon({ overrides: { adminToken: ADMIN_TOKEN } });
      adm = new AdminClient(daemon);
      apiKey = await daemon.register();
    });
    after(() => daemon.stop());
    afterEach(() => {
      for (const c of clients.splice(0)) c.close();
    });

    describe('authentication', () => {
      const cases: Array<[string, Record<string, string>]> = [
        ['no Authorization header', {}],
        ['a wrong token', { authorization: 'Bearer not-the-admin-token-at-all' }],
        ['a wrong token of the same length', { authorization: `Bearer ${'x'.repeat(ADMIN_TOKEN.length)}` }],
        ['the token with another scheme', { authorization: `Basic ${ADMIN_TOKEN}` }],
        ['the token without a scheme', { authorization: ADMIN_TOKEN }],
        ['an empty bearer', { authorization: 'Bearer ' }],
        ['a token with a suffix', { authorization: `Bearer ${ADMIN_TOKEN}x` }],
      ];
      for (const [what, headers] of cases) {
        it(`answers 401 to ${what}, on both routes`, async () => {
          const tree = await fetch(`${daemon.http}/admin/tree`, { headers });
          expect(tree.status).to.equal(401);
          expect(tree.headers.get('www-authenticate')).to.match(/^Bearer /);
          expect(((await tree.json()) as { error: { code: string } }).error.code).to.equal('unauthorized');
          const kill = await fetch(`${daemon.http}/admin/kill`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify({ path: '/observerio/store' }),
          });
          expect(kill.status).to.equal(401);
          expect(daemon.runtime.find('/observerio/store')!.restarts).to.equal(0);
        });
      }

      it('accepts the token whatever the case of "Bearer"', async () => {
        const res = await fetch(`${daemon.http}/admin/tree`, { headers: { authorization: `bearer ${ADMIN_TOKEN}` } });
        expect(res.status).to.equal(200);
      });

      it('answers 404 for anything else under /admin, and for another method on a known path', async () => {
        expect((await fetch(`${daemon.http}/admin/nothing`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).to.equal(404);
        expect((await fetch(`${daemon.http}/admin/tree`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).to.equal(404);
        expect((await fetch(`${daemon.http}/admin/kill`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).to.equal(404);
      });
    });

    describe('GET /admin/tree', () => {
      it('describes every node of the application tree', async () => {
        const dev = await device(daemon, apiKey, 'tree-dev');
        clients.push(dev);
        dev.line(`i:${apiKey}:${b64([{ name: 'speed', type: 'integer', value: '3' }])}`);
        await eventually(() => expect(connectionOf(daemon, 'tree-dev').info!.linesIn).to.equal(2));
        const a = await adm.tree();
        expect(a.status).to.equal(200);
        expect(a.headers.get('content-type')).to.match(/^application\/json/);
        expect(a.headers.get('cache-control')).to.equal('no-store');
        const root = a.body;
        expect(root).to.include({ name: 'observerio', path: '/observerio', kind: 'supervisor', strategy: 'one_for_one', status: 'running', restarts: 0, childCount: 7 });
        expect(root.children!.map((c) => c.name)).to.deep.equal(['store', 'pubsub', 'logs', 'registry', 'clients', 'tcp', 'http']);

        const visit = (n: TreeNode): void => {
          expect(n, n.path).to.include.all.keys('name', 'path', 'kind', 'restart', 'status', 'restarts', 'lastCrash', 'startedAt', 'mailbox');
          expect(['permanent', 'transient', 'temporary']).to.include(n.restart);
          expect(n.startedAt, n.path).to.be.closeTo(Date.now(), 60_000);
          if (n.kind === 'supervisor') {
            expect(n, n.path).to.include.all.keys('strategy', 'intensity', 'period', 'childCount', 'counts', 'children');
            n.children!.forEach(visit);
          }
        };
        visit(root);

        expect(nodeAt(root, '/observerio/tcp')).to.include({ strategy: 'rest_for_one', intensity: 3, period: 5000 });
        expect(nodeAt(root, '/observerio/tcp/conns')).to.include({ strategy: 'simple_one_for_one', intensity: 5, period: 10_000, maxChildren: 18_000 });
        expect(nodeAt(root, '/observerio/tcp/listener').info).to.include({ port: daemon.tcpPort });

        const conn = connectionOf(daemon, 'tree-dev');
        const connNode = nodeAt(root, conn.path);
        expect(connNode).to.include({ kind: 'worker', restart: 'transient', status: 'running', restarts: 0, lastCrash: null, mailbox: 0 });
        expect(connNode.info).to.include({ apiKey, deviceId: 'tree-dev', linesIn: 2, linesOut: 1, bytesOut: 3 });
        expect(connNode.info!.bytesIn).to.be.greaterThan(20);
        expect(connNode.info!.remoteAddress).to.equal(`127.0.0.1:${dev.socket.localPort}`);

        const client = nodeAt(root, `/observerio/clients/client-${apiKey}`);
        expect(client).to.include({ kind: 'worker', restart: 'transient', status: 'running' });
        expect(client.info).to.include({ apiKey, sockets: 1, outboxLength: 0 });
      });

      it('limits the children listed per supervisor, and depth', async () => {
        const top = await adm.tree200('?limit=2');
        expect(top.children!.map((c) => c.name)).to.deep.equal(['store', 'pubsub']);
        expect(top).to.include({ childCount: 7, truncated: true });
        expect(top.counts).to.deep.equal({ running: 7 });

        const none = await adm.tree200('?limit=0');
        expect(none.children).to.deep.equal([]);
        expect(none.childCount).to.equal(7);

        const shallow = await adm.tree200('?depth=0');
        expect(shallow.children).to.deep.equal([]);
        expect(shallow).to.include({ childCount: 7, truncated: true });

        const one = await adm.tree200('?depth=1');
        expect(one.children).to.have.length(7);
        expect(nodeAt(one, '/observerio/tcp').children).to.deep.equal([]);
        expect(nodeAt(one, '/observerio/tcp').childCount).to.equal(2);
      });

      it('expands one path, paging its children with offset and limit', async () => {
        for (let i = 0; i < 5; i++) clients.push(await device(daemon, apiKey, `page-${i}`));
        const all = daemon.runtime.tree({ expand: '/observerio/tcp/conns', limit: 1000 }).children!.map((c) => c.path);
        expect(all.length).to.be.at.least(5);
        const page = await adm.tree200(`?expand=/observerio/tcp/conns&offset=1&limit=2`);
        expect(page).to.include({ path: '/observerio/tcp/conns', childCount: all.length, offset: 1, truncated: true });
        expect(page.children!.map((c) => c.path)).to.deep.equal(all.slice(1, 3));
        const last = await adm.tree200(`?expand=/observerio/tcp/conns&offset=${all.length - 1}&limit=50`);
        expect(last.children!.map((c) => c.path)).to.deep.equal(all.slice(-1));
        const past = await adm.tree200(`?expand=/observerio/tcp/conns&offset=${all.length + 10}`);
        expect(past.children).to.deep.equal([]);

        const worker = await adm.tree200(`?expand=${encodeURIComponent(all[0] as string)}`);
        expect(worker).to.include({ path: all[0], kind: 'worker' });

        const whole = await adm.tree200('?expand=/observerio/tcp&depth=1');
        expect(whole.path).to.equal('/observerio/tcp');
        expect(nodeAt(whole, '/observerio/tcp/conns').children).to.deep.equal([]);
      });

      it('answers 404 when expanding an unknown path', async () => {
        const a = await adm.tree('?expand=/observerio/nope');
        expect(a.status).to.equal(404);
        expect(a.body).to.deep.equal({ error: { code: 'not_found', message: 'no actor at /observerio/nope' } });
      });

      const badQueries: Array<[string, RegExp]> = [
        ['?limit=abc', /limit must be a whole number between 0 and 1000/],
        ['?limit=-1', /limit must be a whole number/],
        ['?limit=1.5', /limit must be a whole number/],
        ['?limit=', /limit must be a whole number/],
        ['?limit=1001', /limit must be at most 1000, got 1001/],
        ['?depth=deep', /depth must be a whole number/],
        ['?depth=65', /depth must be at most 64/],
        ['?offset=10', /offset pages the children of one supervisor: give expand=<path> with it/],
        ['?expand=/observerio/tcp/conns&offset=x', /offset must be a whole number/],
        ['?expand=observerio/tcp', /expand must be an actor path/],
        ['?limt=5', /unknown query parameter "limt"; expected limit, offset, expand, depth/],
        ['?limit=1&limit=2', /query parameter limit is given more than once/],
      ];
      for (const [query, message] of badQueries) {
        it(`answers 400 with a clear message to ${query}`, async () => {
          const a = await adm.tree(query);
          expect(a.status).to.equal(400);
          const body = a.body as unknown as { error: { code: string; message: string } };
          expect(body.error.code).to.equal('bad_request');
          expect(body.error.message).to.match(message);
        });
      }
    });

    describe('POST /admin/kill', () => {
      it('answers with the actor afterwards and its supervisor', async () => {
        const k = await adm.kill200('/observerio/registry');
        expect(k.node).to.include({ path: '/observerio/registry', status: 'running', restarts: 1 });
        expect(k.node.lastCrash!.reason).to.equal('Killed: killed by operator');
        expect(k.node.lastCrash!.at).to.be.closeTo(Date.now(), 5000);
        expect(k.supervisor).to.include({ path: '/observerio', status: 'running', restarts: 0 });
        expect(k.supervisor).to.not.have.property('children');
      });

      it('records the reason given in the body', async () => {
        const a = await adm.killRaw(JSON.stringify({ path: '/observerio/registry', reason: 'drill 42' }));
        expect(a.status).to.equal(200);
        expect(a.body.node.lastCrash!.reason).to.equal('Killed: drill 42');
      });

      it('answers 404 for an unknown path', async () => {
        for (const path of ['/observerio/nope', '/observerio/tcp/conns/conn-999999', '/other', '/observerio/store/deeper']) {
          const a = await adm.kill(path);
          expect(a.status, path).to.equal(404);
          expect((a.body as unknown as { error: { code: string } }).error.code).to.equal('not_found');
        }
      });

      it('answers 400 for the root, which only stopping the daemon ends', async () => {
        for (const path of ['/observerio', '/observerio/', '/']) {
          const a = await adm.kill(path);
          expect(a.status, path).to.equal(400);
          expect((a.body as unknown as { error: { message: string } }).error.message).to.match(/root supervisor cannot be killed/);
        }
        expect(daemon.runtime.root.status).to.equal('running');
      });

      const badBodies: Array<[string, string, RegExp]> = [
        ['an empty body', '', /request body is empty/],
        ['invalid JSON', '{"path": ', /not valid JSON/],
        ['a JSON array', '["/observerio/store"]', /body: /],
        ['no path', '{}', /path/],
        ['a path that is not a string', '{"path": 5}', /path must be a string/],
        ['an empty path', '{"path": ""}', /path must not be empty/],
        ['a relative path', '{"path": "observerio/store"}', /path must be an actor path/],
        ['an unknown key', '{"path": "/observerio/store", "signal": 9}', /Unrecognized key/i],
        ['a reason that is not a string', '{"path": "/observerio/store", "reason": 1}', /reason must be a string/],
      ];
      for (const [what, body, message] of badBodies) {
        it(`answers 400 to ${what}`, async () => {
          const a = await adm.killRaw(body);
          expect(a.status).to.equal(400);
          expect((a.body as unknown as { error: { message: string } }).error.message).to.match(message);
          expect(daemon.runtime.find('/observerio/store')!.restarts).to.equal(0);
        });
      }

      it('answers 400 to a body that is not JSON by its content type', async () => {
        const a = await adm.killRaw('path=/observerio/store', { 'content-type': 'application/x-www-form-urlencoded' });
        expect(a.status).to.equal(400);
      });

      it('answers 413 to a body over the size limit', async () => {
        const a = await adm.killRaw(JSON.stringify({ path: `/${'x'.repeat(70_000)}` }));
        expect(a.status).to.equal(413);
      });
    });
  });

  describe('restart backoff of a connection actor', () => {
    // Delays long enough to see the wait over HTTP, a stable period short enough to wait for.
    const backoff = { initialMs: 300, maxMs: 1000, resetAfterMs: 1500 };
    let daemon: Daemon;
    let adm: AdminClient;
    let apiKey: string;
    let dev: LineClient | undefined;
    before(async () => {
      daemon = await startDaemon({ overrides: { adminToken: ADMIN_TOKEN, tcp: { restartBackoff: backoff } } });
      adm = new AdminClient(daemon);
      apiKey = await daemon.register();
    });
    after(async () => {
      dev?.close();
      await daemon.stop();
    });

    it('is on by default for tcp/conns, and shown on every supervisor and child', async () => {
      const other = await startDaemon({ overrides: { adminToken: ADMIN_TOKEN } });
      try {
        const root = await new AdminClient(other).tree200();
        expect(nodeAt(root, '/observerio/tcp/conns').backoff).to.deep.equal({ initialMs: 10, maxMs: 1000, resetAfterMs: 2000 });
        expect(nodeAt(root, '/observerio/tcp').backoff).to.equal(null);
        expect(root.backoff).to.equal(null);
        const visit = (n: TreeNode): void => {
          expect(n.backoffMs, n.path).to.equal(0);
          if (n.kind === 'supervisor') expect(n, n.path).to.have.property('backoff');
          n.children?.forEach(visit);
        };
        visit(root);
      } finally {
        await other.stop();
      }
    });

    it('makes a connection killed three times in a row wait before its restart, keeps its socket and lines, then forgets once stable', async function () {
      this.timeout(20_000);
      dev = await device(daemon, apiKey, 'crashy');
      const path = connectionOf(daemon, 'crashy').path;
      expect(nodeAt(await adm.tree200(), '/observerio/tcp/conns').backoff).to.deep.equal(backoff);

      // First kill after a stable run: restarted at once.
      expect((await adm.kill200(path)).node).to.include({ status: 'running', restarts: 1, backoffMs: 0 });
      // Second in a row: initialMs ± 20%, and the kill answers once the delayed restart is done.
      const t0 = performance.now();
      const second = (await adm.kill200(path)).node;
      expect(second).to.include({ status: 'running', restarts: 2 });
      expect(second.backoffMs).to.be.within(240, 360);
      expect(performance.now() - t0).to.be.at.least(second.backoffMs - 5);

      // Third: twice that. While it waits the tree says so, and the device's lines wait for it.
      const third = adm.kill200(path);
      const waiting = await eventually(async () => {
        const n = nodeAt(await adm.tree200(`?expand=${encodeURIComponent(path)}`), path);
        expect(n.status).to.equal('restarting');
        return n;
      });
      expect(waiting.backoffMs).to.be.within(480, 720);
      dev.line(`i:${apiKey}:${b64([{ name: 'during', type: 'string', value: 'wait' }])}`);
      await eventually(async () => {
        const n = nodeAt(await adm.tree200(`?expand=${encodeURIComponent(path)}`), path);
        expect(n.status).to.equal('restarting');
        expect(n.mailbox, 'the line is queued for the next incarnation').to.be.at.least(1);
      });
      const after = (await third).node;
      expect(after).to.include({ status: 'running', restarts: 3, backoffMs: waiting.backoffMs });
      await eventually(async () => expect(await daemon.ctx.store.getVars(apiKey)).to.deep.equal([{ name: 'during', type: 'string', value: 'wait' }]));
      expect(nodeAt(await adm.tree200(`?expand=${encodeURIComponent(path)}`), path)).to.deep.include({ backoffMs: waiting.backoffMs, lastCrash: after.lastCrash });
      expect(dev.closed).to.equal(false);

      // Stable for resetAfterMs: the delay is no longer in force, and the next kill restarts at once.
      await eventually(async () => expect(nodeAt(await adm.tree200(`?expand=${encodeURIComponent(path)}`), path).backoffMs).to.equal(0), { timeoutMs: 5000, intervalMs: 100 });
      expect((await adm.kill200(path)).node).to.include({ status: 'running', restarts: 4, backoffMs: 0 });
      expect(dev.closed).to.equal(false);
      expect(daemon.runtime.find('/observerio/tcp/conns')!.restarts).to.equal(0);
    });
  });

  describe('the tree with a few thousand connections', () => {
    const N = 2000;
    let daemon: Daemon;
    const conns: LineClient[] = [];

    before(async function () {
      this.timeout(120_000);
      daemon = await startDaemon({ overrides: { adminToken: ADMIN_TOKEN } });
      const keys = [await daemon.register(), await daemon.register()];
      for (let i = 0; i < N; i += 250) {
        const batch = await Promise.all(Array.from({ length: Math.min(250, N - i) }, () => LineClient.open(daemon.tcpPort)));
        batch.forEach((c, j) => c.line(`v:${keys[(i + j) % 2]}:dev-${i + j}`));
        const answers = await Promise.all(batch.map((c) => c.next(10_000)));
        expect(answers.every((l) => l === 'OK')).to.equal(true);
        conns.push(...batch);
      }
    });
    after(async function () {
      this.timeout(60_000);
      for (const c of conns) c.close();
      await daemon?.stop();
    });

    it(`answers GET /admin/tree?limit=50 with counts and a page, in a small answer`, async () => {
      const adm = new AdminClient(daemon);
      const t0 = performance.now();
      const a = await adm.tree('?limit=50');
      const ms = performance.now() - t0;
      expect(a.status).to.equal(200);
      const tcpConns = nodeAt(a.body, '/observerio/tcp/conns');
      expect(tcpConns).to.include({ childCount: N, truncated: true });
      expect(tcpConns.counts).to.deep.equal({ running: N });
      expect(tcpConns.children).to.have.length(50);
      expect(tcpConns.children!.every((c) => typeof c.info?.deviceId === 'string' && c.info.deviceId.startsWith('dev-'))).to.equal(true);
      expect(nodeAt(a.body, '/observerio/tcp/listener').info).to.include({ connections: N });
      expect(nodeAt(a.body, '/observerio/registry').info).to.include({ sockets: N, keysWithSockets: 2, clients: 2 });
      expect(nodeAt(a.body, '/observerio/clients').childCount).to.equal(2);
      expect(a.bytes).to.be.below(64 * 1024);

      const page = await adm.tree(`?expand=/observerio/tcp/conns&offset=${N - 20}&limit=50`);
      expect(page.body.children).to.have.length(20);
      expect(page.bytes).to.be.below(32 * 1024);
      // Speed belongs to the benchmarks; this only shows it in the test output.
      console.log(`      GET /admin/tree?limit=50 with ${N} connections: ${ms.toFixed(1)} ms, ${a.bytes} bytes`);
    });
  });
});
