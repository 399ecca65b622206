/**
 * Connected devices: a REST snapshot on every socket (re)open, then `device` events add and remove
 * rows, and `logs`/`vars` events refresh each device's "last line".
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../api';
import { ago, duration, fullTime, shortDateTime, toMs } from '../format';
import { useLiveEvents, useNow, useSocketReady } from '../hooks';
import type { LiveSocket } from '../live-socket';
import type { Device } from '../../wire.js';

/** linesIn is only counted by the server; re-read it now and then so the column does not drift. */
const RESYNC_MS = 15_000;

function byConnectedAt(a: Device, b: Device): number {
  return (toMs(a.connectedAt) ?? 0) - (toMs(b.connectedAt) ?? 0);
}

export function DevicesPanel(props: { api: Api; socket: LiveSocket }) {
  const { api, socket } = props;
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const readies = useSocketReady(socket);
  const now = useNow(1000);
  /** Lines seen per device name since the last tick, applied once a second rather than per event. */
  const activity = useRef(new Map<string | null, { at: number; n: number }>());
  /** When each device last arrived by a live event: a snapshot read meanwhile must not drop it. */
  const arrived = useRef(new Map<string, number>());

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
          setDevices((prev) => {
            const newer = (prev ?? []).filter((d) => !ids.has(d.id) && (arrived.current.get(d.id) ?? 0) >= started);
            return [...list, ...newer].sort(byConnectedAt);
          });
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
      if (ev.event === 'connected') arrived.current.set(d.id, Date.now());
      else arrived.current.delete(d.id);
      setDevices((list) => {
        const rest = (list ?? []).filter((x) => x.id !== d.id);
        return ev.event === 'connected' ? [...rest, d].sort(byConnectedAt) : rest;
      });
    } else if (ev.type === 'logs' || ev.type === 'vars') {
      // One event is one line from the device (an l: or i: line), however many entries it carries.
      const key = ev.deviceId ?? null;
      const a = activity.current.get(key);
      activity.current.set(key, { at: Date.now(), n: (a?.n ?? 0) + 1 });
    }
  });

  const count = devices?.length ?? 0;
  return (
    <section class="card devices" aria-labelledby="devices-title">
      <header class="card-head">
        <h2 id="devices-title">
          Devices <span class="count" data-testid="device-count">{count}</span>
        </h2>
      </header>
      {error && <p class="form-error">Could not load devices: {error}</p>}
      {devices === null ? (
        <p class="empty muted">Loading…</p>
      ) : count === 0 ? (
        <div class="empty" data-testid="devices-empty">
          <strong>No devices connected yet</strong>
          <span class="muted">Start your game with the snippet above; it appears here the moment it connects.</span>
        </div>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th>Device</th>
                <th>Connected</th>
                <th>Last line</th>
                <th class="num">Lines</th>
              </tr>
            </thead>
            <tbody>
              {devices.map((d) => {
                const since = toMs(d.connectedAt);
                const last = toMs(d.lastLineAt ?? null);
                return (
                  <tr
                    key={d.id}
                    data-testid="device-row"
                    data-device-id={d.deviceId ?? ''}
                    data-connection-id={d.id}
                  >
                    <td>
                      <span class="dot running" aria-hidden="true" />
                      {d.deviceId ? <strong>{d.deviceId}</strong> : <span class="muted">unnamed device</span>}
                      <span class="sub muted mono device-addr" data-testid="device-address">
                        {d.remoteAddress}
                      </span>
                    </td>
                    <td title={since === null ? '' : `connected ${fullTime(since)}`}>
                      {since === null ? '—' : shortDateTime(since, now)}
                      {since !== null && <span class="muted"> · {duration(now - since)}</span>}
                    </td>
                    <td title={last === null ? 'no lines yet' : fullTime(last)}>{ago(last, now)}</td>
                    <td class="num">{d.linesIn ?? '—'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
