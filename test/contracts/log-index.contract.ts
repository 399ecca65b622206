/**
 * The one LogIndex contract suite (CONVENTIONS.md §2): every implementation passes the same tests.
 * `log-index.test.ts` runs it against the in-memory and the Meilisearch implementation. Tests share
 * one index, as the daemon's tenants do, and isolate themselves by using fresh API keys.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { LogIndex } from '../../src/log-index/log-index.js';
import { normalizeLogEntry, OVERFLOW_KEY } from '../../src/log-index/normalize.js';
import type { LogEntry } from '../../src/model.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** A fresh API key: 12 characters of [A-Za-z0-9]. */
export function freshKey(alphabet = ALNUM): string {
  return [...randomBytes(12)].map((b) => alphabet[b % alphabet.length]).join('');
}

let seq = 0;
/** A log as the daemon builds it; ids follow `<receivedAt>-<node>-<seq>`. */
export function log(apiKey: string, over: Partial<LogEntry> = {}): LogEntry {
  seq += 1;
  const receivedAt = over.receivedAt ?? 1_700_000_000_000 + seq;
  return {
    id: `${receivedAt}-test-${seq}`,
    apiKey,
    deviceId: 'device-1',
    level: 'info',
    message: `message ${seq}`,
    timestamp: null,
    receivedAt,
    fields: {},
    ...over,
  };
}

/** `{ a: { a: … leaf … } }`, `levels` objects deep. */
export function nested(levels: number, leaf: unknown = 1): Record<string, unknown> {
  let v: unknown = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v as Record<string, unknown>;
}

export type LogIndexFactory = () => LogIndex | Promise<LogIndex>;

