/**
 * `@observerio/sdk` as a game installs it (DESIGN.md §9): dist/sdk-package/ (built by `npm run build`)
 * packed with `npm pack`, installed offline into a fresh project whose node_modules then holds the SDK
 * alone, imported from an ESM and a CommonJS script that talk to a real daemon (TCP and WebSocket),
 * and typechecked by tsc under node10, node16, nodenext and bundler resolution without @types/node.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir } from '../helpers/processes.js';

const REPO = process.cwd();
const PACKAGE_DIR = join(REPO, 'dist', 'sdk-package');
const TSC = join(REPO, 'node_modules', '.bin', 'tsc');
const WS_MODULE = join(REPO, 'node_modules', 'ws', 'index.js');
const MAX_PACKED_BYTES = 100 * 1024;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking this process (the daemon under test runs in it). */
function run(cmd: string, args: string[], cwd: string, onStdout?: (text: string) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    // No NODE_OPTIONS: the test runner's tsx loader must not help the game's scripts.
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** A game: connects with defaults and labels, reports, waits for a dashboard change, logs it, closes. */
const gameScript = (format: 'esm' | 'cjs'): string => `
${format === 'esm' ? "import { connect, SdkError } from '@observerio/sdk';" : "const { connect, SdkError } = require('@observerio/sdk');"}
const [transport, where, apiKey, deviceId, wsModule] = process.argv.slice(2);
async function main() {
  const target = transport === 'tcp' ? { host: '127.0.0.1', port: Number(where) } : { url: where, WebSocket: require_(wsModule).WebSocket };
  const client = await connect({ ...target, apiKey, deviceId, labels: { platform: 'node', format: '${format}' }, defaults: { speed: 1.5, lives: 3 }, varsWindowMs: 1, logIntervalMs: 1 });
  client.onChange('speed', (value) => {
    client.log('speed changed by the dashboard', { level: 'warn', speed: value, format: '${format}' });
    console.log(JSON.stringify({ changed: value, speed: client.getNumber('speed', 0), lives: client.getNumber('lives', 0) }));
    client.close().then(() => process.exit(0));
  });
  await client.flush();
  console.log(JSON.stringify({ ready: true, sdkError: new SdkError('x', 'y') instanceof Error }));
}
${format === 'esm' ? "import { createRequire } from 'node:module'; const require_ = createRequire(import.meta.url);" : 'const require_ = require;'}
main().catch((err) => { console.error(err); process.exit(1); });
`;

/** Uses the public surface in a way that only typechecks against the real declarations. */
const consumerSource = (extra = ''): string => `
import { connect, createClient, SdkError, type Client, type ConnectOptions, type VarChange } from '@observerio/sdk';
const options: ConnectOptions = { host: '127.0.0.1', port: 4040, apiKey: 'abcDEF123456', deviceId: 'dev-1', labels: { platform: 'web' }, defaults: { speed: 1.5, god: false } };
const client: Client = createClient(options);
export const speed: number = client.getNumber('speed', 1.5);
export const god: boolean = client.getBool('god', false);
export const title: string = client.getString('title', 'x');
client.onChange('speed', (_value, change: VarChange) => { const name: string = change.name; void name; });
client.setVars({ speed: 2, spawn_ms: { value: 800, type: 'float' } });
client.log('level started', { level: 'info', stage: 3 });
export const later: Promise<string | null> = connect({ url: 'ws://127.0.0.1:4000/sdk', apiKey: 'abcDEF123456' }).then(() => null, (e: unknown) => (e instanceof SdkError ? e.code : null));
// @ts-expect-error: a setVar without a value is refused (fails if the types resolved to any)
client.setVar('speed');
${extra}
`;

describe('@observerio/sdk, packed and installed like a game does', function () {
  this.timeout(180_000);
  let daemon: Daemon;
  let user: TestUser;
  let dir: ReturnType<typeof tempDir>;
  let project: string;
  let packed: { size: number; unpackedSize: number; filename: string; files: Array<{ path: string }> };

  before(async function () {
    this.timeout(180_000);
    if (!existsSync(join(PACKAGE_DIR, 'package.json'))) throw new Error("dist/sdk-package is missing: run 'npm run build' first");
    dir = tempDir('observerio-sdk-package-');
    const r = await run('npm', ['pack', PACKAGE_DIR, '--json', '--pack-destination', dir.path, '--cache', join(dir.path, 'npm-cache')], dir.path);
    expect(r.code, r.stderr).to.equal(0);
    packed = (JSON.parse(r.stdout) as (typeof packed)[])[0] as typeof packed;
    project = join(dir.path, 'game');
    await run('mkdir', [project], dir.path);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'a-game', version: '1.0.0', private: true }));
    const i = await run('npm', ['install', join(dir.path, packed.filename), '--offline', '--no-audit', '--no-fund', '--cache', join(dir.path, 'npm-cache')], project);
    expect(i.code, i.stderr).to.equal(0);
    daemon = await startDaemon();
    user = await signedInUser(daemon);
  });
  after(async () => {
    await daemon?.stop();
    dir?.remove();
  });

  it('packs under 100 KB, zero dependencies, with the ESM, CommonJS and browser builds and their types', () => {
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules/@observerio/sdk/package.json'), 'utf8')) as Record<string, unknown>;
    const root = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const installed = filesUnder(join(project, 'node_modules/@observerio/sdk')).reduce((n, f) => n + statSync(f).size, 0);
    console.log(`      @observerio/sdk ${root.version}: packed ${packed.size} B, unpacked ${packed.unpackedSize} B, installed ${installed} B (${packed.files.length} files)`);
    expect(packed.size).to.be.below(MAX_PACKED_BYTES);
    expect(manifest).to.include({ name: '@observerio/sdk', version: root.version, sideEffects: false, main: './index.cjs', types: './types/cjs/sdk/index.d.ts' });
    expect(manifest.dependencies ?? {}).to.deep.equal({});
    expect(manifest.peerDependencies ?? {}).to.deep.equal({});
    const paths = packed.files.map((f) => f.path);
    expect(paths).to.include.members(['package.json', 'README.md', 'index.mjs', 'index.cjs', 'browser.mjs', 'types/esm/sdk/index.d.ts', 'types/cjs/sdk/index.d.ts', 'types/esm/sdk/browser.d.ts']);
    // Nothing of the daemon came along.
    expect(paths.filter((p) => /otp|http|store|tcp\/|app\./.test(p))).to.deep.equal([]);
    const browser = readFileSync(join(project, 'node_modules/@observerio/sdk/browser.mjs'), 'utf8');
    expect(browser).to.not.match(/node:|require\(/);
    expect(readFileSync(join(project, 'node_modules/@observerio/sdk/index.mjs'), 'utf8')).to.match(/from "node:net"/);
  });

  it("leaves nothing in the game's node_modules but the SDK", () => {
    const top = readdirSync(join(project, 'node_modules')).filter((n) => n !== '.package-lock.json');
    expect(top).to.deep.equal(['@observerio']);
    expect(readdirSync(join(project, 'node_modules/@observerio'))).to.deep.equal(['sdk']);
    expect(existsSync(join(project, 'node_modules/@observerio/sdk/node_modules'))).to.equal(false);
  });

  for (const [format, transport] of [
    ['esm', 'tcp'],
    ['cjs', 'ws'],
  ] as const) {
    it(`${format === 'esm' ? 'an ESM' : 'a CommonJS'} game over ${transport === 'tcp' ? 'TCP' : 'the WebSocket'} connects, reports, gets a dashboard change and logs it`, async () => {
      const file = `game.${format === 'esm' ? 'mjs' : 'cjs'}`;
      writeFileSync(join(project, file), gameScript(format));
      const deviceId = `${format}-game`;
      const where = transport === 'tcp' ? String(daemon.tcpPort) : `ws://127.0.0.1:${daemon.httpPort}/sdk`;
      let ready = false;
      const exited = run(process.execPath, [file, transport, where, user.apiKey, deviceId, WS_MODULE], project, (out) => (ready ||= out.includes('"ready":true')));
      await eventually(() => expect(ready).to.equal(true), { timeoutMs: 20_000 });

      const device = await eventually(async () => {
        const r = await call<{ vars: Array<{ name: string; reported: unknown; source: string }>; labels: Record<string, string>; online: boolean }>(daemon, 'GET', `/api/devices/${deviceId}`, { token: user.token });
        expect(r.status).to.equal(200);
        expect(r.body.vars.map((v) => v.name).sort()).to.deep.equal(['lives', 'speed']);
        return r.body;
      });
      expect(device.online).to.equal(true);
      expect(device.labels).to.deep.equal({ platform: 'node', format });

      const put = await call<{ delivered: number }>(daemon, 'PUT', '/api/vars/speed', { token: user.token, body: { value: 4.25, target: { devices: [deviceId] } } });
      expect(put.status, JSON.stringify(put.body)).to.equal(200);
      const r = await exited;
      expect(r.code, r.stderr).to.equal(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).to.deep.equal([{ ready: true, sdkError: true }, { changed: 4.25, speed: 4.25, lives: 3 }]);

      await eventually(async () => {
        const logs = await call<{ hits: Array<{ message: string; level: string; deviceId: string; fields: Record<string, unknown> }> }>(daemon, 'GET', `/api/logs?q=dashboard&device=${deviceId}`, { token: user.token });
        expect(logs.status).to.equal(200);
        expect(logs.body.hits.map((h) => [h.message, h.level, h.deviceId, h.fields])).to.deep.equal([['speed changed by the dashboard', 'warn', deviceId, { speed: 4.25, format }]]);
      });
    });
  }

  const typecheck = async (name: string, options: Record<string, unknown>, files: Record<string, string>): Promise<string> => {
    for (const [file, text] of Object.entries(files)) writeFileSync(join(project, file), text);
    // No @types/node, no DOM unless asked, declarations checked too: a game's project may have none of them.
    const tsconfig = { compilerOptions: { noEmit: true, strict: true, types: [], lib: ['es2022'], skipLibCheck: false, ...options }, files: Object.keys(files) };
    writeFileSync(join(project, `tsconfig.${name}.json`), JSON.stringify(tsconfig));
    const r = await run(TSC, ['-p', `tsconfig.${name}.json`, '--explainFiles'], project);
    expect(r.code, `${name}:\n${r.stdout.split('\n').filter((l) => /error/.test(l)).join('\n')}`).to.equal(0);
    return r.stdout;
  };
  const loaded = (explain: string): string[] => [...new Set(explain.split('\n').filter((l) => /^node_modules\/@observerio\/sdk\/.*index\.d\.ts$/.test(l.trim())))].map((l) => l.trim());

  it('typechecks a consumer under moduleResolution node10 (top-level types)', async () => {
    const out = await typecheck('node10', { module: 'commonjs', moduleResolution: 'node10' }, { 'consumer-node10.ts': consumerSource() });
    expect(loaded(out)).to.deep.equal(['node_modules/@observerio/sdk/types/cjs/sdk/index.d.ts']);
  });

  for (const mode of ['node16', 'nodenext'] as const) {
    it(`typechecks an ESM and a CommonJS consumer under ${mode}, each against its own types`, async () => {
      const out = await typecheck(mode, { module: mode, moduleResolution: mode }, { [`consumer-${mode}.mts`]: consumerSource(), [`consumer-${mode}.cts`]: consumerSource() });
      expect(loaded(out).sort()).to.deep.equal(['node_modules/@observerio/sdk/types/cjs/sdk/index.d.ts', 'node_modules/@observerio/sdk/types/esm/sdk/index.d.ts']);
    });
  }

  it("typechecks a consumer under bundler resolution, with the DOM's WebSocket passed in", async () => {
    const extra = "export const viaDom = connect({ url: 'ws://127.0.0.1:4000/sdk', apiKey: 'abcDEF123456', WebSocket });";
    const browserImport = "import { createClient as browserClient } from '@observerio/sdk/browser';\nexport const b = browserClient({ url: 'ws://127.0.0.1:4000/sdk', apiKey: 'abcDEF123456' }).getNumber('speed', 1);";
    const out = await typecheck('bundler', { module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'dom'] }, { 'consumer-bundler.ts': consumerSource(extra), 'consumer-browser.ts': browserImport });
    expect(loaded(out)).to.deep.equal(['node_modules/@observerio/sdk/types/esm/sdk/index.d.ts']);
  });
});
