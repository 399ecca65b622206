/**
 * Makes every log entry indexable before a LogIndex stores it (issue 10): whatever a device sends,
 * both backends store the same bounded, well-formed shape, so one tenant's log can never make
 * Meilisearch refuse a batch holding other tenants' logs. Nothing is dropped silently: what does not
 * fit (nesting too deep, too many fields, too long) is kept as a (JSON) string and marked with '…'.
 */
import type { LogEntry } from '../model.js';

export interface LogLimits {
  /** Longest message, in UTF-16 code units; longer ones are cut and end in '…'. */
  maxMessageChars: number;
  /** Nesting kept in `fields` (the fields object itself is level 1); deeper values become their JSON text. */
  maxFieldsDepth: number;
  /** Object keys kept in `fields`, counted at every level; the rest go, as JSON text, under OVERFLOW_KEY. */
  maxFields: number;
  /** Longest `fields` as JSON (about); a larger one is replaced by `{ [OVERFLOW_KEY]: <its JSON, cut> }`. */
  maxFieldsChars: number;
}

export const DEFAULT_LOG_LIMITS: Readonly<LogLimits> = Object.freeze({ maxMessageChars: 16_384, maxFieldsDepth: 8, maxFields: 256, maxFieldsChars: 65_536 });

/** Where what did not fit in `fields` is kept, as JSON text. */
export const OVERFLOW_KEY = '_overflow';
/** A level is a filter value and a label in the dashboard, not text. */
export const MAX_LEVEL_CHARS = 64;
/** A key is a name; a longer one is kept, with its value, in the overflow. */
export const MAX_KEY_CHARS = 256;
const ELLIPSIS = '…';
/** The JSON text written for a cut-off value never recurses deeper than this, whatever it holds. */
const MAX_TEXT_DEPTH = 256;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const HAS_SURROGATE = /[\uD800-\uDFFF]/;

/** Replaces lone surrogates with U+FFFD: JSON.stringify writes them as escapes Meilisearch refuses. */
export function wellFormed(s: string): string {
  return HAS_SURROGATE.test(s) ? s.replace(LONE_SURROGATE, '\uFFFD') : s;
}

/** At most `max` code units, never splitting a surrogate pair; a cut string ends in '…'. */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max <= 0) return '';
  let end = max - 1;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end -= 1;
  return s.slice(0, end) + ELLIPSIS;
}

/** The entry as it is stored: a new object, the input untouched. Idempotent. */
export function normalizeLogEntry(e: LogEntry, limits: LogLimits = DEFAULT_LOG_LIMITS): LogEntry {
  return {
    id: e.id,
    apiKey: e.apiKey,
    deviceId: e.deviceId,
    level: cut(wellFormed(String(e.level)), MAX_LEVEL_CHARS),
    message: cut(wellFormed(String(e.message)), limits.maxMessageChars),
    timestamp: typeof e.timestamp === 'number' && Number.isFinite(e.timestamp) ? e.timestamp : null,
    receivedAt: e.receivedAt,
    fields: normalizeFields(e.fields, limits),
    ...(e.kind === 'change' ? { kind: 'change' as const } : {}),
  };
}

export function normalizeFields(fields: unknown, limits: LogLimits = DEFAULT_LOG_LIMITS): Record<string, unknown> {
  if (!isObjectLike(fields)) return {};
  const walk = new Walk(limits);
  const out = walk.object(fields, 1);
  if (walk.chars <= limits.maxFieldsChars) return out;
  // Sized so that normalising the result again leaves it as it is.
  return withKey({}, OVERFLOW_KEY, cut(boundedJson(out, limits.maxFieldsChars), limits.maxFieldsChars - OVERFLOW_KEY.length - 8));
}

