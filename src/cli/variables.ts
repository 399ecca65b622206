/**
 * The CLI for DESIGN.md §8: `observerio overrides` (what is in effect), `observerio strategies
 * list|show|save|apply|delete` (named presets), and `observerio history` (every change, with
 * `--revert ID` and `--rollback ID`). `vars set`/`vars reset` with targets are in vars.ts.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ago, cell, count, json, table } from './format.js';
import { apiFor, HttpError, sessionToken, usage, withSession, type Api, type SessionFlags } from './http-client.js';
import { nowOf, type CliIo } from './io.js';
import { intArg } from './options.js';
import { describeTarget, targetOf, withTarget, type TargetFlags } from './targets.js';
import { STRATEGY_NAME_RE } from '../variables/strategies.js';
import type {
  ApplyStrategyAnswer,
  HistoryActionAnswer,
  HistoryAnswer,
  HistoryEntry,
  OverridesAnswer,
  StrategiesAnswer,
  StrategyAnswer,
  StrategyBody,
  VarValue,
} from '../wire.js';

interface JsonFlag {
  json?: boolean;
}

const plural = (n: number, what: string): string => `${count(n)} ${what}${n === 1 ? '' : 's'}`;

/** "delivered to 2 devices, 1 pending": how far a change got. */
export function reach(r: { delivered: number; pending: number }): string {
  return `delivered to ${plural(r.delivered, 'device')}, ${count(r.pending)} pending`;
}

// --- overrides -----------------------------------------------------------------------------------

export async function listOverrides(api: Api, token: string, io: CliIo, asJson = false): Promise<OverridesAnswer> {
  const res = await api.request<OverridesAnswer>('GET', '/api/overrides', { token });
  if (asJson) io.stdout.write(json(res, io.stdout.isTTY));
  else if (res.overrides.length === 0) io.stdout.write('no overrides: every device runs its own values\n');
  else {
    const now = nowOf(io);
    io.stdout.write(
      table(
        ['NAME', 'TYPE', 'VALUE', 'TARGET', 'STRATEGY', 'SET BY', 'SET'],
        res.overrides.map((o) => [cell(o.name), cell(o.type), cell(o.value), cell(describeTarget(o.target)), cell(o.strategy ?? '-'), cell(o.setBy), ago(o.setAt, now)]),
      ),
    );
  }
  return res;
}

// --- strategies ----------------------------------------------------------------------------------

function checkName(cmd: Command, name: string): string {
  if (!STRATEGY_NAME_RE.test(name)) usage(cmd, `strategy name ${JSON.stringify(name)} must be 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit`);
  return name;
}

type StrategyVar = StrategyBody['vars'][number];

/** `--var name=value` or `--var name:type=value`. */
export function parseVarFlag(cmd: Command, text: string): StrategyVar {
  const eq = text.indexOf('=');
  if (eq <= 0) return usage(cmd, `--var ${JSON.stringify(text)}: expected name=value or name:type=value`);
  const left = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const colon = left.lastIndexOf(':');
  if (colon > 0 && colon < left.length - 1) return { name: left.slice(0, colon), type: left.slice(colon + 1), value };
  return { name: left, value };
}

/**
 * A strategy file: `{"vars": [{name, value, type?}]}`, an array of those, or an object of
 * `name: value` (or `name: {value, type}`). Anything else is bad use naming the file.
 */
