/**
 * `observerio devices` (or `devices list`): the account's devices, online or remembered, with their
 * labels, strategy and pending changes; `observerio devices show ID`: one device's variables, each
 * with its effective value and where it comes from (override or the game's report), and what waits
 * to be sent to it. A daemon before DESIGN.md §8 lists connections instead; that is shown as before.
 */
import type { Command } from 'commander';
import { ago, cell, count, json, table } from './format.js';
import { apiFor, sessionToken, usage, withSession, type Api, type SessionFlags } from './http-client.js';
import { nowOf, type CliIo } from './io.js';
import { describeTarget } from './targets.js';
import { DEVICE_ID_RE } from '../model.js';
import type { Device, DeviceAnswer, DeviceSummary, Labels } from '../wire.js';

export type { Device };

const labelText = (labels: Labels): string =>
  Object.keys(labels)
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join(',') || '-';

function isSummary(d: Device | DeviceSummary): d is DeviceSummary {
  return 'lastSeen' in d && 'online' in d;
}

export async function listDevices(api: Api, token: string, io: CliIo, asJson = false): Promise<Array<Device | DeviceSummary>> {
  const { devices } = await api.request<{ devices: Array<Device | DeviceSummary> }>('GET', '/api/devices', { token });
  if (asJson) {
    io.stdout.write(json({ devices }, io.stdout.isTTY));
    return devices;
  }
  if (devices.length === 0) {
    io.stdout.write('no devices connected\n');
    return devices;
  }
  const now = nowOf(io);
  const summaries = devices.filter(isSummary);
  if (summaries.length === devices.length) {
    io.stdout.write(
      table(
        ['DEVICE', 'STATE', 'LAST SEEN', 'ADDRESS', 'LABELS', 'STRATEGY', 'PENDING'],
        summaries.map((d) => [
          cell(d.deviceId) + (d.generated ? ' (generated)' : ''),
          d.online ? 'online' : 'offline',
          d.online ? 'now' : ago(d.lastSeen, now),
          cell(d.lastAddress ?? '-'),
          cell(labelText(d.labels)),
          cell(d.strategy ?? '-'),
          count(d.pendingCount),
        ]),
      ),
    );
    const online = summaries.filter((d) => d.online).length;
    io.stdout.write(`${count(devices.length)} device${devices.length === 1 ? '' : 's'}, ${count(online)} online\n`);
    return devices;
  }
  const conns = devices as Device[];
  io.stdout.write(
    table(
      ['DEVICE', 'CONNECTION', 'ADDRESS', 'CONNECTED', 'LAST LINE', 'LINES', 'NODE'],
      conns.map((d) => [cell(d.deviceId ?? '-'), cell(d.id), cell(d.remoteAddress), ago(d.connectedAt, now), ago(d.lastLineAt, now), count(d.linesIn ?? 0), cell(d.node)]),
    ),
  );
  io.stdout.write(`${count(devices.length)} device${devices.length === 1 ? '' : 's'}\n`);
  return devices;
}

export async function showDevice(api: Api, token: string, deviceId: string, io: CliIo, asJson = false): Promise<DeviceAnswer> {
  const d = await api.request<DeviceAnswer>('GET', `/api/devices/${encodeURIComponent(deviceId)}`, { token });
  if (asJson) {
    io.stdout.write(json(d, io.stdout.isTTY));
    return d;
  }
  const now = nowOf(io);
  io.stdout.write(
    [
      `device    ${d.deviceId}${d.generated ? ' (generated id)' : ''}`,
      `state     ${d.online ? 'online' : `offline, last seen ${ago(d.lastSeen, now)}`}`,
      `address   ${d.lastAddress ?? '-'}`,
      `labels    ${labelText(d.labels)}`,
      `strategy  ${d.strategy ?? '-'}`,
      '',
    ].join('\n'),
  );
  if (d.vars.length === 0) io.stdout.write('no variables\n');
  else
    io.stdout.write(
      table(
        ['NAME', 'TYPE', 'EFFECTIVE', 'SOURCE', 'OVERRIDE', 'REPORTED', 'TARGET'],
        d.vars.map((v) => [
          cell(v.name),
          cell(v.type),
          cell(v.effective),
          v.source + (v.strategy ? ` (${v.strategy})` : ''),
          v.override === null ? '-' : cell(v.override),
          v.reported === null ? '-' : cell(v.reported),
          v.target === null ? '-' : cell(describeTarget(v.target)),
        ]),
      ),
    );
  if (d.pending.length === 0) io.stdout.write('nothing pending\n');
  else {
    io.stdout.write(`pending (sent when it ${d.online ? 'reads them' : 'connects'}):\n`);
    io.stdout.write(table(['NAME', 'TYPE', 'VALUE'], d.pending.map((p) => [cell(p.name), cell(p.type), cell(p.value)])));
  }
  return d;
}

export function registerDevices(program: Command, io: CliIo): void {
  const list = async (flags: SessionFlags & { json?: boolean }, cmd: Command): Promise<void> => {
    const api = apiFor(cmd, flags, io);
    await listDevices(api, await sessionToken(cmd, api, flags, io), io, flags.json);
  };
  // `devices` itself lists (as it always did), so its own flags show in `devices --help`; positional
  // options keep them from swallowing the same flags of `devices show`.
  const devices = withSession(program.command('devices').description("list the account's devices, or show one's variables (devices show ID)"))
    .option('--json', 'print JSON')
    .enablePositionalOptions()
    .action(list);
  withSession(devices.command('list').description("list the account's devices (same as devices)"))
    .option('--json', 'print JSON')
    .action(list);
  withSession(devices.command('show').description("one device's variables (effective, override, reported, source) and what is pending for it").argument('<id>', 'device id'))
    .option('--json', 'print JSON')
    .action(async (id: string, flags: SessionFlags & { json?: boolean }, cmd: Command) => {
      if (!DEVICE_ID_RE.test(id)) usage(cmd, `${JSON.stringify(id)} is not a device id (1-64 characters of [A-Za-z0-9._-])`);
      const api = apiFor(cmd, flags, io);
      await showDevice(api, await sessionToken(cmd, api, flags, io), id, io, flags.json);
    });
}
