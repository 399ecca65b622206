/**
 * Reconnection timing with a fake clock (@sinonjs/fake-timers) injected into a client on real sockets:
 * delays double from initialMs up to maxMs, jitter stays within bounds, and a connection that stayed
 * up for stableMs starts the sequence over.
 */
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { connect, type Client, type ConnectOptions, type SdkClock, type SdkError } from '../../src/sdk/index.js';
import { eventually } from '../helpers/eventually.js';
import { TestDaemon } from './sdk-test-daemon.js';

const KEY = 'AbCdEf012345';

interface Retry {
  attempt: number;
  delayMs: number;
  error: SdkError;
}

describe('sdk reconnect backoff (fake clock)', () => {
  let daemon: TestDaemon;
  let client: Client;
  let clock: FakeTimers.Clock;
  let retries: Retry[];
  let connections: number;

  const open = async (opts: Partial<ConnectOptions> = {}): Promise<Client> => {
    const sdkClock: SdkClock = {
      now: () => clock.now,
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      clearTimeout: (h) => clock.clearTimeout(h as FakeTimers.TimerId),
    };
    client = await connect({ host: daemon.host, port: daemon.port, apiKey: KEY, clock: sdkClock, random: () => 0.5, connectTimeoutMs: 3_600_000, ...opts });
    retries = [];
    connections = 0;
    client.on('reconnecting', (r) => retries.push(r));
    client.on('connected', () => connections++);
    return client;
  };

  /** Drops the connection with the port refusing, and waits for the client to schedule its retry. */
  const dropAndRefuse = async (): Promise<Retry> => {
    const before = retries.length;
    await daemon.pause();
    await daemon.dropAll();
    await eventually(() => expect(retries).to.have.length(before + 1));
    return retries.at(-1) as Retry;
  };

  /** Lets the scheduled retry fire; the refused attempt schedules the next one. */
  const retryRefused = async (delayMs: number): Promise<Retry> => {
    const before = retries.length;
    clock.tick(delayMs - 1);
    expect(client.state).to.equal('waiting');
    clock.tick(1);
    expect(client.state).to.equal('connecting');
    await eventually(() => expect(retries).to.have.length(before + 1));
    return retries.at(-1) as Retry;
  };

  const retryAccepted = async (delayMs: number): Promise<void> => {
    const before = connections;
    await daemon.resume();
    clock.tick(delayMs);
    await eventually(() => expect(connections).to.equal(before + 1));
  };

  beforeEach(async () => {
    clock = FakeTimers.createClock(1_000_000);
    daemon = await TestDaemon.start({ keys: [KEY] });
  });
  afterEach(async () => {
    await client?.close();
    await daemon.stop();
  });

  it('waits 1 s, 2 s, 4 s, ... capped at 30 s by default', async () => {
    await open();
    const delays = [(await dropAndRefuse()).delayMs];
    for (let i = 0; i < 6; i++) delays.push((await retryRefused(delays.at(-1) as number)).delayMs);
    expect(delays).to.deep.equal([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(retries.map((r) => r.attempt)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
    expect(retries[0]?.error.code).to.equal('connection_lost');
    expect(retries.slice(1).every((r) => r.error.code === 'connection_refused')).to.equal(true);
  });

  it('resets to initialMs after a connection stayed up for stableMs, not before', async () => {
    await open({ reconnect: { initialMs: 1000, maxMs: 8000, stableMs: 10_000 } });
    const delays = [(await dropAndRefuse()).delayMs];
    for (let i = 0; i < 3; i++) delays.push((await retryRefused(delays.at(-1) as number)).delayMs);
    expect(delays).to.deep.equal([1000, 2000, 4000, 8000]);

    await retryAccepted(8000);
    clock.tick(9999);
    expect((await dropAndRefuse()).delayMs).to.equal(8000);

    await retryAccepted(8000);
    clock.tick(10_000);
    expect((await dropAndRefuse()).delayMs).to.equal(1000);
    expect((await retryRefused(1000)).delayMs).to.equal(2000);
  });

  it('spreads delays by ±jitter', async () => {
    let r = 0;
    await open({ random: () => r, reconnect: { initialMs: 1000, maxMs: 30_000, jitter: 0.2 } });
    expect((await dropAndRefuse()).delayMs).to.equal(800);
    r = 0.999999;
    expect((await retryRefused(800)).delayMs).to.equal(2400);
    r = 0.25;
    expect((await retryRefused(2400)).delayMs).to.equal(3600);
  });

  it('a connect attempt that gets no OK times out after connectTimeoutMs and counts as a failure', async () => {
    await open({ connectTimeoutMs: 5000, reconnect: { initialMs: 1000 } });
    expect((await dropAndRefuse()).delayMs).to.equal(1000);
    daemon.verifyReply = () => null;
    await daemon.resume();
    clock.tick(1000);
    await eventually(() => expect(client.state).to.equal('verifying'));
    clock.tick(4999);
    expect(retries).to.have.length(1);
    clock.tick(1);
    await eventually(() => expect(retries).to.have.length(2));
    expect(retries[1]).to.include({ attempt: 2, delayMs: 2000 });
    expect(retries[1]?.error.code).to.equal('connect_timeout');
  });
});
