/**
 * One device's page (`#/devices/<id>`): its labels, online or last seen, the strategy it runs (or
 * "mixed"), each variable's game value (reported), override and effective value with where it comes
 * from, what is still pending for it, and its log tail. A variable can be overridden for this device
 * only, or reset (its device-only override cleared: back to the game's value, or to a broader
 * override if one covers the device). The page re-reads `GET /api/devices/:id` whenever an event
 * says something it shows may have changed.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type Api } from '../api';
import { formatLabels, isDeviceOnly, targetText } from '../devices';
import { ago, fullTime } from '../format';
import { useLiveEvents, useNow, useSocketReady } from '../hooks';
import type { LiveSocket } from '../live-socket';
import type { DeviceAnswer, EffectiveVar } from '../../wire.js';
import { LogsPanel } from './logs-panel';
import { toast } from './toasts';
import { editorKind, normalize, validateValue } from './var-value';

/** Events come in bursts (a strategy applied to 50 devices): one re-read per burst. */
const REFRESH_DEBOUNCE_MS = 150;

type Load = { status: 'loading' } | { status: 'ok'; device: DeviceAnswer } | { status: 'missing' } | { status: 'error'; message: string };

export function DevicePage(props: { api: Api; socket: LiveSocket; deviceId: string }) {
  const { api, socket, deviceId } = props;
  const [load, setLoad] = useState<Load>({ status: 'loading' });
  const [asked, setAsked] = useState(0);
  const readies = useSocketReady(socket);
  const now = useNow(1000);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const refresh = (): void => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      setAsked((n) => n + 1);
    }, REFRESH_DEBOUNCE_MS);
  };
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);

  useEffect(() => {
    setLoad({ status: 'loading' });
  }, [deviceId]);

  useEffect(() => {
    const ctl = new AbortController();
    api.device(deviceId, ctl.signal).then(
      (device) => setLoad({ status: 'ok', device }),
      (err: Error) => {
        if (ctl.signal.aborted) return;
        if (err instanceof ApiError && err.status === 404) setLoad({ status: 'missing' });
        else setLoad((l) => (l.status === 'ok' ? l : { status: 'error', message: err.message }));
      },
    );
    return () => ctl.abort();
  }, [api, deviceId, readies, asked]);

  useLiveEvents(socket, (ev) => {
    if (ev.type === 'overrides' || ev.type === 'strategies' || ev.type === 'history' || ev.type === 'delivery' || ev.type === 'outbox_flushed') refresh();
    else if (ev.type === 'device_state' && ev.device?.deviceId === deviceId) refresh();
    else if ((ev.type === 'vars' || ev.type === 'device') && (ev.type === 'vars' ? ev.deviceId : ev.device?.deviceId) === deviceId) refresh();
    else if (ev.type === 'vars' && ev.source === 'dashboard') refresh();
  });

  return (
    <main class="device-page" data-testid="device-page" data-device-id={deviceId}>
      <nav class="crumbs">
        <a href="#/" data-testid="device-back">
          ← All devices
        </a>
      </nav>
      {load.status === 'loading' && <p class="empty muted">Loading {deviceId}…</p>}
      {load.status === 'missing' && (
        <div class="empty" data-testid="device-missing">
          <strong>No device “{deviceId}”</strong>
          <span class="muted">It never connected with this key, or it was forgotten after being away too long.</span>
        </div>
      )}
      {load.status === 'error' && <p class="form-error">Could not load {deviceId}: {load.message}</p>}
      {load.status === 'ok' && <DeviceDetails api={api} d={load.device} now={now} onChanged={refresh} />}
      <LogsPanel api={api} socket={socket} device={deviceId} />
    </main>
  );
}

