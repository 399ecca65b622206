/**
 * The SDK's side of the wire protocol (docs/PROTOCOL.md): builds the lines a game sends and decodes
 * the lines the daemon sends back. Kept apart from the daemon's parser on purpose: it runs inside
 * games (Node or a browser), so it depends on nothing but bytes.ts and the shared shapes and rules in model.ts.
 */
import { API_KEY_RE, DEVICE_ID_RE, inferVarType, isVarName, isVarType, MAX_VAR_NAME, MAX_VAR_TYPE, varBoolean, varKind, varNumber, wireValue, type Var, type VarValue } from '../model.js';
import { checkLabels, encodeLabelsLine, parseLabelsLine, type Labels, type LabelsLine } from '../variables/labels.js';
import { base64FromText, textFromBase64 } from './bytes.js';
import { SdkError, type SdkErrorCode } from './errors.js';

export type { Labels, LabelsLine, Var, VarValue };

/** The types the SDK infers; the wire accepts any 1-32 character type string. */
export type VarType = 'integer' | 'float' | 'boolean' | 'string';

/** One variable to set; `type` is inferred from `value` when omitted. */
export interface VarInput {
  name: string;
  value: VarValue;
  type?: string;
}

/** A log entry as it goes on the wire: a message plus any JSON fields. */
export interface LogRecord {
  message: string;
  level?: string;
  timestamp?: number;
  [field: string]: unknown;
}

/** What one line from the daemon means. */
export type ServerLine =
  | { kind: 'ok' }
  | { kind: 'error'; code: SdkErrorCode; message: string }
  | { kind: 'vars'; apiKey: string; vars: Var[] }
  /** A line this SDK does not know: ignored, since extensions are additive. */
  | { kind: 'unknown'; line: string }
  /** A known line whose payload is broken. */
  | { kind: 'invalid'; reason: string };

// The daemon's parser checks the same rules (model.ts), so a line the SDK builds is never rejected as bad_shape.
export { MAX_VAR_NAME, MAX_VAR_TYPE };
/** The daemon's default `tcp.maxLineBytes`. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** `l:` or `i:`, the 12-character key and a colon. */
export const COMMAND_PREFIX_BYTES = 15;
/** An empty JSON array, base64: a valid no-op `l:`/`i:` payload. */
export const EMPTY_ARRAY_B64 = 'W10=';

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Throws SdkError('bad_api_key') unless the key has the daemon's format. */
export function checkApiKey(apiKey: unknown): asserts apiKey is string {
  if (typeof apiKey !== 'string' || !API_KEY_RE.test(apiKey))
    throw new SdkError('bad_api_key', 'API key must be exactly 12 characters of [A-Za-z0-9]');
}

/** Throws SdkError('bad_device_id') unless the id has the daemon's format. */
export function checkDeviceId(deviceId: unknown): asserts deviceId is string {
  if (typeof deviceId !== 'string' || !DEVICE_ID_RE.test(deviceId))
    throw new SdkError('bad_device_id', 'device id must be 1-64 characters of [A-Za-z0-9._-]');
}

export function inferType(value: VarValue): VarType {
  return inferVarType(value);
}

/**
 * Turns a game's variable into its wire form (value as a string, as the original SDK sent it), or
 * throws SdkError('bad_var'): one bad variable would make the daemon reject its whole line.
 */
export function toWireVar(input: VarInput): Var {
  const { name, value } = input;
  if (!isVarName(name)) throw new SdkError('bad_var', `variable name must be 1-${MAX_VAR_NAME} printable characters, got ${JSON.stringify(name)}`);
  const wire = wireValue(value);
  if (wire === null) {
    if (typeof value === 'number') throw new SdkError('bad_var', `variable ${name}: ${value} is not a finite number`);
    throw new SdkError('bad_var', `variable ${name}: value must be a number, boolean or string`);
  }
  const type = input.type ?? inferType(value);
  if (!isVarType(type)) throw new SdkError('bad_var', `variable ${name}: type must be 1-${MAX_VAR_TYPE} printable characters`);
  return { name, type, value: wire };
}

/**
 * A wire value read back by its type: integer/float (also int, double, number) → number,
 * boolean (also bool) → boolean, anything else → the string. A value that does not parse as its type
 * stays a string rather than becoming NaN, so a typo on the dashboard cannot poison game state.
 */
export function typedValue(type: string, value: string): VarValue {
  const kind = varKind(type);
  if (kind === 'integer' || kind === 'float') return varNumber(value) ?? value;
  if (kind === 'boolean') return varBoolean(value) ?? value;
  return value;
}

/** Standard base64 with padding of the text's UTF-8 bytes. */
export function encodePayload(json: string): string {
  return base64FromText(json);
}

