/**
 * Runs the LogIndex contract against both implementations, plus what belongs to one of them: the
 * memory index's bound per key, and the Meilisearch index's settings, start-up checks and its
 * handling of failed tasks.
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Meilisearch } from 'meilisearch';
import { pino } from 'pino';
import { resolveLogIndex } from '../../src/log-index/index.js';
import { loadConfig } from '../../src/config.js';
import { LogWriteRefused } from '../../src/log-index/log-index.js';
import { MEILI_LOG_SETTINGS, MeiliLogIndex, TASK_POLL_MS } from '../../src/log-index/meili-log-index.js';
import { MemoryLogIndex } from '../../src/log-index/memory-log-index.js';
import { freePort } from '../helpers/free-port.js';
import { sharedMeili, startMeiliServer, type MeiliServer } from '../helpers/processes.js';
import { capturingLogger } from './pubsub.contract.js';
import { freshKey, log, logIndexContract } from './log-index.contract.js';

const runId = `${Date.now().toString(36)}-${process.pid}`;
const indexName = (what: string) => `observerio-logs-test-${what}-${runId}`;

logIndexContract('MemoryLogIndex', () => new MemoryLogIndex());

logIndexContract('MeiliLogIndex', async () => {
  const m = await sharedMeili();
  return new MeiliLogIndex({ url: m.url, masterKey: m.masterKey, indexName: indexName('contract') });
});

describe('MemoryLogIndex (memory only)', () => {
  it('keeps at most maxPerKey logs per key, dropping the oldest, other keys untouched', async () => {
    const index = new MemoryLogIndex({ maxPerKey: 3 });
    const a = freshKey();
    const b = freshKey();
    const aLogs = [1, 2, 3, 4, 5].map((n) => log(a, { receivedAt: n }));
    await index.add(aLogs);
    await index.add([log(b, { receivedAt: 1 })]);
    const res = await index.search({ apiKey: a });
    expect(res.hits.map((h) => h.receivedAt)).to.deep.equal([5, 4, 3]);
    expect(res.total).to.equal(3);
    expect(index.evictedCount).to.equal(2);
    expect((await index.search({ apiKey: b })).total).to.equal(1);
  });

  it('returns copies: mutating a hit does not change the index', async () => {
    const index = new MemoryLogIndex();
    const key = freshKey();
    await index.add([log(key, { message: 'original', fields: { x: 1 } })]);
    const [hit] = (await index.search({ apiKey: key })).hits;
    hit!.message = 'changed';
    hit!.fields.x = 2;
    const [again] = (await index.search({ apiKey: key })).hits;
    expect(again!.message).to.equal('original');
    expect(again!.fields).to.deep.equal({ x: 1 });
  });
});

describe('MeiliLogIndex (Meilisearch only)', () => {
  let meili: MeiliServer;
  let client: Meilisearch;

  before(async () => {
    meili = await sharedMeili();
    client = new Meilisearch({ host: meili.url, apiKey: meili.masterKey });
  });

  const open = (name: string, logger = capturingLogger().logger) => new MeiliLogIndex({ url: meili.url, masterKey: meili.masterKey, indexName: name }, logger);

  it('creates its index with primary key id and applies its settings; a second start is harmless', async () => {
    const name = indexName('settings');
    const index = open(name);
    await index.start();
    await index.start();
    const raw = await client.getRawIndex(name);
    expect(raw.primaryKey).to.equal('id');
    const s = await client.index(name).getSettings();
    expect(s.filterableAttributes).to.have.members(MEILI_LOG_SETTINGS.filterableAttributes as string[]);
    expect(s.sortableAttributes).to.have.members(MEILI_LOG_SETTINGS.sortableAttributes as string[]);
    expect(s.searchableAttributes).to.deep.equal(['message', 'fieldsText', 'fields']);
    expect(s.rankingRules?.[0]).to.equal('sort');
    expect(s.typoTolerance?.enabled).to.equal(false);
    // Why the key is filtered through apiKeyHex: Meilisearch string filters ignore case.
    expect(s.filterableAttributes).not.to.include('apiKey');
  });

  it('refuses to start on an existing index with another primary key', async () => {
    const name = indexName('otherpk');
    await client.createIndex(name, { primaryKey: 'other' }).waitTask();
    let err: unknown;
    await open(name)
      .start()
      .catch((e: unknown) => (err = e));
    expect((err as Error).message).to.match(/primary key "other", expected "id"/);
  });

  it('rejects, logs and counts a failed write task; one failed for the index, not the documents, is not a refusal', async () => {
    const name = indexName('failing');
    await client.createIndex(name, { primaryKey: 'other' }).waitTask();
    const cap = capturingLogger();
    // Not started (start would refuse this index): the write is accepted, then fails in Meilisearch.
    const index = open(name, cap.logger);
    let err: unknown;
    await index.add([log(freshKey())]).catch((e: unknown) => (err = e));
    // Bisecting would refuse every log alike: retried instead, while the spool holds them.
    expect(err).to.be.instanceOf(Error);
    expect(err).not.to.be.instanceOf(LogWriteRefused);
    expect((err as Error).message).to.match(/index_primary_key_already_exists/);
    await index.settle();
    expect(index.failedTasks).to.equal(1);
    const rec = cap.records.find((r) => r.msg === 'Meilisearch log write task failed');
    expect(rec, JSON.stringify(cap.records)).to.not.equal(undefined);
    expect(rec!.taskUid).to.equal(index.lastTask);
  });

  it('refuses a write Meilisearch answers 4xx for its payload, and rejects an unreachable one as not refused', async () => {
    // A payload over the server's limit is a 413 on the request itself: private server, small limit.
    const small = await startMeiliServer(['--http-payload-size-limit', '100KB']);
    try {
      const index = new MeiliLogIndex({ url: small.url, masterKey: small.masterKey, indexName: 'small' });
      await index.start();
      const key = freshKey();
      await index.add([log(key, { message: 'fits' })]);
      let err: unknown;
      await index.add(Array.from({ length: 40 }, () => log(key, { message: 'x'.repeat(4000) }))).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(LogWriteRefused);
      expect((err as LogWriteRefused).reason).to.equal('payload_too_large');
    } finally {
      await small.stop();
    }
    const down = new MeiliLogIndex({ url: `http://127.0.0.1:${await freePort()}`, masterKey: null, indexName: 'x' });
    let err: unknown;
    await down.add([log(freshKey())]).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(Error);
    expect(err).not.to.be.instanceOf(LogWriteRefused);
  });

  it('stores fields as text, so no tenant can use up the index\'s attribute names', async () => {
    const name = indexName('attrs');
    const index = open(name);
    await index.start();
    const key = freshKey();
    const wide = log(key, { fields: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, { deep: i }])) });
    await index.add([wide]);
    await index.settle();
    const stats = await client.index(name).getStats();
    expect(Object.keys(stats.fieldDistribution).sort()).to.deep.equal(
      ['apiKey', 'apiKeyHex', 'deviceId', 'deviceIdHex', 'fieldsJson', 'fieldsText', 'id', 'level', 'message', 'receivedAt', 'sortNode', 'sortSeq', 'timestamp'].sort(),
    );
    expect((await index.search({ apiKey: key })).hits).to.deep.equal([wide]);
  });

  it('still reads documents written with fields as an object', async () => {
    const name = indexName('legacy');
    const index = open(name);
    await index.start();
    const key = freshKey();
    const old = log(key, { fields: { scene: 'crypt' } });
    const hex = (s: string) => Buffer.from(s).toString('hex');
    const [node, seq] = [old.id.split('-')[1], Number(old.id.split('-')[2])];
    await client
      .index(name)
      .addDocuments([{ ...old, apiKeyHex: hex(key), deviceIdHex: hex(old.deviceId!), sortNode: node, sortSeq: seq }])
      .waitTask();
    expect((await index.search({ apiKey: key })).hits).to.deep.equal([old]);
    expect((await index.search({ apiKey: key, q: 'crypt' })).total).to.equal(1);
  });

  it('skips (and logs) an entry whose id Meilisearch would refuse, indexing the rest of the batch', async () => {
    const cap = capturingLogger();
    const index = open(indexName('contract'), cap.logger);
    await index.start();
    const key = freshKey();
    const good = log(key);
    await index.add([log(key, { id: 'has spaces and ü' }), good]);
    await index.settle();
    expect(index.skippedEntries).to.equal(1);
    expect(index.failedTasks).to.equal(0);
    expect((await index.search({ apiKey: key })).hits.map((h) => h.id)).to.deep.equal([good.id]);
    expect(cap.records.some((r) => r.msg === 'log entry cannot be indexed; skipped')).to.equal(true);
  });

  it('follows many writes in flight with one task request per poll, asking for uncompressed answers', async () => {
    // A proxy in front of Meilisearch that notes every request and answer.
    const seen: Array<{ method: string; path: string; headers: IncomingHttpHeaders; encoding: string | undefined }> = [];
    const target = new URL(meili.url);
    const proxy = createServer((req, res) => {
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, encoding: answer.headers['content-encoding'] });
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const index = new MeiliLogIndex({ url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, masterKey: meili.masterKey, indexName: indexName('follow') });
      await index.start();
      const key = freshKey();
      const writes = 24;
      seen.length = 0;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: writes }, (_, i) => index.add([log(key, { message: `follow ${i}` })])));
      const elapsed = performance.now() - t0;
      const posts = seen.filter((r) => r.method === 'POST' && r.path.includes('/documents')).length;
      const polls = seen.filter((r) => r.method === 'GET' && r.path.startsWith('/tasks')).length;
      expect(posts).to.equal(writes);
      // One request per poll for all of them (a request per task would be `writes` per poll).
      expect(polls, `${polls} task requests in ${Math.round(elapsed)} ms`).to.be.at.most(Math.ceil(elapsed / TASK_POLL_MS) + 1);
      expect((await index.search({ apiKey: key, limit: 100 })).total).to.equal(writes);
      expect(seen.length).to.be.greaterThan(0);
      for (const r of seen) {
        expect(r.headers['accept-encoding'], `${r.method} ${r.path}`).to.equal('identity');
        expect(r.encoding, `${r.method} ${r.path}`).to.equal(undefined);
      }
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  it('reports a write queued while its task waits behind another, and no longer once Meilisearch processes it', async function () {
    this.timeout(60_000);
    const index = open(indexName('queued'));
    await index.start();
    const key = freshKey();
    // Big enough that Meilisearch processes each for many of the follower's polls.
    const many = (word: string) => Array.from({ length: 10_000 }, (_, i) => log(key, { message: `${word} ${i} some words to index` }));
    expect(index.queuedWrites).to.equal(0);
    // Another index's task first: ours waits behind it (Meilisearch processes one index's batch at a time).
    const other = indexName('queued-other');
    await client.createIndex(other, { primaryKey: 'id' }).waitTask();
    const ahead = await client.index(other).addDocuments(many('ahead').map((e) => ({ id: e.id, message: e.message })));
    const write = index.add(many('behind'));
    const samples: Array<{ queued: number }> = [];
    let done = false;
    void write.then(() => (done = true));
    while (!done) {
      samples.push({ queued: index.queuedWrites });
      await new Promise((r) => setTimeout(r, 5));
    }
    await write;
    expect((await client.tasks.getTask(ahead.taskUid)).status).to.equal('succeeded');
    // Queued for a while, then, still unfinished, seen processing.
    expect(samples.filter((x) => x.queued === 1).length, JSON.stringify(samples.map((x) => x.queued))).to.be.greaterThan((2 * TASK_POLL_MS) / 5);
    expect(samples.some((x) => x.queued === 0 && samples.indexOf(x) > samples.findIndex((y) => y.queued === 1))).to.equal(true);
    expect(index.queuedWrites).to.equal(0);
    expect((await index.search({ apiKey: key, q: 'behind' })).total).to.equal(10_000);
  });

  it('reports unhealthy when Meilisearch cannot be reached', async () => {
    const index = new MeiliLogIndex({ url: `http://127.0.0.1:${await freePort()}`, masterKey: null, indexName: 'x' });
    const h = await index.health();
    expect(h.ok).to.equal(false);
    expect(h.kind).to.equal('meilisearch');
    expect(h.detail).to.be.a('string').and.not.equal('');
  });
});

describe('resolveLogIndex', () => {
  const logger = pino({ level: 'silent' });
  const logs = loadConfig({ env: {} }).logs;
  it('is in memory without a Meilisearch URL', () => {
    expect(resolveLogIndex({ meiliUrl: null, meiliMasterKey: null, logs }, logger).kind).to.equal('memory');
  });
  it('is Meilisearch with a URL', () => {
    expect(resolveLogIndex({ meiliUrl: 'http://127.0.0.1:7700', meiliMasterKey: 'k', logs }, logger).kind).to.equal('meilisearch');
  });
});
