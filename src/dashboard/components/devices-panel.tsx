/**
 * Devices: a REST snapshot on every socket (re)open (online and remembered devices, their labels and
 * the strategy each runs), then `device` events (connections coming and going), `device_state`
 * events (a device's summary changed) and `logs`/`vars` events (its last line) keep it current. While
 * the live socket is down nobody tells us when a device leaves, so the rows turn "unknown" until the
 * next snapshot. Devices that went away stay listed, greyed, so "none online" is not mistaken for
 * "none ever connected". The list is windowed (1,000 devices render like 20) and has a search box
 * (id, address or a label). Rows have checkboxes: a selection is a target, and "Apply strategy ▾"
 * applies a strategy to it in two clicks. A device's name opens its page.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Api } from '../api';
import { byName, formatLabels, fromConnection, mergeDevice, type DeviceView } from '../devices';
import { ago, fullTime, plural } from '../format';
import { deviceHref, useLiveBatches, useNow, useSocketReady, useSocketState } from '../hooks';
import type { LiveSocket } from '../live-socket';
import type { StrategyAnswer } from '../../wire.js';
import { toDeviceView } from '../devices';
import { toast } from './toasts';
import { VirtualList } from './virtual-list';

/** Re-read the list now and then: strategies and pending counts change without a device event. */
const RESYNC_MS = 15_000;
const ROW_HEIGHT = 44;
const LIST_MAX_HEIGHT = 440;
/** How many offline devices are kept (the longest gone are forgotten first). */
const GONE_MAX = 5000;
/** Show the search box from this many rows on. */
const FILTER_FROM = 8;
/** A change of overrides or strategies changes strategies and pending counts: re-read once per burst. */
const CHANGE_RELOAD_MS = 300;

type Devices = ReadonlyMap<string, DeviceView>;

function boundGone(map: Map<string, DeviceView>): Map<string, DeviceView> {
  const gone = [...map.values()].filter((d) => !d.online);
  if (gone.length <= GONE_MAX) return map;
  gone.sort((a, b) => (a.lastSeen ?? 0) - (b.lastSeen ?? 0));
  for (const d of gone.slice(0, gone.length - GONE_MAX)) map.delete(d.key);
  return map;
}

