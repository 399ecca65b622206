/**
 * The key's variables: a REST snapshot on every socket (re)open, live values from `vars` events,
 * and for each change made here or in another tab where it went (`PUT` answer, then `delivery` /
 * `outbox_flushed` events). An edit is an override for the target picked above the table (every
 * device, the devices selected in the list, or a label selector); each variable lists the overrides
 * in effect for it, each with a button that clears it (back to the game's value). A variable can be
 * deleted after a confirmation; every dashboard of the key drops it on the `var_deleted` event.
 */
import { Component } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ConfirmDialog } from '../admin/confirm-dialog';
import { ApiError, type Api } from '../api';
import { useLiveEvents, useNow, useSocketReady } from '../hooks';
import type { LiveSocket } from '../live-socket';
import type { Override, Var } from '../../wire.js';
import { targetKind, targetText } from '../devices';
import { ALL_DEVICES, buildTarget, TargetPicker, type TargetChoice } from './target-picker';
import { toast } from './toasts';
import { type Delivery, deliveryFrom, VarRow, type VarView } from './var-row';
import { normalize, validateValue } from './var-value';

const TYPES = ['integer', 'float', 'boolean', 'string'];
/**
 * Devices' reports are applied in batches, one render per interval: 1,000 devices reporting every
 * 5 s make 200 `vars` events a second, and the table (each row's value, "who · when" and its flash)
 * re-rendered and re-laid-out on every animation frame for them.
 */
const REPORTS_FLUSH_MS = 250;

/** One empty list for every variable without overrides, so the list's render can be skipped for them too. */
const NO_OVERRIDES: Override[] = [];

/** A `vars` event waiting for the next flush, with when it arrived. */
interface Report {
  vars: Var[];
  by: string | null;
  at: number;
}

/** Merges reported vars into the list, keeping first-seen order and flagging changed values. */
function merge(list: VarView[], incoming: Var[], by: string | null, at: number | null): VarView[] {
  const next = [...list];
  const index = new Map(next.map((v, i) => [v.name, i]));
  for (const v of incoming) {
    if (!v || typeof v.name !== 'string') continue;
    const value = String(v.value ?? '');
    const i = index.get(v.name);
    const old = i === undefined ? undefined : next[i];
    if (old === undefined) {
      index.set(v.name, next.length);
      next.push({ name: v.name, type: v.type ?? 'string', value, rev: at === null ? 0 : 1, updatedAt: at, updatedBy: by });
    } else {
      const changed = old.value !== value || old.type !== v.type;
      next[i as number] = {
        ...old,
        type: v.type ?? old.type,
        value,
        rev: changed && at !== null ? old.rev + 1 : old.rev,
        updatedAt: at ?? old.updatedAt,
        updatedBy: at === null ? old.updatedBy : by,
      };
    }
  }
  return next;
}

