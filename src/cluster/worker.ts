/**
 * One worker process of `observerio serve --workers N`: a whole daemon (startApp) on the ports the
 * primary chose, which tells the primary when it is ready, answers the primary's questions about
 * itself (its actor tree, a kill in it, its metrics), asks the primary about the other workers for the
 * admin and metrics routes, and stops gracefully
 * when the primary says so. SIGINT is left to the primary (a terminal's Ctrl-C reaches the whole
 * process group, and the primary stops every worker once).
 */
import type { Logger } from 'pino';
import type { App } from '../app.js';
import type { Config } from '../config.js';
import { killActor } from '../http/admin.js';
import { ObserverioError } from '../errors.js';
import type { TreeNode, TreeOptions } from '../otp/index.js';
import { NoSuchActor } from '../otp/index.js';
import type { KillAnswer } from '../wire.js';
import {
  ASK_TIMEOUT_MS,
  isMessage,
  TAG,
  type Answer,
  type Failure,
  type LocalAnswers,
  type LocalQuestion,
  type Question,
  type ToPrimary,
  type ToWorker,
  type WorkerDirectory,
  type WorkerMetrics,
  type WorkerRole,
  type WorkersAnswer,
} from './protocol.js';

interface Waiting {
  resolve(a: Answer): void;
  timer: NodeJS.Timeout;
}

/** The worker's end of the channel; the admin routes reach the other workers through it. */
export class WorkerLink implements WorkerDirectory {
  private nextRid = 1;
  private readonly waiting = new Map<number, Waiting>();
  private local: LocalAnswers | null = null;

  constructor(
    private readonly role: WorkerRole,
    private readonly send: (m: ToPrimary) => void,
  ) {}

  get self(): number {
    return this.role.id;
  }

  get count(): number {
    return this.role.count;
  }

  /** Set once the app runs; until then questions about this worker answer unavailable. */
  serve(local: LocalAnswers): void {
    this.local = local;
  }

  async workers(): Promise<WorkersAnswer> {
    return (await this.ask({ what: 'workers' })) as WorkersAnswer;
  }

  async tree(id: number, opts: TreeOptions): Promise<TreeNode> {
    return (await this.on(id, { what: 'tree', opts })) as TreeNode;
  }

  async kill(id: number, path: string, reason: string | null): Promise<KillAnswer> {
    return (await this.on(id, { what: 'kill', path, reason })) as KillAnswer;
  }

  async metricsText(id: number): Promise<string> {
    return (await this.on(id, { what: 'metrics', format: 'text' })) as string;
  }

  async allMetrics(): Promise<{ metrics: WorkerMetrics[]; missing: number[] }> {
    const ids = Array.from({ length: this.role.count }, (_, i) => i + 1);
    const got = await Promise.allSettled(ids.map((id) => this.on(id, { what: 'metrics', format: 'json' })));
    const metrics: WorkerMetrics[] = [];
    const missing: number[] = [];
    got.forEach((r, i) => (r.status === 'fulfilled' ? metrics.push(r.value as WorkerMetrics) : missing.push(ids[i] as number)));
    return { metrics, missing };
  }

  /** Asks worker `id`: this one answers itself, any other is asked through the primary. */
  private async on(id: number, q: LocalQuestion): Promise<unknown> {
    if (!Number.isInteger(id) || id < 1 || id > this.role.count) throw new ObserverioError('not_found', `no worker ${id}; this daemon runs workers 1-${this.role.count}`);
    if (id === this.role.id) return this.answerLocal(q);
    return this.ask({ what: 'worker', worker: id, q });
  }

  /** Handles a message from the primary (questions and answers; `stop` is the caller's). */
  receive(m: ToWorker): void {
    if (m.t === 'answer') {
      const w = this.waiting.get(m.rid);
      if (!w) return;
      this.waiting.delete(m.rid);
      clearTimeout(w.timer);
      w.resolve(m.a);
    } else if (m.t === 'ask') {
      this.answerLocal(m.q).then(
        (value) => this.send({ tag: TAG, t: 'answer', rid: m.rid, a: { ok: true, value } }),
        (err: unknown) => this.send({ tag: TAG, t: 'answer', rid: m.rid, a: { ok: false, ...failure(err) } }),
      );
    }
  }

  private async answerLocal(q: LocalQuestion): Promise<unknown> {
    const local = this.local;
    if (!local) throw new ObserverioError('unavailable', `worker ${this.role.id} is still starting`);
    try {
      if (q.what === 'tree') return local.tree(q.opts);
      if (q.what === 'kill') return await local.kill(q.path, q.reason);
      return await local.metrics(q.format);
    } catch (err) {
      if (err instanceof NoSuchActor) throw new ObserverioError('not_found', err.message);
      throw err;
    }
  }

  private async ask(q: Question): Promise<unknown> {
    const rid = this.nextRid++;
    const a = await new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rid);
        resolve({ ok: false, code: 'unavailable', message: `no answer from the primary within ${ASK_TIMEOUT_MS} ms` });
      }, ASK_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(rid, { resolve, timer });
      try {
        this.send({ tag: TAG, t: 'ask', rid, q });
      } catch (err) {
        this.waiting.delete(rid);
        clearTimeout(timer);
        resolve({ ok: false, code: 'unavailable', message: `cannot reach the primary (${(err as Error).message})` });
      }
    });
    if (!a.ok) throw new ObserverioError(a.code, a.message);
    return a.value;
  }
}

function failure(err: unknown): Failure {
  if (err instanceof ObserverioError && (err.code === 'not_found' || err.code === 'unavailable' || err.code === 'bad_request')) return { code: err.code, message: err.message };
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}

export interface WorkerProcessOptions {
  config: Config;
  role: WorkerRole;
  logger: Logger;
  /** Starts the app; `onFatal` ends this worker with exit 1, so the primary restarts it. */
  start: (link: WorkerLink, onFatal: () => void) => Promise<App>;
}

/** Runs this process as worker `role.id`: starts the app, reports ready, stops on the primary's word. */
export async function runWorker(opts: WorkerProcessOptions): Promise<void> {
  const { config, role, logger } = opts;
  const send = (m: ToPrimary): void => {
    if (!process.send || !process.connected) throw new Error('no IPC channel to the primary');
    process.send(m);
  };
  const link = new WorkerLink(role, send);
  let app: App | null = null;
  let stopping = false;
  const stop = (why: string, code = 0): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ why }, 'worker stopping');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'worker shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    (app ? app.stop() : Promise.resolve()).then(
      () => {
        logger.info('worker stopped');
        logger.flush?.();
        process.exit(code);
      },
      (err: unknown) => {
        logger.error({ err }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('message', (m: unknown) => {
    if (!isMessage<ToWorker>(m)) return;
    if (m.t === 'stop') stop('asked by the primary');
    else link.receive(m);
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => undefined);
  app = await opts.start(link, () => stop('the root supervisor gave up', 1));
  const started = app;
  link.serve({
    tree: (o) => started.runtime.tree(o),
    kill: (path, reason) => killActor(started.runtime, path, reason, logger.child({ component: 'admin' }), 'another worker'),
    metrics: (format) => (format === 'text' ? started.ctx.metrics.render() : started.ctx.metrics.renderJson()),
  });
  logger.info({ worker: role.id, pid: process.pid, node: started.nodeId }, `worker ${role.id} serving`);
  send({ tag: TAG, t: 'ready', nodeId: started.nodeId });
}
