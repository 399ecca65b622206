import { expect } from 'chai';
import { pino } from 'pino';
import { freePort } from '../../helpers/free-port.js';
import { resolveStore } from '../../../src/store/index.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { RedisStore } from '../../../src/store/redis-store.js';

const store = { snapshotIntervalMs: 0, sessionTtlMs: 1000, outboxMaxPerKey: 10, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 };
const logger = pino({ level: 'silent' });

describe('resolveStore', () => {
  it('is the memory store without a Redis URL', () => {
    const s = resolveStore({ redisUrl: null, dataDir: '/nonexistent/observerio', store }, logger);
    expect(s).to.be.instanceOf(MemoryStore);
    expect(s.kind).to.equal('memory');
  });

  it('is the Redis store with a Redis URL, and does not connect until started', async () => {
    const port = await freePort();
    const s = resolveStore({ redisUrl: `redis://127.0.0.1:${port}`, dataDir: '/nonexistent/observerio', store }, logger);
    expect(s).to.be.instanceOf(RedisStore);
    expect(s.kind).to.equal('redis');
    expect((await s.health()).ok).to.equal(false);
    await s.stop();
  });
});
