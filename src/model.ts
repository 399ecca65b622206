/**
 * The domain's shared shapes: what a variable, a log and a user are, independent of any backend; and
 * the one set of rules for API keys and variables (names, types, values) that the TCP parser, the
 * variable-change service, the HTTP schemas and the SDK's codec all call. No imports: the SDK runs
 * inside games and loads this file without the daemon's dependencies.
 */

/** API keys are exactly 12 characters of [A-Za-z0-9] (DESIGN.md §2). */
export const API_KEY_RE = /^[A-Za-z0-9]{12}$/;
/** Device ids (the v:<apiKey>:<deviceId> extension). */
export const DEVICE_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** A tunable value as the wire and Redis carry it: type and value are strings. */
export interface Var {
  name: string;
  type: string;
  value: string;
}

/** Longest variable name, in UTF-16 code units (DESIGN.md §2). */
export const MAX_VAR_NAME = 128;
/** Longest variable type; any string of 1-32 printable characters is a type. */
export const MAX_VAR_TYPE = 32;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** Why a name or type is refused: not a string, empty or too long, or holding a control character. */
export type VarTextProblem = 'not_string' | 'length' | 'control';

function textProblem(text: unknown, max: number): VarTextProblem | null {
  if (typeof text !== 'string') return 'not_string';
  if (text.length === 0 || text.length > max) return 'length';
  return CONTROL_RE.test(text) ? 'control' : null;
}

/** Null for a valid variable name (1-128 printable characters), else what is wrong with it. */
export function varNameProblem(name: unknown): VarTextProblem | null {
  return textProblem(name, MAX_VAR_NAME);
}

/** Null for a valid variable type (1-32 printable characters), else what is wrong with it. */
export function varTypeProblem(type: unknown): VarTextProblem | null {
  return textProblem(type, MAX_VAR_TYPE);
}

/** Narrowing forms of the two checks above. */
export const isVarName = (name: unknown): name is string => varNameProblem(name) === null;
export const isVarType = (type: unknown): type is string => varTypeProblem(type) === null;

/** A variable's value as JSON carries it from a game or a dashboard. */
export type VarValue = string | number | boolean;

/** The wire's string for a value: a string as it is, a finite number or a boolean as String() writes it; else null. */
export function wireValue(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return String(value);
  return null;
}

/** How a type's values are read: the well-known type names (any case) and their aliases; anything else is text. */
export type VarKind = 'integer' | 'float' | 'boolean' | 'string';

// A Map, not an object literal: a type named "constructor" must not find Object.prototype's.
const KINDS: ReadonlyMap<string, VarKind> = new Map([
  ['integer', 'integer'],
  ['int', 'integer'],
  ['float', 'float'],
  ['double', 'float'],
  ['number', 'float'],
  ['boolean', 'boolean'],
  ['bool', 'boolean'],
]);

export function varKind(type: string): VarKind {
  return KINDS.get(type.toLowerCase()) ?? 'string';
}

/** The type a value gets when none is given: the name of its kind. */
export function inferVarType(value: VarValue): VarKind {
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'float';
  if (typeof value === 'boolean') return 'boolean';
  return 'string';
}

/** A value read as a number (text trimmed; empty text, booleans and non-finite results are not numbers), else null. */
export function varNumber(value: VarValue): number | null {
  const text = typeof value === 'string' ? value.trim() : value;
  if (typeof text === 'boolean' || text === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/** A value read as a boolean: true/1 and false/0, any case, trimmed; else null. */
export function varBoolean(value: VarValue): boolean | null {
  const text = String(value).trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  return null;
}

/**
 * A value in the canonical wire form of its type (numbers as String(n), booleans as true/false, text
 * as it is), or what it should have been: a typo must not reach a game as NaN.
 */
export function canonicalVarValue(type: string, value: VarValue): { value: string } | { expected: 'a number' | 'an integer' | 'a boolean' } {
  const kind = varKind(type);
  if (kind === 'integer' || kind === 'float') {
    const n = varNumber(value);
    if (n === null) return { expected: 'a number' };
    if (kind === 'integer' && !Number.isSafeInteger(n)) return { expected: 'an integer' };
    return { value: String(n) };
  }
  if (kind === 'boolean') {
    const b = varBoolean(value);
    return b === null ? { expected: 'a boolean' } : { value: String(b) };
  }
  return { value: String(value) };
}

export interface User {
  email: string;
  apiKey: string;
  createdAt: number;
}

export interface Session {
  token: string;
  apiKey: string;
  email: string;
  expiresAt: number;
}

/** One log line as indexed: the client's object plus who sent it and when it arrived. */
export interface LogEntry {
  /** Unique and increasing with receivedAt on one node: `<receivedAt>-<node>-<seq>`. */
  id: string;
  apiKey: string;
  deviceId: string | null;
  level: string;
  message: string;
  /** The client's own timestamp, as sent (unit chosen by the client), or null. */
  timestamp: number | null;
  /** Milliseconds since the epoch when the daemon received the line. */
  receivedAt: number;
  /** Any other fields the client sent. */
  fields: Record<string, unknown>;
  /**
   * Set only by the daemon on a change that reached a device (its log timeline, DESIGN.md §8); absent
   * on a game's own logs, which cannot forge it (their fields are theirs, this is not).
   */
  kind?: 'change';
}

/** A backend's answer to a health check. */
export interface BackendHealth {
  ok: boolean;
  kind: string;
  detail?: string;
}
