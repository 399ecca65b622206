/** What only the embedded store promises: its snapshot file survives restarts, corruption and crashes. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pino, type Logger } from 'pino';
import type { StoreConfig } from '../../../src/config.js';
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
