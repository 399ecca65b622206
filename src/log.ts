/**
 * The daemon's logger: pino, readable on a terminal and JSON otherwise. Actors get a child logger
 * per actor path from the OTP runtime; nothing in src/ writes to the console directly.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Pretty output for people; default: when the destination (stdout unless given) is a terminal. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

const PRETTY = { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' };

function isTerminal(stream: NodeJS.WritableStream): boolean {
  return Boolean((stream as { isTTY?: boolean }).isTTY);
}

export function createLogger(opts: LoggerOptions): Logger {
  const pretty = opts.pretty ?? isTerminal(opts.destination ?? process.stdout);
  if (pretty) {
    // On stdout the formatting runs in pino's worker thread, off the event loop that serves sockets.
    if (!opts.destination) return pino({ level: opts.level, transport: { target: 'pino-pretty', options: { ...PRETTY, colorize: true } } });
    return pino({ level: opts.level }, pinoPretty({ ...PRETTY, colorize: isTerminal(opts.destination), destination: opts.destination, sync: true }));
  }
  const options = { level: opts.level, base: { service: 'observerio' } };
  return opts.destination ? pino(options, opts.destination as pino.DestinationStream) : pino(options);
}
