/**
 * A worker: one nact actor running a behaviour. A restart is in place: the old state is terminated
 * and `init` builds a fresh one while the mailbox (the messages queued after the crashing one) is
 * kept, and the ActorRef stays valid. A crash reaches the supervisor through nact's onCrash hook.
 */
import { Cell, formatReason, type ParentCell } from './cell.js';
import type { NormalizedSpec, WorkerDef } from './child-spec.js';
import { Deferred, isPromiseLike, withTimeout } from './deferred.js';
import { dispatch, spawnLeaf, stopActor, type NactCrashContext, type NactRef } from './nact.js';
import type { ActorContext, ActorRef, Behaviour, OtpLogger, TreeNode } from './types.js';

/** Thrown into an actor by kill(): a crash like any other. */
export class Killed extends Error {
  override name = 'Killed';
}

export class CallTimeout extends Error {
  override name = 'CallTimeout';
}

export class WorkerCell extends Cell {
  private nact: NactRef | undefined;
  private state: unknown;
  /** Bumped at every incarnation change: results and crashes of an older one are ignored. */
  private incarnation = 0;
  private handlingIncarnation = -1;
  private pending = 0;
  /** Holds messages while the behaviour (re)initialises. */
  private gate: Deferred | null = null;
  /** Callbacks for the end of this incarnation: an array (a connection actor has two), made at the first. */
  private monitors: Array<(reason: string) => void> | null = null;
  /** Callbacks for the actor's stop for good (monitorStop), which restarts leave in place. */
  private stopMonitors: Array<(reason: string) => void> | null = null;
  private readonly behaviour: Behaviour<unknown, unknown>;
  readonly ref: ActorRef<unknown>;
  readonly ctx: ActorContext<unknown>;
  messagesHandled = 0;

  constructor(spec: NormalizedSpec, parent: ParentCell) {
    super(spec, parent);
    this.behaviour = (spec.start as WorkerDef).behaviour;
    // Objects with prototype methods rather than closures: a node holds one worker per connection.
    this.ref = new WorkerRef(this);
    this.ctx = new WorkerContext(this);
  }

  async start(): Promise<void> {
    await this.begin();
  }

  /**
   * start() without a promise when `init` is synchronous: a dynamic supervisor starts one worker per
   * connection, and two async frames and their promises per start were garbage of every connect.
   */
  begin(): Promise<void> | void {
    // The nact state is the cell itself and the message function is shared by every worker, so a
    // worker costs nact no closure of its own but the crash hook (which must know its cell).
    this.nact = spawnLeaf(this.parent.nactRef, deliverToCell, this.name, {
      initialState: this,
      onCrash: (_msg, err, ctx) => this.onCrash(err, ctx),
      afterStop: noop,
    });
    return this.init();
  }

  private init(): Promise<void> | void {
    this.gate ??= new Deferred();
    const inc = ++this.incarnation;
    const done = (state: unknown): void => {
      if (inc !== this.incarnation || this.status === 'stopped') return;
      this.state = state;
      this.status = 'running';
      this.startedAt = this.rt.now();
      this.gate?.resolve();
      this.gate = null;
    };
    const result = this.behaviour.init(this.ctx);
    if (isPromiseLike(result)) return Promise.resolve(result).then(done);
    done(result);
  }

  /** nact's message function for this worker (deliverToCell). */
  onMessage(msg: unknown): this | Promise<this> {
    this.pending -= 1;
    if (this.gate) return this.gate.promise.then(() => this.deliver(msg));
    return this.deliver(msg);
  }

  /** Handles one message; returns the cell (or a promise of it), which is nact's state for every worker. */
  private deliver(msg: unknown): this | Promise<this> {
    if (this.status === 'stopped') return this;
    const inc = this.incarnation;
    this.handlingIncarnation = inc;
    this.messagesHandled += 1;
    const handle = this.behaviour.handle;
    if (!handle) return this;
    const next = handle.call(this.behaviour, this.state, msg, this.ctx);
    if (isPromiseLike(next)) {
      return Promise.resolve(next).then((s) => {
        if (s !== undefined && inc === this.incarnation) this.state = s;
        return this;
      });
    }
    if (next !== undefined) this.state = next;
    return this;
  }

  /** nact's per-crash decision: our supervisor applies its strategy, then the mailbox goes on. */
  private async onCrash(err: unknown, ctx: NactCrashContext): Promise<symbol> {
    if (this.status !== 'stopped' && this.handlingIncarnation === this.incarnation) {
      await this.parent.childCrashed(this, err);
    }
    // A restart happened in place (fresh state, same mailbox) or the actor was stopped; either way
    // nact only has to move on to the next message, which is a no-op once stopped.
    return ctx.resume;
  }

  /** Crashes this worker as if its handler had threw `reason`, without waiting for its mailbox. */
  async kill(reason: Error): Promise<void> {
    await this.parent.childCrashed(this, reason);
  }

  async terminateForRestart(reason: string): Promise<void> {
    if (this.status === 'stopped') return;
    const wasRunning = this.status === 'running';
    this.status = 'restarting';
    this.gate ??= new Deferred();
    const old = this.state;
    this.incarnation += 1;
    this.fireMonitors(reason);
    // After a failed (re)start there is no state to clean up.
    if (wasRunning) await this.terminate(old, reason, true);
  }

  async reinit(): Promise<void> {
    if (this.status === 'stopped') return;
    await this.init();
  }

