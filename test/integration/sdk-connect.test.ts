/** The SDK's connect(): verify handshake, local checks and every way the first connection can fail. */
import { createServer, type Socket } from 'node:net';
import { expect } from 'chai';
import { Client, connect, SdkError } from '../../src/sdk/index.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { TestDaemon } from './sdk-test-daemon.js';

const KEY = 'AbCdEf012345';

async function rejection(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(SdkError);
    return err as SdkError;
  }
  throw new Error('expected a rejection');
}

describe('sdk connect', () => {
  let daemon: TestDaemon;
  let client: Client | undefined;

  beforeEach(async () => {
    daemon = await TestDaemon.start({ keys: [KEY] });
    client = undefined;
  });
  afterEach(async () => {
    await client?.close();
    await daemon.stop();
  });

  it('resolves after the daemon answers OK to v:<apiKey>', async () => {
    client = await connect({ host: daemon.host, port: daemon.port, apiKey: KEY });
    expect(client.connected).to.equal(true);
    expect(client.state).to.equal('online');
    expect(daemon.received.map((r) => r.line)).to.deep.equal([`v:${KEY}`]);
    expect(client.deviceId).to.equal(null);
  });

  it('names the device with v:<apiKey>:<deviceId>', async () => {
    client = await connect({ host: daemon.host, port: daemon.port, apiKey: KEY, deviceId: 'pixel-8.qa_1' });
    expect(daemon.of('verify')).to.have.length(1);
    expect(daemon.of('verify')[0]).to.include({ apiKey: KEY, deviceId: 'pixel-8.qa_1' });
  });

  it('rejects with the daemon code for an unknown key and does not retry', async () => {
    const c = new Client({ host: daemon.host, port: daemon.port, apiKey: 'Unknown12345', reconnect: { initialMs: 1 } });
    const retries: unknown[] = [];
    c.on('reconnecting', (info) => retries.push(info));
    const err = await rejection(c.start());
    expect(err.code).to.equal('unknown_api_key');
    expect(err.fromDaemon).to.equal(true);
    expect(err.message).to.contain('not registered');
    expect(c.state).to.equal('closed');
    expect(retries).to.deep.equal([]);
    await eventually(() => expect(daemon.open).to.equal(0));
    expect(daemon.accepted).to.equal(1);
  });

  it('rejects a malformed API key, device id or option locally without connecting', async () => {
    for (const apiKey of ['short', 'AbCdEf01234!', '']) {
      const err = await rejection(connect({ host: daemon.host, port: daemon.port, apiKey }));
      expect(err.code).to.equal('bad_api_key');
      expect(err.fromDaemon).to.equal(false);
    }
    expect((await rejection(connect({ host: daemon.host, port: daemon.port, apiKey: KEY, deviceId: 'no spaces' }))).code).to.equal('bad_device_id');
    expect((await rejection(connect({ host: daemon.host, port: daemon.port, apiKey: KEY, logBatchSize: 0 }))).code).to.equal('bad_option');
    expect((await rejection(connect({ host: daemon.host, port: daemon.port, apiKey: KEY, reconnect: { jitter: 3 } }))).code).to.equal('bad_option');
    expect(daemon.accepted).to.equal(0);
  });

  it('rejects with connection_refused when nothing listens', async () => {
    const port = await freePort();
    const err = await rejection(connect({ host: '127.0.0.1', port, apiKey: KEY }));
    expect(err.code).to.equal('connection_refused');
    expect(err.message).to.contain(String(port));
  });

  it('rejects with connect_timeout when the daemon never answers (the original daemon, unknown key)', async () => {
    daemon.verifyReply = () => null;
    const err = await rejection(connect({ host: daemon.host, port: daemon.port, apiKey: KEY, connectTimeoutMs: 150 }));
    expect(err.code).to.equal('connect_timeout');
    expect(daemon.of('verify')).to.have.length(1);
    await eventually(() => expect(daemon.open).to.equal(0));
  });

  it('rejects with the daemon code when it refuses the connection (server_busy)', async () => {
    daemon.verifyReply = () => 'e:server_busy:too many connections';
    const err = await rejection(connect({ host: daemon.host, port: daemon.port, apiKey: KEY }));
    expect(err.code).to.equal('server_busy');
    expect(err.fromDaemon).to.equal(true);
  });

  it('rejects with connection_lost when the daemon hangs up before OK', async () => {
    const port = await freePort();
    const sockets: Socket[] = [];
    const srv = createServer((s) => {
      sockets.push(s);
      s.once('data', () => s.end());
    });
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
    try {
      const err = await rejection(connect({ host: '127.0.0.1', port, apiKey: KEY }));
      expect(err.code).to.equal('connection_lost');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('close() ends the connection, and the daemon sees it closed', async () => {
    client = await connect({ host: daemon.host, port: daemon.port, apiKey: KEY });
    const events: unknown[] = [];
    client.on('disconnected', (info) => events.push(info));
    const closing = client.close();
    expect(client.close()).to.equal(closing);
    await closing;
    expect(client.state).to.equal('closed');
    expect(events).to.deep.equal([{ error: null, willReconnect: false }]);
    await eventually(() => expect(daemon.open).to.equal(0));
  });
});
