/** Redis's command counts for a scenario's "Redis commands per …" figures (INFO commandstats). */
import type { BenchContext } from './context.js';

/**
 * Redis's command counts since the last CONFIG RESETSTAT, INFO and CONFIG themselves left out (a
 * script's EVALSHA counts once, the commands it calls apart), with the `top` most called.
 */
export async function redisCalls(redis: ReturnType<BenchContext['redis']['client']>, top = 14): Promise<{ total: number; top: Record<string, number> }> {
  const text = (await redis.info('commandstats')) as string;
  const list: Array<[string, number]> = [];
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info' && !(m[1] as string).startsWith('config')) list.push([m[1] as string, Number(m[2])]);
  list.sort((a, b) => b[1] - a[1]);
  return { total: list.reduce((a, [, n]) => a + n, 0), top: Object.fromEntries(list.slice(0, top)) };
}
