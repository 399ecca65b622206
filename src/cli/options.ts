/**
 * Checks for flag values, shaped as commander argument parsers: a bad value throws
 * InvalidArgumentError, which commander reports with the flag's name and main.ts turns into exit 2.
 */
import { InvalidArgumentError } from 'commander';
import { API_KEY_RE } from '../model.js';

export { API_KEY_RE };

export function apiKeyArg(v: string): string {
  if (!API_KEY_RE.test(v)) throw new InvalidArgumentError('an API key is exactly 12 characters of [A-Za-z0-9].');
  return v;
}

/** A whole number within [min, max]. */
export function intArg(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = /^\d{1,9}$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    return n;
  };
}

/** A decimal number within (min, max] when `exclusiveMin`, else [min, max]. */
export function numberArg(min: number, max: number, exclusiveMin = false): (v: string) => number {
  return (v) => {
    const text = v.trim();
    const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
    const low = exclusiveMin ? n > min : n >= min;
    if (!Number.isFinite(n) || !low || n > max) throw new InvalidArgumentError(exclusiveMin ? `expected a number greater than ${min} and at most ${max}.` : `expected a number from ${min} to ${max}.`);
    return n;
  };
}

export interface HostPort {
  host: string;
  port: number;
}

/** `HOST:PORT`, `[v6]:PORT`, or `:PORT` for 127.0.0.1. */
export function hostPortArg(v: string): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(v.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:4040.');
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** An http(s) URL of the daemon, without a trailing slash. */
export function urlArg(v: string): string {
  let url: URL;
  try {
    url = new URL(v.trim());
  } catch {
    throw new InvalidArgumentError('expected an http:// or https:// URL, e.g. http://127.0.0.1:4000.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http:// or https:// URL, e.g. http://127.0.0.1:4000.');
  if (url.search || url.hash) throw new InvalidArgumentError('the URL must not have a query or fragment.');
  return url.href.replace(/\/+$/, '');
}

/** A point in time: milliseconds since the epoch, an ISO date, or a duration ago such as 15m, 2h, 30s, 1d. */
export function timeArg(now: () => number = Date.now): (v: string) => number {
  return (v) => {
    const text = v.trim();
    if (/^\d{1,15}$/.test(text)) return Number(text);
    const ago = /^(\d{1,6})(ms|s|m|h|d)$/.exec(text);
    if (ago) {
      const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
      return now() - Number(ago[1]) * unit;
    }
    const t = Date.parse(text);
    if (/^\d{4}-\d\d-\d\d/.test(text) && Number.isFinite(t)) return t;
    throw new InvalidArgumentError('expected milliseconds since the epoch, an ISO date (2025-01-31T12:00:00Z) or a time ago (30s, 15m, 2h, 1d).');
  };
}
