/**
 * Every change and view of DESIGN.md §8 that the HTTP routes and the WebSocket offer, in one place:
 * overrides set and cleared, strategies created, edited, deleted and applied, history reverted and
 * rolled back (each committed and delivered by var-changes.ts), and the cluster-wide views of devices,
 * overrides, strategies and history read from the store. Every call is scoped to one API key: the
 * caller's session decides which, so one account never sees or touches another's.
 */
import type { Logger } from 'pino';
import type { VariablesConfig } from '../config.js';
import { ObserverioError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Var, VarValue } from '../model.js';
import {
  applyStrategyTo,
  clearOverride,
  createStrategy,
  deleteStrategy,
  effective,
  firstOverrideOf,
  inEffectVars,
  overridesOfName,
  parseStrategy,
  parseTarget,
  pending,
  revertEntry,
  rollbackTo,
  setOverride,
  strategyLabel,
  strategyOf,
  updateStrategy,
  checkStrategyName,
  type DeviceRecord,
  type HistoryEntry,
  type Override,
  type Strategy,
  type Target,
  type VariablesState,
} from '../variables/index.js';
import type { ApplyStrategyAnswer, ClearOverrideAnswer, DeviceAnswer, DeviceSummary, HistoryActionAnswer, SetOverrideAnswer, StrategyAnswer } from '../wire.js';
import type { VarStore } from './client.js';
import { backend, resolveVar, strategyAnswer, type ActOptions, type ReadState, type VarChanges } from './var-changes.js';

export interface VariablesDeps {
  store: VarStore;
  changes: VarChanges;
  variables: VariablesConfig;
  gateway: Gateway;
  logger: Logger;
}

export const MAX_HISTORY_PAGE = 500;
export const DEFAULT_HISTORY_PAGE = 50;

/** The state's strategies as the pure functions take them. */
function plain(state: ReadState): VariablesState {
  return { overrides: state.overrides, strategies: state.strategies.map((s) => ({ name: s.name, vars: s.vars })) };
}

function strategyParam(name: string): string {
  const problem = checkStrategyName(name);
  if (problem) throw new ObserverioError('bad_request', problem);
  return name;
}

function versionOf(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null || !('version' in body)) return undefined;
  const v = (body as { version?: unknown }).version;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ObserverioError('bad_request', 'version must be a positive integer (the version you read)');
  return v;
}

/** The body without `version`, which parseStrategy does not know. */
function withoutVersion(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const { version: _v, ...rest } = body as Record<string, unknown>;
  return rest;
}

export class Variables {
  constructor(private readonly deps: VariablesDeps) {}

  private async existingType(apiKey: string): Promise<(name: string) => string | undefined> {
    // An override's type first (what the dashboard set), else what devices reported in `<apiKey>:vs`.
    const [vars, overrides] = await Promise.all([this.deps.store.getVars(apiKey), this.deps.store.listOverrides(apiKey)]);
    const m = new Map(vars.map((v) => [v.name, v.type]));
    for (const o of overrides) m.set(o.name, o.type);
    return (name) => m.get(name);
  }

  /** `PUT /api/vars/:name {value, type?, target?}`. */
  async setVar(apiKey: string, actor: string, body: { name: string; value: VarValue; type?: string | undefined; target: unknown }, options: ActOptions = {}): Promise<SetOverrideAnswer> {
    const target = parseTarget(body.target);
    // existingType for one variable: its own fields of `<apiKey>:vs` (not the whole hash: every PUT
    // asks), and an override's type from the state the change is computed from (no read of its own).
    // The read runs while the change waits for its key's commit, and the change joins the key's queue
    // now, before any await: changes a caller makes one after the other are committed in that order.
    // A type in the request is the type (resolveVar, setOverride): nothing to read then.
    // A failed read is the store's failure: a 503 to retry, as every other store call of a change.
    const typesP = body.type !== undefined ? Promise.resolve(new Map<string, string>()) : backend(this.deps.store.getVarTypes(apiKey, [body.name]), 'store', this.deps.logger);
    typesP.catch(() => undefined);
    const r = await this.deps.changes.act(apiKey, actor, async (state) => {
      // The override's type as setOverride picks it (the first override of the name), else <apiKey>:vs.
      const known = firstOverrideOf(state.overrides, body.name)?.type ?? (await typesP).get(body.name);
      // The protocol's rules with the messages dashboards and the CLI have always shown (same rules as setOverride's).
      resolveVar({ name: body.name, value: body.value, type: body.type }, known === undefined ? undefined : { name: body.name, type: known, value: '' });
      return setOverride(plain(state), body.name, body.value, body.type, target, known, { actor, at: Date.now() });
    }, options);
    const c = r.entry.changes[0];
    // The variable's overrides through the list's index (variables/override-list.ts), in list order as before.
    const o = overridesOfName(r.after.overrides, body.name).find((x) => c !== undefined && c.after !== null && x.setAt === c.after.setAt);
    const v: Var = o ? { name: o.name, type: o.type, value: o.value } : { name: body.name, type: c?.after?.type ?? '', value: c?.after?.value ?? '' };
    const out: SetOverrideAnswer = { var: v, target: o?.target ?? target, delivered: r.delivered, pending: r.pending, buffered: r.delivered === 0, historyId: r.entry.id };
    if (r.unconfirmed !== undefined) out.unconfirmed = r.unconfirmed;
    return out;
  }

