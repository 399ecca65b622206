/**
 * The live log tail, newest at the top: the game's log lines and, marked apart, the dashboard's
 * changes that reached a device (kind "change": who changed what, from → to), with a kind filter. Pausing buffers incoming lines (and counts them) until
 * resumed; typing in the search box switches to server-side search (GET /api/logs, debounced).
 * Level and device filters apply to both; the device filter is a search box with suggestions (a
 * dropdown of every device seen would hold 1,000 options with 1,000 devices). Rows are memoised, so
 * a flush of new lines renders only the new rows, and only the newest 100 lines are in the page until
 * the list is scrolled down. With `device`, it is that device's tail (its page).
 */
import { Component } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Api } from '../api';
import { clockTime, compact, fullTime, plural } from '../format';
import { useDebounced, useLiveEvents, useSocketReady } from '../hooks';
import type { LiveSocket } from '../live-socket';
import type { LogEntry } from '../../wire.js';
import { CHANGE_KEYS, changeOf, kindMatches, type KindFilter, type TimelineEntry } from '../timeline';

const TAIL_MAX = 500;
const PENDING_MAX = 5000;
const SNAPSHOT_LIMIT = 200;
const SEARCH_LIMIT = 200;
const SEARCH_DEBOUNCE_MS = 300;
const BASE_LEVELS = ['error', 'warn', 'info', 'debug'];
/** Incoming lines are applied in batches: one render per interval however fast devices log. */
const FLUSH_MS = 250;
/** Suggestions under the device search box. */
const DEVICE_SUGGESTIONS = 8;
/**
 * The live tail puts this many of its lines in the page, and this many more each time the list is
 * scrolled near its end: at 1,000 lines/s a flush brings 250 lines, and creating and removing 500
 * rows' elements four times a second was most of the page's main-thread work. The box shows ~25.
 */
const RENDER_STEP = 100;
/** "Near the end" of the list, for showing more of the tail. */
const MORE_MARGIN_PX = 300;

