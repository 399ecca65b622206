/**
 * `observerio logs search` finds the account's logs (text, level, device, time); `observerio logs tail`
 * prints the latest ones, newest last, and with `--follow` keeps printing new ones by polling
 * `GET /api/logs?from=` — plain HTTP, so it works through any proxy and survives daemon restarts.
 */
import { Option, type Command } from 'commander';
import { cell, count, json } from './format.js';
import { apiFor, HttpError, sessionToken, withSession, type Api, type SessionFlags } from './http-client.js';
import { sleep, interruptSignal, type CliIo } from './io.js';
import { intArg, numberArg, timeArg } from './options.js';
import type { LogEntry, LogSearchQuery, LogSearchResult } from '../wire.js';

/** A log as `GET /api/logs` returns it: the daemon's own shape. */
export type LogHit = LogEntry;
export type LogSearch = LogSearchResult;
/** The search's filters: the daemon's query without the API key, which the session implies. */
export type LogFilter = LogSearchQuery;

/** The daemon's largest page. */
const MAX_LIMIT = 1000;
/**
 * How far back each poll of `tail --follow` looks again: a log is searchable only once its batch is
 * indexed, which may be after newer ones were, so a poll starting exactly at the newest line seen
 * could miss it. Lines seen already are recognised by id.
 */
const FOLLOW_OVERLAP_MS = 10_000;

/** One log as a line: receive time, level, device, message, other fields as key=value. */
export function formatLog(h: LogHit): string {
  const fields = Object.entries(h.fields ?? {})
    .map(([k, v]) => ` ${k}=${cell(v)}`)
    .join('');
  return `${new Date(h.receivedAt).toISOString()}  ${h.level.toUpperCase().padEnd(5)}  ${h.deviceId ?? '-'}  ${cell(h.message)}${fields}\n`;
}

function query(f: LogFilter): Record<string, string | number | undefined> {
  return { q: f.q, level: f.level, device: f.device, from: f.from, to: f.to, limit: f.limit };
}

export async function searchLogs(api: Api, token: string, filter: LogFilter, io: CliIo, asJson = false): Promise<LogSearch> {
  const res = await api.request<LogSearch>('GET', '/api/logs', { token, query: query(filter) });
  if (asJson) {
    io.stdout.write(json(res, io.stdout.isTTY));
    return res;
  }
  if (res.hits.length === 0) io.stdout.write('no logs match\n');
  for (const h of res.hits) io.stdout.write(formatLog(h));
  if (res.total > res.hits.length) io.stderr.write(`(${count(res.hits.length)} newest of ${count(res.total)} matches; --limit shows more, up to ${MAX_LIMIT})\n`);
  return res;
}

export interface TailOptions extends LogFilter {
  follow?: boolean;
  /** Between polls with follow; default 1000 ms. */
  intervalMs?: number;
  json?: boolean;
  /** Ends a follow. */
  signal?: AbortSignal;
}

const byTime = (a: LogHit, b: LogHit): number => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Prints the newest `limit` logs, oldest first; with `follow`, then every new one until the signal
 * aborts. Resolves with how many lines were printed.
 */
