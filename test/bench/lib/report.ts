/**
 * The benchmark's output: a Markdown table (one row per figure: figure, target, baseline, pass/fail)
 * with the machine it ran on, and the same data as JSON, under bench/results/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ScenarioReport } from './context.js';
import { fmt } from './stats.js';

export interface Machine {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  commit: string;
  redis: string;
  meilisearch: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine skews figures. */
  loadBefore: number;
  loadAfter: number;
}

export function machine(repo: string, versions: { redis: string; meilisearch: string }, loadBefore: number): Machine {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repo, encoding: 'utf8' }).trim();
    if (dirty) commit += ' (with uncommitted changes)';
  } catch {
    // not a git checkout
  }
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    commit,
    ...versions,
    loadBefore: Math.round(loadBefore * 100) / 100,
    loadAfter: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

function passText(p: boolean | null): string {
  return p === null ? '—' : p ? 'pass' : '**MISSED**';
}

export function markdown(m: Machine, reports: ScenarioReport[], mode: { quick: boolean; runs: number; seconds: number }): string {
  const out: string[] = [];
  out.push(`# observerio benchmark${mode.quick ? ' (QUICK)' : ''}`, '');
  out.push(`${m.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cores} cores (${m.cpuModel}) · ${m.memoryGiB} GiB · Node ${m.node} · commit ${m.commit} · Redis ${m.redis} · Meilisearch ${m.meilisearch} · load average ${m.loadBefore} before, ${m.loadAfter} after`, '');
  out.push(`Each figure is the median of ${mode.runs} run${mode.runs === 1 ? '' : 's'}; everything (daemon, baselines, backends, load generators) ran on this one machine over loopback. Total ${Math.round(mode.seconds)} s.`, '');
  out.push('| # | scenario | measured | figure | target | baseline | result |', '|---|---|---|---|---|---|---|');
  reports.forEach((r, i) => {
    if (r.error) {
      out.push(`| ${i + 1} | ${r.id} | — | — | — | — | **ERROR**: ${r.error.split('\n')[0]?.slice(0, 160)} |`);
      return;
    }
    for (const row of r.rows) {
      const d = row.digits ?? 0;
      const ratio = row.baseline && row.figure !== null ? ` (${fmt(row.figure / row.baseline, 1)}×)` : '';
      out.push(`| ${i + 1} | ${r.id} | ${row.metric} | ${fmt(row.figure, d)} ${row.unit}${ratio} | ${row.target} | ${row.baseline === null ? '—' : `${fmt(row.baseline, d)} ${row.unit}`} | ${passText(row.pass)} |`);
    }
  });
  out.push('');
  for (const [i, r] of reports.entries()) {
    out.push(`## ${i + 1}. ${r.title}`, '');
    if (r.error) out.push('```', r.error.slice(0, 3000), '```', '');
    const cpu = Object.entries(r.cpu);
    if (cpu.length) out.push(`CPU (% of one core, median over runs): ${cpu.map(([k, v]) => `${k} ${fmt(v)}%`).join(' · ')}`, '');
    for (const n of r.notes) out.push(`- ${n}`);
    if (r.notes.length) out.push('');
    out.push(`(${Math.round(r.seconds)} s)`, '');
  }
  return out.join('\n');
}

/** Writes `<timestamp>.md` and `.json`; `latest` also (over)writes latest.md (quick runs: latest-quick.md). */
export function writeReports(dir: string, m: Machine, reports: ScenarioReport[], mode: { quick: boolean; runs: number; seconds: number }, latest: boolean): { md: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = m.date.replace(/[:.]/g, '-').slice(0, 19) + (mode.quick ? '-quick' : '');
  const text = markdown(m, reports, mode);
  const md = join(dir, `${stamp}.md`);
  const json = join(dir, `${stamp}.json`);
  writeFileSync(md, text);
  writeFileSync(json, JSON.stringify({ machine: m, mode, scenarios: reports }, null, 2));
  if (latest) writeFileSync(join(dir, mode.quick ? 'latest-quick.md' : 'latest.md'), text);
  return { md, json };
}
