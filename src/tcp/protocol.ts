/**
 * The SDK wire protocol (DESIGN.md §2, docs/PROTOCOL.md): turns one trimmed line into a command or a
 * catalogued error, and packs the daemon's `v:` lines. Pure functions: no sockets, no state.
 */
import { protocolErrorLine, type ErrorCode } from '../errors.js';
import { API_KEY_RE, DEVICE_ID_RE, isVarName, isVarType, MAX_VAR_NAME, MAX_VAR_TYPE, wireValue, type Var } from '../model.js';
import { labelsFromJson, MAX_LABELS_PAYLOAD_BASE64, type Labels } from '../variables/labels.js';

/** A log object as the client sent it (at least a message). */
export interface ClientLog {
  message: string;
  level?: string;
  timestamp?: number;
  [field: string]: unknown;
}

export type Command =
  | { kind: 'verify'; apiKey: string; deviceId: string | null }
  | { kind: 'logs'; apiKey: string; logs: ClientLog[] }
  | { kind: 'vars'; apiKey: string; vars: Var[] }
  /** The devices extension (docs/PROTOCOL.md §13): the labels the device declares, replacing earlier ones. */
  | { kind: 'labels'; apiKey: string; labels: Labels };

export interface ProtocolError {
  kind: 'error';
  code: ErrorCode;
  message: string;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

const fail = (code: ErrorCode, message: string): ProtocolError => ({ kind: 'error', code, message });

const COLON = 0x3a;
const LOWER_D = 0x64;
const LOWER_I = 0x69;
const LOWER_L = 0x6c;
const LOWER_V = 0x76;

/** Parses one line (already trimmed, non-empty, within the length limit). */
export function parseLine(line: string): Command | ProtocolError {
  // Character codes and offsets into the line rather than substrings: this runs for every line.
  const c0 = line.charCodeAt(0);
  if (line.charCodeAt(1) === COLON) {
    if (c0 === LOWER_V) return parseVerify(line.slice(2));
    if (c0 === LOWER_L || c0 === LOWER_I || c0 === LOWER_D) {
      const sep = line.indexOf(':', 2);
      const apiKey = sep < 0 ? line.slice(2) : line.slice(2, sep);
      if (!API_KEY_RE.test(apiKey)) return fail('bad_api_key', `API key must be exactly 12 characters of [A-Za-z0-9]`);
      if (c0 === LOWER_D) {
        if (sep < 0) return fail('bad_shape', 'expected d:<apiKey>:<base64 JSON object of labels>');
        // The size is checked on the base64 text, before any decoding (§13).
        if (line.length - sep - 1 > MAX_LABELS_PAYLOAD_BASE64) return fail('bad_shape', `labels payload over ${MAX_LABELS_PAYLOAD_BASE64} base64 characters`);
        const json = decodePayload(line.slice(sep + 1));
        if ('kind' in json) return json;
        const r = labelsFromJson(json.value);
        return r.kind === 'labels' ? { kind: 'labels', apiKey, labels: r.labels } : fail(r.code, r.message);
      }
      if (sep < 0) return fail('bad_shape', `expected ${c0 === LOWER_L ? 'l:' : 'i:'}<apiKey>:<base64 JSON array>`);
      const json = decodePayload(line.slice(sep + 1));
      if ('kind' in json) return json;
      return c0 === LOWER_L ? toLogs(apiKey, json.value) : toVars(apiKey, json.value);
    }
  }
  return fail('unknown_command', `unknown command ${JSON.stringify(line.slice(0, 16))}; expected v:, l: or i:`);
}

function parseVerify(rest: string): Command | ProtocolError {
  const sep = rest.indexOf(':');
  const apiKey = sep < 0 ? rest : rest.slice(0, sep);
  if (!API_KEY_RE.test(apiKey)) return fail('bad_api_key', 'API key must be exactly 12 characters of [A-Za-z0-9]');
  if (sep < 0) return { kind: 'verify', apiKey, deviceId: null };
  const deviceId = rest.slice(sep + 1);
  if (!DEVICE_ID_RE.test(deviceId)) return fail('bad_device_id', 'device id must be 1-64 characters of [A-Za-z0-9._-]');
  return { kind: 'verify', apiKey, deviceId };
}

/**
 * Base64 to text exactly as `Buffer.from(b64, 'base64').toString('utf8')` reads it (the caller has
 * checked the alphabet). Hot path: `atob` costs a third of that, and its binary string already is
 * the text when every byte is ASCII, as SDKs' JSON almost always is; anything else takes the Buffer
 * route. Invalid UTF-8 becomes U+FFFD rather than an error: one garbled character in a log message
 * should not cost the whole batch.
 */
function base64Text(b64: string): string {
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    // Padding atob is stricter about than Buffer (`QQ=`): keep Buffer's reading.
    return Buffer.from(b64, 'base64').toString('utf8');
  }
  // A character of 0x80 or more takes two bytes in UTF-8: the cheapest test for "all ASCII".
  return Buffer.byteLength(binary, 'utf8') === binary.length ? binary : Buffer.from(binary, 'latin1').toString('utf8');
}

