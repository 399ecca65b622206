/**
 * The child side of child.ts: a generator or baseline script calls `runWorker` with its body. The
 * body gets its configuration, sets up (connections, sign-in), calls `ready()` (which resolves on
 * `go`), does its work and returns its result; the CPU it used from `go` on is reported with it.
 * The process exits when the orchestrator disconnects.
 */
import type { ChildMsg, ParentMsg } from './child.js';

export interface WorkerControl {
  /** Tells the orchestrator setup is done; resolves when it says go. */
  ready(info?: unknown): Promise<void>;
  /** Resolves when the orchestrator says stop (open-ended phases). */
  readonly stopped: Promise<void>;
  /** True once stop arrived. */
  readonly isStopped: boolean;
  /** Commands from the orchestrator, in order. */
  onCmd(handler: (cmd: unknown) => void): void;
  event(e: unknown): void;
}

function send(m: ChildMsg): void {
  process.send?.(m);
}

export function runWorker<C, R>(body: (config: C, ctl: WorkerControl) => Promise<R>): void {
  let goResolve: () => void = () => undefined;
  const go = new Promise<void>((r) => (goResolve = r));
  let stopResolve: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (stopResolve = r));
  let isStopped = false;
  let cmdHandler: (cmd: unknown) => void = () => undefined;
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();

  process.on('message', (m: ParentMsg) => {
    if (m.t === 'config') {
      const ctl: WorkerControl = {
        ready: (info) => {
          send({ t: 'ready', info });
          return go;
        },
        stopped,
        get isStopped() {
          return isStopped;
        },
        onCmd: (h) => (cmdHandler = h),
        event: (e) => send({ t: 'event', event: e }),
      };
      body(m.config as C, ctl).then(
        (result) => {
          const c = process.cpuUsage(cpu0);
          send({ t: 'result', result, cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 });
        },
        (err: unknown) => send({ t: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
    } else if (m.t === 'go') {
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      goResolve();
    } else if (m.t === 'stop') {
      isStopped = true;
      stopResolve();
    } else if (m.t === 'cmd') {
      cmdHandler(m.cmd);
    }
  });
  process.on('disconnect', () => process.exit(0));
}