export function DevicesPanel(props: {
  api: Api;
  socket: LiveSocket;
  strategies: StrategyAnswer[] | null;
  selected: ReadonlySet<string>;
  onSelect: (next: Set<string>) => void;
}) {
  const { api, socket, selected, onSelect } = props;
  const [devices, setDevices] = useState<Devices | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  /** The `ready` count the last snapshot was read for: rows are only known for the current one. */
  const [loadedFor, setLoadedFor] = useState(-1);
  /** Bumped to re-read the list after a change of overrides or strategies. */
  const [changed, setChanged] = useState(0);
  const changeTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => void (changeTimer.current && clearTimeout(changeTimer.current)), []);
  const readies = useSocketReady(socket);
  const socketState = useSocketState(socket);
  const now = useNow(1000);
  /** Lines seen per device id since the last tick, applied once a second rather than per event. */
  const activity = useRef(new Map<string, { at: number; n: number }>());
  /** When each device last arrived by a live event: a snapshot read meanwhile must not drop it. */
  const arrived = useRef(new Map<string, number>());
  const ref = useRef<Devices | null>(null);
  ref.current = devices;
  const put = (next: Map<string, DeviceView>): void => {
    ref.current = next;
    setDevices(next);
  };

  useEffect(() => {
    if (activity.current.size === 0 || !ref.current) return;
    const seen = activity.current;
    activity.current = new Map();
    const next = new Map(ref.current);
    for (const [key, a] of seen) {
      const d = next.get(key);
      if (d) next.set(key, { ...d, lastLineAt: a.at, lastSeen: Math.max(d.lastSeen ?? 0, a.at), linesIn: d.linesIn === null ? null : d.linesIn + a.n });
    }
    put(next);
  }, [now]);

  useEffect(() => {
    let alive = true;
    const load = (): void => {
      const started = Date.now();
      api.devices().then(
        (list) => {
          if (!alive) return;
          const prev = ref.current ?? new Map<string, DeviceView>();
          const next = new Map<string, DeviceView>();
          for (const d of list) next.set(d.key, mergeDevice(prev.get(d.key), d, 'summary'));
          for (const d of prev.values()) {
            if (next.has(d.key)) continue;
            if ((arrived.current.get(d.key) ?? 0) >= started) next.set(d.key, d);
            // A named device the daemon no longer lists left while we were not told: keep it as gone.
            else if (d.deviceId !== null) next.set(d.key, d.online ? { ...d, online: false, lastSeen: Date.now() } : d);
          }
          put(boundGone(next));
          setLoadedFor(readies);
          setError(null);
        },
        (err: Error) => alive && setError(err.message),
      );
    };
    load();
    const t = setInterval(load, RESYNC_MS);
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, [api, readies, changed]);

  // A frame's events are applied to one copy of the list, so a burst of connections (1,000 devices
  // coming back) copies and re-sorts the 1,000 rows once rather than once per event.
  useLiveBatches(socket, (events) => {
    let next: Map<string, DeviceView> | null = null;
    let connections = false;
    const edit = (): Map<string, DeviceView> => (next ??= new Map(ref.current ?? []));
    for (const ev of events) {
      if (ev.type === 'overrides' || ev.type === 'strategies' || ev.type === 'history') {
        if (!changeTimer.current)
          changeTimer.current = setTimeout(() => {
            changeTimer.current = null;
            setChanged((n) => n + 1);
          }, CHANGE_RELOAD_MS);
      } else if (ev.type === 'device') {
        const d = ev.device;
        if (!d || typeof d.id !== 'string') continue;
        const connected = ev.event === 'connected';
        const view = fromConnection(d, connected);
        if (connected) arrived.current.set(view.key, Date.now());
        else arrived.current.delete(view.key);
        const m = edit();
        if (!connected && view.deviceId === null) m.delete(view.key);
        else m.set(view.key, mergeDevice(m.get(view.key), view, 'connection'));
        connections = true;
      } else if (ev.type === 'device_state') {
        const view = toDeviceView(ev.device);
        if (!view) continue;
        arrived.current.set(view.key, Date.now());
        const m = edit();
        m.set(view.key, mergeDevice(m.get(view.key), view, 'summary'));
      } else if ((ev.type === 'logs' || ev.type === 'vars') && ev.deviceId) {
        // One event is one line from the device (an l: or i: line), however many entries it carries.
        const a = activity.current.get(ev.deviceId);
        activity.current.set(ev.deviceId, { at: Date.now(), n: (a?.n ?? 0) + 1 });
      }
    }
    if (next) put(connections ? boundGone(next) : next);
  });

  const stale = socketState.kind !== 'open' || loadedFor !== readies;
  const all = useMemo(() => [...(devices?.values() ?? [])], [devices]);
  const online = useMemo(() => all.filter((d) => d.online).sort(byName), [all]);
  const gone = useMemo(() => all.filter((d) => !d.online).sort((a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0)), [all]);
  const count = online.length;
  const items = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const match = (d: DeviceView): boolean =>
      !f || d.key.toLowerCase().includes(f) || (d.lastAddress ?? '').toLowerCase().includes(f) || formatLabels(d.labels).toLowerCase().includes(f);
    return [...online.filter(match), ...gone.filter(match)];
  }, [online, gone, filter]);
  const total = all.length;
  const selectable = items.filter((d) => d.deviceId !== null);
  const allShownSelected = selectable.length > 0 && selectable.every((d) => selected.has(d.deviceId as string));

  const toggle = (id: string, on: boolean): void => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    onSelect(next);
  };
  const toggleShown = (on: boolean): void => {
    const next = new Set(selected);
    for (const d of selectable) if (on) next.add(d.deviceId as string);
    else next.delete(d.deviceId as string);
    onSelect(next);
  };

  return (
    <section class="card devices" aria-labelledby="devices-title">
      <header class="card-head">
        <h2 id="devices-title">
          Devices{' '}
          <span class={stale ? 'count stale' : 'count'} data-testid="device-count" title={stale ? 'last known; the live connection is down' : 'online now'}>
            {count}
          </span>
          {gone.length > 0 && count > 0 && <span class="muted small">+{gone.length} gone</span>}
        </h2>
        {total >= FILTER_FROM && (
          <div class="head-tools">
            <input
              type="search"
              class="input small"
              placeholder="Find a device or label…"
              aria-label="Find a device"
              value={filter}
              data-testid="device-filter"
              onInput={(e) => setFilter(e.currentTarget.value)}
            />
          </div>
        )}
      </header>
      {selected.size > 0 && (
        <SelectionBar api={api} selected={selected} strategies={props.strategies} onClear={() => onSelect(new Set())} />
      )}
      {error && <p class="form-error">Could not load devices: {error}</p>}
      {stale && devices !== null && (
        <p class="stale-note" data-testid="devices-stale" role="status">
          No live connection to the daemon: device states are unknown until it is back.
        </p>
      )}
      {devices === null ? (
        <p class="empty muted">Loading…</p>
      ) : total === 0 ? (
        <div class="empty" data-testid="devices-empty">
          <strong>No devices connected yet</strong>
          <span class="muted">Start your game with the snippet above; it appears here the moment it connects.</span>
        </div>
      ) : (
        <>
          {count === 0 && (
            <div class="empty compact" data-testid="devices-empty">
              <strong>No devices online — {gone.length} seen before</strong>
              <span class="muted">They are listed below, greyed, until they connect again.</span>
            </div>
          )}
          <div class="dev-table">
            <div class="dev-row dev-head">
              <span class="dev-check">
                <input
                  type="checkbox"
                  aria-label="Select every device shown"
                  title="Select every device shown"
                  checked={allShownSelected}
                  disabled={selectable.length === 0}
                  data-testid="device-select-all"
                  onChange={(e) => toggleShown(e.currentTarget.checked)}
                />
              </span>
              <span aria-hidden="true">Device</span>
              <span aria-hidden="true">Strategy</span>
              <span class="dev-seen" aria-hidden="true">
                Last seen
              </span>
              <span class="num" aria-hidden="true" title="changes waiting for the device">
                Pending
              </span>
            </div>
            {items.length === 0 ? (
              <p class="muted center small dev-none">No device matches “{filter}”.</p>
            ) : (
              <VirtualList
                items={items}
                rowHeight={ROW_HEIGHT}
                maxHeight={LIST_MAX_HEIGHT}
                keyOf={(d) => `${d.online ? 'on' : 'off'}:${d.key}`}
                testid="devices-list"
                label="Devices"
                row={(d) => <DeviceRow d={d} now={now} stale={stale} checked={d.deviceId !== null && selected.has(d.deviceId)} onCheck={toggle} />}
              />
            )}
          </div>
        </>
      )}
    </section>
  );
}

