/**
 * The SDK's WebSocket transport against a fake `GET /sdk` (the `ws` package's WebSocketServer on a
 * real socket): the protocol as on TCP (v:, d:, i: as one message per line; several lines per message
 * read right), hostile frames (binary, oversized, broken, floods) that never throw into the game,
 * reconnects after the server drops or refuses, the offline queue, backpressure, and bad options.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { Client as BrowserClient, connect as browserConnect } from '../../../src/sdk/browser.js';
import * as browserEntry from '../../../src/sdk/browser.js';
import { connect, createClient, SdkError, type Client, type ConnectOptions, type WebSocketConstructor } from '../../../src/sdk/index.js';
import * as nodeEntry from '../../../src/sdk/index.js';
import { WS_HIGH_WATER } from '../../../src/sdk/ws-transport.js';
import { eventually } from '../../helpers/eventually.js';

const KEY = 'AbCdEf012345';
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');
const vLine = (vars: Array<{ name: string; type: string; value: string }>, key = KEY): string => `v:${key}:${b64(vars)}`;

interface Conn {
  socket: ServerSocket;
  /** Every text message received, as sent. */
  messages: string[];
  binary: number;
}

/** A stand-in for the daemon's GET /sdk: answers `v:` with OK unless told otherwise, records the rest. */
class FakeSdkServer {
  readonly conns: Conn[] = [];
  answerVerify = true;
  private constructor(
    private wss: WebSocketServer,
    readonly port: number,
  ) {}

