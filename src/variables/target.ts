/**
 * Who an override is for: every device of the key, a list of device ids, or a label selector
 * (`platform=android,build=1.4.*`). Parsing from JSON bodies and selector strings, matching a device,
 * specificity (device > selector > all) and a canonical key, so setting the same target twice
 * replaces rather than duplicates.
 */
import { ObserverioError } from '../errors.js';
import { DEVICE_ID_RE } from '../model.js';
import { checkLabelKey, checkLabelValue, checkLabels, labelOf, MAX_LABELS, type Labels } from './labels.js';

/** Label selector values may end, start or contain `*` (any run of characters, also none). */
export type Target = { readonly all: true } | { readonly devices: readonly string[] } | { readonly labels: Labels };

/** A device as targets see it. */
export interface DeviceView {
  readonly deviceId: string;
  readonly labels: Labels;
}

export const ALL: Target = Object.freeze({ all: true as const });

/** One device list may name up to this many devices (a whole test lab, not a whole fleet). */
export const MAX_TARGET_DEVICES = 10_000;

/** Room for MAX_LABELS terms of the longest keys and values, with spaces. */
export const MAX_SELECTOR_LENGTH = 8192;

const bad = (detail: string): ObserverioError => new ObserverioError('bad_request', detail);

/**
 * A target from a JSON body: absent/null or `{"all": true}` (every device), `{"devices": [ids]}`, or
 * `{"labels": {"k": "v"}}` / `{"labels": "k=v,k2=v2*"}`. Device ids are deduplicated and sorted.
 * Throws bad_request naming the problem.
 */
export function parseTarget(body: unknown): Target {
  if (body === undefined || body === null) return ALL;
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('target must be an object: {"devices": [...]} or {"labels": {...}}, or absent for every device');
  const keys = Object.keys(body);
  const allowed = ['all', 'devices', 'labels'];
  const unknown = keys.find((k) => !allowed.includes(k));
  if (unknown !== undefined) throw bad(`target has an unknown field ${JSON.stringify(unknown.slice(0, 40))}; expected devices or labels`);
  if (keys.length !== 1) throw bad('target must have exactly one of all, devices or labels');
  const b = body as Record<string, unknown>;
  if (keys[0] === 'all') {
    if (b.all !== true) throw bad('target.all must be true (omit the target for every device)');
    return ALL;
  }
  if (keys[0] === 'devices') return { devices: parseDeviceList(b.devices) };
  const labels = b.labels;
  if (typeof labels === 'string') return { labels: parseSelector(labels) };
  const r = checkLabels(labels, true);
  if ('problem' in r) throw bad(`target.labels: ${r.problem}`);
  if (Object.keys(r.labels).length === 0) throw bad('target.labels is empty; omit the target to reach every device');
  return { labels: r.labels };
}

function parseDeviceList(value: unknown): string[] {
  if (!Array.isArray(value)) throw bad('target.devices must be an array of device ids');
  if (value.length === 0) throw bad('target.devices is empty; name at least one device or omit the target');
  if (value.length > MAX_TARGET_DEVICES) throw bad(`target.devices names ${value.length} devices; at most ${MAX_TARGET_DEVICES}`);
  const ids = new Set<string>();
  for (let i = 0; i < value.length; i++) {
    const id: unknown = value[i];
    if (typeof id !== 'string' || !DEVICE_ID_RE.test(id))
      throw bad(`target.devices[${i}] ${JSON.stringify(typeof id === 'string' ? id.slice(0, 70) : id ?? null)} is not a device id (1-64 characters of [A-Za-z0-9._-])`);
    ids.add(id);
  }
  return [...ids].sort();
}

/**
 * Parses `k=v,k2=v2*`: terms separated by commas, white space around terms, keys and values ignored,
 * `*` in a value matches any run of characters. Errors name the 0-based position and the problem.
 */
