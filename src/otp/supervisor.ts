/**
 * A static supervisor: starts its children in order, stops them in reverse, and applies its
 * strategy when one crashes — one_for_one, one_for_all or rest_for_one — within its restart
 * intensity; one restart too many and it fails to its own parent, as in OTP.
 */
import { Cell, formatReason, type ParentCell } from './cell.js';
import { normalizeSpec, type NormalizedBackoff, type NormalizedSpec, type SupervisorDef } from './child-spec.js';
import { spawnActor, stopActor, type NactRef } from './nact.js';
import { RestartBackoff } from './restart-backoff.js';
import { RestartIntensity } from './restart-intensity.js';
import { renderChildren } from './introspect.js';
import { makeCell } from './make-cell.js';
import type { TreeNode, TreeOptions } from './types.js';

export class StartError extends Error {
  override name = 'StartError';
}

/** Shared by static and dynamic supervisors: the crash report and intensity bookkeeping. */
export abstract class SupervisorBase extends Cell implements ParentCell {
  protected nact: NactRef | undefined;
  protected abstract readonly intensity: RestartIntensity;
  protected abstract readonly backoffFlags: NormalizedBackoff;

  get nactRef(): NactRef {
    if (!this.nact) throw new Error(`${this.path} has no actor`);
    return this.nact;
  }

  protected spawnSelf(): void {
    this.nact = spawnActor(this.parent.nactRef, () => undefined, this.name, {
      // A supervisor handles no messages of its own; crashes of its children reach it through us.
      onCrash: (_m, _e, ctx) => ctx.resume,
    });
  }

  /** The delay before restarting `child` after this crash: its backoff's next step, 0 without one. */
  protected restartDelay(child: Cell): number {
    if (!this.backoffFlags) return 0;
    child.backoff ??= new RestartBackoff(this.backoffFlags, this.rt.now, this.rt.random);
    return child.backoff.next();
  }

  protected report(child: Cell, reason: unknown, action: string): void {
    const text = formatReason(reason);
    child.lastCrash = { reason: text, at: this.rt.now() };
    this.log.error(
      {
        errorContext: 'child_terminated',
        supervisor: this.path,
        child: child.path,
        offender: child.path,
        reason: text,
        restarts: child.restarts,
        action,
        err: reason instanceof Error ? reason : undefined,
      },
      `${child.path} crashed: ${text}; ${action}`,
    );
    this.rt.events.emit('crash', { path: child.path, supervisor: this.path, reason: text, action });
  }

  /** Restart intensity exceeded: this supervisor fails, and its parent decides. */
  protected async fail(reason: unknown): Promise<void> {
    const why = `reached_max_restart_intensity (${this.intensity.intensity} in ${this.intensity.period} ms); last: ${formatReason(reason)}`;
    this.log.error({ errorContext: 'shutdown', supervisor: this.path, reason: why }, `${this.path} gives up: ${why}`);
    await this.parent.childCrashed(this, new Error(why));
  }

  abstract childCrashed(child: Cell, reason: unknown): Promise<void>;
  abstract childExited(child: Cell, reason: string): Promise<void>;
  abstract children(): Cell[];
  abstract childByName(name: string): Cell | undefined;

  mailbox(): number {
    return 0;
  }
}

export class SupervisorCell extends SupervisorBase {
  private readonly def: SupervisorDef;
  private kids: Cell[] = [];
  protected readonly intensity: RestartIntensity;
  protected readonly backoffFlags: NormalizedBackoff;

  constructor(spec: NormalizedSpec, parent: ParentCell) {
    super(spec, parent);
    this.def = spec.start as SupervisorDef;
    this.backoffFlags = this.def.flags.backoff;
    this.intensity = new RestartIntensity(this.def.flags.intensity, this.def.flags.period, parent.rt.now);
  }

  async start(): Promise<void> {
    this.spawnSelf();
    await this.startChildren();
  }

