/** One variable: a type-aware inline editor, its save and delete buttons and where the last change went. */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ago, plural } from '../format';
import type { Var } from '../../wire.js';
import { editorKind, formatBoolean, isTrue, normalize, validateValue } from './var-value';

export type Delivery =
  | { state: 'delivered'; count: number; flushed: boolean; at: number }
  | { state: 'waiting'; at: number }
  | { state: 'undelivered'; at: number };

export interface VarView extends Var {
  /** Bumped whenever a device reports a new value, to replay the highlight. */
  rev: number;
  updatedAt: number | null;
  updatedBy: string | null;
}

export function deliveryFrom(delivered: number, buffered: boolean, at = Date.now()): Delivery {
  if (delivered > 0) return { state: 'delivered', count: delivered, flushed: false, at };
  if (buffered) return { state: 'waiting', at };
  return { state: 'undelivered', at };
}

export function deliveryText(d: Delivery): string {
  if (d.state === 'delivered') return `delivered to ${plural(d.count, 'device')}`;
  if (d.state === 'waiting') return 'waiting for a device';
  return 'saved; no device received it';
}

export function VarRow(props: {
  v: VarView;
  delivery: Delivery | undefined;
  now: number;
  onSave: (name: string, value: string) => Promise<void>;
  onDelete: (name: string) => void;
  /** The overrides in effect for the variable, shown under its editor. */
  overrides?: ComponentChildren;
}) {
  const { v, delivery, now } = props;
  const kind = editorKind(v.type);
  const [draft, setDraft] = useState<string | null>(null);
  const [base, setBase] = useState(v.value);
  const [badInput, setBadInput] = useState(false);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);

  const shown = draft ?? v.value;
  const dirty = draft !== null && (draft !== v.value || badInput);
  const invalid = dirty ? (badInput ? 'Must be a number' : validateValue(v.type, shown)) : null;
  const remoteChanged = dirty && v.value !== base;

  const edit = (value: string, bad = false): void => {
    if (draft === null) setBase(v.value);
    setDraft(value);
    setBadInput(bad);
    setSaveError(null);
  };
  const revert = (): void => {
    setDraft(null);
    setBadInput(false);
    setSaveError(null);
  };
  const save = async (e?: Event): Promise<void> => {
    e?.preventDefault();
    if (!dirty || invalid || saving || draft === null) return;
    setSaving(true);
    setSaveError(null);
    try {
      await props.onSave(v.name, normalize(v.type, draft));
      setDraft(null);
    } catch (err) {
      setSaveError(err instanceof Error ? err.message : 'Save failed');
    } finally {
      setSaving(false);
    }
  };

  const id = `var-${v.name}`;
  let editor;
  if (kind === 'boolean') {
    const checked = isTrue(shown);
    editor = (
      <label class="switch">
        <input
          type="checkbox"
          role="switch"
          id={id}
          checked={checked}
          aria-label={`${v.name} value`}
          data-testid={`var-editor-${v.name}`}
          onChange={(e) => edit(formatBoolean(e.currentTarget.checked, v.value))}
        />
        <span class="switch-text">{checked ? 'on' : 'off'}</span>
      </label>
    );
  } else {
    editor = (
      <input
        id={id}
        class={invalid ? 'input invalid' : 'input'}
        type={kind === 'text' ? 'text' : 'number'}
        step={kind === 'integer' ? 1 : kind === 'float' ? 'any' : undefined}
        inputMode={kind === 'integer' ? 'numeric' : kind === 'float' ? 'decimal' : undefined}
        value={shown}
        spellcheck={false}
        autoComplete="off"
        aria-label={`${v.name} value`}
        aria-invalid={invalid ? true : undefined}
        data-testid={`var-editor-${v.name}`}
        onInput={(e) => edit(e.currentTarget.value, e.currentTarget.validity.badInput)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') revert();
        }}
      />
    );
  }

  return (
    <tr data-testid={`var-row-${v.name}`} data-type={v.type} data-value={v.value} class={dirty ? 'dirty' : ''}>
      <td class="var-name">
        <label for={id} class="mono">
          {v.name}
        </label>
        {v.updatedAt !== null && (
          <span class="sub muted">
            {v.updatedBy ?? 'device'} · {ago(v.updatedAt, now)}
          </span>
        )}
      </td>
      <td>
        <span class="type-badge">{v.type || 'string'}</span>
      </td>
      <td class="var-value">
        <form class="var-form" onSubmit={save}>
          <span class="editor">
            {v.rev > 0 && <span key={v.rev} class="flash" aria-hidden="true" />}
            {editor}
          </span>
          <button
            type="submit"
            class={dirty ? 'btn small primary' : 'btn small'}
            disabled={!dirty || !!invalid || saving}
            data-testid={`var-save-${v.name}`}
          >
            {saving ? 'Saving…' : 'Save'}
          </button>
          <button
            type="button"
            class="btn small ghost"
            onClick={revert}
            title="Discard the edit (Esc)"
            style={{ visibility: dirty && !saving ? 'visible' : 'hidden' }}
            tabIndex={dirty ? 0 : -1}
          >
            Undo
          </button>
          <button
            type="button"
            class="btn small danger-ghost icon"
            title={`Delete ${v.name}`}
            aria-label={`Delete ${v.name}`}
            data-testid={`var-delete-${v.name}`}
            onClick={() => props.onDelete(v.name)}
            disabled={saving}
          >
            ✕
          </button>
        </form>
        {invalid && (
          <span class="field-error" data-testid={`var-error-${v.name}`}>
            {invalid}
          </span>
        )}
        {saveError && (
          <span class="field-error" data-testid={`var-error-${v.name}`}>
            {saveError}
          </span>
        )}
        {remoteChanged && <span class="sub warn-text">game now reports {v.value}</span>}
        {props.overrides}
      </td>
      <td class="var-status" data-testid={`var-status-${v.name}`} data-state={delivery?.state ?? 'none'}>
        {delivery && (
          <>
            <span class={`status-text ${delivery.state}`}>
              <span class="status-icon" aria-hidden="true" />
              {deliveryText(delivery)}
            </span>
            <span class="sub muted">
              {delivery.state === 'delivered' && delivery.flushed ? 'sent on reconnect · ' : ''}
              {ago(delivery.at, now)}
            </span>
          </>
        )}
      </td>
    </tr>
  );
}