function newestFirst(a: LogEntry, b: LogEntry): number {
  return b.receivedAt - a.receivedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export function levelClass(level: string): string {
  const l = (level || '').toLowerCase();
  if (l.startsWith('err') || l === 'fatal' || l === 'critical' || l === 'panic') return 'lvl-error';
  if (l.startsWith('warn')) return 'lvl-warn';
  if (l.startsWith('debug') || l === 'trace' || l === 'verbose') return 'lvl-debug';
  return 'lvl-info';
}

function matches(e: LogEntry, level: string, device: string, kind: KindFilter): boolean {
  return (!level || e.level === level) && (!device || (e.deviceId ?? '') === device) && kindMatches(e, kind);
}

type Search =
  | { status: 'idle' }
  | { status: 'loading'; q: string }
  | { status: 'done'; q: string; hits: LogEntry[]; total: number }
  | { status: 'error'; q: string; message: string };

export function LogsPanel(props: { api: Api; socket: LiveSocket; device?: string }) {
  const { api, socket } = props;
  const fixed = props.device;
  const [kind, setKind] = useState<KindFilter>('');
  const [tail, setTail] = useState<LogEntry[] | null>(null);
  const [pending, setPending] = useState<LogEntry[]>([]);
  const [paused, setPaused] = useState(false);
  const [level, setLevel] = useState('');
  const [deviceText, setDeviceText] = useState('');
  const typedDevice = useDebounced(deviceText.trim(), 150);
  const device = fixed ?? typedDevice;
  const [query, setQuery] = useState('');
  const [search, setSearch] = useState<Search>({ status: 'idle' });
  const [levelsSeen, setLevelsSeen] = useState<string[]>([]);
  /** Every device id seen in a line, for the device box's suggestions; bumped when one is new. */
  const devicesSeen = useRef(new Set<string>());
  const [, setDevicesVersion] = useState(0);
  const seen = useRef(new Set<string>());
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const searchBox = useRef<HTMLInputElement>(null);
  const inbox = useRef<LogEntry[]>([]);
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lastResults = useRef<LogEntry[]>([]);
  const readies = useSocketReady(socket);
  const q = useDebounced(query.trim(), SEARCH_DEBOUNCE_MS);

  const note = (entries: LogEntry[]): void => {
    const lv = new Set<string>();
    const dv = new Set<string>();
    for (const e of entries) {
      if (e.level) lv.add(e.level);
      if (e.deviceId) dv.add(e.deviceId);
    }
    setLevelsSeen((old) => (([...lv].every((l) => old.includes(l))) ? old : [...new Set([...old, ...lv])]));
    let added = false;
    for (const d of dv) {
      if (devicesSeen.current.has(d)) continue;
      devicesSeen.current.add(d);
      added = true;
    }
    if (added) setDevicesVersion((v) => v + 1);
  };

  /** Drops lines already shown (a snapshot after reconnect overlaps the tail). */
  const fresh = (entries: LogEntry[]): LogEntry[] => {
    const out: LogEntry[] = [];
    for (const e of entries) {
      if (!e || typeof e.id !== 'string' || seen.current.has(e.id)) continue;
      seen.current.add(e.id);
      out.push(e);
    }
    return out;
  };

  const trimSeen = (kept: LogEntry[], extra: LogEntry[]): void => {
    if (seen.current.size > (TAIL_MAX + PENDING_MAX) * 2) {
      seen.current = new Set([...kept, ...extra].map((e) => e.id));
    }
  };

  useEffect(() => {
    let alive = true;
    api.logs(fixed ? { limit: SNAPSHOT_LIMIT, device: fixed } : { limit: SNAPSHOT_LIMIT }).then(
      (res) => {
        if (!alive) return;
        const add = fresh(res.hits);
        note(add);
        setTail((t) => [...add, ...(t ?? [])].sort(newestFirst).slice(0, TAIL_MAX));
      },
      () => alive && setTail((t) => t ?? []),
    );
    return () => {
      alive = false;
    };
  }, [api, readies, fixed]);

  const flush = (): void => {
    flushTimer.current = null;
    const add = fresh(inbox.current).sort(newestFirst);
    inbox.current = [];
    if (add.length === 0) return;
    note(add);
    if (pausedRef.current) {
      setPending((p) => [...add, ...p].slice(0, PENDING_MAX));
    } else {
      setTail((t) => {
        const next = [...add, ...(t ?? [])].slice(0, TAIL_MAX);
        trimSeen(next, []);
        return next;
      });
    }
  };

  useEffect(
    () => () => {
      if (flushTimer.current) clearTimeout(flushTimer.current);
    },
    [],
  );

  useLiveEvents(socket, (ev) => {
    if (ev.type !== 'logs' || !Array.isArray(ev.logs)) return;
    if (fixed && ev.deviceId !== fixed && !ev.logs.some((l) => l.deviceId === fixed)) return;
    for (const l of ev.logs) if (!fixed || (l.deviceId ?? ev.deviceId) === fixed) inbox.current.push({ ...l, deviceId: l.deviceId ?? ev.deviceId ?? null });
    if (inbox.current.length > PENDING_MAX) inbox.current = inbox.current.slice(-PENDING_MAX);
    if (!flushTimer.current) flushTimer.current = setTimeout(flush, FLUSH_MS);
  });

  useEffect(() => {
    if (!q) {
      lastResults.current = [];
      setSearch({ status: 'idle' });
      return;
    }
    const ctl = new AbortController();
    setSearch({ status: 'loading', q });
    api.logs({ q, level, device, ...(kind ? { kind } : {}), limit: SEARCH_LIMIT }, ctl.signal).then(
      (res) => {
        lastResults.current = res.hits;
        setSearch({ status: 'done', q, hits: res.hits, total: res.total });
      },
      (err: Error) => {
        if (!ctl.signal.aborted) setSearch({ status: 'error', q, message: err.message });
      },
    );
    return () => ctl.abort();
  }, [api, q, level, device, kind]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const t = e.target as HTMLElement | null;
      const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
      if (e.key === '/' && !typing && searchBox.current?.offsetParent) {
        e.preventDefault();
        searchBox.current?.focus();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  const togglePause = (): void => {
    if (paused) {
      setTail((t) => {
        const next = [...pending, ...(t ?? [])].slice(0, TAIL_MAX);
        trimSeen(next, []);
        return next;
      });
      setPending([]);
    }
    setPaused(!paused);
  };

  const clear = (): void => {
    setTail([]);
    setPending([]);
  };

  const searching = search.status !== 'idle';
  const rows = useMemo(() => {
    if (search.status === 'done') return search.hits;
    // Keep the previous answer on screen while the next one loads, so typing does not flicker.
    if (search.status === 'loading') return lastResults.current;
    if (searching) return [];
    return (tail ?? []).filter((e) => matches(e, level, device, kind));
  }, [search, searching, tail, level, device, kind]);

  const levels = [...BASE_LEVELS, ...levelsSeen.filter((l) => !BASE_LEVELS.includes(l)).sort()];

  // Search answers (at most SEARCH_LIMIT) render whole; the tail renders its newest `rendered` lines.
  const [rendered, setRendered] = useState(RENDER_STEP);
  const shown = searching ? rows : rows.slice(0, rendered);
  const onListScroll = (e: Event): void => {
    const el = e.currentTarget as HTMLElement;
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - MORE_MARGIN_PX) {
      if (rendered < rows.length) setRendered(rendered + RENDER_STEP);
    } else if (el.scrollTop === 0 && rendered > RENDER_STEP) {
      // Back at the newest lines: drop the older rows again so a fast tail stays cheap.
      setRendered(RENDER_STEP);
    }
  };

  return (
    <section class={fixed ? 'card logs device-logs' : 'card logs'} aria-labelledby={fixed ? 'device-logs-title' : 'logs-title'}>
      <header class="card-head">
        <h2 id={fixed ? 'device-logs-title' : 'logs-title'}>{fixed ? 'Log tail' : 'Logs'}</h2>
        <div class="head-tools logs-tools">
          <div class="search">
            <input
              ref={searchBox}
              type="search"
              class="input"
              placeholder="Search logs…  ( / )"
              aria-label="Search logs"
              value={query}
              data-testid="log-search"
              onInput={(e) => setQuery(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') setQuery('');
              }}
            />
          </div>
          <select
            class="input"
            aria-label="Level"
            value={level}
            data-testid="log-level-filter"
            onChange={(e) => setLevel(e.currentTarget.value)}
          >
            <option value="">All levels</option>
            {levels.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
          <select
            class="input"
            aria-label="Kind"
            value={kind}
            data-testid="log-kind-filter"
            onChange={(e) => setKind(e.currentTarget.value as KindFilter)}
          >
            <option value="">Logs and changes</option>
            <option value="log">Game logs</option>
            <option value="change">Changes</option>
          </select>
          {!fixed && <DeviceSearch value={deviceText} seen={devicesSeen.current} onChange={setDeviceText} />}
          <button
            type="button"
            class={paused ? 'btn small primary' : 'btn small'}
            aria-pressed={paused}
            data-testid="logs-pause"
            onClick={togglePause}
            disabled={searching}
            title={paused ? 'Show the buffered lines and keep tailing' : 'Stop the list from moving; new lines are kept'}
          >
            {paused ? '▶ Resume' : '❚❚ Pause'}
            {paused && pending.length > 0 && (
              <span class="pill" data-testid="logs-pending">
                {pending.length >= PENDING_MAX ? `${PENDING_MAX}+` : pending.length} new
              </span>
            )}
          </button>
          <button type="button" class="btn small ghost" data-testid="logs-clear" onClick={clear} disabled={searching}>
            Clear
          </button>
        </div>
      </header>
      <div class="logs-status muted small" data-testid="log-summary">
        {search.status === 'idle' &&
          (paused ? (
            <span class="warn-text">Paused — {plural(pending.length, 'new line')} waiting.</span>
          ) : (
            <span>
              <span class="live-dot" aria-hidden="true" /> Live tail · newest first · {plural(rows.length, 'line')}
              {(level || (device && !fixed) || kind) && ' (filtered)'}
            </span>
          ))}
        {search.status === 'loading' && <span>Searching for “{search.q}”…</span>}
        {search.status === 'done' && (
          <span data-testid="log-search-summary">
            {search.total > search.hits.length
              ? `Newest ${search.hits.length} of ${search.total} matches`
              : plural(search.total, 'match', 'matches')}{' '}
            for “{search.q}”{level && ` at ${level}`}
            {device && ` from ${device}`} ·{' '}
            <button type="button" class="link" data-testid="log-search-clear" onClick={() => setQuery('')}>
              back to live tail
            </button>
          </span>
        )}
        {search.status === 'error' && (
          <span class="error-text">
            Search failed: {search.message} ·{' '}
            <button type="button" class="link" onClick={() => setQuery('')}>
              back to live tail
            </button>
          </span>
        )}
      </div>
      <div class="log-list" data-testid="log-list" data-mode={searching ? 'search' : 'tail'} role="log" aria-live="off" onScroll={onListScroll}>
        {tail === null && !searching ? (
          <p class="empty muted">Loading…</p>
        ) : rows.length === 0 ? (
          search.status === 'loading' ? null : (
            <div class="empty" data-testid="logs-empty">
              {search.status === 'done' ? (
                <strong>No logs match “{search.q}”.</strong>
              ) : level || (device && !fixed) || kind ? (
                <strong>No lines match the filters yet.</strong>
              ) : (
                <>
                  <strong>No logs yet</strong>
                  <span class="muted">
                    Lines stream in here as soon as your game calls <code>game.log(…)</code>.
                  </span>
                </>
              )}
            </div>
          )
        ) : (
          <>
            {shown.map((e) => (
              <LogRow key={e.id} e={e} />
            ))}
            {shown.length < rows.length && (
              <p class="log-more muted small" data-testid="log-more">
                {plural(rows.length - shown.length, 'older line')} · scroll to show them
              </p>
            )}
          </>
        )}
      </div>
    </section>
  );
}

/**
 * The device filter: a search box whose value is a device id (exact), with the seen ids that contain
 * what is typed offered underneath; Enter takes the first suggestion, Escape clears.
 */
function DeviceSearch(props: { value: string; seen: ReadonlySet<string>; onChange: (v: string) => void }) {
  const [open, setOpen] = useState(false);
  const typed = props.value.trim().toLowerCase();
  const suggestions: string[] = [];
  if (open) {
    for (const d of props.seen) {
      if (d.toLowerCase().includes(typed) && d !== props.value) suggestions.push(d);
      if (suggestions.length >= DEVICE_SUGGESTIONS * 4) break;
    }
    suggestions.sort();
    suggestions.length = Math.min(suggestions.length, DEVICE_SUGGESTIONS);
  }
  const pick = (d: string): void => {
    props.onChange(d);
    setOpen(false);
  };
  return (
    <div class="device-search">
      <input
        type="search"
        class="input"
        placeholder="Device…"
        aria-label="Device"
        autoComplete="off"
        spellcheck={false}
        value={props.value}
        data-testid="log-device-filter"
        aria-expanded={open && suggestions.length > 0}
        onInput={(e) => {
          props.onChange(e.currentTarget.value);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') pick('');
          else if (e.key === 'Enter' && suggestions[0]) pick(suggestions[0]);
        }}
      />
      {open && suggestions.length > 0 && (
        <ul class="suggestions" role="listbox" data-testid="log-device-suggestions">
          {suggestions.map((d) => (
            <li key={d} role="option">
              <button type="button" class="suggestion mono" onMouseDown={(e) => e.preventDefault()} onClick={() => pick(d)}>
                {d}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** A line never changes once shown: re-render a row only for another entry. */
class LogRow extends Component<{ e: LogEntry }> {
  override shouldComponentUpdate(next: { e: LogEntry }): boolean {
    return next.e !== this.props.e;
  }

  override render() {
    return <LogRowView e={this.props.e} />;
  }
}

function LogRowView(props: { e: TimelineEntry }) {
  const { e } = props;
  const change = changeOf(e);
  const fields = e.fields && typeof e.fields === 'object' ? Object.entries(e.fields).filter(([k]) => !change || !CHANGE_KEYS.has(k)) : [];
  if (change) {
    const cleared = change.after === null || change.action.endsWith('clear');
    return (
      <div class="log-row change-row" data-testid="log-row" data-kind="change" data-log-id={e.id} data-level={e.level} data-device-id={e.deviceId ?? ''} data-name={change.name}>
        <time class="log-time mono" title={`received ${fullTime(e.receivedAt)}`}>
          {clockTime(e.receivedAt, true)}
        </time>
        <span class="lvl lvl-change" title="a change made from the dashboard, CLI or API">
          change
        </span>
        <span class="log-device mono" title={e.deviceId ?? 'unnamed device'}>
          {e.deviceId ?? '—'}
        </span>
        <span class="log-msg" data-testid="change-text">
          <strong>{change.actor}</strong> {cleared ? 'reset' : 'set'} <code>{change.name}</code>:{' '}
          <span class="before">{change.before ?? "game's value"}</span> → <span class="after">{change.after ?? "game's value"}</span>
          {change.action && !['override.set', 'override.clear'].includes(change.action) && <span class="field">({change.action})</span>}
        </span>
      </div>
    );
  }
  return (
    <div class="log-row" data-testid="log-row" data-kind="log" data-log-id={e.id} data-level={e.level} data-device-id={e.deviceId ?? ''}>
      <time class="log-time mono" title={`received ${fullTime(e.receivedAt)}${e.timestamp !== null ? ` · client time ${e.timestamp}` : ''}`}>
        {clockTime(e.receivedAt, true)}
      </time>
      <span class={`lvl ${levelClass(e.level)}`}>{e.level || 'info'}</span>
      <span class="log-device mono" title={e.deviceId ?? 'unnamed device'}>
        {e.deviceId ?? '—'}
      </span>
      <span class="log-msg">
        {e.message}
        {fields.map(([k, v]) => (
          <span key={k} class="field">
            <span class="field-k">{k}</span>=<span class="field-v">{compact(v)}</span>
          </span>
        ))}
      </span>
    </div>
  );
}
