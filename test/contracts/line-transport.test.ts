/**
 * Runs the LineTransport contract against NetTransport (a real loopback TCP connection, the device
 * being a plain net client), against WsTransport (a real uWebSockets.js server, the device being the
 * `ws` client) and against the in-memory transport of the connection's unit tests; then what only
 * the WebSocket transport does (its message framing, binary messages).
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { expect } from 'chai';
import uWS from 'uWebSockets.js';
import WebSocket from 'ws';
import { NetTransport } from '../../src/tcp/net-transport.js';
import type { LineTransport } from '../../src/tcp/transport.js';
import { WsTransport } from '../../src/tcp/ws-transport.js';
import { eventually } from '../helpers/eventually.js';
import { MemoryTransport } from '../unit/tcp/memory-transport.js';
import { lineTransportContract, type Pair } from './line-transport.contract.js';

lineTransportContract('NetTransport', async (): Promise<Pair> => {
  const server = createServer({ noDelay: true });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = createConnection({ host: '127.0.0.1', port });
  client.on('error', () => undefined);
  let received = '';
  client.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  const socket = await accepted;
  return {
    transport: new NetTransport(socket),
    peer: {
      send: (text) => void client.write(text),
      received: () => received,
      stall: () => void client.pause(),
      resume: () => void client.resume(),
      close: (abrupt) => void (abrupt ? client.resetAndDestroy() : client.end()),
    },
    dispose: async () => {
      client.destroy();
      socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
});

lineTransportContract('MemoryTransport (test double)', async (): Promise<Pair> => {
  const t = new MemoryTransport();
  return {
    transport: t,
    peer: {
      send: (text) => t.send(text),
      received: () => t.received,
      stall: () => t.stall(),
      resume: () => t.resume(),
      close: (abrupt) => t.close(abrupt ? 'ECONNRESET' : undefined),
    },
    dispose: () => t.destroy(),
  };
});

interface WsPair extends Pair {
  transport: WsTransport;
  client: WebSocket;
  closeCode(): number | null;
}

/** A uWS server with one route wired to WsTransport as src/http/sdk-socket.ts wires it, and a `ws` client. */
async function wsPair(): Promise<WsPair> {
  const app = uWS.App();
  let opened!: (t: WsTransport) => void;
  const transport = new Promise<WsTransport>((resolve) => (opened = resolve));
  app.ws<{ t: WsTransport | null }>('/sdk', {
    // Above the 16 writes of 1 MiB the backpressure test queues: this tests the transport, not the route's limit.
    maxBackpressure: 64 * 1024 * 1024,
    maxPayloadLength: 1024 * 1024,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      res.upgrade({ t: null }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      const t = new WsTransport(ws, Buffer.from(ws.getRemoteAddressAsText()).toString());
      ws.getUserData().t = t;
      opened(t);
    },
    message: (ws, message, isBinary) => ws.getUserData().t?.message(message, isBinary),
    close: (ws, code) => ws.getUserData().t?.peerClosed(code),
  });
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (ls) => (ls ? resolve(ls) : reject(new Error('cannot listen')))));
  const client = new WebSocket(`ws://127.0.0.1:${uWS.us_socket_local_port(listenSocket)}/sdk`);
  client.on('error', () => undefined);
  let received = '';
  let code: number | null = null;
  client.on('message', (data) => (received += String(data)));
  client.on('close', (c) => (code = c));
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  const t = await transport;
  return {
    transport: t,
    client,
    closeCode: () => code,
    address: /^127\.0\.0\.1$/,
    framing: 'messages',
    peer: {
      send: (text) => client.send(text),
      received: () => received,
      stall: () => client.pause(),
      resume: () => client.resume(),
      close: (abrupt) => (abrupt ? client.terminate() : client.close(1000)),
    },
    dispose: async () => {
      client.terminate();
      if (!t.isClosed) t.destroy();
      uWS.us_listen_socket_close(listenSocket);
      await eventually(() => expect(t.isClosed).to.equal(true));
    },
  };
}

lineTransportContract('WsTransport (uWebSockets.js)', wsPair);

describe('WsTransport: what a message-based transport adds', () => {
  let pair: WsPair;
  let data: string[];
  let closed: string[];
  const listen = (t: LineTransport): void => t.listen({ data: (c) => data.push(c.toString('utf8')), closed: (r) => closed.push(r) });
  beforeEach(async () => {
    pair = await wsPair();
    data = [];
    closed = [];
  });
  afterEach(() => pair.dispose());

  it('ends the last line of a message that has no newline, so a line never spans two messages', async () => {
    listen(pair.transport);
    pair.peer.send('v:AAAA');
    pair.peer.send('AAAAAAAA\ni:x\n');
    pair.peer.send('l:a\nl:b');
    await eventually(() => expect(data).to.deep.equal(['v:AAAA\n', 'AAAAAAAA\ni:x\n', 'l:a\nl:b\n']));
  });

  it('passes nothing for an empty message', async () => {
    listen(pair.transport);
    pair.peer.send('');
    pair.peer.send('OK');
    await eventually(() => expect(data).to.deep.equal(['OK\n']));
  });

  it('copies each message: the bytes stay valid after uWS reuses its buffer', async () => {
    const chunks: Buffer[] = [];
    pair.transport.listen({ data: (c) => chunks.push(c), closed: () => undefined });
    for (let i = 0; i < 50; i++) pair.peer.send(`i:${String(i).padStart(3, '0')}`);
    await eventually(() => expect(chunks).to.have.length(50));
    expect(chunks.map((c) => c.toString('utf8'))).to.deep.equal(Array.from({ length: 50 }, (_, i) => `i:${String(i).padStart(3, '0')}\n`));
  });

  it('sends each write as one text message', async () => {
    const messages: string[] = [];
    pair.client.on('message', (m, isBinary) => messages.push(`${isBinary ? 'binary' : 'text'}:${String(m)}`));
    listen(pair.transport);
    pair.transport.write('OK\n');
    pair.transport.cork();
    pair.transport.write('v:a\n');
    pair.transport.write('e:x:y\nv:b\n');
    pair.transport.uncork();
    await eventually(() => expect(messages).to.deep.equal(['text:OK\n', 'text:v:a\n', 'text:e:x:y\nv:b\n']));
  });

  it('closes on a binary message with 1003 and passes none of it', async () => {
    listen(pair.transport);
    pair.peer.send('v:before\n');
    pair.client.send(Buffer.from('v:AAAAAAAAAAAA\n'), { binary: true });
    await eventually(() => expect(pair.closeCode()).to.equal(1003));
    expect(data).to.deep.equal(['v:before\n']);
    expect(closed).to.have.length(1);
    expect(closed[0]).to.match(/binary/);
  });

  it('closes with the code it is given (shutdown: 1001), after what was written', async () => {
    listen(pair.transport);
    pair.transport.cork();
    pair.transport.write('v:last\n');
    pair.transport.endWith(1001, 'server shutting down');
    await eventually(() => expect(pair.closeCode()).to.equal(1001));
    expect(pair.peer.received()).to.equal('v:last\n');
    expect(closed).to.deep.equal(['server shutting down']);
    // Writes and ends after the close are no-ops, not uWS's "invalid access of closed WebSocket".
    expect(pair.transport.write('late\n')).to.equal(false);
    pair.transport.uncork();
    pair.transport.end();
    pair.transport.destroy();
    expect(pair.transport.buffered).to.equal(0);
  });
});