function isObjectLike(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

/** Sets own property `k`, `__proto__` included (plain assignment would change the prototype). */
function withKey(o: Record<string, unknown>, k: string, v: unknown): Record<string, unknown> {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
  return o;
}

/** JSON's own conversions, applied up front so the stored shape is plain data. */
function jsonValue(v: unknown): unknown {
  if (isObjectLike(v) && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    try {
      return (v as { toJSON: () => unknown }).toJSON();
    } catch {
      return null;
    }
  }
  if (typeof v === 'bigint') return v.toString();
  return v;
}

class Walk {
  /** About the JSON length of what is kept so far. */
  chars = 0;
  private fields = 0;

  constructor(private readonly limits: LogLimits) {}

  object(src: object, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let rest: Record<string, unknown> | null = null;
    this.chars += 2;
    for (const rawKey of Object.keys(src)) {
      const v = jsonValue((src as Record<string, unknown>)[rawKey]);
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      const key = wellFormed(rawKey);
      // A string under OVERFLOW_KEY is what an earlier pass kept (at most one per object): not counted again.
      const counted = !(key === OVERFLOW_KEY && typeof v === 'string');
      if ((counted && this.fields >= this.limits.maxFields) || key.length > MAX_KEY_CHARS || Object.hasOwn(out, key)) {
        withKey((rest ??= {}), key, v);
        continue;
      }
      if (counted) this.fields += 1;
      this.chars += key.length + 4;
      withKey(out, key, this.value(v, depth));
    }
    if (rest) {
      // An earlier pass's overflow text joins the new one rather than being overwritten.
      if (Object.hasOwn(out, OVERFLOW_KEY)) {
        const earlier = out[OVERFLOW_KEY];
        delete out[OVERFLOW_KEY];
        if (typeof earlier === 'string') this.chars -= OVERFLOW_KEY.length + 4 + earlier.length + 2;
        rest = { [OVERFLOW_KEY]: earlier, ...rest };
      }
      const text = cut(boundedJson(rest, this.limits.maxFieldsChars), this.limits.maxFieldsChars);
      this.chars += OVERFLOW_KEY.length + 4 + text.length + 2;
      withKey(out, OVERFLOW_KEY, text);
    }
    return out;
  }

  private value(v: unknown, depth: number): unknown {
    if (typeof v === 'string') {
      this.chars += v.length + 2;
      return wellFormed(v);
    }
    if (typeof v === 'number') {
      this.chars += 8;
      return Number.isFinite(v) ? v : null;
    }
    if (typeof v === 'boolean' || v === null) {
      this.chars += 5;
      return v;
    }
    if (!isObjectLike(v)) return null;
    if (depth >= this.limits.maxFieldsDepth) {
      // Too deep for the index: kept whole as text, which is still searchable.
      const text = cut(boundedJson(v, this.limits.maxFieldsChars), this.limits.maxFieldsChars);
      this.chars += text.length + 2;
      return text;
    }
    if (Array.isArray(v)) {
      this.chars += 2;
      const out: unknown[] = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) {
        const x = jsonValue(v[i]);
        out[i] = x === undefined || typeof x === 'function' || typeof x === 'symbol' ? null : this.value(x, depth + 1);
        this.chars += 1;
      }
      return out;
    }
    return this.object(v, depth + 1);
  }
}

/**
 * JSON text of any value, well-formed, stopping once it is longer than `max` (so cycles and huge
 * values cost at most that much) and never recursing deeper than MAX_TEXT_DEPTH.
 */
export function boundedJson(value: unknown, max: number): string {
  const parts: string[] = [];
  let len = 0;
  const emit = (s: string): boolean => {
    parts.push(s);
    len += s.length;
    return len <= max;
  };
  const write = (raw: unknown, depth: number): boolean => {
    const v = jsonValue(raw);
    if (typeof v === 'string') return emit(JSON.stringify(wellFormed(v)));
    if (typeof v === 'number') return emit(Number.isFinite(v) ? String(v) : 'null');
    if (typeof v === 'boolean') return emit(String(v));
    if (!isObjectLike(v)) return emit('null');
    if (depth >= MAX_TEXT_DEPTH) return emit(JSON.stringify(ELLIPSIS));
    if (Array.isArray(v)) {
      if (!emit('[')) return false;
      for (let i = 0; i < v.length; i++) {
        if (i > 0 && !emit(',')) return false;
        if (!write(v[i], depth + 1)) return false;
      }
      return emit(']');
    }
    if (!emit('{')) return false;
    let first = true;
    for (const k of Object.keys(v)) {
      const x = jsonValue((v as Record<string, unknown>)[k]);
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      if (!first && !emit(',')) return false;
      first = false;
      if (!emit(`${JSON.stringify(wellFormed(k))}:`)) return false;
      if (!write(x, depth + 1)) return false;
    }
    return emit('}');
  };
  write(value, 0);
  return parts.join('');
}
