/**
 * The key's overrides and strategies, shared by the variables, strategies, devices and device views:
 * a REST snapshot on every `ready`, then the daemon's `overrides` and `strategies` events, which carry
 * the whole list each time (so applying one is a replace, never a merge that could drift). The REST
 * answer also says how many devices run each strategy, so a `strategies` event is followed by a re-read.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Api } from './api';
import { useLiveEvents, useSocketReady } from './hooks';
import type { LiveSocket } from './live-socket';
import type { Override, StrategyAnswer } from '../wire.js';

export interface VariablesState {
  overrides: Override[] | null;
  strategies: StrategyAnswer[] | null;
  error: string | null;
  /** Re-reads both lists now (after a 409, or when an answer implies they changed). */
  reload: () => void;
}

export function useVariablesState(api: Api, socket: LiveSocket): VariablesState {
  const [overrides, setOverrides] = useState<Override[] | null>(null);
  const [strategies, setStrategies] = useState<StrategyAnswer[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [asked, setAsked] = useState(0);
  const readies = useSocketReady(socket);

  useEffect(() => {
    let alive = true;
    Promise.all([api.overrides(), api.strategies()]).then(
      ([o, s]) => {
        if (!alive) return;
        setOverrides(o);
        setStrategies(s);
        setError(null);
      },
      (err: Error) => alive && setError(err.message),
    );
    return () => {
      alive = false;
    };
  }, [api, readies, asked]);

  useLiveEvents(socket, (ev) => {
    if (ev.type === 'overrides' && Array.isArray(ev.overrides)) setOverrides(ev.overrides);
    else if (ev.type === 'strategies' && Array.isArray(ev.strategies)) {
      // The event lists the strategies but not how many devices run each: show it, then re-read.
      setStrategies((old) => ev.strategies.map((s) => ({ ...s, devices: old?.find((o) => o.name === s.name)?.devices ?? s.devices })));
      setAsked((n) => n + 1);
    }
  });

  return { overrides, strategies, error, reload: () => setAsked((n) => n + 1) };
}
