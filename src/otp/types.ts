/**
 * Public shapes of the OTP runtime: behaviours, child specs, references, the tree served to
 * operators. Generic: nothing here knows about the domain.
 */

/** permanent: always restarted; transient: restarted after a crash, not after a normal exit; temporary: never. */
export type Restart = 'permanent' | 'transient' | 'temporary';
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';
export type Status = 'starting' | 'running' | 'restarting' | 'stopped';

/** The subset of a pino logger the runtime uses. */
export interface OtpLogger {
  child(bindings: Record<string, unknown>): OtpLogger;
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** A handle on an actor; stays valid across in-place restarts (same mailbox), dead once stopped. */
export interface ActorRef<M> {
  readonly path: string;
  readonly name: string;
  /** Queues a message; silently dropped when the actor has stopped (like an Erlang send). */
  send(msg: M): void;
  /** Request/response for control paths, never per line: `build` gets the reply function. */
  call<R>(build: (reply: (value: R) => void) => M, timeoutMs: number): Promise<R>;
  alive(): boolean;
  /**
   * Calls `onExit` once when the current incarnation ends (crash-restart, kill or stop), like an
   * Erlang monitor on a pid. Returns a function that removes the monitor.
   */
  monitor(onExit: (reason: string) => void): () => void;
  /**
   * Calls `onStop` once when the actor stops for good (a stop, a crash past its supervisor's
   * intensity, a shutdown), not when an in-place restart ends one incarnation: the ref, the mailbox
   * and what the spec's arguments own (a connection's socket) outlive a restart, and so may what is
   * tied to them. Returns a function that removes the monitor.
   */
  monitorStop(onStop: (reason: string) => void): () => void;
}

export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly path: string;
  readonly name: string;
  readonly log: OtpLogger;
  /** Ends this actor normally (transient and temporary children are then removed). */
  stop(reason?: string): void;
}

/**
 * What a worker does. `init` builds a fresh state on every (re)start and may be async (messages
 * wait for it); `handle` returns the next state, or undefined to keep the current (mutable) one.
 */
export interface Behaviour<S, M> {
  init(ctx: ActorContext<M>): S | Promise<S>;
  handle?(state: S, msg: M, ctx: ActorContext<M>): S | void | Promise<S | void>;
  /**
   * Clean-up when this incarnation ends; `reason` is 'shutdown', 'normal', or the crash reason.
   * `restarting` is true when a fresh incarnation follows (resources held by the spec's arguments,
   * such as a socket, must then be left open for it).
   */
  terminate?(state: S, reason: string, restarting: boolean): void | Promise<void>;
  /** Domain facts shown in the tree (API key, counters, ...). Must be cheap and must not throw. */
  info?(state: S): Record<string, unknown>;
}

/**
 * Restart backoff (what OTP lacks): a child that keeps crashing waits before it is restarted. The
 * first crash after a stable run restarts at once; each following crash waits initialMs, then twice
 * as long each time (±20% jitter), at most maxMs. The child is stable again once it has run
 * resetAfterMs (default 2 × maxMs) since its latest restart without crashing. Every restart still
 * counts in the intensity window.
 */
export interface BackoffFlags {
  initialMs: number;
  maxMs: number;
  resetAfterMs?: number;
}

/** The timers the runtime waits with: injected so tests can drive restart delays with a fake clock. */
export interface OtpTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SupervisorFlags {
  strategy: Strategy;
  /** Restarts tolerated within `period` ms; one more and this supervisor fails to its parent. */
  intensity?: number;
  period?: number;
  /** Delays the restarts of a child that keeps crashing; null or absent: restarts are immediate. */
  backoff?: BackoffFlags | null;
}

export interface DynamicSupervisorFlags {
  maxChildren?: number;
  intensity?: number;
  period?: number;
  /**
   * Per-child restart budget: a child that crashes more than this within childPeriod is stopped
   * (its own fault), without counting against the supervisor. Off when undefined.
   */
  childIntensity?: number;
  childPeriod?: number;
  /** Per child: delays the restarts of a child that keeps crashing; null or absent: immediate. */
  backoff?: BackoffFlags | null;
}

export interface CrashInfo {
  reason: string;
  at: number;
}

/** One node of the supervision tree as served by /admin/tree. */
export interface TreeNode {
  name: string;
  path: string;
  kind: 'supervisor' | 'worker';
  restart: Restart;
  status: Status;
  restarts: number;
  lastCrash: CrashInfo | null;
  startedAt: number;
  mailbox: number;
  /**
   * The restart delay in force, in ms: while `restarting`, the delay being waited out; once running,
   * the delay of its latest restart until it has been stable for the backoff's resetAfterMs; 0 when none.
   */
  backoffMs: number;
  strategy?: Strategy | 'simple_one_for_one';
  intensity?: number;
  period?: number;
  /** Supervisors: their restart backoff, null when restarts are immediate. */
  backoff?: Required<BackoffFlags> | null;
  maxChildren?: number | null;
  info?: Record<string, unknown>;
  children?: TreeNode[];
  /** Supervisors: how many children in all, and how many of them are in `children`. */
  childCount?: number;
  offset?: number;
  truncated?: boolean;
  counts?: Partial<Record<Status, number>>;
}

export interface TreeOptions {
  /** Children listed per supervisor (default 50). */
  limit?: number;
  /** Path of one supervisor whose children are paged with offset/limit. */
  expand?: string;
  offset?: number;
  /** Deepest level rendered below the starting node (default unlimited). */
  depth?: number;
}
