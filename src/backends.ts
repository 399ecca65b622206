/**
 * The backend workers of the tree (store, pubsub, logs). Each worker owns one backend's resources:
 * its `init` opens them (`backend.start()`: connections, subscriptions, timers) and its `terminate`
 * closes them (`backend.stop()`), on every incarnation, so killing `/observerio/store` really makes a
 * fresh connection, as a Phoenix.PubSub adapter restarted by its supervisor does. It also probes the
 * backend's health and crashes after repeated failures, so the supervisor's intensity applies.
 *
 * The rest of the daemon holds the backend through its handle, one stable object made here: while
 * the worker is between incarnations, calls on the handle wait for the next `init` (at most
 * `waitMs`, then they fail with `unavailable`) instead of reaching a closed connection. The backend
 * object itself keeps what is not a resource (a memory store's data, pubsub subscriptions), so a
 * restart loses none of it.
 */
import { ObserverioError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { BackendHealth } from './model.js';
import { worker, type ChildSpec } from './otp/index.js';

export interface Backend {
  readonly kind: string;
  /** Opens the backend's resources; called by every incarnation of its worker. */
  start(): Promise<void>;
  /** Closes them; the object keeps its data and may be started again. */
  stop(): Promise<void>;
  health(): Promise<BackendHealth>;
}

export interface BackendWorkerOptions {
  metrics: Metrics;
  probeMs: number;
  /** Consecutive failed probes before the worker crashes. */
  maxFailures?: number;
  /**
   * Runs in terminate while the handle still passes calls through, before the backend closes (e.g.
   * flush the log batcher); `restarting` says whether a fresh incarnation follows.
   */
  beforeStop?: (reason: string, restarting: boolean) => Promise<void>;
  info?: () => Record<string, unknown>;
  /** How long a call on the handle waits for a restarting backend (default 5000 ms). */
  waitMs?: number;
}

export interface BackendChild<B extends Backend> {
  spec: ChildSpec;
  /** What the rest of the daemon holds: the backend, with calls held while its worker restarts. */
  handle: B;
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

/**
 * Open while an incarnation runs; closed between incarnations (calls wait); shut after the final
 * stop (calls go through and the stopped backend refuses them with its own error).
 */
export class BackendGate {
  private state: 'closed' | 'open' | 'shut' = 'closed';
  private opened: Promise<void>;
  private release: () => void = () => undefined;
  private held = 0;

  constructor(
    private readonly name: string,
    private readonly waitMs: number,
  ) {
    this.opened = this.fresh();
  }

  private fresh(): Promise<void> {
    return new Promise<void>((resolve) => (this.release = resolve));
  }

  get isOpen(): boolean {
    return this.state !== 'closed';
  }

  /** Calls waiting for the next incarnation right now. */
  get waiting(): number {
    return this.held;
  }

  open(): void {
    this.state = 'open';
    this.release();
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.opened = this.fresh();
  }

  shut(): void {
    this.state = 'shut';
    this.release();
  }

  /** Resolves when the gate opens (or shuts); rejects with `unavailable` after waitMs. */
  wait(): Promise<void> {
    if (this.state !== 'closed') return Promise.resolve();
    this.held += 1;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ObserverioError('unavailable', `the ${this.name} backend is restarting; try again`)), this.waitMs);
    });
    return Promise.race([this.opened, timeout]).finally(() => {
      clearTimeout(timer);
      this.held -= 1;
    });
  }
}

/** Answered at once, never held: the worker's own lifecycle calls, and health (readiness must not wait). */
const UNGATED = new Set<PropertyKey>(['start', 'stop', 'health', 'constructor']);

/**
 * The backend with every method call held by the gate while it is closed. Calls made while it is
 * open go straight through (no extra await on the hot path); held calls run in the order they came.
 */
export function gated<B extends Backend>(backend: B, gate: BackendGate): B {
  // Each method's wrapper, made once per function: a method replaced on the backend (a test's stub)
  // is wrapped afresh, not answered by the old one's wrapper.
  const wrapped = new Map<PropertyKey, { fn: unknown; w: unknown }>();
  return new Proxy(backend, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let e = wrapped.get(prop);
      if (e === undefined || e.fn !== value) {
        const fn = value as (...args: unknown[]) => unknown;
        e = {
          fn,
          w: UNGATED.has(prop)
            ? fn.bind(target)
            : (...args: unknown[]): unknown => (gate.isOpen ? fn.apply(target, args) : gate.wait().then(() => fn.apply(target, args))),
        };
        wrapped.set(prop, e);
      }
      return e.w;
    },
  });
}

export function backendChild<B extends Backend>(id: string, backend: B, board: HealthBoard, opts: BackendWorkerOptions): BackendChild<B> {
  const maxFailures = opts.maxFailures ?? 3;
  const gate = new BackendGate(id, opts.waitMs ?? 5000);
  let incarnations = 0;
  const probe = async (): Promise<BackendHealth> => {
    const h = await backend.health().catch((err: unknown): BackendHealth => ({ ok: false, kind: backend.kind, detail: err instanceof Error ? err.message : String(err) }));
    board.set(id, h);
    opts.metrics.backendUp.set({ backend: id, kind: backend.kind }, h.ok ? 1 : 0);
    return h;
  };
  const spec: ChildSpec = {
    id,
    shutdown: 10_000,
    start: worker<State, Msg>({
      async init(ctx) {
        try {
          await backend.start();
        } catch (err) {
          // The first start fails the daemon's start: a wrong URL is reported at boot. A restart that
          // cannot reach the backend must not crash again at once, or an outage would use up the
          // supervisor's intensity in milliseconds and stop the daemon; it runs degraded instead, and
          // its probes crash it again (another start) after maxFailures.
          if (incarnations === 0) throw err;
          ctx.log.warn({ err }, `${id} backend did not start again; running degraded until a restart succeeds`);
        }
        incarnations += 1;
        gate.open();
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
      async terminate(state, reason, restarting) {
        clearInterval(state.timer);
        try {
          await opts.beforeStop?.(reason, restarting);
        } finally {
          // From here on the old resources are going away: new calls wait for the next incarnation,
          // or, at shutdown, reach the stopped backend and get its error.
          if (restarting) gate.close();
          else gate.shut();
          await backend.stop();
        }
      },
      info(state) {
        return {
          kind: backend.kind,
          ok: state.last?.ok ?? null,
          detail: state.last?.detail ?? null,
          failures: state.failures,
          incarnations,
          ...opts.info?.(),
        };
      },
    }),
  };
  return { spec, handle: gated(backend, gate) };
}
