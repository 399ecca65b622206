/**
 * CPU and memory of another process, read from /proc (Linux): how much the daemon, Redis and
 * Meilisearch worked during a measurement, next to the load generators' own process.cpuUsage().
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time (user + system) the process has used so far, in ms; null when it is gone. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Resident memory in bytes; null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Open file descriptors of the process; null when it is gone. */
export function fdCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Measures the CPU a set of processes uses between start() and stop(), as % of one core. */
export class CpuMeter {
  private readonly start = new Map<string, number>();
  private t0 = 0;

  constructor(private readonly pids: Record<string, number | undefined>) {}

  begin(): void {
    this.t0 = performance.now();
    for (const [name, pid] of Object.entries(this.pids)) {
      if (pid === undefined) continue;
      const ms = cpuMs(pid);
      if (ms !== null) this.start.set(name, ms);
    }
  }

  /** % of one core per process since begin(). */
  end(): Record<string, number> {
    const wall = performance.now() - this.t0;
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const s = this.start.get(name);
      const e = pid === undefined ? null : cpuMs(pid);
      if (s === undefined || e === null || wall <= 0) continue;
      out[name] = Math.round(((e - s) / wall) * 1000) / 10;
    }
    return out;
  }
}

/** CPU time of the whole machine so far (all cores, /proc/stat), in ms: busy and idle (idle includes iowait). */
export function machineCpuMs(): { busy: number; idle: number } {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const toMs = (ticks: number): number => (ticks * 1000) / TICKS_PER_SECOND;
  return { busy: toMs(user + nice + system + irq + softirq + steal), idle: toMs(idle + iowait) };
}
