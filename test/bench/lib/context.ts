/**
 * What every scenario gets from the orchestrator: the run's mode, the private backends, and helpers
 * that start the daemon and child processes and make sure they all stop again, whatever happens.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MeiliServer, RedisServer } from '../../helpers/processes.js';
import { BenchChild } from './child.js';
import { DaemonProcess } from './daemon.js';

export interface Row {
  /** What is measured, e.g. "ingest lines/s". */
  metric: string;
  figure: number | null;
  unit: string;
  /** The target in words, e.g. "≥ 150,000 and ≥ 2× baseline". */
  target: string;
  baseline: number | null;
  /** True/false when judged; null when there is nothing to judge. */
  pass: boolean | null;
  /** Digits after the decimal point in tables. */
  digits?: number;
}

export interface ScenarioReport {
  id: string;
  title: string;
  rows: Row[];
  /** Median CPU per process over the measured windows, % of one core. */
  cpu: Record<string, number>;
  /** Everything measured, per run. */
  runs: unknown[];
  notes: string[];
  error?: string;
  seconds: number;
}

export interface BenchContext {
  quick: boolean;
  runs: number;
  redis: RedisServer;
  meili: MeiliServer;
  workDir: string;
  profile: boolean;
  log(msg: string): void;
  daemon(tag: string, opts?: { faultPrefix?: string; workers?: number; adminToken?: string; redisUrl?: string }): Promise<DaemonProcess>;
  child<R, I = unknown>(name: string, script: string, config: unknown, opts?: { maxOldSpaceMb?: number }): BenchChild<R, I>;
  /** Stops everything started through this context (called after each scenario). */
  cleanup(): Promise<void>;
}

export function createContext(base: Omit<BenchContext, 'daemon' | 'child' | 'cleanup'>): BenchContext {
  const daemons: DaemonProcess[] = [];
  const children: BenchChild[] = [];
  let n = 0;
  return {
    ...base,
    async daemon(tag, opts = {}) {
      n += 1;
      const dir = join(base.workDir, `${tag}-${n}`);
      mkdirSync(dir, { recursive: true });
      const d = await DaemonProcess.start({
        redisUrl: opts.redisUrl ?? base.redis.url,
        meiliUrl: base.meili.url,
        meiliMasterKey: base.meili.masterKey,
        dataDir: join(dir, 'data'),
        logFile: join(dir, 'daemon.log'),
        faultPrefix: opts.faultPrefix,
        workers: opts.workers,
        adminToken: opts.adminToken,
        profileDir: base.profile ? join(base.workDir, 'profiles', tag) : undefined,
      });
      daemons.push(d);
      return d;
    },
    child(name, script, config, opts) {
      const c = BenchChild.start(name, script, config, opts);
      children.push(c as BenchChild);
      return c as never;
    },
    async cleanup() {
      await Promise.all(children.splice(0).map((c) => c.close(3000)));
      await Promise.all(daemons.splice(0).map((d) => d.stop()));
    },
  };
}