/** What the selection can do: apply a strategy to exactly those devices, or be cleared. */
function SelectionBar(props: { api: Api; selected: ReadonlySet<string>; strategies: StrategyAnswer[] | null; onClear: () => void }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const away = (e: Event): void => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false);
    };
    addEventListener('pointerdown', away);
    return () => removeEventListener('pointerdown', away);
  }, [open]);
  const ids = [...props.selected].sort();
  const apply = async (name: string): Promise<void> => {
    setOpen(false);
    setBusy(true);
    try {
      const res = await props.api.applyStrategy(name, { devices: ids });
      toast(`Applied ${name} to ${plural(ids.length, 'device')}: ${res.delivered} now, ${res.pending} waiting`, 'success');
    } catch (err) {
      toast(`Could not apply ${name}: ${err instanceof Error ? err.message : String(err)}`, 'error');
    } finally {
      setBusy(false);
    }
  };
  const list = props.strategies ?? [];
  return (
    <div class="selection-bar" data-testid="device-selection">
      <span>
        <strong data-testid="selected-count">{ids.length}</strong> selected
      </span>
      <div class="menu-wrap" ref={box}>
        <button type="button" class="btn small primary" aria-haspopup="menu" aria-expanded={open} disabled={busy} data-testid="apply-strategy-menu" onClick={() => setOpen(!open)}>
          {busy ? 'Applying…' : 'Apply strategy ▾'}
        </button>
        {open && (
          <ul class="menu" role="menu" data-testid="apply-strategy-options">
            {list.length === 0 ? (
              <li class="muted small menu-note">No strategies yet: create one in Strategies.</li>
            ) : (
              list.map((s) => (
                <li key={s.name} role="none">
                  <button type="button" role="menuitem" class="menu-item" data-testid={`apply-strategy-${s.name}`} onClick={() => void apply(s.name)}>
                    <strong>{s.name}</strong>
                    <span class="muted small"> · {plural(s.vars.length, 'var')}</span>
                  </button>
                </li>
              ))
            )}
          </ul>
        )}
      </div>
      <button type="button" class="btn small ghost" data-testid="selection-clear" onClick={props.onClear}>
        Clear
      </button>
    </div>
  );
}

