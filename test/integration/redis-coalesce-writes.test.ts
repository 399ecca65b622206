/**
 * createRedisClient's coalesceWrites (issue 14): the MULTIs issued in one turn of the event loop
 * reach the socket as one write (and the auto-pipelined commands as one more), in the order an
 * uncoalesced client sends them, with every reply right; after a reconnect the new socket
 * coalesces as well. Counted on the socket itself (its _write/_writev
 * calls, one per write(2) or writev(2)), against a real Redis.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../src/redis/connect.js';
import { eventually } from '../helpers/eventually.js';
import { sharedRedis, type RedisServer } from '../helpers/processes.js';

/** Counts the writes the client's current socket hands to the kernel. */
function countWrites(redis: Redis): { readonly n: number } {
  const s = redis.stream as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const counter = { n: 0 };
  const w = s._write.bind(s);
  const wv = s._writev.bind(s);
  s._write = (...a: unknown[]) => {
    counter.n += 1;
    w(...a);
  };
  s._writev = (...a: unknown[]) => {
    counter.n += 1;
    wv(...a);
  };
  return counter;
}

/**
 * 40 MULTIs and 40 plain commands in one turn. ioredis writes each MULTI at once and the
 * auto-pipelined commands at the end of the tick, so the INCRs run MULTIs first; coalescing must keep
 * exactly that order (EXPECTED, what an uncoalesced client gets).
 */
async function burst(redis: Redis, key: string): Promise<number[]> {
  const replies: Array<Promise<number>> = [];
  for (let i = 0; i < 40; i++) {
    replies.push(
      redis
        .multi()
        .incr(key)
        .exec()
        .then((r) => Number(r?.[0]?.[1])),
    );
    replies.push(redis.incr(key));
  }
  return Promise.all(replies);
}

const EXPECTED = Array.from({ length: 40 }, (_, i) => [i + 1, i + 41]).flat();

describe('Redis client: coalesceWrites', () => {
  let server: RedisServer;
  const clients: Redis[] = [];

  async function client(coalesceWrites: boolean): Promise<Redis> {
    const c = createRedisClient(server.url, { connectionName: 'observerio:test:coalesce', enableAutoPipelining: true, coalesceWrites }) as Redis;
    clients.push(c);
    await c.connect();
    return c;
  }

  before(async () => {
    server = await sharedRedis();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  it('sends one turn of MULTIs and commands in at most two writes, in order', async () => {
    const redis = await client(true);
    const key = `observerio-test-coalesce-${randomBytes(4).toString('hex')}`;
    const writes = countWrites(redis);
    const replies = await burst(redis, key);
    expect(replies).to.deep.equal(EXPECTED);
    // The MULTIs leave in one writev; ioredis sends its auto-pipeline from an immediate of its own,
    // queued after the uncork, so that is the second write.
    expect(writes.n).to.be.at.most(2);
    await redis.del(key);
  });

  it('without it, each MULTI is a write of its own (what the option saves)', async () => {
    const redis = await client(false);
    const key = `observerio-test-coalesce-${randomBytes(4).toString('hex')}`;
    const writes = countWrites(redis);
    const replies = await burst(redis, key);
    expect(replies).to.deep.equal(EXPECTED);
    expect(writes.n).to.be.at.least(40);
    await redis.del(key);
  });

  it('coalesces on the new socket after a reconnect', async () => {
    const redis = await client(true);
    const key = `observerio-test-coalesce-${randomBytes(4).toString('hex')}`;
    const before = redis.stream;
    const ready = new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    redis.stream.destroy();
    await ready;
    await eventually(() => expect(redis.stream).to.not.equal(before));
    const writes = countWrites(redis);
    const replies = await burst(redis, key);
    expect(replies).to.deep.equal(EXPECTED);
    // The MULTIs leave in one writev; ioredis sends its auto-pipeline from an immediate of its own,
    // queued after the uncork, so that is the second write.
    expect(writes.n).to.be.at.most(2);
    await redis.del(key);
  });
});