export function logIndexContract(name: string, factory: LogIndexFactory): void {
  describe(`LogIndex contract: ${name}`, () => {
    let index: LogIndex;

    before(async () => {
      index = await factory();
      await index.start();
    });

    after(async () => {
      await index?.stop();
    });

    async function addAll(...batches: LogEntry[][]): Promise<void> {
      for (const b of batches) await index.add(b);
      await index.settle();
    }

    const ids = (hits: LogEntry[]) => hits.map((h) => h.id);

    describe('health', () => {
      it('is ok once started', async () => {
        const h = await index.health();
        expect(h.ok, h.detail).to.equal(true);
        expect(h.kind).to.equal(index.kind);
      });
    });

    describe('add and search', () => {
      it('finds the two logs added for a key, newest first', async () => {
        const key = freshKey();
        const a = log(key, { receivedAt: 1000, message: 'first' });
        const b = log(key, { receivedAt: 2000, message: 'second' });
        await addAll([a, b]);
        const res = await index.search({ apiKey: key });
        expect(ids(res.hits)).to.deep.equal([b.id, a.id]);
        expect(res.total).to.equal(2);
      });

      it('returns each log exactly as added', async () => {
        const key = freshKey();
        const full = log(key, {
          deviceId: null,
          level: 'warn',
          message: 'Grüße aus Köln 🎮 日本語のログ',
          timestamp: 123123123,
          fields: { scene: 'castle', hp: 42, nested: { tags: ['a', 'b'], ok: true, none: null } },
        });
        await addAll([full]);
        const res = await index.search({ apiKey: key });
        expect(res.hits).to.deep.equal([full]);
      });

      it('treats add([]) as a no-op', async () => {
        await index.add([]);
        await index.settle();
      });

      it('returns everything for an empty or blank query', async () => {
        const key = freshKey();
        const logs = [log(key), log(key), log(key)];
        await addAll(logs);
        for (const q of [undefined, '', '   ']) {
          const res = await index.search({ apiKey: key, ...(q === undefined ? {} : { q }) });
          expect(res.total, `q=${JSON.stringify(q)}`).to.equal(3);
          expect(res.hits).to.have.length(3);
        }
      });

      it('finds nothing for a key without logs', async () => {
        const res = await index.search({ apiKey: freshKey() });
        expect(res).to.deep.equal({ hits: [], total: 0 });
      });
    });

    describe('text search', () => {
      let key: string;
      let disk: LogEntry;
      let diskFull: LogEntry;
      let castle: LogEntry;
      let cafe: LogEntry;
      let cjk: LogEntry;

      before(async () => {
        key = freshKey();
        disk = log(key, { message: 'disk almost full on save' });
        diskFull = log(key, { message: 'Disk FULL: cannot write save game' });
        castle = log(key, { message: 'player entered', fields: { scene: 'castle', details: { boss: 'dragon' } } });
        cafe = log(key, { message: 'Café crème ordered in Köln, overheating 🎮' });
        cjk = log(key, { message: '日本語のログ です' });
        await addAll([disk, diskFull, castle], [cafe, cjk]);
      });

      it('matches a word case-insensitively', async () => {
        const res = await index.search({ apiKey: key, q: 'DISK' });
        expect(ids(res.hits)).to.have.members([disk.id, diskFull.id]);
        expect(res.total).to.equal(2);
      });

      it('requires every word', async () => {
        const res = await index.search({ apiKey: key, q: 'disk cannot' });
        expect(ids(res.hits)).to.deep.equal([diskFull.id]);
      });

      it('matches the last word as a prefix', async () => {
        expect(ids((await index.search({ apiKey: key, q: 'overh' })).hits)).to.deep.equal([cafe.id]);
      });

      it('searches string fields, nested ones too', async () => {
        expect(ids((await index.search({ apiKey: key, q: 'castle' })).hits)).to.deep.equal([castle.id]);
        expect(ids((await index.search({ apiKey: key, q: 'dragon' })).hits)).to.deep.equal([castle.id]);
      });

      it('handles unicode: accents, case, emoji, CJK', async () => {
        for (const q of ['café', 'CAFÉ', 'cafe', 'köln', 'koln', 'crème', '🎮']) {
          expect(ids((await index.search({ apiKey: key, q })).hits), q).to.deep.equal([cafe.id]);
        }
        expect(ids((await index.search({ apiKey: key, q: 'ログ' })).hits)).to.deep.equal([cjk.id]);
      });

      it('matches a quoted phrase\'s words in any order within the log, as unquoted words', async () => {
        // Quotes are no phrase operator here (Meilisearch's word distances are not indexed, as the memory index keeps none).
        expect(ids((await index.search({ apiKey: key, q: '"save disk"' })).hits)).to.have.members([disk.id, diskFull.id]);
        expect(ids((await index.search({ apiKey: key, q: '"full disk"' })).hits)).to.have.members([disk.id, diskFull.id]);
      });

      it('finds nothing when a word matches no log', async () => {
        const res = await index.search({ apiKey: key, q: 'disk zebra' });
        expect(res).to.deep.equal({ hits: [], total: 0 });
      });
    });

    describe('filters', () => {
      let key: string;
      let logs: LogEntry[];

      before(async () => {
        key = freshKey();
        logs = [
          log(key, { receivedAt: 10_000, level: 'info', deviceId: 'dev-A', message: 'boot ok' }),
          log(key, { receivedAt: 20_000, level: 'error', deviceId: 'dev-A', message: 'boot failed' }),
          log(key, { receivedAt: 30_000, level: 'error', deviceId: 'DEV-A', message: 'boot failed again' }),
          log(key, { receivedAt: 40_000, level: 'warn', deviceId: null, message: 'boot slow' }),
        ];
        await addAll(logs);
      });
      const at = (i: number) => logs[i]!.id;

      it('by level, ignoring its case', async () => {
        expect(ids((await index.search({ apiKey: key, level: 'error' })).hits)).to.deep.equal([at(2), at(1)]);
        expect(ids((await index.search({ apiKey: key, level: 'ERROR' })).hits)).to.deep.equal([at(2), at(1)]);
        expect((await index.search({ apiKey: key, level: 'debug' })).total).to.equal(0);
      });

      it('by device, exactly (device ids are case-sensitive)', async () => {
        expect(ids((await index.search({ apiKey: key, device: 'dev-A' })).hits)).to.deep.equal([at(1), at(0)]);
        expect(ids((await index.search({ apiKey: key, device: 'DEV-A' })).hits)).to.deep.equal([at(2)]);
        expect((await index.search({ apiKey: key, device: 'dev-a' })).total).to.equal(0);
      });

      it('by time range, bounds inclusive', async () => {
        expect(ids((await index.search({ apiKey: key, from: 20_000, to: 30_000 })).hits)).to.deep.equal([at(2), at(1)]);
        expect(ids((await index.search({ apiKey: key, from: 30_000 })).hits)).to.deep.equal([at(3), at(2)]);
        expect(ids((await index.search({ apiKey: key, to: 10_000 })).hits)).to.deep.equal([at(0)]);
        expect((await index.search({ apiKey: key, from: 40_001 })).total).to.equal(0);
      });

      it('combined with each other and with text', async () => {
        const res = await index.search({ apiKey: key, q: 'failed', level: 'error', device: 'dev-A', from: 0, to: 50_000 });
        expect(ids(res.hits)).to.deep.equal([at(1)]);
        expect(res.total).to.equal(1);
      });

      it('by kind: the timeline\'s change entries apart from game logs, which cannot pass for one', async () => {
        const k = freshKey();
        const game = log(k, { receivedAt: 50_000, message: 'a game log' });
        const forged = log(k, { receivedAt: 60_000, message: 'a game log saying it is a change', fields: { kind: 'change' } });
        const change = log(k, { receivedAt: 70_000, message: 'me@example.com set speed 1 → 3', fields: { kind: 'change', name: 'speed' }, kind: 'change' });
        await addAll([game, forged, change]);
        expect(ids((await index.search({ apiKey: k, kind: 'change' })).hits)).to.deep.equal([change.id]);
        expect(ids((await index.search({ apiKey: k, kind: 'log' })).hits)).to.deep.equal([forged.id, game.id]);
        expect(ids((await index.search({ apiKey: k })).hits)).to.deep.equal([change.id, forged.id, game.id]);
        const [hit] = (await index.search({ apiKey: k, kind: 'change' })).hits;
        expect(hit).to.deep.equal(change);
        let err: unknown;
        await index.search({ apiKey: k, kind: 'other' as 'log' }).catch((e: unknown) => (err = e));
        expect(err).to.be.instanceOf(Error);
      });

      it('refuses a time bound that is not a finite number', async () => {
        for (const from of [Number.NaN, Number.POSITIVE_INFINITY]) {
          let err: unknown;
          await index.search({ apiKey: key, from }).catch((e: unknown) => (err = e));
          expect(err, String(from)).to.be.instanceOf(Error);
        }
      });
    });

    describe('order', () => {
      it('is newest first whatever order the logs were added in', async () => {
        const key = freshKey();
        const logs = [5, 1, 4, 2, 3].map((n) => log(key, { receivedAt: n * 1000 }));
        await addAll(logs.slice(0, 2), logs.slice(2));
        const res = await index.search({ apiKey: key });
        expect(res.hits.map((h) => h.receivedAt)).to.deep.equal([5000, 4000, 3000, 2000, 1000]);
      });

      it('breaks receivedAt ties by id, comparing the sequence as a number', async () => {
        const key = freshKey();
        const mk = (n: number) => log(key, { id: `7000-node1-${n}`, receivedAt: 7000 });
        await addAll([mk(9), mk(10), mk(2), mk(100)]);
        const res = await index.search({ apiKey: key });
        expect(ids(res.hits)).to.deep.equal(['7000-node1-100', '7000-node1-10', '7000-node1-9', '7000-node1-2']);
      });

      it('reads the sequence in base 36, as the gateway writes it', async () => {
        const key = freshKey();
        // 'z' (35) is older than '10' (36), and 'a' (10) newer than '9'; added out of order.
        const seqs = [35, 1296, 9, 36 ** 9 + 5, 10, 1295, 36];
        const id = (n: number) => `7000-node-a-${n.toString(36)}`;
        const logs = seqs.map((n) => log(key, { id: id(n), receivedAt: 7000 }));
        await addAll(logs.slice(0, 3), logs.slice(3));
        const res = await index.search({ apiKey: key });
        expect(ids(res.hits)).to.deep.equal([...seqs].sort((a, b) => b - a).map(id));
      });

      it('stays newest first with a text query, however well an older log matches', async () => {
        const key = freshKey();
        const older = log(key, { receivedAt: 1000, message: 'lag lag lag', fields: { note: 'lag' } });
        const newer = log(key, { receivedAt: 2000, message: 'some unrelated words then finally a lag spike' });
        await addAll([older, newer]);
        expect(ids((await index.search({ apiKey: key, q: 'lag' })).hits)).to.deep.equal([newer.id, older.id]);
      });
    });

    describe('limit', () => {
      let key: string;
      before(async function () {
        this.timeout(60_000);
        key = freshKey();
        await addAll(Array.from({ length: 1005 }, (_, i) => log(key, { receivedAt: 100_000 + i })));
      });

      it('defaults to 100, with total counting every match', async () => {
        const res = await index.search({ apiKey: key });
        expect(res.hits).to.have.length(100);
        expect(res.hits[0]!.receivedAt).to.equal(100_000 + 1004);
        expect(res.total).to.equal(1005);
      });

      it('returns at most the limit asked for, newest first', async () => {
        const res = await index.search({ apiKey: key, limit: 5 });
        expect(res.hits.map((h) => h.receivedAt)).to.deep.equal([1004, 1003, 1002, 1001, 1000].map((n) => 100_000 + n));
        const small = await index.search({ apiKey: key, q: 'message', to: 100_004, limit: 3 });
        expect(small.total).to.equal(5);
      });

      it('caps the limit at 1000', async () => {
        const res = await index.search({ apiKey: key, limit: 5000 });
        expect(res.hits).to.have.length(1000);
      });

      it('with limit 0 returns no hits but still a total', async () => {
        const res = await index.search({ apiKey: key, limit: 0, to: 100_009 });
        expect(res.hits).to.deep.equal([]);
        expect(res.total).to.equal(10);
      });
    });

    describe('hostile content (issue 10)', () => {
      let key: string;
      let other: string;
      let hostile: LogEntry[];
      let healthy: LogEntry[];

      before(async function () {
        this.timeout(60_000);
        key = freshKey();
        other = freshKey();
        hostile = [
          log(key, { message: 'deep', fields: { f: nested(200, 'abyssal') } }),
          log(key, { message: 'lone \ud800 surrogate', level: 'w\udc00rn', fields: { 'k\ud800': 'v\udfff', ok: '🎮' } }),
          log(key, { message: 'wide', fields: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, `v${i}`])) }),
          log(key, { message: 'm'.repeat(100_000), fields: { big: 'x'.repeat(200_000) } }),
          log(key, { message: 'proto', fields: JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}') as Record<string, unknown> }),
          log(key, { message: 'array', fields: { arr: Array.from({ length: 100_000 }, (_, i) => i) } }),
        ];
        healthy = Array.from({ length: 20 }, (_, i) => log(other, { message: `healthy ${i}`, fields: { i } }));
        // One batch, the hostile logs amid the healthy ones, as a batcher would send them.
        await addAll([...healthy.slice(0, 10), ...hostile, ...healthy.slice(10)]);
      });

      const byId = (a: LogEntry, b: LogEntry) => (a.id < b.id ? -1 : 1);

      it('stores every healthy log of the batch as it was', async () => {
        const res = await index.search({ apiKey: other, limit: 100 });
        expect(res.total).to.equal(20);
        expect([...res.hits].sort(byId)).to.deep.equal([...healthy].sort(byId));
      });

      it('stores each hostile log normalised, the same shape on every backend', async () => {
        const res = await index.search({ apiKey: key, limit: 100 });
        expect(res.total).to.equal(hostile.length);
        expect([...res.hits].sort(byId)).to.deep.equal(hostile.map((e) => normalizeLogEntry(e)).sort(byId));
        expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      });

      it('keeps what was too deep or too many as text that is still searchable', async () => {
        expect((await index.search({ apiKey: key, q: 'abyssal' })).hits.map((h) => h.message)).to.deep.equal(['deep']);
        expect((await index.search({ apiKey: key, q: 'v1999' })).hits.map((h) => h.message)).to.deep.equal(['wide']);
        const [wide] = (await index.search({ apiKey: key, q: 'wide' })).hits;
        expect(wide!.fields[OVERFLOW_KEY]).to.be.a('string');
      });

      it('finds a log by its message after a lone surrogate was replaced', async () => {
        const res = await index.search({ apiKey: key, q: 'surrogate' });
        expect(res.hits.map((h) => h.message)).to.deep.equal(['lone \ufffd surrogate']);
        expect(res.hits[0]!.level).to.equal('w\ufffdrn');
      });
    });

    describe('tenant isolation', () => {
      let a: string;
      let b: string;
      let bLogs: LogEntry[];

      before(async () => {
        // Two keys that differ only in letter case: Meilisearch compares filter strings without case.
        const base = freshKey(LETTERS);
        a = base;
        b = base.slice(0, 6) + base.slice(6).toUpperCase();
        bLogs = [log(b, { level: 'error', message: 'secret of B', deviceId: 'dev-B' }), log(b, { level: 'info', message: 'more of B' })];
        await addAll([log(a, { level: 'error', message: 'secret of A' })], bLogs);
      });

      const onlyKey = (hits: LogEntry[], key: string) => expect(hits.map((h) => h.apiKey).filter((k) => k !== key)).to.deep.equal([]);

      it('never shows one key the logs of another, even one differing only in case', async () => {
        const resA = await index.search({ apiKey: a, q: 'secret' });
        expect(resA.hits.map((h) => h.message)).to.deep.equal(['secret of A']);
        expect(resA.total).to.equal(1);
        const resB = await index.search({ apiKey: b });
        expect(resB.total).to.equal(2);
        onlyKey(resB.hits, b);
      });

      const hostile = (target: string) => [
        `x" OR apiKey = "${target}`,
        `x" OR apiKeyHex = "${Buffer.from(target).toString('hex')}`,
        `x\\" OR apiKey = \\"${target}`,
        `error" OR receivedAt > 0 OR level = "x`,
        `error') OR (1 = 1`,
      ];

      it('is not broken by hostile level values', async () => {
        for (const level of hostile(b)) {
          const res = await index.search({ apiKey: a, level });
          onlyKey(res.hits, a);
          expect(res.total, level).to.equal(0);
        }
      });

      it('is not broken by hostile device values', async () => {
        for (const device of hostile(b)) {
          const res = await index.search({ apiKey: a, device });
          onlyKey(res.hits, a);
          expect(res.total, device).to.equal(0);
        }
      });

      it('is not broken by hostile text queries', async () => {
        const res = await index.search({ apiKey: a, q: `" OR apiKey = "${b}` });
        onlyKey(res.hits, a);
      });

      it('matches a level holding quotes and backslashes exactly', async () => {
        const odd = `we"ird\\lev"el\\`;
        const key = freshKey();
        const l = log(key, { level: odd });
        await addAll([l, log(key, { level: 'weird' })]);
        expect(ids((await index.search({ apiKey: key, level: odd })).hits)).to.deep.equal([l.id]);
      });

      it('refuses a query whose API key is not 12 characters of [A-Za-z0-9]', async () => {
        for (const apiKey of ['', 'short', `${a}" OR apiKey = "${b}`, `${a.slice(0, 11)}"`, `${a.slice(0, 11)}é`]) {
          let err: unknown;
          await index.search({ apiKey }).catch((e: unknown) => (err = e));
          expect(err, apiKey).to.be.instanceOf(Error);
        }
      });
    });
  });
}
