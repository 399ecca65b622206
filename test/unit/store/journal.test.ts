/** The embedded store's journal on its own: numbering, group fsync, rotation, and replay of damaged files. */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino, type Logger } from 'pino';
import { Journal, replayJournal, segmentName } from '../../../src/store/journal.js';
import { eventually } from '../../helpers/eventually.js';
import { tempDir } from '../../helpers/processes.js';

const silent = pino({ level: 'silent' });

function capture(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void out.push(l) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A test operation that is not idempotent, so a record applied twice shows. */
type Inc = { by: number };
const parseInc = (raw: unknown): Inc => {
  if (typeof raw !== 'object' || raw === null || typeof (raw as Inc).by !== 'number') throw new Error('not an increment');
  return raw as Inc;
};

async function replayCount(dir: string, afterSeq = 0, logger: Logger = silent) {
  let total = 0;
  const report = await replayJournal(dir, afterSeq, parseInc, (op) => (total += op.by), logger);
  return { total, report };
}

function records(file: string): Array<{ s: number; op: unknown }> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { s: number; op: unknown });
}

describe('Journal', () => {
  let dir: { path: string; remove(): void };
  const open: Journal[] = [];

  beforeEach(() => {
    dir = tempDir('observerio-journal-');
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((j) => j.close().catch(() => undefined)));
    dir.remove();
  });

  function journal(fsyncMs = 60_000, lastSeq = 0, lastGeneration = 0): Journal {
    const j = new Journal({ dir: dir.path, fsyncMs, logger: silent }, lastSeq, lastGeneration);
    open.push(j);
    return j;
  }

  describe('append', () => {
    it('numbers records after lastSeq and writes one JSON line each, in a 0600 file', async () => {
      const j = journal(60_000, 41, 6);
      await Promise.all([j.append({ by: 1 }, false), j.append({ by: 2 }, true), j.append({ by: 3 }, false)]);
      expect(j.file).to.equal(join(dir.path, segmentName(7)));
      expect(records(j.file)).to.deep.equal([
        { s: 42, op: { by: 1 } },
        { s: 43, op: { by: 2 } },
        { s: 44, op: { by: 3 } },
      ]);
      expect(j.lastSeq).to.equal(44);
      expect(statSync(j.file).mode & 0o777).to.equal(0o600);
    });

    it('writes everything appended in one macrotask with one write, before the callers continue', async () => {
      const j = journal();
      const all = Array.from({ length: 500 }, (_, i) => j.append({ by: i }, false));
      await all[0];
      expect(j.stats.writes).to.equal(1);
      expect(records(j.file)).to.have.length(500);
      await Promise.all(all);
      expect(j.stats.fsyncs, 'nothing was durable, and the fsync period has not passed').to.equal(0);
    });

    it('fsyncs durable appends before resolving, one fsync for all appended together', async () => {
      const j = journal();
      await Promise.all(Array.from({ length: 100 }, (_, i) => j.append({ by: i }, true)));
      expect(j.stats).to.deep.include({ writes: 1, fsyncs: 1, records: 100 });
    });

    it('groups durable appends made during an fsync into the next one', async () => {
      const j = journal();
      const first = j.append({ by: 1 }, true);
      // After the flush microtask: the first fsync is running in the thread pool, and its callback
      // cannot run before this code yields to the event loop.
      await Promise.resolve();
      await Promise.resolve();
      expect(j.stats).to.deep.include({ writes: 1, fsyncs: 1 });
      const later = Array.from({ length: 50 }, (_, i) => j.append({ by: i }, true));
      await Promise.all([first, ...later]);
      expect(j.stats).to.deep.include({ writes: 2, fsyncs: 2, records: 51 });
    });

    it('fsyncs non-durable appends within fsyncMs, and not at all when idle', async () => {
      const j = journal(20);
      await j.append({ by: 1 }, false);
      await eventually(() => expect(j.stats.fsyncs).to.equal(1));
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 25));
      expect(j.stats.fsyncs).to.equal(1);
    });

    it('makes every append durable with fsyncMs 0', async () => {
      const j = journal(0);
      await j.append({ by: 1 }, false);
      expect(j.stats.fsyncs).to.equal(1);
    });
  });

  describe('rotate and removeBefore', () => {
    it('cuts at exactly the records appended so far; later ones go to the next segment', async () => {
      const j = journal();
      void j.append({ by: 1 }, false);
      void j.append({ by: 2 }, false);
      const first = j.file;
      const cut = j.rotate();
      expect(cut).to.deep.equal({ cutSeq: 2, generation: 2 });
      await j.append({ by: 3 }, true);
      expect(records(first).map((r) => r.s)).to.deep.equal([1, 2]);
      expect(records(j.file).map((r) => r.s)).to.deep.equal([3]);
      await j.removeBefore(cut.generation);
      expect(readdirSync(dir.path)).to.deep.equal([segmentName(2)]);
      // Replay from the cut (what a snapshot at seq 2 plus this segment gives).
      expect((await replayCount(dir.path, 2)).total).to.equal(3);
    });
  });

  describe('replay', () => {
    it('applies every segment in generation order, numerically', async () => {
      writeFileSync(join(dir.path, segmentName(9)), '{"s":1,"op":{"by":1}}\n{"s":2,"op":{"by":2}}\n');
      writeFileSync(join(dir.path, segmentName(10)), '{"s":3,"op":{"by":4}}\n');
      writeFileSync(join(dir.path, 'journal-x.ndjson'), 'not a segment');
      const { total, report } = await replayCount(dir.path);
      expect(total).to.equal(7);
      expect(report).to.deep.include({ applied: 3, skipped: 0, lastSeq: 3, lastGeneration: 10, tornTail: false, corrupt: null });
    });

    it('is idempotent: records the snapshot already holds are skipped, not applied twice', async () => {
      const j = journal();
      for (let i = 1; i <= 5; i++) void j.append({ by: 10 }, false);
      await j.append({ by: 1 }, false);
      const all = await replayCount(dir.path);
      expect(all.total).to.equal(51);
      // A snapshot at seq 4 holds 40; the crash came before the segment was removed.
      const after = await replayCount(dir.path, 4);
      expect(40 + after.total).to.equal(51);
      expect(after.report).to.deep.include({ applied: 2, skipped: 4, lastSeq: 6 });
      const again = await replayCount(dir.path, 6);
      expect(again.report).to.deep.include({ applied: 0, skipped: 6, lastSeq: 6 });
    });

    it('ignores a torn last record, counts it and warns', async () => {
      writeFileSync(join(dir.path, segmentName(1)), '{"s":1,"op":{"by":1}}\n{"s":2,"op":{"by":2}}\n{"s":3,"op":{"b');
      const log = capture();
      const { total, report } = await replayCount(dir.path, 0, log.logger);
      expect(total).to.equal(3);
      expect(report).to.deep.include({ applied: 2, lastSeq: 2, tornTail: true, corrupt: null });
      const warn = log.lines().find((l) => l.level === 40);
      expect(warn?.msg).to.match(/incomplete record/);
      expect(warn).to.include({ line: 3 });
      expect(readdirSync(dir.path), 'a torn tail is no reason to set the file aside').to.deep.equal([segmentName(1)]);
      expect(readFileSync(join(dir.path, segmentName(1)), 'utf8'), 'the torn record is cut off').to.equal('{"s":1,"op":{"by":1}}\n{"s":2,"op":{"by":2}}\n');
    });

    it('treats a last record without its newline as torn even when it parses', async () => {
      writeFileSync(join(dir.path, segmentName(1)), '{"s":1,"op":{"by":1}}\n{"s":2,"op":{"by":2}}');
      const { total, report } = await replayCount(dir.path);
      expect(total).to.equal(1);
      expect(report.tornTail).to.equal(true);
    });

    for (const [what, line, reason] of [
      ['a line that is not JSON', 'garbage', /not JSON/],
      ['JSON that is not a record', '[1,2,3]', /not a journal record/],
      ['a record whose operation is invalid', '{"s":2,"op":{"by":"two"}}', /invalid operation \(not an increment\)/],
      ['a record with a sequence gap', '{"s":5,"op":{"by":2}}', /sequence number 5 where 2 was expected/],
      ['an empty line', '', /not JSON/],
      ['NUL bytes', '\u0000\u0000\u0000', /not JSON/],
    ] as const) {
      it(`stops at ${what} in the middle, logs an error and sets the rest aside`, async () => {
        const seg1 = join(dir.path, segmentName(1));
        const seg2 = join(dir.path, segmentName(2));
        const content1 = `{"s":1,"op":{"by":1}}\n${line}\n{"s":3,"op":{"by":4}}\n`;
        writeFileSync(seg1, content1);
        writeFileSync(seg2, '{"s":4,"op":{"by":8}}\n');
        const log = capture();
        const { total, report } = await replayCount(dir.path, 0, log.logger);
        expect(total).to.equal(1);
        expect(report.applied).to.equal(1);
        expect(report.lastSeq).to.equal(1);
        expect(report.corrupt?.file).to.equal(seg1);
        expect(report.corrupt?.line).to.equal(2);
        expect(report.corrupt?.reason).to.match(reason);
        const aside = readdirSync(dir.path).sort();
        expect(aside).to.have.length(2);
        expect(aside[0]).to.match(/^journal-1\.ndjson\.corrupt-\d+$/);
        expect(aside[1]).to.match(/^journal-2\.ndjson\.corrupt-\d+$/);
        expect(readFileSync(join(dir.path, aside[0] as string), 'utf8'), 'kept as it was, for inspection').to.equal(content1);
        const err = log.lines().find((l) => l.level === 50);
        expect(err?.msg).to.match(/corrupt; replay stopped/);
        expect(err).to.include({ file: seg1, line: 2, replayed: 1 });
        // Nothing left to trip over at the next start.
        expect((await replayCount(dir.path)).report).to.deep.include({ applied: 0, corrupt: null });
      });
    }

    it('treats an incomplete record in a segment that is not the last as corruption', async () => {
      writeFileSync(join(dir.path, segmentName(1)), '{"s":1,"op":{"by":1}}\n{"s":2,"op":');
      writeFileSync(join(dir.path, segmentName(2)), '{"s":3,"op":{"by":4}}\n');
      const { total, report } = await replayCount(dir.path);
      expect(total).to.equal(1);
      expect(report.corrupt?.reason).to.match(/incomplete record before the end/);
    });

    it('sets aside a segment it cannot read instead of failing', async () => {
      mkdirSync(join(dir.path, segmentName(1)));
      const { report } = await replayCount(dir.path);
      expect(report.corrupt?.reason).to.match(/cannot read the segment/);
      expect(readdirSync(dir.path)[0]).to.match(/^journal-1\.ndjson\.corrupt-/);
    });

    it('replays a long journal with large records', async () => {
      const j = journal();
      const big = 'x'.repeat(200_000);
      for (let i = 0; i < 50; i++) void j.append({ by: 1, pad: big }, false);
      await j.append({ by: 1 }, true);
      appendFileSync(j.file, '{"s":52,"op":{"by":1,"pad":"xxxx');
      const { total, report } = await replayCount(dir.path);
      expect(total).to.equal(51);
      expect(report.tornTail).to.equal(true);
    });
  });

  it('close fsyncs what is pending and closes; nothing after it', async () => {
    const j = new Journal({ dir: dir.path, fsyncMs: 60_000, logger: silent }, 0, 0);
    void j.append({ by: 1 }, false);
    await j.close();
    expect(j.stats.fsyncs).to.equal(1);
    expect(records(j.file)).to.have.length(1);
  });

  describe('a failed write', () => {
    before(function () {
      if (!existsSync('/dev/full')) this.skip();
    });

    it('rejects the batch, refuses later appends without numbering them, and recovers on a new segment', async () => {
      const log = capture();
      const j = new Journal({ dir: dir.path, fsyncMs: 60_000, logger: log.logger }, 0, 0);
      open.push(j);
      await j.append({ by: 1 }, true);
      // The next segment is /dev/full: every write(2) to it fails with ENOSPC.
      symlinkSync('/dev/full', join(dir.path, segmentName(2)));
      j.rotate();
      const failed = await j.append({ by: 2 }, false).then(() => null, (err: Error) => err);
      expect(failed).to.have.property('code', 'ENOSPC');
      expect(j.failure).to.have.property('code', 'ENOSPC');
      expect(log.lines().find((l) => l.level === 50)?.msg).to.match(/journal write failed/);
      const refused = await j.append({ by: 3 }, true).then(() => null, (err: Error) => err);
      expect(refused).to.equal(j.failure);
      expect(j.lastSeq, 'the refused record took no number').to.equal(2);

      const { cutSeq, generation } = j.rotate();
      expect(cutSeq).to.equal(2);
      j.recovered();
      expect(j.failure).to.equal(null);
      await j.append({ by: 4 }, true);
      expect(records(j.file)).to.deep.equal([{ s: 3, op: { by: 4 } }]);
      await j.removeBefore(generation);
      expect(readdirSync(dir.path)).to.deep.equal([segmentName(3)]);
    });
  });
});