  static async start(port = 0): Promise<FakeSdkServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/sdk' });
    await once(wss, 'listening');
    const server = new FakeSdkServer(wss, (wss.address() as AddressInfo).port);
    wss.on('connection', (socket) => {
      const conn: Conn = { socket, messages: [], binary: 0 };
      server.conns.push(conn);
      socket.on('message', (data, isBinary) => {
        if (isBinary) return void conn.binary++;
        const text = data.toString();
        conn.messages.push(text);
        if (server.answerVerify && text.startsWith('v:')) socket.send('OK\n');
      });
    });
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/sdk`;
  }

  last(): Conn {
    const c = this.conns[this.conns.length - 1];
    if (!c) throw new Error('no connection yet');
    return c;
  }

  /** Lines of one connection's messages that start with `prefix`. */
  lines(conn: Conn, prefix: string): string[] {
    return conn.messages.flatMap((m) => m.split('\n')).filter((l) => l.startsWith(prefix));
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

describe('sdk WebSocket transport (fake GET /sdk)', () => {
  let server: FakeSdkServer;
  let client: Client | undefined;
  const errors: SdkError[] = [];
  const opts = (o: Partial<ConnectOptions> = {}): ConnectOptions => ({
    url: server.url,
    WebSocket,
    apiKey: KEY,
    varsWindowMs: 1,
    logIntervalMs: 1,
    reconnect: { initialMs: 10, maxMs: 40 },
    ...o,
  });
  const open = async (o: Partial<ConnectOptions> = {}): Promise<Client> => {
    client = await connect(opts(o));
    client.on('error', (e) => errors.push(e));
    return client;
  };
  let uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);

  beforeEach(async () => {
    server = await FakeSdkServer.start();
    errors.length = 0;
    client = undefined;
    uncaught = [];
    process.on('uncaughtException', onUncaught);
  });
  afterEach(async () => {
    process.off('uncaughtException', onUncaught);
    await client?.close();
    await server.stop();
    expect(uncaught).to.deep.equal([]);
  });

  it('verifies, declares labels and reports defaults as one text message per line', async () => {
    const c = await open({ deviceId: 'tab-1', labels: { platform: 'web' }, defaults: { speed: 1.5 } });
    expect(c.connected).to.equal(true);
    await eventually(() => expect(server.last().messages).to.have.length(3));
    const [v, d, i] = server.last().messages;
    expect(v).to.equal(`v:${KEY}:tab-1\n`);
    expect(d).to.equal(`d:${KEY}:${b64({ platform: 'web' })}\n`);
    expect(i).to.equal(`i:${KEY}:${b64([{ name: 'speed', type: 'float', value: '1.5' }])}\n`);
    c.log('hello', { level: 'warn', timestamp: 5 });
    await c.flush();
    await eventually(() => expect(server.lines(server.last(), 'l:')).to.deep.equal([`l:${KEY}:${b64([{ message: 'hello', level: 'warn', timestamp: 5 }])}`]));
  });

  it('applies every line of a message that carries several, with or without a trailing newline, and ends a line at the message end', async () => {
    const c = await open({ defaults: { speed: 1, lives: 3 } });
    const seen: Array<[string, unknown]> = [];
    c.on('vars', (changes) => seen.push(...changes.map((ch) => [ch.name, ch.value] as [string, unknown])));
    const a = vLine([{ name: 'speed', type: 'float', value: '2.5' }]);
    const b = vLine([{ name: 'lives', type: 'integer', value: '9' }]);
    server.last().socket.send(`${a}\r\n\n  \n${b}`);
    // A line never spans two messages: this half is a line of its own, and a broken one.
    server.last().socket.send(b.slice(0, 20));
    await eventually(() => expect(seen).to.deep.equal([['speed', 2.5], ['lives', 9]]));
    expect(c.getNumber('speed', 0)).to.equal(2.5);
    expect(c.getNumber('lives', 0)).to.equal(9);
    await eventually(() => expect(errors.map((e) => e.code)).to.deep.equal(['bad_server_line']));
  });

  it('never throws into the game on hostile frames: binary, oversized, broken lines, floods, a throwing listener', async () => {
    const c = await open({ maxLineBytes: 256, defaults: { speed: 1 } });
    c.onChange('speed', () => {
      throw new Error('the game listener broke');
    });
    const s = server.last().socket;
    s.send(Buffer.from('OK\n'), { binary: true });
    s.send(`${'x'.repeat(10_000)}\n${vLine([{ name: 'speed', type: 'float', value: '2' }])}`);
    s.send(`v:${KEY}:!!!notbase64\nv:${KEY}:${b64({ not: 'an array' })}\nv:${KEY}\ne:\nv:short:abc\n${vLine([{ name: 'speed', type: 'float', value: '3' }], 'ZZZZZZZZZZZZ')}`);
    s.send('\n\n\n');
    s.send('');
    s.send('z:an extension this SDK does not know\nOK\nOK');
    for (let i = 0; i < 200; i++) s.send(`e:rate_limited:flood ${i}`);
    s.send(vLine([{ name: 'speed', type: 'float', value: '4' }]));
    await eventually(() => expect(c.getNumber('speed', 0)).to.equal(4));
    const codes = errors.map((e) => e.code);
    expect(codes.slice(0, 2)).to.deep.equal(['bad_server_line', 'line_too_long']);
    expect(errors[0]?.message).to.match(/binary/);
    expect(codes.filter((x) => x === 'listener_error')).to.have.length(2);
    expect(codes.filter((x) => x === 'bad_server_line')).to.have.length(7);
    expect(codes.filter((x) => x === 'rate_limited')).to.have.length(200);
    expect(c.connected).to.equal(true);
    // The connection still works both ways.
    c.setVar('lives', 2);
    await c.flush();
    await eventually(() => expect(server.lines(server.last(), 'i:').at(-1)).to.equal(`i:${KEY}:${b64([{ name: 'lives', type: 'integer', value: '2' }])}`));
    expect(server.conns).to.have.length(1);
  });

  it('without an error listener, hostile frames go to the logger and nothing throws', async () => {
    const warned: string[] = [];
    client = await connect(opts({ logger: { warn: (m) => warned.push(m) } }));
    server.last().socket.send(Buffer.from([0xff, 0x00]), { binary: true });
    server.last().socket.send('v:garbage');
    await eventually(() => expect(warned).to.have.length(2));
    expect(warned[0]).to.match(/bad_server_line.*binary/);
    expect(client.connected).to.equal(true);
  });

  it('reconnects after the server drops the socket, re-sending labels, variables and the logs queued meanwhile', async () => {
    const c = await open({ deviceId: 'tab-2', labels: { platform: 'web' }, defaults: { speed: 1 } });
    const events: string[] = [];
    c.on('disconnected', (i) => events.push(`disconnected:${i.error?.code}:${i.willReconnect}`));
    c.on('connected', (i) => events.push(`connected:${i.reconnected}`));
    server.last().socket.terminate();
    await eventually(() => expect(events[0]).to.equal('disconnected:connection_lost:true'));
    c.log('while offline', { timestamp: 7 });
    await eventually(() => expect(events).to.include('connected:true'));
    expect(server.conns).to.have.length(2);
    await eventually(() => expect(server.lines(server.last(), 'l:')).to.deep.equal([`l:${KEY}:${b64([{ message: 'while offline', level: 'info', timestamp: 7 }])}`]));
    const lines = server.last().messages.map((m) => m.trim().slice(0, 2));
    expect(lines.slice(0, 3)).to.deep.equal(['v:', 'd:', 'i:']);
    expect(c.connected).to.equal(true);
  });

  it('reconnects after a close frame (1001 going away, 1003) and after the whole server went down and came back', async () => {
    const c = await open();
    const reasons: string[] = [];
    c.on('reconnecting', (i) => reasons.push(i.error.message));
    server.last().socket.close(1003, 'binary messages are not accepted; send text');
    await eventually(() => expect(server.conns).to.have.length(2));
    await eventually(() => expect(c.connected).to.equal(true));
    expect(reasons[0]).to.match(/code 1003 "binary messages are not accepted; send text"/);
    server.last().socket.close(1001, 'server shutting down');
    await eventually(() => expect(server.conns).to.have.length(3));
    await eventually(() => expect(c.connected).to.equal(true));

    const port = server.port;
    await server.stop();
    await eventually(() => expect(c.state).to.equal('waiting'));
    server = await FakeSdkServer.start(port);
    await eventually(() => expect(c.connected).to.equal(true), { timeoutMs: 5000 });
    expect(server.conns).to.have.length(1);
  });

  it('createClient runs on its defaults while nothing listens, and connects once the server is up', async () => {
    const port = server.port;
    await server.stop();
    const retries: string[] = [];
    client = createClient(opts({ url: `ws://127.0.0.1:${port}/sdk`, defaults: { speed: 1.5 } }));
    client.on('reconnecting', (i) => retries.push(i.error.code));
    expect(client.getNumber('speed', 0)).to.equal(1.5);
    client.log('queued before any connection', { timestamp: 1 });
    await eventually(() => expect(retries.length).to.be.greaterThan(1));
    expect(retries[0]).to.equal('connection_error');
    server = await FakeSdkServer.start(port);
    await client.flush();
    expect(client.connected).to.equal(true);
    await eventually(() => expect(server.lines(server.last(), 'l:')).to.have.length(1));
  });

  it('treats an upgrade the server refuses (HTTP 404) and an e: reply to v: as failed attempts', async () => {
    const refused = await connect(opts({ url: `ws://127.0.0.1:${server.port}/not-sdk`, reconnect: false })).then(
      () => null,
      (e: SdkError) => e.code,
    );
    expect(refused).to.equal('connection_error');
    server.answerVerify = false;
    const pending = connect(opts({ reconnect: false }));
    await eventually(() => expect(server.conns).to.have.length(1));
    server.last().socket.send('e:unknown_api_key:API key is not registered\n');
    const err = await pending.then(
      () => null,
      (e: SdkError) => e,
    );
    expect(err?.code).to.equal('unknown_api_key');
    expect(err?.fromDaemon).to.equal(true);
  });

  it('times out a server that never answers OK, and close() during the attempt ends it', async () => {
    server.answerVerify = false;
    const err = await connect(opts({ connectTimeoutMs: 50, reconnect: false })).then(
      () => null,
      (e: SdkError) => e.code,
    );
    expect(err).to.equal('connect_timeout');
    const c = createClient(opts());
    await eventually(() => expect(server.conns.length).to.be.greaterThan(1));
    await c.close();
    expect(c.state).to.equal('closed');
  });

  it('holds logs back while the WebSocket is backed up and sends them once it drains', async () => {
    let buffered = 0;
    const sent: string[] = [];
    // A WebSocket whose buffer the test controls; the rest is the real transport and client.
    class SlowSocket {
      readyState = 0;
      onopen: ((e: unknown) => void) | null = null;
      onmessage: ((e: { data: unknown }) => void) | null = null;
      onerror: ((e: unknown) => void) | null = null;
      onclose: ((e: { code: number; reason: string }) => void) | null = null;
      constructor(readonly url: string) {
        setTimeout(() => {
          this.readyState = 1;
          this.onopen?.({});
        }, 1);
      }
      get bufferedAmount(): number {
        return buffered;
      }
      send(data: string): void {
        sent.push(data);
        if (data.startsWith('v:')) setTimeout(() => this.onmessage?.({ data: 'OK\n' }), 1);
      }
      close(): void {
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code: 1000, reason: '' }), 1);
      }
    }
    const c = await open({ WebSocket: SlowSocket as WebSocketConstructor, logBatchSize: 1 });
    c.log('one');
    expect(sent.filter((m) => m.startsWith('l:'))).to.have.length(1);
    buffered = WS_HIGH_WATER + 1;
    c.log('two');
    c.log('three');
    // Several drain polls go by while the buffer stays full.
    await new Promise((r) => setTimeout(r, 100));
    expect(sent.filter((m) => m.startsWith('l:'))).to.have.length(1);
    expect(c.queuedLogs).to.equal(2);
    buffered = 0;
    await eventually(() => expect(sent.filter((m) => m.startsWith('l:'))).to.have.length(3));
    expect(c.queuedLogs).to.equal(0);
  });

  it('refuses bad options before connecting', () => {
    const code = (o: Partial<ConnectOptions>, make: (o: ConnectOptions) => unknown = (x) => createClient(x)): string => {
      try {
        make(opts(o));
      } catch (err) {
        expect(err).to.be.instanceOf(SdkError);
        return (err as SdkError).code;
      }
      return 'none';
    };
    expect(code({ url: 'http://127.0.0.1:4000/sdk' })).to.equal('bad_option');
    expect(code({ url: 'not a url' })).to.equal('bad_option');
    expect(code({ url: server.url, port: 4040 })).to.equal('bad_option');
    // Node 20 has no global WebSocket: without the option there is no class to use.
    if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'undefined') expect(code({ WebSocket: undefined })).to.equal('bad_option');
    // The browser build has no TCP.
    expect(code({ url: undefined, host: '127.0.0.1', port: 4040 }, (x) => new BrowserClient(x))).to.equal('bad_option');
    expect(code({ url: undefined }, (x) => new BrowserClient(x))).to.equal('bad_option');
  });

  it('the browser entry speaks the same protocol over the WebSocket and exports what the Node entry does', async () => {
    expect(Object.keys(browserEntry).sort()).to.deep.equal(Object.keys(nodeEntry).sort());
    const c = await browserConnect({ url: server.url, WebSocket, apiKey: KEY, defaults: { speed: 2 }, varsWindowMs: 1 });
    try {
      server.last().socket.send(`${vLine([{ name: 'speed', type: 'float', value: '6' }])}\n`);
      await eventually(() => expect(c.getNumber('speed', 0)).to.equal(6));
      await eventually(() => expect(server.lines(server.last(), 'i:')).to.have.length(1));
    } finally {
      await c.close();
    }
  });
});
