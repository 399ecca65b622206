// Builds the browser dashboard: bundles src/dashboard/main.tsx (Preact) into dist/dashboard/app.js
// with esbuild and copies index.html and styles.css next to it. Exits non-zero on any build error.
// `node scripts/build-dashboard.mjs --watch` rebuilds on change while developing.
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src/dashboard');
const out = join(root, 'dist/dashboard');
const watch = process.argv.includes('--watch');
const STATIC_FILES = ['index.html', 'styles.css'];

/** @type {import('esbuild').BuildOptions} */
const options = {
  entryPoints: [join(src, 'main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(src, 'tsconfig.json'),
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

function copyStatic() {
  for (const f of STATIC_FILES) copyFileSync(join(src, f), join(out, f));
}

/** Copies the static files after every (re)build in watch mode. */
const copyPlugin = {
  name: 'copy-static',
  setup(build) {
    build.onEnd((result) => {
      if (result.errors.length === 0) {
        copyStatic();
        console.error(`dashboard rebuilt (${new Date().toLocaleTimeString()})`);
      }
    });
  },
};

async function main() {
  const started = performance.now();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  if (watch) {
    const ctx = await esbuild.context({ ...options, plugins: [copyPlugin] });
    await ctx.watch();
    console.error('watching src/dashboard for changes (Ctrl-C to stop)');
    return;
  }
  await esbuild.build(options);
  copyStatic();
  const kb = (statSync(join(out, 'app.js')).size / 1024).toFixed(1);
  const ms = Math.round(performance.now() - started);
  console.log(`dashboard: dist/dashboard/app.js ${kb} KiB in ${ms} ms`);
}

main().catch((err) => {
  // esbuild has already printed its diagnostics (logLevel); anything else gets one line.
  if (!err?.errors) console.error(`dashboard build failed: ${err?.message ?? err}`);
  process.exit(1);
});
