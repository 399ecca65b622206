/**
 * Baseline for the ingest scenario: what a developer would write without observerio's batching —
 * a plain `net` server speaking the same protocol, one `HSET` per `i:` line through ioredis, into the
 * same `<apiKey>:vs` hash. It checks keys like the daemon (`observerio:apikey:<key>` in the same
 * Redis) and pauses a socket while too many of its writes are in flight, so memory stays bounded.
 */
import { createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { runWorker } from '../lib/worker.js';

interface Config {
  redisUrl: string;
}

const MAX_IN_FLIGHT = 10_000;

runWorker<Config, { lines: number }>(async (cfg, ctl) => {
  const redis = new Redis(cfg.redisUrl);
  let lines = 0;
  const server = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    let buf = '';
    let apiKey: string | null = null;
    let inFlight = 0;
    let paused = false;
    const done = (): void => {
      inFlight -= 1;
      if (paused && inFlight < MAX_IN_FLIGHT / 2) {
        paused = false;
        socket.resume();
      }
    };
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      let start = 0;
      while ((nl = buf.indexOf('\n', start)) >= 0) {
        const line = buf.slice(start, nl).trim();
        start = nl + 1;
        if (line.startsWith('v:')) {
          const key = line.slice(2, 14);
          void redis.exists(`observerio:apikey:${key}`).then((n) => {
            if (n === 1) apiKey = key;
            socket.write(n === 1 ? 'OK\n' : 'e:unknown_api_key:API key is not registered\n');
          });
        } else if (line.startsWith('i:') && apiKey !== null) {
          const key = line.slice(2, 14);
          let vars: Array<{ name: string; type: string; value: unknown }>;
          try {
            vars = JSON.parse(Buffer.from(line.slice(15), 'base64').toString('utf8')) as typeof vars;
          } catch {
            socket.write('e:bad_json:payload is not valid JSON\n');
            continue;
          }
          lines += 1;
          const args: string[] = [];
          for (const v of vars) args.push(`${v.name}:type`, v.type, `${v.name}:value`, String(v.value));
          inFlight += 1;
          redis.hset(`${key}:vs`, ...args).then(done, done);
        }
      }
      buf = buf.slice(start);
      if (inFlight >= MAX_IN_FLIGHT && !paused) {
        paused = true;
        socket.pause();
      }
    });
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
  const addr = server.address();
  await ctl.ready({ port: typeof addr === 'object' && addr ? addr.port : 0 });
  await ctl.stopped;
  server.close();
  redis.disconnect();
  return { lines };
});
