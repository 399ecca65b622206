/**
 * The `observerio` command line (commander): `serve` runs the daemon; the other commands talk to a
 * running daemon. Bad use exits 2 with a message; failures exit 1.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';
import { registerAccount } from './account.js';
import { registerAdmin } from './admin.js';
import { registerDevices } from './devices.js';
import { processIo } from './io.js';
import { registerLogs } from './logs.js';
import { registerServe } from './serve.js';
import { registerSimulate } from './simulate.js';
import { registerVars } from './vars.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('observerio')
    .description('watch and steer running games live')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerServe(program);
  const io = processIo();
  registerSimulate(program, io);
  registerAccount(program, io);
  registerVars(program, io);
  registerLogs(program, io);
  registerDevices(program, io);
  registerAdmin(program, io);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`observerio: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`observerio: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
