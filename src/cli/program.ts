/**
 * The `observerio` program (commander) and one run of it that returns the exit status: 0, 2 for bad
 * use (with the message), 1 for a failure. Apart from main.ts so tests can run commands in-process
 * with their own streams and environment.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';
import { ObserverioError } from '../errors.js';
import { registerAccount } from './account.js';
import { registerAdmin } from './admin.js';
import { registerDevices } from './devices.js';
import { processIo, type CliIo } from './io.js';
import { registerLogs } from './logs.js';
import { registerServe } from './serve.js';
import { registerSimulate } from './simulate.js';
import { registerVariables } from './variables.js';
import { registerVars } from './vars.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(io: CliIo = processIo()): Command {
  const program = new Command('observerio')
    .description('watch and steer running games live')
    .version(pkg.version)
    // Before the commands: subcommands copy these settings when they are created.
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)')
    // A command's options are its own: `devices --json` lists, `devices show ID --json` shows.
    .enablePositionalOptions()
    .exitOverride();
  registerServe(program);
  registerSimulate(program, io);
  registerAccount(program, io);
  registerVars(program, io);
  registerLogs(program, io);
  registerDevices(program, io);
  registerVariables(program, io);
  registerAdmin(program, io);
  return program;
}

/** Runs the CLI once; resolves with the exit status (messages already written to io.stderr). */
export async function runProgram(argv: string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof ConfigError) {
      io.stderr.write(`observerio: ${err.message}\n`);
      return 2;
    }
    // A rule the daemon would refuse, checked here first (a selector, a strategy name): bad use.
    if (err instanceof ObserverioError && err.code === 'bad_request') {
      io.stderr.write(`observerio: ${err.message}\n`);
      return 2;
    }
    io.stderr.write(`observerio: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
