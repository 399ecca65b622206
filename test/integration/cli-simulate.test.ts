/**
 * `observerio simulate` as a user runs it: the built CLI in its own process against a real daemon.
 * What its summary counts is checked against what the daemon stored and indexed, a change made on
 * the dashboard during the run reaches and is applied by every device, and bad use exits 2.
 */
import { expect } from 'chai';
import type { SimulateSummary } from '../../src/cli/simulate.js';
import { call, signedInUser } from '../helpers/api.js';
import { expectUsageError, requireBuiltCli, runCli, startCli } from '../helpers/cli.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';

type Summary = SimulateSummary;

describe('observerio simulate (built CLI against a real daemon)', function () {
  this.timeout(60_000);
  let daemon: Daemon;
  let tcp: string;

  before(async () => {
    requireBuiltCli();
    daemon = await startDaemon();
    tcp = `127.0.0.1:${daemon.tcpPort}`;
  });
  after(async () => {
    await daemon?.stop();
  });

  it('runs 20 devices: the daemon got what the summary counts, and a dashboard change reaches and is applied by every device', async () => {
    const user = await signedInUser(daemon);
    const rate = 5;
    const sim = startCli(['simulate', '--api-key', user.apiKey, '--devices', '20', '--duration', '2', '--tcp', tcp, '--rate', String(rate), '--var-interval', '0.5', '--json']);
    await eventually(() => expect(daemon.ctx.deviceConns.countKey(user.apiKey)).to.equal(20), { timeoutMs: 10_000 });

    const put = await call(daemon, 'PUT', '/api/vars/difficulty', { token: user.token, body: { value: 'hard' } });
    expect(put.status).to.equal(200);
    expect(put.body).to.include({ delivered: 20, buffered: false });

    const r = await sim.exited;
    expect(r.code, r.stderr).to.equal(0);
    const s = JSON.parse(r.stdout) as Summary;
    expect(s.target).to.equal(tcp);
    expect(s.devices).to.deep.equal({ requested: 20, connected: 20, failed: 0, notAttempted: 0, reconnects: 0, disconnects: 0 });
    expect(s.errors).to.deep.equal({});
    expect(s.problem).to.equal(null);
    expect(s.interrupted).to.equal(false);
    // One line per device for the change, and one more for each device whose own report of its default
    // crossed the change in flight: the override wins by being sent again (DESIGN.md §8). Each device
    // applied the change exactly once (the var_applied logs below).
    expect(s.changesReceived).to.be.within(20, 40);
    expect(s.logsDropped).to.equal(0);
    expect(s.linesSent).to.equal(s.logsSent + s.varLinesSent);
    // A steady rate: 2 s at 5 lines/s for 20 devices, plus one line per applied change; never more
    // than the whole run at that rate allows.
    expect(s.logsSent).to.be.at.least(20 * rate * 2 * 0.9 + 20);
    // One var_applied log per change line a device got (see changesReceived above).
    expect(s.logsSent).to.be.at.most((20 * rate * s.durationMs) / 1000 + s.changesReceived);
    // Five variables each at connect, then a score update every 0.5 s or so.
    expect(s.varLinesSent).to.be.at.least(20 * 5 + 20 * 2);

    // Every log the summary counts was indexed, and no other, beside one timeline entry per device for
    // the dashboard's change (DESIGN.md §8 Timeline).
    const changeEntries = async () => (await daemon.ctx.logIndex.search({ apiKey: user.apiKey, limit: 1000 })).hits.filter((h) => h.fields.kind === 'change');
    await eventually(async () => expect(new Set((await changeEntries()).map((h) => h.deviceId)).size).to.equal(20), { timeoutMs: 10_000 });
    await eventually(async () => expect((await daemon.ctx.logIndex.search({ apiKey: user.apiKey, limit: 1 })).total).to.equal(s.logsSent + (await changeEntries()).length), { timeoutMs: 10_000 });
    const all = await daemon.ctx.logIndex.search({ apiKey: user.apiKey, limit: 1000 });
    for (const h of await changeEntries()) expect(h.fields).to.include({ kind: 'change', name: 'difficulty', after: 'hard' });
    expect(new Set(all.hits.map((h) => h.deviceId))).to.deep.equal(new Set(Array.from({ length: 20 }, (_, i) => `sim-${i}`)));
    expect(new Set(all.hits.map((h) => h.level))).to.include.members(['debug', 'info', 'warn']);
    // Each device applied the change and said so: once after OK, and once more when its own report of
    // the old value crossed the change and the daemon sent the override again (DESIGN.md §8: once per report).
    const applied = all.hits.filter((h) => h.fields.event === 'var_applied');
    const perDevice = new Map<string, number>();
    for (const h of applied) perDevice.set(h.deviceId ?? '', (perDevice.get(h.deviceId ?? '') ?? 0) + 1);
    expect(perDevice.size).to.equal(20);
    for (const [device, n] of perDevice) expect(n, device).to.be.within(1, 2);
    for (const h of applied) {
      // The re-send may reach a device that already holds hard (its report of normal was older than
      // the first v:), so a second application may say "was hard"; the first one always says "was normal".
      expect(h.message).to.be.oneOf(['applied difficulty=hard from the dashboard (was normal)', 'applied difficulty=hard from the dashboard (was hard)']);
      expect(h.fields).to.include({ var: 'difficulty', value: 'hard' });
    }
    for (const device of perDevice.keys()) {
      expect(applied.filter((h) => h.deviceId === device).map((h) => h.message), device).to.include('applied difficulty=hard from the dashboard (was normal)');
    }
    // After the change, the devices' logs use the new value.
    const later = all.hits.filter((h) => h.message.startsWith('enemy spawned') && h.receivedAt > Math.max(...applied.map((a) => a.receivedAt)));
    for (const h of later) expect(h.message).to.equal('enemy spawned on hard difficulty');

    const vars = await daemon.ctx.store.getVars(user.apiKey);
    expect(vars.map((v) => v.name)).to.deep.equal(['speed', 'gravity', 'god_mode', 'difficulty', 'score']);
    expect(vars.slice(0, 4)).to.deep.equal([
      { name: 'speed', type: 'integer', value: '5' },
      { name: 'gravity', type: 'float', value: '9.81' },
      { name: 'god_mode', type: 'boolean', value: 'false' },
      { name: 'difficulty', type: 'string', value: 'hard' },
    ]);
    expect(vars[4]?.type).to.equal('integer');
    expect(Number(vars[4]?.value)).to.be.greaterThan(0);

    // Not a terminal: progress comes as plain lines on stderr, stdout holds only the JSON.
    expect(r.stderr).to.contain(`connected 20 of 20 devices to ${tcp}`);
    expect(r.stderr).not.to.contain('\r');
    // Every device closed its connection.
    await eventually(() => expect(daemon.ctx.deviceConns.countKey(user.apiKey)).to.equal(0));
  });

  it('prints a readable summary without --json', async () => {
    const apiKey = await daemon.register();
    const r = await runCli(['simulate', '--api-key', apiKey, '--devices', '3', '--duration', '0.3', '--tcp', tcp, '--quiet']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.contain(`observerio simulate against ${tcp}`);
    expect(r.stdout).to.match(/devices +3 of 3 connected, 0 failed/);
    expect(r.stdout).to.match(/sent +\d+ lines: \d+ logs, \d+ var updates/);
    expect(r.stdout).to.match(/errors +none/);
  });

  it('takes the API key and port from OBSERVERIO_API_KEY and OBSERVERIO_TCP_PORT', async () => {
    const apiKey = await daemon.register();
    const r = await runCli(['simulate', '--devices', '2', '--duration', '0.2', '--quiet', '--json'], { env: { OBSERVERIO_API_KEY: apiKey, OBSERVERIO_TCP_PORT: String(daemon.tcpPort) } });
    expect(r.code, r.stderr).to.equal(0);
    expect((JSON.parse(r.stdout) as Summary).devices.connected).to.equal(2);
  });

  it('exits 1 with a clear message for an API key the daemon does not know, and stops trying', async () => {
    const r = await runCli(['simulate', '--api-key', 'Unknown00Key', '--devices', '500', '--duration', '1', '--tcp', tcp, '--wave', '10', '--json']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain(`observerio: the daemon at ${tcp} does not know API key Unknown00Key`);
    expect(r.stderr).to.contain('observerio user create');
    const s = JSON.parse(r.stdout) as Summary;
    expect(s.devices.connected).to.equal(0);
    expect(s.devices.failed).to.equal(10);
    expect(s.devices.notAttempted).to.equal(490);
    expect(s.errors).to.deep.equal({ unknown_api_key: 10 });
    expect(s.logsSent).to.equal(0);
  });

  it('exits 1 and says the daemon may not be running when nothing listens', async () => {
    const port = await freePort();
    const r = await runCli(['simulate', '--api-key', 'abcDEF123456', '--devices', '3', '--duration', '1', '--tcp', `127.0.0.1:${port}`]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/devices +0 of 3 connected, 3 failed/);
    expect(r.stdout).to.contain('connection_refused ×3');
    expect(r.stderr).to.contain(`observerio: nothing listens on 127.0.0.1:${port}: is the daemon running? Start it with 'make run'`);
  });

  it('stops early on SIGINT, still closing every device and printing the summary', async () => {
    const apiKey = await daemon.register();
    const sim = startCli(['simulate', '--api-key', apiKey, '--devices', '5', '--duration', '60', '--tcp', tcp, '--json']);
    await eventually(() => expect(daemon.ctx.deviceConns.countKey(apiKey)).to.equal(5), { timeoutMs: 10_000 });
    sim.child.kill('SIGINT');
    const r = await sim.exited;
    expect(r.code, r.stderr).to.equal(0);
    const s = JSON.parse(r.stdout) as Summary;
    expect(s.interrupted).to.equal(true);
    expect(s.devices.connected).to.equal(5);
    expect(s.durationMs).to.be.below(30_000);
    await eventually(() => expect(daemon.ctx.deviceConns.countKey(apiKey)).to.equal(0));
  });

  describe('bad use exits 2 with a message', () => {
    const ok = ['--api-key', 'abcDEF123456', '--devices', '1', '--duration', '1'];
    const without = (flag: string): string[] => {
      const i = ok.indexOf(flag);
      return [...ok.slice(0, i), ...ok.slice(i + 2)];
    };
    const cases: Array<[string, string[], string | RegExp]> = [
      ['no --devices', without('--devices'), "required option '--devices <n>' not specified"],
      ['no --duration', without('--duration'), "required option '--duration <seconds>' not specified"],
      ['no --api-key', without('--api-key'), "required option '--api-key <key>' not specified"],
      ['an API key of 11 characters', ['--api-key', 'abcDEF12345', ...without('--api-key')], 'exactly 12 characters of [A-Za-z0-9]'],
      ['an API key with a dash', ['--api-key', 'abcDEF-23456', ...without('--api-key')], 'exactly 12 characters of [A-Za-z0-9]'],
      ['0 devices', [...without('--devices'), '--devices', '0'], "option '--devices <n>' argument '0' is invalid"],
      ['20,001 devices', [...without('--devices'), '--devices', '20001'], 'from 1 to 20000'],
      ['devices not a number', [...without('--devices'), '--devices', 'many'], "argument 'many' is invalid"],
      ['a zero duration', [...without('--duration'), '--duration', '0'], "option '--duration <seconds>' argument '0' is invalid"],
      ['a negative duration', [...without('--duration'), '--duration', '-5'], "argument '-5' is invalid"],
      ['a tcp address without a port', [...ok, '--tcp', 'localhost'], 'expected HOST:PORT'],
      ['a tcp port out of range', [...ok, '--tcp', '127.0.0.1:70000'], 'expected HOST:PORT'],
      ['a negative rate', [...ok, '--rate=-1'], "option '--rate <lines>' argument '-1' is invalid"],
      ['an unknown flag', [...ok, '--turbo'], "unknown option '--turbo'"],
      ['a bad OBSERVERIO_TCP_PORT', ok, 'OBSERVERIO_TCP_PORT: expected a port number'],
    ];
    for (const [what, args, message] of cases)
      it(what, async () => {
        await expectUsageError(['simulate', ...args], message, what.includes('OBSERVERIO_TCP_PORT') ? { env: { OBSERVERIO_TCP_PORT: 'abc' } } : {});
      });

    it('a bad OBSERVERIO_API_KEY', async () => {
      await expectUsageError(['simulate', ...without('--api-key')], 'OBSERVERIO_API_KEY: an API key is exactly 12 characters', { env: { OBSERVERIO_API_KEY: 'short' } });
    });

    it('--help describes every flag and exits 0', async () => {
      const r = await runCli(['simulate', '--help']);
      expect(r.code).to.equal(0);
      for (const flag of ['--api-key', '--devices', '--duration', '--tcp', '--rate', '--json', '--wave']) expect(r.stdout).to.contain(flag);
    });
  });
});
