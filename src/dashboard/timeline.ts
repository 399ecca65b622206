/**
 * A device's log timeline holds two kinds of entries (DESIGN.md §8): the game's own log lines
 * (`kind: "log"`, or no kind from an older daemon) and the dashboard's changes that reached the
 * device (`kind: "change"`: who changed what, from what to what). This reads the kind and the change's
 * facts wherever the entry carries them (beside the entry's fields or among them).
 */
import type { ChangeTimelineFields, LogEntry } from '../wire.js';

export type KindFilter = '' | 'log' | 'change';

export type TimelineEntry = LogEntry & Partial<ChangeTimelineFields> & { kind?: string };

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
}

/** The change an entry records, or null for a game log line. */
export function changeOf(e: TimelineEntry): ChangeTimelineFields | null {
  const f = (e.fields && typeof e.fields === 'object' ? e.fields : {}) as Record<string, unknown>;
  const kind = e.kind ?? f.kind;
  if (kind !== 'change') return null;
  const pick = (k: keyof ChangeTimelineFields): unknown => ((e as unknown as Record<string, unknown>)[k] !== undefined ? (e as unknown as Record<string, unknown>)[k] : f[k]);
  return {
    kind: 'change',
    actor: str(pick('actor')) ?? 'someone',
    action: str(pick('action')) ?? 'change',
    name: str(pick('name')) ?? '?',
    before: str(pick('before')),
    after: str(pick('after')),
    historyId: str(pick('historyId')) ?? '',
  };
}

export function kindMatches(e: TimelineEntry, kind: KindFilter): boolean {
  if (!kind) return true;
  return (changeOf(e) !== null) === (kind === 'change');
}

/** The fields worth showing beside a change's sentence (its own facts are in the sentence). */
export const CHANGE_KEYS: ReadonlySet<string> = new Set(['kind', 'actor', 'action', 'name', 'before', 'after', 'historyId']);
