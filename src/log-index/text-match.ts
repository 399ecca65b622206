/**
 * Word matching for the in-memory index, close to what Meilisearch does with typo tolerance off and
 * matchingStrategy 'all': case and accents are ignored, every query word must appear as a word, the
 * last one possibly as a prefix. Chinese, Japanese and Korean text has no spaces between words, so a
 * query word in those scripts matches anywhere in the text.
 */

const SEPARATORS = /[\s\p{P}]+/u;
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const MARKS = /\p{M}/gu;
const MAX_DEPTH = 8;

export function fold(s: string): string {
  return s.normalize('NFKD').replace(MARKS, '').toLowerCase();
}

export function words(s: string): string[] {
  return fold(s)
    .split(SEPARATORS)
    .filter((w) => w.length > 0);
}

/** The folded words of a log's searchable text, space-delimited on both ends for word lookups. */
export function searchText(message: string, fields: Record<string, unknown>): string {
  const out: string[] = words(message);
  collect(fields, out, 0);
  return ` ${out.join(' ')} `;
}

function collect(v: unknown, out: string[], depth: number): void {
  if (typeof v === 'string') out.push(...words(v));
  else if (typeof v === 'number' && Number.isFinite(v)) out.push(String(v));
  else if (depth < MAX_DEPTH && typeof v === 'object' && v !== null) {
    for (const x of Array.isArray(v) ? v : Object.values(v)) collect(x, out, depth + 1);
  }
}

export interface TextMatcher {
  (text: string): boolean;
}

/** A predicate over `searchText` output; null when the query has no words (matches everything). */
export function textMatcher(q: string): TextMatcher | null {
  const ws = words(q);
  if (ws.length === 0) return null;
  const needles = ws.map((w, i) => (CJK.test(w) ? w : i === ws.length - 1 ? ` ${w}` : ` ${w} `));
  return (text) => needles.every((n) => text.includes(n));
}
