/**
 * Every compiled module under dist/ loads on its own, in a fresh Node process, whichever one is
 * imported first: an import cycle that only works in one entry order (ws.js → server.js → routes.js →
 * ws.js) fails here. The dashboard's browser bundle is left out; it is not a Node module.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const DIST = join(process.cwd(), 'dist');
/** How many child processes load at once (the machine is shared with other test runs). */
const PARALLEL = 3;
/** The CLI's entry point runs the CLI when imported; these arguments make that a quick no-op. */
const ENTRY_ARGS: Record<string, string[]> = { 'cli/main.js': ['--version'] };

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return relative(DIST, p) === 'dashboard' ? [] : modules(p);
    return e.name.endsWith('.js') ? [p] : [];
  });
}

interface Loaded {
  module: string;
  code: number | null;
  stderr: string;
}

/** Imports one module in a fresh process; exits 0 once the import has settled without an error. */
function load(file: string): Promise<Loaded> {
  const module = relative(DIST, file);
  const code = `await import(${JSON.stringify(pathToFileURL(file).href)}); process.exit(0);`;
  // `-e` puts extra arguments at argv[1..]; a placeholder fills the script's slot for commander.
  const args = ['--input-type=module', '-e', code, ...(ENTRY_ARGS[module] ? ['dist-imports', ...ENTRY_ARGS[module]] : [])];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      resolve({ module, code: exitCode, stderr });
    });
  });
}

describe('dist/: every module imports on its own', function () {
  this.timeout(180_000);

  before(function () {
    if (!existsSync(join(DIST, 'app.js'))) throw new Error("dist/ is missing: run 'npm run build' first");
  });

  it('loads each dist/**/*.js (but the dashboard bundle) first in a fresh process', async () => {
    const files = modules(DIST).sort();
    expect(files.map((f) => relative(DIST, f))).to.include.members(['app.js', 'http/ws.js', 'http/api/sessions.js', 'sdk/index.js']);
    const failed: string[] = [];
    let next = 0;
    const runner = async (): Promise<void> => {
      while (next < files.length) {
        const r = await load(files[next++] as string);
        if (r.code !== 0) failed.push(`${r.module} (exit ${r.code}): ${r.stderr.split('\n').find((l) => /Error/.test(l)) ?? r.stderr.slice(0, 300)}`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, runner));
    expect(failed, failed.join('\n')).to.deep.equal([]);
  });
});
