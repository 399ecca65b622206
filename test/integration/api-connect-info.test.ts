/**
 * GET /api/connect-info against real daemons on real sockets: the ports it reports are the ones the
 * listeners really bound (port 0 configured), a device connects to exactly what it says, the advertise
 * config wins, a wildcard bind answers with the Host the request came to, and it needs a session.
 */
import { request } from 'node:http';
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { LineClient } from '../helpers/tcp-client.js';

interface ConnectInfo {
  host: string;
  tcpPort: number;
  httpPort: number;
  sdkUrl: string;
  apiKey: string;
}

/** node:http, because fetch may not set the Host header. */
function getWithHost(port: number, token: string, host: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/connect-info', headers: { host, authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('REST /api/connect-info', () => {
  const daemons: Daemon[] = [];
  const open: LineClient[] = [];
  const start = async (overrides: Record<string, unknown> = {}): Promise<{ daemon: Daemon; user: TestUser }> => {
    const daemon = await startDaemon({ overrides });
    daemons.push(daemon);
    return { daemon, user: await signedInUser(daemon) };
  };
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    for (const d of daemons.splice(0)) await d.stop();
  });

  it("reports the ports the daemon really listens on (port 0 configured), and a device connects there", async () => {
    const { daemon, user } = await start();
    expect(daemon.config.tcpPort).to.equal(0);
    const r = await call<ConnectInfo>(daemon, 'GET', '/api/connect-info', { token: user.token });
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal({ host: '127.0.0.1', tcpPort: daemon.tcpPort, httpPort: daemon.httpPort, sdkUrl: `ws://127.0.0.1:${daemon.httpPort}/sdk`, apiKey: user.apiKey });
    expect(r.body.tcpPort).to.be.greaterThan(0);
    expect(r.body.httpPort).to.be.greaterThan(0);
    const c = await LineClient.open(r.body.tcpPort, r.body.host);
    open.push(c);
    c.line(`v:${r.body.apiKey}:connect-info-probe`);
    expect(await c.next()).to.equal('OK');
  });

  it('answers with the advertised host and ports when they are configured', async () => {
    const { daemon, user } = await start({ advertise: { host: 'play.example.com', tcpPort: 14040, httpPort: 8443 } });
    const r = await call<ConnectInfo>(daemon, 'GET', '/api/connect-info', { token: user.token });
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal({ host: 'play.example.com', tcpPort: 14040, httpPort: 8443, sdkUrl: 'ws://play.example.com:8443/sdk', apiKey: user.apiKey });
  });

  it('tells browser games wss:// behind a TLS proxy: when advertise.tls says so, or when the proxy reports HTTPS', async () => {
    const { daemon, user } = await start();
    const plain = await call<ConnectInfo>(daemon, 'GET', '/api/connect-info', { token: user.token });
    expect(plain.body.sdkUrl).to.equal(`ws://127.0.0.1:${daemon.httpPort}/sdk`);
    const proxied = await call<ConnectInfo>(daemon, 'GET', '/api/connect-info', { token: user.token, headers: { 'X-Forwarded-Proto': 'https' } });
    expect(proxied.status).to.equal(200);
    expect(proxied.body.sdkUrl).to.equal(`wss://127.0.0.1:${daemon.httpPort}/sdk`);
    const hostile = await call<ConnectInfo>(daemon, 'GET', '/api/connect-info', { token: user.token, headers: { 'X-Forwarded-Proto': `https${'x'.repeat(3000)}` } });
    expect(hostile.status).to.equal(200);
    expect(hostile.body.sdkUrl).to.equal(`ws://127.0.0.1:${daemon.httpPort}/sdk`);
    const tls = await start({ advertise: { host: 'play.example.com', httpPort: 443, tls: true } });
    const r = await call<ConnectInfo>(tls.daemon, 'GET', '/api/connect-info', { token: tls.user.token });
    expect(r.body).to.deep.include({ httpPort: 443, sdkUrl: 'wss://play.example.com:443/sdk' });
  });

  it("bound to 0.0.0.0, answers with the host of the request's Host header, and refuses a hostile one", async () => {
    const { daemon, user } = await start({ host: '0.0.0.0' });
    const ok = await getWithHost(daemon.httpPort, user.token, `game-server.lan:${daemon.httpPort}`);
    expect(ok).to.deep.equal({ status: 200, body: { host: 'game-server.lan', tcpPort: daemon.tcpPort, httpPort: daemon.httpPort, sdkUrl: `ws://game-server.lan:${daemon.httpPort}/sdk`, apiKey: user.apiKey } });
    const v6 = await getWithHost(daemon.httpPort, user.token, `[fd00::7]:${daemon.httpPort}`);
    expect(v6.body).to.deep.include({ host: 'fd00::7', sdkUrl: `ws://[fd00::7]:${daemon.httpPort}/sdk` });
    const bad = await getWithHost(daemon.httpPort, user.token, "x');evil('");
    expect(bad.status).to.equal(400);
    expect(bad.body).to.deep.equal({ error: { code: 'bad_request', message: `Host header "x');evil('": must be an IPv4 address, an IPv6 address or a host name of letters, digits, - and _ between dots; set advertise.host` } });
    const long = await getWithHost(daemon.httpPort, user.token, 'a'.repeat(5000));
    expect(long.status).to.equal(400);
    expect(long.body).to.deep.equal({ error: { code: 'bad_request', message: 'Host header longer than 300 characters' } });
  });

  it('needs a session: 401 without one, with a malformed or an unknown token; 400 for a query', async () => {
    const { daemon, user } = await start();
    const tries: Array<Record<string, string>> = [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer not-a-real-token-at-all' }, { authorization: `Bearer ${'x'.repeat(5000)}` }];
    for (const headers of tries) {
      const r = await call<{ error: { code: string } }>(daemon, 'GET', '/api/connect-info', { headers });
      expect(r.status, JSON.stringify(headers).slice(0, 60)).to.equal(401);
      expect(r.body.error.code).to.equal('unauthorized');
      expect(JSON.stringify(r.body)).to.not.include(user.apiKey);
    }
    const q = await call<{ error: { message: string } }>(daemon, 'GET', '/api/connect-info?host=evil', { token: user.token });
    expect(q.status).to.equal(400);
    expect(q.body.error.message).to.equal('GET /api/connect-info takes no query parameters');
  });
});