function DeviceRow(props: { d: DeviceView; now: number; stale: boolean; checked: boolean; onCheck: (id: string, on: boolean) => void }) {
  const { d, now, stale } = props;
  const state = !d.online ? 'gone' : stale ? 'unknown' : 'online';
  const dotTitle = state === 'online' ? 'online' : state === 'unknown' ? 'unknown: no live connection to the daemon' : `offline, last seen ${ago(d.lastSeen, now)}`;
  const labels = formatLabels(d.labels);
  const name = d.deviceId && !d.generated ? <strong>{d.deviceId}</strong> : <span class="muted">unnamed device</span>;
  return (
    <div
      class={`dev-row state-${state}`}
      data-testid={d.online ? 'device-row' : 'device-gone-row'}
      data-device-id={d.generated && d.key.startsWith('conn:') ? '' : d.deviceId ?? ''}
      data-state={state}
      data-strategy={d.strategy ?? ''}
    >
      <span class="dev-check">
        <input
          type="checkbox"
          checked={props.checked}
          disabled={d.deviceId === null}
          aria-label={`Select ${d.deviceId ?? 'device'}`}
          data-testid="device-select"
          onChange={(e) => d.deviceId && props.onCheck(d.deviceId, e.currentTarget.checked)}
        />
      </span>
      <span class="dev-name">
        <span class={`dot ${state === 'online' ? 'running' : state}`} title={dotTitle} aria-label={dotTitle} />
        <span class="dev-label">
          {d.deviceId ? (
            <a href={deviceHref(d.deviceId)} class="dev-link" data-testid="device-link" title={d.generated ? `generated id ${d.deviceId}` : `open ${d.deviceId}`}>
              {name}
            </a>
          ) : (
            name
          )}
          <span class="sub muted mono" title={labels ? `labels: ${labels}` : undefined}>
            <span data-testid="device-address">{d.lastAddress ?? ''}</span>
            {labels && <span class="dev-labels"> · {labels}</span>}
          </span>
        </span>
      </span>
      <span class="dev-strategy" data-testid="device-strategy">
        {d.strategy ? <span class={d.strategy === 'mixed' ? 'strategy-badge mixed' : 'strategy-badge'}>{d.strategy}</span> : <span class="muted">—</span>}
      </span>
      <span class="dev-seen" title={d.lastSeen === null ? '' : fullTime(d.lastSeen)}>
        {d.online && !stale ? (d.lastLineAt ? ago(d.lastLineAt, now) : 'online') : ago(d.lastSeen, now)}
      </span>
      <span class="num" data-testid="device-pending">
        {d.pendingCount > 0 ? <span class="pill warn">{d.pendingCount}</span> : <span class="muted">0</span>}
      </span>
    </div>
  );
}
