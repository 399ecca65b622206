/**
 * The key's overrides and strategies, shared by the variables, strategies, devices and device views:
 * a REST snapshot on every `ready`, then the daemon's `overrides` and `strategies` events, which carry
 * the whole list each time (so applying one is a replace, never a merge that could drift). The REST
 * answer also says how many devices run each strategy, so an `overrides` or `strategies` event is
 * followed by a re-read.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from './api';
import { useLiveEvents, useSocketReady } from './hooks';
import type { LiveSocket } from './live-socket';
import type { Override, StrategyAnswer } from '../wire.js';

/** Events come in bursts (apply, rollback): one re-read per burst. */
const RECOUNT_MS = 250;

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
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);
  const recount = (): void => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      setAsked((n) => n + 1);
    }, RECOUNT_MS);
  };

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
    if (ev.type === 'overrides' && Array.isArray(ev.overrides)) {
      setOverrides(ev.overrides);
      // Which devices run which strategy follows the overrides: re-read the counts (once per burst).
      recount();
    }
    else if (ev.type === 'strategies' && Array.isArray(ev.strategies)) {
      // The event lists the strategies but not how many devices run each: show it, then re-read.
      setStrategies((old) => ev.strategies.map((s) => ({ ...s, devices: old?.find((o) => o.name === s.name)?.devices ?? s.devices })));
      recount();
    }
  });

  return { overrides, strategies, error, reload: () => setAsked((n) => n + 1) };
}
