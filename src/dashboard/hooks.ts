/** Small Preact hooks shared by the views: clocks, hash routing, debouncing and the live socket. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LiveEvent, LiveSocket, SocketState } from './live-socket';

/** The current time, re-read every `intervalMs`, for "3 s ago" labels. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs]);
  return now;
}

export type Route = 'dashboard' | 'admin';

function currentRoute(): Route {
  return location.hash.replace(/^#\/?/, '').startsWith('admin') ? 'admin' : 'dashboard';
}

export function useHashRoute(): Route {
  const [route, setRoute] = useState<Route>(currentRoute);
  useEffect(() => {
    const onHash = (): void => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

/** The device a `#/devices/<id>` hash names, or null on any other route. */
export function devicePageId(hash = location.hash): string | null {
  const m = /^#\/devices\/([^/?#]+)/.exec(hash);
  if (!m || !m[1]) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

export function deviceHref(deviceId: string): string {
  return `#/devices/${encodeURIComponent(deviceId)}`;
}

export function useDevicePage(): string | null {
  const [id, setId] = useState<string | null>(() => devicePageId());
  useEffect(() => {
    const onHash = (): void => setId(devicePageId());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return id;
}

export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}

/** Calls the latest `fn` for every server event, without resubscribing on each render. */
export function useLiveEvents(socket: LiveSocket, fn: (e: LiveEvent) => void): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => socket.onEvent((e) => ref.current(e)), [socket]);
}

/** Calls the latest `fn` with each animation frame's server events together (see LiveSocket.onEvents). */
export function useLiveBatches(socket: LiveSocket, fn: (events: readonly LiveEvent[]) => void): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => socket.onEvents((events) => ref.current(events)), [socket]);
}

export function useSocketState(socket: LiveSocket): SocketState {
  const [state, setState] = useState(socket.state);
  useEffect(() => {
    setState(socket.state);
    return socket.onState(setState);
  }, [socket]);
  return state;
}

/**
 * Changes each time the server says live events flow again (after every (re)connect): use it as an
 * effect dependency to refetch a snapshot. Reading on socket open instead would miss what is
 * published between the open and the server's subscription.
 */
export function useSocketReady(socket: LiveSocket): number {
  const [readies, setReadies] = useState(socket.readies);
  useEffect(() => {
    setReadies(socket.readies);
    return socket.onEvent((e) => {
      if (e.type === 'ready') setReadies(socket.readies);
    });
  }, [socket]);
  return readies;
}
