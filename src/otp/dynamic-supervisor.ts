/**
 * A dynamic supervisor (simple_one_for_one): no children at start, children started on demand,
 * each restarted alone. With a per-child budget (childIntensity), a child that keeps crashing is
 * stopped on its own account and the supervisor carries on — one bad connection never takes its
 * siblings down.
 */
import type { Cell, ParentCell } from './cell.js';
import { formatReason } from './cell.js';
import { normalizeSpec, type ChildSpec, type DynamicSupervisorDef, type NormalizedBackoff, type NormalizedSpec } from './child-spec.js';
import { renderChildren } from './introspect.js';
import { makeCell } from './make-cell.js';
import { stopActor } from './nact.js';
import { RestartIntensity } from './restart-intensity.js';
import { SupervisorBase } from './supervisor.js';
import type { ActorRef, TreeNode, TreeOptions } from './types.js';
import { WorkerCell } from './worker-cell.js';

export class MaxChildrenError extends Error {
  override name = 'MaxChildrenError';
}

export class DynamicSupervisorCell extends SupervisorBase {
  private readonly def: DynamicSupervisorDef;
  private readonly kids = new Map<string, Cell>();
  private readonly budgets = new Map<Cell, RestartIntensity>();
  protected readonly intensity: RestartIntensity;
  protected readonly backoffFlags: NormalizedBackoff;

  constructor(spec: NormalizedSpec, parent: ParentCell) {
    super(spec, parent);
    this.def = spec.start as DynamicSupervisorDef;
    this.backoffFlags = this.def.flags.backoff;
    this.intensity = new RestartIntensity(this.def.flags.intensity, this.def.flags.period, parent.rt.now);
  }

  async start(): Promise<void> {
    this.spawnSelf();
    this.status = 'running';
    this.startedAt = this.rt.now();
  }

  get size(): number {
    return this.kids.size;
  }

  /**
   * Starts a worker child; rejects with MaxChildrenError when full, or when its init fails. Not an
   * async function: a worker whose init is synchronous (a connection actor) is started within the
   * call, and its promise is the only one made.
   */
  startChild<M>(spec: ChildSpec): Promise<ActorRef<M>> {
    let cell: Cell;
    let started: Promise<void> | void;
    try {
      if (this.status !== 'running') throw new Error(`${this.path} is not running`);
      const max = this.def.flags.maxChildren;
      if (max !== null && this.kids.size >= max) throw new MaxChildrenError(`${this.path} already has ${max} children`);
      const norm = normalizeSpec(spec, this.path);
      if (this.kids.has(norm.id)) throw new Error(`${this.path} already has a child ${norm.id}`);
      cell = makeCell(norm, this);
    } catch (err) {
      return Promise.reject(err);
    }
    this.kids.set(cell.name, cell);
    try {
      started = cell instanceof WorkerCell ? cell.begin() : cell.start();
    } catch (err) {
      return this.startFailed(cell, err);
    }
    if (started) return started.then(() => this.started<M>(cell), (err: unknown) => this.startFailed(cell, err));
    return Promise.resolve(this.started<M>(cell));
  }

  private started<M>(cell: Cell): ActorRef<M> {
    if (!(cell instanceof WorkerCell)) throw new Error('dynamic supervisors start workers');
    return cell.ref as ActorRef<M>;
  }

  private async startFailed(cell: Cell, err: unknown): Promise<never> {
    this.kids.delete(cell.name);
    await cell.stop('start_failed');
    throw err;
  }

  async terminateChild(id: string, reason = 'shutdown'): Promise<boolean> {
    const cell = this.kids.get(id);
    if (!cell) return false;
    this.remove(cell);
    await cell.stop(reason);
    return true;
  }

  private remove(cell: Cell): void {
    this.kids.delete(cell.name);
    this.budgets.delete(cell);
  }

  async childCrashed(child: Cell, reason: unknown): Promise<void> {
    // A child waiting out a restart delay runs nothing; a kill then has nothing to crash.
    if (this.status !== 'running' || this.kids.get(child.name) !== child || child.status === 'stopped' || child.waitingToRestart) return;
    const why = formatReason(reason);
    if (child.spec.restart === 'temporary') {
      this.report(child, reason, 'not restarted (temporary)');
      this.remove(child);
      await child.stop(why);
      return;
    }
    const { childIntensity, childPeriod } = this.def.flags;
    if (childIntensity !== undefined && childPeriod !== undefined) {
      let budget = this.budgets.get(child);
      if (!budget) this.budgets.set(child, (budget = new RestartIntensity(childIntensity, childPeriod, this.rt.now)));
      if (!budget.add()) {
        this.report(child, reason, `stopped: its restart intensity (${childIntensity} in ${childPeriod} ms) was exceeded`);
        this.remove(child);
        await child.stop(`restart_intensity: ${why}`);
        return;
      }
    } else if (!this.intensity.add()) {
      this.report(child, reason, 'restart intensity exceeded');
      await this.fail(reason);
      return;
    }
    const delay = this.restartDelay(child);
    this.report(child, reason, delay > 0 ? `restarting it in ${delay} ms (backoff)` : 'restarting it');
    await child.restart(why, delay);
  }

  async childExited(child: Cell, reason: string): Promise<void> {
    if (this.kids.get(child.name) !== child || child.status === 'stopped') return;
    if (child.spec.restart === 'permanent') {
      await this.childCrashed(child, new Error(`permanent child exited: ${reason}`));
      return;
    }
    this.remove(child);
    await child.stop(reason);
  }

  async terminateForRestart(): Promise<void> {
    if (this.status === 'stopped') return;
    this.status = 'restarting';
    await this.stopAll('shutdown');
  }

  async reinit(): Promise<void> {
    if (this.status === 'stopped') return;
    // Like OTP, a restarted dynamic supervisor starts empty: its children were started on demand.
    this.intensity.reset();
    this.status = 'running';
    this.startedAt = this.rt.now();
  }

  async stop(reason: string): Promise<void> {
    if (this.status === 'stopped') return;
    this.endRestartWait();
    this.status = 'stopped';
    await this.stopAll(reason);
    if (this.nact) stopActor(this.nact);
  }

  private async stopAll(reason: string): Promise<void> {
    const all = [...this.kids.values()];
    this.kids.clear();
    this.budgets.clear();
    await Promise.all(all.map((c) => c.stop(reason)));
  }

  children(): Cell[] {
    return [...this.kids.values()];
  }

  childByName(name: string): Cell | undefined {
    return this.kids.get(name);
  }

  node(opts: TreeOptions, depth: number): TreeNode {
    const n = this.baseNode('supervisor');
    n.strategy = 'simple_one_for_one';
    n.intensity = this.def.flags.childIntensity ?? this.def.flags.intensity;
    n.period = this.def.flags.childPeriod ?? this.def.flags.period;
    n.maxChildren = this.def.flags.maxChildren;
    n.backoff = this.def.flags.backoff;
    return renderChildren(n, this.kids.values(), opts, depth, this.kids.size);
  }
}
