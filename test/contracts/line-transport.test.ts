/**
 * Runs the LineTransport contract against NetTransport (a real loopback TCP connection, the device
 * being a plain net client) and against the in-memory transport of the connection's unit tests.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { NetTransport } from '../../src/tcp/net-transport.js';
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
