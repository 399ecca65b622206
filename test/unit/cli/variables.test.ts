/**
 * The §8 commands (devices show, vars set/reset with targets, overrides, strategies, history) run
 * in-process against a small real HTTP server that answers with the wire shapes of src/wire.ts: a
 * test double of the daemon's HTTP API, so these tests pin what the CLI sends and prints, and its
 * exit statuses (2 bad use, 1 a daemon refusal). The real daemon is in test/integration/cli-variables.test.ts.
 */
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { runProgram } from '../../../src/cli/program.js';
import type { CliIo } from '../../../src/cli/io.js';
import type {
  ApplyStrategyAnswer,
  ClearOverrideAnswer,
  DeviceAnswer,
  DeviceListAnswer,
  HistoryActionAnswer,
  HistoryAnswer,
  HistoryEntry,
  OverridesAnswer,
  SetOverrideAnswer,
  StrategyAnswer,
} from '../../../src/wire.js';

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
}
type Reply = { status: number; body: unknown };

/** Answers each request with `route(method, path)`; records what came in. */
class FakeApi {
  readonly seen: Seen[] = [];
  routes = new Map<string, Reply>();
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void body(req).then((text) => {
        this.seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: text ? (JSON.parse(text) as unknown) : undefined });
        const path = (req.url ?? '').split('?')[0] ?? '';
        const reply = this.routes.get(`${req.method} ${path}`) ?? { status: 404, body: { error: { code: 'not_found', message: `no route ${req.method} ${path}` } } };
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  on(route: string, reply: unknown, status = 200): void {
    this.routes.set(route, { status, body: reply });
  }
  stop(): Promise<void> {
    return new Promise((r) => this.server?.close(() => r()));
  }
}

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}

const entry = (id: string, extra: Partial<HistoryEntry> = {}): HistoryEntry => ({
  id,
  at: Date.UTC(2025, 0, 31, 12),
  actor: 'ada@example.com',
  action: 'override.set',
  target: { devices: ['pixel-8'] },
  changes: [{ name: 'speed', target: { devices: ['pixel-8'] }, before: null, after: { value: '3', type: 'integer', setBy: 'ada@example.com', setAt: 1 } }],
  strategies: [],
  delivered: 1,
  ...extra,
});

/** The CLI's clock in these tests (CliIo.now): "ago" columns are exact, however long the suite runs. */
const NOW = Date.UTC(2025, 0, 31, 13);

