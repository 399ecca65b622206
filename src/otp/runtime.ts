/**
 * The runtime: one nact system with one root supervisor, plus what operators need — the tree as
 * JSON, kill by path, graceful stop. When the root supervisor itself gives up, `onRootFailure` is
 * called (the application decides to exit), as an OTP application whose top supervisor dies.
 */
import { EventEmitter } from 'node:events';
import { formatReason, type Cell, type ParentCell, type RuntimeCore } from './cell.js';
import { normalizeSpec, type ChildSpec } from './child-spec.js';
import { DynamicSupervisorCell } from './dynamic-supervisor.js';
import { registerCellKind } from './make-cell.js';
import { startSystem, stopActor, type NactRef } from './nact.js';
import { SupervisorBase, SupervisorCell } from './supervisor.js';
import type { ActorRef, OtpLogger, OtpTimers, TreeNode, TreeOptions } from './types.js';
import { Killed, WorkerCell } from './worker-cell.js';

registerCellKind('worker', (spec, parent) => new WorkerCell(spec, parent));
registerCellKind('supervisor', (spec, parent) => new SupervisorCell(spec, parent));
registerCellKind('dynamic', (spec, parent) => new DynamicSupervisorCell(spec, parent));

export interface RuntimeOptions {
  logger: OtpLogger;
  /** Called once if the root supervisor exceeds its restart intensity. */
  onRootFailure?: (reason: string) => void;
  now?: () => number;
  /** What restart delays wait with (default: the global timers); a fake clock's in tests. */
  timers?: OtpTimers;
  /** Jitter source in [0, 1) for restart delays (default Math.random). */
  random?: () => number;
}

const globalTimers: OtpTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class NoSuchActor extends Error {
  override name = 'NoSuchActor';
}

let systems = 0;

export class Runtime implements ParentCell, RuntimeCore {
  readonly path = '';
  readonly events = new EventEmitter();
  readonly logger: OtpLogger;
  readonly now: () => number;
  readonly timers: OtpTimers;
  readonly random: () => number;
  readonly nactRef: NactRef;
  private rootCell: Cell | undefined;
  private failed = false;

  private constructor(private readonly opts: RuntimeOptions) {
    this.logger = opts.logger;
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? globalTimers;
    this.random = opts.random ?? Math.random;
    this.nactRef = startSystem(`otp-${process.pid}-${++systems}`);
    this.events.setMaxListeners(100);
  }

  get rt(): RuntimeCore {
    return this;
  }

  /** Starts the tree; rejects (with everything already started stopped again) if any child fails to start. */
  static async start(root: ChildSpec, opts: RuntimeOptions): Promise<Runtime> {
    const rt = new Runtime(opts);
    const cell = new (root.start.kind === 'dynamic' ? DynamicSupervisorCell : root.start.kind === 'supervisor' ? SupervisorCell : WorkerCell)(
      normalizeSpec(root, 'root'),
      rt,
    );
    rt.rootCell = cell;
    cell.spec.handle?.attach(cell);
    try {
      await cell.start();
    } catch (err) {
      stopActor(rt.nactRef);
      throw err;
    }
    return rt;
  }

  get root(): Cell {
    if (!this.rootCell) throw new Error('runtime not started');
    return this.rootCell;
  }

  async childCrashed(child: Cell, reason: unknown): Promise<void> {
    if (this.failed || child.status === 'stopped') return;
    this.failed = true;
    const why = formatReason(reason);
    child.lastCrash = { reason: why, at: this.now() };
    this.logger.error({ errorContext: 'application_terminated', offender: child.path, reason: why }, `root ${child.path} failed: ${why}`);
    this.events.emit('root_failure', { path: child.path, reason: why });
    await child.stop(why);
    this.opts.onRootFailure?.(why);
  }

  async childExited(child: Cell, reason: string): Promise<void> {
    await child.stop(reason);
  }

  /** The cell at `path` ('/observerio/tcp/...'), or undefined. */
  find(path: string): Cell | undefined {
    const parts = path.split('/').filter(Boolean);
    let cell: Cell | undefined = this.rootCell;
    if (!cell || parts[0] !== cell.name) return undefined;
    for (const name of parts.slice(1)) {
      if (!(cell instanceof SupervisorBase)) return undefined;
      cell = cell.childByName(name);
      if (!cell) return undefined;
    }
    return cell;
  }

  /** The dynamic supervisor at `path`; throws when there is none. */
  dynamicSupervisor(path: string): DynamicSupervisorCell {
    const cell = this.find(path);
    if (!(cell instanceof DynamicSupervisorCell)) throw new NoSuchActor(`no dynamic supervisor at ${path}`);
    return cell;
  }

  /** The worker's ref at `path`, or undefined. */
  whereis<M>(path: string): ActorRef<M> | undefined {
    const cell = this.find(path);
    return cell instanceof WorkerCell && cell.status !== 'stopped' ? (cell.ref as ActorRef<M>) : undefined;
  }

  /** The tree from the root, or from `opts.expand` when given (with its children paged). */
  tree(opts: TreeOptions = {}): TreeNode {
    const start = opts.expand ? this.find(opts.expand) : this.root;
    if (!start) throw new NoSuchActor(`no actor at ${opts.expand}`);
    return start.node(opts, 0);
  }

  /**
   * Crashes the actor at `path` as if it had thrown, so its supervisor applies its strategy; resolves
   * once the supervisor has acted, after any restart delay (backoff). An actor already waiting out a
   * restart delay runs nothing, so the kill changes nothing then. The root cannot be killed (that is
   * stopping the daemon).
   */
  async kill(path: string, reason = 'killed by operator'): Promise<Cell> {
    const cell = this.find(path);
    if (!cell) throw new NoSuchActor(`no actor at ${path}`);
    if (cell === this.rootCell) throw new Error('the root supervisor cannot be killed; stop the daemon instead');
    if (cell.status === 'stopped') throw new NoSuchActor(`${path} is stopped`);
    const err = new Killed(reason);
    if (cell instanceof WorkerCell) await cell.kill(err);
    else await cell.parent.childCrashed(cell, err);
    return cell;
  }

  /** Stops every actor, last started first, each within its shutdown time. */
  async stop(): Promise<void> {
    if (this.rootCell) await this.rootCell.stop('shutdown');
    stopActor(this.nactRef);
  }
}
