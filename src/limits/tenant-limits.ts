/**
 * Per-tenant limits (issue 10): what one API key, or one remote address, may take of a node, so that
 * one tenant cannot fill the store with variables, hold every connection slot or flood the log index.
 * Pure bookkeeping with an injected clock: the connection actor asks, this module answers and counts.
 *
 * - Variables per key and new variable names per minute per key: decided per `i:` line, name by
 *   name. Names the node already knows always pass (updates are never refused); only new names past
 *   a limit are dropped, and the rest of the line is kept.
 * - Connections per key (at `v:`) and per remote address (at accept).
 * - Log entries per second per key (token bucket).
 *
 * Scope: every count is this node's. With Redis several nodes serve one key: connection and rate
 * counts are per node, and the variable count is this node's copy of the key's names, read from the
 * store once and re-read (at most every `varsRefreshMs`) before new names are decided, so another
 * node's names are seen within that interval (docs/PROTOCOL.md §7 bounds the overshoot).
 */
import type { LimitsConfig } from '../config.js';
import type { Var } from '../model.js';

export type LimitName = 'vars_per_key' | 'new_vars_per_minute' | 'connections_per_key' | 'connections_per_address' | 'logs_per_second';

export interface TenantLimitsDeps {
  /** The key's variable names as the store holds them (loaded once per key, then on refresh). */
  varNames(apiKey: string): Promise<readonly string[]>;
  /** Told every refusal: which limit, whose key (null for an address), how many things were refused. */
  onRefused?(limit: LimitName, apiKey: string | null, count: number): void;
  /** Milliseconds; tests move it. */
  now?: () => number;
}

/** What became of one `i:` line's variables. */
export interface VarsVerdict {
  /** The entries to write, in line order: the line's own array when nothing was refused. */
  accepted: readonly Var[];
  /** Entries dropped because the key is at maxVarsPerKey. */
  overCap: number;
  /** Entries dropped because the key's new-name budget is spent. */
  overRate: number;
  /** The first few refused names, for the error message. */
  refusedNames: string[];
  /** Variables this node knows for the key afterwards. */
  known: number;
}

interface KeyState {
  connections: number;
  /** The key's variable names as this node knows them; null until loaded (and again once idle). */
  names: Set<string> | null;
  loading: Promise<Set<string>> | null;
  loadedAt: number;
  newVarTokens: number;
  newVarAt: number;
  logTokens: number;
  logAt: number;
}

const REFUSED_NAMES_SHOWN = 3;
/** How often idle keys' state is swept; a refilled bucket is the same as none, so nothing is lost. */
const SWEEP_EVERY_MS = 60_000;

function refill(tokens: number, at: number, now: number, perMs: number, cap: number): number {
  // A clock that steps back refills nothing rather than draining.
  return now <= at ? tokens : Math.min(cap, tokens + (now - at) * perMs);
}

export class TenantLimits {
  private readonly keys = new Map<string, KeyState>();
  private readonly addresses = new Map<string, number>();
  private readonly now: () => number;
  private readonly newVarsPerMs: number;
  private readonly logsPerMs: number;
  private sweptAt: number;

  constructor(
    readonly cfg: LimitsConfig,
    private readonly deps: TenantLimitsDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.newVarsPerMs = cfg.newVarsPerMinute / 60_000;
    this.logsPerMs = cfg.logsPerSecond / 1000;
    this.sweptAt = this.now();
  }

  // ---- connections ----

  /** A new socket from `address` (host only, no port); false = refuse it. Pair with releaseAddress. */
  acquireAddress(address: string): boolean {
    const n = this.addresses.get(address) ?? 0;
    if (n >= this.cfg.maxConnectionsPerAddress) {
      this.refused('connections_per_address', null, 1);
      return false;
    }
    this.addresses.set(address, n + 1);
    return true;
  }

  releaseAddress(address: string): void {
    const n = this.addresses.get(address);
    if (n === undefined) return;
    if (n <= 1) this.addresses.delete(address);
    else this.addresses.set(address, n - 1);
  }

  /**
   * A connection verified for `apiKey`; false = refuse it. Pair with releaseKey. Starts reading the
   * key's variable names, so its first `i:` line rarely waits.
   */
  acquireKey(apiKey: string): boolean {
    const st = this.state(apiKey);
    if (st.connections >= this.cfg.maxConnectionsPerKey) {
      this.refused('connections_per_key', apiKey, 1);
      return false;
    }
    st.connections += 1;
    if (st.names === null) void this.load(st, apiKey);
    return true;
  }

  releaseKey(apiKey: string): void {
    const st = this.keys.get(apiKey);
    if (!st || st.connections === 0) return;
    st.connections -= 1;
    // The names are the bulk of a key's state: a key with no connection here does not keep them.
    if (st.connections === 0 && !st.loading) st.names = null;
    this.maybeSweep();
  }

  // ---- variables ----

  /**
   * Decides one `i:` line. Synchronous when the key's names are loaded and fresh enough; a promise
   * when they must be read from the store first.
   */
  admitVars(apiKey: string, vars: readonly Var[]): VarsVerdict | Promise<VarsVerdict> {
    const st = this.state(apiKey);
    const names = st.names;
    if (names === null) return this.load(st, apiKey).then((loaded) => this.decideVars(st, apiKey, vars, loaded));
    let i = 0;
    while (i < vars.length && names.has((vars[i] as Var).name)) i++;
    if (i === vars.length) return { accepted: vars, overCap: 0, overRate: 0, refusedNames: [], known: names.size };
    // A name this node has not seen may be another node's (Redis) or the dashboard's: look again
    // before counting it as new, but not more often than varsRefreshMs.
    if (st.loading || this.now() - st.loadedAt >= this.cfg.varsRefreshMs) return this.load(st, apiKey).then((loaded) => this.decideVars(st, apiKey, vars, loaded));
    return this.decideVars(st, apiKey, vars, names);
  }

