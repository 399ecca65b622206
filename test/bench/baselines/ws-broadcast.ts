/**
 * Baseline for the fan-out scenario: the same device protocol on a plain `net` server, and every
 * `i:` line broadcast as the same `{"type":"vars",...}` event to every WebSocket through the `ws`
 * library, the way its README broadcasts (encoded once, `send` to each open client).
 */
import { createServer, type Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { runWorker } from '../lib/worker.js';

runWorker<Record<string, never>, { events: number }>(async (_cfg, ctl) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    ws.send(JSON.stringify({ type: 'ready' }));
  });
  let events = 0;
  const broadcast = (event: unknown): void => {
    const data = Buffer.from(JSON.stringify(event));
    for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(data, { binary: false });
    events += 1;
  };
  const tcp = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    let buf = '';
    let apiKey: string | null = null;
    let deviceId: string | null = null;
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let start = 0;
      let nl: number;
      while ((nl = buf.indexOf('\n', start)) >= 0) {
        const line = buf.slice(start, nl).trim();
        start = nl + 1;
        if (line.startsWith('v:')) {
          apiKey = line.slice(2, 14);
          deviceId = line.length > 15 ? line.slice(15) : null;
          socket.write('OK\n');
        } else if (line.startsWith('i:') && apiKey !== null) {
          const vars = JSON.parse(Buffer.from(line.slice(15), 'base64').toString('utf8')) as unknown[];
          broadcast({ type: 'vars', apiKey, deviceId, vars });
        }
      }
      buf = buf.slice(start);
    });
  });
  await new Promise<void>((r) => tcp.listen({ host: '127.0.0.1', port: 0 }, r));
  const tcpAddr = tcp.address();
  const wsAddr = wss.address();
  await ctl.ready({ tcpPort: typeof tcpAddr === 'object' && tcpAddr ? tcpAddr.port : 0, wsPort: typeof wsAddr === 'object' && wsAddr ? wsAddr.port : 0 });
  await ctl.stopped;
  tcp.close();
  wss.close();
  return { events };
});
