/**
 * A connect storm as a dashboard sees it: the device events of sockets verifying together are
 * published in turns (tcp/device-events.ts), and /ws still sends one `device` frame per socket, in
 * order, and still looks at the key's devices right away (device_state), on embedded backends and
 * on Redis.
 */
import { expect } from 'chai';
import { signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { LineClient } from '../helpers/tcp-client.js';
import { WsClient, type Frame } from '../helpers/ws-client.js';

for (const redis of [false, true]) {
  describe(`device events of a connect storm (${redis ? 'Redis' : 'embedded'})`, function () {
    this.timeout(30_000);
    let daemon: Daemon;
    let user: TestUser;
    const devices: LineClient[] = [];
    let live: WsClient;

    before(async () => {
      // A presence period far longer than the test: device_state can only come from a nudge.
      daemon = await startDaemon({ redis, overrides: { variables: { heartbeatMs: 60_000, presenceTtlMs: 120_000 } } });
      user = await signedInUser(daemon);
      live = await WsClient.open(daemon.httpPort, user.token);
    });
    after(async () => {
      live.close();
      for (const d of devices.splice(0)) d.close();
      await daemon.stop();
    });

    const N = 30;
    const ids = Array.from({ length: N }, (_, i) => `storm-${i}`);
    const deviceFrames = (event: string) => live.frames.filter((f) => f.type === 'device' && f.event === event).map((f) => (f.device as Frame).deviceId);
    const state = (id: string, online: boolean) => (f: Frame) => f.type === 'device_state' && (f.device as Frame).deviceId === id && (f.device as Frame).online === online;

    it('sends one connected frame per socket, and each device comes online in device_state', async () => {
      const socks = await Promise.all(ids.map(() => LineClient.open(daemon.tcpPort)));
      devices.push(...socks);
      socks.forEach((s, i) => s.line(`v:${user.apiKey}:${ids[i]}`));
      for (const s of socks) expect(await s.next()).to.equal('OK');
      for (const id of ids) await live.waitFor((f) => f.type === 'device' && f.event === 'connected' && (f.device as Frame).deviceId === id);
      expect(deviceFrames('connected').sort()).to.deep.equal([...ids].sort());
      for (const id of ids) await live.waitFor(state(id, true), 10_000);
    });

    it('sends one disconnected frame per socket, after its connected one, and each device goes offline', async () => {
      for (const d of devices.splice(0)) d.close();
      for (const id of ids) await live.waitFor((f) => f.type === 'device' && f.event === 'disconnected' && (f.device as Frame).deviceId === id);
      expect(deviceFrames('disconnected').sort()).to.deep.equal([...ids].sort());
      for (const id of ids) {
        const at = (event: string) => live.frames.findIndex((f) => f.type === 'device' && f.event === event && (f.device as Frame).deviceId === id);
        expect(at('connected')).to.be.below(at('disconnected'));
      }
      for (const id of ids) await live.waitFor(state(id, false), 10_000);
    });
  });
}

describe('device events of a stopping node (two daemons on one Redis)', function () {
  this.timeout(30_000);

  it('reaches the dashboards on the other node with every disconnect of the node that stops', async () => {
    const [a, b] = await Promise.all([startDaemon({ redis: true }), startDaemon({ redis: true })]);
    let live: WsClient | null = null;
    try {
      const user = await signedInUser(b);
      live = await WsClient.open(b.httpPort, user.token);
      const ids = Array.from({ length: 20 }, (_, i) => `leaving-${i}`);
      const socks = await Promise.all(ids.map(() => LineClient.open(a.tcpPort)));
      socks.forEach((s, i) => s.line(`v:${user.apiKey}:${ids[i]}`));
      for (const s of socks) expect(await s.next()).to.equal('OK');
      const w = live;
      for (const id of ids) await w.waitFor((f) => f.type === 'device' && f.event === 'connected' && (f.device as Frame).deviceId === id);
      await a.stop();
      for (const id of ids) await w.waitFor((f) => f.type === 'device' && f.event === 'disconnected' && (f.device as Frame).deviceId === id);
      for (const s of socks) s.close();
    } finally {
      live?.close();
      await b.stop();
      await a.stop().catch(() => undefined);
    }
  });
});
