/**
 * GET /api/devices on real Redis: the key's devices cluster-wide (DESIGN.md §8: labels, online, last
 * seen and address, a generated id for a connection without one, strategy, pending count; offline
 * devices are remembered); unverified sockets and other keys' devices never show. The per-socket
 * counters of a connection live on in the WebSocket's `device` events.
 */
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

type Device = { deviceId: string; labels: Record<string, string>; online: boolean; lastSeen: number; lastAddress: string | null; generated: boolean; strategy: string | null; pendingCount: number };

describe('REST /api/devices (real Redis)', () => {
  let daemon: Daemon;
  let a: TestUser;
  let b: TestUser;
  const open: LineClient[] = [];

  const devices = async (u: TestUser) => {
    const r = await call<{ devices: Device[] }>(daemon, 'GET', '/api/devices', { token: u.token });
    expect(r.status).to.equal(200);
    return r.body.devices;
  };
  const connect = async (line: string) => {
    const c = await LineClient.open(daemon.tcpPort);
    open.push(c);
    c.line(line);
    expect(await c.next()).to.equal('OK');
    return c;
  };

  before(async () => {
    daemon = await startDaemon({ redis: true });
  });
  after(async () => {
    await daemon.stop();
  });
  beforeEach(async () => {
    [a, b] = await Promise.all([signedInUser(daemon), signedInUser(daemon)]);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });

  it('answers an empty list when nothing is connected, and ignores unverified sockets', async () => {
    const raw = await LineClient.open(daemon.tcpPort);
    open.push(raw);
    raw.line('hello');
    await raw.next();
    expect(await devices(a)).to.deep.equal([]);
  });

  it('lists each device of the key, newest seen first, a connection without an id under a generated one', async () => {
    const before = Date.now();
    const phone = await connect(`v:${a.apiKey}:phone-1`);
    const legacy = await connect(`v:${a.apiKey}`);
    phone.line(`d:${a.apiKey}:${b64({ platform: 'android' })}`);
    phone.line(`i:${a.apiKey}:${b64([{ name: 'x', type: 'integer', value: '1' }])}`);
    const list = await eventually(async () => {
      const l = await devices(a);
      expect(l).to.have.length(2);
      expect(l.find((d) => d.deviceId === 'phone-1')?.labels).to.deep.equal({ platform: 'android' });
      return l;
    });
    const p = list.find((d) => d.deviceId === 'phone-1') as Device;
    const l = list.find((d) => d.deviceId !== 'phone-1') as Device;
    expect(p).to.include({ online: true, generated: false, strategy: null, pendingCount: 0, lastAddress: `127.0.0.1:${phone.socket.localPort}` });
    expect(l).to.include({ online: true, generated: true, lastAddress: `127.0.0.1:${legacy.socket.localPort}` });
    expect(l.deviceId).to.match(/^anon-[0-9a-f]{8}-conn-\d+$/);
    expect(p.lastSeen).to.be.within(before, Date.now());
    expect(list.map((d) => d.lastSeen)).to.deep.equal(list.map((d) => d.lastSeen).sort((x, y) => y - x));
    expect(Object.keys(p).sort()).to.deep.equal(['deviceId', 'generated', 'labels', 'lastAddress', 'lastSeen', 'online', 'pendingCount', 'strategy']);
  });

  it('marks a device offline when its socket closes, and still lists it', async () => {
    const one = await connect(`v:${a.apiKey}:one`);
    await connect(`v:${a.apiKey}:two`);
    await eventually(async () => expect((await devices(a)).map((d) => d.deviceId).sort()).to.deep.equal(['one', 'two']));
    one.close();
    await eventually(async () => expect((await devices(a)).map((d) => [d.deviceId, d.online]).sort()).to.deep.equal([['one', false], ['two', true]]));
  });

  it('never lists another key’s devices', async () => {
    await connect(`v:${a.apiKey}:a-device`);
    await connect(`v:${b.apiKey}:b-device`);
    await eventually(async () => expect((await devices(a)).map((d) => d.deviceId)).to.deep.equal(['a-device']));
    await eventually(async () => expect((await devices(b)).map((d) => d.deviceId)).to.deep.equal(['b-device']));
  });
});
