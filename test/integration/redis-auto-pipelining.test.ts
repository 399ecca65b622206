/**
 * AUTO_PIPELINING (src/redis/connect.ts): on a plain Redis the store's connection and the
 * publisher send plain commands, corked per turn (coalesceWrites), not ioredis's auto-pipelined
 * Pipelines, whose objects outlived the scavenges and made the device `i:` → dashboard event tail
 * (issue 14). What must hold without them, against a real Redis: a turn's commands still leave in
 * one write, in the order they were issued, so a read issued after a write in the same turn sees it
 * (auto-pipelining sent the MULTI of the read ahead of the write's EVALSHA), and every message of a
 * turn's publishes still arrives, in order.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import { RedisPubSub } from '../../src/pubsub/redis-pubsub.js';
import { autoPipelining } from '../../src/redis/connect.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { contractStoreConfig } from '../contracts/store.contract.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis, type RedisServer } from '../helpers/processes.js';

/** Counts the writes a socket hands to the kernel (one per write(2) or writev(2)). */
function countWrites(s: Socket): { readonly n: number } {
  const sock = s as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const counter = { n: 0 };
  const w = sock._write.bind(sock);
  const wv = sock._writev.bind(sock);
  sock._write = (...a: unknown[]) => {
    counter.n += 1;
    w(...a);
  };
  sock._writev = (...a: unknown[]) => {
    counter.n += 1;
    wv(...a);
  };
  return counter;
}

/** The socket of a connection the class keeps to itself. */
function socketOf(owner: object, field: string): Socket {
  const client = (owner as Record<string, { stream: Socket }>)[field];
  if (!client) throw new Error(`no ${field}`);
  return client.stream;
}

describe('Redis connections without auto-pipelining (AUTO_PIPELINING)', () => {
  let server: RedisServer;

  before(async () => {
    server = await sharedRedis();
  });

  it('is used only on a cluster, which coalesceWrites does not cover', () => {
    expect(autoPipelining('redis://127.0.0.1:6379')).to.equal(false);
    expect(autoPipelining('rediss://user:pw@example.com:6380/2')).to.equal(false);
    expect(autoPipelining('redis-cluster://127.0.0.1:7000,127.0.0.1:7001')).to.equal(true);
    expect(autoPipelining('rediss-cluster://127.0.0.1:7000')).to.equal(true);
  });

  describe('the store', () => {
    let store: RedisStore;

    beforeEach(async () => {
      store = new RedisStore(contractStoreConfig, { url: server.url, keyPrefix: `observerio-test-${randomBytes(4).toString('hex')}:` });
      await store.start();
    });
    afterEach(() => store.stop());

    it('sends a turn of writes and reads in one write, in the order issued: a read after a write of the same turn sees it', async () => {
      const apiKey = 'autopipe0001';
      await store.setVars(apiKey, [{ name: 'warm', type: 'string', value: 'up' }]);
      const writes = countWrites(socketOf(store, 'redis'));
      // Not awaited: the read is issued in the same turn, right behind the write.
      const written = store.setVars(apiKey, [{ name: 'speed', type: 'integer', value: '7' }]);
      const read = store.getVars(apiKey);
      const [vars] = await Promise.all([read, written]);
      expect(vars).to.deep.equal([
        { name: 'warm', type: 'string', value: 'up' },
        { name: 'speed', type: 'integer', value: '7' },
      ]);
      expect(writes.n).to.equal(1);
    });
  });

  describe('the publisher', () => {
    let ps: RedisPubSub;

    beforeEach(async () => {
      ps = new RedisPubSub({ url: server.url, logger: pino({ level: 'silent' }) });
      await ps.start();
    });
    afterEach(() => ps.stop());

    it("sends a turn's publishes in one write, and another node gets each, in order", async () => {
      const channel = `observerio-test-autopipe-${randomBytes(4).toString('hex')}`;
      // Another node: its own pubsub, so the messages come through Redis rather than the local FIFO.
      const other = new RedisPubSub({ url: server.url, logger: pino({ level: 'silent' }) });
      await other.start();
      try {
        const got: unknown[] = [];
        await other.subscribe(channel, (m) => got.push(m));
        const writes = countWrites(socketOf(ps, 'pub'));
        const counts = await Promise.all(Array.from({ length: 40 }, (_, i) => ps.publish(channel, { n: i })));
        expect(counts).to.deep.equal(Array.from({ length: 40 }, () => 1));
        expect(writes.n).to.equal(1);
        await eventually(() => expect(got).to.have.length(40));
        expect(got).to.deep.equal(Array.from({ length: 40 }, (_, i) => ({ n: i })));
      } finally {
        await other.stop();
      }
    });
  });
});
