/**
 * Handles: how code finds a child of the tree without a path string. A handle is made beside the
 * spec and carried in it (`spec.handle`); every cell a supervisor builds for that spec — the first
 * start, and the fresh cell built when a parent restarts all of its children — attaches itself to the
 * handle, so `cell()` always answers the incarnation that runs now, wherever the spec sits.
 */
import type { Cell } from './cell.js';
import type { DynamicSupervisorCell } from './dynamic-supervisor.js';
import type { ActorRef } from './types.js';
import type { WorkerCell } from './worker-cell.js';

/** Thrown by a handle whose child has not started yet or has stopped for good. */
export class ChildNotRunning extends Error {
  override name = 'ChildNotRunning';
}

/** What a spec's `handle` offers the supervisor that builds the spec's cells. */
export interface Attachable {
  /** The kind of start the handle can follow; normalizeSpec refuses any other. */
  readonly follows: 'worker' | 'supervisor' | 'dynamic';
  attach(cell: Cell): void;
}

export class ChildHandle<C extends Cell> implements Attachable {
  private current: C | undefined;

  constructor(readonly follows: Attachable['follows']) {}

  attach(cell: Cell): void {
    // normalizeSpec checked that the spec's start kind is `follows`, so the cell is a C.
    this.current = cell as C;
  }

  /** The cell running the child now (running, or restarting in place); throws ChildNotRunning otherwise. */
  cell(): C {
    const c = this.current;
    if (!c) throw new ChildNotRunning(`this ${this.follows} child has not started`);
    if (c.status === 'stopped') throw new ChildNotRunning(`${c.path} is stopped`);
    return c;
  }

  /** The current cell's path, once one was built (for logs and errors). */
  get path(): string | undefined {
    return this.current?.path;
  }
}

/** A handle on a worker child; `ref()` is its ActorRef (stable across in-place restarts). */
export class WorkerHandle<M> extends ChildHandle<WorkerCell> {
  constructor() {
    super('worker');
  }

  ref(): ActorRef<M> {
    return this.cell().ref as ActorRef<M>;
  }
}

/** A handle for a `dynamicSupervisor()` child: `handle.cell().startChild(spec)`. */
export function dynamicSupervisorHandle(): ChildHandle<DynamicSupervisorCell> {
  return new ChildHandle<DynamicSupervisorCell>('dynamic');
}

export function workerHandle<M>(): WorkerHandle<M> {
  return new WorkerHandle<M>();
}
