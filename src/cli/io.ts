/**
 * What a command may touch of the outside world, passed in rather than read from globals so a test
 * can run a command with its own streams and environment, and the real CLI with the process's.
 */

/** A stream a command writes to; `process.stdout` fits. */
export interface OutStream {
  write(chunk: string): unknown;
  /** True on a terminal: progress then updates one line instead of printing many. */
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  env: Readonly<Record<string, string | undefined>>;
  /** Read only when a command is told to (`--password-stdin`). */
  stdin: NodeJS.ReadableStream;
  /** The clock that "3m05s ago" is read against; Date.now when absent. A test pins it so the output is exact. */
  now?: () => number;
}

/** The command's current time in epoch milliseconds (see {@link CliIo.now}). */
export function nowOf(io: CliIo): number {
  return io.now?.() ?? Date.now();
}

export function processIo(): CliIo {
  // `observerio logs search | head`: a reader that went away is no error worth a stack trace.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin };
}

/**
 * A failure to report as `observerio: <message>` with exit status 1 (main.ts prints every non-usage
 * error that way); a distinct class so callers can tell an expected failure from a bug.
 */
export class CliFailure extends Error {
  override name = 'CliFailure';
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Aborts the returned signal on the first SIGINT/SIGTERM so a long-running command can stop cleanly
 * (close its devices, print its summary); a second signal exits at once with 130.
 */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
