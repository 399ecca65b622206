/** Small Preact hooks shared by the views: clocks, hash routing, debouncing and the live socket. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LiveSocket, SocketState } from './live-socket';
import type { WsServerFrame as LiveEvent } from '../wire.js';

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
