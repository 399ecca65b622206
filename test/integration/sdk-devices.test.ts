/**
 * The SDK's side of DESIGN.md §8/§9 over real sockets, against the protocol test server (which
 * understands `d:` like the daemon, or, started with `labels: false`, answers it with e:unknown_command
 * like this daemon before the devices extension): the d: line's content and place (after OK, before the first i:, again after every OK), defaults in the first i:,
 * every v: applied, getters, onChange, the game's own values reported, background connect.
 */
import { expect } from 'chai';
import { connect, createClient, SdkError, type Client, type ConnectOptions, type VarChange } from '../../src/sdk/index.js';
import { parseLabelsLine } from '../../src/variables/labels.js';
import { eventually } from '../helpers/eventually.js';
import { TestDaemon } from './sdk-test-daemon.js';

const KEY = 'AbCdEf012345';

describe('sdk devices: labels, defaults, effective values', () => {
  let daemon: TestDaemon;
  let client: Client | undefined;
  const opts = (o: Partial<ConnectOptions> = {}): ConnectOptions => ({ host: daemon.host, port: daemon.port, apiKey: KEY, varsWindowMs: 1, reconnect: { initialMs: 10, maxMs: 20 }, ...o });
  const open = async (o: Partial<ConnectOptions> = {}): Promise<Client> => (client = await connect(opts(o)));
  const linesOf = (conn: number): string[] => daemon.received.filter((r) => r.conn === conn).map((r) => r.line);

  beforeEach(async () => {
    daemon = await TestDaemon.start({ keys: [KEY] });
    client = undefined;
  });
  afterEach(async () => {
    await client?.close();
    await daemon.stop();
  });

  it('sends the labels as d: right after OK, before the defaults in the first i:', async () => {
    const c = await open({ deviceId: 'pixel-8', labels: { platform: 'android', build: '1.4.2' }, defaults: { enemy_speed: 1.5, spawn_ms: { value: 800, type: 'float' } } });
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    const lines = linesOf(1);
    expect(lines[0]).to.equal(`v:${KEY}:pixel-8`);
    expect(parseLabelsLine(lines[1] ?? '')).to.deep.equal({ kind: 'labels', apiKey: KEY, labels: { build: '1.4.2', platform: 'android' } });
    expect(lines[1]).to.equal(`d:${KEY}:${Buffer.from('{"platform":"android","build":"1.4.2"}').toString('base64')}`);
    expect(lines[2]?.startsWith(`i:${KEY}:`)).to.equal(true);
    expect(daemon.of('vars')[0]?.vars).to.deep.equal([
      { name: 'enemy_speed', type: 'float', value: '1.5' },
      { name: 'spawn_ms', type: 'float', value: '800' },
    ]);
    expect(c.connected).to.equal(true);
    // A server with the devices extension takes d: without an error.
    expect(daemon.of('error')).to.deep.equal([]);
  });

  it('takes e:unknown_command after d: (a daemon without labels) in its stride, and still reports other errors', async () => {
    // A daemon before the devices extension: the daemon itself now understands d: (docs/PROTOCOL.md §13).
    await daemon.stop();
    daemon = await TestDaemon.start({ keys: [KEY], labels: false });
    const errors: SdkError[] = [];
    const c = await open({ labels: { platform: 'web' } });
    c.on('error', (e) => errors.push(e));
    c.setVar('a', 1);
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    // The test server answered d: with unknown_command, as this daemon did before the extension.
    expect(daemon.of('error').map((e) => [e.code, e.line])).to.deep.equal([['unknown_command', `d:${KEY}:${Buffer.from('{"platform":"web"}').toString('base64')}`]]);
    await c.flush();
    expect(errors).to.deep.equal([]);
    expect(c.connected).to.equal(true);
    daemon.sendRaw('e:unknown_command:a second one is not about d:\ne:bad_shape:something else\n');
    await eventually(() => expect(errors.map((e) => e.code)).to.deep.equal(['unknown_command', 'bad_shape']));
  });

  it('sends no d: line without labels (an original-protocol session)', async () => {
    const c = await open({ defaults: { a: 1 } });
    await c.flush();
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    expect(daemon.received.some((r) => r.line.startsWith('d:'))).to.equal(false);
  });

  it('after a reconnect, re-sends the labels, then the game’s own values, not the daemon’s', async () => {
    const c = await open({ labels: { platform: 'ios' }, defaults: { speed: 1 } });
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '7' }, { name: 'fog', type: 'boolean', value: 'true' }]);
    await eventually(() => expect(c.getNumber('speed', 0)).to.equal(7));
    await c.flush();
    // No echo: the daemon keeps its override; the report stays the game's value.
    expect(daemon.of('vars')).to.have.length(1);
    c.setLabels({ platform: 'ios', build: '2.0' });
    await eventually(() => expect(daemon.received.filter((r) => r.line.startsWith('d:'))).to.have.length(2));

    await daemon.dropAll();
    await eventually(() => expect(daemon.of('vars').filter((v) => v.conn === 2)).to.have.length(1));
    const second = linesOf(2);
    expect(second[0]).to.equal(`v:${KEY}`);
    expect(parseLabelsLine(second[1] ?? '')).to.deep.include({ labels: { build: '2.0', platform: 'ios' } });
    expect(daemon.of('vars').find((v) => v.conn === 2)?.vars).to.deep.equal([{ name: 'speed', type: 'integer', value: '1' }]);
    // The effective value is still the daemon's until it says otherwise or the game sets it.
    expect(c.getNumber('speed', 0)).to.equal(7);
    expect(c.getBool('fog', false)).to.equal(true);
  });

  it('applies every v: over defaults and over what the game set, until the game sets it again', async () => {
    const c = await open({ defaults: { enemy_speed: 1.5 } });
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    expect(c.getNumber('enemy_speed', 0)).to.equal(1.5);
    daemon.push(KEY, [{ name: 'enemy_speed', type: 'float', value: '3' }]);
    await eventually(() => expect(c.getNumber('enemy_speed', 0)).to.equal(3));
    c.setVar('enemy_speed', 2);
    expect(c.getNumber('enemy_speed', 0)).to.equal(2);
    // A whole number keeps the float type the variable has.
    await eventually(() => expect(daemon.of('vars').at(-1)?.vars).to.deep.equal([{ name: 'enemy_speed', type: 'float', value: '2' }]));
    daemon.push(KEY, [{ name: 'enemy_speed', type: 'float', value: '3' }]);
    await eventually(() => expect(c.getNumber('enemy_speed', 0)).to.equal(3));
    daemon.push(KEY, [{ name: 'title', type: 'string', value: 'hello' }, { name: 'god', type: 'boolean', value: '1' }]);
    await eventually(() => expect(c.getString('title', '')).to.equal('hello'));
    expect(c.getBool('god', false)).to.equal(true);
  });

  it('onChange fires for changes the daemon makes, once per new value, and stops when removed', async () => {
    const c = await open({ defaults: { speed: 1 } });
    const seen: Array<[unknown, VarChange]> = [];
    const whole: VarChange[][] = [];
    const off = c.onChange('speed', (value, change) => seen.push([value, change]));
    c.on('vars', (changes) => whole.push(changes));
    c.setVar('speed', 2);
    daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '5' }, { name: 'other', type: 'integer', value: '1' }]);
    await eventually(() => expect(seen).to.have.length(1));
    expect(seen[0]?.[0]).to.equal(5);
    expect(seen[0]?.[1]).to.deep.include({ name: 'speed', value: 5, raw: '5', previous: 2 });
    // The same override again (as the daemon re-sends it after a report that differs): no call.
    daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '5' }]);
    daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '6' }]);
    await eventually(() => expect(seen.map((s) => s[0])).to.deep.equal([5, 6]));
    expect(whole.map((w) => w.map((x) => x.name))).to.deep.equal([['speed', 'other'], ['speed'], ['speed']]);
    off();
    daemon.push(KEY, [{ name: 'speed', type: 'integer', value: '8' }]);
    await eventually(() => expect(c.getNumber('speed', 0)).to.equal(8));
    expect(seen).to.have.length(2);
  });

  it('a throwing onChange listener is reported as listener_error and the others still run', async () => {
    const c = await open();
    const errors: SdkError[] = [];
    c.on('error', (e) => errors.push(e));
    const got: unknown[] = [];
    c.onChange('a', () => {
      throw new Error('game bug');
    });
    c.onChange('a', (v) => got.push(v));
    daemon.push(KEY, [{ name: 'a', type: 'integer', value: '1' }]);
    await eventually(() => expect(got).to.deep.equal([1]));
    expect(errors.map((e) => e.code)).to.deep.equal(['listener_error']);
  });

  it('setVars takes an object and a Map', async () => {
    const c = await open({ varsWindowMs: 60_000 });
    c.setVars({ speed: 3, ratio: { value: 2, type: 'float' } });
    c.setVars(new Map([['title', 'x']]));
    await c.flush();
    await eventually(() => expect(daemon.of('vars')).to.have.length(1));
    expect(daemon.of('vars')[0]?.vars).to.deep.equal([
      { name: 'speed', type: 'integer', value: '3' },
      { name: 'ratio', type: 'float', value: '2' },
      { name: 'title', type: 'string', value: 'x' },
    ]);
  });

  describe('background connect', () => {
    it('createClient while the daemon is down: runs on defaults, retries, and reports them once it is up', async () => {
      await daemon.pause();
      const c = (client = createClient(opts({ labels: { platform: 'android' }, defaults: { speed: 1 } })));
      const retries: string[] = [];
      c.on('reconnecting', (info) => retries.push(info.error.code));
      await eventually(() => expect(retries.length).to.be.at.least(2));
      expect(retries.every((r) => r === 'connection_refused')).to.equal(true);
      expect(c.connected).to.equal(false);
      expect(c.getNumber('speed', 0)).to.equal(1);
      c.setVar('lives', 3);
      c.log('offline log');
      const flushed = c.flush();
      const connected: Array<{ reconnected: boolean }> = [];
      c.on('connected', (info) => connected.push(info));

      await daemon.resume();
      await flushed;
      expect(connected).to.deep.equal([{ reconnected: false }]);
      await eventually(() => expect(daemon.of('vars')).to.have.length(1));
      const conn = daemon.of('verify')[0]?.conn ?? 0;
      const lines = linesOf(conn);
      expect(lines[0]).to.equal(`v:${KEY}`);
      expect(lines[1]?.startsWith(`d:${KEY}:`)).to.equal(true);
      expect(daemon.of('vars')[0]?.vars).to.deep.equal([
        { name: 'speed', type: 'integer', value: '1' },
        { name: 'lives', type: 'integer', value: '3' },
      ]);
      await eventually(() => expect(daemon.of('logs').flatMap((l) => l.logs.map((x) => x.message))).to.deep.equal(['offline log']));
    });

    it('connect({background: true}) resolves at once and retries a key the daemon refuses', async () => {
      daemon.keys.clear();
      const c = (client = await connect(opts({ background: true })));
      expect(c.connected).to.equal(false);
      const retries: string[] = [];
      c.on('reconnecting', (info) => retries.push(info.error.code));
      await eventually(() => expect(retries).to.include('unknown_api_key'));
      daemon.keys.add(KEY);
      await eventually(() => expect(c.connected).to.equal(true));
    });

    it('close() while retrying in the background stops it and rejects waiting flushes', async () => {
      await daemon.pause();
      const c = createClient(opts({ reconnect: { initialMs: 5, maxMs: 10 } }));
      const flushed = c.flush().then(
        () => null,
        (e: unknown) => e,
      );
      await eventually(() => expect(c.state).to.equal('waiting'));
      await c.close();
      expect(await flushed).to.be.instanceOf(SdkError).with.property('code', 'closed');
      const attempts = daemon.accepted;
      await daemon.resume();
      expect(c.state).to.equal('closed');
      expect(daemon.accepted).to.equal(attempts);
    });

    it('without background, connect() still rejects when the daemon is down', async () => {
      await daemon.pause();
      let err: unknown = null;
      await connect(opts()).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(SdkError).with.property('code', 'connection_refused');
    });
  });
});
