/**
 * documentLines: the NDJSON line the Meilisearch index sends for an entry is made with a per-batch
 * cache of hex copies, and must stay exactly the JSON of the document (meiliDocument) whatever the
 * entry holds and however keys and devices alternate within a batch.
 */
import { expect } from 'chai';
import type { LogEntry } from '../../../src/model.js';
import { documentLines, meiliDocument } from '../../../src/log-index/meili-log-index.js';
import { normalizeLogEntry } from '../../../src/log-index/normalize.js';

const entry = (over: Partial<LogEntry> = {}): LogEntry => ({
  id: '1700000000000-node-a-1z',
  apiKey: 'DocLineKey01',
  deviceId: 'dev-1',
  level: 'info',
  message: 'hello',
  timestamp: null,
  receivedAt: 1_700_000_000_000,
  fields: {},
  ...over,
});

const odd = 'quote " backslash \\ newline \n tab \t nul \u0000 é 🎮 \u2028';

const entries: LogEntry[] = [
  entry(),
  entry({ deviceId: null }),
  entry({ apiKey: 'OtherKey0002', deviceId: 'dev-1' }),
  entry({ deviceId: 'dev-1' }),
  entry({ id: '1700000000001-other-node-10', receivedAt: 1_700_000_000_001 }),
  entry({ id: 'no-order-parts' }),
  entry({ level: odd, message: odd, timestamp: 1_699_999_999_999.5 }),
  entry({ deviceId: odd, apiKey: `${odd}key` }),
  entry({ fields: { scene: 'crypt', n: 3, nested: { a: [1, 'two', { b: odd }] }, f: -0, big: 1e21 } }),
  entry({ kind: 'change', fields: { var: 'x', from: 1, to: 2 } }),
  entry({ timestamp: Number.NaN as unknown as number }),
  entry({ message: 'lone \uD800 surrogate' }),
];

describe('Meilisearch log documents (documentLines)', () => {
  it('writes each entry as exactly the JSON of its document, caches and all', () => {
    const lineOf = documentLines();
    for (const e of [...entries, ...entries.slice().reverse(), ...entries]) {
      const normal = normalizeLogEntry(e);
      expect(lineOf(normal), JSON.stringify(e)).to.equal(JSON.stringify(meiliDocument(e)));
    }
  });

  it('throws, as the document does, for an entry without an API key, so the entry is skipped', () => {
    const bad = { ...entry(), apiKey: undefined } as unknown as LogEntry;
    expect(() => meiliDocument(bad)).to.throw();
    expect(() => documentLines()(normalizeLogEntry(bad))).to.throw();
  });
});