export async function tailLogs(api: Api, token: string, opts: TailOptions, io: CliIo): Promise<number> {
  const print = (h: LogHit): void => void io.stdout.write(opts.json ? `${JSON.stringify(h)}\n` : formatLog(h));
  const filter: LogFilter = { q: opts.q, level: opts.level, device: opts.device };
  const first = await api.request<LogSearch>('GET', '/api/logs', { token, query: query({ ...filter, limit: opts.limit ?? 20 }), signal: opts.signal });
  const initial = [...first.hits].sort(byTime);
  for (const h of initial) print(h);
  let printed = initial.length;
  if (!opts.follow) return printed;

  /** Ids printed within the overlap window, with their receive time so old ones can be forgotten. */
  const seen = new Map<string, number>(initial.map((h) => [h.id, h.receivedAt]));
  let newest = initial.at(-1)?.receivedAt ?? null;
  // What came before the first page is history the user did not ask for (-n), even inside the overlap.
  const floor = initial.at(-1) ?? null;
  const afterFloor = (h: LogHit): boolean => floor === null || byTime(h, floor) > 0;
  let failing: string | null = null;
  while (!opts.signal?.aborted) {
    await sleep(opts.intervalMs ?? 1000, opts.signal);
    if (opts.signal?.aborted) break;
    let res: LogSearch;
    try {
      const from = newest === null ? undefined : Math.max(0, newest - FOLLOW_OVERLAP_MS);
      res = await api.request<LogSearch>('GET', '/api/logs', { token, query: query({ ...filter, from, limit: MAX_LIMIT }), signal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) break;
      // A session that expired or a bad filter will not get better by retrying.
      if (err instanceof HttpError && err.status >= 400 && err.status < 500 && err.status !== 429) throw err;
      const msg = (err as Error).message;
      if (msg !== failing) io.stderr.write(`observerio: ${msg}; retrying\n`);
      failing = msg;
      continue;
    }
    if (failing !== null) io.stderr.write('observerio: reconnected\n');
    failing = null;
    const fresh = res.hits.filter((h) => !seen.has(h.id) && afterFloor(h)).sort(byTime);
    // The page was full and its oldest line is new: lines between it and the last poll may be missing.
    const oldest = res.hits.at(-1);
    if (res.hits.length >= MAX_LIMIT && oldest && !seen.has(oldest.id) && afterFloor(oldest) && newest !== null)
      io.stderr.write(`observerio: more than ${MAX_LIMIT} new lines between two polls; some were skipped (narrow with --level / --device, or shorten --interval)\n`);
    for (const h of fresh) {
      print(h);
      seen.set(h.id, h.receivedAt);
      if (newest === null || h.receivedAt > newest) newest = h.receivedAt;
    }
    printed += fresh.length;
    if (newest !== null) for (const [id, at] of seen) if (at < newest - FOLLOW_OVERLAP_MS) seen.delete(id);
  }
  return printed;
}

interface FilterFlags extends SessionFlags {
  level?: string;
  device?: string;
  limit?: number;
  json?: boolean;
}

function withFilters(cmd: Command): Command {
  return withSession(cmd).option('--level <level>', 'only this level, e.g. error').option('--device <deviceId>', 'only logs from this device');
}

export function registerLogs(program: Command, io: CliIo): void {
  const logs = program.command('logs').description("search and tail the account's logs");
  withFilters(logs.command('search').description('search logs by text, newest first').argument('[query]', 'words to look for (all logs when absent)'))
    .addOption(new Option('--from <time>', 'received at or after: epoch ms, ISO date, or ago like 15m').argParser(timeArg()))
    .addOption(new Option('--to <time>', 'received at or before: epoch ms, ISO date, or ago like 5m').argParser(timeArg()))
    .addOption(new Option('--limit <n>', `at most this many (1-${MAX_LIMIT})`).argParser(intArg(1, MAX_LIMIT)).default(100))
    .option('--json', 'print the answer as JSON: {hits, total}')
    .action(async (q: string | undefined, flags: FilterFlags & { from?: number; to?: number }, cmd: Command) => {
      const api = apiFor(cmd, flags, io);
      const token = await sessionToken(cmd, api, flags, io);
      await searchLogs(api, token, { q, level: flags.level, device: flags.device, from: flags.from, to: flags.to, limit: flags.limit }, io, flags.json);
    });
  withFilters(logs.command('tail').description('print the latest logs, newest last; --follow keeps printing new ones'))
    .option('-f, --follow', 'keep printing new logs until interrupted (Ctrl-C)')
    .option('-q, --query <words>', 'only logs matching these words')
    .addOption(new Option('-n, --limit <n>', `how many of the latest to print first (1-${MAX_LIMIT})`).argParser(intArg(1, MAX_LIMIT)).default(20))
    .addOption(new Option('--interval <seconds>', 'seconds between polls with --follow').argParser(numberArg(0.05, 3600)).default(1))
    .option('--json', 'print one JSON object per log line')
    .action(async (flags: FilterFlags & { follow?: boolean; query?: string; interval: number }, cmd: Command) => {
      const api = apiFor(cmd, flags, io);
      const token = await sessionToken(cmd, api, flags, io);
      const stop = flags.follow ? interruptSignal() : null;
      try {
        await tailLogs(
          api,
          token,
          { q: flags.query, level: flags.level, device: flags.device, limit: flags.limit, follow: flags.follow, intervalMs: flags.interval * 1000, json: flags.json, signal: stop?.signal },
          io,
        );
      } finally {
        stop?.dispose();
      }
    });
}
