/**
 * Frames the daemon's byte stream into trimmed lines for the SDK. A line may arrive split across
 * chunks (even inside a UTF-8 character) or many per chunk; the buffer for an unfinished line is bounded
 * so a broken or hostile peer cannot make the game's memory grow.
 */

export type SplitEvent = { kind: 'line'; line: string } | { kind: 'too_long'; bytes: number };

const NL = 0x0a;

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Skipping the rest of a line that was already reported too long. */
  private skipping = false;

  constructor(private readonly maxLineBytes: number) {}

  /** Bytes held for an unfinished line. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Splits one chunk; blank lines are dropped, `\r` and other surrounding white space trimmed. */
  push(chunk: Buffer): SplitEvent[] {
    const out: SplitEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.skipping) {
        if (nl >= 0) this.skipping = false;
      } else if (this.pendingBytes + (end - start) > this.maxLineBytes) {
        out.push({ kind: 'too_long', bytes: this.pendingBytes + (end - start) });
        this.pending = [];
        this.pendingBytes = 0;
        this.skipping = nl < 0;
      } else if (nl < 0) {
        // Copied: Node may reuse the chunk's memory for the next read.
        if (end > start) this.pending.push(Buffer.from(chunk.subarray(start, end)));
        this.pendingBytes += end - start;
      } else {
        this.pending.push(chunk.subarray(start, end));
        const line = Buffer.concat(this.pending).toString('utf8').trim();
        this.pending = [];
        this.pendingBytes = 0;
        if (line.length > 0) out.push({ kind: 'line', line });
      }
      if (nl < 0) return out;
      start = nl + 1;
    }
  }
}
