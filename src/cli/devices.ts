/** `observerio devices`: the account's devices connected to this daemon, oldest connection first. */
import type { Command } from 'commander';
import { ago, cell, count, json, table } from './format.js';
import { apiFor, sessionToken, withSession, type Api, type SessionFlags } from './http-client.js';
import type { CliIo } from './io.js';
import type { Device, DevicesAnswer } from '../wire.js';

export type { Device };

export async function listDevices(api: Api, token: string, io: CliIo, asJson = false): Promise<Device[]> {
  const { devices } = await api.request<DevicesAnswer>('GET', '/api/devices', { token });
  if (asJson) {
    io.stdout.write(json({ devices }, io.stdout.isTTY));
    return devices;
  }
  if (devices.length === 0) {
    io.stdout.write('no devices connected\n');
    return devices;
  }
  const now = Date.now();
  io.stdout.write(
    table(
      ['DEVICE', 'CONNECTION', 'ADDRESS', 'CONNECTED', 'LAST LINE', 'LINES', 'NODE'],
      devices.map((d) => [cell(d.deviceId ?? '-'), cell(d.id), cell(d.remoteAddress), ago(d.connectedAt, now), ago(d.lastLineAt, now), count(d.linesIn ?? 0), cell(d.node)]),
    ),
  );
  io.stdout.write(`${count(devices.length)} device${devices.length === 1 ? '' : 's'}\n`);
  return devices;
}

export function registerDevices(program: Command, io: CliIo): void {
  withSession(program.command('devices').description("list the account's connected devices"))
    .option('--json', 'print JSON')
    .action(async (flags: SessionFlags & { json?: boolean }, cmd: Command) => {
      const api = apiFor(cmd, flags, io);
      await listDevices(api, await sessionToken(cmd, api, flags, io), io, flags.json);
    });
}
