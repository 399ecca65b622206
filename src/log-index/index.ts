/**
 * Picks the LogIndex from configuration: Meilisearch when a URL is set, otherwise the in-memory one.
 * Either way the daemon writes through a LogBatcher around it.
 */
import type { Logger } from 'pino';
import type { LogsConfig } from '../config.js';
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
