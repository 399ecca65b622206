/**
 * Devices: a REST snapshot on every socket (re)open, then `device` events add and remove rows, and
 * `logs`/`vars` events refresh each device's "last line". While the live socket is down nobody tells
 * us when a device leaves, so the rows turn "unknown" until the next snapshot. Devices that went
 * away stay listed, greyed, for the rest of the session, so "none online" is not mistaken for "none
 * ever connected". The list is windowed (1,000 devices render like 20) and has a search box.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Api } from '../api';
import { ago, duration, fullTime, shortDateTime, toMs } from '../format';
import { useLiveEvents, useNow, useSocketReady, useSocketState } from '../hooks';
import type { LiveSocket } from '../live-socket';
import type { Device } from '../../wire.js';
import { VirtualList } from './virtual-list';

/** linesIn is only counted by the server; re-read it now and then so the column does not drift. */
const RESYNC_MS = 15_000;
const ROW_HEIGHT = 44;
const LIST_MAX_HEIGHT = 440;
/** How many gone devices the session remembers (the oldest are forgotten first). */
const GONE_MAX = 5000;
/** Show the search box from this many rows on. */
const FILTER_FROM = 8;

function byConnectedAt(a: Device, b: Device): number {
  return (toMs(a.connectedAt) ?? 0) - (toMs(b.connectedAt) ?? 0);
}

/** A device's identity across reconnects: its name, else (unnamed) its connection. */
function identity(d: Device): string {
  return d.deviceId ? `name:${d.deviceId}` : `conn:${d.id}`;
}

interface Gone {
  device: Device;
  at: number;
}

type Item = { kind: 'online'; device: Device } | { kind: 'gone'; device: Device; at: number };

/** Remembers the devices of `left` as gone unless one of `online` has the same identity. */
function addGone(gone: Map<string, Gone>, left: readonly Device[], online: readonly Device[], at: number): Map<string, Gone> {
  if (left.length === 0) return gone;
  const here = new Set(online.map(identity));
  const next = new Map(gone);
  for (const d of left) {
    const id = identity(d);
    if (here.has(id)) continue;
    next.delete(id);
    next.set(id, { device: d, at });
  }
  for (const oldest of next.keys()) {
    if (next.size <= GONE_MAX) break;
    next.delete(oldest);
  }
  return next;
}

function dropGone(gone: Map<string, Gone>, back: readonly Device[]): Map<string, Gone> {
  if (!back.some((d) => gone.has(identity(d)))) return gone;
  const next = new Map(gone);
  for (const d of back) next.delete(identity(d));
  return next;
}

