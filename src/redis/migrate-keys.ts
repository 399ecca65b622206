/**
 * The one-off move of the Redis store's per-API-key keys to hash-tagged names (DESIGN.md §6). Before
 * Redis Cluster support the outbox and variable-order keys were `P varorder:<apiKey>`,
 * `P outbox:<apiKey>` and `P outbox-order:<apiKey>`; now they are `P <kind>:{<apiKey>:vs}`, in the slot
 * of `<apiKey>:vs`, so a script may touch them together on a cluster too.
 *
 * Runs at the store's first start on a plain Redis and renames (RENAMENX) every old key it finds, then
 * writes the marker `P layout` = 2 so later starts skip the scan. Several daemons starting at once are
 * safe: a key another one renamed first is simply gone. An old key whose new name already exists (an
 * old-version daemon kept writing after the move) is left where it is and reported: merging two
 * outboxes is not something to guess at. On a cluster nothing runs: old names there would mean the
 * data was copied from a plain Redis this version never started on, and a rename across slots is not
 * one command; start this version once on the plain Redis before moving the data.
 */
import type { Logger } from 'pino';
import { API_KEY_RE } from '../model.js';
import { isCluster, type RedisClient } from './connect.js';

export const LAYOUT_VERSION = '2';
/** The key kinds that gained a hash tag, as they follow the prefix. */
export const RETAGGED_KINDS = ['varorder', 'outbox', 'outbox-order'] as const;
const SCAN_COUNT = 1000;

export interface MigrationReport {
  renamed: number;
  /** Old keys left in place because their new name was taken. */
  conflicts: string[];
}

/** `*`, `?`, `[`, `]` and `\` in a prefix match themselves, not a pattern. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Renames the untagged keys under `prefix`; null when there was nothing to do (cluster, or already done). */
export async function migrateUntaggedKeys(redis: RedisClient, prefix: string, log?: Logger): Promise<MigrationReport | null> {
  if (isCluster(redis)) return null;
  const marker = `${prefix}layout`;
  if ((await redis.get(marker)) === LAYOUT_VERSION) return null;
  const report: MigrationReport = { renamed: 0, conflicts: [] };
  for (const kind of RETAGGED_KINDS) {
    const head = `${prefix}${kind}:`;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(head)}*`, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (const key of keys) {
        const apiKey = key.slice(head.length);
        // Tagged names (`{K:vs}`) and anything else that is not a bare API key are not ours to move.
        if (!API_KEY_RE.test(apiKey)) continue;
        const target = `${head}{${apiKey}:vs}`;
        let moved: number;
        try {
          moved = await redis.renamenx(key, target);
        } catch (err) {
          // Another daemon renamed it between our SCAN and here.
          if (/no such key/i.test((err as Error).message)) continue;
          throw err;
        }
        if (moved === 1) report.renamed++;
        else report.conflicts.push(key);
      }
    } while (cursor !== '0');
  }
  await redis.set(marker, LAYOUT_VERSION);
  if (report.renamed > 0) log?.info({ renamed: report.renamed }, 'renamed untagged per-API-key keys to their {<apiKey>:vs} names');
  if (report.conflicts.length > 0) {
    log?.warn({ keys: report.conflicts.slice(0, 20), count: report.conflicts.length }, 'untagged keys left in place: their tagged names already exist');
  }
  return report;
}
