/**
 * The daemon under test, as users run it: the built CLI (`node bin/observerio.js serve`) in its own
 * process, configured through the environment, on the bench's private Redis and Meilisearch. Its
 * output goes to a log file; `BENCH_PROFILE=1` adds `--cpu-prof` (profiles land in bench/results/tmp),
 * `BENCH_NODE_FLAGS` adds Node flags (e.g. `--trace-gc`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../helpers/free-port.js';
import { sleep } from './stats.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const PASSWORD = 'bench password 0123456789';

export interface DaemonSpec {
  redisUrl: string;
  meiliUrl: string;
  meiliMasterKey: string;
  dataDir: string;
  logFile: string;
  /** OBSERVERIO_FAULT_INJECTION_PREFIX, for the supervision scenario. */
  faultPrefix?: string;
  profileDir?: string;
  /** `serve --workers N`: N daemon processes on the same ports (Redis mode); default 1. */
  workers?: number;
  /** OBSERVERIO_ADMIN_TOKEN (off by default); with workers > 1, start() waits for every worker through /admin/workers. */
  adminToken?: string;
  extraEnv?: Record<string, string>;
}

export interface BenchUser {
  email: string;
  apiKey: string;
  token: string;
}

export class DaemonProcess {
  private exited: string | null = null;

  private constructor(
    readonly proc: ChildProcess,
    readonly tcpPort: number,
    readonly httpPort: number,
    readonly logFile: string,
    readonly adminToken: string | null = null,
  ) {
    proc.on('exit', (code, signal) => (this.exited = `exited with ${signal ?? code}`));
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  get http(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  static async start(spec: DaemonSpec): Promise<DaemonProcess> {
    const cli = join(REPO, 'bin', 'observerio.js');
    if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `make build` (make bench does) first');
    const [tcpPort, httpPort] = [await freePort(), await freePort()];
    mkdirSync(dirname(spec.logFile), { recursive: true });
    const out = openSync(spec.logFile, 'a');
    const nodeArgs: string[] = [];
    if (spec.profileDir) {
      mkdirSync(spec.profileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${spec.profileDir}`);
    }
    // BENCH_NODE_FLAGS="--trace-gc ..." passes V8/Node flags to the daemon (GC tracing, heap limits);
    // their output lands in the daemon's log, kept with BENCH_PROFILE=1.
    const extraFlags = process.env.BENCH_NODE_FLAGS?.split(/\s+/).filter((f) => f.length > 0) ?? [];
    nodeArgs.push(...extraFlags);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'production',
      OBSERVERIO_HOST: '127.0.0.1',
      OBSERVERIO_TCP_PORT: String(tcpPort),
      OBSERVERIO_HTTP_PORT: String(httpPort),
      REDIS_URL: spec.redisUrl,
      MEILI_URL: spec.meiliUrl,
      MEILI_MASTER_KEY: spec.meiliMasterKey,
      OBSERVERIO_DATA_DIR: spec.dataDir,
      // BENCH_DAEMON_LOG_LEVEL=info keeps the daemon's info lines (heap reductions, log-index retries) in its daemon.log.
      LOG_LEVEL: process.env.BENCH_DAEMON_LOG_LEVEL ?? 'warn',
      ...spec.extraEnv,
    };
    delete env.OBSERVERIO_FAULT_INJECTION_PREFIX;
    delete env.OBSERVERIO_ADMIN_TOKEN;
    if (spec.faultPrefix) env.OBSERVERIO_FAULT_INJECTION_PREFIX = spec.faultPrefix;
    if (spec.adminToken) env.OBSERVERIO_ADMIN_TOKEN = spec.adminToken;
    const serveArgs = spec.workers !== undefined && spec.workers > 1 ? ['serve', '--workers', String(spec.workers)] : ['serve'];
    const proc = spawn(process.execPath, [...nodeArgs, cli, ...serveArgs], { cwd: REPO, env, stdio: ['ignore', out, out] });
    closeSync(out);
    const d = new DaemonProcess(proc, tcpPort, httpPort, spec.logFile, spec.adminToken ?? null);
    const workers = spec.workers ?? 1;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (d.exited) throw new Error(`daemon ${d.exited} during start:\n${d.logTail()}`);
      const ok = await fetch(`${d.http}/healthz`)
        .then((r) => r.status === 200)
        .catch(() => false);
      // One healthy worker is not enough: node:cluster hands TCP connections only to workers that listen.
      if (ok && (workers <= 1 || !d.adminToken)) return d;
      if (ok && (await d.workerPids().catch(() => [])).length === workers) return d;
      if (Date.now() > deadline) {
        d.proc.kill('SIGKILL');
        throw new Error(`daemon not healthy within 30 s:\n${d.logTail()}`);
      }
      await sleep(50);
    }
  }

  logTail(chars = 3000): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-chars);
    } catch {
      return '(no log)';
    }
  }

  get alive(): boolean {
    return this.exited === null;
  }

  /** Registers a user and signs in. */
  async user(tag: string): Promise<BenchUser> {
    const email = `${tag}-${randomBytes(5).toString('hex')}@bench.example`;
    const reg = await post(`${this.http}/api/users`, { email, password: PASSWORD });
    if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
    const apiKey = (reg.body as { apiKey: string }).apiKey;
    const ses = await post(`${this.http}/api/sessions`, { email, password: PASSWORD });
    if (ses.status !== 200) throw new Error(`sign in: ${ses.status} ${JSON.stringify(ses.body)}`);
    return { email, apiKey, token: (ses.body as { token: string }).token };
  }

  async users(tag: string, n: number): Promise<BenchUser[]> {
    const out: BenchUser[] = [];
    // A few at a time: each costs two scrypt hashes in the daemon's thread pool.
    for (let i = 0; i < n; i += 4) out.push(...(await Promise.all(Array.from({ length: Math.min(4, n - i) }, (_, j) => this.user(`${tag}${i + j}`)))));
    return out;
  }

  /** Pids of the workers of `serve --workers N` that are ready (GET /admin/workers; needs adminToken). */
  async workerPids(): Promise<number[]> {
    if (!this.adminToken) throw new Error('workerPids needs the daemon started with adminToken');
    const r = await fetch(`${this.http}/admin/workers`, { headers: { authorization: `Bearer ${this.adminToken}` } });
    if (r.status !== 200) throw new Error(`GET /admin/workers: ${r.status}`);
    const body = (await r.json()) as { workers: Array<{ pid: number | null; status: string }> };
    return body.workers.filter((w) => w.status === 'ready' && w.pid !== null).map((w) => w.pid as number);
  }

  /** A value from /metrics (first sample of the named metric), or null. */
  async metric(name: string): Promise<number | null> {
    const text = await fetch(`${this.http}/metrics`).then((r) => r.text());
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  }

  /** SIGTERM and wait (graceful shutdown writes the CPU profile); SIGKILL after `ms`. */
  async stop(ms = 15_000): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await done;
    clearTimeout(t);
  }
}

async function post(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed };
}
