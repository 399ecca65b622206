/** REDIS_URL parsing (src/redis/url.ts) and its use by config validation: plain URLs pass through, cluster node lists are checked. */
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { createRedisClient, isCluster } from '../../../src/redis/connect.js';
import { MAX_CLUSTER_SEEDS, parseRedisUrl, redactRedisUrl, RedisUrlError } from '../../../src/redis/url.js';

describe('parseRedisUrl', () => {
  it('passes plain redis:// and rediss:// URLs through for ioredis to parse', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379/2')).to.deep.equal({ kind: 'single', url: 'redis://127.0.0.1:6379/2' });
    expect(parseRedisUrl('rediss://u:p@h:1')).to.deep.equal({ kind: 'single', url: 'rediss://u:p@h:1' });
  });

  it('reads a cluster node list, with credentials, IPv6 hosts and a trailing slash', () => {
    expect(parseRedisUrl('redis-cluster://10.0.0.1:7000,redis-b.internal:7001')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b.internal', port: 7001 },
      ],
      tls: false,
    });
    expect(parseRedisUrl('rediss-cluster://app:p%40ss%3Aword@[::1]:7000/')).to.deep.equal({
      kind: 'cluster',
      nodes: [{ host: '::1', port: 7000 }],
      username: 'app',
      password: 'p@ss:word',
      tls: true,
    });
    expect(parseRedisUrl('redis-cluster://:secret@h:1')).to.deep.equal({ kind: 'cluster', nodes: [{ host: 'h', port: 1 }], password: 'secret', tls: false });
  });

  const bad: [string, RegExp][] = [
    ['mysql://x', /must start with redis:\/\/ or rediss:\/\/ or redis-cluster:\/\/ or rediss-cluster:\/\//],
    ['redis-cluster://', /lists no nodes/],
    ['redis-cluster:///', /lists no nodes/],
    ['redis-cluster://h1:7000,', /node 2 "" is not host:port/],
    ['redis-cluster://h1:7000,,h2:7001', /node 2 "" is not host:port/],
    ['redis-cluster://h1', /node 1 "h1" is not host:port/],
    ['redis-cluster://h1:70000', /port 70000, outside 1\.\.65535/],
    ['redis-cluster://h1:0', /port 0, outside/],
    ['redis-cluster://h1:-1', /is not host:port/],
    ['redis-cluster://h1:7000/0', /takes no path, database number or query/],
    ['redis-cluster://h1:7000?tls=1', /takes no path/],
    ['redis-cluster://h 1:7000', /is not host:port/],
    ['redis-cluster://h1:7000;h2:7001', /is not host:port/],
    ['redis-cluster://%zz@h1:7000', /malformed percent-encoding/],
    [`redis-cluster://${Array.from({ length: MAX_CLUSTER_SEEDS + 1 }, (_, i) => `h${i}:7000`).join(',')}`, /lists 65 nodes; at most 64/],
    [`redis-cluster://${'h'.repeat(5000)}:1`, /at most 4096/],
  ];
  for (const [url, why] of bad) {
    it(`refuses ${JSON.stringify(url.slice(0, 60))} with a clear reason`, () => {
      expect(() => parseRedisUrl(url)).to.throw(RedisUrlError, why);
    });
  }

  it('quotes a long malformed node only in part', () => {
    let err: Error | undefined;
    try {
      parseRedisUrl(`redis-cluster://${'x'.repeat(300)}`);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message.length).to.be.lessThan(160);
  });
});

describe('redactRedisUrl', () => {
  it('hides the password of plain and cluster URLs', () => {
    expect(redactRedisUrl('redis://u:secret@h:1')).to.equal('redis://u:***@h:1');
    expect(redactRedisUrl('redis-cluster://u:secret@h:1,h:2')).to.equal('redis-cluster://u:***@h:1,h:2');
    expect(redactRedisUrl('redis-cluster://h:1,h:2')).to.equal('redis-cluster://h:1,h:2');
    expect(redactRedisUrl('redis-cluster://u:s@cr@t@h:1')).to.not.include('s@cr');
  });
});

describe('createRedisClient', () => {
  it('makes a Cluster for a cluster URL and a Redis otherwise, neither connected yet', () => {
    const c = createRedisClient('redis-cluster://127.0.0.1:1,127.0.0.1:2', { connectionName: 't' });
    const r = createRedisClient('redis://127.0.0.1:1', { connectionName: 't' });
    try {
      expect(isCluster(c)).to.equal(true);
      expect(isCluster(r)).to.equal(false);
      expect(c.status).to.equal('wait');
      expect(r.status).to.equal('wait');
    } finally {
      c.disconnect();
      r.disconnect();
    }
  });
});

describe('config: REDIS_URL', () => {
  it('accepts a Redis Cluster node list', () => {
    expect(loadConfig({ env: { REDIS_URL: 'redis-cluster://127.0.0.1:7000,127.0.0.1:7001' } }).redisUrl).to.equal('redis-cluster://127.0.0.1:7000,127.0.0.1:7001');
  });
  it('refuses a malformed node list at boot, saying which node and why', () => {
    expect(() => loadConfig({ env: { REDIS_URL: 'redis-cluster://127.0.0.1:7000,127.0.0.1' } })).to.throw(ConfigError, /redisUrl: node 2 "127\.0\.0\.1" is not host:port/);
    expect(() => loadConfig({ env: { REDIS_URL: 'redis-cluster://127.0.0.1:99999' } })).to.throw(ConfigError, /redisUrl: .*outside 1\.\.65535/);
  });
});
