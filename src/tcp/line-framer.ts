/**
 * Splits a TCP byte stream into trimmed lines. A line may arrive split across chunks or many per
 * chunk; a line longer than the limit is reported once and skipped up to its newline, and a line that
 * never ends (more than `maxDiscardBytes` skipped) is reported as abuse so the caller can close.
 */

export type FrameEvent = { kind: 'line'; line: string } | { kind: 'too_long'; bytes: number } | { kind: 'runaway' };

const NL = 0x0a;

export class LineFramer {
  /** The pieces of an unfinished line; made when a line first spans chunks (most never do). */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  private discarding = false;
  private discarded = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly maxDiscardBytes = maxLineBytes * 8,
  ) {}

  /** Bytes held for an unfinished line. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Frames one chunk; empty lines are dropped. */
  push(chunk: Buffer, out: FrameEvent[] = []): FrameEvent[] {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) {
        this.hold(chunk, start, chunk.length, out);
        return out;
      }
      if (this.discarding) {
        this.discarding = false;
        this.discarded = 0;
      } else if (this.pendingBytes + (nl - start) > this.maxLineBytes) {
        out.push({ kind: 'too_long', bytes: this.pendingBytes + (nl - start) });
        this.reset();
      } else {
        let text: string;
        if (this.pendingBytes === 0) {
          text = chunk.toString('utf8', start, nl);
        } else {
          const parts = this.pending ?? [];
          parts.push(chunk.subarray(start, nl));
          text = Buffer.concat(parts).toString('utf8');
          this.reset();
        }
        const line = text.trim();
        if (line.length > 0) out.push({ kind: 'line', line });
      }
      start = nl + 1;
    }
  }

  private hold(chunk: Buffer, from: number, to: number, out: FrameEvent[]): void {
    const n = to - from;
    if (n === 0) return;
    if (this.discarding) {
      this.discarded += n;
      if (this.discarded > this.maxDiscardBytes) {
        out.push({ kind: 'runaway' });
        this.discarded = 0;
      }
      return;
    }
    if (this.pendingBytes + n > this.maxLineBytes) {
      out.push({ kind: 'too_long', bytes: this.pendingBytes + n });
      this.reset();
      this.discarding = true;
      this.discarded = n;
      return;
    }
    // Copy: the socket may reuse the chunk's memory.
    (this.pending ??= []).push(Buffer.from(chunk.subarray(from, to)));
    this.pendingBytes += n;
  }

  private reset(): void {
    this.pending = null;
    this.pendingBytes = 0;
  }
}
