/**
 * A cell is one child of a supervisor as the runtime tracks it: its spec, status, restart count,
 * last crash and start time (OTP's child record). Workers, static and dynamic supervisors are cells.
 */
import type { EventEmitter } from 'node:events';
import type { NormalizedSpec } from './child-spec.js';
import type { NactRef } from './nact.js';
import type { RestartBackoff } from './restart-backoff.js';
import type { CrashInfo, OtpLogger, OtpTimers, Status, TreeNode, TreeOptions } from './types.js';

/** What a child needs from whoever supervises it. */
export interface ParentCell {
  readonly path: string;
  readonly nactRef: NactRef;
  readonly rt: RuntimeCore;
  /** The child crashed (threw, failed to (re)start, or was killed); apply the strategy. */
  childCrashed(child: Cell, reason: unknown): Promise<void>;
  /** The child ended by itself without a crash. */
  childExited(child: Cell, reason: string): Promise<void>;
}

/** What every cell shares from the runtime. */
export interface RuntimeCore {
  readonly logger: OtpLogger;
  readonly events: EventEmitter;
  readonly now: () => number;
  readonly timers: OtpTimers;
  /** In [0, 1): the jitter of restart delays. */
  readonly random: () => number;
}

export abstract class Cell {
  status: Status = 'starting';
  restarts = 0;
  lastCrash: CrashInfo | null = null;
  startedAt = 0;
  /** This child's restart backoff, made by its supervisor at its first crash when it has one. */
  backoff: RestartBackoff | null = null;
  readonly path: string;
  private logger: OtpLogger | undefined;
  /** Set while the child waits out a restart delay; `wake` ends the wait early. */
  private pause: { ms: number; wake: () => void } | null = null;

  constructor(
    readonly spec: NormalizedSpec,
    readonly parent: ParentCell,
  ) {
    this.path = `${parent.path}/${spec.id}`;
  }

  get name(): string {
    return this.spec.id;
  }

  get rt(): RuntimeCore {
    return this.parent.rt;
  }

  /** One child logger per actor path, made on first use (thousands of connections rarely log). */
  get log(): OtpLogger {
    this.logger ??= this.rt.logger.child({ actor: this.path });
    return this.logger;
  }

  /** First start; rejects when the child cannot start (the parent then fails its own start). */
  abstract start(): Promise<void>;
  /** Ends the current incarnation (terminate, stop children); first half of a restart. */
  abstract terminateForRestart(reason: string): Promise<void>;
  /** Starts a fresh incarnation in place; rejects when it cannot. */
  abstract reinit(): Promise<void>;
  /** Stops for good. */
  abstract stop(reason: string): Promise<void>;
  abstract mailbox(): number;
  abstract node(opts: TreeOptions, depth: number): TreeNode;

  /**
   * Restart in place: terminate, wait out `delayMs` (backoff) with messages held, then a fresh
   * start; a failed start is another crash.
   */
  async restart(reason: string, delayMs = 0): Promise<void> {
    await this.terminateForRestart(reason);
    await this.waitBeforeRestart(delayMs);
    await this.reinitOrCrash(reason);
  }

  /** True while waiting out a restart delay: no incarnation runs, so there is nothing to crash. */
  get waitingToRestart(): boolean {
    return this.pause !== null;
  }

  /**
   * Waits `ms` between the two halves of a restart (status stays 'restarting', messages stay
   * queued). Stopping the child ends the wait at once, so a shutdown never waits for a backoff.
   */
  async waitBeforeRestart(ms: number): Promise<void> {
    if (!(ms > 0) || this.status === 'stopped') return;
    this.pause?.wake();
    await new Promise<void>((resolve) => {
      const { timers } = this.rt;
      const done = (): void => {
        if (this.pause === pause) this.pause = null;
        resolve();
      };
      const handle = timers.setTimeout(done, ms);
      const pause = {
        ms,
        wake: () => {
          timers.clearTimeout(handle);
          done();
        },
      };
      this.pause = pause;
    });
  }

  /** Ends a restart wait now; every stop() calls it first. */
  protected endRestartWait(): void {
    this.pause?.wake();
  }

  /**
   * Second half of a restart, reporting a failed start to the parent as a crash. `reason` is why this
   * child restarts: its own crash, or a sibling's under one_for_all / rest_for_one.
   */
  async reinitOrCrash(reason = 'restart'): Promise<void> {
    if (this.status === 'stopped') return;
    try {
      await this.reinit();
      this.restarts += 1;
      // The crash report said what the supervisor decided; this one says it worked (OTP's progress
      // report), so a log reader sees every restart completed, with the count the tree shows.
      this.rt.logger.info(
        { errorContext: 'child_restarted', supervisor: this.parent.path, child: this.path, reason, restarts: this.restarts },
        `${this.path} restarted (${this.restarts} in all): ${reason}`,
      );
      this.rt.events.emit('restart', { path: this.path, supervisor: this.parent.path, reason, restarts: this.restarts });
    } catch (err) {
      await this.parent.childCrashed(this, err);
    }
  }

  protected baseNode(kind: 'supervisor' | 'worker'): TreeNode {
    return {
      name: this.name,
      path: this.path,
      kind,
      restart: this.spec.restart,
      status: this.status,
      restarts: this.restarts,
      lastCrash: this.lastCrash,
      startedAt: this.startedAt,
      mailbox: this.mailbox(),
      backoffMs: this.pause?.ms ?? this.backoff?.current() ?? 0,
    };
  }
}

/** A crash reason as one line for reports and the tree. */
export function formatReason(reason: unknown): string {
  if (reason instanceof Error) return `${reason.name === 'Error' ? '' : `${reason.name}: `}${reason.message}`;
  if (typeof reason === 'string') return reason;
  try {
    return JSON.stringify(reason) ?? String(reason);
  } catch {
    return String(reason);
  }
}
