/**
 * `GET /sdk` on a real in-process daemon with the `ws` client: the line protocol over a WebSocket,
 * served by the same connection actors as TCP (same replies, errors, limits, crash restarts), its
 * message rules (docs/PROTOCOL.md "WebSocket transport"), a device on it in every view (the device
 * list, the dashboard's /ws, the admin tree, /metrics), and its close codes.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { ADMIN_TOKEN, AdminClient, connectionNodes, decodeVarsLine, metric, nodeAt, scrape } from '../helpers/admin.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { SdkWsClient } from '../helpers/sdk-ws-client.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient } from '../helpers/ws-client.js';

interface Vector {
  direction: 'to_daemon' | 'to_sdk';
  line: string;
  expect: { kind: string; code?: string };
  since?: string;
}
const vectors = JSON.parse(readFileSync(new URL('../../docs/protocol-vectors.json', import.meta.url), 'utf8')) as Vector[];
const badLines = vectors.filter((v) => v.direction === 'to_daemon' && v.expect.kind === 'error' && v.since === undefined);

const MAX_LINE = 4096;
const MAX_ERRORS = 100;
const PER_KEY = 3;

describe('GET /sdk: the line protocol over a WebSocket', () => {
  let daemon: Daemon;
  let user: TestUser;
  const sockets: SdkWsClient[] = [];
  const tcps: LineClient[] = [];
  const dashboards: WsClient[] = [];

  const open = async (opts: Parameters<typeof SdkWsClient.open>[1] = {}): Promise<SdkWsClient> => {
    const c = await SdkWsClient.open(daemon.httpPort, opts);
    sockets.push(c);
    return c;
  };
  const verified = async (apiKey = user.apiKey, deviceId?: string): Promise<SdkWsClient> => {
    const c = await open();
    c.line(deviceId ? `v:${apiKey}:${deviceId}` : `v:${apiKey}`);
    expect(await c.next()).to.equal('OK');
    return c;
  };
  const tcp = async (): Promise<LineClient> => {
    const c = await LineClient.open(daemon.tcpPort);
    tcps.push(c);
    return c;
  };

  before(async () => {
    daemon = await startDaemon({
      crashPrefix: '!crash',
      overrides: {
        adminToken: ADMIN_TOKEN,
        tcp: { maxLineBytes: MAX_LINE, maxErrors: MAX_ERRORS, errorWindowMs: 60_000, restartIntensity: 3, restartPeriodMs: 60_000 },
        limits: { maxConnectionsPerKey: PER_KEY },
      },
    });
  });
  after(() => daemon.stop());
  beforeEach(async () => {
    user = await signedInUser(daemon);
  });
  afterEach(() => {
    for (const c of sockets.splice(0)) c.close();
    for (const c of tcps.splice(0)) c.close();
    for (const c of dashboards.splice(0)) c.close();
  });

  describe('commands', () => {
    it('answers v: with OK, a text message of its own ending with its newline', async () => {
      const c = await verified();
      expect(c.messages).to.deep.equal(['OK\n']);
      c.line(`v:${user.apiKey}`);
      expect(await c.next()).to.equal('OK');
      expect(c.messages).to.deep.equal(['OK\n', 'OK\n']);
    });

    it('answers e:unknown_api_key for an unregistered key and stays up', async () => {
      const c = await open();
      c.line('v:AAAAAAAAAAAA');
      expect(await c.next()).to.match(/^e:unknown_api_key:/);
      c.line(`v:${user.apiKey}`);
      expect(await c.next()).to.equal('OK');
    });

    it('stores i: variables and indexes l: logs of the verified key', async () => {
      const c = await verified(user.apiKey, 'browser-1');
      c.line(`i:${user.apiKey}:${b64([{ name: 'speed', type: 'integer', value: '7' }])}`);
      c.line(`l:${user.apiKey}:${b64([{ message: 'boss spawned in the browser', level: 'warn', timestamp: 5 }])}`);
      await eventually(async () => expect(await daemon.ctx.store.getVars(user.apiKey)).to.deep.equal([{ name: 'speed', type: 'integer', value: '7' }]));
      await eventually(async () => {
        const r = await call<{ hits: Array<Record<string, unknown>> }>(daemon, 'GET', '/api/logs?q=boss', { token: user.token });
        expect(r.status).to.equal(200);
        expect(r.body.hits).to.have.length(1);
        expect(r.body.hits[0]).to.include({ message: 'boss spawned in the browser', level: 'warn', deviceId: 'browser-1' });
      });
      expect(c.lines).to.deep.equal(['OK']);
    });

    it('runs several lines of one message in order, the last one ended by the end of the message', async () => {
      const c = await open();
      const set = (v: string) => `i:${user.apiKey}:${b64([{ name: 'level', type: 'integer', value: v }])}`;
      c.send(`v:${user.apiKey}\r\n${set('1')}\n\n${set('2')}\n${set('3')}`);
      expect(await c.next()).to.equal('OK');
      await eventually(async () => expect(await daemon.ctx.store.getVars(user.apiKey)).to.deep.equal([{ name: 'level', type: 'integer', value: '3' }]));
    });

    it('never joins a line across messages: each message ends its last line', async () => {
      const c = await open();
      c.send(`v:${user.apiKey.slice(0, 6)}`);
      c.send(`${user.apiKey.slice(6)}\n`);
      const [first, second] = await c.waitLines(2);
      expect(first).to.match(/^e:bad_api_key:/);
      expect(second).to.match(/^e:unknown_command:/);
      // Still up and unverified: the whole line in one message verifies it.
      c.line(`i:${user.apiKey}:W10=`);
      expect(await c.next()).to.match(/^e:not_verified:/);
      c.line(`v:${user.apiKey}`);
      expect(await c.next()).to.equal('OK');
    });

    it('echoes the optional observerio-lines subprotocol when offered', async () => {
      const c = await open({ protocols: ['observerio-lines'] });
      expect(c.ws.protocol).to.equal('observerio-lines');
      const plain = await open();
      expect(plain.ws.protocol).to.equal('');
    });
  });

  describe('errors: the same e: lines as TCP', () => {
    it(`answers every bad line of docs/protocol-vectors.json (${badLines.length}) exactly as TCP does, and stays up`, async () => {
      expect(badLines.length).to.be.greaterThan(20).and.below(MAX_ERRORS);
      const ws = await open();
      const t = await tcp();
      for (const v of badLines) {
        ws.line(v.line);
        t.line(v.line);
      }
      const overWs = await ws.waitLines(badLines.length);
      const overTcp = await t.waitLines(badLines.length);
      expect(overWs).to.deep.equal(overTcp);
      overWs.forEach((line, i) => expect(line.startsWith(`e:${badLines[i]?.expect.code}:`), `${badLines[i]?.line} → ${line}`).to.equal(true));
      ws.line(`v:${user.apiKey}`);
      expect(await ws.next()).to.equal('OK');
    });

    it('answers i: before v: and i: for another key as TCP does', async () => {
      const other = await signedInUser(daemon);
      const c = await open();
      c.line(`i:${user.apiKey}:W10=`);
      expect(await c.next()).to.equal('e:not_verified:send v:<apiKey> before i:');
      c.line(`v:${user.apiKey}`);
      expect(await c.next()).to.equal('OK');
      c.line(`i:${other.apiKey}:W10=`);
      expect(await c.next()).to.equal('e:key_mismatch:API key differs from the one this connection verified');
    });

    it('answers e:line_too_long for a line over tcp.maxLineBytes and carries on with the next line of the message', async () => {
      const c = await verified();
      c.send(`l:${user.apiKey}:${'A'.repeat(MAX_LINE)}\nv:${user.apiKey}`);
      expect(await c.next()).to.equal(`e:line_too_long:line of ${MAX_LINE + 15}+ bytes exceeds the maximum of ${MAX_LINE}`);
      expect(await c.next()).to.equal('OK');
    });

    it('drops a socket that sends a message over tcp.maxLineBytes + 64 KiB (1006: uWS sends no close frame), running none of it', async () => {
      const c = await verified();
      c.send(`i:${user.apiKey}:${b64([{ name: 'big', type: 'string', value: 'x'.repeat(MAX_LINE + 64 * 1024) }])}`);
      expect(await c.waitClosed()).to.equal(1006);
      expect(c.lines).to.deep.equal(['OK']);
      expect(await daemon.ctx.store.getVars(user.apiKey)).to.deep.equal([]);
    });

    it('closes on a binary message with 1003, running none of it', async () => {
      const c = await open();
      c.ws.send(Buffer.from(`v:${user.apiKey}\n`), { binary: true });
      expect(await c.waitClosed()).to.equal(1003);
      expect(c.closeReason).to.match(/binary/);
      expect(c.lines).to.deep.equal([]);
    });

    it(`closes a flood of bad lines past the error budget (${MAX_ERRORS}) with e:too_many_errors`, async () => {
      const c = await open();
      c.send(Array.from({ length: MAX_ERRORS + 5 }, (_, i) => `junk ${i}`).join('\n'));
      const lines = await c.waitLines(MAX_ERRORS + 2);
      expect(lines.slice(0, MAX_ERRORS + 1).every((l) => l.startsWith('e:unknown_command:'))).to.equal(true);
      expect(lines[MAX_ERRORS + 1]).to.equal(`e:too_many_errors:more than ${MAX_ERRORS} errors in 60000 ms; closing`);
      expect(await c.waitClosed()).to.equal(1000);
      expect(c.lines).to.have.length(MAX_ERRORS + 2);
    });
  });

  describe('the connection actor', () => {
    it('is under tcp/conns with transport ws, and a crash restarts it on the same WebSocket, still verified', async () => {
      const c = await verified(user.apiKey, 'crashy-browser');
      const adm = new AdminClient(daemon);
      const node = await eventually(() => {
        const n = connectionNodes(daemon).find((x) => x.info?.deviceId === 'crashy-browser');
        expect(n).to.not.equal(undefined);
        return n!;
      });
      expect(node.path.startsWith('/observerio/tcp/conns/')).to.equal(true);
      expect(node.info).to.include({ transport: 'ws', remoteAddress: '127.0.0.1', apiKey: user.apiKey });

      // The crash and the lines after it in the same message: the restarted actor carries on with them.
      c.send(`!crash now\ni:${user.apiKey}:${b64([{ name: 'after', type: 'integer', value: '1' }])}\nv:${user.apiKey}:crashy-browser`);
      expect(await c.next()).to.equal('OK');
      const n = nodeAt(await adm.tree200(`?expand=${node.path}`), node.path);
      expect(n).to.include({ status: 'running', restarts: 1 });
      expect(n.lastCrash!.reason).to.equal('fault injected by "!crash now"');
      await eventually(async () => expect(await daemon.ctx.store.getVars(user.apiKey)).to.deep.equal([{ name: 'after', type: 'integer', value: '1' }]));
      expect(c.closed).to.equal(false);
      // Its actor still answers on the same socket.
      c.line('hello');
      expect(await c.next()).to.match(/^e:unknown_command:/);
    });

    it('gets a dashboard change (PUT /api/vars/:name) as a v: message', async () => {
      const c = await verified(user.apiKey, 'browser-2');
      await eventually(() => expect(daemon.ctx.deviceConns.lookup(user.apiKey)).to.have.length(1));
      const r = await call<{ delivered: number }>(daemon, 'PUT', '/api/vars/enemy_speed', { token: user.token, body: { value: 2.5 } });
      expect(r.status).to.equal(200);
      expect(r.body.delivered).to.equal(1);
      const line = await c.next();
      expect(decodeVarsLine(line, user.apiKey)).to.deep.equal([{ name: 'enemy_speed', type: 'float', value: '2.5' }]);
      expect(c.messages[c.messages.length - 1]).to.equal(`${line}\n`);
    });

    it('shows in GET /api/devices and in the dashboard’s device events, like a TCP device', async () => {
      const live = await WsClient.open(daemon.httpPort, user.token);
      dashboards.push(live);
      const c = await verified(user.apiKey, 'browser-3');
      const connected = await live.waitFor((f) => f.type === 'device' && f.event === 'connected');
      expect(connected.device).to.include({ apiKey: user.apiKey, deviceId: 'browser-3', remoteAddress: '127.0.0.1' });
      const listed = await eventually(async () => {
        const r = await call<{ devices: Array<Record<string, unknown>> }>(daemon, 'GET', '/api/devices', { token: user.token });
        expect(r.body.devices).to.have.length(1);
        return r.body.devices[0]!;
      });
      // A DeviceSummary (DESIGN.md §8): the address it was last seen from, as the connection reported it.
      expect(listed).to.include({ deviceId: 'browser-3', online: true, lastAddress: (connected.device as Record<string, unknown>).remoteAddress, generated: false, pendingCount: 0 });
      expect(listed.lastAddress).to.equal('127.0.0.1');
      c.close();
      const gone = await live.waitFor((f) => f.type === 'device' && f.event === 'disconnected');
      expect((gone.device as Record<string, unknown>).id).to.equal((connected.device as Record<string, unknown>).id);
      await eventually(async () => {
        const r = await call<{ devices: unknown[] }>(daemon, 'GET', '/api/devices', { token: user.token });
        expect(r.body.devices.filter((d) => (d as { online?: boolean }).online !== false)).to.have.length(0);
      });
    });

    it(`shares the per-key connection limit (${PER_KEY}) with TCP: the next v: gets e:too_many_connections and is closed`, async () => {
      const t = await tcp();
      t.line(`v:${user.apiKey}`);
      expect(await t.next()).to.equal('OK');
      await verified();
      await verified();
      const over = await open();
      over.line(`v:${user.apiKey}`);
      expect(await over.next()).to.equal(`e:too_many_connections:connection limit of ${PER_KEY} per API key reached; retry later`);
      expect(await over.waitClosed()).to.equal(1000);
      // Another key still connects; a slot given back is free again.
      const other = await signedInUser(daemon);
      await verified(other.apiKey);
      t.close();
      await eventually(async () => {
        const again = await open();
        again.line(`v:${user.apiKey}`);
        expect(await again.next()).to.equal('OK');
      });
    });

    it('counts its connections on /metrics with transport="ws"', async () => {
      const before = await scrape(daemon);
      const wsOpen = metric(before, 'observerio_tcp_connections', { transport: 'ws' }) ?? -1;
      const c = await verified();
      await verified();
      await eventually(async () => expect(metric(await scrape(daemon), 'observerio_tcp_connections', { transport: 'ws' })).to.equal(wsOpen + 2));
      const text = await scrape(daemon);
      expect(metric(text, 'observerio_tcp_connections_accepted_total', { transport: 'ws' })).to.be.at.least(2);
      expect(metric(text, 'observerio_tcp_connections', { transport: 'tcp' })).to.be.a('number');
      c.close();
      await eventually(async () => expect(metric(await scrape(daemon), 'observerio_tcp_connections', { transport: 'ws' })).to.equal(wsOpen + 1));
    });
  });
});

describe('GET /sdk: connection limits, idle timeout and shutdown', () => {
  it('shares maxConnections and the per-address limit with TCP, and closes its sockets with 1001 when the daemon stops', async () => {
    const daemon = await startDaemon({ overrides: { tcp: { maxConnections: 3 }, limits: { maxConnectionsPerAddress: 2 } } });
    const tcps: LineClient[] = [];
    try {
      const apiKey = await daemon.register();
      const t = await LineClient.open(daemon.tcpPort);
      tcps.push(t);
      const first = await SdkWsClient.open(daemon.httpPort);
      // A connection counts from its start, verified or not: wait until both are actors.
      await eventually(() => expect(connectionNodes(daemon).filter((n) => n.status !== 'stopped')).to.have.length(2));
      const sameHost = await SdkWsClient.open(daemon.httpPort);
      expect(await sameHost.next()).to.equal('e:too_many_connections:connection limit of 2 per address reached; retry later');
      expect(await sameHost.waitClosed()).to.equal(1000);

      const otherHost = await SdkWsClient.open(daemon.httpPort, { localAddress: '127.0.0.2' });
      otherHost.line(`v:${apiKey}`);
      expect(await otherHost.next()).to.equal('OK');
      const busy = await SdkWsClient.open(daemon.httpPort, { localAddress: '127.0.0.3' });
      expect(await busy.next()).to.equal('e:server_busy:connection limit of 3 reached; retry later');
      expect(await busy.waitClosed()).to.equal(1000);

      first.line(`v:${apiKey}`);
      expect(await first.next()).to.equal('OK');
      await daemon.stop();
      expect(await first.waitClosed()).to.equal(1001);
      expect(await otherHost.waitClosed()).to.equal(1001);
      expect(first.closeReason).to.equal('server shutting down');
      await t.waitClosed();
    } finally {
      for (const c of tcps) c.close();
      await daemon.stop();
    }
  });

  it('closes a verified socket that stays silent for tcp.idleTimeoutMs, as TCP does, without an error line', async () => {
    const daemon = await startDaemon({ overrides: { tcp: { idleTimeoutMs: 300 } } });
    try {
      const apiKey = await daemon.register();
      const c = await SdkWsClient.open(daemon.httpPort);
      c.line(`v:${apiKey}`);
      expect(await c.next()).to.equal('OK');
      expect(await c.waitClosed()).to.equal(1000);
      expect(c.lines).to.deep.equal(['OK']);
    } finally {
      await daemon.stop();
    }
  });
});
