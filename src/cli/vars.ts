/**
 * `observerio vars list` shows the account's variables; `observerio vars set NAME VALUE` changes one
 * the way the dashboard does: stored, then pushed to every connected device or kept for the next one.
 */
import type { Command } from 'commander';
import { cell, count, json, table } from './format.js';
import { apiFor, sessionToken, withSession, type Api, type SessionFlags } from './http-client.js';
import type { CliIo } from './io.js';
import type { PutVarBody, Var, VarDelivery, VarsAnswer } from '../wire.js';

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

export async function setVar(api: Api, token: string, name: string, value: string, type: string | undefined, io: CliIo, asJson = false): Promise<VarDelivery> {
  const body: PutVarBody = { value };
  if (type !== undefined) body.type = type;
  const res = await api.request<VarDelivery>('PUT', `/api/vars/${encodeURIComponent(name)}`, { token, body });
  if (asJson) {
    io.stdout.write(json(res, io.stdout.isTTY));
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

export function registerVars(program: Command, io: CliIo): void {
  const vars = program.command('vars').description("list and change the account's variables");
  withSession(vars.command('list').description('list the variables with their type and current value'))
    .option('--json', 'print JSON')
    .action(async (flags: SessionFlags & JsonFlag, cmd: Command) => {
      const api = apiFor(cmd, flags, io);
      await listVars(api, await sessionToken(cmd, api, flags, io), io, flags.json);
    });
  withSession(
    vars
      .command('set')
      .description('change a variable and push it to the connected devices (or keep it for the next one)')
      .argument('<name>', 'variable name')
      .argument('<value>', 'new value, checked against the type (true/false for booleans)'),
  )
    .option('--type <type>', 'variable type, e.g. integer, float, boolean, string (default: its current type, string for a new one)')
    .option('--json', 'print JSON')
    .action(async (name: string, value: string, flags: SessionFlags & JsonFlag & { type?: string }, cmd: Command) => {
      const api = apiFor(cmd, flags, io);
      await setVar(api, await sessionToken(cmd, api, flags, io), name, value, flags.type, io, flags.json);
    });
}
