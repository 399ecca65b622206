/**
 * The dashboard's one WebSocket to /ws: parses server events, fans them out to the panels (once per
 * animation frame, see live-events.ts), and reconnects with capped exponential backoff (plus jitter)
 * whenever the connection drops. Panels re-read their REST snapshot after every (re)open, since
 * events sent while the socket was down are lost.
 */
import { debug } from './debug';
import { LiveEvents, type LiveEvent } from './live-events.js';

export type { LiveEvent } from './live-events.js';

export type SocketState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'open'; since: number }
  | { kind: 'waiting'; attempt: number; retryAt: number }
  | { kind: 'stopped' };

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
/** A connection must stay up this long before the backoff resets, so a flapping server is not hammered. */
const STABLE_MS = 3_000;

export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const capped = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped * (0.6 + 0.4 * random()));
}

export function socketUrl(token: string): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`;
}

export class LiveSocket {
  state: SocketState = { kind: 'stopped' };
  /** How many times the socket has opened. */
  opens = 0;
  /**
   * How many times the server said the key's live events are flowing ({"type":"ready"}); views
   * refetch their snapshot when it changes, so nothing published before it is missed.
   */
  get readies(): number {
    return this.events.readies;
  }
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private openedAt = 0;
  private readonly events = new LiveEvents();
  private readonly stateListeners = new Set<(s: SocketState) => void>();
  private readonly retryNowBound = (): void => this.retryNow();
  private readonly onVisible = (): void => {
    if (document.visibilityState === 'visible') this.retryNow();
  };

  constructor(
    private readonly url: string,
    /** Called when a connection fails or is refused before opening: the token may have expired. */
    private readonly onRefused: () => void = () => {},
  ) {}

  start(): void {
    if (this.state.kind !== 'stopped') return;
    addEventListener('online', this.retryNowBound);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop(): void {
    removeEventListener('online', this.retryNowBound);
    document.removeEventListener('visibilitychange', this.onVisible);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'bye');
    this.events.clear();
    this.setState({ kind: 'stopped' });
  }

  /** Skips the remaining backoff (used on `online`, on tab focus and by the "retry now" button). */
  retryNow(): void {
    if (this.state.kind !== 'waiting') return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  send(message: unknown): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** `fn` gets every event, one call each (all of a frame's events in one task, so their renders are one). */
  onEvent(fn: (e: LiveEvent) => void): () => void {
    return this.events.onEvent(fn);
  }

  /** `fn` gets each frame's events in one call, for a view that applies them as one change. */
  onEvents(fn: (events: readonly LiveEvent[]) => void): () => void {
    return this.events.onEvents(fn);
  }

  onState(fn: (s: SocketState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  private connect(): void {
    this.attempt += 1;
    this.setState({ kind: 'connecting', attempt: this.attempt });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry(false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.openedAt = Date.now();
      this.opens += 1;
      debug('ws open');
      this.setState({ kind: 'open', since: this.openedAt });
    };
    ws.onmessage = (msg: MessageEvent) => {
      if (this.ws !== ws) return;
      this.events.receive(msg.data);
    };
    ws.onclose = (e: CloseEvent) => {
      if (this.ws !== ws) return;
      debug('ws closed', e.code, e.reason);
      this.ws = null;
      if (opened && Date.now() - this.openedAt >= STABLE_MS) this.attempt = 0;
      // 1008 (policy) and 4401/4403 are how a server says "not with this token".
      const refused = !opened || e.code === 1008 || e.code === 4401 || e.code === 4403;
      this.scheduleRetry(refused);
    };
  }

  private scheduleRetry(refused: boolean): void {
    if (refused) this.onRefused();
    if (this.state.kind === 'stopped') return;
    const delay = this.attempt <= 1 && !refused ? 250 : backoffDelay(this.attempt);
    this.setState({ kind: 'waiting', attempt: this.attempt, retryAt: Date.now() + delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  private setState(s: SocketState): void {
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }
}
