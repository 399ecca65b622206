/**
 * Pending: what a device has not been sent yet, derived from the overrides in effect for it, what it
 * reported and what it was last sent, never stored as a queue. So it is exact across nodes and
 * restarts, and it collapses per variable by construction: it is a function of state, one entry per
 * variable, not a log of changes.
 */
import type { Var } from '../model.js';
import type { LastSent } from './overrides.js';

/**
 * The variables to send the device, in the order of `inEffect`, then the restores.
 *
 * - An override in effect whose value (or type) differs from what the device was last sent, or that
 *   it was never sent, is pending.
 * - A variable the device was last sent but that no override covers any more (cleared: "back to the
 *   game's value") is pending as the device's own reported value, when that differs from what it was
 *   sent. With no report there is nothing to restore, so nothing is pending for it.
 */
export function pending(inEffect: readonly Var[], lastSent: LastSent, reported: readonly Var[] = []): Var[] {
  const out: Var[] = [];
  const covered = new Set<string>();
  for (const v of inEffect) {
    covered.add(v.name);
    const s = lastSent.get(v.name);
    if (!s || s.value !== v.value || s.type !== v.type) out.push({ name: v.name, type: v.type, value: v.value });
  }
  if (lastSent.size === 0) return out;
  const own = new Map<string, Var>();
  for (const v of reported) own.set(v.name, v);
  for (const [name, s] of lastSent) {
    if (covered.has(name)) continue;
    const r = own.get(name);
    if (r && (r.value !== s.value || r.type !== s.type)) out.push({ name, type: r.type, value: r.value });
  }
  return out;
}

/** What lastSent becomes once `sent` has been written to the device's socket. */
export function afterSend(lastSent: LastSent, sent: readonly Var[]): Map<string, Var> {
  const next = new Map(lastSent);
  for (const v of sent) next.set(v.name, { name: v.name, type: v.type, value: v.value });
  return next;
}
