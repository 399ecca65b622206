/**
 * Picks the LogIndex from configuration: Meilisearch when a URL is set, otherwise the in-memory one;
 * and builds the `logs` child of the tree, which owns the index and the LogBatcher the daemon writes
 * through.
 */
import type { Logger } from 'pino';
import { backendChild, type BackendWorkerOptions, type HealthBoard } from '../backends.js';
import type { LogsConfig } from '../config.js';
import type { ChildSpec } from '../otp/index.js';
import { LogBatcher, type LogBatcherOptions } from './batcher.js';
import type { LogIndex } from './log-index.js';
import { MeiliLogIndex } from './meili-log-index.js';
import { MemoryLogIndex } from './memory-log-index.js';

export type { LogIndex, LogQuery, LogSearchResult } from './log-index.js';
export { LogBatcher, type LogBatcherOptions, type LogBatcherStats } from './batcher.js';
export { MeiliLogIndex } from './meili-log-index.js';
export { MemoryLogIndex } from './memory-log-index.js';
export { LogWriteRefused } from './log-index.js';

export function resolveLogIndex(cfg: { meiliUrl: string | null; meiliMasterKey: string | null; logs: LogsConfig }, logger: Logger): LogIndex {
  const log = logger.child({ component: 'log-index' });
  return cfg.meiliUrl
    ? new MeiliLogIndex({ url: cfg.meiliUrl, masterKey: cfg.meiliMasterKey, indexName: cfg.logs.indexName, limits: cfg.logs }, log)
    : new MemoryLogIndex({ logger: log, limits: cfg.logs });
}

export interface LogsChildOptions extends BackendWorkerOptions {
  batcher: LogBatcherOptions;
  /** How long a restart waits for pending logs to reach the index before closing it (default 2000 ms). */
  restartFlushMs?: number;
}

export interface LogsChild {
  spec: ChildSpec;
  /** The index as the daemon searches it (calls wait while the worker restarts). */
  index: LogIndex;
  /** Where the daemon writes logs: the batcher in front of the index. */
  batcher: LogBatcher;
}

/**
 * The `logs` child: the index and its batcher, one worker. The batcher writes through the index's
 * handle, so a batch written while the worker restarts waits for the next incarnation instead of
 * failing. Terminate flushes what is pending; at shutdown the batcher then stops for good, while on
 * a restart it keeps accepting (and holding) logs, so none accepted is lost across a kill.
 */
export function logsChild(index: LogIndex, board: HealthBoard, opts: LogsChildOptions): LogsChild {
  let batcher: LogBatcher | undefined;
  const flushMs = opts.restartFlushMs ?? 2000;
  const { spec, handle } = backendChild('logs', index, board, {
    ...opts,
    beforeStop: async (reason, restarting) => {
      await opts.beforeStop?.(reason, restarting);
      if (!batcher) return;
      if (!restarting) return batcher.stop();
      // An index that does not take them now gets them after the restart: they stay queued.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([batcher.flush(), new Promise<void>((r) => (timer = setTimeout(r, flushMs)))]);
      clearTimeout(timer);
    },
    info: () => ({ ...batcher?.stats(), ...opts.info?.() }),
  });
  batcher = new LogBatcher(handle, opts.batcher);
  return { spec, index: handle, batcher };
}
