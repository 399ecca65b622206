/**
 * `observerio vars list` shows the account's variables; `observerio vars set NAME VALUE` changes one
 * the way the dashboard does (an override: stored, then pushed to the devices of its target, every
 * device by default, or kept for them); `observerio vars reset NAME` clears it, back to the game's value.
 */
import type { Command } from 'commander';
import { cell, count, json, table } from './format.js';
import { apiFor, sessionToken, withSession, type Api, type SessionFlags } from './http-client.js';
import type { CliIo } from './io.js';
import { describeTarget, targetOf, withTarget, type TargetFlags } from './targets.js';
import { reach } from './variables.js';
import type { ClearOverrideAnswer, ClearOverrideBody, PutVarBody, SetOverrideAnswer, SetOverrideBody, Target, Var, VarDelivery, VarsAnswer } from '../wire.js';

interface JsonFlag {
  json?: boolean;
}

export async function listVars(api: Api, token: string, io: CliIo, asJson = false): Promise<Var[]> {
  const { vars } = await api.request<VarsAnswer>('GET', '/api/vars', { token });
  if (asJson) io.stdout.write(json({ vars }, io.stdout.isTTY));
  else if (vars.length === 0) io.stdout.write('no variables yet: they appear once a device sends them\n');
  else io.stdout.write(table(['NAME', 'TYPE', 'VALUE'], vars.map((v) => [cell(v.name), cell(v.type), cell(v.value)])));
  return vars;
}

export async function setVar(
  api: Api,
  token: string,
  name: string,
  value: string,
  type: string | undefined,
  io: CliIo,
  asJson = false,
  target?: Target,
): Promise<VarDelivery | SetOverrideAnswer> {
  const body: PutVarBody & SetOverrideBody = { value };
  if (type !== undefined) body.type = type;
  // No target field for every device: a daemon before §8 reads the body it always did.
  if (target !== undefined) body.target = target;
  const res = await api.request<VarDelivery | SetOverrideAnswer>('PUT', `/api/vars/${encodeURIComponent(name)}`, { token, body });
  if (asJson) {
    io.stdout.write(json(res, io.stdout.isTTY));
    return res;
  }
  if (res.target !== undefined && res.pending !== undefined) {
    io.stdout.write(`${res.var.name} = ${cell(res.var.value)} (${res.var.type}) for ${describeTarget(res.target)}: ${reach({ delivered: res.delivered, pending: res.pending })} (history ${res.historyId ?? '?'})\n`);
    return res;
  }
  const where =
    res.delivered > 0
      ? `delivered to ${count(res.delivered)} device${res.delivered === 1 ? '' : 's'}`
      : res.buffered
        ? 'no device online: buffered until one connects'
        : 'not delivered to any device';
  const unconfirmed = res.unconfirmed ? ` (${res.unconfirmed} node${res.unconfirmed === 1 ? '' : 's'} did not confirm)` : '';
  io.stdout.write(`${res.var.name} = ${cell(res.var.value)} (${res.var.type}): ${where}${unconfirmed}\n`);
  return res;
}

export async function resetVar(api: Api, token: string, name: string, io: CliIo, asJson = false, target?: Target): Promise<ClearOverrideAnswer> {
  const body: ClearOverrideBody = target === undefined ? {} : { target };
  const res = await api.request<ClearOverrideAnswer>('DELETE', `/api/vars/${encodeURIComponent(name)}/override`, { token, body });
  if (asJson) io.stdout.write(json(res, io.stdout.isTTY));
  else io.stdout.write(`${res.name}: override cleared for ${describeTarget(res.target)}, back to the game's value: ${reach(res)} (history ${res.historyId})\n`);
  return res;
}

export function registerVars(program: Command, io: CliIo): void {
  const vars = program.command('vars').description("list and change the account's variables");
  withSession(vars.command('list').description('list the variables with their type and current value'))
    .option('--json', 'print JSON')
    .action(async (flags: SessionFlags & JsonFlag, cmd: Command) => {
      const api = apiFor(cmd, flags, io);
      await listVars(api, await sessionToken(cmd, api, flags, io), io, flags.json);
    });
  withSession(
    withTarget(
      vars
        .command('set')
        .description('override a variable for every device, or for --device / --label / --selector; pushed now to those online, kept for the others')
        .argument('<name>', 'variable name')
        .argument('<value>', 'new value, checked against the type (true/false for booleans)'),
    ),
  )
    .option('--type <type>', 'variable type, e.g. integer, float, boolean, string (default: its current type, string for a new one)')
    .option('--json', 'print JSON')
    .action(async (name: string, value: string, flags: SessionFlags & JsonFlag & TargetFlags & { type?: string }, cmd: Command) => {
      const target = targetOf(cmd, flags);
      const api = apiFor(cmd, flags, io);
      await setVar(api, await sessionToken(cmd, api, flags, io), name, value, flags.type, io, flags.json, target);
    });
  withSession(
    withTarget(
      vars
        .command('reset')
        .description("clear a variable's override (for every device, or the --device / --label / --selector it was set for): back to the game's value")
        .argument('<name>', 'variable name'),
    ),
  )
    .option('--json', 'print JSON')
    .action(async (name: string, flags: SessionFlags & JsonFlag & TargetFlags, cmd: Command) => {
      const target = targetOf(cmd, flags);
      const api = apiFor(cmd, flags, io);
      await resetVar(api, await sessionToken(cmd, api, flags, io), name, io, flags.json, target);
    });
}
