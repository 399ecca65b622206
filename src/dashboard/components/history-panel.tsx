/**
 * History: every change to the key's overrides and strategies, newest first (who, when, what, for
 * which target, each variable before → after, how many devices it reached). Pages back with
 * `before`; new entries arrive by the `history` event. Each entry can be reverted, and the key rolled
 * back to the state right after it (after a confirmation); both become entries of their own.
 */
import { useEffect, useState } from 'preact/hooks';
import { ConfirmDialog } from '../admin/confirm-dialog';
import type { Api } from '../api';
import { targetText } from '../devices';
import { ago, fullTime, plural } from '../format';
import { useLiveEvents, useNow, useSocketReady } from '../hooks';
import type { LiveSocket } from '../live-socket';
import type { HistoryEntry, OverrideValue } from '../../wire.js';
import { toast } from './toasts';

const PAGE = 20;

const ACTIONS: Record<string, string> = {
  'override.set': 'set',
  'override.clear': 'cleared',
  'strategy.create': 'created strategy',
  'strategy.update': 'edited strategy',
  'strategy.delete': 'deleted strategy',
  'strategy.apply': 'applied strategy',
  revert: 'reverted',
  rollback: 'rolled back',
};

export function actionText(e: HistoryEntry): string {
  return ACTIONS[e.action] ?? e.action;
}

function valueText(v: OverrideValue | null): string {
  return v === null ? "game's value" : v.value;
}

/** Newest first, one entry per id (a live event may repeat what a page already holds). */
function mergeEntries(a: readonly HistoryEntry[], b: readonly HistoryEntry[]): HistoryEntry[] {
  const byId = new Map<string, HistoryEntry>();
  for (const e of [...a, ...b]) if (e && typeof e.id === 'string') byId.set(e.id, e);
  return [...byId.values()].sort((x, y) => y.at - x.at || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0));
}

