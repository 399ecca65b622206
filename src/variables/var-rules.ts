/**
 * The rules a variable's name, type and value obey when a person sets them (dashboard, CLI, API,
 * strategies), as messages for people: the rules themselves are model.ts's, the one home the TCP
 * parser, the change service, the HTTP schemas and the SDK's codec share.
 */
import { ObserverioError } from '../errors.js';
import { canonicalVarValue, inferVarType, MAX_VAR_NAME, MAX_VAR_TYPE, varNameProblem, varTypeProblem, type VarValue } from '../model.js';

export { MAX_VAR_NAME, MAX_VAR_TYPE, type VarValue };

const isValue = (v: unknown): v is VarValue => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** A problem with a variable name, or null when it is fine. */
export function checkVarName(name: unknown): string | null {
  switch (varNameProblem(name)) {
    case null:
      return null;
    case 'not_string':
      return 'variable name must be a string';
    case 'length':
      return `variable name must be 1-${MAX_VAR_NAME} characters`;
    case 'control':
      return 'variable name must not contain control characters';
  }
}

/** A problem with a type name, or null when it is fine. */
export function checkVarType(type: unknown): string | null {
  return varTypeProblem(type) === null ? null : `type must be 1-${MAX_VAR_TYPE} printable characters`;
}

/** The type a JSON value implies when neither the request nor an existing variable names one. */
export const inferType = (value: VarValue): string => inferVarType(value);

/**
 * The value in canonical form for its type, or a problem. Integers and floats must parse as numbers
 * (`" 2 "` → `"2"`, `"1.50"` → `"1.5"`), booleans are `true`/`false` (also `1`/`0`); other types
 * keep the text as given.
 */
export function canonicalValue(type: string, value: unknown): { value: string } | { problem: string } {
  if (typeof value === 'number' && !Number.isFinite(value)) return { problem: 'value must be a finite number' };
  if (!isValue(value)) return { problem: 'value must be a string, number or boolean' };
  const c = canonicalVarValue(type, value);
  return 'value' in c ? c : { problem: `value ${JSON.stringify(value).slice(0, 40)} is not ${c.expected}` };
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