  private decideVars(st: KeyState, apiKey: string, vars: readonly Var[], names: Set<string>): VarsVerdict {
    const now = this.now();
    st.newVarTokens = refill(st.newVarTokens, st.newVarAt, now, this.newVarsPerMs, this.cfg.newVarsBurst);
    st.newVarAt = now;
    const { maxVarsPerKey } = this.cfg;
    let accepted: Var[] | null = null;
    let overCap = 0;
    let overRate = 0;
    let refusedHere: Set<string> | null = null;
    const refusedNames: string[] = [];
    for (let i = 0; i < vars.length; i++) {
      const v = vars[i] as Var;
      let refuse: 'cap' | 'rate' | null = null;
      if (refusedHere?.has(v.name)) refuse = names.size >= maxVarsPerKey ? 'cap' : 'rate';
      else if (!names.has(v.name)) {
        if (names.size >= maxVarsPerKey) refuse = 'cap';
        else if (st.newVarTokens < 1) refuse = 'rate';
        else {
          names.add(v.name);
          st.newVarTokens -= 1;
        }
      }
      if (refuse === null) {
        accepted?.push(v);
        continue;
      }
      // First refusal: copy what was accepted so far; until then the line's own array is the answer.
      accepted ??= vars.slice(0, i);
      if (refuse === 'cap') overCap += 1;
      else overRate += 1;
      if (!refusedHere?.has(v.name) && refusedNames.length < REFUSED_NAMES_SHOWN) refusedNames.push(v.name);
      (refusedHere ??= new Set()).add(v.name);
    }
    if (overCap) this.refused('vars_per_key', apiKey, overCap);
    if (overRate) this.refused('new_vars_per_minute', apiKey, overRate);
    return { accepted: accepted ?? vars, overCap, overRate, refusedNames, known: names.size };
  }

  /**
   * Reads the key's names from the store into this node's set (one read in flight per key) and
   * resolves with that set; the lines waiting for it decide on it even if the key's last connection
   * has gone meanwhile (then the set is not kept).
   */
  private load(st: KeyState, apiKey: string): Promise<Set<string>> {
    if (st.loading) return st.loading;
    st.loadedAt = this.now();
    const done = (stored: readonly string[]): Set<string> => {
      // A union, not a replacement: names admitted here may not have reached the store yet.
      const names = st.names ?? new Set<string>();
      for (const n of stored) names.add(n);
      st.loading = null;
      st.names = st.connections > 0 ? names : null;
      return names;
    };
    // Store down: decide with what this node knows (the write would fail anyway); the next new name
    // after varsRefreshMs tries again.
    st.loading = this.deps.varNames(apiKey).then(done, () => done([]));
    return st.loading;
  }

  // ---- logs ----

  /** How many of a line's `count` log entries the key may send now (the first ones of the line). */
  admitLogs(apiKey: string, count: number): number {
    if (count === 0) return 0;
    const st = this.state(apiKey);
    const now = this.now();
    st.logTokens = refill(st.logTokens, st.logAt, now, this.logsPerMs, this.cfg.logsBurst);
    st.logAt = now;
    const allowed = Math.min(count, Math.floor(st.logTokens));
    st.logTokens -= allowed;
    if (allowed < count) this.refused('logs_per_second', apiKey, count - allowed);
    return allowed;
  }

  // ---- bookkeeping ----

  /** For the admin view: how much this module tracks. */
  stats(): { keys: number; keysWithNames: number; addresses: number } {
    let withNames = 0;
    for (const st of this.keys.values()) if (st.names) withNames += 1;
    return { keys: this.keys.size, keysWithNames: withNames, addresses: this.addresses.size };
  }

  /** This node's view of one key (tests, admin). */
  keyInfo(apiKey: string): { connections: number; knownVars: number | null } | null {
    const st = this.keys.get(apiKey);
    return st ? { connections: st.connections, knownVars: st.names?.size ?? null } : null;
  }

  connectionsFrom(address: string): number {
    return this.addresses.get(address) ?? 0;
  }

  private state(apiKey: string): KeyState {
    let st = this.keys.get(apiKey);
    if (!st) {
      const now = this.now();
      st = { connections: 0, names: null, loading: null, loadedAt: -Infinity, newVarTokens: this.cfg.newVarsBurst, newVarAt: now, logTokens: this.cfg.logsBurst, logAt: now };
      this.keys.set(apiKey, st);
    }
    return st;
  }

  private refused(limit: LimitName, apiKey: string | null, count: number): void {
    this.deps.onRefused?.(limit, apiKey, count);
  }

  /** Forgets keys with no connection whose buckets have refilled: their state says nothing any more. */
  private maybeSweep(): void {
    const now = this.now();
    if (now - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = now;
    for (const [apiKey, st] of this.keys) {
      if (st.connections > 0 || st.loading) continue;
      st.names = null;
      const vars = refill(st.newVarTokens, st.newVarAt, now, this.newVarsPerMs, this.cfg.newVarsBurst);
      const logs = refill(st.logTokens, st.logAt, now, this.logsPerMs, this.cfg.logsBurst);
      if (vars >= this.cfg.newVarsBurst && logs >= this.cfg.logsBurst) this.keys.delete(apiKey);
    }
  }
}
