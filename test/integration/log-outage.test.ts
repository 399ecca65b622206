/**
 * Meilisearch going away under load (issue 10), on a real daemon and a private Meilisearch killed
 * with SIGKILL and restarted on the same data and port: every log the daemon accepted is searchable
 * once it is back, a daemon restart during the outage included (the spool on disk); past the spool's
 * bound exactly the dropped logs are counted on /metrics.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { device, metric, scrape } from '../helpers/admin.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { startMeiliServer, tempDir, type MeiliServer } from '../helpers/processes.js';
import { b64, type LineClient } from '../helpers/tcp-client.js';

describe('Meilisearch down under load', function () {
  this.timeout(120_000);
  let meili: MeiliServer;
  const daemons: Daemon[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    meili = await startMeiliServer();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const d of daemons.splice(0)) await d.stop();
    // Each test leaves the server up for the next one.
    if (!(await fetch(`${meili.url}/health`).then((r) => r.ok, () => false))) meili = await startMeiliServer([], { dir: meili.dir, port: meili.port });
  });
  after(async () => {
    await meili?.stop();
  });

  const start = async (logs: Record<string, unknown> = {}, dataDir?: string, indexName = `logs-outage-${randomBytes(4).toString('hex')}`) => {
    const d = await startDaemon({
      ...(dataDir ? { dataDir } : {}),
      overrides: { meiliUrl: meili.url, meiliMasterKey: meili.masterKey, logs: { indexName, ...logs } },
    });
    daemons.push(d);
    return d;
  };
  const restartMeili = async () => {
    meili = await startMeiliServer([], { dir: meili.dir, port: meili.port });
  };
  const searchable = async (d: Daemon, apiKey: string) => (await d.ctx.logIndex.search({ apiKey, limit: 0 })).total;

  it('loses none of the logs sent while it was killed and restarted', async () => {
    const d = await start();
    const apiKey = await d.register();
    const dev = await device(d, apiKey);
    clients.push(dev);
    let sent = 0;
    const line = () => {
      const batch = Array.from({ length: 50 }, () => ({ message: `load ${sent++}` }));
      dev.line(`l:${apiKey}:${b64(batch)}`);
    };
    const timer = setInterval(line, 10);
    try {
      await eventually(async () => expect(await searchable(d, apiKey)).to.be.greaterThan(200), { timeoutMs: 20_000 });
      await meili.kill();
      const atKill = sent;
      await eventually(() => expect(sent - atKill).to.be.greaterThan(1500), { timeoutMs: 20_000 });
      expect(d.ctx.batcher.stats().retrying).to.equal(true);
      await restartMeili();
      const atRestart = sent;
      await eventually(() => expect(sent - atRestart).to.be.greaterThan(500), { timeoutMs: 20_000 });
    } finally {
      clearInterval(timer);
    }
    await eventually(async () => expect(metric(await scrape(d), 'observerio_logs_received_total')).to.equal(sent), { timeoutMs: 10_000 });
    await eventually(async () => expect(await searchable(d, apiKey)).to.equal(sent), { timeoutMs: 60_000, intervalMs: 250 });
    const text = await scrape(d);
    expect(metric(text, 'observerio_logs_dropped_total')).to.equal(0);
    expect(metric(text, 'observerio_logs_rejected_total') ?? 0).to.equal(0);
    // Searchable can come a moment before the batcher hears its last tasks succeeded: wait for that too.
    await eventually(() => expect(d.ctx.batcher.stats()).to.include({ pending: 0, retrying: false }), { timeoutMs: 10_000 });
    expect(d.ctx.batcher.stats().failures).to.be.greaterThan(0);
  });

  it('delivers, after a daemon restart during the outage, the logs its spool kept on disk', async () => {
    const dataDir = tempDir('observerio-outage-').path;
    const indexName = `logs-outage-${randomBytes(4).toString('hex')}`;
    const first = await start({ flushDelayMs: 20 }, dataDir, indexName);
    const apiKey = await first.register();
    const dev = await device(first, apiKey);
    dev.line(`l:${apiKey}:${b64([{ message: 'before the outage' }])}`);
    // Confirmed, not only searchable: a write Meilisearch took but the daemon could not confirm is sent again.
    await eventually(() => expect(first.ctx.batcher.stats().written).to.equal(1), { timeoutMs: 10_000 });
    await meili.kill();
    dev.line(`l:${apiKey}:${b64(Array.from({ length: 300 }, (_, i) => ({ message: `during ${i}` })))}`);
    await eventually(() => expect(first.ctx.batcher.stats()).to.deep.include({ pending: 300, retrying: true }), { timeoutMs: 10_000 });
    await eventually(() => expect(first.ctx.batcher.stats().spool.files).to.be.greaterThan(0), { timeoutMs: 10_000 });
    dev.close();
    await first.stop();
    daemons.splice(daemons.indexOf(first), 1);
    expect(first.ctx.batcher.stats().dropped).to.equal(0);

    await restartMeili();
    // The embedded store kept the user; the new daemon reads the spool before anything else.
    const second = await start({ flushDelayMs: 20 }, dataDir, indexName);
    await eventually(async () => expect(await searchable(second, apiKey)).to.equal(301), { timeoutMs: 30_000, intervalMs: 250 });
    await eventually(() => expect(second.ctx.batcher.stats().spool).to.deep.include({ files: 0, bytes: 0 }));
  });

  it('past the spool bound counts exactly the dropped logs on /metrics, and delivers the rest', async () => {
    const d = await start({ maxPendingDocs: 50, batchSize: 1000 });
    const apiKey = await d.register();
    const dev = await device(d, apiKey);
    clients.push(dev);
    await meili.kill();
    dev.line(`l:${apiKey}:${b64(Array.from({ length: 200 }, (_, i) => ({ message: `over ${i}` })))}`);
    await eventually(async () => {
      const text = await scrape(d);
      expect(metric(text, 'observerio_logs_received_total')).to.equal(200);
      expect(metric(text, 'observerio_logs_dropped_total', { reason: 'spool_full' })).to.equal(150);
      expect(metric(text, 'observerio_logs_pending')).to.equal(50);
    });
    const tree = d.runtime.tree();
    expect(JSON.stringify(tree)).to.match(/"retrying":true/);
    await restartMeili();
    await eventually(async () => expect(await searchable(d, apiKey)).to.equal(50), { timeoutMs: 30_000, intervalMs: 250 });
    const hits = (await d.ctx.logIndex.search({ apiKey, limit: 1000 })).hits.map((h) => h.message);
    expect(new Set(hits)).to.deep.equal(new Set(Array.from({ length: 50 }, (_, i) => `over ${150 + i}`)));
    expect(metric(await scrape(d), 'observerio_logs_dropped_total')).to.equal(150);
  });
});