  async stop(reason: string): Promise<void> {
    if (this.status === 'stopped') return;
    this.endRestartWait();
    if (reason === 'shutdown' && this.status === 'running') await this.drain(this.spec.shutdown);
    const old = this.state;
    const wasRunning = this.status === 'running';
    this.status = 'stopped';
    this.incarnation += 1;
    this.fireMonitors(reason);
    this.fireStopMonitors(reason);
    if (this.nact) stopActor(this.nact);
    this.pending = 0;
    this.gate?.resolve();
    this.gate = null;
    if (wasRunning) await this.terminate(old, reason, false);
    this.rt.events.emit('stopped', { path: this.path, reason });
  }

  /** Waits until the mailbox is empty (graceful shutdown), at most `ms`. */
  private async drain(ms: number): Promise<void> {
    const deadline = this.rt.now() + ms;
    while (this.pending > 0 && this.rt.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  private async terminate(state: unknown, reason: string, restarting: boolean): Promise<void> {
    const terminate = this.behaviour.terminate;
    if (!terminate) return;
    try {
      const r = terminate.call(this.behaviour, state, reason, restarting);
      if (isPromiseLike(r)) {
        await withTimeout(Promise.resolve(r), this.spec.shutdown, () => new Error(`terminate took longer than ${this.spec.shutdown} ms`));
      }
    } catch (err) {
      this.log.error({ err, reason }, 'terminate failed');
    }
  }

  private fireMonitors(reason: string): void {
    const ms = this.monitors;
    if (ms === null) return;
    this.monitors = null;
    this.runMonitors(ms, reason);
  }

  private fireStopMonitors(reason: string): void {
    const ms = this.stopMonitors;
    if (ms === null) return;
    this.stopMonitors = null;
    this.runMonitors(ms, reason);
  }

  private runMonitors(ms: ReadonlyArray<(reason: string) => void>, reason: string): void {
    for (const m of ms) {
      try {
        m(reason);
      } catch (err) {
        this.log.error({ err }, 'monitor callback failed');
      }
    }
  }

  mailbox(): number {
    return this.pending;
  }

  info(): Record<string, unknown> | undefined {
    if (!this.behaviour.info || this.status === 'stopped' || this.gate) return undefined;
    try {
      return this.behaviour.info(this.state);
    } catch (err) {
      return { infoError: formatReason(err) };
    }
  }

  node(): TreeNode {
    const n = this.baseNode('worker');
    const info = this.info();
    if (info) n.info = info;
    return n;
  }

  /** ActorRef.send: queues the message unless stopped. */
  send(msg: unknown): void {
    if (this.status === 'stopped' || !this.nact) return;
    this.pending += 1;
    dispatch(this.nact, msg);
  }

  /** ActorRef.monitor: the end of this incarnation. */
  monitor(onExit: (reason: string) => void): () => void {
    return this.watch('monitors', onExit);
  }

  /** ActorRef.monitorStop: the actor's stop for good, which restarts leave in place. */
  monitorStop(onStop: (reason: string) => void): () => void {
    return this.watch('stopMonitors', onStop);
  }

  /** Adds `fn` to one of the two monitor lists; the function returned takes it out again. */
  private watch(list: 'monitors' | 'stopMonitors', fn: (reason: string) => void): () => void {
    if (this.status === 'stopped') {
      queueMicrotask(() => fn('noproc'));
      return noop;
    }
    const ms = this[list];
    // concat, not push: a pushed array grows room for 16 more (about 140 B per connection actor).
    if (ms === null) this[list] = [fn];
    else if (!ms.includes(fn)) this[list] = ms.concat(fn);
    return () => {
      const now = this[list];
      const i = now ? now.indexOf(fn) : -1;
      if (now && i >= 0) now.splice(i, 1);
    };
  }
}

const noop = (): void => undefined;

/** nact's message function of every worker: its state is the cell, and stays it. */
function deliverToCell(cell: unknown, msg: unknown): unknown {
  return (cell as WorkerCell).onMessage(msg);
}

/** A worker's ActorRef, stable across its in-place restarts. */
class WorkerRef implements ActorRef<unknown> {
  constructor(private readonly cell: WorkerCell) {}

  get path(): string {
    return this.cell.path;
  }

  get name(): string {
    return this.cell.name;
  }

  send(msg: unknown): void {
    this.cell.send(msg);
  }

  call<R>(build: (reply: (value: R) => void) => unknown, timeoutMs: number): Promise<R> {
    const { cell } = this;
    if (cell.status === 'stopped') return Promise.reject(new Error(`${cell.path} is not running`));
    const d = new Deferred<R>();
    cell.send(build((v) => d.resolve(v)));
    return withTimeout(d.promise, timeoutMs, () => new CallTimeout(`${cell.path} did not answer within ${timeoutMs} ms`));
  }

  alive(): boolean {
    return this.cell.status !== 'stopped';
  }

  monitor(onExit: (reason: string) => void): () => void {
    return this.cell.monitor(onExit);
  }

  monitorStop(onStop: (reason: string) => void): () => void {
    return this.cell.monitorStop(onStop);
  }
}

/** A worker's ActorContext, handed to every incarnation. */
class WorkerContext implements ActorContext<unknown> {
  readonly self: ActorRef<unknown>;

  constructor(private readonly cell: WorkerCell) {
    this.self = cell.ref;
  }

  get path(): string {
    return this.cell.path;
  }

  get name(): string {
    return this.cell.name;
  }

  get log(): OtpLogger {
    return this.cell.log;
  }

  stop(reason = 'normal'): void {
    const { cell } = this;
    queueMicrotask(() => void cell.parent.childExited(cell, reason));
  }
}
