/**
 * The `observerio` commands over the HTTP API (user create, login, vars, logs, devices, admin), run
 * as the built CLI in its own process against a real daemon: their output, their `--json`, how they
 * report the daemon's errors and an unreachable daemon (exit 1), and bad use (exit 2).
 */
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { ADMIN_TOKEN } from '../helpers/admin.js';
import { expectUsageError, requireBuiltCli, runCli, startCli, type CliOptions } from '../helpers/cli.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

const API_KEY = /^[A-Za-z0-9]{12}$/;

describe('observerio commands over the HTTP API (built CLI against a real daemon)', function () {
  this.timeout(60_000);
  let daemon: Daemon;
  let user: TestUser;
  const sockets: LineClient[] = [];

  /** The CLI signed in as `user` against the test daemon. */
  const cli = (args: string[], opts: CliOptions = {}) => runCli(args, { ...opts, env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_TOKEN: user.token, ...opts.env } });

  /** A verified device of `apiKey` over real TCP. */
  const device = async (apiKey: string, deviceId: string): Promise<LineClient> => {
    const c = await LineClient.open(daemon.tcpPort);
    sockets.push(c);
    c.line(`v:${apiKey}:${deviceId}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };

  before(async () => {
    requireBuiltCli();
    daemon = await startDaemon({ overrides: { adminToken: ADMIN_TOKEN } });
  });
  beforeEach(async () => {
    user = await signedInUser(daemon);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });
  after(async () => {
    await daemon?.stop();
  });

  describe('user create and login', () => {
    it('creates an account, prints its API key, and login prints a token that works', async () => {
      const email = `new-${Date.now()}@example.com`;
      const created = await cli(['user', 'create', '--email', email, '--password', 'a long password']);
      expect(created.code, created.stderr).to.equal(0);
      const apiKey = created.stdout.trim();
      expect(apiKey).to.match(API_KEY);
      expect(created.stdout).to.equal(`${apiKey}\n`);
      expect(await daemon.ctx.store.verifyApiKey(apiKey)).to.equal(true);
      expect((await daemon.ctx.store.authenticate(email, 'a long password'))?.apiKey).to.equal(apiKey);

      const login = await cli(['login', '--email', email, '--password', 'a long password']);
      expect(login.code, login.stderr).to.equal(0);
      const token = login.stdout.trim();
      expect(token.length).to.be.greaterThan(16);
      const vars = await call(daemon, 'GET', '/api/vars', { token });
      expect(vars.status).to.equal(200);
    });

    it('reads credentials from the environment or stdin, and prints JSON with --json', async () => {
      const email = `env-${Date.now()}@example.com`;
      const created = await cli(['user', 'create', '--email', email, '--password-stdin', '--json'], { input: 'from stdin 123\n' });
      expect(created.code, created.stderr).to.equal(0);
      const body = JSON.parse(created.stdout) as { apiKey: string; email: string };
      expect(body.apiKey).to.match(API_KEY);
      expect(body.email).to.equal(email);

      const login = await cli(['login', '--json'], { env: { OBSERVERIO_EMAIL: email, OBSERVERIO_PASSWORD: 'from stdin 123' } });
      expect(login.code, login.stderr).to.equal(0);
      const session = JSON.parse(login.stdout) as { token: string; apiKey: string };
      expect(session.apiKey).to.equal(body.apiKey);
      expect((await call(daemon, 'GET', '/api/vars', { token: session.token })).status).to.equal(200);
    });

    it("reports the daemon's refusals as observerio: <code>: <message> with exit 1", async () => {
      const taken = await cli(['user', 'create', '--email', user.email, '--password', 'another password']);
      expect(taken.code).to.equal(1);
      expect(taken.stdout).to.equal('');
      expect(taken.stderr).to.equal('observerio: email_taken: email already registered\n');

      const short = await cli(['user', 'create', '--email', 'short@example.com', '--password', 'short']);
      expect(short.code).to.equal(1);
      expect(short.stderr).to.contain('observerio: bad_request: ').and.contain('at least 8 characters');

      const wrong = await cli(['login', '--email', user.email, '--password', 'not the password']);
      expect(wrong.code).to.equal(1);
      expect(wrong.stderr).to.match(/^observerio: unauthorized: /);
    });
  });

  describe('vars', () => {
    it('lists the variables a device sent, as a table and as JSON', async () => {
      const empty = await cli(['vars', 'list']);
      expect(empty.code, empty.stderr).to.equal(0);
      expect(empty.stdout).to.contain('no variables yet');

      const d = await device(user.apiKey, 'phone-1');
      d.line(`i:${user.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '3' }, { name: 'player name', type: 'string', value: 'Ada Lovelace' }])}`);
      await eventually(async () => expect(await daemon.ctx.store.getVars(user.apiKey)).to.have.length(2));

      const list = await cli(['vars', 'list']);
      expect(list.code, list.stderr).to.equal(0);
      expect(list.stdout).to.equal(['NAME         TYPE     VALUE', 'speed        integer  3', 'player name  string   Ada Lovelace', ''].join('\n'));

      const asJson = await cli(['vars', 'list', '--json']);
      expect(JSON.parse(asJson.stdout)).to.deep.equal({ vars: await daemon.ctx.store.getVars(user.apiKey) });
    });

    it('sets a variable: pushed to the connected device, or buffered when none is', async () => {
      const d = await device(user.apiKey, 'phone-1');
      d.line(`i:${user.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '3' }])}`);
      await eventually(async () => expect(await daemon.ctx.store.getVars(user.apiKey)).to.have.length(1));

      const set = await cli(['vars', 'set', 'speed', '7']);
      expect(set.code, set.stderr).to.equal(0);
      // The §8 answer: the target, how far it got, and the history entry it made (the key's newest).
      const latestHistoryId = async (): Promise<string | undefined> => (await call<{ entries: Array<{ id: string }> }>(daemon, 'GET', '/api/history?limit=1', { token: user.token })).body.entries[0]?.id;
      expect(set.stdout).to.equal(`speed = 7 (integer) for every device: delivered to 1 device, 0 pending (history ${await latestHistoryId()})\n`);
      await eventually(() => expect(d.lines).to.deep.equal(['OK', `v:${user.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '7' }])}`]));

      const typed = await cli(['vars', 'set', 'gravity', '9.5', '--type', 'float', '--json']);
      expect(typed.code, typed.stderr).to.equal(0);
      // §8 answers also say who the change is for, who it waits for and its history entry.
      const { historyId, ...answer } = JSON.parse(typed.stdout) as { historyId: unknown };
      expect(answer).to.deep.equal({ var: { name: 'gravity', type: 'float', value: '9.5' }, target: { all: true }, delivered: 1, pending: 0, buffered: false });
      expect(historyId).to.be.a('string').and.equal(await latestHistoryId());

      d.close();
      await eventually(() => expect(daemon.ctx.deviceConns.countKey(user.apiKey)).to.equal(0));
      const offline = await cli(['vars', 'set', 'speed', '8']);
      expect(offline.code, offline.stderr).to.equal(0);
      // phone-1 is offline but remembered: the change waits for it.
      expect(offline.stdout).to.equal(`speed = 8 (integer) for every device: delivered to 0 devices, 1 pending (history ${await latestHistoryId()})\n`);
      // A dashboard change is an override (DESIGN.md §8); <apiKey>:vs keeps what the device reported.
      expect((await daemon.ctx.clients.variables.listOverrides(user.apiKey)).map((o) => [o.name, o.type, o.value])).to.deep.include(['speed', 'integer', '8']);

      const bad = await cli(['vars', 'set', 'speed', 'fast']);
      expect(bad.code).to.equal(1);
      expect(bad.stderr).to.equal('observerio: bad_request: value "fast" is not a number (variable speed has type integer)\n');
    });
  });

  describe('logs', () => {
    const seed = async (): Promise<void> => {
      const phone = await device(user.apiKey, 'phone-1');
      phone.line(`l:${user.apiKey}:${b64([{ message: 'player joined the lobby', level: 'info' }, { message: 'texture cache miss', level: 'warn' }])}`);
      await eventually(async () => expect((await daemon.ctx.logIndex.search({ apiKey: user.apiKey })).total).to.equal(2));
      // Strictly later receive times for the second device's lines.
      const t = Date.now();
      await eventually(() => expect(Date.now()).to.be.greaterThan(t + 2), { intervalMs: 1 });
      const tablet = await device(user.apiKey, 'tablet-2');
      tablet.line(`l:${user.apiKey}:${b64([{ message: 'shader compile failed', level: 'error', shader: 'water' }, { message: 'player left the lobby', level: 'info' }])}`);
      await eventually(async () => expect((await daemon.ctx.logIndex.search({ apiKey: user.apiKey })).total).to.equal(4));
    };

    it('searches by text, level and device, newest first, with --json and --limit', async () => {
      await seed();
      const text = await cli(['logs', 'search', 'shader']);
      expect(text.code, text.stderr).to.equal(0);
      expect(text.stdout).to.match(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}ERROR {2}tablet-2 {2}shader compile failed shader=water\n$/);

      const all = await cli(['logs', 'search']);
      expect(all.stdout.trim().split('\n').map((l) => l.split('  ').at(-1))).to.deep.equal([
        'player left the lobby',
        'shader compile failed shader=water',
        'texture cache miss',
        'player joined the lobby',
      ]);

      const warn = await cli(['logs', 'search', '--level', 'warn', '--json']);
      const body = JSON.parse(warn.stdout) as { hits: Array<{ message: string; deviceId: string; apiKey: string }>; total: number };
      expect(body.total).to.equal(1);
      expect(body.hits[0]).to.include({ message: 'texture cache miss', deviceId: 'phone-1', apiKey: user.apiKey });

      const limited = await cli(['logs', 'search', '--device', 'phone-1', '--limit', '1']);
      expect(limited.stdout).to.contain('texture cache miss').and.not.contain('joined');
      expect(limited.stderr).to.contain('(1 newest of 2 matches');

      const none = await cli(['logs', 'search', 'nothing-like-this']);
      expect(none.code).to.equal(0);
      expect(none.stdout).to.equal('no logs match\n');
    });

    it('tails the latest logs, newest last', async () => {
      await seed();
      const r = await cli(['logs', 'tail', '-n', '3']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim().split('\n').map((l) => l.split('  ').at(-1))).to.deep.equal(['texture cache miss', 'shader compile failed shader=water', 'player left the lobby']);
      const json = await cli(['logs', 'tail', '-n', '2', '--device', 'phone-1', '--json']);
      expect(json.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { message: string }).message)).to.deep.equal(['player joined the lobby', 'texture cache miss']);
    });

    it('tail --follow prints new logs as they arrive, once each, and exits 0 on SIGINT', async () => {
      await seed();
      const tail = startCli(['logs', 'tail', '--follow', '-n', '1', '--interval', '0.1', '--level', 'info'], { env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_TOKEN: user.token } });
      await eventually(() => expect(tail.stdout()).to.contain('player left the lobby'), { timeoutMs: 10_000 });
      const d = await device(user.apiKey, 'pc-3');
      d.line(`l:${user.apiKey}:${b64([{ message: 'wave 1 started', level: 'info' }, { message: 'ignored: a warning', level: 'warn' }])}`);
      await eventually(() => expect(tail.stdout()).to.contain('wave 1 started'), { timeoutMs: 10_000 });
      d.line(`l:${user.apiKey}:${b64([{ message: 'wave 2 started', level: 'info' }])}`);
      await eventually(() => expect(tail.stdout()).to.contain('wave 2 started'), { timeoutMs: 10_000 });
      // A few more polls over the same window must not print anything twice.
      const before = tail.stdout();
      await new Promise((r) => setTimeout(r, 400));
      expect(tail.stdout()).to.equal(before);
      tail.child.kill('SIGINT');
      const r = await tail.exited;
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim().split('\n').map((l) => l.split('  ').at(-1))).to.deep.equal(['player left the lobby', 'wave 1 started', 'wave 2 started']);
    });
  });

  describe('devices', () => {
    it("lists the key's devices (DESIGN.md §8 DeviceSummary) as a table and as JSON", async () => {
      const none = await cli(['devices']);
      expect(none.code, none.stderr).to.equal(0);
      expect(none.stdout).to.equal('no devices connected\n');

      const t0 = Date.now();
      const phone = await device(user.apiKey, 'phone-1');
      const tablet = await device(user.apiKey, 'tablet-2');
      const other = await signedInUser(daemon);
      await device(other.apiKey, 'not-mine');
      const address = (c: LineClient): string => `127.0.0.1:${c.socket.localPort}`;
      // The key's client actor records a device after its OK: wait until both are listed online.
      await eventually(async () => expect((await daemon.ctx.clients.variables.devices(user.apiKey)).map((d) => `${d.deviceId} ${d.online}`).sort()).to.deep.equal(['phone-1 true', 'tablet-2 true']));

      const table = await cli(['devices']);
      expect(table.code, table.stderr).to.equal(0);
      const lines = table.stdout.trim().split('\n');
      expect(lines[0]).to.match(/^DEVICE +STATE +LAST SEEN +ADDRESS +LABELS +STRATEGY +PENDING$/);
      // Newest seen first, but a heartbeat gives both the same last-seen time (then by id): compare sorted.
      const rows = lines.slice(1, 3).sort();
      expect(rows[0]).to.match(new RegExp(`^phone-1 +online +now +${address(phone).replace(/\./g, '\\.')} +- +- +0$`));
      expect(rows[1]).to.match(new RegExp(`^tablet-2 +online +now +${address(tablet).replace(/\./g, '\\.')} +- +- +0$`));
      expect(lines[3]).to.equal('2 devices, 2 online');
      expect(lines).to.have.length(4);
      expect(table.stdout).not.to.contain('not-mine');

      const json = JSON.parse((await cli(['devices', '--json'])).stdout) as { devices: Array<{ deviceId: string; lastSeen: number }> };
      const byId = [...json.devices].sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1));
      for (const d of byId) expect(d.lastSeen).to.be.within(t0, Date.now());
      expect(byId.map(({ lastSeen: _seen, ...d }) => d)).to.deep.equal([
        { deviceId: 'phone-1', labels: {}, online: true, lastAddress: address(phone), generated: false, strategy: null, pendingCount: 0 },
        { deviceId: 'tablet-2', labels: {}, online: true, lastAddress: address(tablet), generated: false, strategy: null, pendingCount: 0 },
      ]);
    });
  });

  describe('admin', () => {
    const admin = (args: string[], token = ADMIN_TOKEN) => runCli(['admin', ...args], { env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_ADMIN_TOKEN: token } });

    it('prints the supervision tree with status and restarts, and the JSON as the daemon serves it', async () => {
      const r = await admin(['tree']);
      expect(r.code, r.stderr).to.equal(0);
      const lines = r.stdout.split('\n');
      expect(lines[0]).to.match(/^\/observerio {2}supervisor one_for_one {2}running {2}restarts \d+ {2}7 children \(7 running\)$/);
      for (const name of ['store', 'pubsub', 'logs', 'registry', 'clients', 'tcp', 'http']) expect(r.stdout).to.match(new RegExp(`^[│├└─ ]+${name} {2}(worker|supervisor)`, 'm'));
      expect(r.stdout).to.match(/^│ {2}├─ conns {2}supervisor simple_one_for_one {2}running/m);
      expect(r.stdout).to.match(/^│ {2}└─ listener {2}worker {2}running {2}restarts \d+/m);

      const json = await admin(['tree', '--json', '--depth', '1']);
      const tree = JSON.parse(json.stdout) as { path: string; children: Array<{ path: string; children?: unknown[] }> };
      expect(tree.path).to.equal('/observerio');
      expect(tree.children.map((c) => c.path)).to.deep.equal(['store', 'pubsub', 'logs', 'registry', 'clients', 'tcp', 'http'].map((n) => `/observerio/${n}`));
    });

    it('pages a big supervisor with --expand and --limit, and says how to see the rest', async () => {
      const r = await admin(['tree', '--expand', '/observerio/tcp', '--limit', '1']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.split('\n')[0]).to.match(/^\/observerio\/tcp {2}supervisor rest_for_one {2}running/);
      expect(r.stdout).to.contain('├─ conns  supervisor');
      expect(r.stdout).to.contain('└─ … 1 more: observerio admin tree --expand /observerio/tcp --offset 1 --limit 1');
      const next = await admin(['tree', '--expand', '/observerio/tcp', '--limit', '1', '--offset', '1']);
      expect(next.stdout).to.contain('├─ … 1 before these: observerio admin tree --expand /observerio/tcp --limit 1\n');
      expect(next.stdout).to.contain('└─ listener  worker');
    });

    it('kills an actor: its supervisor restarts it and the tree shows the crash', async () => {
      const r = await admin(['kill', '/observerio/tcp/listener', '--reason', 'cli test']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^killed \/observerio\/tcp\/listener\nnow: +\/observerio\/tcp\/listener {2}worker {2}running {2}restarts [1-9]\d* {2}last crash [\d.]+m?s ago: .*cli test\n/);
      expect(r.stdout).to.match(/supervisor: \/observerio\/tcp {2}supervisor rest_for_one {2}running/);
      const tree = await admin(['tree']);
      expect(tree.stdout).to.match(/└─ listener {2}worker {2}running {2}restarts [1-9]\d* {2}last crash .* ago: .*cli test/);
      // The daemon still accepts devices through the restarted listener.
      await device(user.apiKey, 'after-kill');
    });

    it('exits 1 with the daemon\'s message for a wrong token or an unknown actor', async () => {
      const wrong = await admin(['tree'], 'not-the-admin-token-at-all');
      expect(wrong.code).to.equal(1);
      expect(wrong.stderr).to.equal('observerio: unauthorized: admin routes need Authorization: Bearer <admin token>\n');
      const missing = await admin(['kill', '/observerio/nope']);
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.equal('observerio: not_found: no actor at /observerio/nope\n');
    });
  });

  describe('reaching the daemon', () => {
    it('signs in with OBSERVERIO_EMAIL and OBSERVERIO_PASSWORD when there is no token', async () => {
      const r = await runCli(['vars', 'list', '--url', daemon.http], { env: { OBSERVERIO_EMAIL: user.email, OBSERVERIO_PASSWORD: user.password } });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.contain('no variables yet');
    });

    it('says the daemon may not be running when the connection is refused (exit 1)', async () => {
      const port = await freePort();
      const r = await runCli(['devices'], { env: { OBSERVERIO_URL: `http://127.0.0.1:${port}`, OBSERVERIO_TOKEN: 'whatever' } });
      expect(r.code).to.equal(1);
      expect(r.stdout).to.equal('');
      expect(r.stderr).to.equal(
        `observerio: cannot reach the daemon at http://127.0.0.1:${port} (connection refused): is it running? Start it with 'make run' (or 'observerio serve'), or point --url / OBSERVERIO_URL at it\n`,
      );
    });

    it('reports an expired or wrong session as unauthorized (exit 1)', async () => {
      const r = await runCli(['logs', 'search'], { env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_TOKEN: 'no-such-session-token' } });
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^observerio: unauthorized: .+\n$/);
    });
  });

  describe('bad use exits 2 with a message', () => {
    const signedIn = (): CliOptions => ({ env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_TOKEN: user.token } });
    it('vars set without a value', () => expectUsageError(['vars', 'set', 'speed'], "missing required argument 'value'", signedIn()));
    it('an unknown subcommand', () => expectUsageError(['vars', 'frobnicate'], "unknown command 'frobnicate'", signedIn()));
    it('a command group without its subcommand', () => expectUsageError(['logs'], 'Usage: observerio logs', signedIn()));
    it('logs search --limit 0', () => expectUsageError(['logs', 'search', '--limit', '0'], "option '--limit <n>' argument '0' is invalid", signedIn()));
    it('logs search --from in no known format', () => expectUsageError(['logs', 'search', '--from', 'yesterday'], "option '--from <time>' argument 'yesterday' is invalid", signedIn()));
    it('logs tail --interval 0', () => expectUsageError(['logs', 'tail', '--interval', '0'], "option '--interval <seconds>' argument '0' is invalid", signedIn()));
    it('a --url that is not http', () => expectUsageError(['devices', '--url', 'ftp://example.com'], 'expected an http:// or https:// URL', signedIn()));
    it('an OBSERVERIO_URL that is not a URL', () => expectUsageError(['devices'], 'OBSERVERIO_URL "not a url"', { env: { OBSERVERIO_URL: 'not a url', OBSERVERIO_TOKEN: 'x' } }));
    it('no session', () => expectUsageError(['vars', 'list'], 'not signed in: set OBSERVERIO_TOKEN', { env: { OBSERVERIO_URL: daemon.http } }));
    it('an email without a password', () => expectUsageError(['devices', '--email', 'a@example.com'], 'a password is needed with --email', { env: { OBSERVERIO_URL: daemon.http } }));
    it('user create without an email', () => expectUsageError(['user', 'create', '--password', 'a long password'], 'an email is needed', { env: { OBSERVERIO_URL: daemon.http } }));
    it('user create without a password', () => expectUsageError(['user', 'create', '--email', 'a@example.com'], 'a password is needed', { env: { OBSERVERIO_URL: daemon.http } }));
    it('both --password and --password-stdin', () =>
      expectUsageError(['login', '--email', 'a@example.com', '--password', 'x', '--password-stdin'], '--password and --password-stdin exclude each other', { env: { OBSERVERIO_URL: daemon.http } }));
    it('admin without a token', () => expectUsageError(['admin', 'tree'], 'admin commands need the daemon\'s admin token', { env: { OBSERVERIO_URL: daemon.http } }));
    it('admin tree --offset without --expand', () =>
      expectUsageError(['admin', 'tree', '--offset', '5'], '--offset pages the children of one supervisor', { env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_ADMIN_TOKEN: ADMIN_TOKEN } }));
    it('admin kill with a relative path', () =>
      expectUsageError(['admin', 'kill', 'tcp/listener'], 'PATH must be an actor path', { env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_ADMIN_TOKEN: ADMIN_TOKEN } }));

    it('--help on every command exits 0 and describes its flags', async () => {
      const cases: Array<[string[], string[]]> = [
        [['user', 'create'], ['--email', '--password', '--password-stdin', '--url', '--json']],
        [['login'], ['--email', '--password', '--json']],
        [['vars', 'list'], ['--token', '--url', '--json']],
        [['vars', 'set'], ['<name>', '<value>', '--type', '--json']],
        [['logs', 'search'], ['[query]', '--level', '--device', '--limit', '--from', '--json']],
        [['logs', 'tail'], ['--follow', '--level', '--device', '--limit', '--interval']],
        [['devices'], ['--json', '--url']],
        [['admin', 'tree'], ['--expand', '--limit', '--admin-token', '--json']],
        [['admin', 'kill'], ['<path>', '--reason']],
      ];
      const results = await Promise.all(cases.map(([args]) => runCli([...args, '--help'])));
      results.forEach((r, i) => {
        const [args, flags] = cases[i] as [string[], string[]];
        expect(r.code, args.join(' ')).to.equal(0);
        for (const f of flags) expect(r.stdout, `${args.join(' ')} --help`).to.contain(f);
      });
    });
  });
});