export function readStrategyFile(cmd: Command, path: string): StrategyVar[] {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return usage(cmd, `--from-file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const bad = (why: string): never => usage(cmd, `--from-file ${path}: ${why}`);
  const isValue = (v: unknown): v is VarValue => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
  const item = (name: unknown, v: unknown, type: unknown): StrategyVar => {
    if (typeof name !== 'string' || name === '') return bad('every variable needs a name');
    if (!isValue(v)) return bad(`variable ${name} needs a string, number or boolean value`);
    if (type !== undefined && typeof type !== 'string') return bad(`variable ${name}: type must be a string`);
    return type === undefined ? { name, value: v } : { name, value: v, type };
  };
  const list = Array.isArray(data) ? data : typeof data === 'object' && data !== null && Array.isArray((data as { vars?: unknown }).vars) ? (data as { vars: unknown[] }).vars : null;
  if (list) return list.map((x) => (typeof x === 'object' && x !== null ? item((x as StrategyVar).name, (x as StrategyVar).value, (x as StrategyVar).type) : bad('a variable is not an object')));
  if (typeof data !== 'object' || data === null) return bad('expected {"vars": [...]}, an array, or an object of name: value');
  return Object.keys(data).map((name) => {
    const v = (data as Record<string, unknown>)[name];
    return typeof v === 'object' && v !== null ? item(name, (v as { value?: unknown }).value, (v as { type?: unknown }).type) : item(name, v, undefined);
  });
}

function printStrategy(s: StrategyAnswer, io: CliIo): void {
  io.stdout.write(`strategy ${s.name} (version ${s.version}, ${plural(s.devices, 'device')} running it, updated ${ago(s.updatedAt, nowOf(io))} by ${s.updatedBy})\n`);
  if (s.vars.length === 0) io.stdout.write('no variables\n');
  else io.stdout.write(table(['NAME', 'TYPE', 'VALUE'], s.vars.map((v) => [cell(v.name), cell(v.type), cell(v.value)])));
}

export async function saveStrategy(api: Api, token: string, name: string, vars: StrategyVar[], io: CliIo, asJson = false): Promise<StrategyAnswer> {
  const path = `/api/strategies/${encodeURIComponent(name)}`;
  let res: StrategyAnswer;
  try {
    res = await api.request<StrategyAnswer>('PUT', path, { token, body: { vars } satisfies StrategyBody });
  } catch (err) {
    // PUT edits; a strategy that does not exist yet is created with POST.
    if (!(err instanceof HttpError && err.status === 404)) throw err;
    res = await api.request<StrategyAnswer>('POST', '/api/strategies', { token, body: { name, vars } satisfies StrategyBody });
  }
  if (asJson) io.stdout.write(json(res, io.stdout.isTTY));
  else printStrategy(res, io);
  return res;
}

function registerStrategies(program: Command, io: CliIo): void {
  const strategies = program.command('strategies').description('named sets of variable values (presets) to apply to devices');
  const session = async (cmd: Command, flags: SessionFlags): Promise<{ api: Api; token: string }> => {
    const api = apiFor(cmd, flags, io);
    return { api, token: await sessionToken(cmd, api, flags, io) };
  };

  withSession(strategies.command('list').description('list the strategies'))
    .option('--json', 'print JSON')
    .action(async (flags: SessionFlags & JsonFlag, cmd: Command) => {
      const { api, token } = await session(cmd, flags);
      const res = await api.request<StrategiesAnswer>('GET', '/api/strategies', { token });
      if (flags.json) io.stdout.write(json(res, io.stdout.isTTY));
      else if (res.strategies.length === 0) io.stdout.write('no strategies yet: save one with `observerio strategies save NAME --var name=value`\n');
      else
        io.stdout.write(
          table(
            ['NAME', 'VARS', 'DEVICES', 'VERSION', 'UPDATED', 'BY'],
            res.strategies.map((s) => [cell(s.name), count(s.vars.length), count(s.devices), String(s.version), ago(s.updatedAt, nowOf(io)), cell(s.updatedBy)]),
          ),
        );
    });

  withSession(strategies.command('show').description("show one strategy's variables").argument('<name>', 'strategy name'))
    .option('--json', 'print JSON')
    .action(async (name: string, flags: SessionFlags & JsonFlag, cmd: Command) => {
      checkName(cmd, name);
      const { api, token } = await session(cmd, flags);
      const res = await api.request<StrategyAnswer>('GET', `/api/strategies/${encodeURIComponent(name)}`, { token });
      if (flags.json) io.stdout.write(json(res, io.stdout.isTTY));
      else printStrategy(res, io);
    });

  withSession(
    strategies
      .command('save')
      .description('create or replace a strategy from --var flags and/or a JSON file (--var wins over the file)')
      .argument('<name>', 'strategy name'),
  )
    .option('--var <name=value>', 'a variable: name=value or name:type=value (repeat)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--from-file <file>', 'JSON: {"vars": [{"name","value","type"?}]}, an array of those, or {"name": value}')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: SessionFlags & JsonFlag & { var?: string[]; fromFile?: string }, cmd: Command) => {
      checkName(cmd, name);
      const byName = new Map<string, StrategyVar>();
      if (flags.fromFile !== undefined) for (const v of readStrategyFile(cmd, flags.fromFile)) byName.set(v.name, v);
      for (const text of flags.var ?? []) {
        const v = parseVarFlag(cmd, text);
        byName.set(v.name, v);
      }
      if (byName.size === 0) usage(cmd, 'a strategy needs variables: pass --var name=value (repeat) or --from-file FILE');
      const { api, token } = await session(cmd, flags);
      await saveStrategy(api, token, name, [...byName.values()], io, flags.json);
    });

  withSession(withTarget(strategies.command('apply').description("set a strategy's values as overrides for a target (default every device)").argument('<name>', 'strategy name')))
    .option('--json', 'print JSON')
    .action(async (name: string, flags: SessionFlags & JsonFlag & TargetFlags, cmd: Command) => {
      checkName(cmd, name);
      const target = targetOf(cmd, flags);
      const { api, token } = await session(cmd, flags);
      const res = await api.request<ApplyStrategyAnswer>('POST', `/api/strategies/${encodeURIComponent(name)}/apply`, { token, body: target ? { target } : {} });
      if (flags.json) io.stdout.write(json(res, io.stdout.isTTY));
      else io.stdout.write(`applied ${res.strategy} to ${describeTarget(res.target)}: ${reach(res)} (history ${res.historyId})\n`);
    });

  withSession(strategies.command('delete').description('delete a strategy (the overrides it set stay)').argument('<name>', 'strategy name'))
    .option('--json', 'print JSON')
    .action(async (name: string, flags: SessionFlags & JsonFlag, cmd: Command) => {
      checkName(cmd, name);
      const { api, token } = await session(cmd, flags);
      const res = await api.request<unknown>('DELETE', `/api/strategies/${encodeURIComponent(name)}`, { token });
      if (flags.json) io.stdout.write(json(res ?? { deleted: name }, io.stdout.isTTY));
      else io.stdout.write(`deleted strategy ${name}\n`);
    });
}

// --- history -------------------------------------------------------------------------------------

const shown = (v: { value: string } | readonly unknown[] | null | undefined): string => {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return `${v.length} vars`;
  return cell((v as { value: string }).value);
};

/** One entry's changes as `name: before → after` (overrides) and `strategy name: ...`. */
export function describeChanges(e: HistoryEntry): string {
  const parts = [
    ...e.changes.map((c) => `${c.name}: ${shown(c.before)} → ${shown(c.after)}`),
    ...e.strategies.map((s) => `strategy ${s.name}: ${s.before === null ? 'created' : s.after === null ? 'deleted' : 'edited'}`),
  ];
  return parts.join('; ') || '-';
}

export function printHistory(entries: readonly HistoryEntry[], io: CliIo): void {
  if (entries.length === 0) {
    io.stdout.write('no changes yet\n');
    return;
  }
  io.stdout.write(
    table(
      ['ID', 'WHEN', 'WHO', 'ACTION', 'TARGET', 'DELIVERED', 'CHANGES'],
      entries.map((e) => [cell(e.id), new Date(e.at).toISOString(), cell(e.actor), cell(e.action), e.target === null ? '-' : cell(describeTarget(e.target)), count(e.delivered), cell(describeChanges(e))]),
    ),
  );
}

function registerHistory(program: Command, io: CliIo): void {
  withSession(program.command('history').description('every change to overrides and strategies, newest first; revert one, or roll back to one'))
    .option('--limit <n>', 'entries to show (1-1000)', intArg(1, 1000))
    .option('--before <id>', 'only entries older than this one (paging)')
    .option('--revert <id>', 'undo one entry (a new entry)')
    .option('--rollback <id>', 'restore the state right after this entry (a new entry)')
    .option('--json', 'print JSON')
    .action(async (flags: SessionFlags & JsonFlag & { limit?: number; before?: string; revert?: string; rollback?: string }, cmd: Command) => {
      if (flags.revert !== undefined && flags.rollback !== undefined) usage(cmd, '--revert and --rollback exclude each other');
      const acting = flags.revert ?? flags.rollback;
      if (acting !== undefined && (flags.limit !== undefined || flags.before !== undefined)) usage(cmd, '--limit and --before list entries; they do not go with --revert or --rollback');
      if (acting !== undefined && acting.trim() === '') usage(cmd, 'an entry id is needed (see `observerio history`)');
      const api = apiFor(cmd, flags, io);
      const token = await sessionToken(cmd, api, flags, io);
      if (acting !== undefined) {
        const res =
          flags.revert !== undefined
            ? await api.request<HistoryActionAnswer>('POST', `/api/history/${encodeURIComponent(flags.revert)}/revert`, { token })
            : await api.request<HistoryActionAnswer>('POST', '/api/history/rollback', { token, body: { to: flags.rollback } });
        if (flags.json) io.stdout.write(json(res, io.stdout.isTTY));
        else io.stdout.write(`${flags.revert !== undefined ? `reverted ${flags.revert}` : `rolled back to ${flags.rollback}`} as entry ${res.entry.id}: ${describeChanges(res.entry)}; ${reach(res)}\n`);
        return;
      }
      const res = await api.request<HistoryAnswer>('GET', '/api/history', { token, query: { limit: flags.limit, before: flags.before } });
      if (flags.json) io.stdout.write(json(res, io.stdout.isTTY));
      else printHistory(res.entries, io);
    });
}

export function registerVariables(program: Command, io: CliIo): void {
  withSession(program.command('overrides').description('the overrides in effect: values set from the dashboard, CLI or API, and for whom'))
    .option('--json', 'print JSON')
    .action(async (flags: SessionFlags & JsonFlag, cmd: Command) => {
      const api = apiFor(cmd, flags, io);
      await listOverrides(api, await sessionToken(cmd, api, flags, io), io, flags.json);
    });
  registerStrategies(program, io);
  registerHistory(program, io);
}
