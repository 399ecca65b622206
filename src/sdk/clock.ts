/**
 * Time as the SDK sees it. Injected so that backoff, batching windows and timeouts can be driven by
 * a fake clock (e.g. @sinonjs/fake-timers' createClock) in tests while sockets stay real.
 */

/** An opaque timer handle, whatever the clock returns. */
export type TimerHandle = unknown;

export interface SdkClock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock; looked up at call time so globally installed fake timers also apply. */
export const systemClock: SdkClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
