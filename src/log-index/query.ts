/**
 * Checks and normalises a LogQuery once, the same way for every LogIndex, so both implementations
 * refuse the same bad input and clamp the same limits.
 */
import { ObserverioError } from '../errors.js';
import { API_KEY_RE } from '../model.js';
import { DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT, type LogQuery } from './log-index.js';

export interface NormalisedLogQuery {
  apiKey: string;
  /** Trimmed; '' means every log of the key. */
  q: string;
  level: string | null;
  device: string | null;
  from: number | null;
  to: number | null;
  limit: number;
  kind: 'log' | 'change' | null;
}

export function normaliseQuery(query: LogQuery): NormalisedLogQuery {
  // The API key is the tenant boundary: it is never guessed at or repaired.
  if (typeof query.apiKey !== 'string' || !API_KEY_RE.test(query.apiKey)) throw new ObserverioError('bad_api_key');
  const bound = (name: string, v: number | undefined): number | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ObserverioError('bad_request', `${name} must be a finite number of milliseconds`);
    return v;
  };
  const text = (name: string, v: string | undefined): string | null => {
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string') throw new ObserverioError('bad_request', `${name} must be a string`);
    return v;
  };
  let limit = query.limit ?? DEFAULT_SEARCH_LIMIT;
  if (typeof limit !== 'number' || Number.isNaN(limit)) limit = DEFAULT_SEARCH_LIMIT;
  limit = Math.min(MAX_SEARCH_LIMIT, Math.max(0, Math.floor(limit)));
  return {
    apiKey: query.apiKey,
    q: typeof query.q === 'string' ? query.q.trim() : '',
    level: text('level', query.level),
    device: text('device', query.device),
    from: bound('from', query.from),
    to: bound('to', query.to),
    limit,
    kind: kindOf(query.kind),
  };
}

function kindOf(v: unknown): 'log' | 'change' | null {
  if (v === undefined || v === null) return null;
  if (v === 'log' || v === 'change') return v;
  throw new ObserverioError('bad_request', 'kind must be log or change');
}
