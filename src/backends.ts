/**
 * The backend workers of the tree (store, pubsub, logs): each owns one backend's lifecycle — start
 * once, stop at shutdown — and probes its health, crashing after repeated failures so the tree shows
 * the trouble and the supervisor's restart intensity applies. Restarts never re-run start(): the
 * backend object is shared with the rest of the daemon and keeps its data.
 */
import type { Metrics } from './metrics.js';
import type { BackendHealth } from './model.js';
import { worker, type ChildSpec } from './otp/index.js';

export interface Backend {
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): Promise<BackendHealth>;
}

export interface BackendWorkerOptions {
  metrics: Metrics;
  probeMs: number;
  /** Consecutive failed probes before the worker crashes. */
  maxFailures?: number;
  /** Runs before stop() at shutdown and on restart (e.g. flush the log batcher). */
  beforeStop?: (reason: string) => Promise<void>;
  info?: () => Record<string, unknown>;
}

type Msg = { kind: 'probe' };

interface State {
  timer: NodeJS.Timeout;
  failures: number;
  last: BackendHealth | null;
}

/** The last health seen for each backend, read by /healthz and /readyz without waiting on a probe. */
export class HealthBoard {
  private readonly last = new Map<string, BackendHealth & { at: number }>();
  set(name: string, h: BackendHealth): void {
    this.last.set(name, { ...h, at: Date.now() });
  }
  get(name: string): (BackendHealth & { at: number }) | undefined {
    return this.last.get(name);
  }
  all(): Record<string, BackendHealth & { at: number }> {
    return Object.fromEntries(this.last);
  }
}

export function backendChildSpec(id: string, backend: Backend, board: HealthBoard, opts: BackendWorkerOptions): ChildSpec {
  let started = false;
  const maxFailures = opts.maxFailures ?? 3;
  const probe = async (): Promise<BackendHealth> => {
    const h = await backend.health().catch((err: unknown): BackendHealth => ({ ok: false, kind: backend.kind, detail: err instanceof Error ? err.message : String(err) }));
    board.set(id, h);
    opts.metrics.backendUp.set({ backend: id, kind: backend.kind }, h.ok ? 1 : 0);
    return h;
  };
  return {
    id,
    shutdown: 10_000,
    start: worker<State, Msg>({
      async init(ctx) {
        if (!started) {
          await backend.start();
          started = true;
        }
        const last = await probe();
        const timer = setInterval(() => ctx.self.send({ kind: 'probe' }), opts.probeMs);
        timer.unref();
        return { timer, failures: 0, last };
      },
      async handle(state) {
        state.last = await probe();
        state.failures = state.last.ok ? 0 : state.failures + 1;
        if (state.failures >= maxFailures) throw new Error(`${id} backend (${backend.kind}) unhealthy ${state.failures} times: ${state.last.detail ?? 'no detail'}`);
      },
      async terminate(state, reason) {
        clearInterval(state.timer);
        await opts.beforeStop?.(reason);
        if (reason === 'shutdown') {
          await backend.stop();
          started = false;
        }
      },
      info(state) {
        return { kind: backend.kind, ok: state.last?.ok ?? null, detail: state.last?.detail ?? null, failures: state.failures, ...opts.info?.() };
      },
    }),
  };
}
