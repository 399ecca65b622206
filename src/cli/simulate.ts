/**
 * `observerio simulate`: N simulated games on the SDK against a daemon, for demos and for load. Devices
 * connect with a bounded number of attempts in flight (no thundering herd), then log at a steady rate,
 * bump a variable now and then and apply what the dashboard pushes, for the given duration; a progress
 * line runs meanwhile, and a summary (or JSON) at the end says what was sent, received and went wrong.
 */
import { Option, type Command } from 'commander';
import { SdkError } from '../sdk/index.js';
import { count, duration, json } from './format.js';
import { usage } from './http-client.js';
import { CliFailure, interruptSignal, sleep, type CliIo, type OutStream } from './io.js';
import { apiKeyArg, hostPortArg, intArg, numberArg, API_KEY_RE, type HostPort } from './options.js';
import { countError, newCounters, SimulatedDevice, type SimCounters } from './simulated-device.js';

export const MAX_DEVICES = 20_000;
/** How often every device gets the chance to emit what is due. */
const TICK_MS = 100;
const TTY_PROGRESS_MS = 250;
const PLAIN_PROGRESS_MS = 2000;

export interface SimulateOptions {
  apiKey: string;
  devices: number;
  /** Length of the steady phase, after every device has tried to connect. */
  durationMs: number;
  host: string;
  port: number;
  /** Log lines per second per device. */
  rate: number;
  /** Milliseconds between a device's score updates; 0 = never. */
  varIntervalMs: number;
  /** Connection attempts in flight at once. */
  wave: number;
  quiet?: boolean;
  /** Ends the run early (devices are still closed and the summary printed). */
  signal?: AbortSignal;
}

export interface SimulateSummary {
  target: string;
  devices: { requested: number; connected: number; failed: number; notAttempted: number; reconnects: number; disconnects: number };
  /** Log lines plus variable updates the devices sent. */
  linesSent: number;
  logsSent: number;
  varLinesSent: number;
  /** Logs the SDK dropped (queue full while offline or backed up) or never got to send. */
  logsDropped: number;
  changesReceived: number;
  errors: Record<string, number>;
  connectMs: number;
  durationMs: number;
  interrupted: boolean;
  /** Why the run did not go well; null when it did. */
  problem: string | null;
}

/** Connection failures on which trying the other devices would only fail the same way. */
const FATAL = new Set(['unknown_api_key', 'bad_api_key', 'connection_refused']);

function hint(code: string, o: SimulateOptions, target: string): string | null {
  switch (code) {
    case 'unknown_api_key':
      return `the daemon at ${target} does not know API key ${o.apiKey}: create an account with 'observerio user create' and pass its key`;
    case 'bad_api_key':
      return `the daemon at ${target} refused API key ${o.apiKey} as malformed`;
    case 'connection_refused':
      return `nothing listens on ${target}: is the daemon running? Start it with 'make run' (or 'observerio serve'), or pass --tcp HOST:PORT`;
    case 'connect_timeout':
      return `no answer from ${target} in time: is it an observerio daemon, and not overloaded?`;
    case 'server_busy':
      return `the daemon at ${target} refused connections over its limit (tcp.maxConnections)`;
    default:
      return null;
  }
}

