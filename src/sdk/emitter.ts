/**
 * A small typed event emitter for the SDK. Unlike Node's EventEmitter it never throws for an 'error'
 * event nobody listens to, and a listener that throws cannot break the client's socket handling:
 * an SDK must not crash the game it is embedded in.
 */

type Listener<A extends unknown[]> = (...args: A) => void;

export class TypedEmitter<E extends { [K in keyof E]: unknown[] }> {
  private readonly listeners = new Map<keyof E, Array<{ fn: Listener<never[]>; once: boolean }>>();

  /** Called when a listener throws; by default the exception is dropped. */
  protected onListenerError(_event: keyof E, _err: unknown): void {}

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    this.add(event, listener, false);
    return this;
  }

  once<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    this.add(event, listener, true);
    return this;
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = this.listeners.get(event);
    if (!list) return this;
    const i = list.findIndex((l) => l.fn === (listener as unknown as Listener<never[]>));
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /** Calls the event's listeners in order; returns whether there were any. */
  protected emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) return false;
    // A copy: listeners may add or remove listeners while being called.
    for (const l of [...list]) {
      if (l.once) this.off(event, l.fn as unknown as Listener<E[K]>);
      try {
        (l.fn as unknown as Listener<E[K]>)(...args);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
    return true;
  }

  private add<K extends keyof E>(event: K, fn: Listener<E[K]>, once: boolean): void {
    let list = this.listeners.get(event);
    if (!list) this.listeners.set(event, (list = []));
    list.push({ fn: fn as unknown as Listener<never[]>, once });
  }
}
