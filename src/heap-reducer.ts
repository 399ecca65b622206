/**
 * Gives back the heap a busy spell left behind once the process is quiet again (issue 14: RSS per
 * idle connection). During a connection storm V8 grows its old generation up to about four times
 * what is live (its growing factor when collection is cheap next to the work), and after the storm
 * it keeps those pages committed: its own memory reducer only starts when the allocation rate falls
 * under 1 MB/s, which a node whose heartbeats refresh tens of thousands of devices never does, so it
 * waited a minute or more (measured, `--trace-gc`: 50,000 idle connections over 3 workers held
 * 210-250 MiB of heap each around 85 MiB live). So: every `checkMs` this looks at V8's committed
 * old generation, and when it has grown by `growthBytes` or more beyond what the last reduction (or start-up)
 * left and the event loop has been mostly idle for `quietChecks` checks in a row, it runs one full,
 * compacting collection, which returns the empty pages to the system. Busy processes are left to
 * V8's own heuristics; reductions are at least `minGapMs` apart.
 *
 * The collection is V8's `gc()` (the --expose-gc function), taken from a fresh context so that the
 * daemon's own global scope gets no `gc`, run with --compact-on-every-full-gc for its duration: a
 * plain full collection frees the garbage but keeps the half-empty pages (measured in a worker
 * after a storm: 236 → 205 MiB committed around 83 MiB live; compacting: 283 → 106 MiB around 72
 * MiB live in a test heap). It pauses the process (5-12 ms per MiB live on this machine's loaded
 * cores), once per busy spell and only when the event loop is idle anyway.
 */
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

export interface HeapFigures {
  /**
   * Bytes V8 has committed for its heap outside the young generation: the semi-spaces shrink when V8
   * reduces memory and grow back within seconds (up to 32 MiB), which is no growth worth a pause.
   */
  committed: number;
  /** Bytes of it in use, garbage not yet collected included. */
  used: number;
}

export interface Reduction {
  before: HeapFigures;
  after: HeapFigures;
  /** How long the collection paused the process, ms. */
  ms: number;
}

export interface HeapReducerOptions {
  /** How often to look, ms. */
  checkMs: number;
  /** Committed heap beyond the last reduction's (or start-up's) that makes a reduction worth it. */
  growthBytes: number;
  /** Checks in a row the event loop must have been at most `quietUtilization` busy. */
  quietChecks: number;
  /** Event-loop utilization (0-1) under which a check counts as quiet. */
  quietUtilization: number;
  /** Least time between two reductions, ms. */
  minGapMs: number;
  heap: () => HeapFigures;
  /** The event loop's utilization since the previous call (0-1). */
  utilization: () => number;
  /** A full, compacting collection. */
  collect: () => void;
  now: () => number;
  onReduced?: (r: Reduction) => void;
}

export const HEAP_REDUCER_DEFAULTS = {
  checkMs: 2000,
  // After a storm's reduction an idle node's heartbeats promote about 10 MiB a minute per 17,000
  // devices, which V8 lets grow to a multiple of what is live: 32 MiB of it is one reduction every
  // few idle minutes.
  growthBytes: 32 * 2 ** 20,
  // Three checks (6 s) at most 5% busy: a node serving a live load, even a light one (1,000 i: lines
  // a second is a few percent), is not paused; an idle one after a storm is.
  quietChecks: 3,
  quietUtilization: 0.05,
  minGapMs: 60_000,
} as const;

export class HeapReducer {
  /** Committed heap after the last reduction, start-up, or the lowest seen since. */
  private floor: number;
  private quiet = 0;
  private lastAt = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: HeapReducerOptions) {
    this.floor = opts.heap().committed;
  }

  start(): void {
    if (this.timer) return;
    this.opts.utilization();
    this.timer = setInterval(() => this.check(), this.opts.checkMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look; run by the timer, and by tests. Gives the reduction when it ran one. */
  check(): Reduction | null {
    const o = this.opts;
    const quiet = o.utilization() <= o.quietUtilization;
    this.quiet = quiet ? this.quiet + 1 : 0;
    const before = o.heap();
    // V8 may give pages back by itself (its memory reducer): the growth counts from the lowest seen.
    this.floor = Math.min(this.floor, before.committed);
    if (this.quiet < o.quietChecks || before.committed - this.floor < o.growthBytes) return null;
    const now = o.now();
    if (now - this.lastAt < o.minGapMs) return null;
    const t0 = performance.now();
    o.collect();
    const ms = performance.now() - t0;
    const after = o.heap();
    this.lastAt = now;
    this.quiet = 0;
    this.floor = after.committed;
    const r: Reduction = { before, after, ms };
    o.onReduced?.(r);
    return r;
  }
}

let collector: (() => void) | null = null;

/** V8's full collection (`gc()` of --expose-gc), enabled once for this process. */
export function fullCollection(): () => void {
  if (!collector) {
    // The flag only installs `gc` in contexts created after it is set: a fresh one gives the
    // function without adding it to the daemon's own global scope.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    collector = () => {
      // Read by V8 when a full collection starts; back to the default right after, so V8's own
      // collections keep their heuristics.
      v8.setFlagsFromString('--compact-on-every-full-gc');
      try {
        gc();
      } finally {
        v8.setFlagsFromString('--no-compact-on-every-full-gc');
      }
    };
  }
  return collector;
}

const YOUNG = new Set(['new_space', 'new_large_object_space']);

/** V8's committed (outside the young generation) and used heap now. */
export function heapFigures(): HeapFigures {
  let committed = 0;
  let used = 0;
  for (const s of v8.getHeapSpaceStatistics()) {
    used += s.space_used_size;
    if (!YOUNG.has(s.space_name)) committed += s.space_size;
  }
  return { committed, used };
}

/** The reducer with the defaults on this process's real heap, event loop and clock (not started). */
export function processHeapReducer(onReduced?: (r: Reduction) => void, overrides: Partial<HeapReducerOptions> = {}): HeapReducer {
  let last = performance.eventLoopUtilization();
  return new HeapReducer({
    ...HEAP_REDUCER_DEFAULTS,
    heap: heapFigures,
    utilization: () => {
      const now = performance.eventLoopUtilization();
      const u = performance.eventLoopUtilization(now, last).utilization;
      last = now;
      return u;
    },
    collect: fullCollection(),
    now: () => performance.now(),
    onReduced,
    ...overrides,
  });
}
