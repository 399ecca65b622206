import { expect } from 'chai';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { tempDir } from '../../helpers/processes.js';

const cfg = { snapshotIntervalMs: 0, sessionTtlMs: 60_000, outboxMaxPerKey: 16, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 };

describe('MemoryStore across a restart of its worker', () => {
  it('does not load its snapshot again over newer data (a held write can land between stop and start)', async () => {
    const dir = tempDir('observerio-store-restart-');
    try {
      const store = new MemoryStore(cfg, { dataDir: dir.path });
      await store.start();
      await store.setVars('AAAAAAAAAAAA', [{ name: 'speed', type: 'string', value: '1' }]);
      await store.stop();
      await store.setVars('AAAAAAAAAAAA', [{ name: 'speed', type: 'string', value: '2' }]);
      await store.start();
      expect(await store.getVars('AAAAAAAAAAAA')).to.deep.equal([{ name: 'speed', type: 'string', value: '2' }]);
      await store.stop();

      // A new process (a fresh object) still loads what the last stop saved.
      const next = new MemoryStore(cfg, { dataDir: dir.path });
      await next.start();
      expect(await next.getVars('AAAAAAAAAAAA')).to.deep.equal([{ name: 'speed', type: 'string', value: '2' }]);
      await next.stop();
    } finally {
      dir.remove();
    }
  });
});
