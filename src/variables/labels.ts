/**
 * Device labels (platform, build, engine, any `k=v`): the rules a label obeys, and the payload of
 * the protocol's devices extension, `d:<apiKey>:<base64(JSON object of labels)>` (docs/PROTOCOL.md
 * §13). Pure and browser-safe (atob and TextDecoder, no Buffer), so the dashboard and SDKs can share it.
 */
import type { ErrorCode } from '../errors.js';
import { API_KEY_RE } from '../model.js';

/** A device's labels: keys and values are strings. Always read with Object.hasOwn (see labelOf). */
export type Labels = Readonly<Record<string, string>>;

export const MAX_LABELS = 32;
export const MAX_LABEL_KEY = 63;
export const MAX_LABEL_VALUE = 128;
/**
 * The `d:` payload's limit is on its base64 text, checked before decoding so an oversized payload
 * costs nothing and every parser agrees on the boundary: 21848 characters, 16 KiB of JSON, room for
 * the most labels with the longest keys and values.
 */
export const MAX_LABELS_PAYLOAD_BASE64 = 21848;

/**
 * A key starts with a letter, so `__proto__` and friends can never be one; `constructor` can, which
 * is why labels are only ever read as own properties.
 */
export const LABEL_KEY_RE = /^[A-Za-z][A-Za-z0-9._-]{0,62}$/;
// Control characters, and the selector syntax's own `,` `=` `*`, which a value could not be told apart from.
// eslint-disable-next-line no-control-regex
const VALUE_FORBIDDEN_RE = /[\u0000-\u001f\u007f,=*]/;

/** A problem with a label key, or null. */
export function checkLabelKey(key: string): string | null {
  if (!LABEL_KEY_RE.test(key))
    return `label key ${JSON.stringify(key.slice(0, 70))} must be 1-${MAX_LABEL_KEY} characters of [A-Za-z0-9._-] starting with a letter`;
  return null;
}

/** A problem with a label value, or null; `pattern` allows the glob `*` (selectors). */
export function checkLabelValue(key: string, value: unknown, pattern = false): string | null {
  if (typeof value !== 'string') return `label ${key} must have a string value`;
  if (value.length === 0 || value.length > MAX_LABEL_VALUE) return `label ${key} must have a value of 1-${MAX_LABEL_VALUE} characters`;
  const bad = pattern ? value.replace(/\*/g, '') : value;
  if (VALUE_FORBIDDEN_RE.test(bad)) return `label ${key} has a value with a control character or one of , = ${pattern ? '' : '* '}(not allowed)`;
  if (value.trim() !== value) return `label ${key} has a value with leading or trailing white space`;
  return null;
}

/** A label's value when the device has that label as its own, else undefined (never Object.prototype's). */
export function labelOf(labels: Labels, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/**
 * Checks a JSON value as a set of device labels (or, with `pattern`, of selector values); returns
 * them with keys sorted, or the first problem. The result is built with Object.fromEntries, which
 * defines own properties, so no key can reach a prototype.
 */
export function checkLabels(value: unknown, pattern = false): { labels: Labels } | { problem: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'labels must be a JSON object of string values' };
  const keys = Object.keys(value);
  if (keys.length > MAX_LABELS) return { problem: `at most ${MAX_LABELS} labels (got ${keys.length})` };
  const entries: [string, string][] = [];
  for (const key of keys) {
    const keyProblem = checkLabelKey(key);
    if (keyProblem) return { problem: keyProblem };
    const v = (value as Record<string, unknown>)[key];
    const valueProblem = checkLabelValue(key, v, pattern);
    if (valueProblem) return { problem: valueProblem };
    entries.push([key, pattern ? (v as string).replace(/\*+/g, '*') : (v as string)]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { labels: Object.freeze(Object.fromEntries(entries)) };
}

/** What the `d:` payload parses to, or a protocol error with its catalog code. */
export type LabelsPayload = { kind: 'labels'; labels: Labels } | { kind: 'error'; code: ErrorCode; message: string };

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The shape check for the `d:` payload after base64 and JSON decoding: the part the daemon's parser
 * calls with its own decoder's output (so its base64/JSON leniencies stay one set, §12).
 */
export function labelsFromJson(value: unknown): LabelsPayload {
  const r = checkLabels(value);
  if ('problem' in r) return { kind: 'error', code: 'bad_shape', message: r.problem };
  return { kind: 'labels', labels: r.labels };
}

/**
 * The whole payload of `d:<apiKey>:<payload>`: size, base64 (same rules as `l:` and `i:`), JSON,
 * then labelsFromJson. Standalone for SDKs, tests and tools.
 */
export function parseLabelsPayload(b64: string): LabelsPayload {
  if (b64.length > MAX_LABELS_PAYLOAD_BASE64)
    return { kind: 'error', code: 'bad_shape', message: `labels payload over ${MAX_LABELS_PAYLOAD_BASE64} base64 characters` };
  if (b64.length === 0 || b64.length % 4 === 1 || !BASE64_RE.test(b64)) return { kind: 'error', code: 'bad_base64', message: 'payload is not valid base64' };
  let binary: string;
  try {
    // atob wants padding where Buffer does not; the protocol tolerates missing padding (§12).
    const bare = b64.replace(/=+$/, '');
    binary = atob(bare.padEnd(Math.ceil(bare.length / 4) * 4, '='));
  } catch {
    return { kind: 'error', code: 'bad_base64', message: 'payload is not valid base64' };
  }
  if (binary.length === 0) return { kind: 'error', code: 'bad_base64', message: 'payload decodes to nothing' };
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'error', code: 'bad_json', message: 'payload is not valid JSON' };
  }
  return labelsFromJson(json);
}

/** What a whole `d:` line parses to: the command the daemon's parser should return for it. */
export type LabelsLine = { kind: 'labels'; apiKey: string; labels: Labels } | { kind: 'error'; code: ErrorCode; message: string };

/**
 * A whole trimmed line starting with `d:`, checked the way src/tcp/protocol.ts checks `l:` and `i:`:
 * the API key (bad_api_key), the `:` before the payload (bad_shape), then parseLabelsPayload.
 * Whether the connection is verified for that key is the connection's business, not the parser's.
 */
export function parseLabelsLine(line: string): LabelsLine {
  if (!line.startsWith('d:')) return { kind: 'error', code: 'unknown_command', message: 'not a d: line' };
  const sep = line.indexOf(':', 2);
  const apiKey = sep < 0 ? line.slice(2) : line.slice(2, sep);
  if (!API_KEY_RE.test(apiKey)) return { kind: 'error', code: 'bad_api_key', message: 'API key must be exactly 12 characters of [A-Za-z0-9]' };
  if (sep < 0) return { kind: 'error', code: 'bad_shape', message: 'expected d:<apiKey>:<base64 JSON object of labels>' };
  const r = parseLabelsPayload(line.slice(sep + 1));
  return r.kind === 'labels' ? { kind: 'labels', apiKey, labels: r.labels } : r;
}

/** The SDK → daemon line declaring labels, without its newline; keys in the given order, compact JSON. */
export function encodeLabelsLine(apiKey: string, labels: Labels): string {
  const json = JSON.stringify(labels);
  const bytes = new TextEncoder().encode(json);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `d:${apiKey}:${btoa(binary)}`;
}
