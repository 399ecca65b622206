/** What only the embedded store promises: its snapshot file survives restarts, corruption and crashes. */
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pino, type Logger } from 'pino';
import type { StoreConfig } from '../../../src/config.js';
import { ObserverioError } from '../../../src/errors.js';
import { segmentName } from '../../../src/store/journal.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { eventually } from '../../helpers/eventually.js';
import { tempDir } from '../../helpers/processes.js';

const cfg: StoreConfig = { snapshotIntervalMs: 0, sessionTtlMs: 60_000, outboxMaxPerKey: 100, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 };
const API_KEY = 'AAAAAAAAAAAA';

function capture(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void out.push(l) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('MemoryStore', () => {
  let dir: { path: string; remove(): void };
  const running: MemoryStore[] = [];

  beforeEach(() => {
    dir = tempDir('observerio-memstore-');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop().catch(() => undefined)));
    dir.remove();
  });

  async function started(opts: Partial<StoreConfig> = {}, logger?: Logger, dataDir: string | null = dir.path): Promise<MemoryStore> {
    const s = new MemoryStore({ ...cfg, ...opts }, { dataDir, ...(logger ? { logger } : {}) });
    await s.start();
    running.push(s);
    return s;
  }

  describe('snapshot', () => {
    it('carries users, sessions, variables and outbox across stop and start', async () => {
      const a = await started();
      const u = await a.createUser('Round@Trip.example', 'pw');
      const s = await a.createSession(u, 60_000);
      const gone = await a.createSession(u, 60_000);
      await a.deleteSession(gone.token);
      await a.setVars(u.apiKey, [
        { name: 'b', type: 'integer', value: '1' },
        { name: 'a', type: 'string', value: 'x' },
      ]);
      await a.outboxPush(u.apiKey, [
        { name: 'z', type: 'string', value: '1' },
        { name: 'y', type: 'string', value: '2' },
      ]);
      await a.stop();

      const b = await started();
      expect(await b.authenticate('round@trip.example', 'pw')).to.deep.equal(u);
      expect(await b.authenticate('round@trip.example', 'wrong')).to.equal(null);
      expect(await b.verifyApiKey(u.apiKey)).to.equal(true);
      expect(await b.getSession(s.token)).to.deep.equal(s);
      expect(await b.getSession(gone.token)).to.equal(null);
      expect(await b.getVars(u.apiKey)).to.deep.equal([
        { name: 'b', type: 'integer', value: '1' },
        { name: 'a', type: 'string', value: 'x' },
      ]);
      expect((await b.outboxTake(u.apiKey)).map((v) => v.name)).to.deep.equal(['z', 'y']);
      let err: unknown;
      await b.createUser('ROUND@trip.example', 'x').catch((e: unknown) => (err = e));
      expect(err).to.have.property('code', 'email_taken');
    });

    it('keeps no plaintext password, is private to the owner and leaves no temp files', async () => {
      const a = await started();
      await a.createUser('secret@example.com', 'plaintext-password-123');
      await a.stop();
      const file = join(dir.path, 'store.json');
      const text = readFileSync(file, 'utf8');
      expect(text).to.not.include('plaintext-password-123');
      expect(text).to.match(/"passwordHash":"scrypt\$/);
      expect(statSync(file).mode & 0o777).to.equal(0o600);
      expect(readdirSync(dir.path)).to.deep.equal(['store.json']);
    });

    it('drops sessions that expired while the daemon was down', async () => {
      const a = await started();
      const u = await a.createUser('ttl@example.com', 'pw');
      const short = await a.createSession(u, 100);
      const long = await a.createSession(u, 60_000);
      await a.stop();
      await eventually(() => expect(Date.now()).to.be.greaterThan(short.expiresAt));
      const b = await started();
      expect(await b.getSession(short.token)).to.equal(null);
      expect(await b.getSession(long.token)).to.deep.equal(long);
      await b.stop();
      expect(JSON.stringify(JSON.parse(readFileSync(join(dir.path, 'store.json'), 'utf8')))).to.not.include(short.token);
    });

    it('is written every snapshotIntervalMs without a stop', async () => {
      const a = await started({ snapshotIntervalMs: 20 });
      await a.setVars(API_KEY, [{ name: 'periodic', type: 'string', value: '1' }]);
      await eventually(() => expect(readFileSync(join(dir.path, 'store.json'), 'utf8')).to.include('"periodic"'));
      await a.setVars(API_KEY, [{ name: 'periodic', type: 'string', value: 'second' }]);
      await eventually(() => expect(readFileSync(join(dir.path, 'store.json'), 'utf8')).to.include('"second"'));
    });

    it('creates a missing dataDir', async () => {
      const nested = join(dir.path, 'a', 'b');
      const a = await started({}, undefined, nested);
      await a.setVars(API_KEY, [{ name: 'x', type: 'string', value: '1' }]);
      await a.stop();
      expect(readdirSync(nested)).to.deep.equal(['store.json']);
    });

    it('does not keep the process alive with its timers', function () {
      this.timeout(20_000);
      const modUrl = new URL('../../../src/store/memory-store.ts', import.meta.url).href;
      const code = `
        import { MemoryStore } from ${JSON.stringify(modUrl)};
        const s = new MemoryStore({ snapshotIntervalMs: 50, sessionTtlMs: 1000, outboxMaxPerKey: 10, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 }, { dataDir: ${JSON.stringify(dir.path)} });
        await s.start();
        await s.setVars('AAAAAAAAAAAA', [{ name: 'x', type: 'string', value: '1' }]);`;
      const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        cwd: fileURLToPath(new URL('../../../', import.meta.url)),
        timeout: 15_000,
        encoding: 'utf8',
      });
      expect(res.error, 'the process should exit on its own').to.equal(undefined);
      expect(res.status, res.stderr).to.equal(0);
    });
  });

  describe('journal', () => {
    /** A store that is never stopped: what kill -9 leaves behind, as far as the files go. */
    async function crashed(opts: Partial<StoreConfig> = {}, logger?: Logger): Promise<MemoryStore> {
      const s = new MemoryStore({ ...cfg, ...opts }, { dataDir: dir.path, ...(logger ? { logger } : {}) });
      await s.start();
      return s;
    }
    const segments = () => readdirSync(dir.path).filter((f) => /^journal-\d+\.ndjson$/.test(f));
    const snapshotSeq = () => (JSON.parse(readFileSync(join(dir.path, 'store.json'), 'utf8')) as { seq: number }).seq;

    it('keeps every acknowledged change without a stop, and compacts it on the next start', async () => {
      const a = await crashed();
      const u = await a.createUser('Crash@Example.com', 'pw');
      const s = await a.createSession(u, 60_000);
      const gone = await a.createSession(u, 60_000);
      await a.deleteSession(gone.token);
      await a.setVars(u.apiKey, [
        { name: 'b', type: 'integer', value: '1' },
        { name: 'a', type: 'string', value: 'x' },
      ]);
      await a.setVars(u.apiKey, [{ name: 'b', type: 'integer', value: '2' }]);
      await a.outboxPush(u.apiKey, [
        { name: 'z', type: 'string', value: '1' },
        { name: 'y', type: 'string', value: '2' },
      ]);
      await a.outboxPush(API_KEY, [{ name: 'taken', type: 'string', value: '1' }]);
      expect(await a.outboxTake(API_KEY)).to.have.length(1);
      expect(existsSync(join(dir.path, 'store.json')), 'nothing was snapshotted: it is all in the journal').to.equal(false);

      const log = capture();
      const b = await started({}, log.logger);
      expect(await b.authenticate('crash@example.com', 'pw')).to.deep.equal(u);
      expect(await b.verifyApiKey(u.apiKey)).to.equal(true);
      expect(await b.getSession(s.token)).to.deep.equal(s);
      expect(await b.getSession(gone.token)).to.equal(null);
      expect(await b.getVars(u.apiKey)).to.deep.equal([
        { name: 'b', type: 'integer', value: '2' },
        { name: 'a', type: 'string', value: 'x' },
      ]);
      expect(await b.outboxLength(API_KEY)).to.equal(0);
      expect((await b.outboxTake(u.apiKey)).map((v) => v.name)).to.deep.equal(['z', 'y']);
      expect(log.lines().find((l) => l.msg === 'store journal replayed')).to.include({ applied: 9, skipped: 0 });
      // Compacted at start: the snapshot holds the replayed records, one fresh segment remains.
      expect(snapshotSeq()).to.equal(9);
      expect(segments()).to.deep.equal([segmentName(2)]);
      await b.stop();
      expect(readdirSync(dir.path)).to.deep.equal(['store.json']);
    });

    it('keeps a deleted variable deleted without a stop', async () => {
      const a = await crashed();
      await a.setVars(API_KEY, [
        { name: 'keep', type: 'string', value: '1' },
        { name: 'drop', type: 'string', value: '2' },
      ]);
      expect(await a.deleteVar(API_KEY, 'drop')).to.equal(true);
      const b = await started();
      expect(await b.getVars(API_KEY)).to.deep.equal([{ name: 'keep', type: 'string', value: '1' }]);
      await b.stop();
    });

    it('journals only plain variables, however a caller built them', async () => {
      const a = await crashed();
      const extra = { name: 'n', type: 'string', value: 'v', secret: 'not for the journal' };
      await a.setVars(API_KEY, [extra]);
      await a.outboxPush(API_KEY, [extra]);
      expect(readFileSync(join(dir.path, segmentName(1)), 'utf8')).to.not.include('not for the journal');
    });

    it('does not apply twice what a snapshot already holds (crash before the old segments were removed)', async () => {
      const a = await crashed();
      for (let i = 0; i < 5; i++) await a.outboxPush(API_KEY, [{ name: `v${i}`, type: 'string', value: String(i) }]);
      await a.outboxTake(API_KEY);
      await a.outboxPush(API_KEY, [{ name: 'last', type: 'string', value: '1' }]);
      copyFileSync(join(dir.path, segmentName(1)), join(dir.path, 'saved'));
      await (await crashed()).stop();
      // Put the already-compacted segment back, as if the crash came between rename and unlink.
      copyFileSync(join(dir.path, 'saved'), join(dir.path, segmentName(1)));
      const log = capture();
      const c = await started({}, log.logger);
      expect(await c.outboxTake(API_KEY)).to.deep.equal([{ name: 'last', type: 'string', value: '1' }]);
      expect(log.lines().find((l) => l.msg === 'store journal replayed')).to.include({ applied: 0, skipped: 7 });
    });

    it('ignores a torn last record and keeps everything before it', async () => {
      const a = await crashed();
      await a.setVars(API_KEY, [{ name: 'one', type: 'string', value: '1' }]);
      await a.setVars(API_KEY, [{ name: 'two', type: 'string', value: '2' }]);
      appendFileSync(join(dir.path, segmentName(1)), '{"s":3,"op":{"t":"vars.set","apiKey":"AAAAAAAAAAAA","vars":[{"name":"thr');
      const log = capture();
      const b = await started({}, log.logger);
      expect((await b.getVars(API_KEY)).map((v) => v.name)).to.deep.equal(['one', 'two']);
      expect(log.lines().find((l) => l.level === 40)?.msg).to.match(/incomplete record/);
      // The next record is numbered 3 again and a later start replays it.
      await b.setVars(API_KEY, [{ name: 'three', type: 'string', value: '3' }]);
      const c = await crashed();
      expect((await c.getVars(API_KEY)).map((v) => v.name)).to.deep.equal(['one', 'two', 'three']);
    });

    it('stops replay at a corrupt record, keeps it aside, and runs on with what came before', async () => {
      const a = await crashed();
      for (const name of ['one', 'two', 'three']) await a.setVars(API_KEY, [{ name, type: 'string', value: name }]);
      const file = join(dir.path, segmentName(1));
      const lines = readFileSync(file, 'utf8').split('\n');
      lines[1] = '{"s":2,"op":{"t":"vars.set","apiKey":"AAAAAAAAAAAA","vars":"not a list"}}';
      writeFileSync(file, lines.join('\n'));
      const log = capture();
      const b = await started({}, log.logger);
      expect((await b.getVars(API_KEY)).map((v) => v.name)).to.deep.equal(['one']);
      const err = log.lines().find((l) => l.level === 50);
      expect(err?.msg).to.match(/journal is corrupt/);
      expect(err).to.include({ file, line: 2 });
      const aside = readdirSync(dir.path).filter((f) => f.startsWith(`${segmentName(1)}.corrupt-`));
      expect(aside).to.have.length(1);
      expect(readFileSync(join(dir.path, aside[0] as string), 'utf8')).to.include('not a list');
      await b.setVars(API_KEY, [{ name: 'after', type: 'string', value: '1' }]);
      const c = await crashed();
      expect((await c.getVars(API_KEY)).map((v) => v.name)).to.deep.equal(['one', 'after']);
    });

    it('compacts into the snapshot once the journal outgrows journalCompactBytes', async () => {
      const a = await crashed({ journalCompactBytes: 4096 });
      const value = 'x'.repeat(200);
      for (let i = 0; i < 200; i++) await a.setVars(API_KEY, [{ name: `v${i % 10}`, type: 'string', value: `${i}${value}` }]);
      await eventually(() => expect(snapshotSeq()).to.be.greaterThan(0));
      await eventually(() => expect(segments()).to.have.length(1));
      expect(segments()[0]).to.not.equal(segmentName(1));
      const b = await crashed();
      const vars = await b.getVars(API_KEY);
      expect(vars).to.have.length(10);
      expect(vars[9]?.value).to.equal(`199${value}`);
    });

    it('fsyncs every change before answering with journalFsyncMs 0, and still keeps them all', async () => {
      const a = await crashed({ journalFsyncMs: 0 });
      await Promise.all(Array.from({ length: 50 }, (_, i) => a.setVars(API_KEY, [{ name: `v${i}`, type: 'string', value: '1' }])));
      const b = await crashed();
      expect(await b.getVars(API_KEY)).to.have.length(50);
    });

    it('answers unavailable while the journal cannot be written, then recovers with a snapshot', async function () {
      if (!existsSync('/dev/full')) this.skip();
      const log = capture();
      // journalCompactBytes 1: every write past the first starts a compaction, which opens the next segment.
      const a = await started({ journalCompactBytes: 1 }, log.logger);
      // The next segment is /dev/full: every write(2) to it fails with ENOSPC.
      symlinkSync('/dev/full', join(dir.path, segmentName(2)));
      await a.setVars(API_KEY, [{ name: 'before', type: 'string', value: '1' }]);
      await a.setVars(API_KEY, [{ name: 'rotates', type: 'string', value: '1' }]);
      await eventually(() => expect(snapshotSeq()).to.equal(2));
      const err = await a.setVars(API_KEY, [{ name: 'lost', type: 'string', value: '1' }]).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(ObserverioError);
      expect((err as ObserverioError).code).to.equal('unavailable');
      expect((await a.health()).ok).to.equal(false);
      await eventually(() => a.setVars(API_KEY, [{ name: 'after', type: 'string', value: '1' }]), { timeoutMs: 10_000, intervalMs: 100 });
      expect((await a.health()).ok).to.equal(true);
      expect(log.lines().some((l) => l.msg === 'store journal writable again')).to.equal(true);
      const b = await crashed();
      const names = (await b.getVars(API_KEY)).map((v) => v.name);
      // What was refused may still be there (it changed memory, and the recovery snapshot holds memory).
      expect(names.filter((n) => n !== 'lost')).to.deep.equal(['before', 'rotates', 'after']);
    });
  });

  describe('corrupt snapshot', () => {
    for (const [what, content] of [
      ['invalid JSON', '{"version":1,"users":[{"email":'],
      ['JSON of the wrong shape', JSON.stringify({ version: 1, users: 'nope' })],
      ['an unknown version', JSON.stringify({ version: 99, savedAt: 0, users: [], sessions: [], vars: [], outbox: [] })],
    ] as const) {
      it(`moves ${what} aside with a warning and starts empty`, async () => {
        writeFileSync(join(dir.path, 'store.json'), content);
        const log = capture();
        const a = await started({}, log.logger);
        const aside = readdirSync(dir.path).filter((f) => /^store\.json\.corrupt-\d+$/.test(f));
        expect(aside).to.have.length(1);
        expect(readFileSync(join(dir.path, aside[0] ?? ''), 'utf8')).to.equal(content);
        const warn = log.lines().find((l) => l.level === 40);
        expect(warn?.msg).to.match(/unreadable/);
        expect(warn?.movedTo).to.equal(join(dir.path, aside[0] ?? ''));

        expect(await a.getVars(API_KEY)).to.deep.equal([]);
        await a.setVars(API_KEY, [{ name: 'fresh', type: 'string', value: '1' }]);
        await a.stop();
        const b = await started();
        expect(await b.getVars(API_KEY)).to.deep.equal([{ name: 'fresh', type: 'string', value: '1' }]);
      });
    }

    it('moves aside a store.json that cannot be read as a file', async () => {
      // A directory in its place: readFile fails with EISDIR.
      mkdirSync(join(dir.path, 'store.json'));
      const a = await started();
      expect(readdirSync(dir.path).some((f) => f.startsWith('store.json.corrupt-'))).to.equal(true);
      await a.setVars(API_KEY, [{ name: 'x', type: 'string', value: '1' }]);
      await a.stop();
      expect(statSync(join(dir.path, 'store.json')).isFile()).to.equal(true);
    });
  });

  describe('stop', () => {
    it('never writes over a snapshot it has not loaded', async () => {
      writeFileSync(join(dir.path, 'store.json'), 'left alone');
      const s = new MemoryStore(cfg, { dataDir: dir.path });
      await s.setVars(API_KEY, [{ name: 'x', type: 'string', value: '1' }]);
      await s.stop();
      expect(readFileSync(join(dir.path, 'store.json'), 'utf8')).to.equal('left alone');
    });
  });

  describe('without a dataDir', () => {
    it('writes no file anywhere it could reach', async () => {
      const cwd = process.cwd();
      process.chdir(dir.path);
      try {
        const a = await started({ snapshotIntervalMs: 10 }, undefined, null);
        await a.setVars(API_KEY, [{ name: 'x', type: 'string', value: '1' }]);
        await a.createUser('nofile@example.com', 'pw');
        await a.stop();
        expect(readdirSync(dir.path)).to.deep.equal([]);
        expect((await a.health()).ok).to.equal(true);
      } finally {
        process.chdir(cwd);
      }
    });
  });
});