  /** `DELETE /api/vars/:name/override {target?}`. */
  async clearVar(apiKey: string, actor: string, name: string, targetBody: unknown): Promise<ClearOverrideAnswer> {
    const target = parseTarget(targetBody);
    const r = await this.deps.changes.act(apiKey, actor, (state) => clearOverride(plain(state), name, target, { actor, at: Date.now() }));
    return { name, target: r.entry.target ?? target, delivered: r.delivered, pending: r.pending, historyId: r.entry.id };
  }

  listOverrides(apiKey: string): Promise<Override[]> {
    return this.deps.store.listOverrides(apiKey);
  }

  // Strategies -------------------------------------------------------------------------------------

  private async answers(apiKey: string, names?: readonly string[]): Promise<StrategyAnswer[]> {
    const { store, variables } = this.deps;
    const [state, devices] = await Promise.all([store.readState(apiKey), store.listDevices(apiKey, variables.deviceRememberMs, Date.now())]);
    const strategies: Strategy[] = state.strategies.map((s) => ({ name: s.name, vars: s.vars }));
    const running = new Map<string, number>();
    for (const d of devices) {
      const label = strategyLabel(strategyOf(d, state.overrides, strategies));
      if (label !== null) running.set(label, (running.get(label) ?? 0) + 1);
    }
    return state.strategies.filter((s) => !names || names.includes(s.name)).map((s) => strategyAnswer(s, running.get(s.name) ?? 0));
  }

  listStrategies(apiKey: string): Promise<StrategyAnswer[]> {
    return this.answers(apiKey);
  }

  async getStrategy(apiKey: string, name: string): Promise<StrategyAnswer> {
    const [s] = await this.answers(apiKey, [strategyParam(name)]);
    if (!s) throw new ObserverioError('not_found', `no strategy ${JSON.stringify(name)}`);
    return s;
  }

  async createStrategy(apiKey: string, actor: string, body: unknown): Promise<StrategyAnswer> {
    const typeOf = await this.existingType(apiKey);
    const strategy = parseStrategy(withoutVersion(body), typeOf);
    await this.deps.changes.act(apiKey, actor, (state) => ({ ...createStrategy(plain(state), strategy, { actor, at: Date.now() }), strategyExpect: { name: strategy.name, version: null, fromEditor: true } }));
    return this.getStrategy(apiKey, strategy.name);
  }

