/**
 * The original Elixir server's three tests (tcp_test.ex), over real TCP on real Redis and real
 * Meilisearch: what an SDK written for the original daemon relies on.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { b64, LineClient } from '../helpers/tcp-client.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis } from '../helpers/processes.js';

describe('original observerio behaviour (real Redis + Meilisearch)', () => {
  let daemon: Daemon;
  let redis: Redis;
  let apiKey: string;
  let client: LineClient;

  before(async () => {
    daemon = await startDaemon({ redis: true, meili: true });
    redis = (await sharedRedis()).client();
  });
  after(async () => {
    redis.disconnect();
    await daemon.stop();
  });
  beforeEach(async () => {
    apiKey = await daemon.register('user1-' + Math.random().toString(36).slice(2) + '@example.com', '12345678');
    client = await LineClient.open(daemon.tcpPort);
  });
  afterEach(() => client.close());

  it('should register user session', async () => {
    client.line(`v:${apiKey}`);
    expect(await client.next()).to.equal('OK');
  });

  it('should bulk insert logs on tcp request', async () => {
    client.line(`v:${apiKey}`);
    client.line(`l:${apiKey}:${b64([{ message: 'testing1', timestamp: 123123123 }, { message: 'testing2', timestamp: 123123123 }])}`);
    expect(await client.next()).to.equal('OK');
    const hits = await eventually(
      async () => {
        const r = await daemon.ctx.logIndex.search({ apiKey, q: '' });
        expect(r.hits).to.have.length(2);
        return r.hits;
      },
      { timeoutMs: 10_000 },
    );
    expect(hits.map((h) => h.message).sort()).to.deep.equal(['testing1', 'testing2']);
    expect(hits.every((h) => h.timestamp === 123123123 && h.apiKey === apiKey)).to.equal(true);
  });

  it('should store vars on tcp request', async () => {
    client.line(`v:${apiKey}`);
    client.line(`i:${apiKey}:${b64([{ name: 'testing1', type: 'string', value: 'example' }, { name: 'testing2', type: 'integer', value: '-1' }])}`);
    expect(await client.next()).to.equal('OK');
    const vars = await eventually(async () => {
      const keys = await redis.hkeys(`${apiKey}:vs`);
      expect(keys).to.have.length(4);
      return keys;
    });
    expect(vars).to.deep.equal(['testing1:type', 'testing1:value', 'testing2:type', 'testing2:value']);
    expect(await redis.hget(`${apiKey}:vs`, 'testing2:value')).to.equal('-1');
  });
});