export function DevicesPanel(props: { api: Api; socket: LiveSocket }) {
  const { api, socket } = props;
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [gone, setGone] = useState<Map<string, Gone>>(() => new Map());
  const [error, setError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  /** The `ready` count the last snapshot was read for: rows are only known for the current one. */
  const [loadedFor, setLoadedFor] = useState(-1);
  const readies = useSocketReady(socket);
  const socketState = useSocketState(socket);
  const now = useNow(1000);
  /** Lines seen per device name since the last tick, applied once a second rather than per event. */
  const activity = useRef(new Map<string | null, { at: number; n: number }>());
  /** When each device last arrived by a live event: a snapshot read meanwhile must not drop it. */
  const arrived = useRef(new Map<string, number>());
  const listRef = useRef<Device[] | null>(null);
  listRef.current = devices;

  useEffect(() => {
    if (activity.current.size === 0) return;
    const seen = activity.current;
    activity.current = new Map();
    setDevices((list) =>
      list?.map((d) => {
        const a = seen.get(d.deviceId ?? null);
        return a ? { ...d, lastLineAt: a.at, linesIn: (d.linesIn ?? 0) + a.n } : d;
      }) ?? list,
    );
  }, [now]);

  useEffect(() => {
    let alive = true;
    const load = (): void => {
      const started = Date.now();
      api.devices().then(
        (list) => {
          if (!alive) return;
          const ids = new Set(list.map((d) => d.id));
          const prev = listRef.current ?? [];
          const newer = prev.filter((d) => !ids.has(d.id) && (arrived.current.get(d.id) ?? 0) >= started);
          const next = [...list, ...newer].sort(byConnectedAt);
          // Those we listed that the daemon no longer has left while we were not told (socket down).
          const left = prev.filter((d) => !ids.has(d.id) && !newer.includes(d));
          listRef.current = next;
          setDevices(next);
          setGone((g) => dropGone(addGone(g, left, next, Date.now()), next));
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
  }, [api, readies]);

  useLiveEvents(socket, (ev) => {
    if (ev.type === 'device') {
      const d = ev.device;
      if (!d || typeof d.id !== 'string') return;
      const connected = ev.event === 'connected';
      if (connected) arrived.current.set(d.id, Date.now());
      else arrived.current.delete(d.id);
      const rest = (listRef.current ?? []).filter((x) => x.id !== d.id);
      const next = connected ? [...rest, d].sort(byConnectedAt) : rest;
      listRef.current = next;
      setDevices(next);
      setGone((g) => (connected ? dropGone(g, [d]) : addGone(g, [d], next, Date.now())));
    } else if (ev.type === 'logs' || ev.type === 'vars') {
      // One event is one line from the device (an l: or i: line), however many entries it carries.
      const key = ev.deviceId ?? null;
      const a = activity.current.get(key);
      activity.current.set(key, { at: Date.now(), n: (a?.n ?? 0) + 1 });
    }
  });

  const stale = socketState.kind !== 'open' || loadedFor !== readies;
  const online = devices ?? [];
  const count = online.length;
  const goneList = useMemo(() => [...gone.values()].reverse(), [gone]);
  const items = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const match = (d: Device): boolean => !f || (d.deviceId ?? '').toLowerCase().includes(f) || (d.remoteAddress ?? '').toLowerCase().includes(f);
    const out: Item[] = [];
    for (const d of online) if (match(d)) out.push({ kind: 'online', device: d });
    for (const g of goneList) if (match(g.device)) out.push({ kind: 'gone', device: g.device, at: g.at });
    return out;
  }, [online, goneList, filter]);
  const total = count + gone.size;

  return (
    <section class="card devices" aria-labelledby="devices-title">
      <header class="card-head">
        <h2 id="devices-title">
          Devices{' '}
          <span class={stale ? 'count stale' : 'count'} data-testid="device-count" title={stale ? 'last known; the live connection is down' : 'online now'}>
            {count}
          </span>
          {gone.size > 0 && count > 0 && <span class="muted small">+{gone.size} gone</span>}
        </h2>
        {total >= FILTER_FROM && (
          <div class="head-tools">
            <input
              type="search"
              class="input small"
              placeholder="Find a device…"
              aria-label="Find a device"
              value={filter}
              data-testid="device-filter"
              onInput={(e) => setFilter(e.currentTarget.value)}
            />
          </div>
        )}
      </header>
      {error && <p class="form-error">Could not load devices: {error}</p>}
      {stale && devices !== null && (
        <p class="stale-note" data-testid="devices-stale" role="status">
          No live connection to the daemon: device states are unknown until it is back.
        </p>
      )}
      {devices === null ? (
        <p class="empty muted">Loading…</p>
      ) : count === 0 && gone.size === 0 ? (
        <div class="empty" data-testid="devices-empty">
          <strong>No devices connected yet</strong>
          <span class="muted">Start your game with the snippet above; it appears here the moment it connects.</span>
        </div>
      ) : (
        <>
          {count === 0 && (
            <div class="empty compact" data-testid="devices-empty">
              <strong>No devices online — {gone.size} seen this session</strong>
              <span class="muted">They are listed below, greyed, until they connect again.</span>
            </div>
          )}
          <div class="dev-table">
            <div class="dev-row dev-head" aria-hidden="true">
              <span>Device</span>
              <span class="dev-connected">Connected</span>
              <span>Last line</span>
              <span class="num">Lines</span>
            </div>
            {items.length === 0 ? (
              <p class="muted center small dev-none">No device matches “{filter}”.</p>
            ) : (
              <VirtualList
                items={items}
                rowHeight={ROW_HEIGHT}
                maxHeight={LIST_MAX_HEIGHT}
                keyOf={(it) => `${it.kind}:${it.device.id}`}
                testid="devices-list"
                label="Devices"
                row={(it) => <DeviceRow item={it} now={now} stale={stale} />}
              />
            )}
          </div>
        </>
      )}
    </section>
  );
}

function DeviceRow(props: { item: Item; now: number; stale: boolean }) {
  const { item, now, stale } = props;
  const d = item.device;
  const since = toMs(d.connectedAt);
  const last = toMs(d.lastLineAt ?? null);
  const state = item.kind === 'gone' ? 'gone' : stale ? 'unknown' : 'online';
  const dotTitle = state === 'online' ? 'online' : state === 'unknown' ? 'unknown: no live connection to the daemon' : `gone ${ago(item.kind === 'gone' ? item.at : null, now)}`;
  return (
    <div
      class={`dev-row state-${state}`}
      data-testid={item.kind === 'gone' ? 'device-gone-row' : 'device-row'}
      data-device-id={d.deviceId ?? ''}
      data-connection-id={d.id}
      data-state={state}
    >
      <span class="dev-name">
        <span class={`dot ${state === 'online' ? 'running' : state}`} title={dotTitle} aria-label={dotTitle} />
        <span class="dev-label">
          {d.deviceId ? <strong>{d.deviceId}</strong> : <span class="muted">unnamed device</span>}
          <span class="sub muted mono" data-testid="device-address">
            {d.remoteAddress}
          </span>
        </span>
      </span>
      <span class="dev-connected" title={since === null ? '' : `connected ${fullTime(since)}`}>
        {item.kind === 'gone' ? (
          <span class="muted">left {ago(item.at, now)}</span>
        ) : since === null ? (
          '—'
        ) : (
          <>
            {shortDateTime(since, now)}
            <span class="muted"> · {duration(now - since)}</span>
          </>
        )}
      </span>
      <span title={last === null ? 'no lines yet' : fullTime(last)}>{ago(last, now)}</span>
      <span class="num">{d.linesIn ?? '—'}</span>
    </div>
  );
}
