/** The SDK reconnecting by itself: re-verify, re-send variables, deliver queued logs, bounded offline queue. */
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { connect, type Client, type ClientEvents, type ConnectOptions, type SdkClock, type SdkError } from '../../src/sdk/index.js';
import { eventually } from '../helpers/eventually.js';
import { TestDaemon } from './sdk-test-daemon.js';

const KEY = 'AbCdEf012345';
const FAST = { initialMs: 10, maxMs: 40, jitter: 0 };

describe('sdk reconnection', () => {
  let daemon: TestDaemon;
  let client: Client;
  let events: Array<[keyof ClientEvents, unknown]>;
  const open = async (opts: Partial<ConnectOptions> = {}): Promise<Client> => {
    client = await connect({ host: daemon.host, port: daemon.port, apiKey: KEY, reconnect: FAST, ...opts });
    events = [];
    for (const name of ['connected', 'disconnected', 'reconnecting'] as const) client.on(name, (info: unknown) => events.push([name, info]));
    return client;
  };
  const named = (name: keyof ClientEvents): unknown[] => events.filter(([n]) => n === name).map(([, i]) => i);

  beforeEach(async () => {
    daemon = await TestDaemon.start({ keys: [KEY] });
  });
  afterEach(async () => {
    await client?.close();
    await daemon.stop();
  });

  it('after the daemon drops the socket: verifies again and re-sends every current variable', async () => {
    await open({ deviceId: 'dev-1', varsWindowMs: 1 });
    client.setVar('speed', 1);
    client.setVar('title', 'x');
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    daemon.push(KEY, [{ name: 'fog', type: 'boolean', value: 'true' }]);
    await eventually(() => expect(client.get('fog')).to.equal(true));
    await client.flush();
    const varsBefore = daemon.of('vars').length;

    await daemon.dropAll();
    await eventually(() => expect(named('connected')).to.have.length(1));
    expect(named('connected')[0]).to.deep.equal({ reconnected: true });
    const disconnected = named('disconnected') as Array<{ error: SdkError; willReconnect: boolean }>;
    expect(disconnected).to.have.length(1);
    expect(disconnected[0]?.willReconnect).to.equal(true);
    expect(disconnected[0]?.error.code).to.equal('connection_lost');
    expect(named('reconnecting')[0]).to.include({ attempt: 1, delayMs: 10 });

    expect(daemon.of('verify').map((v) => [v.conn, v.deviceId])).to.deep.equal([
      [1, 'dev-1'],
      [2, 'dev-1'],
    ]);
    await eventually(() => expect(daemon.of('vars')).to.have.length(varsBefore + 1));
    const resent = daemon.of('vars').at(-1);
    expect(resent?.conn).to.equal(2);
    expect(resent?.vars).to.deep.equal([
      { name: 'speed', type: 'integer', value: '1' },
      { name: 'title', type: 'string', value: 'x' },
      { name: 'fog', type: 'boolean', value: 'true' },
    ]);
    // The re-sent variables come right after v:, before anything else on the new connection.
    const onSecond = daemon.received.filter((r) => r.conn === 2).map((r) => r.parsed.kind);
    expect(onSecond.slice(0, 2)).to.deep.equal(['verify', 'vars']);
  });

  it('while offline: queues logs and only the latest value per variable, and delivers them after reconnecting', async () => {
    await open({ logIntervalMs: 1, varsWindowMs: 1 });
    await daemon.pause();
    await daemon.dropAll();
    await eventually(() => expect(named('reconnecting').length).to.be.at.least(3));
    expect(client.connected).to.equal(false);
    for (let i = 0; i < 5; i++) client.log(`offline ${i}`);
    client.setVar('speed', 1);
    client.setVar('speed', 2);
    client.setVar('speed', 3);
    expect(client.queuedLogs).to.equal(5);
    expect(client.get('speed')).to.equal(3);
    const flushed = client.flush();

    await daemon.resume();
    await flushed;
    await eventually(() => expect(daemon.of('logs').flatMap((c) => c.logs.map((l) => l.message))).to.deep.equal([0, 1, 2, 3, 4].map((i) => `offline ${i}`)));
    expect(daemon.of('vars').map((c) => c.vars)).to.deep.equal([[{ name: 'speed', type: 'integer', value: '3' }]]);
    expect(client.dropped).to.equal(0);
    // Backoff grows while the port refuses: 10, 20, 40, 40, ... ms.
    const delays = (named('reconnecting') as Array<{ delayMs: number }>).map((r) => r.delayMs);
    expect(delays.slice(0, 3)).to.deep.equal([10, 20, 40]);
  });

  it('bounds the offline log queue: drops the oldest and counts them', async () => {
    await open({ offlineLogLimit: 5, logIntervalMs: 1 });
    await daemon.pause();
    await daemon.dropAll();
    await eventually(() => expect(client.state).to.equal('waiting'));
    for (let i = 0; i < 12; i++) client.log(`m${i}`);
    expect(client.queuedLogs).to.equal(5);
    expect(client.dropped).to.equal(7);
    await daemon.resume();
    await eventually(() => expect(daemon.of('logs').flatMap((c) => c.logs.map((l) => l.message))).to.deep.equal(['m7', 'm8', 'm9', 'm10', 'm11']));
  });

  it('buffered dashboard changes arrive right after the re-verify and are confirmed after the re-sent values', async () => {
    await open({ varsWindowMs: 1 });
    client.setVar('speed', 1);
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    await daemon.pause();
    await daemon.dropAll();
    daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '9' }]);
    await daemon.resume();
    await eventually(() => expect(client.get('speed')).to.equal(9));
    // The stale re-send (1) crosses the buffered change (9); the confirmation puts 9 last.
    await eventually(() => expect(daemon.of('vars').map((c) => c.vars[0]?.value)).to.deep.equal(['1', '1', '9']));
  });

  it('keeps retrying with backoff when the daemon refuses the key on reconnect, and reports why', async () => {
    await open();
    daemon.keys.clear();
    await daemon.dropAll();
    await eventually(() => expect(named('reconnecting').length).to.be.at.least(3));
    const reasons = (named('reconnecting') as Array<{ error: SdkError }>).map((r) => r.error.code);
    expect(reasons[0]).to.equal('connection_lost');
    expect(reasons.slice(1)).to.satisfy((codes: string[]) => codes.every((c) => c === 'unknown_api_key'));
    daemon.keys.add(KEY);
    await eventually(() => expect(client.connected).to.equal(true));
  });

  it('with reconnect: false, a dropped connection closes the client', async () => {
    await open({ reconnect: false });
    await daemon.dropAll();
    await eventually(() => expect(client.state).to.equal('closed'));
    expect(named('disconnected')).to.have.length(1);
    expect(named('disconnected')[0]).to.include({ willReconnect: false });
    expect(named('reconnecting')).to.have.length(0);
    expect(daemon.accepted).to.equal(1);
  });

  it('close() while waiting to reconnect stops for good and rejects pending flushes', async () => {
    // A fake clock shows that no timer is left behind, without waiting to see that nothing happens.
    const clock = FakeTimers.createClock();
    const sdkClock: SdkClock = { now: () => clock.now, setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (h) => clock.clearTimeout(h as FakeTimers.TimerId) };
    await open({ clock: sdkClock, reconnect: { initialMs: 50, jitter: 0 } });
    await daemon.pause();
    await daemon.dropAll();
    await eventually(() => expect(client.state).to.equal('waiting'));
    expect(clock.countTimers()).to.equal(1);
    client.log('never sent');
    const flushed = client.flush().then(
      () => 'resolved',
      (e: SdkError) => e.code,
    );
    await client.close();
    expect(await flushed).to.equal('closed');
    expect(client.state).to.equal('closed');
    expect(clock.countTimers()).to.equal(0);
    await daemon.resume();
    clock.runAll();
    expect(client.state).to.equal('closed');
    expect(daemon.accepted).to.equal(1);
  });
});
