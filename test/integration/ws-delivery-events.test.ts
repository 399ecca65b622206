/**
 * Where a dashboard change went, as every /ws socket of the key hears it: a `delivery` event of its
 * own (the tag `var_delivery` names only the set_var answer, which carries `var`), sent a second time
 * under the old tag for clients written against it.
 */
import { expect } from 'chai';
import { call, signedInUser, type TestUser } from '../helpers/api.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { LineClient } from '../helpers/tcp-client.js';
import { WsClient, type Frame } from '../helpers/ws-client.js';

describe('delivery events on /ws', () => {
  let daemon: Daemon;
  let a: TestUser;
  const closers: Array<{ close(): void }> = [];

  const watcher = async (): Promise<WsClient> => {
    const c = await WsClient.open(daemon.httpPort, a.token);
    closers.push(c);
    return c;
  };
  const device = async (): Promise<LineClient> => {
    const c = await LineClient.open(daemon.tcpPort);
    closers.push(c);
    c.line(`v:${a.apiKey}:pixel`);
    expect(await c.next()).to.equal('OK');
    return c;
  };
  const put = async (name: string, value: unknown): Promise<void> => {
    const r = await call(daemon, 'PUT', `/api/vars/${name}`, { token: a.token, body: { value } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
  };
  const about = (type: string, name: string) => (f: Frame) => f.type === type && f.name === name;

  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });
  beforeEach(async () => {
    a = await signedInUser(daemon);
  });
  afterEach(() => {
    for (const c of closers.splice(0)) c.close();
  });

  it('tells every socket of the key how many devices a change reached, under delivery and its old tag', async () => {
    const live = await watcher();
    const dev = await device();
    await put('speed', 5);
    await dev.waitLines(2);
    const report = { name: 'speed', names: ['speed'], delivered: 1, buffered: false, node: daemon.ctx.nodeId };
    expect(await live.waitFor(about('delivery', 'speed'))).to.deep.equal({ type: 'delivery', ...report });
    expect(await live.waitFor(about('var_delivery', 'speed'))).to.deep.equal({ type: 'var_delivery', ...report });
  });

  it('says a change waits in the outbox when no device of the key is connected', async () => {
    const live = await watcher();
    await put('gravity', 9.81);
    const report = { name: 'gravity', names: ['gravity'], delivered: 0, buffered: true, node: daemon.ctx.nodeId };
    expect(await live.waitFor(about('delivery', 'gravity'))).to.deep.equal({ type: 'delivery', ...report });
    expect(await live.waitFor(about('var_delivery', 'gravity'))).to.deep.equal({ type: 'var_delivery', ...report });
  });

  it('keeps var_delivery with a var for the set_var answer only, and delivery without one for the event', async () => {
    const live = await watcher();
    await device();
    live.send({ type: 'set_var', name: 'lives', value: 3, id: 'q' });
    const answer = await live.waitFor((f) => f.type === 'var_delivery' && f.id === 'q');
    const { historyId, ...rest } = answer as { historyId?: unknown };
    // §8 added who the change is for, who it waits for and its history entry to the answer.
    expect(rest).to.deep.equal({ type: 'var_delivery', id: 'q', name: 'lives', var: { name: 'lives', type: 'integer', value: '3' }, target: { all: true }, delivered: 1, pending: 0, buffered: false });
    expect(historyId).to.be.a('string');
    const event = await live.waitFor(about('delivery', 'lives'));
    expect(event).to.not.have.property('var');
    // The answer goes to the socket that asked; another socket of the key hears only the events.
    const other = await watcher();
    live.send({ type: 'set_var', name: 'lives', value: 4, id: 'r' });
    await live.waitFor((f) => f.type === 'var_delivery' && f.id === 'r');
    await other.waitFor((f) => f.type === 'delivery' && f.name === 'lives');
    await other.waitFor((f) => f.type === 'var_delivery' && f.name === 'lives');
    expect(other.frames.filter((f) => 'var' in f || 'id' in f)).to.deep.equal([]);
  });
});
