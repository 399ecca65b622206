/**
 * Where a daemon process's resident memory is (issue 14's idle connections): /proc/<pid>/smaps split
 * into the brk heap (glibc's main malloc arena), anonymous mappings (V8's heap pages, the other
 * malloc arenas, thread stacks, uWS's and libuv's buffers), and file-backed pages (node, libraries),
 * next to what V8 itself says it has committed (the worker's /metrics, prom-client's heap gauges). The
 * difference between anonymous RSS and V8's committed heap is what malloc holds (socket and TLS
 * state, Buffers' backing stores, libuv handles, fragmentation).
 */
import { readFileSync } from 'node:fs';

export interface SmapsSplit {
  rss: number;
  /** [heap]: the brk area, glibc's main arena. */
  brk: number;
  /** Anonymous mappings (no file), [stack] included. */
  anon: number;
  /** Anonymous mappings of 60 MiB or more reserved: glibc's per-thread arenas (64 MiB each) and V8's cages. */
  anonLarge: number;
  anonLargeCount: number;
  file: number;
  /** Pages no longer touched since mapped but not returned: Private_Dirty of anonymous mappings. */
  anonDirty: number;
}

/** The smaps split of a process, in bytes; null when it is gone. */
export function smapsSplit(pid: number): SmapsSplit | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const out: SmapsSplit = { rss: 0, brk: 0, anon: 0, anonLarge: 0, anonLargeCount: 0, file: 0, anonDirty: 0 };
  let kind: 'brk' | 'anon' | 'file' = 'anon';
  let large = false;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const name = (head[3] ?? '').trim();
      kind = name === '[heap]' ? 'brk' : name === '' || name.startsWith('[') ? 'anon' : 'file';
      const size = parseInt(head[2] as string, 16) - parseInt(head[1] as string, 16);
      large = kind === 'anon' && size >= 60 * 2 ** 20;
      if (large) out.anonLargeCount += 1;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      const b = Number(rss[1]) * 1024;
      out.rss += b;
      out[kind] += b;
      if (large) out.anonLarge += b;
      continue;
    }
    const dirty = /^Private_Dirty:\s+(\d+) kB/.exec(line);
    if (dirty && kind !== 'file') out.anonDirty += Number(dirty[1]) * 1024;
  }
  return out;
}

export interface V8Split {
  heapTotal: number;
  heapUsed: number;
  external: number;
  /** Per space (new, old, code, map, large_object, ...): committed and used. */
  spaces: Record<string, { total: number; used: number }>;
}

/** V8's figures from a Prometheus text (prom-client's default metrics, prefix observerio_). */
export function v8Split(metricsText: string): V8Split {
  const one = (name: string): number => {
    const m = new RegExp(`^observerio_${name} ([0-9.e+-]+)$`, 'm').exec(metricsText);
    return m ? Number(m[1]) : 0;
  };
  const spaces: V8Split['spaces'] = {};
  for (const m of metricsText.matchAll(/^observerio_nodejs_heap_space_size_(total|used)_bytes\{space="([^"]+)"\} ([0-9.e+-]+)$/gm)) {
    const s = (spaces[m[2] as string] ??= { total: 0, used: 0 });
    s[m[1] as 'total' | 'used'] = Number(m[3]);
  }
  return { heapTotal: one('nodejs_heap_size_total_bytes'), heapUsed: one('nodejs_heap_size_used_bytes'), external: one('nodejs_external_memory_bytes'), spaces };
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(1);

/** One line per process: RSS split and, for a worker, V8's split. */
export function describe(label: string, s: SmapsSplit | null, v: V8Split | null): string {
  if (!s) return `${label}: gone`;
  let line = `${label}: RSS ${mib(s.rss)} MiB = brk ${mib(s.brk)} + anon ${mib(s.anon)} (in ${s.anonLargeCount} ≥60 MiB reservations ${mib(s.anonLarge)}) + file ${mib(s.file)}`;
  if (v) {
    const sp = Object.entries(v.spaces)
      .filter(([, x]) => x.total > 0)
      .map(([k, x]) => `${k.replace(/_space$/, '')} ${mib(x.used)}/${mib(x.total)}`)
      .join(', ');
    line += `; V8 used/committed ${mib(v.heapUsed)}/${mib(v.heapTotal)} MiB (${sp}), external ${mib(v.external)}; anon+brk beyond V8's committed ${mib(s.anon + s.brk - v.heapTotal)} MiB`;
  }
  return line;
}
