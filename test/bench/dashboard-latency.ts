/**
 * Dashboard latency, end to end over real sockets (not part of `make test`): a device's `i:` line to
 * the WebSocket `vars` event, and a REST `PUT /api/vars/:name` (and a WebSocket `set_var`) to the
 * device's `v:` line. One change at a time, median and p99 over N changes, on embedded backends and
 * on Redis. The daemon runs as its own process (`observerio serve` from source), as in production.
 *
 *   node --import tsx test/bench/dashboard-latency.ts [N=1000]
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { signedInUser } from '../helpers/api.js';
import type { Daemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/free-port.js';
import { sharedRedis, stopSharedServers, tempDir } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { WsClient } from '../helpers/ws-client.js';

const N = Number(process.argv[2] ?? 1000);
const WARMUP = 100;

function stats(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  return `median ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms, max ${at(1 - 1e-9).toFixed(2)} ms (n=${s.length})`;
}

// node:http with keep-alive rather than fetch: undici's per-request cost would dominate the client side.
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function put(port: number, token: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/api/vars/speed', method: 'PUT', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT answered ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves with the time the socket's line number `i` arrived. */
function lineArrival(c: LineClient, i: number): Promise<number> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (c.lines.length > i) {
        c.socket.off('data', check);
        resolve(performance.now());
      }
    };
    c.socket.on('data', check);
    check();
  });
}

/** `observerio serve` in a child process on free ports; only the fields the helpers use are real. */
async function spawnDaemon(redisUrl: string | null): Promise<{ daemon: Daemon; stop(): Promise<void> }> {
  const [tcpPort, httpPort] = [await freePort(), await freePort()];
  const dir = tempDir('observerio-bench-');
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--tcp-port', String(tcpPort), '--http-port', String(httpPort), '--log-level', 'warn', '--data-dir', dir.path];
  if (redisUrl) args.push('--redis-url', redisUrl);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } });
  const http = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; ; i++) {
    if ((await fetch(`${http}/healthz`).catch(() => null))?.ok) break;
    if (i > 200 || child.exitCode !== null) throw new Error('daemon did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const daemon = {
    http,
    httpPort,
    tcpPort,
    async register(email: string, password: string) {
      const res = await fetch(`${http}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
      return ((await res.json()) as { apiKey: string }).apiKey;
    },
  } as unknown as Daemon;
  return {
    daemon,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      dir.remove();
    },
  };
}

async function run(mode: 'embedded' | 'redis'): Promise<void> {
  const { daemon, stop } = await spawnDaemon(mode === 'redis' ? (await sharedRedis()).url : null);
  try {
    const user = await signedInUser(daemon);
    const live = await WsClient.open(daemon.httpPort, user.token);
    const dev = await LineClient.open(daemon.tcpPort);
    dev.line(`v:${user.apiKey}:bench`);
    await dev.waitLines(1);

    // i: line → WebSocket vars event.
    const iToWs: number[] = [];
    for (let k = 0; k < WARMUP + N; k++) {
      const value = String(k);
      const seen = new Promise<number>((resolve) => {
        const onMessage = (data: unknown): void => {
          const f = JSON.parse(String(data)) as { type?: string; deviceId?: string; vars?: Array<{ value: string }> };
          if (f.type === 'vars' && f.deviceId === 'bench' && f.vars?.[0]?.value === value) {
            live.ws.off('message', onMessage);
            resolve(performance.now());
          }
        };
        live.ws.on('message', onMessage);
      });
      const t0 = performance.now();
      dev.line(`i:${user.apiKey}:${b64([{ name: 'speed', type: 'integer', value }])}`);
      const t1 = await seen;
      if (k >= WARMUP) iToWs.push(t1 - t0);
    }
    live.frames.length = 0;

    // PUT → v: line on the device.
    const putToV: number[] = [];
    for (let k = 0; k < WARMUP + N; k++) {
      const arrived = lineArrival(dev, dev.lines.length);
      const t0 = performance.now();
      const res = put(daemon.httpPort, user.token, JSON.stringify({ value: k }));
      const t1 = await arrived;
      await res;
      if (k >= WARMUP) putToV.push(t1 - t0);
    }

    // WebSocket set_var → v: line on the device.
    const wsToV: number[] = [];
    for (let k = 0; k < WARMUP + N; k++) {
      const arrived = lineArrival(dev, dev.lines.length);
      const t0 = performance.now();
      live.send({ type: 'set_var', name: 'speed', value: k });
      const t1 = await arrived;
      if (k >= WARMUP) wsToV.push(t1 - t0);
    }
    // Let the last answers drain before closing.
    await live.waitFor((f) => f.type === 'var_delivery' && (f.var as { value?: string } | undefined)?.value === String(WARMUP + N - 1));

    console.log(`[${mode}] i: line → WS vars event:     ${stats(iToWs)}`);
    console.log(`[${mode}] PUT /api/vars → v: line:     ${stats(putToV)}`);
    console.log(`[${mode}] WS set_var → v: line:        ${stats(wsToV)}`);
    live.close();
    dev.close();
  } finally {
    await stop();
  }
}

await run('embedded');
await run('redis');
await stopSharedServers();
