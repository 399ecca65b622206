/**
 * Runs the built `observerio` CLI (bin/observerio.js → dist/) as a real process, the way a user does.
 * Asynchronous on purpose: the daemon under test runs in this process, so a spawnSync would block it.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const BIN = join(process.cwd(), 'bin', 'observerio.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<CliResult>;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed. */
  input?: string;
}

/** Fails the suite early with a clear message when dist/ was not built. */
export function requireBuiltCli(): void {
  if (!existsSync(join(process.cwd(), 'dist', 'cli', 'main.js'))) throw new Error("dist/ is missing: run 'npx tsc -p tsconfig.build.json' or 'make build' (make test does)");
}

/** The environment without any OBSERVERIO_* variable of the caller's shell, plus `env`. */
function cleanEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OBSERVERIO_') && k !== 'REDIS_URL' && k !== 'MEILI_URL') out[k] = v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export function startCli(args: string[], opts: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(opts.input ?? '');
  const exited = new Promise<CliResult>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).exited;
}

/** Bad use: exit status 2, nothing on stdout, and the message on stderr. */
export async function expectUsageError(args: string[], message: string | RegExp, opts: CliOptions = {}): Promise<CliResult> {
  const r = await runCli(args, opts);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).to.equal(2);
  expect(r.stdout).to.equal('');
  if (typeof message === 'string') expect(r.stderr).to.contain(message);
  else expect(r.stderr).to.match(message);
  return r;
}
