/** How each variable type is validated and written back: values always travel as strings. */

export type EditorKind = 'integer' | 'float' | 'boolean' | 'text';

export function editorKind(type: string): EditorKind {
  const t = type.toLowerCase();
  if (t === 'integer' || t === 'int' || t === 'long') return 'integer';
  if (t === 'float' || t === 'double' || t === 'number' || t === 'decimal') return 'float';
  if (t === 'boolean' || t === 'bool') return 'boolean';
  return 'text';
}

const INTEGER_RE = /^[-+]?\d+$/;
const FLOAT_RE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** A message saying what is wrong with `value` for this type, or null when it can be saved. */
export function validateValue(type: string, value: string): string | null {
  const kind = editorKind(type);
  const v = value.trim();
  if (kind === 'integer') {
    if (v === '') return 'Enter a whole number';
    if (!INTEGER_RE.test(v)) return 'Must be a whole number';
    if (!Number.isSafeInteger(Number(v))) return 'Number is too large';
  } else if (kind === 'float') {
    if (v === '') return 'Enter a number';
    if (!FLOAT_RE.test(v) || !Number.isFinite(Number(v))) return 'Must be a number';
  }
  return null;
}

export function isTrue(value: string): boolean {
  return ['true', '1', 'yes', 'on'].includes(value.trim().toLowerCase());
}

/** Keeps the game's own spelling: a flag it sent as "1"/"0" is written back as "1"/"0". */
export function formatBoolean(checked: boolean, previous: string): string {
  const p = previous.trim();
  if (p === '1' || p === '0') return checked ? '1' : '0';
  if (p === 'True' || p === 'False') return checked ? 'True' : 'False';
  return checked ? 'true' : 'false';
}

export function normalize(type: string, value: string): string {
  const kind = editorKind(type);
  return kind === 'integer' || kind === 'float' ? value.trim() : value;
}