const codes = (errors: Record<string, number>): string =>
  Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ×${count(n)}`)
    .join(', ');

/** The live status line: rewritten in place on a terminal, a plain line every few seconds otherwise. */
class Progress {
  private timer: NodeJS.Timeout | null = null;
  private lastLines = 0;
  private lastAt = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly out: OutStream,
    private readonly line: (linesPerSecond: number) => string,
    private readonly lines: () => number,
    quiet: boolean,
  ) {
    this.tty = Boolean(out.isTTY);
    if (!quiet) this.timer = setInterval(() => this.show(), this.tty ? TTY_PROGRESS_MS : PLAIN_PROGRESS_MS);
  }

  /** A plain line now (phase changes), whatever the stream. */
  note(text: string): void {
    if (this.timer === null) return;
    this.out.write(this.tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
  }

  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    if (this.tty) this.out.write('\r\x1b[2K');
  }

  private show(): void {
    const now = Date.now();
    const lines = this.lines();
    const perSecond = ((lines - this.lastLines) * 1000) / Math.max(1, now - this.lastAt);
    this.lastLines = lines;
    this.lastAt = now;
    const text = this.line(perSecond);
    const width = this.out.columns ?? 0;
    this.out.write(this.tty ? `\r\x1b[2K${width > 10 ? text.slice(0, width - 1) : text}` : `${text}\n`);
  }
}

function errorsOf(c: SimCounters): Record<string, number> {
  return Object.fromEntries([...c.errors.entries()].sort((a, b) => b[1] - a[1]));
}

export async function simulate(o: SimulateOptions, io: CliIo): Promise<SimulateSummary> {
  const target = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  const c = newCounters();
  const devices = Array.from(
    { length: o.devices },
    (_, index) => new SimulatedDevice({ index, host: o.host, port: o.port, apiKey: o.apiKey, rate: o.rate, varIntervalMs: o.varIntervalMs, counters: c }),
  );
  const started = Date.now();
  const logsSent = (): number => devices.reduce((sum, d) => sum + d.logsSent, 0);
  const errorCount = (): number => [...c.errors.values()].reduce((a, b) => a + b, 0);
  let phase = 'connecting';
  const progress = new Progress(
    io.stderr,
    (perSecond) =>
      `[${duration(Date.now() - started)}] ${phase}: ${count(c.online)}/${count(o.devices)} online, ${count(c.failed)} failed · ` +
      `${count(logsSent() + c.varsSet)} lines sent (${count(perSecond)}/s) · ${count(c.changesReceived)} changes received · ${count(errorCount())} errors`,
    () => logsSent() + c.varsSet,
    o.quiet ?? false,
  );
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const d of devices) d.tick(now);
  }, TICK_MS);

  let fatal: string | null = null;
  /** Why first connections failed, by code; a subset of the run's errors. */
  const failures = new Map<string, number>();
  let next = 0;
  const connectOne = async (): Promise<void> => {
    while (next < devices.length && fatal === null && !o.signal?.aborted) {
      const d = devices[next++] as SimulatedDevice;
      try {
        await d.connect();
      } catch (err) {
        const code = err instanceof SdkError ? err.code : 'connect_failed';
        c.failed++;
        countError(c, code);
        failures.set(code, (failures.get(code) ?? 0) + 1);
        if (c.connected === 0 && FATAL.has(code)) fatal = code;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.wave, devices.length) }, connectOne));
    const connectMs = Date.now() - started;
    if (fatal === null && c.connected > 0 && !o.signal?.aborted) {
      progress.note(`connected ${count(c.connected)} of ${count(o.devices)} devices to ${target} in ${duration(connectMs)}${c.failed ? ` (${count(c.failed)} failed)` : ''}; running for ${duration(o.durationMs)}`);
      phase = 'running';
      await sleep(o.durationMs, o.signal);
    }
    clearInterval(ticker);
    // A last tick, so every device logged what its rate owes up to now, not up to the previous tick.
    const end = Date.now();
    for (const d of devices) d.tick(end);
    phase = 'closing';
    await Promise.all(devices.map((d) => d.close()));
    progress.stop();

    const sent = logsSent();
    const logged = devices.reduce((sum, d) => sum + d.logged, 0);
    const errors = errorsOf(c);
    const notAttempted = o.devices - next;
    let problem: string | null = null;
    if (fatal !== null) problem = hint(fatal, o, target) ?? `no device could connect (${fatal})`;
    else if (c.failed > 0) {
      const byCode = Object.fromEntries(failures);
      const why = hint(Object.keys(byCode).sort((a, b) => (byCode[b] ?? 0) - (byCode[a] ?? 0))[0] ?? '', o, target);
      problem = `${count(c.failed)} of ${count(o.devices)} devices failed to connect (${codes(byCode)})${why ? `: ${why}` : ''}`;
    } else if (errorCount() > 0) problem = `errors during the run: ${codes(errors)}`;
    else if (logged - sent > 0) problem = `${count(logged - sent)} logs were dropped by the SDK (daemon too slow or connections lost)`;
    return {
      target,
      devices: { requested: o.devices, connected: c.connected, failed: c.failed, notAttempted, reconnects: c.reconnects, disconnects: c.disconnects },
      linesSent: sent + c.varsSet,
      logsSent: sent,
      varLinesSent: c.varsSet,
      logsDropped: logged - sent,
      changesReceived: c.changesReceived,
      errors,
      connectMs,
      durationMs: Date.now() - started,
      interrupted: o.signal?.aborted ?? false,
      problem,
    };
  } finally {
    clearInterval(ticker);
    progress.stop();
  }
}

export function formatSummary(s: SimulateSummary): string {
  const d = s.devices;
  const rows: Array<[string, string]> = [
    ['devices', `${count(d.connected)} of ${count(d.requested)} connected, ${count(d.failed)} failed${d.notAttempted ? `, ${count(d.notAttempted)} not attempted` : ''} (connect phase ${duration(s.connectMs)})`],
    ['sent', `${count(s.linesSent)} lines: ${count(s.logsSent)} logs, ${count(s.varLinesSent)} var updates (${count((s.linesSent * 1000) / Math.max(1, s.durationMs))} lines/s)`],
    ['received', `${count(s.changesReceived)} variable changes from the dashboard${s.changesReceived > 0 ? ', all applied' : ''}`],
    ['dropped', `${count(s.logsDropped)} logs`],
    ['reconnects', `${count(d.reconnects)} (${count(d.disconnects)} connections lost)`],
    ['errors', Object.keys(s.errors).length === 0 ? 'none' : codes(s.errors)],
    ['duration', `${duration(s.durationMs)}${s.interrupted ? ' (interrupted)' : ''}`],
  ];
  return `observerio simulate against ${s.target}\n${rows.map(([k, v]) => `  ${k.padEnd(10)} ${v}`).join('\n')}\n`;
}

interface SimulateFlags {
  apiKey?: string;
  devices: number;
  duration: number;
  tcp?: HostPort;
  rate: number;
  varInterval: number;
  wave: number;
  json?: boolean;
  quiet?: boolean;
}

export function registerSimulate(program: Command, io: CliIo): void {
  program
    .command('simulate')
    .description('run simulated game devices against a daemon: variables, logs at a steady rate, dashboard changes applied')
    .addOption(new Option('--api-key <key>', 'API key of the account (env OBSERVERIO_API_KEY)').argParser(apiKeyArg))
    .addOption(new Option('--devices <n>', `number of devices, sim-0 … sim-<n-1> (1-${MAX_DEVICES})`).argParser(intArg(1, MAX_DEVICES)).makeOptionMandatory())
    .addOption(new Option('--duration <seconds>', 'how long to run once the devices are connected').argParser(numberArg(0, 7 * 86_400, true)).makeOptionMandatory())
    .addOption(new Option('--tcp <host:port>', 'daemon SDK address (default 127.0.0.1 and OBSERVERIO_TCP_PORT or 4040)').argParser(hostPortArg))
    .addOption(new Option('--rate <lines>', 'log lines per second per device (0-1000)').argParser(numberArg(0, 1000)).default(2))
    .addOption(new Option('--var-interval <seconds>', "seconds between a device's score updates (0 = never)").argParser(numberArg(0, 86_400)).default(5))
    .addOption(new Option('--wave <n>', 'connection attempts in flight at once (1-5000)').argParser(intArg(1, 5000)).default(200))
    .option('--json', 'print the summary as JSON')
    .option('--quiet', 'no progress line')
    .addHelpText(
      'after',
      '\nExits 0 when every device connected and nothing went wrong, 1 otherwise (the summary says why).\nExample: observerio simulate --api-key abcDEF123456 --devices 1000 --duration 30',
    )
    .action(async (flags: SimulateFlags, cmd: Command) => {
      let apiKey = flags.apiKey;
      if (apiKey === undefined) {
        const fromEnv = io.env.OBSERVERIO_API_KEY;
        if (!fromEnv) usage(cmd, "required option '--api-key <key>' not specified (or set OBSERVERIO_API_KEY)");
        if (!API_KEY_RE.test(fromEnv)) usage(cmd, 'OBSERVERIO_API_KEY: an API key is exactly 12 characters of [A-Za-z0-9]');
        apiKey = fromEnv;
      }
      let tcp = flags.tcp;
      if (!tcp) {
        const port = io.env.OBSERVERIO_TCP_PORT;
        if (port && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) usage(cmd, `OBSERVERIO_TCP_PORT: expected a port number, got ${JSON.stringify(port)}`);
        tcp = { host: '127.0.0.1', port: port ? Number(port) : 4040 };
      }
      const stop = interruptSignal();
      let summary: SimulateSummary;
      try {
        summary = await simulate(
          { apiKey, devices: flags.devices, durationMs: Math.round(flags.duration * 1000), host: tcp.host, port: tcp.port, rate: flags.rate, varIntervalMs: Math.round(flags.varInterval * 1000), wave: flags.wave, quiet: flags.quiet, signal: stop.signal },
          io,
        );
      } finally {
        stop.dispose();
      }
      io.stdout.write(flags.json ? json(summary, io.stdout.isTTY) : formatSummary(summary));
      if (summary.problem !== null) throw new CliFailure(summary.problem);
    });
}
