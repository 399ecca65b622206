/**
 * A FIFO queue with a fixed capacity that drops its oldest items when full and counts them: logs
 * queued while the daemon is unreachable must not grow without bound inside a running game.
 */
export class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;
  /** Items dropped so far because the queue was full. */
  dropped = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.capacity <= 0) {
      this.dropped++;
      return;
    }
    if (this.length >= this.capacity) {
      this.head++;
      this.dropped++;
    }
    this.items.push(item);
    // Compact now and then instead of shift() per item, which is O(n).
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
