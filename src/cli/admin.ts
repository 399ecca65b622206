/**
 * `observerio admin tree` prints the daemon's supervision tree the way Erlang's observer shows it
 * (status, restarts, last crash per actor; big supervisors paged); `observerio admin kill PATH` crashes
 * one actor so its supervisor applies its strategy; `observerio admin workers` lists the processes of
 * `serve --workers N` (`admin tree --worker N` shows one of them). All need the daemon's admin token.
 */
import { Option, type Command } from 'commander';
import { ago, cell, count, json } from './format.js';
import { adminToken, apiFor, usage, withUrl, type Api, type UrlFlags } from './http-client.js';
import type { CliIo } from './io.js';
import { intArg } from './options.js';
import type { WorkersAnswer } from '../cluster/protocol.js';
import type { KillAnswer as WireKillAnswer, KillBody, TreeNode as WireTreeNode, TreeQuery } from '../wire.js';

/** A node of GET /admin/tree, as much of it as the CLI reads; `--json` prints the answer as it came. */
export type TreeNode = Pick<WireTreeNode, 'name' | 'path' | 'kind' | 'status' | 'restarts' | 'lastCrash'> &
  Partial<Pick<WireTreeNode, 'startedAt' | 'strategy' | 'childCount' | 'offset' | 'truncated' | 'counts'>> & { children?: TreeNode[] };

const DEFAULT_LIMIT = 50;

export type TreeOptions = TreeQuery;

function describe(n: TreeNode, label: string, now: number): string {
  const parts = [label, n.strategy ? `${n.kind} ${n.strategy}` : n.kind, n.status, `restarts ${n.restarts}`];
  if (n.lastCrash) parts.push(`last crash ${ago(n.lastCrash.at, now)}: ${cell(n.lastCrash.reason)}`);
  if (n.childCount !== undefined) {
    const counts = Object.entries(n.counts ?? {})
      .map(([status, k]) => `${count(k)} ${status}`)
      .join(', ');
    parts.push(`${count(n.childCount)} child${n.childCount === 1 ? '' : 'ren'}${counts ? ` (${counts})` : ''}`);
  }
  return parts.join('  ');
}

/** The tree as indented text, one actor per line, with hints for the pages not shown. */
export function renderTree(root: TreeNode, limit: number, now = Date.now()): string {
  const lines: string[] = [];
  const walk = (n: TreeNode, label: string, lead: string, childLead: string): void => {
    lines.push(`${lead}${describe(n, label, now)}`);
    const kids = n.children ?? [];
    const offset = n.offset ?? 0;
    const total = n.childCount ?? kids.length;
    const rest = total - offset - kids.length;
    const page = limit === DEFAULT_LIMIT ? '' : ` --limit ${limit}`;
    const before = offset > 0 ? `… ${count(offset)} before these: observerio admin tree --expand ${n.path}${offset > limit ? ` --offset ${offset - limit}` : ''}${page}` : null;
    const after =
      rest <= 0
        ? null
        : kids.length === 0 && offset === 0
          ? `… ${count(rest)} not shown: observerio admin tree --expand ${n.path}`
          : `… ${count(rest)} more: observerio admin tree --expand ${n.path} --offset ${offset + kids.length}${page}`;
    const rows: Array<TreeNode | string> = [...(before ? [before] : []), ...kids, ...(after ? [after] : [])];
    rows.forEach((row, i) => {
      const last = i === rows.length - 1;
      const branch = `${childLead}${last ? '└─ ' : '├─ '}`;
      if (typeof row === 'string') lines.push(`${branch}${row}`);
      else walk(row, row.name, branch, `${childLead}${last ? '   ' : '│  '}`);
    });
  };
  walk(root, root.path, '', '');
  return `${lines.join('\n')}\n`;
}

export async function showTree(api: Api, token: string, opts: TreeOptions & { worker?: number }, io: CliIo, asJson = false): Promise<TreeNode> {
  const tree = await api.request<TreeNode>('GET', '/admin/tree', { token, query: { expand: opts.expand, offset: opts.offset, limit: opts.limit, depth: opts.depth, worker: opts.worker } });
  io.stdout.write(asJson ? json(tree, io.stdout.isTTY) : renderTree(tree, opts.limit ?? DEFAULT_LIMIT));
  return tree;
}

