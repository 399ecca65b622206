/**
 * Idle timeouts of many connections on one timer: each watched connection notes when it last moved
 * a byte either way, and a sweep every `resolution` ms ends those silent for `ms` or more. A socket's
 * own setTimeout kept a Timeout object and its listener closures per connection (about 240 B, with
 * 15,000 connections 3.5 MB) and moved that timer in its list at every read and write; here a
 * connection costs a number and a slot in an array, and activity costs one clock read.
 *
 * A timeout fires at least `ms` after the last activity and at most `resolution` later (plus what
 * the event loop adds, as for any timer). A queue of bytes for the peer that shrank since the last
 * write counts as activity, as a write completing does for a socket's timer: a peer that reads
 * slowly is not idle, one that reads nothing is.
 */

/** A connection as the sweep watches it; the fields are the sweep's, kept on the connection to cost no object. */
export interface IdleWatched {
  /** performance.now() of the last byte moved either way: set by the connection at each read and write. */
  idleSince: number;
  /** Place in its sweep's list; -1 while not watched, DUE between a sweep finding it silent and its fireIdle. */
  idleSlot: number;
  /** Bytes queued for the peer after its last write (set with idleSince by a write). */
  idleQueued: number;
  /** Bytes queued for the peer now. */
  readonly buffered: number;
  /** The connection has been silent for the timeout: called once, after it left the sweep. */
  fireIdle(): void;
}

/** The idleSlot of a connection a sweep found silent, whose fireIdle is about to run. */
const DUE = -2;

/** The sweep's period for a timeout: a twentieth of it, between 5 ms and a second. */
export function sweepResolution(ms: number): number {
  return Math.min(1000, Math.max(5, Math.floor(ms / 20)));
}

export class IdleSweep {
  private readonly watched: IdleWatched[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly ms: number,
    readonly resolution = sweepResolution(ms),
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.watched.length;
  }

  /** Starts watching `c`, active as of now. */
  add(c: IdleWatched): void {
    if (c.idleSlot >= 0) return;
    c.idleSince = this.now();
    c.idleQueued = 0;
    c.idleSlot = this.watched.length;
    this.watched.push(c);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.resolution);
      this.timer.unref();
    }
  }

  /** Stops watching `c` (its connection closed); the last one stops the timer. */
  remove(c: IdleWatched): void {
    const i = c.idleSlot;
    if (i === DUE) c.idleSlot = -1;
    if (i < 0 || this.watched[i] !== c) return;
    const last = this.watched.pop() as IdleWatched;
    if (last !== c) {
      this.watched[i] = last;
      last.idleSlot = i;
    }
    c.idleSlot = -1;
    if (this.watched.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Ends every connection silent for `ms` or more; run by the timer, and by tests. */
  sweep(): void {
    const now = this.now();
    const deadline = now - this.ms;
    let due: IdleWatched[] | null = null;
    // Backwards: removing slot i moves the last connection, already looked at, into it.
    for (let i = this.watched.length - 1; i >= 0; i--) {
      const c = this.watched[i] as IdleWatched;
      if (c.idleSince > deadline) continue;
      const queued = c.buffered;
      if (queued > 0 && queued < c.idleQueued) {
        // The peer took some of what was queued since: that is activity.
        c.idleQueued = queued;
        c.idleSince = now;
        continue;
      }
      this.remove(c);
      c.idleSlot = DUE;
      (due ??= []).push(c);
    }
    // After the walk: a callback may close or open connections, and one closed (or watched again)
    // by an earlier callback is not idle any more.
    if (!due) return;
    for (const c of due) {
      if (c.idleSlot !== DUE) continue;
      c.idleSlot = -1;
      c.fireIdle();
    }
  }
}

/** One sweep per timeout in use (there is one: tcp.idleTimeoutMs). */
const sweeps = new Map<number, IdleSweep>();

export function idleSweep(ms: number): IdleSweep {
  let s = sweeps.get(ms);
  if (!s) sweeps.set(ms, (s = new IdleSweep(ms)));
  return s;
}
