/**
 * Turns at least `ms` apart, per key. Work that arrives sooner after its key's previous turn waits
 * out the rest of `ms`; what arrives meanwhile joins it (the caller holds what waits). Meant for
 * work whose turn costs about the same whatever it carries (a store round trip, a publish, an
 * actor's message), so that a stream of items costs a few turns a second instead of one turn per
 * item, while a lone item still goes at once.
 *
 * One home for the three places that did this by hand: a socket's report turns and a key's verify
 * turns (clients/client-actors.ts), and the connection layer's device events (tcp/device-events.ts).
 *
 * `scheduleAligned` is the variant for many keys whose turns write to one socket (the store's Redis
 * connection): their waiting turns run together on a grid of `ms`, from one timer per grid point, so
 * what they write leaves in one write instead of one per key at a moment of its own.
 */

/** The clock of turns made without one of their own; aligned turns of one clock and `ms` share a grid. */
export const monotonicNow = (): number => performance.now();

/** An aligned turn waiting for its grid point; `cancel` takes it off (the caller then runs it itself, or not). */
export interface PendingTurn {
  cancel(): void;
}

/** The turns due at one grid point, and its one timer. */
interface GridPoint {
  readonly turns: Set<() => void>;
  timer: NodeJS.Timeout | null;
}

/** Per clock and `ms`, the grid points with turns waiting (index = time / ms); a test's clock goes with it. */
const grids = new WeakMap<() => number, Map<number, Map<number, GridPoint>>>();

function gridOf(now: () => number, ms: number): Map<number, GridPoint> {
  let byMs = grids.get(now);
  if (!byMs) grids.set(now, (byMs = new Map()));
  let grid = byMs.get(ms);
  if (!grid) byMs.set(ms, (grid = new Map()));
  return grid;
}

function runPoint(grid: Map<number, GridPoint>, index: number, point: GridPoint): void {
  point.timer = null;
  if (grid.get(index) === point) grid.delete(index);
  // In the order they were scheduled.
  for (const turn of point.turns) turn();
}

export class Turns<K> {
  private readonly last = new Map<K, number>();

  constructor(
    readonly ms: number,
    private readonly now: () => number = monotonicNow,
  ) {}

  /** How long a turn of `key` that starts now waits first: 0 when its previous turn is `ms` ago or more. */
  wait(key: K): number {
    const last = this.last.get(key);
    return last === undefined ? 0 : Math.max(0, last + this.ms - this.now());
  }

  /**
   * Runs `turn` when the key's turn is due: at once (and returns null), or from a timer that does
   * not hold the process open (returned, so the caller can clear it and run the turn sooner). The
   * turn is counted when the caller says so (`taken`), which may be later than when it runs.
   */
  schedule(key: K, turn: () => void): NodeJS.Timeout | null {
    const wait = this.wait(key);
    if (wait <= 0) {
      turn();
      return null;
    }
    const timer = setTimeout(turn, Math.ceil(wait));
    timer.unref();
    return timer;
  }

  /**
   * Like schedule, but on the grid of `ms` of this clock: at most one turn of the key per step of the
   * grid (from one multiple of `ms` to the next), and one that cannot run in the step where the
   * key's last turn was taken runs at the start of the next step, together with every other aligned
   * turn (of any key, and of any Turns with this clock and `ms`) due at that point, from one shared
   * timer that does not hold the process open. So it waits less than `ms`, and keys whose turns come
   * due in the same step run in one callback. (A timer counts from the event loop's time at its
   * setting, which lags the clock by the callback running then: a point may run that much early, and
   * a turn it took then is in the step before, so the key may have one more turn at the point's time.)
   */
  scheduleAligned(key: K, turn: () => void): PendingTurn | null {
    const last = this.last.get(key);
    const { ms } = this;
    const now = this.now();
    const step = last === undefined ? -Infinity : Math.floor(last / ms);
    if (step < Math.floor(now / ms)) {
      turn();
      return null;
    }
    const index = step + 1;
    const grid = gridOf(this.now, ms);
    let point = grid.get(index);
    if (!point) {
      const p: GridPoint = { turns: new Set(), timer: null };
      grid.set(index, p);
      p.timer = setTimeout(() => runPoint(grid, index, p), Math.max(0, Math.ceil(index * ms - now)));
      p.timer.unref();
      point = p;
    }
    // A function of its own per turn, so that cancelling one never takes off another's equal callback.
    const own = (): void => turn();
    const at = point;
    at.turns.add(own);
    return {
      cancel: () => {
        at.turns.delete(own);
        if (at.turns.size === 0 && at.timer) {
          clearTimeout(at.timer);
          at.timer = null;
          if (grid.get(index) === at) grid.delete(index);
        }
      },
    };
  }

  /** The key's turn was taken now: the next one waits `ms` from here (an aligned one: until the next step). */
  taken(key: K): void {
    this.last.set(key, this.now());
  }

  /** Forgets the key (its socket or its last socket went): its next turn is at once. */
  forget(key: K): void {
    this.last.delete(key);
  }

  /** Keys remembered. */
  get size(): number {
    return this.last.size;
  }
}