function DeviceDetails(props: { api: Api; d: DeviceAnswer; now: number; onChanged: () => void }) {
  const { d, now } = props;
  const labels = Object.entries(d.labels ?? {});
  return (
    <>
      <section class="card device-head" aria-labelledby="device-title">
        <header class="card-head">
          <h2 id="device-title" class="mono device-title">
            <span class={`dot ${d.online ? 'running' : 'gone'}`} aria-hidden="true" />
            {d.deviceId}
          </h2>
          <span class={d.online ? 'pill ok' : 'pill'} data-testid="device-online" data-online={String(d.online)}>
            {d.online ? 'online' : `offline · last seen ${ago(d.lastSeen, now)}`}
          </span>
        </header>
        <dl class="facts">
          <div>
            <dt>Strategy</dt>
            <dd data-testid="device-page-strategy">{d.strategy ? <span class={d.strategy === 'mixed' ? 'strategy-badge mixed' : 'strategy-badge'}>{d.strategy}</span> : <span class="muted">none</span>}</dd>
          </div>
          <div>
            <dt>Labels</dt>
            <dd data-testid="device-labels" title={formatLabels(d.labels ?? {})}>
              {labels.length === 0 ? <span class="muted">none declared</span> : labels.map(([k, v]) => <code key={k} class="chip">{k}={v}</code>)}
            </dd>
          </div>
          <div>
            <dt>Last seen</dt>
            <dd title={fullTime(d.lastSeen)}>{d.online ? 'now' : ago(d.lastSeen, now)}</dd>
          </div>
          <div>
            <dt>Address</dt>
            <dd class="mono">{d.lastAddress ?? '—'}</dd>
          </div>
          {d.generated && (
            <div>
              <dt>Id</dt>
              <dd class="muted">generated: the game named no device</dd>
            </div>
          )}
        </dl>
      </section>
      <section class="card device-vars" aria-labelledby="device-vars-title">
        <header class="card-head">
          <h2 id="device-vars-title">
            Variables <span class="count">{d.vars.length}</span>
          </h2>
          <span class="muted small">effective = override if one targets this device, else the game's value</span>
        </header>
        {d.vars.length === 0 ? (
          <div class="empty">
            <strong>No variables yet</strong>
            <span class="muted">This device has not reported any, and no override targets it.</span>
          </div>
        ) : (
          <div class="table-wrap">
            <table class="table dvars-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Game value</th>
                  <th>Override</th>
                  <th>Effective</th>
                  <th>For this device only</th>
                </tr>
              </thead>
              <tbody>
                {d.vars.map((v) => (
                  <DeviceVarRow key={v.name} api={props.api} deviceId={d.deviceId} v={v} onChanged={props.onChanged} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="card device-pending" aria-labelledby="device-pending-title">
        <header class="card-head">
          <h2 id="device-pending-title">
            Pending <span class="count" data-testid="device-pending-count">{d.pending.length}</span>
          </h2>
          <span class="muted small">what it has not been sent yet</span>
        </header>
        {d.pending.length === 0 ? (
          <p class="muted small" data-testid="device-pending-none">
            Nothing waits for this device{d.online ? '' : ' (it gets every override in effect when it connects)'}.
          </p>
        ) : (
          <ul class="pending-list" data-testid="device-pending-list">
            {d.pending.map((p) => (
              <li key={p.name} data-testid="device-pending-item" data-name={p.name}>
                <code>{p.name}</code> = <code>{p.value}</code> <span class="type-badge">{p.type}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

function DeviceVarRow(props: { api: Api; deviceId: string; v: EffectiveVar; onChanged: () => void }) {
  const { v, deviceId } = props;
  const [draft, setDraft] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const own = v.source === 'override' && isDeviceOnly(v.target, deviceId);
  const shown = draft ?? v.effective;
  const dirty = draft !== null && draft !== v.effective;
  const invalid = dirty ? validateValue(v.type, shown) : null;
  const kind = editorKind(v.type);

  const set = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!dirty || invalid || busy || draft === null) return;
    setBusy(true);
    setError(null);
    try {
      const res = await props.api.putVar(v.name, normalize(v.type, draft), v.type, { devices: [deviceId] });
      toast(`${v.name}=${res.var.value} for ${deviceId} only: ${res.delivered ? 'delivered' : 'waiting for it to connect'}`, 'success');
      setDraft(null);
      props.onChanged();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  const reset = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await props.api.clearOverride(v.name, { devices: [deviceId] });
      toast(`${v.name} on ${deviceId} is back to ${v.reported === null ? "the game's value" : `the game's value ${v.reported}`}`, 'success');
      setDraft(null);
      props.onChanged();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <tr data-testid={`dvar-${v.name}`} data-source={v.source} data-effective={v.effective} data-reported={v.reported ?? ''} data-override={v.override ?? ''}>
      <td class="var-name">
        <span class="mono">{v.name}</span> <span class="type-badge">{v.type}</span>
      </td>
      <td data-label="Game value" data-testid="dvar-reported">
        {v.reported === null ? <span class="muted">not reported</span> : <code>{v.reported}</code>}
      </td>
      <td data-label="Override" data-testid="dvar-override">
        {v.override === null ? (
          <span class="muted">—</span>
        ) : (
          <>
            <code>{v.override}</code>
            <span class="sub muted">
              for {own ? 'this device' : targetText(v.target)}
              {v.strategy ? ` · ${v.strategy}` : ''}
            </span>
          </>
        )}
      </td>
      <td data-label="Effective" data-testid="dvar-effective">
        <code class="effective">{v.effective}</code>{' '}
        <span class={`source-badge source-${v.source}`} data-testid="dvar-source">
          {v.source === 'override' ? 'override' : 'game'}
        </span>
      </td>
      <td class="dvar-edit">
        <form class="var-form" onSubmit={set}>
          {kind === 'boolean' ? (
            <select class="input small" aria-label={`${v.name} for ${deviceId}`} value={shown} data-testid={`dvar-editor-${v.name}`} onChange={(e) => setDraft(e.currentTarget.value)}>
              {[...new Set(['true', 'false', shown])].map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          ) : (
            <input
              class={invalid ? 'input small invalid' : 'input small'}
              type={kind === 'text' ? 'text' : 'number'}
              step={kind === 'integer' ? 1 : kind === 'float' ? 'any' : undefined}
              value={shown}
              spellcheck={false}
              autoComplete="off"
              aria-label={`${v.name} for ${deviceId}`}
              data-testid={`dvar-editor-${v.name}`}
              onInput={(e) => setDraft(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') setDraft(null);
              }}
            />
          )}
          <button type="submit" class={dirty ? 'btn small primary' : 'btn small'} disabled={!dirty || !!invalid || busy} data-testid={`dvar-set-${v.name}`} title={`Override ${v.name} on ${deviceId} only`}>
            Set
          </button>
          <button
            type="button"
            class="btn small ghost"
            disabled={!own || busy}
            data-testid={`dvar-reset-${v.name}`}
            onClick={() => void reset()}
            title={own ? "Clear this device's override: back to the game's value" : v.source === 'override' ? `Set for ${targetText(v.target)}: clear it in Variables` : 'Already the game’s value'}
          >
            Reset
          </button>
        </form>
        {(invalid || error) && (
          <span class="field-error" data-testid={`dvar-error-${v.name}`}>
            {invalid ?? error}
          </span>
        )}
      </td>
    </tr>
  );
}
