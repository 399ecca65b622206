/** Formatting for times, durations and counts, in the dashboard's compact style. */

/** A time as the server may send it: epoch milliseconds, an ISO string, or none. */
export type Instant = number | string | null;

export function toMs(t: Instant | undefined): number | null {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return Number.isFinite(t) ? t : null;
  const n = Number(t);
  if (Number.isFinite(n)) return n;
  const parsed = Date.parse(t);
  return Number.isNaN(parsed) ? null : parsed;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

export function clockTime(ms: number, withMillis = false): string {
  const d = new Date(ms);
  const base = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMillis ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** "HH:MM:SS" today, "Mar 3 HH:MM" on other days. */
export function shortDateTime(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  if (new Date(now).toDateString() === d.toDateString()) return clockTime(ms);
  return `${d.toLocaleString(undefined, { month: 'short', day: 'numeric' })} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function ago(ms: number | null, now: number): string {
  if (ms === null) return '—';
  const d = now - ms;
  if (d < 1500) return 'just now';
  return `${duration(d)} ago`;
}

export function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function fullTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Compact one-line rendering of a domain value (admin info, log fields). */
export function compact(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (typeof v === 'boolean') return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}
