/**
 * The SDK against the real daemon (embedded backends): labels on a daemon that does not know `d:`
 * yet (it answers e:unknown_command, which the SDK expects), defaults reported with the first i:, a
 * dashboard change applied to the getters and onChange, and a daemon that is down when the game
 * starts and comes up later (background connect), then restarts (reconnect re-sends).
 */
import { expect } from 'chai';
import { connect, createClient, type Client, type SdkError } from '../../src/sdk/index.js';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import type { Var } from '../../src/wire.js';

describe('sdk against the real daemon', function () {
  this.timeout(30_000);
  let daemon: Daemon | undefined;
  let client: Client | undefined;
  let user: TestUser;

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await daemon?.stop();
    daemon = undefined;
  });

  const reported = async (d: Daemon, token: string): Promise<Var[]> => (await call<{ vars: Var[] }>(d, 'GET', '/api/vars', { token })).body.vars;

  it('labels are tolerated, defaults arrive with the first i:, dashboard changes reach the getters and onChange', async () => {
    daemon = await startDaemon();
    user = await signedInUser(daemon);
    const d = daemon;
    const errors: SdkError[] = [];
    const debug: string[] = [];
    const c = (client = await connect({
      logger: { debug: (m) => debug.push(m) },
      port: d.tcpPort,
      apiKey: user.apiKey,
      deviceId: 'pixel-8',
      labels: { platform: 'android', build: '1.4.2' },
      defaults: { enemy_speed: 1.5, spawn_ms: { value: 800, type: 'float' } },
    }));
    c.on('error', (e) => errors.push(e));
    await eventually(async () =>
      expect(await reported(d, user.token)).to.deep.equal([
        { name: 'enemy_speed', type: 'float', value: '1.5' },
        { name: 'spawn_ms', type: 'float', value: '800' },
      ]),
    );
    const changes: unknown[] = [];
    c.onChange('spawn_ms', (v) => changes.push(v));
    // A float type from the first value: the dashboard may set a fraction.
    const put = await call(d, 'PUT', '/api/vars/spawn_ms', { token: user.token, body: { value: '400.5' } });
    expect(put.status, JSON.stringify(put.body)).to.equal(200);
    await eventually(() => expect(c.getNumber('spawn_ms', 0)).to.equal(400.5));
    expect(changes).to.deep.equal([400.5]);
    expect(c.getNumber('enemy_speed', 0)).to.equal(1.5);
    await c.flush();
    // A daemon before the devices extension answers d: with e:unknown_command, which the SDK takes
    // as "no labels here" (once, without an error event); one with the extension answers nothing.
    expect(debug.filter((m) => m.includes('does not know d:'))).to.have.length.at.most(1);
    expect(errors).to.deep.equal([]);
    expect(c.connected).to.equal(true);
  });

  it('a daemon down at start: the game runs on its defaults, connects once it is up, and re-sends after a restart', async () => {
    const tcpPort = await freePort();
    const first = await startDaemon({ overrides: { tcpPort } });
    user = await signedInUser(first);
    const dataDir = first.dataDir;
    await first.stop();

    const c = (client = createClient({ port: tcpPort, apiKey: user.apiKey, deviceId: 'qa-1', labels: { platform: 'web' }, defaults: { lives: 3 }, reconnect: { initialMs: 50, maxMs: 200 } }));
    const retries: string[] = [];
    c.on('reconnecting', (info) => retries.push(info.error.code));
    await eventually(() => expect(retries.length).to.be.at.least(2));
    expect(retries[0]).to.equal('connection_refused');
    expect(c.getNumber('lives', 0)).to.equal(3);
    c.setVar('level', 'forest');

    daemon = await startDaemon({ overrides: { tcpPort }, dataDir });
    const d1 = daemon;
    // The session of the first run survives in the data dir.
    await eventually(() => expect(c.connected).to.equal(true), { timeoutMs: 10_000 });
    await eventually(async () =>
      expect(await reported(d1, user.token)).to.deep.equal([
        { name: 'lives', type: 'integer', value: '3' },
        { name: 'level', type: 'string', value: 'forest' },
      ]),
    );

    await d1.stop();
    daemon = undefined;
    await eventually(() => expect(c.connected).to.equal(false));
    c.setVar('lives', 2);
    daemon = await startDaemon({ overrides: { tcpPort }, dataDir });
    const d2 = daemon;
    await eventually(async () => expect((await reported(d2, user.token)).find((v) => v.name === 'lives')?.value).to.equal('2'), { timeoutMs: 10_000 });
    expect(c.connected).to.equal(true);
  });
});