  /** `PUT /api/strategies/:name`: the name comes from the path; a body name must agree. `version` guards the edit. */
  async updateStrategy(apiKey: string, actor: string, name: string, body: unknown): Promise<StrategyAnswer> {
    strategyParam(name);
    const version = versionOf(body);
    const raw = withoutVersion(body);
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
      const given = (raw as { name?: unknown }).name;
      if (given !== undefined && given !== name) throw new ObserverioError('bad_request', `body names strategy ${JSON.stringify(String(given).slice(0, 70))} but the path names ${name}; renaming is not supported`);
    }
    const typeOf = await this.existingType(apiKey);
    const strategy = parseStrategy(typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...raw, name } : raw, typeOf);
    await this.deps.changes.act(apiKey, actor, (state) => {
      const current = state.strategies.find((s) => s.name === name);
      if (!current) throw new ObserverioError('not_found', `no strategy ${JSON.stringify(name)}`);
      if (version !== undefined && current.version !== version) throw new ObserverioError('conflict', `strategy ${name} is at version ${current.version}, not ${version}; re-read it and retry`);
      return { ...updateStrategy(plain(state), strategy, { actor, at: Date.now() }), strategyExpect: { name, version: current.version, fromEditor: version !== undefined } };
    });
    return this.getStrategy(apiKey, name);
  }

  async deleteStrategy(apiKey: string, actor: string, name: string, version?: number): Promise<HistoryEntry> {
    strategyParam(name);
    const r = await this.deps.changes.act(apiKey, actor, (state) => {
      const current = state.strategies.find((s) => s.name === name);
      if (current && version !== undefined && current.version !== version) throw new ObserverioError('conflict', `strategy ${name} is at version ${current.version}, not ${version}; re-read it and retry`);
      return { ...deleteStrategy(plain(state), name, { actor, at: Date.now() }), strategyExpect: { name, version: current?.version ?? null, fromEditor: version !== undefined } };
    });
    return r.entry;
  }

  async applyStrategy(apiKey: string, actor: string, name: string, targetBody: unknown): Promise<ApplyStrategyAnswer> {
    strategyParam(name);
    const target = parseTarget(targetBody);
    const r = await this.deps.changes.act(apiKey, actor, (state) => applyStrategyTo(plain(state), name, target, { actor, at: Date.now() }));
    return { strategy: name, target: r.entry.target ?? target, delivered: r.delivered, pending: r.pending, historyId: r.entry.id };
  }

  // History ----------------------------------------------------------------------------------------

  listHistory(apiKey: string, limit: number, before?: string): Promise<HistoryEntry[]> {
    return this.deps.store.listHistory(apiKey, before === undefined ? { limit } : { limit, before });
  }

  async revert(apiKey: string, actor: string, id: string, force: boolean): Promise<HistoryActionAnswer & { conflicts: unknown[] }> {
    const entry = await this.deps.store.getHistoryEntry(apiKey, id);
    if (!entry) throw new ObserverioError('not_found', `no history entry ${JSON.stringify(id.slice(0, 70))}`);
    let conflicts: unknown[] = [];
    const r = await this.deps.changes.act(apiKey, actor, (state) => {
      const a = revertEntry(plain(state), entry, { actor, at: Date.now() }, force);
      conflicts = a.conflicts;
      return a;
    });
    return { entry: r.entry, delivered: r.delivered, pending: r.pending, conflicts };
  }

  async rollback(apiKey: string, actor: string, to: string): Promise<HistoryActionAnswer> {
    const { store } = this.deps;
    // The history is read after the state, inside the plan: a commit landing in between changes the
    // state version, so the store refuses this one and the plan runs again on fresh reads of both.
    const r = await this.deps.changes.act(apiKey, actor, async (state) => {
      const since = await store.historySince(apiKey, to);
      if (!since) throw new ObserverioError('not_found', `no history entry ${JSON.stringify(to.slice(0, 70))} (it may have been pruned)`);
      return rollbackTo(plain(state), since, to, { actor, at: Date.now() });
    });
    return { entry: r.entry, delivered: r.delivered, pending: r.pending };
  }

  // Devices ----------------------------------------------------------------------------------------

  private async summary(apiKey: string, d: DeviceRecord, overrides: readonly Override[], strategies: readonly Strategy[]): Promise<DeviceSummary & { reported: Var[]; pendingVars: Var[] }> {
    const { store } = this.deps;
    const [reported, last] = await Promise.all([store.getReported(apiKey, d.deviceId), store.getLastSent(apiKey, d.deviceId)]);
    const todo = pending(inEffectVars(d, overrides), last, reported);
    return {
      deviceId: d.deviceId,
      labels: d.labels,
      online: d.online,
      lastSeen: d.lastSeen,
      lastAddress: d.lastAddress,
      generated: d.generated,
      strategy: strategyLabel(strategyOf(d, overrides, strategies)),
      pendingCount: todo.length,
      reported,
      pendingVars: todo,
    };
  }

  /** `GET /api/devices`: every device of the key online on any node or seen within the remember window. */
  async devices(apiKey: string): Promise<DeviceSummary[]> {
    const { store, variables } = this.deps;
    const [list, state] = await Promise.all([store.listDevices(apiKey, variables.deviceRememberMs, Date.now()), store.readState(apiKey)]);
    const strategies = plain(state).strategies;
    const out = await Promise.all(list.map((d) => this.summary(apiKey, d, state.overrides, strategies)));
    return out.map(({ reported: _r, pendingVars: _p, ...s }) => s);
  }

  /** These devices as `GET /api/devices` lists them (the `device_state` event's shape, so the two agree). */
  async summaries(apiKey: string, records: readonly DeviceRecord[]): Promise<DeviceSummary[]> {
    if (records.length === 0) return [];
    const state = await this.deps.store.readState(apiKey);
    const strategies = plain(state).strategies;
    const out = await Promise.all(records.map((d) => this.summary(apiKey, d, state.overrides, strategies)));
    return out.map(({ reported: _r, pendingVars: _p, ...s }) => s);
  }

  /** `GET /api/devices/:deviceId`: the device with each variable's reported, override and effective value. */
  async device(apiKey: string, deviceId: string): Promise<DeviceAnswer> {
    const { store } = this.deps;
    const d = await store.getDevice(apiKey, deviceId, Date.now());
    if (!d) throw new ObserverioError('not_found', `no device ${JSON.stringify(deviceId.slice(0, 70))}`);
    const state = await store.readState(apiKey);
    const { reported, pendingVars, ...s } = await this.summary(apiKey, d, state.overrides, plain(state).strategies);
    return { ...s, vars: effective(d, reported, state.overrides), pending: pendingVars.map((v) => ({ name: v.name, value: v.value, type: v.type })) };
  }
}

export type { Target };
