/**
 * The embedded store's append-only journal: newline-delimited JSON records `{"s":<seq>,"op":<op>}` in
 * segment files `journal-<generation>.ndjson` beside the snapshot. It knows nothing of the store's
 * operations; it numbers them, writes them and fsyncs them in groups, and replays them on start.
 *
 * Durability, in the order it happens:
 * - Every record appended during one macrotask is written with one write(2) in a microtask, before
 *   the caller's continuation runs: once a store method has resolved (or anyone has read its effect),
 *   the record is in the kernel and survives the process being killed (kill -9, OOM killer, crash).
 * - A durable append resolves only after an fsync that covers it; appends waiting meanwhile share the
 *   next fsync (group commit: one fsync in flight, the waiting ones go in the next).
 * - Other appends are fsynced at most `fsyncMs` later (as Redis' `appendfsync everysec`): that is
 *   what an operating-system crash or power cut can take. `fsyncMs` 0 makes every append durable.
 */
import { close as closeFd, closeSync, fsync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readdir, readFile, rename, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

const SEGMENT_RE = /^journal-(\d+)\.ndjson$/;

export function segmentName(generation: number): string {
  return `journal-${generation}.ndjson`;
}

export interface JournalSettings {
  /** Where the segments live (the store's data folder, which must exist). */
  dir: string;
  /** Longest a non-durable record waits for its fsync; 0 = every append is durable. */
  fsyncMs: number;
  logger: Logger;
}

export interface ReplayReport {
  /** Records applied (those after the snapshot's sequence number). */
  applied: number;
  /** Records already in the snapshot. */
  skipped: number;
  /** Sequence number of the last record applied, or the snapshot's when none was. */
  lastSeq: number;
  /** Highest generation found on disk (0 = none). */
  lastGeneration: number;
  /** An unterminated last record in the last segment: a write the crash cut short, ignored. */
  tornTail: boolean;
  /** Replay stopped here; the segment and those after it were moved aside for inspection. */
  corrupt: { file: string; line: number; reason: string; movedTo: string[] } | null;
}

/**
 * Reads every segment in generation order and hands each record after `afterSeq` to `apply`, which
 * must throw on a record it cannot accept. Records must continue the snapshot's numbering without a
 * gap: anything else is corruption, and replay stops before it rather than apply a later change on
 * top of a missing earlier one.
 */
export async function replayJournal<Op>(dir: string, afterSeq: number, parse: (raw: unknown) => Op, apply: (op: Op) => void, logger: Logger): Promise<ReplayReport> {
  const generations = (await readdir(dir))
    .map((f) => SEGMENT_RE.exec(f)?.[1])
    .filter((g): g is string => g !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const report: ReplayReport = { applied: 0, skipped: 0, lastSeq: afterSeq, lastGeneration: generations.at(-1) ?? 0, tornTail: false, corrupt: null };
  for (let gi = 0; gi < generations.length; gi++) {
    const file = join(dir, segmentName(generations[gi] as number));
    let failedRead: string | null = null;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      // A segment we cannot read is handled like a corrupt one: set aside, not a reason to crash-loop.
      text = '';
      failedRead = `cannot read the segment (${(err as Error).message})`;
    }
    const lines = text.split('\n');
    // The text after the last newline: empty for a clean segment, a torn record after a crash.
    const tail = lines.pop() ?? '';
    const isLast = gi === generations.length - 1;
    let failure: { line: number; reason: string } | null = failedRead ? { line: 0, reason: failedRead } : null;
    for (let i = 0; i < lines.length && !failure; i++) {
      const reason = replayLine(lines[i] as string, report, parse, apply);
      if (reason) failure = { line: i + 1, reason };
    }
    if (!failure && tail !== '') {
      if (isLast) {
        report.tornTail = true;
        // Cut off, so the segment stays well-formed whatever is appended after it.
        await truncate(file, Buffer.byteLength(text) - Buffer.byteLength(tail));
        logger.warn({ file, line: lines.length + 1, bytes: Buffer.byteLength(tail) }, 'store journal ends with an incomplete record (a write cut short by a crash); ignored and truncated');
      } else {
        failure = { line: lines.length + 1, reason: 'incomplete record before the end of the journal' };
      }
    }
    if (failure) {
      const stamp = Date.now();
      const movedTo: string[] = [];
      for (const g of generations.slice(gi)) {
        const from = join(dir, segmentName(g));
        const to = `${from}.corrupt-${stamp}`;
        await rename(from, to);
        movedTo.push(to);
      }
      report.corrupt = { file, ...failure, movedTo };
      logger.error(
        { file, line: failure.line, reason: failure.reason, replayed: report.applied, lastSeq: report.lastSeq, movedTo },
        'store journal is corrupt; replay stopped before this record, the rest is kept aside for inspection',
      );
      break;
    }
  }
  return report;
}

/** Deletes the segments older than `generation` (a snapshot holds all their records). */
export async function removeSegmentsBefore(dir: string, generation: number): Promise<void> {
  for (const f of await readdir(dir)) {
    const g = SEGMENT_RE.exec(f)?.[1];
    if (g !== undefined && Number(g) < generation) await unlink(join(dir, f));
  }
}

/** Applies one complete line; returns why it cannot be, or null. */
function replayLine<Op>(line: string, report: ReplayReport, parse: (raw: unknown) => Op, apply: (op: Op) => void): string | null {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (typeof rec !== 'object' || rec === null || !('s' in rec) || !('op' in rec) || !Number.isSafeInteger(rec.s)) return 'not a journal record';
  const seq = rec.s as number;
  if (seq <= report.lastSeq && report.applied === 0) {
    // Already in the snapshot: the crash came between writing it and removing these segments.
    report.skipped++;
    return null;
  }
  if (seq !== report.lastSeq + 1) return `sequence number ${seq} where ${report.lastSeq + 1} was expected`;
  let op: Op;
  try {
    op = parse(rec.op);
  } catch (err) {
    return `invalid operation (${(err as Error).message})`;
  }
  apply(op);
  report.lastSeq = seq;
  report.applied++;
  return null;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A write nobody awaits must not become an unhandled rejection; awaiting callers still see it.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** What the journal has done, for tests and inspection. */
export interface JournalStats {
  /** write(2) calls: one per batch of records appended in one macrotask. */
  writes: number;
  fsyncs: number;
  records: number;
}

/** One open segment file: its fsyncs are serialised, and the writes they cover are tracked. */
class Segment {
  /** Written but not yet covered by a started fsync. */
  private dirty = false;
  private syncing = false;
  private closing: Deferred | null = null;
  private closed = false;
  /** Durable appends written to the file and waiting for the next fsync. */
  private waiting: Deferred[] = [];
  bytes = 0;

  constructor(
    readonly generation: number,
    readonly file: string,
    private readonly fd: number,
    private readonly onError: (err: Error) => void,
    private readonly stats: JournalStats,
  ) {}

  write(buf: Buffer, durable: Deferred | null): void {
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.stats.writes++;
    this.bytes += buf.length;
    this.dirty = true;
    if (durable) {
      this.waiting.push(durable);
      this.sync();
    }
  }

  /** Starts an fsync unless one is running (then the next one starts when it ends). */
  sync(): void {
    if (this.syncing) return;
    if (!this.dirty && this.waiting.length === 0) {
      if (this.closing) this.close();
      return;
    }
    this.syncing = true;
    this.dirty = false;
    const covered = this.waiting.splice(0);
    this.stats.fsyncs++;
    fsync(this.fd, (err) => {
      this.syncing = false;
      if (err) {
        this.onError(err);
        for (const d of covered) d.reject(err);
      } else {
        for (const d of covered) d.resolve();
      }
      this.sync();
    });
  }

  /** No more writes: fsyncs what is pending, then closes; resolves once closed. */
  retire(): Promise<void> {
    this.closing ??= deferred();
    this.sync();
    return this.closing.promise;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd, (err) => (err ? this.closing?.reject(err) : this.closing?.resolve()));
  }
}

function openSegment(dir: string, generation: number, onError: (err: Error) => void, stats: JournalStats): Segment {
  const file = join(dir, segmentName(generation));
  // 0600: records hold password hashes and session tokens. 'a': a leftover file is appended to, never truncated.
  const fd = openSync(file, 'a', 0o600);
  // The new name must reach the disk too, or an fsync of the file could be of a file nobody finds.
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return new Segment(generation, file, fd, onError, stats);
}

export class Journal {
  private segment: Segment;
  private seq: number;
  private pending: string[] = [];
  /** Settled once the pending records are written (the non-durable appends' promise). */
  private written: Deferred | null = null;
  /** Settled once the pending records are fsynced (the durable appends' promise). */
  private synced: Deferred | null = null;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  readonly stats: JournalStats = { writes: 0, fsyncs: 0, records: 0 };
  /** Set when a write or fsync failed; appends reject until recovered() (after a snapshot holds everything). */
  failure: Error | null = null;

  /** Opens a fresh segment after `lastGeneration`; the next record is numbered `lastSeq + 1`. */
  constructor(
    private readonly settings: JournalSettings,
    lastSeq: number,
    lastGeneration: number,
  ) {
    this.log = settings.logger;
    this.seq = lastSeq;
    this.segment = openSegment(settings.dir, lastGeneration + 1, this.fail, this.stats);
    if (settings.fsyncMs > 0) {
      this.timer = setInterval(() => this.segment.sync(), settings.fsyncMs);
      this.timer.unref();
    }
  }

  /** Sequence number of the last record appended. */
  get lastSeq(): number {
    return this.seq;
  }

  get generation(): number {
    return this.segment.generation;
  }

  get file(): string {
    return this.segment.file;
  }

  /** Bytes written to the current segment. */
  get bytes(): number {
    return this.segment.bytes;
  }

  /**
   * Numbers and queues a record. The promise resolves once it is written (durable: once fsynced) and
   * rejects when that fails, or at once while the journal is failed.
   */
  append(op: unknown, durable: boolean): Promise<void> {
    // Refused records take no number: the numbering on disk stays without gaps.
    if (this.failure) return Promise.reject(this.failure);
    const seq = ++this.seq;
    this.stats.records++;
    this.pending.push(`${JSON.stringify({ s: seq, op })}\n`);
    this.written ??= deferred();
    if (durable || this.settings.fsyncMs === 0) this.synced ??= deferred();
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
    return durable || this.settings.fsyncMs === 0 ? (this.synced as Deferred).promise : this.written.promise;
  }

  /** Writes everything pending now, with one write(2). */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    const written = this.written;
    const synced = this.synced;
    this.pending = [];
    this.written = null;
    this.synced = null;
    try {
      this.segment.write(Buffer.from(text, 'utf8'), synced);
    } catch (err) {
      this.fail(err as Error);
      written?.reject(err as Error);
      synced?.reject(err as Error);
      return;
    }
    written?.resolve();
  };

  private readonly fail = (err: Error): void => {
    if (!this.failure) this.log.error({ err, file: this.segment.file }, 'store journal write failed; writes are refused until a snapshot succeeds');
    this.failure = err;
  };

  /**
   * Ends the current segment and starts the next one, synchronously, so the caller can cut a snapshot
   * at exactly `lastSeq`: every record up to it is in the older segments, every later one in the new.
   */
  rotate(): { cutSeq: number; generation: number } {
    this.flush();
    const next = openSegment(this.settings.dir, this.segment.generation + 1, this.fail, this.stats);
    // Nobody waits for the old segment's close: its durable appends wait for their own fsync.
    void this.segment.retire();
    this.segment = next;
    return { cutSeq: this.seq, generation: next.generation };
  }

  /** A snapshot at or after every record in them exists: the older segments can go. */
  removeBefore(generation: number): Promise<void> {
    return removeSegmentsBefore(this.settings.dir, generation);
  }

  /** A snapshot succeeded after a failure: the new segment is sound again. */
  recovered(): void {
    if (this.failure) this.log.info({ file: this.segment.file }, 'store journal writable again');
    this.failure = null;
  }

  /** Writes and fsyncs what is pending and closes the segment (the store's stop()). */
  close(): Promise<void> {
    clearInterval(this.timer);
    this.flush();
    return this.segment.retire();
  }
}
