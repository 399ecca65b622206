/**
 * Turns at least `ms` apart, per key. Work that arrives sooner after its key's previous turn waits
 * out the rest of `ms`; what arrives meanwhile joins it (the caller holds what waits). Meant for
 * work whose turn costs about the same whatever it carries (a store round trip, a publish, an
 * actor's message), so that a stream of items costs a few turns a second instead of one turn per
 * item, while a lone item still goes at once.
 *
 * One home for the three places that did this by hand: a socket's report turns and a key's verify
 * turns (clients/client-actors.ts), and the connection layer's device events (tcp/device-events.ts).
 */
export class Turns<K> {
  private readonly last = new Map<K, number>();

  constructor(
    readonly ms: number,
    private readonly now: () => number = () => performance.now(),
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

  /** The key's turn was taken now: the next one waits `ms` from here. */
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
