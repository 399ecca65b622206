/**
 * Strategies: named presets of variable values (DESIGN.md §8). Lists them with how many devices run
 * each, creates and edits them (a name and `name=value` lines; the daemon resolves each type from the
 * key's variables), deletes one after a confirmation, and applies one to a target. An edit carries
 * the version it started from: when someone saved meanwhile the daemon answers 409, which is said in
 * words and the list is reloaded (the edit stays in the box to be reapplied).
 */
import { useState } from 'preact/hooks';
import { ConfirmDialog } from '../admin/confirm-dialog';
import { ApiError, type Api } from '../api';
import { ago, plural } from '../format';
import { useNow } from '../hooks';
import type { StrategyAnswer, StrategyBody } from '../../wire.js';
import { buildTarget, TargetPicker, type TargetChoice } from './target-picker';
import { toast } from './toasts';

type Editing = { kind: 'new' } | { kind: 'edit'; strategy: StrategyAnswer };

/** `name=value` (or `name:type=value`) per line; blank lines and `#` comments are skipped. */
export function parseVarsText(text: string): { vars: StrategyBody['vars'] } | { error: string } {
  const vars: StrategyBody['vars'] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { error: `Line ${i + 1}: write name=value` };
    const left = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const colon = left.indexOf(':');
    const name = colon < 0 ? left : left.slice(0, colon).trim();
    const type = colon < 0 ? undefined : left.slice(colon + 1).trim();
    if (!name || /\s/.test(name)) return { error: `Line ${i + 1}: "${name}" is not a variable name` };
    if (seen.has(name)) return { error: `Line ${i + 1}: ${name} is set twice` };
    seen.add(name);
    vars.push(type ? { name, value, type } : { name, value });
  }
  if (vars.length === 0) return { error: 'Give the strategy at least one variable (name=value)' };
  return { vars };
}

export function varsText(s: StrategyAnswer): string {
  return s.vars.map((v) => `${v.name}=${v.value}`).join('\n');
}