export function parseSelector(text: string): Labels {
  if (typeof text !== 'string') throw bad('label selector must be a string');
  if (text.length > MAX_SELECTOR_LENGTH) throw bad(`label selector is over ${MAX_SELECTOR_LENGTH} characters`);
  if (text.trim().length === 0) throw bad('label selector is empty; omit the target to reach every device');
  const entries = new Map<string, string>();
  let start = 0;
  for (const term of text.split(',')) {
    const at = start + (term.length - term.trimStart().length);
    start += term.length + 1;
    const t = term.trim();
    if (t.length === 0) throw bad(`label selector has an empty term at position ${at}`);
    const eq = t.indexOf('=');
    if (eq < 0) throw bad(`label selector term ${JSON.stringify(t.slice(0, 40))} at position ${at} has no '=' (expected key=value)`);
    const rawKey = t.slice(0, eq);
    if (rawKey.endsWith('!')) throw bad(`label selector term at position ${at}: only key=value terms are supported, not !=`);
    const key = rawKey.trim();
    const value = t.slice(eq + 1).trim();
    if (key.length === 0) throw bad(`label selector term at position ${at} has no key before '='`);
    const keyProblem = checkLabelKey(key);
    if (keyProblem) throw bad(`label selector at position ${at}: ${keyProblem}`);
    if (value.length === 0) throw bad(`label selector term ${key} at position ${at} has no value after '=' (use * for any value)`);
    if (value.includes('=')) throw bad(`label selector term ${key} at position ${at} has a second '='`);
    const valueProblem = checkLabelValue(key, value, true);
    if (valueProblem) throw bad(`label selector at position ${at}: ${valueProblem}`);
    if (entries.has(key)) throw bad(`label selector names ${key} twice (second time at position ${at})`);
    if (entries.size === MAX_LABELS) throw bad(`label selector has more than ${MAX_LABELS} terms`);
    entries.set(key, value.replace(/\*+/g, '*'));
  }
  return Object.freeze(Object.fromEntries([...entries].sort((a, b) => (a[0] < b[0] ? -1 : 1))));
}

/** The selector string for a labels target (the inverse of parseSelector, keys sorted). */
export function formatSelector(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join(',');
}

/**
 * Glob match where `*` is any run of characters: the classic linear-backtrack wildcard algorithm
 * (at most one resume point), so a hostile pattern like `*a*a*a*b` cannot blow up the way a naive
 * regular expression can.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

export function isAll(t: Target): t is { readonly all: true } {
  return 'all' in t;
}
export function isDevices(t: Target): t is { readonly devices: readonly string[] } {
  return 'devices' in t;
}

/** True when the target reaches this device. A label the device lacks never matches, not even `*`. */
export function matches(target: Target, device: DeviceView): boolean {
  if (isAll(target)) return true;
  if (isDevices(target)) return listIncludes(target.devices, device.deviceId);
  for (const key of Object.keys(target.labels)) {
    const want = target.labels[key] as string;
    const have = labelOf(device.labels, key);
    if (have === undefined || !globMatch(want, have)) return false;
  }
  return true;
}

// A Set per device list, made once: targets are immutable and a 10k-device list is matched against
// every device of the key.
const deviceSets = new WeakMap<readonly string[], ReadonlySet<string>>();
function listIncludes(ids: readonly string[], id: string): boolean {
  let set = deviceSets.get(ids);
  if (!set) {
    set = new Set(ids);
    deviceSets.set(ids, set);
  }
  return set.has(id);
}

/** Specificity: a device list (3) beats a selector (2) beats every device (1). */
export function specificity(t: Target): 1 | 2 | 3 {
  if (isAll(t)) return 1;
  if (isDevices(t)) return 3;
  return 2;
}

/**
 * A canonical key: the same set of devices or labels in any order gives the same key. Unambiguous
 * because device ids and label keys cannot hold `,` or `=` and label values cannot hold `,`.
 */
export function targetKey(t: Target): string {
  if (isAll(t)) return 'all';
  // A frozen target (every stored override's) cannot change: its key is computed once. Every change
  // of a key looks up each of its overrides by key, and a list target's key sorts the whole list.
  const frozen = Object.isFrozen(t);
  if (frozen) {
    const known = frozenKeys.get(t);
    if (known !== undefined) return known;
  }
  const key = isDevices(t) ? `devices:${[...new Set(t.devices)].sort().join(',')}` : `labels:${formatSelector(t.labels)}`;
  if (frozen && (!isDevices(t) || Object.isFrozen(t.devices)) && (isDevices(t) || Object.isFrozen(t.labels))) frozenKeys.set(t, key);
  return key;
}

const frozenKeys = new WeakMap<Target, string>();

/** The same target in canonical form (device ids deduplicated and sorted, keys sorted). */
export function canonicalTarget(t: Target): Target {
  if (isAll(t)) return ALL;
  if (isDevices(t)) return { devices: [...new Set(t.devices)].sort() };
  return { labels: Object.freeze(Object.fromEntries(Object.keys(t.labels).sort().map((k) => [k, t.labels[k] as string]))) };
}

export function sameTarget(a: Target, b: Target): boolean {
  return targetKey(a) === targetKey(b);
}
