/** The SDK's logs: l: lines batched by size and by interval, flush() and close(), entries that cannot be sent. */
import { expect } from 'chai';
import { connect, SdkError, type Client, type ConnectOptions } from '../../src/sdk/index.js';
import { eventually } from '../helpers/eventually.js';
import { TestDaemon } from './sdk-test-daemon.js';

const KEY = 'AbCdEf012345';

describe('sdk logs', () => {
  let daemon: TestDaemon;
  let client: Client;
  const open = async (opts: Partial<ConnectOptions> = {}): Promise<Client> =>
    (client = await connect({ host: daemon.host, port: daemon.port, apiKey: KEY, ...opts }));
  const messages = (): string[] => daemon.of('logs').flatMap((c) => c.logs.map((l) => l.message));

  beforeEach(async () => {
    daemon = await TestDaemon.start({ keys: [KEY] });
  });
  afterEach(async () => {
    await client?.close();
    await daemon.stop();
  });

  it('sends a full batch of logBatchSize at once and keeps the rest for the interval', async () => {
    await open({ logBatchSize: 5, logIntervalMs: 60_000 });
    for (let i = 0; i < 12; i++) client.log(`m${i}`);
    await eventually(() => expect(daemon.of('logs')).to.have.length(2));
    expect(daemon.of('logs').map((c) => c.logs.length)).to.deep.equal([5, 5]);
    expect(client.queuedLogs).to.equal(2);
    await client.flush();
    await eventually(() => expect(daemon.of('logs')).to.have.length(3));
    expect(messages()).to.deep.equal(Array.from({ length: 12 }, (_, i) => `m${i}`));
  });

  it('sends what is queued after logIntervalMs in one line', async () => {
    await open({ logBatchSize: 1000, logIntervalMs: 40 });
    client.log('a');
    client.log('b');
    client.log('c');
    expect(daemon.of('logs')).to.have.length(0);
    await eventually(() => expect(daemon.of('logs')).to.have.length(1));
    expect(messages()).to.deep.equal(['a', 'b', 'c']);
  });

  it('adds level info and a millisecond timestamp, and keeps other fields', async () => {
    await open({ logIntervalMs: 1 });
    const before = Date.now();
    client.log('boss spawned', { stage: 3, tags: ['x'] });
    client.log('low fps', { level: 'warn', timestamp: 123123123, message: 'ignored: the argument wins' });
    await eventually(() => expect(messages()).to.have.length(2));
    const [first, second] = daemon.of('logs').flatMap((c) => c.logs);
    expect(first).to.include({ message: 'boss spawned', level: 'info', stage: 3 });
    expect(first?.tags).to.deep.equal(['x']);
    expect(first?.timestamp).to.be.within(before, Date.now());
    expect(second).to.deep.equal({ message: 'low fps', level: 'warn', timestamp: 123123123 });
  });

  it('flush() resolves once logs and variables were written', async () => {
    await open({ logBatchSize: 1000, logIntervalMs: 60_000, varsWindowMs: 60_000 });
    client.log('one');
    client.setVar('speed', 2);
    await client.flush();
    expect(client.queuedLogs).to.equal(0);
    await eventually(() => {
      expect(messages()).to.deep.equal(['one']);
      expect(daemon.of('vars')).to.have.length(1);
    });
  });

  it('close() flushes, then closes; afterwards logs are counted as dropped and setVar/flush refuse', async () => {
    await open({ logBatchSize: 1000, logIntervalMs: 60_000, varsWindowMs: 60_000 });
    client.log('last words');
    client.setVar('score', 10);
    await client.close();
    await eventually(() => expect(daemon.open).to.equal(0));
    expect(messages()).to.deep.equal(['last words']);
    expect(daemon.of('vars')[0]?.vars).to.deep.equal([{ name: 'score', type: 'integer', value: '10' }]);
    client.log('too late');
    expect(client.dropped).to.equal(1);
    expect(() => client.setVar('score', 11)).to.throw(SdkError).with.property('code', 'closed');
    const err = await client.flush().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(SdkError).with.property('code', 'closed');
  });

  it('drops and reports an entry that cannot be serialized, and sends the others', async () => {
    await open({ logIntervalMs: 1 });
    const errors: SdkError[] = [];
    client.on('error', (e) => errors.push(e));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    client.log('ok 1');
    client.log('bad', { big: 10n });
    client.log('bad', { cyclic });
    client.log('bad', { timestamp: NaN });
    client.log('ok 2');
    await eventually(() => expect(messages()).to.deep.equal(['ok 1', 'ok 2']));
    expect(errors.map((e) => e.code)).to.deep.equal(['bad_log', 'bad_log', 'bad_log']);
    expect(client.dropped).to.equal(3);
    expect(daemon.of('error')).to.have.length(0);
  });

  it('keeps every line within maxLineBytes and drops an entry that cannot fit', async () => {
    await open({ maxLineBytes: 1024, logBatchSize: 1000, logIntervalMs: 60_000 });
    client.on('error', () => undefined);
    client.log('x'.repeat(2000));
    for (let i = 0; i < 50; i++) client.log(`entry ${i} ${'y'.repeat(40)}`);
    await client.flush();
    await eventually(() => expect(messages()).to.have.length(50));
    expect(client.dropped).to.equal(1);
    expect(daemon.of('logs').length).to.be.greaterThan(2);
    for (const l of daemon.of('logs')) expect(Buffer.byteLength(l.line)).to.be.at.most(1024);
  });

  it('heartbeat: an idle connection sends an empty log batch every heartbeatMs', async () => {
    await open({ heartbeatMs: 30 });
    await eventually(() => expect(daemon.of('logs').length).to.be.at.least(2));
    for (const l of daemon.of('logs')) expect(l.line).to.equal(`l:${KEY}:W10=`);
    expect(daemon.of('error')).to.have.length(0);
  });
});