export function StrategiesPanel(props: { api: Api; strategies: StrategyAnswer[] | null; error: string | null; selected: ReadonlySet<string>; reload: () => void }) {
  const { api, strategies } = props;
  const [editing, setEditing] = useState<Editing | null>(null);
  const [deleting, setDeleting] = useState<{ name: string; busy: boolean } | null>(null);
  const now = useNow(5000);

  const doDelete = async (name: string): Promise<void> => {
    setDeleting({ name, busy: true });
    try {
      await api.deleteStrategy(name);
      toast(`Deleted strategy ${name}`, 'success');
    } catch (err) {
      toast(`Could not delete ${name}: ${err instanceof Error ? err.message : String(err)}`, 'error');
    } finally {
      setDeleting(null);
      props.reload();
    }
  };

  return (
    <section class="card strategies" aria-labelledby="strategies-title">
      <header class="card-head">
        <h2 id="strategies-title">
          Strategies <span class="count">{strategies?.length ?? 0}</span>
        </h2>
        <div class="head-tools">
          <button
            type="button"
            class="btn small"
            data-testid="strategy-new"
            aria-expanded={editing?.kind === 'new'}
            onClick={() => setEditing(editing?.kind === 'new' ? null : { kind: 'new' })}
          >
            {editing?.kind === 'new' ? 'Cancel' : '+ New'}
          </button>
        </div>
      </header>
      {props.error && <p class="form-error">Could not load strategies: {props.error}</p>}
      {editing?.kind === 'new' && <StrategyForm api={api} editing={editing} onDone={() => setEditing(null)} reload={props.reload} />}
      {strategies === null ? (
        !props.error && <p class="empty muted">Loading…</p>
      ) : strategies.length === 0 && editing?.kind !== 'new' ? (
        <div class="empty" data-testid="strategies-empty">
          <strong>No strategies yet</strong>
          <span class="muted">A strategy is a named set of values (enemy_speed=3, spawn_ms=400) to apply to some devices in one step.</span>
        </div>
      ) : (
        <ul class="strategy-list">
          {strategies.map((s) => (
            <li key={s.name} class="strategy" data-testid={`strategy-${s.name}`} data-version={s.version}>
              {editing?.kind === 'edit' && editing.strategy.name === s.name ? (
                <StrategyForm api={api} editing={editing} latest={s} onDone={() => setEditing(null)} reload={props.reload} />
              ) : (
                <StrategyItem
                  api={api}
                  s={s}
                  now={now}
                  selected={props.selected}
                  onEdit={() => setEditing({ kind: 'edit', strategy: s })}
                  onDelete={() => setDeleting({ name: s.name, busy: false })}
                />
              )}
            </li>
          ))}
        </ul>
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete strategy ${deleting.name}?`}
          confirmLabel="Delete"
          busy={deleting.busy}
          onConfirm={() => void doDelete(deleting.name)}
          onCancel={() => setDeleting(null)}
        >
          <p>The preset is removed. Overrides it already set stay in effect until cleared; devices running it show “mixed” or nothing.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function StrategyItem(props: { api: Api; s: StrategyAnswer; now: number; selected: ReadonlySet<string>; onEdit: () => void; onDelete: () => void }) {
  const { s } = props;
  const [applying, setApplying] = useState(false);
  const [choice, setChoice] = useState<TargetChoice>({ mode: props.selected.size > 0 ? 'selected' : 'all', selector: '' });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const apply = async (e: Event): Promise<void> => {
    e.preventDefault();
    const t = buildTarget(choice, props.selected);
    if ('error' in t) return setError(t.error);
    setBusy(true);
    setError(null);
    try {
      const res = await props.api.applyStrategy(s.name, t.target);
      toast(`Applied ${s.name}: ${res.delivered} now, ${res.pending} waiting`, 'success');
      setApplying(false);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <div class="strategy-head">
        <strong class="mono strategy-name">{s.name}</strong>
        <span class="muted small" data-testid="strategy-devices">
          {plural(s.devices, 'device')} running it
        </span>
        <span class="muted small strategy-meta" title={`version ${s.version}`}>
          {s.updatedBy} · {ago(s.updatedAt, props.now)}
        </span>
        <span class="strategy-actions">
          <button
            type="button"
            class={applying ? 'btn small' : 'btn small primary'}
            data-testid="strategy-apply-toggle"
            aria-expanded={applying}
            onClick={() => {
              setApplying(!applying);
              setError(null);
              if (!applying) setChoice((c) => ({ ...c, mode: props.selected.size > 0 ? 'selected' : c.mode === 'selected' ? 'all' : c.mode }));
            }}
          >
            {applying ? 'Cancel' : 'Apply…'}
          </button>
          <button type="button" class="btn small" data-testid="strategy-edit" onClick={props.onEdit}>
            Edit
          </button>
          <button type="button" class="btn small danger-ghost icon" aria-label={`Delete ${s.name}`} title={`Delete ${s.name}`} data-testid="strategy-delete" onClick={props.onDelete}>
            ✕
          </button>
        </span>
      </div>
      <div class="strategy-vars">
        {s.vars.map((v) => (
          <code key={v.name} class="chip" data-testid="strategy-var">
            {v.name}={v.value}
          </code>
        ))}
      </div>
      {applying && (
        <form class="strategy-apply" onSubmit={apply} data-testid="strategy-apply-form">
          <TargetPicker choice={choice} onChange={setChoice} selectedCount={props.selected.size} error={error} testid="strategy-target" label="Apply to" />
          <button type="submit" class="btn small primary" disabled={busy} data-testid="strategy-apply">
            {busy ? 'Applying…' : `Apply ${s.name}`}
          </button>
        </form>
      )}
    </>
  );
}

function StrategyForm(props: { api: Api; editing: Editing; latest?: StrategyAnswer; onDone: () => void; reload: () => void }) {
  const editing = props.editing;
  const original = editing.kind === 'edit' ? editing.strategy : null;
  /** The version this edit is based on; after a 409 the user saves over the version reloaded. */
  const [base, setBase] = useState(original?.version);
  const [stale, setStale] = useState(false);
  const [name, setName] = useState(original?.name ?? '');
  const [text, setText] = useState(original ? varsText(original) : '');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const n = name.trim();
    if (!n) return setError('Give the strategy a name');
    const parsed = parseVarsText(text);
    if ('error' in parsed) return setError(parsed.error);
    setBusy(true);
    setError(null);
    try {
      const version = stale ? props.latest?.version : base;
      if (original) await props.api.updateStrategy(original.name, version === undefined ? { vars: parsed.vars } : { vars: parsed.vars, version });
      else await props.api.createStrategy({ name: n, vars: parsed.vars });
      toast(original ? `Saved strategy ${n}` : `Created strategy ${n}`, 'success');
      props.reload();
      props.onDone();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && original) {
        setError(`Someone else saved ${original.name} while you were editing it (${err.message}). The list was reloaded with their version; your edit is still here: Save again to replace theirs, or Cancel.`);
        setStale(true);
        setBase(undefined);
        props.reload();
      } else if (err instanceof ApiError && err.status === 409) {
        setError(`A strategy named ${n} already exists.`);
      } else {
        setError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="strategy-form" onSubmit={submit} data-testid="strategy-form">
      <input
        class="input"
        placeholder="name, e.g. fast-enemies"
        aria-label="Strategy name"
        value={name}
        disabled={!!original}
        data-testid="strategy-name"
        onInput={(e) => setName(e.currentTarget.value)}
      />
      <textarea
        class="input mono"
        rows={Math.min(8, Math.max(3, text.split('\n').length + 1))}
        placeholder={'enemy_speed=3\nspawn_ms=400'}
        aria-label="Strategy variables, one name=value a line"
        spellcheck={false}
        value={text}
        data-testid="strategy-vars"
        onInput={(e) => setText(e.currentTarget.value)}
      />
      <div class="strategy-form-actions">
        <button type="submit" class="btn small primary" disabled={busy} data-testid="strategy-save">
          {busy ? 'Saving…' : original ? 'Save' : 'Create'}
        </button>
        {original && (
          <button type="button" class="btn small ghost" onClick={props.onDone} data-testid="strategy-cancel">
            Cancel
          </button>
        )}
      </div>
      {error && (
        <span class="field-error full" role="alert" data-testid="strategy-error">
          {error}
        </span>
      )}
    </form>
  );
}
