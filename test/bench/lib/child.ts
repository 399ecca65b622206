/**
 * Load generators and baseline servers run as child processes (never in the orchestrator's event
 * loop). The orchestrator forks a script with its configuration, waits for `ready`, releases every
 * generator of a scenario at once with `go`, and collects one `result` (with the child's CPU) each.
 * Every wait has a deadline; a child that misses it is killed and the scenario fails.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export type ParentMsg = { t: 'config'; config: unknown } | { t: 'go' } | { t: 'stop' } | { t: 'cmd'; cmd: unknown };
export type ChildMsg = { t: 'ready'; info?: unknown } | { t: 'result'; result: unknown; cpuMs: number; wallMs: number } | { t: 'error'; message: string } | { t: 'event'; event: unknown };

const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface ChildResult<R> {
  result: R;
  /** CPU the child used between go and its result, as % of one core. */
  cpuPct: number;
  wallMs: number;
}

export class BenchChild<R = unknown, I = unknown> {
  readonly proc: ChildProcess;
  private readonly inbox: ChildMsg[] = [];
  private waiters: Array<() => void> = [];
  private exited: string | null = null;
  private stderr = '';
  readonly events: unknown[] = [];

  private constructor(
    readonly name: string,
    script: string,
    config: unknown,
    opts: { maxOldSpaceMb?: number; env?: NodeJS.ProcessEnv },
  ) {
    const execArgv = ['--import', 'tsx'];
    if (opts.maxOldSpaceMb) execArgv.push(`--max-old-space-size=${opts.maxOldSpaceMb}`);
    this.proc = fork(join(BENCH_DIR, script), [], { execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env: { ...process.env, ...opts.env } });
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.proc.on('message', (m: ChildMsg) => {
      if (m.t === 'event') this.events.push(m.event);
      else this.inbox.push(m);
      this.wake();
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = `exited with ${signal ?? code}`;
      this.wake();
    });
    this.proc.send({ t: 'config', config } satisfies ParentMsg);
  }

  static start<R, I = unknown>(name: string, script: string, config: unknown, opts: { maxOldSpaceMb?: number; env?: NodeJS.ProcessEnv } = {}): BenchChild<R, I> {
    return new BenchChild<R, I>(name, script, config, opts);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async next(kind: ChildMsg['t'], timeoutMs: number): Promise<ChildMsg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.t === kind || m.t === 'error');
      if (i >= 0) {
        const m = this.inbox.splice(i, 1)[0] as ChildMsg;
        if (m.t === 'error') throw new Error(`${this.name}: ${m.message}`);
        return m;
      }
      if (this.exited) throw new Error(`${this.name} ${this.exited} before sending ${kind}${this.stderr ? `:\n${this.stderr}` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        this.kill();
        throw new Error(`${this.name}: no ${kind} within ${timeoutMs} ms${this.stderr ? `:\n${this.stderr}` : ''}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async ready(timeoutMs = 60_000): Promise<I> {
    const m = await this.next('ready', timeoutMs);
    return (m as Extract<ChildMsg, { t: 'ready' }>).info as I;
  }

  go(): void {
    this.send({ t: 'go' });
  }

  stop(): void {
    this.send({ t: 'stop' });
  }

  cmd(cmd: unknown): void {
    this.send({ t: 'cmd', cmd });
  }

  private send(m: ParentMsg): void {
    if (this.proc.connected) this.proc.send(m);
  }

  async result(timeoutMs: number): Promise<ChildResult<R>> {
    const m = (await this.next('result', timeoutMs)) as Extract<ChildMsg, { t: 'result' }>;
    return { result: m.result as R, cpuPct: m.wallMs > 0 ? Math.round((m.cpuMs / m.wallMs) * 1000) / 10 : 0, wallMs: m.wallMs };
  }

  /** Waits for the child to exit, killing it after `ms`. */
  async close(ms = 5000): Promise<void> {
    if (this.exited) return;
    if (this.proc.connected) this.proc.disconnect();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.kill();
        resolve();
      }, ms);
      this.proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      if (this.exited) {
        clearTimeout(t);
        resolve();
      }
    });
  }

  kill(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}
