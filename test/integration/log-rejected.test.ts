/**
 * A log Meilisearch refuses even after normalisation (here: larger than a private server's payload
 * limit) is bisected out of its batch on a real daemon: the other tenant's logs of the batch are
 * stored, and the refused one is counted on /metrics, shown in the admin tree and answered to its
 * sender as e:log_rejected.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { device, metric, scrape } from '../helpers/admin.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { startMeiliServer, type MeiliServer } from '../helpers/processes.js';
import { b64 } from '../helpers/tcp-client.js';

describe('a log Meilisearch refuses, in a batch with other tenants\' logs', function () {
  this.timeout(60_000);
  let meili: MeiliServer;
  let daemon: Daemon;

  before(async () => {
    meili = await startMeiliServer(['--http-payload-size-limit', '40KB']);
    daemon = await startDaemon({
      overrides: { meiliUrl: meili.url, meiliMasterKey: meili.masterKey, logs: { indexName: `logs-${randomBytes(4).toString('hex')}`, flushDelayMs: 1000, batchSize: 1000 } },
    });
  });
  after(async () => {
    await daemon?.stop();
    await meili?.stop();
  });

  it('stores the 20 healthy logs, and reports the refused one by metric, tree and e:log_rejected', async () => {
    const a = await daemon.register();
    const b = await daemon.register();
    const devA = await device(daemon, a, 'sender');
    const devB = await device(daemon, b);
    try {
      // Within every normalisation limit (16 KiB message, 64 KiB fields), but past the server's 40 KB.
      devA.line(`l:${a}:${b64([{ message: 'big '.repeat(4000), blob: 'y'.repeat(50_000) }])}`);
      devB.line(`l:${b}:${b64(Array.from({ length: 20 }, (_, i) => ({ message: `healthy ${i}` })))}`);
      const reply = await devA.next(20_000);
      expect(reply).to.match(/^e:log_rejected:log \S+ refused by the log index \(payload_too_large\); not stored$/);
      await eventually(async () => expect((await daemon.ctx.logIndex.search({ apiKey: b, limit: 0 })).total).to.equal(20), { timeoutMs: 20_000 });
      expect((await daemon.ctx.logIndex.search({ apiKey: a, limit: 0 })).total).to.equal(0);
      expect(devB.lines).to.deep.equal(['OK']);
      // Searchable can come a poll before the daemon confirms the write and counts it.
      await eventually(async () => {
        const text = await scrape(daemon);
        expect(metric(text, 'observerio_logs_rejected_total', { reason: 'payload_too_large' })).to.equal(1);
        expect(metric(text, 'observerio_logs_indexed_total')).to.equal(20);
      });
      const logs = JSON.stringify(daemon.runtime.tree());
      expect(logs).to.match(/"rejected":1/);
      expect(logs).to.match(/"rejectedByReason":\{"payload_too_large":1\}/);
    } finally {
      devA.close();
      devB.close();
    }
  });
});