describe('cli: devices, overrides, strategies, history (against a fake HTTP API)', () => {
  const api = new FakeApi();
  let out = '';
  let err = '';
  const io = (): CliIo => ({ stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: { OBSERVERIO_URL: api.url, OBSERVERIO_TOKEN: 'tok' }, stdin: new PassThrough(), now: () => NOW });
  const run = (...args: string[]): Promise<number> => runProgram(['node', 'observerio', ...args], io());
  const last = (): Seen => api.seen.at(-1) as Seen;

  before(() => api.start());
  after(() => api.stop());
  beforeEach(() => {
    out = '';
    err = '';
    api.seen.length = 0;
    api.routes.clear();
  });

  describe('devices', () => {
    const list: DeviceListAnswer = {
      devices: [
        { deviceId: 'pixel-8', labels: { build: '1.4.2', platform: 'android' }, online: true, lastSeen: NOW, lastAddress: '10.0.0.5', generated: false, strategy: 'hard', pendingCount: 0 },
        { deviceId: 'conn-x1', labels: {}, online: false, lastSeen: NOW - 120_000, lastAddress: null, generated: true, strategy: null, pendingCount: 2 },
      ],
    };

    it('lists devices with state, labels, strategy and pending, and --json prints the answer', async () => {
      api.on('GET /api/devices', list);
      expect(await run('devices'), err).to.equal(0);
      expect(last().auth).to.equal('Bearer tok');
      const lines = out.split('\n');
      expect(lines[0]).to.match(/^DEVICE\s+STATE\s+LAST SEEN\s+ADDRESS\s+LABELS\s+STRATEGY\s+PENDING$/);
      expect(lines[1]).to.match(/^pixel-8\s+online\s+now\s+10\.0\.0\.5\s+build=1\.4\.2,platform=android\s+hard\s+0$/);
      expect(lines[2]).to.match(/^conn-x1 \(generated\)\s+offline\s+2m00s ago\s+-\s+-\s+-\s+2$/);
      expect(lines[3]).to.equal('2 devices, 1 online');
      out = '';
      expect(await run('devices', 'list', '--json')).to.equal(0);
      expect(JSON.parse(out)).to.deep.equal(list);
    });

    it('shows one device: each variable with effective value, source, override, reported, target; and what is pending', async () => {
      const d: DeviceAnswer = {
        ...(list.devices[0] as DeviceAnswer),
        vars: [
          { name: 'speed', type: 'integer', reported: '1', override: '3', effective: '3', source: 'override', target: { labels: { platform: 'android' } }, strategy: 'hard' },
          { name: 'title', type: 'string', reported: 'Boss', override: null, effective: 'Boss', source: 'reported', target: null, strategy: null },
        ],
        pending: [{ name: 'fog', value: 'true', type: 'boolean' }],
      };
      api.on('GET /api/devices/pixel-8', d);
      expect(await run('devices', 'show', 'pixel-8'), err).to.equal(0);
      expect(out).to.contain('device    pixel-8\n').and.contain('labels    build=1.4.2,platform=android\n').and.contain('strategy  hard\n');
      expect(out).to.match(/NAME\s+TYPE\s+EFFECTIVE\s+SOURCE\s+OVERRIDE\s+REPORTED\s+TARGET/);
      expect(out).to.match(/speed\s+integer\s+3\s+override \(hard\)\s+3\s+1\s+platform=android/);
      expect(out).to.match(/title\s+string\s+Boss\s+reported\s+-\s+Boss\s+-/);
      expect(out).to.match(/pending \(sent when it reads them\):\nNAME\s+TYPE\s+VALUE\nfog\s+boolean\s+true\n/);
      out = '';
      expect(await run('devices', 'show', 'pixel-8', '--json')).to.equal(0);
      expect(JSON.parse(out)).to.deep.equal(d);
    });

    it('an unknown device is the daemon’s 404, printed with exit 1; a malformed id is bad use', async () => {
      api.on('GET /api/devices/ghost', { error: { code: 'not_found', message: 'device ghost is not known' } }, 404);
      expect(await run('devices', 'show', 'ghost')).to.equal(1);
      expect(err).to.equal('observerio: not_found: device ghost is not known\n');
      expect(out).to.equal('');
      err = '';
      expect(await run('devices', 'show', 'no such/device')).to.equal(2);
      expect(err).to.contain('is not a device id');
      expect(api.seen.map((s) => s.url)).to.deep.equal(['/api/devices/ghost']);
    });
  });

  describe('vars set / reset with targets', () => {
    const answer = (target: SetOverrideAnswer['target']): SetOverrideAnswer => ({ var: { name: 'speed', type: 'integer', value: '3' }, target, delivered: 2, pending: 1, buffered: false, historyId: 'h7' });

    it('sends no target for every device, the device list for --device, the labels for --label and --selector', async () => {
      api.on('PUT /api/vars/speed', answer({ all: true }));
      expect(await run('vars', 'set', 'speed', '3'), err).to.equal(0);
      expect(last().body).to.deep.equal({ value: '3' });
      expect(out).to.equal('speed = 3 (integer) for every device: delivered to 2 devices, 1 pending (history h7)\n');

      api.on('PUT /api/vars/speed', answer({ devices: ['a', 'b'] }));
      out = '';
      expect(await run('vars', 'set', 'speed', '3', '--device', 'b', '--device', 'a', '--device', 'b', '--type', 'integer')).to.equal(0);
      expect(last().body).to.deep.equal({ value: '3', type: 'integer', target: { devices: ['a', 'b'] } });
      expect(out).to.contain('for devices a, b:');

      await run('vars', 'set', 'speed', '3', '--label', 'platform=android', '--label', 'build=1.4.*');
      expect(last().body).to.deep.equal({ value: '3', target: { labels: { build: '1.4.*', platform: 'android' } } });
      await run('vars', 'set', 'speed', '3', '--selector', ' platform = android , build=1.4.* ');
      expect(last().body).to.deep.equal({ value: '3', target: { labels: { build: '1.4.*', platform: 'android' } } });
      out = '';
      expect(await run('vars', 'set', 'speed', '3', '--json')).to.equal(0);
      expect(JSON.parse(out)).to.deep.equal(answer({ devices: ['a', 'b'] }));
    });

    it('bad targets are bad use (exit 2) and send nothing', async () => {
      const cases: Array<[string[], string]> = [
        [['--device', 'a', '--label', 'k=v'], '--device and --label exclude each other'],
        [['--label', 'k=v', '--selector', 'k=v'], '--label and --selector exclude each other'],
        [['--device', 'bad id'], 'is not a device id'],
        [['--selector', 'platform'], "has no '='"],
        [['--selector', 'platform!=ios'], 'not !='],
        [['--selector', ''], 'empty'],
        [['--label', '1x=y'], 'starting with a letter'],
        [['--label', 'a=b,c=d'], 'use --selector'],
        [['--selector', `k=${'v'.repeat(9000)}`], 'over 8192'],
      ];
      for (const [flags, message] of cases) {
        err = '';
        expect(await run('vars', 'set', 'speed', '3', ...flags), flags.join(' ')).to.equal(2);
        expect(err, flags.join(' ')).to.contain(message);
      }
      expect(api.seen).to.deep.equal([]);
    });

    it('vars reset clears the override for its target with DELETE .../override', async () => {
      const cleared: ClearOverrideAnswer = { name: 'speed', target: { labels: { platform: 'android' } }, delivered: 1, pending: 0, historyId: 'h8' };
      api.on('DELETE /api/vars/speed/override', cleared);
      expect(await run('vars', 'reset', 'speed', '--selector', 'platform=android'), err).to.equal(0);
      expect(last()).to.deep.include({ method: 'DELETE', url: '/api/vars/speed/override', body: { target: { labels: { platform: 'android' } } } });
      expect(out).to.equal("speed: override cleared for platform=android, back to the game's value: delivered to 1 device, 0 pending (history h8)\n");
      await run('vars', 'reset', 'speed');
      expect(last().body).to.deep.equal({});
      api.on('DELETE /api/vars/nope/override', { error: { code: 'not_found', message: 'no override of nope for every device' } }, 404);
      err = '';
      expect(await run('vars', 'reset', 'nope')).to.equal(1);
      expect(err).to.equal('observerio: not_found: no override of nope for every device\n');
    });

    it('a daemon before §8 (its old answer shape) is still printed as before', async () => {
      api.on('PUT /api/vars/speed', { var: { name: 'speed', type: 'integer', value: '3' }, delivered: 0, buffered: true });
      expect(await run('vars', 'set', 'speed', '3')).to.equal(0);
      expect(out).to.equal('speed = 3 (integer): no device online: buffered until one connects\n');
    });
  });

  describe('overrides', () => {
    it('lists overrides with their targets', async () => {
      const res: OverridesAnswer = {
        overrides: [
          { name: 'speed', type: 'integer', value: '3', target: { all: true }, setBy: 'ada@example.com', setAt: NOW - 5000 },
          { name: 'fog', type: 'boolean', value: 'true', target: { devices: ['pixel-8'] }, setBy: 'ci', setAt: NOW, strategy: 'night' },
        ],
      };
      api.on('GET /api/overrides', res);
      expect(await run('overrides'), err).to.equal(0);
      expect(out).to.match(/^NAME\s+TYPE\s+VALUE\s+TARGET\s+STRATEGY\s+SET BY\s+SET\n/);
      expect(out).to.match(/speed\s+integer\s+3\s+every device\s+-\s+ada@example.com\s+5\.0s ago$/m);
      expect(out).to.match(/fog\s+boolean\s+true\s+device pixel-8\s+night\s+ci\s+0ms ago$/m);
      api.on('GET /api/overrides', { overrides: [] });
      out = '';
      await run('overrides');
      expect(out).to.equal('no overrides: every device runs its own values\n');
      out = '';
      await run('overrides', '--json');
      expect(JSON.parse(out)).to.deep.equal({ overrides: [] });
    });
  });

  describe('strategies', () => {
    const strategy: StrategyAnswer = { name: 'hard', vars: [{ name: 'enemy_speed', type: 'float', value: '3' }], version: 2, updatedAt: NOW - 90_000, updatedBy: 'ada@example.com', devices: 3 };

    it('save sends --var flags over a --from-file, creating with POST when PUT finds none', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'observerio-cli-'));
      const file = join(dir, 'hard.json');
      writeFileSync(file, JSON.stringify({ enemy_speed: 2, spawn_ms: { value: 400, type: 'float' } }));
      api.on('POST /api/strategies', strategy, 201);
      expect(await run('strategies', 'save', 'hard', '--from-file', file, '--var', 'enemy_speed:float=3', '--var', 'title=a=b'), err).to.equal(0);
      expect(api.seen.map((s) => `${s.method} ${s.url}`)).to.deep.equal(['PUT /api/strategies/hard', 'POST /api/strategies']);
      const vars = [
        { name: 'enemy_speed', type: 'float', value: '3' },
        { name: 'spawn_ms', value: 400, type: 'float' },
        { name: 'title', value: 'a=b' },
      ];
      expect(api.seen[0]?.body).to.deep.equal({ vars });
      expect(api.seen[1]?.body).to.deep.equal({ name: 'hard', vars });
      expect(out).to.contain('strategy hard (version 2, 3 devices running it, updated 1m30s ago by ada@example.com)\n').and.match(/enemy_speed\s+float\s+3/);
    });

    it('save with PUT when it exists; a 409 is printed with exit 1', async () => {
      api.on('PUT /api/strategies/hard', strategy);
      expect(await run('strategies', 'save', 'hard', '--var', 'a=1')).to.equal(0);
      expect(api.seen).to.have.length(1);
      api.on('PUT /api/strategies/hard', { error: { code: 'conflict', message: 'strategy hard was edited meanwhile (version 3)' } }, 409);
      expect(await run('strategies', 'save', 'hard', '--var', 'a=1')).to.equal(1);
      expect(err).to.equal('observerio: conflict: strategy hard was edited meanwhile (version 3)\n');
    });

    it('bad use: no vars, a bad --var, a bad name, a missing or broken file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'observerio-cli-'));
      writeFileSync(join(dir, 'bad.json'), '{not json');
      writeFileSync(join(dir, 'num.json'), '42');
      writeFileSync(join(dir, 'nan.json'), '{"vars":[{"name":"a","value":null}]}');
      const cases: Array<[string[], string]> = [
        [['save', 'hard'], 'needs variables'],
        [['save', 'hard', '--var', 'novalue'], 'expected name=value'],
        [['save', 'hard', '--var', '=3'], 'expected name=value'],
        [['save', 'bad name', '--var', 'a=1'], 'must be 1-64 characters'],
        [['save', 'hard', '--from-file', join(dir, 'missing.json')], 'no such file'],
        [['save', 'hard', '--from-file', join(dir, 'bad.json')], 'bad.json'],
        [['save', 'hard', '--from-file', join(dir, 'num.json')], 'expected {"vars"'],
        [['save', 'hard', '--from-file', join(dir, 'nan.json')], 'needs a string, number or boolean value'],
        [['apply', 'hard', '--device', 'a', '--selector', 'k=v'], 'exclude each other'],
        [['show', '../etc'], 'must be 1-64 characters'],
      ];
      for (const [args, message] of cases) {
        err = '';
        expect(await run('strategies', ...args), args.join(' ')).to.equal(2);
        expect(err, args.join(' ')).to.contain(message);
      }
      expect(api.seen).to.deep.equal([]);
    });

    it('list, show, apply to a target, delete', async () => {
      api.on('GET /api/strategies', { strategies: [strategy] });
      expect(await run('strategies', 'list')).to.equal(0);
      expect(out).to.match(/NAME\s+VARS\s+DEVICES\s+VERSION\s+UPDATED\s+BY\nhard\s+1\s+3\s+2\s+1m30s ago\s+ada@example\.com\n/);
      api.on('GET /api/strategies/hard', strategy);
      out = '';
      await run('strategies', 'show', 'hard', '--json');
      expect(JSON.parse(out)).to.deep.equal(strategy);
      const applied: ApplyStrategyAnswer = { strategy: 'hard', target: { labels: { platform: 'ios' } }, delivered: 1, pending: 2, historyId: 'h9' };
      api.on('POST /api/strategies/hard/apply', applied);
      out = '';
      expect(await run('strategies', 'apply', 'hard', '--label', 'platform=ios')).to.equal(0);
      expect(last().body).to.deep.equal({ target: { labels: { platform: 'ios' } } });
      expect(out).to.equal('applied hard to platform=ios: delivered to 1 device, 2 pending (history h9)\n');
      await run('strategies', 'apply', 'hard');
      expect(last().body).to.deep.equal({});
      api.on('DELETE /api/strategies/hard', { deleted: 'hard' });
      out = '';
      expect(await run('strategies', 'delete', 'hard')).to.equal(0);
      expect(out).to.equal('deleted strategy hard\n');
      err = '';
      expect(await run('strategies', 'show', 'nope')).to.equal(1);
      expect(err).to.equal('observerio: not_found: no route GET /api/strategies/nope\n');
    });
  });

  describe('history', () => {
    it('lists entries with --limit and --before, newest first as the daemon sends them', async () => {
      const res: HistoryAnswer = { entries: [entry('h2', { action: 'override.clear', target: null, changes: [], strategies: [{ name: 'hard', before: null, after: [] }] }), entry('h1')] };
      api.on('GET /api/history', res);
      expect(await run('history', '--limit', '5', '--before', 'h3'), err).to.equal(0);
      expect(last().url).to.equal('/api/history?limit=5&before=h3');
      const lines = out.split('\n');
      expect(lines[0]).to.match(/^ID\s+WHEN\s+WHO\s+ACTION\s+TARGET\s+DELIVERED\s+CHANGES$/);
      expect(lines[1]).to.match(/^h2\s+2025-01-31T12:00:00.000Z\s+ada@example.com\s+override.clear\s+-\s+1\s+strategy hard: created$/);
      expect(lines[2]).to.match(/^h1\s+.*override.set\s+device pixel-8\s+1\s+speed: - → 3$/);
      out = '';
      await run('history', '--json');
      expect(JSON.parse(out)).to.deep.equal(res);
    });

    it('--revert and --rollback post, and print the new entry', async () => {
      const made: HistoryActionAnswer = { entry: entry('h5', { action: 'revert', revertOf: 'h1' }), delivered: 1, pending: 0 };
      api.on('POST /api/history/h1/revert', made);
      expect(await run('history', '--revert', 'h1'), err).to.equal(0);
      expect(out).to.equal('reverted h1 as entry h5: speed: - → 3; delivered to 1 device, 0 pending\n');
      api.on('POST /api/history/rollback', { ...made, entry: entry('h6', { action: 'rollback' }) });
      out = '';
      expect(await run('history', '--rollback', 'h1')).to.equal(0);
      expect(last().body).to.deep.equal({ to: 'h1' });
      expect(out).to.contain('rolled back to h1 as entry h6');
      api.on('POST /api/history/h0/revert', { error: { code: 'conflict', message: 'speed was changed since h0' } }, 409);
      err = '';
      expect(await run('history', '--revert', 'h0')).to.equal(1);
      expect(err).to.equal('observerio: conflict: speed was changed since h0\n');
    });

    it('bad use: --revert with --rollback, with --limit, a bad --limit', async () => {
      for (const [args, message] of [
        [['--revert', 'a', '--rollback', 'b'], 'exclude each other'],
        [['--revert', 'a', '--limit', '3'], 'do not go with'],
        [['--limit', '0'], 'from 1 to 1000'],
        [['--limit', 'x'], 'from 1 to 1000'],
      ] as Array<[string[], string]>) {
        err = '';
        expect(await run('history', ...args), args.join(' ')).to.equal(2);
        expect(err).to.contain(message);
      }
      expect(api.seen).to.deep.equal([]);
    });
  });
});

describe('cli: user key (against a fake HTTP API)', () => {
  const api = new FakeApi();
  let out = '';
  let err = '';
  before(() => api.start());
  after(() => api.stop());

  it('signs in and prints the API key; a wrong password is the daemon’s refusal with exit 1', async () => {
    const io: CliIo = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: { OBSERVERIO_URL: api.url, OBSERVERIO_EMAIL: 'me@example.com', OBSERVERIO_PASSWORD: 'a long password' }, stdin: new PassThrough() };
    api.on('POST /api/sessions', { token: 't', apiKey: 'AbCdEf012345', email: 'me@example.com', expiresAt: 1 });
    expect(await runProgram(['node', 'observerio', 'user', 'key'], io), err).to.equal(0);
    expect(out).to.equal('AbCdEf012345\n');
    expect(api.seen[0]?.body).to.deep.equal({ email: 'me@example.com', password: 'a long password' });
    api.on('POST /api/sessions', { error: { code: 'unauthorized', message: 'wrong email or password' } }, 401);
    out = '';
    expect(await runProgram(['node', 'observerio', 'user', 'key'], io)).to.equal(1);
    expect(out).to.equal('');
    expect(err).to.equal('observerio: unauthorized: wrong email or password\n');
  });
});
