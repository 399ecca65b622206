/**
 * Frames what the daemon sends into trimmed lines for the SDK. Over TCP (LineSplitter) a line may
 * arrive split across chunks (even inside a UTF-8 character) or many per chunk, and the buffer for an
 * unfinished line is bounded so a broken or hostile peer cannot make the game's memory grow. Over the
 * WebSocket (splitMessage) a message holds whole lines and its end ends its last line
 * (docs/PROTOCOL.md §14); the same rules apply to each line.
 */
import { utf8Length } from './bytes.js';

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

/**
 * The lines of one WebSocket text message: split on `\n`, each trimmed, blank ones dropped, and one
 * over `maxLineBytes` (UTF-8) reported as too_long instead of returned, as LineSplitter does.
 */
export function splitMessage(text: string, maxLineBytes: number): SplitEvent[] {
  const out: SplitEvent[] = [];
  let start = 0;
  while (start <= text.length) {
    let nl = text.indexOf('\n', start);
    if (nl < 0) nl = text.length;
    const piece = text.slice(start, nl);
    start = nl + 1;
    // UTF-16 length bounds the UTF-8 length from below: no need to count a piece already too long.
    const bytes = piece.length > maxLineBytes ? piece.length : utf8Length(piece);
    if (bytes > maxLineBytes) out.push({ kind: 'too_long', bytes });
    else {
      const line = piece.trim();
      if (line.length > 0) out.push({ kind: 'line', line });
    }
  }
  return out;
}
