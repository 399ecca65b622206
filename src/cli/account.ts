/**
 * `observerio user create` registers an account and prints its API key (what a game's SDK connects
 * with), `observerio user key` prints an existing account's key; `observerio login` signs in and
 * prints a session token for OBSERVERIO_TOKEN.
 */
import type { Command } from 'commander';
import { json } from './format.js';
import { apiFor, pick, usage, withUrl, type Api, type UrlFlags } from './http-client.js';
import type { CliIo } from './io.js';
import type { CreateUserAnswer, Credentials, SessionAnswer } from '../wire.js';

interface CredentialFlags extends UrlFlags {
  email?: string;
  password?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

export type { Credentials };

/** The first line of stdin, without its line ending (`echo "$PW" | observerio login --password-stdin`). */
async function firstLine(stdin: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/, 1)[0] ?? '';
}

async function credentials(cmd: Command, flags: CredentialFlags, io: CliIo): Promise<Credentials> {
  const email = pick(flags.email, io, 'OBSERVERIO_EMAIL') ?? usage(cmd, 'an email is needed: pass --email or set OBSERVERIO_EMAIL');
  if (flags.passwordStdin && flags.password !== undefined) usage(cmd, '--password and --password-stdin exclude each other');
  const password = flags.passwordStdin ? await firstLine(io.stdin) : pick(flags.password, io, 'OBSERVERIO_PASSWORD');
  if (!password) usage(cmd, 'a password is needed: pass --password, --password-stdin or set OBSERVERIO_PASSWORD');
  return { email, password };
}

export async function createUser(api: Api, creds: Credentials, io: CliIo, asJson = false): Promise<CreateUserAnswer> {
  const res = await api.request<CreateUserAnswer>('POST', '/api/users', { body: creds });
  const out: CreateUserAnswer = { apiKey: res.apiKey, email: res.email };
  io.stdout.write(asJson ? json(out, io.stdout.isTTY) : `${out.apiKey}\n`);
  return out;
}

export async function login(api: Api, creds: Credentials, io: CliIo, asJson = false): Promise<SessionAnswer> {
  const res = await api.request<SessionAnswer>('POST', '/api/sessions', { body: creds });
  io.stdout.write(asJson ? json({ token: res.token, apiKey: res.apiKey }, io.stdout.isTTY) : `${res.token}\n`);
  if (!asJson && io.stdout.isTTY) io.stderr.write(`(export OBSERVERIO_TOKEN=${res.token} to use it with the other commands)\n`);
  return res;
}

function credentialOptions(cmd: Command): Command {
  return withUrl(cmd)
    .option('--email <email>', 'account email (env OBSERVERIO_EMAIL)')
    .option('--password <password>', 'account password, at least 8 characters (env OBSERVERIO_PASSWORD)')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--json', 'print JSON');
}

export function registerAccount(program: Command, io: CliIo): void {
  const user = program.command('user').description('manage accounts');
  credentialOptions(user.command('create').description('register an account and print its API key (for the SDK and `observerio simulate`)')).action(
    async (flags: CredentialFlags, cmd: Command) => {
      const creds = await credentials(cmd, flags, io);
      await createUser(apiFor(cmd, flags, io), creds, io, flags.json);
    },
  );
  credentialOptions(user.command('key').description('sign in and print the API key of an existing account (what `user create` printed)')).action(
    async (flags: CredentialFlags, cmd: Command) => {
      const creds = await credentials(cmd, flags, io);
      const res = await apiFor(cmd, flags, io).request<SessionAnswer>('POST', '/api/sessions', { body: creds });
      io.stdout.write(flags.json ? json({ apiKey: res.apiKey, email: res.email }, io.stdout.isTTY) : `${res.apiKey}\n`);
    },
  );
  credentialOptions(program.command('login').description('sign in and print a session token to use as OBSERVERIO_TOKEN')).action(
    async (flags: CredentialFlags, cmd: Command) => {
      const creds = await credentials(cmd, flags, io);
      await login(apiFor(cmd, flags, io), creds, io, flags.json);
    },
  );
}
