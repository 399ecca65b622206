/**
 * How server events reach the dashboard's panels: parsed, queued, and handed over once per animation
 * frame in the order received. The daemon sends a frame per log line and per report (1,000 devices
 * make over a thousand a second), and each one delivered on its own re-rendered every panel it
 * touched once per frame received instead of once per frame painted. No DOM types here, so the unit
 * tests run it in node.
 */
import type { VariablesEvent, WsServerFrame } from '../wire.js';

/** Every frame the page handles: the /ws frames and the §8 events (overrides, strategies, history, device_state). */
export type LiveEvent = WsServerFrame | VariablesEvent;

/** How long queued events wait when no animation frame comes (a hidden tab). */
const FRAME_FALLBACK_MS = 100;

/** The browser's frame callbacks, absent in node. */
const frames = globalThis as unknown as {
  requestAnimationFrame?: (fn: () => void) => number;
  cancelAnimationFrame?: (id: number) => void;
};

/** Runs `fn` before the next paint; a hidden tab paints nothing, so a timer stands in there. */
export function nextFrame(fn: () => void): void {
  let done = false;
  const run = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    frames.cancelAnimationFrame?.(frame);
    fn();
  };
  const timer = setTimeout(run, FRAME_FALLBACK_MS);
  const frame = frames.requestAnimationFrame?.(run) ?? 0;
}

/** Collects items and hands them over together, once per `schedule` (an animation frame), in the order pushed. */
export class Batcher<T> {
  private queue: T[] = [];
  private scheduled = false;

  constructor(
    private readonly deliver: (batch: readonly T[]) => void,
    private readonly schedule: (fn: () => void) => void = nextFrame,
  ) {}

  push(item: T): void {
    this.queue.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  /** Hands over what is queued now (also what a scheduled run does). */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.deliver(batch);
  }

  /** Forgets what is queued (the socket was stopped: nobody wants its events any more). */
  clear(): void {
    this.queue = [];
  }
}

/**
 * Calls every listener, rethrowing a listener's error on its own task (where the console shows it)
 * so that one listener's bug does not cost the others the rest of a frame's events.
 */
export function callEach<A>(listeners: Iterable<(a: A) => void>, arg: A): void {
  for (const fn of listeners) {
    try {
      fn(arg);
    } catch (err) {
      setTimeout(() => {
        throw err;
      });
    }
  }
}

export function parseEvent(data: unknown): LiveEvent | null {
  if (typeof data !== 'string') return null;
  try {
    const ev = JSON.parse(data) as { type?: unknown };
    return ev && typeof ev.type === 'string' ? (ev as LiveEvent) : null;
  } catch {
    return null;
  }
}

/** The socket's listeners and its queue of received events. */
export class LiveEvents {
  /** `ready` events delivered so far (see LiveSocket.readies). */
  readies = 0;
  private readonly eventListeners = new Set<(e: LiveEvent) => void>();
  private readonly batchListeners = new Set<(events: readonly LiveEvent[]) => void>();
  private readonly batcher: Batcher<LiveEvent>;

  constructor(schedule: (fn: () => void) => void = nextFrame) {
    this.batcher = new Batcher((events) => this.dispatch(events), schedule);
  }

  onEvent(fn: (e: LiveEvent) => void): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  onEvents(fn: (events: readonly LiveEvent[]) => void): () => void {
    this.batchListeners.add(fn);
    return () => this.batchListeners.delete(fn);
  }

  /** One server frame's text; anything that is not a JSON event with a type is dropped. */
  receive(data: unknown): void {
    const ev = parseEvent(data);
    if (ev) this.batcher.push(ev);
  }

  /** Forgets the events not yet delivered. */
  clear(): void {
    this.batcher.clear();
  }

  private dispatch(events: readonly LiveEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'ready') this.readies += 1;
      callEach(this.eventListeners, ev);
    }
    callEach(this.batchListeners, events);
  }
}
