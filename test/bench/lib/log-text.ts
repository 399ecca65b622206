/**
 * The text of the bench's game logs, shared by the logs generator (through the daemon) and the
 * Meilisearch-alone baseline (straight to Meilisearch), so both index the same kind of documents.
 */
export const LOGS_PER_LINE = 10;
export const WORDS = 'player enemy spawned zone forest castle dungeon loaded texture shader frame dropped network packet retry timeout inventory item equipped quest completed level boss damage health mana cooldown ability cast failed success warning physics collision raycast audio clip streamed memory pool allocated save slot checkpoint reached menu opened closed settings changed'.split(' ');
export const LEVELS = ['info', 'info', 'info', 'debug', 'warn', 'error'];

/** A message of 6 to 12 words and a number. */
export function message(rnd: () => number): string {
  const n = 6 + Math.floor(rnd() * 7);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(WORDS[Math.floor(rnd() * WORDS.length)] as string);
  parts.push(String(Math.floor(rnd() * 100_000)));
  return parts.join(' ');
}

/** Lines each logs-generator connection cycles through. */
export const LINES_PER_POOL = 200;

/**
 * The logs each connection of the logs generator sends, `LINES_PER_POOL` lines of `LOGS_PER_LINE`,
 * connection by connection from prng(42): the generator cycles through them, and Meilisearch alone
 * indexes the same logs in the same order, so both index the same words.
 */
export function logPools(conns: number, rnd: () => number, timestamp: number): Array<Array<Array<{ message: string; level: string; timestamp: number; scene: string }>>> {
  return Array.from({ length: conns }, () =>
    Array.from({ length: LINES_PER_POOL }, () =>
      Array.from({ length: LOGS_PER_LINE }, () => ({ message: message(rnd), level: LEVELS[Math.floor(rnd() * LEVELS.length)] as string, timestamp, scene: 'bench' })),
    ),
  );
}