function decodePayload(b64: string): { value: unknown } | ProtocolError {
  if (b64.length === 0 || b64.length % 4 === 1 || !BASE64_RE.test(b64)) return fail('bad_base64', 'payload is not valid base64');
  const text = base64Text(b64);
  if (text.length === 0) return fail('bad_base64', 'payload decodes to nothing');
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return fail('bad_json', 'payload is not valid JSON');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toLogs(apiKey: string, value: unknown): Command | ProtocolError {
  if (!Array.isArray(value)) return fail('bad_shape', 'logs must be a JSON array of objects');
  const logs: ClientLog[] = [];
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!isObject(item)) return fail('bad_shape', `logs[${i}] must be an object`);
    if (typeof item.message !== 'string') return fail('bad_shape', `logs[${i}].message must be a string`);
    if (item.level !== undefined && typeof item.level !== 'string') return fail('bad_shape', `logs[${i}].level must be a string`);
    if (item.timestamp !== undefined && (typeof item.timestamp !== 'number' || !Number.isFinite(item.timestamp)))
      return fail('bad_shape', `logs[${i}].timestamp must be a number`);
    logs.push(item as ClientLog);
  }
  return { kind: 'logs', apiKey, logs };
}

function toVars(apiKey: string, value: unknown): Command | ProtocolError {
  if (!Array.isArray(value)) return fail('bad_shape', 'vars must be a JSON array of {name,type,value}');
  const vars: Var[] = [];
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!isObject(item)) return fail('bad_shape', `vars[${i}] must be an object`);
    const { name, type, value: v } = item;
    if (!isVarName(name)) return fail('bad_shape', `vars[${i}].name must be a string of 1-${MAX_VAR_NAME} printable characters`);
    if (!isVarType(type)) return fail('bad_shape', `vars[${i}].type must be a string of 1-${MAX_VAR_TYPE} printable characters`);
    const wire = wireValue(v);
    if (wire === null) return fail('bad_shape', `vars[${i}].value must be a string, number or boolean`);
    vars.push({ name, type, value: wire });
  }
  return { kind: 'vars', apiKey, vars };
}

/** The daemon → SDK line for changed variables, with its newline. */
export function packVars(apiKey: string, vars: readonly Var[]): string {
  const body = vars.map(({ name, type, value }) => ({ name, type, value }));
  return `v:${apiKey}:${Buffer.from(JSON.stringify(body)).toString('base64')}\n`;
}

/** The error reply for a protocol error, with its newline. */
export function errorReply(err: Pick<ProtocolError, 'code' | 'message'>): string {
  return `${protocolErrorLine(err.code, err.message)}\n`;
}

export const OK_REPLY = 'OK\n';
