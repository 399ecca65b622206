/**
 * The log batcher's spool on disk: logs waiting for an index that is down are written here, one
 * segment file per write, so a daemon restart during the outage still delivers them. A segment is
 * deleted once every log in it was stored, refused or dropped; at start-up the segments left are
 * read back, oldest first.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { LogEntry } from '../model.js';

/** One segment file; `remaining` counts its logs not yet stored, refused or dropped. */
export interface SpoolSegment {
  readonly file: string;
  readonly bytes: number;
  remaining: number;
}

export interface SpooledEntry {
  entry: LogEntry;
  seg: SpoolSegment;
  /** Its line's bytes, newline included. */
  bytes: number;
}

const SEGMENT_RE = /^seg-(\d{16})\.ndjson$/;

export class DiskSpool {
  private next = 0;
  private total = 0;
  private segments = 0;

  constructor(
    readonly dir: string,
    private readonly logger?: Logger,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Bytes of the segment files still on disk. */
  get bytes(): number {
    return this.total;
  }

  get files(): number {
    return this.segments;
  }

  /** Every log left by an earlier run, oldest first; segments that cannot be read are logged and removed. */
  load(): SpooledEntry[] {
    const out: SpooledEntry[] = [];
    const names = readdirSync(this.dir).sort();
    for (const name of names) {
      const path = join(this.dir, name);
      const m = SEGMENT_RE.exec(name);
      if (!m) {
        // A temp file is a write cut short by a crash: its logs were never promised to anyone.
        if (name.endsWith('.tmp')) rmSync(path, { force: true });
        continue;
      }
      this.next = Math.max(this.next, Number(m[1]) + 1);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        this.logger?.error({ err, file: path }, 'cannot read a log spool segment; its logs are lost');
        continue;
      }
      const seg: SpoolSegment = { file: path, bytes: statSync(path).size, remaining: 0 };
      let bad = 0;
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const entry = parseEntry(line);
        if (entry) {
          seg.remaining += 1;
          out.push({ entry, seg, bytes: Buffer.byteLength(line) + 1 });
        } else bad += 1;
      }
      if (bad > 0) this.logger?.error({ file: path, bad }, 'log spool segment holds unreadable lines; skipped');
      if (seg.remaining === 0) rmSync(path, { force: true });
      else {
        this.total += seg.bytes;
        this.segments += 1;
      }
    }
    return out;
  }

  /** Writes `lines` (one JSON log each) as a new segment; throws if the disk refuses. */
  write(lines: readonly string[]): SpoolSegment {
    const name = `seg-${String(this.next++).padStart(16, '0')}.ndjson`;
    const path = join(this.dir, name);
    const text = `${lines.join('\n')}\n`;
    // Written aside, then renamed: a crash never leaves half a segment under a segment's name.
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
    const seg: SpoolSegment = { file: path, bytes: Buffer.byteLength(text), remaining: lines.length };
    this.total += seg.bytes;
    this.segments += 1;
    return seg;
  }

  /** One log of `seg` is done with; the segment goes once all of them are. */
  release(seg: SpoolSegment): void {
    seg.remaining -= 1;
    if (seg.remaining !== 0) return;
    this.total -= seg.bytes;
    this.segments -= 1;
    try {
      rmSync(seg.file, { force: true });
    } catch (err) {
      this.logger?.warn({ err, file: seg.file }, 'cannot remove a log spool segment');
    }
  }
}

function parseEntry(line: string): LogEntry | null {
  try {
    const v = JSON.parse(line) as Partial<LogEntry> | null;
    if (typeof v !== 'object' || v === null) return null;
    if (typeof v.id !== 'string' || typeof v.apiKey !== 'string' || typeof v.message !== 'string' || typeof v.receivedAt !== 'number') return null;
    return {
      id: v.id,
      apiKey: v.apiKey,
      deviceId: typeof v.deviceId === 'string' ? v.deviceId : null,
      level: typeof v.level === 'string' ? v.level : 'info',
      message: v.message,
      timestamp: typeof v.timestamp === 'number' ? v.timestamp : null,
      receivedAt: v.receivedAt,
      fields: typeof v.fields === 'object' && v.fields !== null && !Array.isArray(v.fields) ? v.fields : {},
    };
  } catch {
    return null;
  }
}
