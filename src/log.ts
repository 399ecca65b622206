/**
 * The daemon's logger: pino, readable on a terminal and JSON otherwise. Actors get a child logger
 * per actor path from the OTP runtime; nothing in src/ writes to the console directly.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Pretty output for people; default: when stdout is a terminal. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  if (pretty && !opts.destination) {
    return pino({
      level: opts.level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  const options = { level: opts.level, base: { service: 'observerio' } };
  return opts.destination ? pino(options, opts.destination as pino.DestinationStream) : pino(options);
}
