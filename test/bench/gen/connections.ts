/**
 * Connection storm: opens `count` SDK connections from one loopback source address (a few hundred
 * handshakes in flight at a time), verifies each (`v:<apiKey>:<deviceId>` → `OK`), reports how long
 * that took, and holds them all open until the orchestrator disconnects.
 */
import type { Socket } from 'node:net';
import { openVerified } from '../lib/lines.js';
import { runWorker } from '../lib/worker.js';

export interface ConnectionsConfig {
  port: number;
  count: number;
  apiKeys: string[];
  devicePrefix: string;
  localAddress: string;
  /** Handshakes in flight at once. */
  concurrency: number;
  /**
   * Opens at most this many connections a second (connection i not before i / perSecond s), or as
   * fast as it can when absent: at a set rate the daemon's CPU per connection compares between builds
   * whatever else the machine runs (as fast as it can, a slower daemon makes more, smaller turns).
   */
  perSecond?: number;
}

export interface ConnectionsResult {
  verified: number;
  failed: number;
  firstError: string | null;
  /** Date.now() when the last connection was verified. */
  doneAt: number;
  ms: number;
}

const held: Socket[] = [];

runWorker<ConnectionsConfig, ConnectionsResult>(async (cfg, ctl) => {
  await ctl.ready();
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async (): Promise<void> => {
    while (next < cfg.count) {
      const i = next++;
      if (cfg.perSecond) {
        const due = t0 + (i * 1000) / cfg.perSecond - performance.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
      try {
        const s = await openVerified({ port: cfg.port, apiKey: cfg.apiKeys[i % cfg.apiKeys.length] as string, deviceId: `${cfg.devicePrefix}${i}`, localAddress: cfg.localAddress, timeoutMs: 30_000 });
        s.on('error', () => undefined);
        held.push(s);
      } catch (err) {
        failed += 1;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  return { verified: held.length, failed, firstError, doneAt: Date.now(), ms: performance.now() - t0 };
});