export function HistoryPanel(props: { api: Api; socket: LiveSocket }) {
  const { api, socket } = props;
  const [entries, setEntries] = useState<HistoryEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [more, setMore] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [confirm, setConfirm] = useState<{ entry: HistoryEntry; busy: boolean } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const readies = useSocketReady(socket);
  const now = useNow(5000);

  useEffect(() => {
    let alive = true;
    api.history(PAGE).then(
      (list) => {
        if (!alive) return;
        setEntries((old) => mergeEntries(old ?? [], list));
        setMore(list.length >= PAGE);
        setError(null);
      },
      (err: Error) => alive && setError(err.message),
    );
    return () => {
      alive = false;
    };
  }, [api, readies]);

  useLiveEvents(socket, (ev) => {
    if (ev.type === 'history' && ev.entry && typeof ev.entry.id === 'string') setEntries((old) => mergeEntries(old ?? [], [ev.entry]));
  });

  const older = async (): Promise<void> => {
    const last = entries?.[entries.length - 1];
    if (!last) return;
    setLoadingMore(true);
    try {
      const list = await api.history(PAGE, last.id);
      setEntries((old) => mergeEntries(old ?? [], list));
      setMore(list.length >= PAGE);
    } catch (err) {
      toast(`Could not load older entries: ${err instanceof Error ? err.message : String(err)}`, 'error');
    } finally {
      setLoadingMore(false);
    }
  };

  const add = (e: HistoryEntry): void => setEntries((old) => mergeEntries(old ?? [], [e]));

  const revert = async (e: HistoryEntry): Promise<void> => {
    setBusy(e.id);
    try {
      const res = await api.revert(e.id);
      add(res.entry);
      toast(`Reverted: ${res.delivered} devices now, ${res.pending} waiting`, 'success');
    } catch (err) {
      toast(`Could not revert: ${err instanceof Error ? err.message : String(err)}`, 'error');
    } finally {
      setBusy(null);
    }
  };

  const rollback = async (e: HistoryEntry): Promise<void> => {
    setConfirm({ entry: e, busy: true });
    try {
      const res = await api.rollback(e.id);
      add(res.entry);
      toast(`Rolled back to ${fullTime(e.at)}: ${res.delivered} devices now, ${res.pending} waiting`, 'success');
    } catch (err) {
      toast(`Could not roll back: ${err instanceof Error ? err.message : String(err)}`, 'error');
    } finally {
      setConfirm(null);
    }
  };

  return (
    <section class="card history" aria-labelledby="history-title">
      <header class="card-head">
        <h2 id="history-title">History</h2>
        <span class="muted small">every change, newest first</span>
      </header>
      {error && <p class="form-error">Could not load the history: {error}</p>}
      {entries === null ? (
        !error && <p class="empty muted">Loading…</p>
      ) : entries.length === 0 ? (
        <div class="empty" data-testid="history-empty">
          <strong>No changes yet</strong>
          <span class="muted">Every override, strategy and revert made from here, the CLI or the API is listed here.</span>
        </div>
      ) : (
        <>
          <ol class="history-list" data-testid="history-list">
            {entries.map((e, i) => (
              <HistoryItem
                key={e.id}
                e={e}
                now={now}
                newest={i === 0}
                busy={busy === e.id}
                onRevert={() => void revert(e)}
                onRollback={() => setConfirm({ entry: e, busy: false })}
              />
            ))}
          </ol>
          {more && (
            <button type="button" class="btn small wide" data-testid="history-older" disabled={loadingMore} onClick={() => void older()}>
              {loadingMore ? 'Loading…' : 'Older entries'}
            </button>
          )}
        </>
      )}
      {confirm && (
        <ConfirmDialog
          title="Roll back to this point?"
          confirmLabel="Roll back"
          busy={confirm.busy}
          onConfirm={() => void rollback(confirm.entry)}
          onCancel={() => setConfirm(null)}
        >
          <p>
            Every override and strategy goes back to what it was right after <strong>{confirm.entry.actor}</strong> {actionText(confirm.entry)} at{' '}
            {new Date(confirm.entry.at).toLocaleString()}. Newer changes are undone (the history keeps them, and the rollback is an entry of its own).
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function HistoryItem(props: { e: HistoryEntry; now: number; newest: boolean; busy: boolean; onRevert: () => void; onRollback: () => void }) {
  const { e } = props;
  const strategyNames = e.strategies.map((s) => s.name);
  return (
    <li class={`history-entry action-${e.action.replace('.', '-')}`} data-testid="history-entry" data-id={e.id} data-action={e.action}>
      <div class="history-head">
        <span>
          <strong class="history-actor">{e.actor}</strong> <span class="history-action">{actionText(e)}</span>
          {strategyNames.length > 0 && e.action.startsWith('strategy.') && <strong class="mono"> {strategyNames.join(', ')}</strong>}
          {e.target && <span class="muted"> for {targetText(e.target)}</span>}
        </span>
        <time class="muted small" title={fullTime(e.at)}>
          {ago(e.at, props.now)}
        </time>
      </div>
      {e.changes.length > 0 && (
        <ul class="history-changes">
          {e.changes.map((c) => (
            <li key={`${c.name}:${targetText(c.target)}`} data-testid="history-change" data-name={c.name}>
              <code>{c.name}</code>
              {(!e.target || targetText(e.target) !== targetText(c.target)) && <span class="muted small"> ({targetText(c.target)})</span>}{' '}
              <span class="before">{valueText(c.before)}</span> → <span class="after">{valueText(c.after)}</span>
            </li>
          ))}
        </ul>
      )}
      {e.changes.length === 0 && e.strategies.length > 0 && (
        <ul class="history-changes">
          {e.strategies.map((s) => (
            <li key={s.name}>
              <code>{s.name}</code>{' '}
              <span class="before">{s.before === null ? 'none' : s.before.map((v) => `${v.name}=${v.value}`).join(', ')}</span> →{' '}
              <span class="after">{s.after === null ? 'deleted' : s.after.map((v) => `${v.name}=${v.value}`).join(', ')}</span>
            </li>
          ))}
        </ul>
      )}
      <div class="history-foot">
        <span class="muted small" data-testid="history-delivered">
          reached {plural(e.delivered, 'device')}
          {e.revertOf && ` · reverts #${e.revertOf}`}
          {e.rollbackTo && ` · back to #${e.rollbackTo}`}
        </span>
        <span class="history-actions">
          <button type="button" class="btn tiny" data-testid="history-revert" disabled={props.busy} onClick={props.onRevert} title="Undo just this change">
            Revert
          </button>
          <button
            type="button"
            class="btn tiny"
            data-testid="history-rollback"
            disabled={props.newest}
            onClick={props.onRollback}
            title={props.newest ? 'This is the current state' : 'Put everything back as it was right after this change'}
          >
            Roll back to here
          </button>
        </span>
      </div>
    </li>
  );
}
