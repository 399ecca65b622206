/**
 * Issue 10's reproduction on a real daemon and a real Meilisearch: one tenant's hostile log (nesting
 * past Meilisearch's limit, a lone surrogate, too many fields) in the same batch as another tenant's
 * healthy logs must not keep those out of the index, and is itself stored normalized.
 */
import { expect } from 'chai';
import { normalizeLogEntry, OVERFLOW_KEY } from '../../src/log-index/normalize.js';
import type { LogEntry } from '../../src/model.js';
import { device } from '../helpers/admin.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64 } from '../helpers/tcp-client.js';

function nested(levels: number): Record<string, unknown> {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v as Record<string, unknown>;
}

describe('one tenant\'s hostile log next to another tenant\'s healthy logs (Meilisearch)', function () {
  this.timeout(60_000);
  let daemon: Daemon;

  before(async () => {
    // A long delay and a big batch: every line below lands in the one same batch.
    daemon = await startDaemon({ meili: true, overrides: { logs: { flushDelayMs: 1000, batchSize: 1000 } } });
  });
  after(async () => {
    await daemon?.stop();
  });

  const poisons: Array<[string, string, (stored: LogEntry) => void]> = [
    [
      'nesting 200 levels deep',
      JSON.stringify([{ message: 'poison', f: nested(200) }]),
      (e) => {
        let v: unknown = e.fields.f;
        while (typeof v === 'object' && v !== null) v = (v as Record<string, unknown>).a;
        // Kept as text where it got too deep, not dropped.
        expect(v).to.be.a('string').and.match(/^\{"a":\{"a":/);
      },
    ],
    // JSON.stringify cannot express this one: the lone surrogate is written as the escape itself.
    ['a lone surrogate', '[{"message":"lone \\ud800 surrogate"}]', (e) => expect(e.message).to.equal('lone \ufffd surrogate')],
    // 66,000 short keys still fit in one protocol line (1 MiB) but are past Meilisearch's 65,535 fields.
    [
      '66,000 fields',
      JSON.stringify([{ message: 'wide', ...Object.fromEntries(Array.from({ length: 66_000 }, (_, i) => [`k${i.toString(36)}`, 0])) }]),
      (e) => expect(e.fields[OVERFLOW_KEY]).to.be.a('string'),
    ],
  ];

  for (const [what, poison, check] of poisons) {
    it(`indexes all 20 healthy logs of tenant B and the normalized log of A: ${what}`, async () => {
      const a = await daemon.register();
      const b = await daemon.register();
      const devA = await device(daemon, a);
      const devB = await device(daemon, b);
      try {
        devA.line(`l:${a}:${Buffer.from(poison).toString('base64')}`);
        devB.line(`l:${b}:${b64(Array.from({ length: 20 }, (_, i) => ({ message: `healthy ${i}` })))}`);
        await eventually(
          async () => {
            await daemon.ctx.batcher.flush();
            await daemon.ctx.logIndex.settle();
            const resB = await daemon.ctx.logIndex.search({ apiKey: b, limit: 100 });
            expect(resB.total).to.equal(20);
            const resA = await daemon.ctx.logIndex.search({ apiKey: a });
            expect(resA.total).to.equal(1);
            const [stored] = resA.hits;
            expect(stored).to.deep.equal(normalizeLogEntry(stored!));
            check(stored!);
          },
          { timeoutMs: 20_000, intervalMs: 200 },
        );
      } finally {
        devA.close();
        devB.close();
      }
    });
  }
});