export function VarsPanel(props: { api: Api; socket: LiveSocket; overrides: Override[] | null; selected: ReadonlySet<string> }) {
  const { api, socket, selected } = props;
  const [choice, setChoice] = useState<TargetChoice>(ALL_DEVICES);
  const [targetError, setTargetError] = useState<string | null>(null);
  const byVar = useMemo(() => {
    // Pushed, not copied per entry: 1,000 overrides of one variable made that a million copies.
    const m = new Map<string, Override[]>();
    for (const o of props.overrides ?? []) {
      const l = m.get(o.name);
      if (l) l.push(o);
      else m.set(o.name, [o]);
    }
    return m;
  }, [props.overrides]);
  const [vars, setVars] = useState<VarView[] | null>(null);
  const [deliveries, setDeliveries] = useState<Record<string, Delivery>>({});
  const [loadError, setLoadError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<{ name: string; busy: boolean } | null>(null);
  const readies = useSocketReady(socket);
  const now = useNow(1000);
  const reports = useRef<Report[]>([]);
  const reportsTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  /**
   * Applies the waiting reports now, in the order they came. Whatever else changes the list (a
   * snapshot, a save's answer, a deletion) calls it first, so it lands after the reports that came
   * before it, as when each report was applied on arrival.
   */
  const applyReports = (): void => {
    if (reportsTimer.current) clearTimeout(reportsTimer.current);
    reportsTimer.current = null;
    const waiting = reports.current;
    if (waiting.length === 0) return;
    reports.current = [];
    setVars((list) => waiting.reduce((acc, r) => merge(acc, r.vars, r.by, r.at), list ?? []));
  };
  useEffect(
    () => () => {
      if (reportsTimer.current) clearTimeout(reportsTimer.current);
    },
    [],
  );

  useEffect(() => {
    let alive = true;
    const started = Date.now();
    api.vars().then(
      (list) => {
        if (!alive) return;
        applyReports();
        // A snapshot replaces values but keeps what we know about recent updates, and keeps what
        // live events brought while it was being read.
        setVars((prev) => {
          const known = merge([], list, null, null);
          const old = new Map((prev ?? []).map((v) => [v.name, v]));
          const names = new Set(known.map((v) => v.name));
          const merged = known.map((v) => {
            const o = old.get(v.name);
            if (o && o.updatedAt !== null && o.updatedAt >= started) return o;
            return o ? { ...v, rev: o.rev, updatedAt: o.updatedAt, updatedBy: o.updatedBy } : v;
          });
          for (const o of old.values()) if (!names.has(o.name) && o.updatedAt !== null && o.updatedAt >= started) merged.push(o);
          return merged;
        });
        setLoadError(null);
      },
      (err: Error) => alive && setLoadError(err.message),
    );
    return () => {
      alive = false;
    };
  }, [api, readies]);

  useLiveEvents(socket, (ev) => {
    if (ev.type === 'vars' && Array.isArray(ev.vars)) {
      reports.current.push({ vars: ev.vars, by: ev.source === 'dashboard' ? 'dashboard' : ev.deviceId ?? null, at: Date.now() });
      if (!reportsTimer.current) reportsTimer.current = setTimeout(applyReports, REPORTS_FLUSH_MS);
    } else if ((ev.type === 'delivery' || ev.type === 'var_delivery') && typeof ev.name === 'string') {
      // `var_delivery` too: the old tag of `delivery`, still sent beside it and by older daemon nodes.
      setDeliveries((d) => ({ ...d, [ev.name]: deliveryFrom(ev.delivered ?? 0, !!ev.buffered) }));
    } else if (ev.type === 'var_deleted' && typeof ev.name === 'string') {
      forget(ev.name);
    } else if (ev.type === 'outbox_flushed' && Array.isArray(ev.names)) {
      const at = Date.now();
      setDeliveries((d) => {
        const next = { ...d };
        for (const name of ev.names) {
          next[name] = { state: 'delivered', count: Math.max(1, ev.delivered ?? 1), flushed: true, at };
        }
        return next;
      });
    }
  });

  const forget = (name: string): void => {
    applyReports();
    setVars((list) => (list && list.some((v) => v.name === name) ? list.filter((v) => v.name !== name) : list));
    setDeliveries((d) => {
      if (!(name in d)) return d;
      const next = { ...d };
      delete next[name];
      return next;
    });
  };

  const doDelete = async (name: string): Promise<void> => {
    setDeleting({ name, busy: true });
    try {
      await api.deleteVar(name);
      forget(name);
      toast(`Deleted ${name}`, 'success');
    } catch (err) {
      // Already gone (another tab deleted it first) is what was asked for.
      if (err instanceof ApiError && err.status === 404) forget(name);
      else toast(`Could not delete ${name}: ${err instanceof Error ? err.message : String(err)}`, 'error');
    } finally {
      setDeleting(null);
    }
  };

  const save = async (name: string, value: string, type?: string): Promise<void> => {
    const t = buildTarget(choice, selected);
    if ('error' in t) {
      setTargetError(t.error);
      throw new Error(t.error);
    }
    let res;
    try {
      res = await api.putVar(name, value, type, t.target);
      setTargetError(null);
    } catch (err) {
      // The daemon's message says what is wrong with the selector (position and problem).
      if (err instanceof ApiError && err.status === 400 && choice.mode === 'labels') setTargetError(err.message);
      throw err;
    }
    const saved = res?.var ?? { name, value, type: type ?? 'string' };
    applyReports();
    setVars((list) => merge(list ?? [], [saved], null, null));
    setDeliveries((d) => ({ ...d, [name]: deliveryFrom(res?.delivered ?? 0, !!res?.buffered) }));
  };

  const clear = async (o: Override): Promise<void> => {
    try {
      const res = await api.clearOverride(o.name, o.target);
      toast(`${o.name} is back to the game's value for ${targetText(o.target)} (${res.delivered} now, ${res.pending} waiting)`, 'success');
    } catch (err) {
      toast(`Could not clear ${o.name}: ${err instanceof Error ? err.message : String(err)}`, 'error');
    }
  };

  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return f && vars ? vars.filter((v) => v.name.toLowerCase().includes(f)) : (vars ?? []);
  }, [vars, filter]);

  return (
    <section class="card vars" aria-labelledby="vars-title">
      <header class="card-head">
        <h2 id="vars-title">
          Variables <span class="count">{vars?.length ?? 0}</span>
        </h2>
        <div class="head-tools">
          {(vars?.length ?? 0) > 6 && (
            <input
              type="search"
              class="input small"
              placeholder="Filter…"
              aria-label="Filter variables"
              value={filter}
              data-testid="var-filter"
              onInput={(e) => setFilter(e.currentTarget.value)}
            />
          )}
          <button
            type="button"
            class="btn small"
            data-testid="new-var-toggle"
            aria-expanded={adding}
            onClick={() => setAdding(!adding)}
          >
            {adding ? 'Cancel' : '+ Add'}
          </button>
        </div>
      </header>
      <TargetPicker
        choice={choice}
        onChange={(c) => {
          setChoice(c);
          setTargetError(null);
        }}
        selectedCount={selected.size}
        error={targetError}
        testid="var-target"
        label="Edits apply to"
      />
      {adding && (
        <NewVarForm
          exists={(n) => !!vars?.some((v) => v.name === n)}
          onSave={async (n, v, t) => {
            await save(n, v, t);
            setAdding(false);
          }}
        />
      )}
      {loadError && <p class="form-error">Could not load variables: {loadError}</p>}
      {vars === null ? (
        <p class="empty muted">Loading…</p>
      ) : vars.length === 0 ? (
        <div class="empty" data-testid="vars-empty">
          <strong>No variables yet</strong>
          <span class="muted">
            They appear as soon as your game sends them with the SDK's <code>setVar(…)</code>; you can also add one here.
          </span>
        </div>
      ) : (
        <div class="table-wrap">
          <table class="table vars-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Type</th>
                <th>Value</th>
                <th>Last change</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((v) => (
                <VarRow
                  key={v.name}
                  v={v}
                  now={now}
                  delivery={deliveries[v.name]}
                  onSave={(n, val) => save(n, val)}
                  onDelete={(n) => setDeleting({ name: n, busy: false })}
                  overrides={<OverrideList overrides={byVar.get(v.name) ?? NO_OVERRIDES} name={v.name} onClear={clear} />}
                />
              ))}
              {shown.length === 0 && (
                <tr>
                  <td colSpan={4} class="muted center">
                    No variable matches “{filter}”.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          confirmLabel="Delete"
          busy={deleting.busy}
          onConfirm={() => void doDelete(deleting.name)}
          onCancel={() => setDeleting(null)}
        >
          <p>
            <code>{deleting.name}</code> is removed from this key's variables, here and in every open dashboard. Devices
            keep their value; a game that reports it again brings it back.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

/** Overrides listed under a variable before "+N more": a strategy applied device by device makes 1,000. */
const OVERRIDES_SHOWN = 8;

/**
 * The overrides in effect for one variable. The table re-renders four times a second for devices'
 * reports, which never change this list: it re-renders only for another list (a new `overrides`
 * event), since a variable with 1,000 per-device overrides made every one of those renders long.
 */
class OverrideList extends Component<{ name: string; overrides: Override[]; onClear: (o: Override) => Promise<void> }> {
  override shouldComponentUpdate(next: { name: string; overrides: Override[] }): boolean {
    return next.overrides !== this.props.overrides || next.name !== this.props.name;
  }

  override render() {
    // Read at click time: a skipped render keeps the props of the last one (this.props is still updated).
    return <OverrideListView name={this.props.name} overrides={this.props.overrides} onClear={(o) => this.props.onClear(o)} />;
  }
}

/** Most specific first, each with a clear button; past OVERRIDES_SHOWN, the rest behind a toggle. */
function OverrideListView(props: { name: string; overrides: Override[]; onClear: (o: Override) => Promise<void> }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [all, setAll] = useState(false);
  const list = useMemo(() => {
    const rank = { devices: 0, labels: 1, all: 2 };
    return [...props.overrides].sort((a, b) => rank[targetKind(a.target)] - rank[targetKind(b.target)]);
  }, [props.overrides]);
  if (list.length === 0) return null;
  const shown = all || list.length <= OVERRIDES_SHOWN ? list : list.slice(0, OVERRIDES_SHOWN);
  return (
    <ul class="ovr-list" data-testid={`overrides-${props.name}`} aria-label={`Overrides of ${props.name}`}>
      {shown.map((o) => {
        const target = targetText(o.target);
        const kind = targetKind(o.target);
        const key = `${kind}:${target}`;
        return (
          <li key={key} class={`ovr ovr-${kind}`} data-testid="override" data-target={target} data-value={o.value}>
            <span class="ovr-target" title={`set by ${o.setBy}${o.strategy ? ` (strategy ${o.strategy})` : ''}`}>
              {target}
            </span>
            <span class="ovr-eq">=</span>
            <code class="ovr-value">{o.value}</code>
            {o.strategy && <span class="strategy-badge small">{o.strategy}</span>}
            <button
              type="button"
              class="icon-btn ovr-clear"
              title={`Clear: back to the game's value for ${target}`}
              aria-label={`Clear the override of ${props.name} for ${target}`}
              data-testid="override-clear"
              disabled={busy === key}
              onClick={() => {
                setBusy(key);
                void props.onClear(o).finally(() => setBusy(null));
              }}
            >
              ×
            </button>
          </li>
        );
      })}
      {list.length > OVERRIDES_SHOWN && (
        <li class="ovr-more">
          <button type="button" class="link small" aria-expanded={all} data-testid="overrides-more" onClick={() => setAll(!all)}>
            {all ? 'Show fewer' : `+${list.length - OVERRIDES_SHOWN} more`}
          </button>
        </li>
      )}
    </ul>
  );
}

function NewVarForm(props: { exists: (name: string) => boolean; onSave: (n: string, v: string, t: string) => Promise<void> }) {
  const [name, setName] = useState('');
  const [type, setType] = useState('integer');
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const n = name.trim();
    if (!n) return setError('Give the variable a name');
    if (/[\s:]/.test(n)) return setError('Names cannot contain spaces or colons');
    if (props.exists(n)) return setError(`${n} already exists; edit it in the table`);
    const v = type === 'boolean' ? (value === 'true' ? 'true' : 'false') : value;
    const invalid = validateValue(type, v);
    if (invalid) return setError(invalid);
    setBusy(true);
    setError(null);
    try {
      await props.onSave(n, normalize(type, v), type);
      toast(`Added ${n}`, 'success');
    } catch (err) {
      setError(err instanceof Error ? err.message : 'Could not add the variable');
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="new-var" onSubmit={submit} data-testid="new-var-form">
      <input
        class="input"
        placeholder="name"
        aria-label="New variable name"
        value={name}
        data-testid="new-var-name"
        onInput={(e) => setName(e.currentTarget.value)}
      />
      <select
        class="input"
        aria-label="New variable type"
        value={type}
        data-testid="new-var-type"
        onChange={(e) => {
          setType(e.currentTarget.value);
          setValue(e.currentTarget.value === 'boolean' ? 'false' : '');
        }}
      >
        {TYPES.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
      {type === 'boolean' ? (
        <select
          class="input"
          aria-label="New variable value"
          value={value}
          data-testid="new-var-value"
          onChange={(e) => setValue(e.currentTarget.value)}
        >
          <option value="false">false</option>
          <option value="true">true</option>
        </select>
      ) : (
        <input
          class="input"
          placeholder="value"
          aria-label="New variable value"
          value={value}
          data-testid="new-var-value"
          onInput={(e) => setValue(e.currentTarget.value)}
        />
      )}
      <button type="submit" class="btn small primary" disabled={busy} data-testid="new-var-submit">
        Add
      </button>
      {error && (
        <span class="field-error full" data-testid="new-var-error">
          {error}
        </span>
      )}
    </form>
  );
}