  private async startChildren(): Promise<void> {
    // Fresh cells, so a restarted supervisor also starts with fresh backoffs.
    this.kids = [];
    for (const spec of this.def.children) {
      const cell = makeCell(normalizeSpec(spec, this.path), this);
      this.kids.push(cell);
      try {
        await cell.start();
      } catch (err) {
        cell.lastCrash = { reason: formatReason(err), at: this.rt.now() };
        await cell.stop('start_failed');
        await this.stopChildren('shutdown');
        throw new StartError(`${cell.path} failed to start: ${formatReason(err)}`, { cause: err });
      }
    }
    this.status = 'running';
    this.startedAt = this.rt.now();
  }

  private async stopChildren(reason: string): Promise<void> {
    for (const c of [...this.kids].reverse()) await c.stop(reason);
  }

  async terminateForRestart(): Promise<void> {
    if (this.status === 'stopped') return;
    this.status = 'restarting';
    await this.stopChildren('shutdown');
  }

  async reinit(): Promise<void> {
    if (this.status === 'stopped') return;
    this.intensity.reset();
    await this.startChildren();
  }

  async stop(reason: string): Promise<void> {
    if (this.status === 'stopped') return;
    this.endRestartWait();
    this.status = 'stopped';
    await this.stopChildren(reason);
    if (this.nact) stopActor(this.nact);
  }

  async childCrashed(child: Cell, reason: unknown): Promise<void> {
    // A child waiting out a restart delay runs nothing; a kill then has nothing to crash.
    if (this.status !== 'running' || !this.kids.includes(child) || child.status === 'stopped' || child.waitingToRestart) return;
    if (child.spec.restart === 'temporary') {
      this.report(child, reason, 'not restarted (temporary)');
      await child.stop(formatReason(reason));
      return;
    }
    if (!this.intensity.add()) {
      this.report(child, reason, 'restart intensity exceeded');
      await this.fail(reason);
      return;
    }
    const delay = this.restartDelay(child);
    const affected = this.affectedBy(child);
    const who = affected.length === 1 ? 'it' : affected.map((c) => c.name).join(', ');
    this.report(child, reason, `restarting ${who} (${this.def.flags.strategy})${delay > 0 ? ` in ${delay} ms (backoff)` : ''}`);
    // OTP order: terminate the affected children last-started first, then start them in order.
    const why = formatReason(reason);
    for (const c of [...affected].reverse()) await c.terminateForRestart(c === child ? why : 'shutdown');
    // The whole group waits out the crashing child's delay: its siblings restart with it.
    if (delay > 0) await Promise.all(affected.map((c) => c.waitBeforeRestart(delay)));
    for (const c of affected) {
      if (this.status !== 'running') return;
      await c.reinitOrCrash(c === child ? why : `${this.def.flags.strategy}: sibling ${child.name} crashed: ${why}`);
    }
  }

  async childExited(child: Cell, reason: string): Promise<void> {
    if (this.status !== 'running' || !this.kids.includes(child) || child.status === 'stopped') return;
    if (child.spec.restart === 'permanent') {
      await this.childCrashed(child, new Error(`permanent child exited: ${reason}`));
      return;
    }
    // Like OTP, a static supervisor keeps the spec of a finished transient/temporary child.
    await child.stop(reason);
  }

  private affectedBy(child: Cell): Cell[] {
    const live = (c: Cell) => c.status !== 'stopped' || c === child;
    switch (this.def.flags.strategy) {
      case 'one_for_one':
        return [child];
      case 'one_for_all':
        return this.kids.filter(live);
      case 'rest_for_one':
        return this.kids.slice(this.kids.indexOf(child)).filter(live);
    }
  }

  children(): Cell[] {
    return this.kids;
  }

  childByName(name: string): Cell | undefined {
    return this.kids.find((c) => c.name === name);
  }

  node(opts: TreeOptions, depth: number): TreeNode {
    const n = this.baseNode('supervisor');
    n.strategy = this.def.flags.strategy;
    n.intensity = this.def.flags.intensity;
    n.period = this.def.flags.period;
    n.backoff = this.def.flags.backoff;
    return renderChildren(n, this.kids, opts, depth);
  }
}