/** One line per worker process: slot, pid, status, restarts, and how its last process ended. */
export async function showWorkers(api: Api, token: string, io: CliIo, asJson = false): Promise<WorkersAnswer> {
  const res = await api.request<WorkersAnswer>('GET', '/admin/workers', { token });
  if (asJson) {
    io.stdout.write(json(res, io.stdout.isTTY));
    return res;
  }
  const now = Date.now();
  io.stdout.write(`primary pid ${res.primaryPid}; answered by worker ${res.self}\n`);
  for (const w of res.workers) {
    const parts = [`worker ${w.id}`, w.pid === null ? 'no process' : `pid ${w.pid}`, w.status, `restarts ${w.restarts}`];
    if (w.lastExit) parts.push(`last exit ${ago(Date.parse(w.lastExit.at), now)}: pid ${w.lastExit.pid} ${w.lastExit.signal ?? `code ${w.lastExit.code}`}`);
    io.stdout.write(`${parts.join('  ')}\n`);
  }
  return res;
}

export type KillAnswer = WireKillAnswer;

export async function killActor(api: Api, token: string, path: string, reason: string | undefined, io: CliIo, asJson = false, worker?: number): Promise<KillAnswer> {
  const body: KillBody = { path };
  if (reason !== undefined) body.reason = reason;
  if (worker !== undefined) body.worker = worker;
  const res = await api.request<KillAnswer>('POST', '/admin/kill', { token, body });
  if (asJson) {
    io.stdout.write(json(res, io.stdout.isTTY));
    return res;
  }
  const now = Date.now();
  io.stdout.write(worker === undefined ? `killed ${path}\n` : `killed ${path} in worker ${worker}\n`);
  io.stdout.write(`now:        ${describe(res.node, res.node.path, now)}\n`);
  if (res.supervisor) io.stdout.write(`supervisor: ${describe(res.supervisor, res.supervisor.path, now)}\n`);
  return res;
}

interface AdminFlags extends UrlFlags {
  adminToken?: string;
  json?: boolean;
}

function withAdmin(cmd: Command): Command {
  return withUrl(cmd).option('--admin-token <token>', "the daemon's admin token (env OBSERVERIO_ADMIN_TOKEN)").option('--json', 'print the answer as JSON');
}

export function registerAdmin(program: Command, io: CliIo): void {
  const admin = program.command('admin').description("inspect the daemon's actor tree (needs OBSERVERIO_ADMIN_TOKEN)");
  withAdmin(admin.command('tree').description('print the supervision tree: status, restarts and last crash of every actor'))
    .option('--expand <path>', 'start at this supervisor and page its children, e.g. /observerio/tcp/conns')
    .addOption(new Option('--offset <n>', 'with --expand: skip this many children').argParser(intArg(0, 1e9)))
    .addOption(new Option('--limit <n>', 'children shown per supervisor (0-1000)').argParser(intArg(0, 1000)).default(DEFAULT_LIMIT))
    .addOption(new Option('--depth <n>', 'levels shown below the start (0-64)').argParser(intArg(0, 64)))
    .addOption(new Option('--worker <n>', 'with serve --workers: the tree of this worker process (1-64)').argParser(intArg(1, 64)))
    .action(async (flags: AdminFlags & TreeOptions & { worker?: number }, cmd: Command) => {
      if (flags.offset !== undefined && flags.expand === undefined) usage(cmd, '--offset pages the children of one supervisor: give --expand <path> with it');
      if (flags.expand !== undefined && !flags.expand.startsWith('/')) usage(cmd, '--expand takes an actor path such as /observerio/tcp/conns');
      await showTree(apiFor(cmd, flags, io), adminToken(cmd, flags.adminToken, io), flags, io, flags.json);
    });
  withAdmin(admin.command('workers').description('list the worker processes of serve --workers N: pid, status, restarts')).action(async (flags: AdminFlags, cmd: Command) => {
    await showWorkers(apiFor(cmd, flags, io), adminToken(cmd, flags.adminToken, io), io, flags.json);
  });
  withAdmin(admin.command('kill').description('crash one actor so its supervisor restarts it (as in OTP)').argument('<path>', 'actor path, e.g. /observerio/tcp/listener'))
    .option('--reason <text>', 'crash reason recorded in the tree', 'killed by operator')
    .addOption(new Option('--worker <n>', 'with serve --workers: kill in this worker process (1-64)').argParser(intArg(1, 64)))
    .action(async (path: string, flags: AdminFlags & { reason?: string; worker?: number }, cmd: Command) => {
      if (!/^\/\S+$/.test(path)) usage(cmd, 'PATH must be an actor path such as /observerio/tcp/listener (see `observerio admin tree`)');
      await killActor(apiFor(cmd, flags, io), adminToken(cmd, flags.adminToken, io), path, flags.reason, io, flags.json, flags.worker);
    });
}