/** `v:<apiKey>` or `v:<apiKey>:<deviceId>`, without the newline. */
export function encodeVerify(apiKey: string, deviceId?: string | null): string {
  return deviceId ? `v:${apiKey}:${deviceId}` : `v:${apiKey}`;
}

/** `i:<apiKey>:<base64 JSON [{name,type,value}]>`, without the newline. */
export function encodeVars(apiKey: string, vars: readonly Var[]): string {
  return `i:${apiKey}:${encodePayload(varsJson(vars))}`;
}

export function varsJson(vars: readonly Var[]): string {
  return JSON.stringify(vars.map(({ name, type, value }) => ({ name, type, value })));
}

/** `l:<apiKey>:<base64 JSON [log...]>`, without the newline. */
export function encodeLogs(apiKey: string, logs: readonly LogRecord[]): string {
  return encodeLogsJson(apiKey, logs.map((l) => JSON.stringify(l)));
}

/** Same as encodeLogs for entries already serialized one by one (the client serializes at log() time). */
export function encodeLogsJson(apiKey: string, entries: readonly string[]): string {
  return `l:${apiKey}:${encodePayload(`[${entries.join(',')}]`)}`;
}

/**
 * Checks a device's labels (docs/PROTOCOL.md §13: 1-63 character keys starting with a letter, 1-128
 * character values without control characters or `, = *`, at most 32) and returns them as a fresh
 * frozen object in the given key order; throws SdkError('bad_labels') naming the first problem, so a
 * game learns of a bad label when it connects rather than through a daemon error later.
 */
export function checkDeviceLabels(labels: unknown): Labels {
  const r = checkLabels(labels);
  if ('problem' in r) throw new SdkError('bad_labels', r.problem);
  // checkLabels sorts; the line keeps the game's order, which is what "canonical" means in the vectors.
  const given = labels as Record<string, string>;
  return Object.freeze(Object.fromEntries(Object.keys(given).map((k) => [k, given[k] as string])));
}

/** `d:<apiKey>:<base64 JSON object of labels>` (the devices extension), without the newline; checks key and labels. */
export function encodeLabels(apiKey: string, labels: Readonly<Record<string, string>>): string {
  checkApiKey(apiKey);
  return encodeLabelsLine(apiKey, checkDeviceLabels(labels));
}

/** Reads a `d:` line back, as the daemon does (tools and tests; the daemon never sends one). */
export function decodeLabelsLine(line: string): LabelsLine {
  return parseLabelsLine(line);
}

/** Bytes of JSON that fit in one `l:`/`i:` line of at most maxLineBytes (base64 grows 3 → 4). */
export function jsonBudget(maxLineBytes: number): number {
  return Math.floor((maxLineBytes - COMMAND_PREFIX_BYTES) / 4) * 3;
}

/** Decodes one line from the daemon (already framed and trimmed). */
export function decodeServerLine(line: string): ServerLine {
  if (line === 'OK') return { kind: 'ok' };
  if (line.startsWith('e:')) {
    const rest = line.slice(2);
    const sep = rest.indexOf(':');
    const code = sep < 0 ? rest : rest.slice(0, sep);
    if (code.length === 0) return { kind: 'invalid', reason: 'error line without a code' };
    return { kind: 'error', code, message: sep < 0 ? '' : rest.slice(sep + 1) };
  }
  if (line.startsWith('v:')) {
    const rest = line.slice(2);
    const sep = rest.indexOf(':');
    const apiKey = sep < 0 ? rest : rest.slice(0, sep);
    if (sep < 0 || !API_KEY_RE.test(apiKey)) return { kind: 'invalid', reason: 'expected v:<apiKey>:<base64 JSON array>' };
    const vars = decodeVarsPayload(rest.slice(sep + 1));
    return typeof vars === 'string' ? { kind: 'invalid', reason: vars } : { kind: 'vars', apiKey, vars };
  }
  return { kind: 'unknown', line };
}

/** The vars of a `v:` payload, or why it is broken. Numbers and booleans are read as strings, like the daemon does. */
export function decodeVarsPayload(b64: string): Var[] | string {
  if (b64.length === 0 || b64.length % 4 === 1 || !BASE64_RE.test(b64)) return 'payload is not valid base64';
  const text = textFromBase64(b64);
  if (text === null) return 'payload is not valid base64';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'payload is not valid JSON';
  }
  if (!Array.isArray(value)) return 'payload is not a JSON array';
  const vars: Var[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return 'a variable is not an object';
    const { name, type, value: v } = item as Record<string, unknown>;
    if (typeof name !== 'string' || name.length === 0) return 'a variable has no name';
    if (typeof type !== 'string') return `variable ${name} has no type`;
    const wire = wireValue(v);
    if (wire === null) return `variable ${name} has no string, number or boolean value`;
    vars.push({ name, type, value: wire });
  }
  return vars;
}
