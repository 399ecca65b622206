/**
 * The rules a variable's name, type and value obey when a person sets them (dashboard, CLI, API,
 * strategies): the same as the protocol's `i:` line for names and types, plus typed values in
 * canonical form, so a typo never reaches a game as NaN.
 *
 * These are the rules of `resolveVar` in src/clients/var-changes.ts, restated here because that
 * module pulls in the daemon's runtime (pubsub, store, crypto) and src/variables/ must stay pure.
 * Once the rules move into src/model.ts this file should re-export them from there.
 */
import { ObserverioError } from '../errors.js';

/** Same limits as the protocol's `i:` line (src/tcp/protocol.ts MAX_VAR_NAME / MAX_VAR_TYPE). */
export const MAX_VAR_NAME = 128;
export const MAX_VAR_TYPE = 32;

// eslint-disable-next-line no-control-regex
export const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** A value as a JSON body carries it. */
export type VarValue = string | number | boolean;

const NUMBER_TYPES = new Set(['float', 'double', 'number']);
const INTEGER_TYPES = new Set(['integer', 'int']);
const BOOLEAN_TYPES = new Set(['boolean', 'bool']);

/** A problem with a variable name, or null when it is fine. */
export function checkVarName(name: unknown): string | null {
  if (typeof name !== 'string') return 'variable name must be a string';
  if (name.length === 0 || name.length > MAX_VAR_NAME) return `variable name must be 1-${MAX_VAR_NAME} characters`;
  if (CONTROL_RE.test(name)) return 'variable name must not contain control characters';
  return null;
}

/** A problem with a type name, or null when it is fine. */
export function checkVarType(type: unknown): string | null {
  if (typeof type !== 'string' || type.length === 0 || type.length > MAX_VAR_TYPE || CONTROL_RE.test(type))
    return `type must be 1-${MAX_VAR_TYPE} printable characters`;
  return null;
}

/** The type a JSON value implies when neither the request nor an existing variable names one. */
export function inferType(value: VarValue): string {
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'float';
  if (typeof value === 'boolean') return 'boolean';
  return 'string';
}

/**
 * The value in canonical form for its type, or a problem. Integers and floats must parse as numbers
 * (`" 2 "` → `"2"`, `"1.50"` → `"1.5"`), booleans are `true`/`false` (also `1`/`0`); other types
 * keep the text as given.
 */
export function canonicalValue(type: string, value: unknown): { value: string } | { problem: string } {
  if (typeof value === 'number' && !Number.isFinite(value)) return { problem: 'value must be a finite number' };
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    return { problem: 'value must be a string, number or boolean' };
  const kind = type.toLowerCase();
  const shown = JSON.stringify(value).slice(0, 40);
  if (INTEGER_TYPES.has(kind) || NUMBER_TYPES.has(kind)) {
    const text = typeof value === 'string' ? value.trim() : value;
    if (typeof text === 'boolean' || text === '') return { problem: `value ${shown} is not a number` };
    const n = Number(text);
    if (!Number.isFinite(n)) return { problem: `value ${shown} is not a number` };
    if (INTEGER_TYPES.has(kind) && !Number.isSafeInteger(n)) return { problem: `value ${shown} is not an integer` };
    return { value: String(n) };
  }
  if (BOOLEAN_TYPES.has(kind)) {
    const text = String(value).trim().toLowerCase();
    if (text === 'true' || text === '1') return { value: 'true' };
    if (text === 'false' || text === '0') return { value: 'false' };
    return { problem: `value ${shown} is not a boolean` };
  }
  return { value: String(value) };
}

/**
 * Checks a variable set by a person and returns it with its type resolved (given, else the
 * existing variable's, else inferred) and its value canonical; errors name the variable.
 */
export function resolveVarValue(name: unknown, value: unknown, type: unknown, existingType: string | undefined): { name: string; type: string; value: string } {
  const nameProblem = checkVarName(name);
  if (nameProblem) throw new ObserverioError('bad_request', nameProblem);
  const varName = name as string;
  if (type !== undefined && type !== null) {
    const typeProblem = checkVarType(type);
    if (typeProblem) throw new ObserverioError('bad_request', `variable ${varName}: ${typeProblem}`);
  }
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    throw new ObserverioError('bad_request', `variable ${varName}: value must be a string, number or boolean`);
  const resolvedType = (type as string | undefined | null) ?? existingType ?? inferType(value);
  const c = canonicalValue(resolvedType, value);
  if ('problem' in c) throw new ObserverioError('bad_request', `variable ${varName}: ${c.problem} (type ${resolvedType})`);
  return { name: varName, type: resolvedType, value: c.value };
}

/**
 * True when two values of one type mean the same thing (`"1.50"` and `"1.5"` for a float), so a
 * device that echoes an override in its own formatting is not sent the override again and again.
 */
export function sameValue(type: string, a: string, b: string): boolean {
  if (a === b) return true;
  const ca = canonicalValue(type, a);
  const cb = canonicalValue(type, b);
  return 'value' in ca && 'value' in cb && ca.value === cb.value;
}
