/**
 * The §8 commands end to end: the built CLI against the real daemon, with a real SDK device that
 * declares labels. EXPECTED TO FAIL until the daemon's §8 routes (devices, overrides with targets,
 * strategies, history; branch wt-m) are merged: there is deliberately no guard that would skip them.
 */
import { expect } from 'chai';
import { connect, type Client } from '../../src/sdk/index.js';
import { signedInUser, type TestUser } from '../helpers/api.js';
import { requireBuiltCli, runCli, type CliOptions } from '../helpers/cli.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import type { DeviceAnswer, DeviceListAnswer, HistoryAnswer, OverridesAnswer, SetOverrideAnswer, StrategyAnswer } from '../../src/wire.js';

describe('observerio devices / vars set with targets / overrides / strategies / history (built CLI, real daemon; needs the §8 routes)', function () {
  this.timeout(60_000);
  let daemon: Daemon;
  let user: TestUser;
  const clients: Client[] = [];
  const cli = (args: string[], opts: CliOptions = {}) => runCli(args, { ...opts, env: { OBSERVERIO_URL: daemon.http, OBSERVERIO_TOKEN: user.token, ...opts.env } });
  const ok = async <T>(args: string[]): Promise<T> => {
    const r = await cli([...args, '--json']);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(0);
    return JSON.parse(r.stdout) as T;
  };
  const device = async (deviceId: string, labels: Record<string, string>): Promise<Client> => {
    const c = await connect({ port: daemon.tcpPort, apiKey: user.apiKey, deviceId, labels, defaults: { speed: 1, title: 'Boss' }, varsWindowMs: 1 });
    clients.push(c);
    return c;
  };

  before(async () => {
    requireBuiltCli();
    daemon = await startDaemon();
  });
  beforeEach(async () => {
    user = await signedInUser(daemon);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await daemon?.stop();
  });

  it('devices lists the SDK devices with their labels; devices show gives effective, override, reported and source', async () => {
    await device('android-1', { platform: 'android', build: '1.4.2' });
    await device('ios-1', { platform: 'ios', build: '1.5.0' });
    await eventually(async () => {
      const { devices } = await ok<DeviceListAnswer>(['devices']);
      expect(devices.map((d) => [d.deviceId, d.online, d.labels]).sort()).to.deep.equal([
        ['android-1', true, { build: '1.4.2', platform: 'android' }],
        ['ios-1', true, { build: '1.5.0', platform: 'ios' }],
      ]);
    });
    const table = await cli(['devices']);
    expect(table.stdout).to.match(/android-1\s+online\s+now\s+\S+\s+build=1\.4\.2,platform=android/);

    await eventually(async () => {
      const d = await ok<DeviceAnswer>(['devices', 'show', 'android-1']);
      expect(d.vars.find((v) => v.name === 'speed')).to.include({ reported: '1', override: null, effective: '1', source: 'reported' });
    });
    const missing = await cli(['devices', 'show', 'nobody']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/^observerio: not_found: /);
  });

  it('vars set --selector reaches only matching devices and wins; vars reset goes back to the game value', async () => {
    const android = await device('android-1', { platform: 'android', build: '1.4.2' });
    const ios = await device('ios-1', { platform: 'ios', build: '1.4.2' });
    await eventually(async () => expect((await ok<DeviceListAnswer>(['devices'])).devices).to.have.length(2));
    const set = await ok<SetOverrideAnswer>(['vars', 'set', 'speed', '3', '--selector', 'platform=android,build=1.4.*']);
    expect(set.target).to.deep.equal({ labels: { build: '1.4.*', platform: 'android' } });
    expect(set.delivered).to.equal(1);
    await eventually(() => expect(android.getNumber('speed', 0)).to.equal(3));
    expect(ios.getNumber('speed', 0)).to.equal(1);
    // The game setting its own value back does not undo the override: the daemon re-sends it.
    android.setVar('speed', 1);
    await eventually(() => expect(android.getNumber('speed', 0)).to.equal(3));
    const shown = await ok<DeviceAnswer>(['devices', 'show', 'android-1']);
    expect(shown.vars.find((v) => v.name === 'speed')).to.include({ reported: '1', override: '3', effective: '3', source: 'override' });
    expect((await ok<OverridesAnswer>(['overrides'])).overrides.map((o) => [o.name, o.value])).to.deep.equal([['speed', '3']]);

    const device1 = await ok<SetOverrideAnswer>(['vars', 'set', 'title', 'Dragon', '--device', 'ios-1']);
    expect(device1.target).to.deep.equal({ devices: ['ios-1'] });
    await eventually(() => expect(ios.getString('title', '')).to.equal('Dragon'));

    await ok(['vars', 'reset', 'speed', '--selector', 'platform=android,build=1.4.*']);
    await eventually(() => expect(android.getNumber('speed', 0)).to.equal(1));
    const bad = await cli(['vars', 'reset', 'speed', '--selector', 'platform=android,build=1.4.*']);
    expect(bad.code, bad.stderr).to.equal(1);
  });

  it('strategies save / apply / list, and history lists, reverts and rolls back', async () => {
    const android = await device('android-1', { platform: 'android' });
    await eventually(async () => expect((await ok<DeviceListAnswer>(['devices'])).devices).to.have.length(1));
    const saved = await ok<StrategyAnswer>(['strategies', 'save', 'hard', '--var', 'speed:integer=5', '--var', 'title=Hydra']);
    expect(saved.vars.map((v) => [v.name, v.value])).to.deep.equal([
      ['speed', '5'],
      ['title', 'Hydra'],
    ]);
    await ok(['strategies', 'apply', 'hard', '--label', 'platform=android']);
    await eventually(() => expect(android.getNumber('speed', 0)).to.equal(5));
    expect((await ok<DeviceListAnswer>(['devices'])).devices[0]?.strategy).to.equal('hard');
    expect((await ok<{ strategies: StrategyAnswer[] }>(['strategies', 'list'])).strategies.map((s) => s.name)).to.deep.equal(['hard']);

    const { entries } = await ok<HistoryAnswer>(['history', '--limit', '10']);
    expect(entries.map((e) => e.action)).to.deep.equal(['strategy.apply', 'strategy.create']);
    const applied = entries[0]?.id ?? '';
    await ok(['history', '--revert', applied]);
    await eventually(() => expect(android.getNumber('speed', 0)).to.equal(1));
    await ok(['history', '--rollback', applied]);
    await eventually(() => expect(android.getNumber('speed', 0)).to.equal(5));
    expect((await ok<HistoryAnswer>(['history'])).entries.map((e) => e.action).slice(0, 2)).to.deep.equal(['rollback', 'revert']);

    await ok(['strategies', 'delete', 'hard']);
    const gone = await cli(['strategies', 'show', 'hard']);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.match(/^observerio: not_found: /);
  });
});
