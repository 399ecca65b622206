// Builds the TypeScript SDK as its own package, `@observerio/sdk`, into dist/sdk-package/ (DESIGN.md
// §9: a game installs the SDK alone, never the daemon): esbuild bundles src/sdk/ (with the rules it
// shares with the daemon, model.ts and variables/labels.ts, inlined) into index.mjs and index.cjs for
// Node and browser.mjs (WebSocket transport only, no node:net) for browsers; the declarations tsc
// wrote to dist/ are copied into an ESM and a CommonJS type tree. Runs after tsc (`npm run build`).
// Exits non-zero if a bundle or a declaration reaches outside the SDK.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src/sdk');
const dist = join(root, 'dist');
const out = join(dist, 'sdk-package');
const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
  // The SDK has no runtime dependencies; anything bare that is not node: must be a mistake.
  packages: 'bundle',
  metafile: true,
};

const builds = [
  { ...common, entryPoints: [join(src, 'index.ts')], outfile: join(out, 'index.mjs'), format: 'esm', platform: 'node', target: 'node20' },
  { ...common, entryPoints: [join(src, 'index.ts')], outfile: join(out, 'index.cjs'), format: 'cjs', platform: 'node', target: 'node20' },
  { ...common, entryPoints: [join(src, 'browser.ts')], outfile: join(out, 'browser.mjs'), format: 'esm', platform: 'browser', target: ['es2020', 'chrome100', 'firefox100', 'safari15'] },
];

/** The declaration files the SDK's entry points need, relative to dist/, following relative imports. */
function declarationGraph(entries) {
  const seen = new Set();
  const queue = [...entries];
  const bare = [];
  while (queue.length > 0) {
    const rel = queue.pop();
    if (seen.has(rel)) continue;
    seen.add(rel);
    const file = join(dist, rel);
    if (!existsSync(file)) throw new Error(`${file} is missing: run tsc (npm run build) first`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\()\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1];
      if (!spec.startsWith('.')) {
        bare.push(`${rel} → ${spec}`);
        continue;
      }
      queue.push(posix.normalize(posix.join(posix.dirname(rel), spec.replace(/\.js$/, '.d.ts'))));
    }
  }
  // A game's project has no @types/node and none of the daemon's packages.
  if (bare.length > 0) throw new Error(`SDK declarations import outside the SDK:\n${bare.join('\n')}`);
  return [...seen].sort();
}

function writeTypes(files) {
  for (const [tree, type] of [['esm', 'module'], ['cjs', 'commonjs']]) {
    const dir = join(out, 'types', tree);
    for (const rel of files) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      copyFileSync(join(dist, rel), join(dir, rel));
    }
    // The same declarations read as ESM under "import" and as CommonJS under "require" (node16/nodenext).
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ type }, null, 2)}\n`);
  }
}

function packageJson() {
  const types = (tree, entry) => `./types/${tree}/sdk/${entry}.d.ts`;
  return {
    name: '@observerio/sdk',
    version: rootPackage.version,
    description: 'observerio SDK for games in Node and browsers: stream variables and logs to an observerio daemon and receive live changes from its dashboard.',
    license: rootPackage.license,
    type: 'module',
    sideEffects: false,
    engines: { node: '>=20' },
    // node10 resolution and older tools read these; everything else reads "exports".
    main: './index.cjs',
    module: './index.mjs',
    types: types('cjs', 'index'),
    browser: './browser.mjs',
    exports: {
      '.': {
        browser: { types: types('esm', 'browser'), default: './browser.mjs' },
        import: { types: types('esm', 'index'), default: './index.mjs' },
        require: { types: types('cjs', 'index'), default: './index.cjs' },
        default: './index.mjs',
      },
      './browser': { types: types('esm', 'browser'), default: './browser.mjs' },
      './package.json': './package.json',
    },
    files: ['index.mjs', 'index.cjs', 'browser.mjs', 'types', 'README.md'],
    keywords: ['observerio', 'game', 'live-tuning', 'telemetry', 'sdk'],
  };
}

const README = `# @observerio/sdk

The observerio SDK for games in Node and in browsers: it streams a game's variables and logs to an
observerio daemon and applies the changes made on its dashboard, live. Zero dependencies.

\`\`\`js
import { createClient } from '@observerio/sdk';

// Node: TCP to the daemon's TCP port. In a browser: { url: 'ws://127.0.0.1:4000/sdk', ... } (HTTP port).
const client = createClient({ host: '127.0.0.1', port: 4040, apiKey: 'YOURAPIKEY12', deviceId: 'dev-1',
  labels: { platform: 'web' }, defaults: { enemy_speed: 1.5, god_mode: false } });
client.onChange('enemy_speed', (v) => console.log('enemy_speed is now', v));
const speed = client.getNumber('enemy_speed', 1.5); // the dashboard's value once it changed it
client.log('level started', { level: 'info', stage: 3 });
\`\`\`

- \`createClient\` connects in the background and never throws for the daemon: the game runs on its
  defaults, reconnects with backoff and jitter, and queues logs (bounded) while offline.
  \`await connect(options)\` instead resolves once the daemon verified the key.
- Node: \`host\`/\`port\` (TCP), or \`url\` with a WebSocket class (\`WebSocket\` option: Node 22's global one,
  or the \`ws\` package's on Node 20). Browsers: \`url\` only; bundlers pick \`browser.mjs\` by the "browser"
  condition, or load it directly: \`<script type="module">import { connect } from './browser.mjs'\`.
- Getters \`getNumber\`, \`getBool\`, \`getString\` (with a default), \`onChange(name, fn)\`, \`on('vars')\`,
  \`setVar\`/\`setVars\`, \`log(message, fields)\`, \`flush()\`, \`close()\`.

The wire protocol is docs/PROTOCOL.md in the observerio repository. Version ${rootPackage.version}.
`;

/** Fails when a bundle reached outside src/sdk, model.ts and variables/labels.ts, or browser.mjs imports anything. */
function checkBundle(build, result) {
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(root, join(root, p)));
  const allowed = (p) => p.startsWith('src/sdk/') || p === 'src/model.ts' || p === 'src/variables/labels.ts';
  const stray = inputs.filter((p) => !allowed(p) && !p.startsWith('node:'));
  if (stray.length > 0) throw new Error(`${build.outfile}: bundles modules outside the SDK: ${stray.join(', ')}`);
  if (build.platform === 'browser') {
    const text = readFileSync(build.outfile, 'utf8');
    if (/\bnode:|\brequire\(|^\s*import\s|^\s*export\s+\*\s+from/m.test(text.replace(/^export \{[\s\S]*?\};\s*$/m, '')))
      throw new Error(`${build.outfile}: the browser bundle must not import anything (found node: or an import)`);
  }
}

async function main() {
  const started = performance.now();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const build of builds) checkBundle(build, await esbuild.build(build));
  writeTypes(declarationGraph(['sdk/index.d.ts', 'sdk/browser.d.ts']));
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(packageJson(), null, 2)}\n`);
  writeFileSync(join(out, 'README.md'), README);
  const ms = Math.round(performance.now() - started);
  console.error(`sdk package built into ${relative(root, out)}/ in ${ms} ms`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
