/**
 * GET /api/devices on real Redis: the key's verified sockets with their device id, address, connect
 * time and line counters; unverified sockets and other keys' devices never show.
 */
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

type Device = { id: string; deviceId: string | null; remoteAddress: string; connectedAt: number; lastLineAt: number | null; linesIn: number; node: string };

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

  it('lists each verified socket of the key, oldest first, with live counters', async () => {
    const before = Date.now();
    const phone = await connect(`v:${a.apiKey}:phone-1`);
    const legacy = await connect(`v:${a.apiKey}`);
    phone.line(`i:${a.apiKey}:${b64([{ name: 'x', type: 'integer', value: '1' }])}`);
    phone.line(`l:${a.apiKey}:${b64([{ message: 'hi' }])}`);
    const list = await eventually(async () => {
      const l = await devices(a);
      expect(l).to.have.length(2);
      expect(l[0]?.linesIn).to.equal(3);
      return l;
    });
    const [p, l] = list as [Device, Device];
    expect(p.deviceId).to.equal('phone-1');
    expect(l.deviceId).to.equal(null);
    expect(p.id).to.not.equal(l.id);
    expect(p.remoteAddress).to.equal(`127.0.0.1:${phone.socket.localPort}`);
    expect(l.remoteAddress).to.equal(`127.0.0.1:${legacy.socket.localPort}`);
    expect(p.connectedAt).to.be.within(before, Date.now());
    expect(p.connectedAt).to.be.at.most(l.connectedAt);
    expect(p.lastLineAt).to.be.at.least(p.connectedAt);
    expect(l.linesIn).to.equal(1);
    expect(p.node).to.equal(daemon.nodeId);
    expect(Object.keys(p).sort()).to.deep.equal(['connectedAt', 'deviceId', 'id', 'lastLineAt', 'linesIn', 'node', 'remoteAddress']);
  });

  it('drops a device when its socket closes', async () => {
    const one = await connect(`v:${a.apiKey}:one`);
    await connect(`v:${a.apiKey}:two`);
    expect((await devices(a)).map((d) => d.deviceId)).to.deep.equal(['one', 'two']);
    one.close();
    await eventually(async () => expect((await devices(a)).map((d) => d.deviceId)).to.deep.equal(['two']));
  });

  it('never lists another key’s devices', async () => {
    await connect(`v:${a.apiKey}:a-device`);
    await connect(`v:${b.apiKey}:b-device`);
    expect((await devices(a)).map((d) => d.deviceId)).to.deep.equal(['a-device']);
    expect((await devices(b)).map((d) => d.deviceId)).to.deep.equal(['b-device']);
  });
});
