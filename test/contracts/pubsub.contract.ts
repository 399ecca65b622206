/**
 * The one PubSub contract suite (CONVENTIONS.md §2): every implementation passes the same tests.
 * `pubsub.test.ts` runs it against the local and the Redis implementation.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino, type Logger } from 'pino';
import type { PubSub } from '../../src/pubsub/pubsub.js';
import { eventually } from '../helpers/eventually.js';

/** A pino logger whose records the test can read. */
export function capturingLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), records };
}

export type PubSubFactory = (logger: Logger) => PubSub | Promise<PubSub>;

let counter = 0;
/** A channel no other test uses, shaped like the domain's `<apiKey>:<topic>`. */
function freshChannel(topic = 'vars'): string {
  counter += 1;
  const key = `T${process.pid.toString(36)}${counter.toString(36)}${Math.random().toString(36).slice(2)}`.replace(/[^A-Za-z0-9]/g, '').padEnd(12, 'x').slice(0, 12);
  return `${key}:${topic}`;
}

export function pubsubContract(name: string, factory: PubSubFactory): void {
  describe(`PubSub contract: ${name}`, () => {
    let ps: PubSub;
    let records: Array<Record<string, unknown>>;

    beforeEach(async () => {
      const cap = capturingLogger();
      records = cap.records;
      ps = await factory(cap.logger);
      await ps.start();
    });

    afterEach(async () => {
      await ps.stop();
    });

    describe('health', () => {
      it('is ok once started', async () => {
        const h = await ps.health();
        expect(h.ok, h.detail).to.equal(true);
        expect(h.kind).to.equal(ps.kind);
      });
    });

    describe('publish / subscribe', () => {
      it('resolves with the number of nodes that had a subscriber (0 when nobody listens)', async () => {
        const ch = freshChannel('vars:callback');
        expect(await ps.publish(ch, 'nobody')).to.equal(0);
        const got: unknown[] = [];
        const off = await ps.subscribe(ch, (m) => got.push(m));
        await ps.subscribe(ch, () => undefined);
        expect(await ps.publish(ch, 'one node')).to.equal(1);
        await eventually(() => expect(got).to.deep.equal(['one node']));
        await off();
      });

      it('delivers a message, with its channel, to a subscriber', async () => {
        const ch = freshChannel();
        const got: Array<[unknown, string]> = [];
        await ps.subscribe(ch, (m, c) => got.push([m, c]));
        await ps.publish(ch, { name: 'speed', value: '-1', nested: { list: [1, 'two', null, true] } });
        await eventually(() => expect(got).to.have.length(1));
        expect(got[0]).to.deep.equal([{ name: 'speed', value: '-1', nested: { list: [1, 'two', null, true] } }, ch]);
      });

      it('delivers asynchronously, never inside publish', async () => {
        const ch = freshChannel();
        const got: unknown[] = [];
        await ps.subscribe(ch, (m) => got.push(m));
        const p = ps.publish(ch, 'x');
        expect(got).to.deep.equal([]);
        await p;
        await eventually(() => expect(got).to.deep.equal(['x']));
      });

      it('keeps publish order for 1000 messages on one channel', async () => {
        const ch = freshChannel();
        const got: number[] = [];
        await ps.subscribe(ch, (m) => got.push(m as number));
        const sent = Array.from({ length: 1000 }, (_, i) => i);
        await Promise.all(sent.map((i) => ps.publish(ch, i)));
        await eventually(() => expect(got).to.have.length(1000));
        expect(got).to.deep.equal(sent);
      });

      it('keeps publish order per channel for a burst of 1000 messages over three channels', async () => {
        const chs = [freshChannel('vars'), freshChannel('logs'), freshChannel('devices')];
        const got = chs.map(() => [] as number[]);
        for (const [i, ch] of chs.entries()) await ps.subscribe(ch, (m) => got[i]!.push(m as number));
        const sent = Array.from({ length: 1000 }, (_, i) => i);
        await Promise.all(sent.map((i) => ps.publish(chs[i % 3]!, i)));
        await eventually(() => expect(got.flat()).to.have.length(1000));
        for (const [c, list] of got.entries()) expect(list).to.deep.equal(sent.filter((i) => i % 3 === c));
      });

      it('delivers to several handlers one shared, frozen copy: no handler can change what another sees', async () => {
        const ch = freshChannel();
        const a: unknown[] = [];
        const b: Array<{ n: number; list: number[]; tag?: string }> = [];
        const writes: string[] = [];
        await ps.subscribe(ch, (m) => {
          a.push(m);
          const msg = m as { n: number; list: number[]; tag?: string };
          for (const write of [() => (msg.tag = 'mutated by a'), () => (msg.n = 2), () => msg.list.push(3), () => (msg.list[0] = 9)]) {
            try {
              write();
              writes.push('allowed');
            } catch (err) {
              writes.push((err as Error).name);
            }
          }
        });
        await ps.subscribe(ch, (m) => b.push(m as { n: number; list: number[]; tag?: string }));
        const original = { n: 1, list: [1, 2] };
        await ps.publish(ch, original);
        await eventually(() => {
          expect(a).to.have.length(1);
          expect(b).to.have.length(1);
        });
        expect(writes).to.deep.equal(['TypeError', 'TypeError', 'TypeError', 'TypeError']);
        // Decoded once: the handlers hold the very same object, and it is not the publisher's.
        expect(a[0]).to.equal(b[0]);
        expect(b[0]).to.not.equal(original);
        expect(Object.isFrozen(b[0]) && Object.isFrozen(b[0]!.list)).to.equal(true);
        expect(b[0]).to.deep.equal({ n: 1, list: [1, 2] });
        expect(original).to.deep.equal({ n: 1, list: [1, 2] });
        original.list.push(4);
        expect(b[0]!.list).to.deep.equal([1, 2]);
      });

      it('decodes a message once for all its handlers, however many there are', async () => {
        const ch = freshChannel();
        const seen = new Set<unknown>();
        let calls = 0;
        for (let i = 0; i < 5; i++)
          await ps.subscribe(ch, (m) => {
            calls += 1;
            seen.add(m);
          });
        await ps.publish(ch, { deep: { er: [{ still: 'x' }] } });
        await ps.publish(ch, { deep: { er: [{ still: 'y' }] } });
        await eventually(() => expect(calls).to.equal(10));
        expect(seen.size).to.equal(2);
        for (const m of seen) expect(Object.isFrozen((m as { deep: { er: object[] } }).deep.er[0])).to.equal(true);
      });

      it('hands a text handler this node’s message as the very text published, in order with the value handlers, never decoded for it', async () => {
        const ch = freshChannel();
        const order: string[] = [];
        const texts: string[] = [];
        await ps.subscribeText(ch, (m) => {
          expect(m.own).to.equal(true);
          if (m.own) texts.push(m.text);
          order.push('text');
        });
        await ps.subscribe(ch, () => order.push('value'));
        const msg = { type: 'vars', list: [1, 'é\u2028"', { deep: null }] };
        await ps.publish(ch, msg);
        await ps.publish(ch, 'second');
        await eventually(() => expect(texts).to.have.length(2));
        expect(texts).to.deep.equal([JSON.stringify(msg), '"second"']);
        await eventually(() => expect(order).to.deep.equal(['text', 'value', 'text', 'value']));
      });

      it('with only a text handler, a message of this node is not decoded at all', async () => {
        const ch = freshChannel();
        const got: string[] = [];
        const parse = JSON.parse;
        let parses = 0;
        await ps.subscribeText(ch, (m) => {
          if (m.own) got.push(m.text);
        });
        JSON.parse = ((...args: Parameters<typeof JSON.parse>) => {
          parses += 1;
          return parse(...args);
        }) as typeof JSON.parse;
        try {
          await ps.publish(ch, { big: 'x'.repeat(100_000) });
          await eventually(() => expect(got).to.have.length(1));
        } finally {
          JSON.parse = parse;
        }
        expect(parses).to.equal(0);
        expect(got[0]).to.have.length(100_000 + '{"big":""}'.length);
      });

      it('stops a text handler on unsubscribe, like any handler', async () => {
        const ch = freshChannel();
        const got: string[] = [];
        const off = await ps.subscribeText(ch, (m) => {
          if (m.own) got.push(m.text);
        });
        await ps.publish(ch, 1);
        await eventually(() => expect(got).to.deep.equal(['1']));
        await off();
        const others: unknown[] = [];
        await ps.subscribe(ch, (m) => others.push(m));
        await ps.publish(ch, 2);
        await eventually(() => expect(others).to.deep.equal([2]));
        expect(got).to.deep.equal(['1']);
      });

      it('is unaffected by the publisher mutating the message after publish', async () => {
        const ch = freshChannel();
        const got: unknown[] = [];
        await ps.subscribe(ch, (m) => got.push(m));
        const msg = { v: 'before' };
        const p = ps.publish(ch, msg);
        msg.v = 'after';
        await p;
        await eventually(() => expect(got).to.deep.equal([{ v: 'before' }]));
      });

      it('delivers to a subscriber that joins after earlier messages only what follows', async () => {
        const ch = freshChannel();
        const early: unknown[] = [];
        await ps.subscribe(ch, (m) => early.push(m));
        await ps.publish(ch, 1);
        await eventually(() => expect(early).to.deep.equal([1]));
        const late: unknown[] = [];
        await ps.subscribe(ch, (m) => late.push(m));
        await ps.publish(ch, 2);
        await eventually(() => expect(early).to.deep.equal([1, 2]));
        await eventually(() => expect(late).to.deep.equal([2]));
      });

      it('publishing with no subscriber resolves and delivers nothing later', async () => {
        const ch = freshChannel();
        await ps.publish(ch, { lost: true });
        const got: unknown[] = [];
        await ps.subscribe(ch, (m) => got.push(m));
        await ps.publish(ch, 'after');
        await eventually(() => expect(got).to.deep.equal(['after']));
      });
    });

    describe('unsubscribe', () => {
      it('stops delivery to that handler only', async () => {
        const ch = freshChannel();
        const gone: unknown[] = [];
        const stays: unknown[] = [];
        const unsubscribe = await ps.subscribe(ch, (m) => gone.push(m));
        await ps.subscribe(ch, (m) => stays.push(m));
        await ps.publish(ch, 1);
        await eventually(() => expect(gone).to.deep.equal([1]));
        await unsubscribe();
        await ps.publish(ch, 2);
        await ps.publish(ch, 3);
        // Per-channel order: once 3 reached the remaining handler, 2 would have reached the other.
        await eventually(() => expect(stays).to.deep.equal([1, 2, 3]));
        expect(gone).to.deep.equal([1]);
      });

      it('after the last handler goes, later messages reach nobody, and a new subscriber works', async () => {
        const ch = freshChannel();
        const first: unknown[] = [];
        const unsubscribe = await ps.subscribe(ch, (m) => first.push(m));
        await unsubscribe();
        await unsubscribe(); // idempotent
        await ps.publish(ch, 'nobody');
        const second: unknown[] = [];
        await ps.subscribe(ch, (m) => second.push(m));
        await ps.publish(ch, 'someone');
        await eventually(() => expect(second).to.deep.equal(['someone']));
        expect(first).to.deep.equal([]);
      });

      it('drops a message already published but not yet delivered', async () => {
        const ch = freshChannel();
        const gone: unknown[] = [];
        const stays: unknown[] = [];
        const unsubscribe = await ps.subscribe(ch, (m) => gone.push(m));
        await ps.subscribe(ch, (m) => stays.push(m));
        const p = ps.publish(ch, 'in flight');
        // Called in the same tick as publish: the handler is gone before anything can be delivered.
        await unsubscribe();
        await p;
        await ps.publish(ch, 'sentinel');
        await eventually(() => expect(stays).to.deep.equal(['in flight', 'sentinel']));
        expect(gone).to.deep.equal([]);
      });
    });

    describe('channel isolation', () => {
      it('keeps AAAAAAAAAAAA:vars and BBBBBBBBBBBB:vars apart', async () => {
        const suffix = freshChannel('vars').slice(0, 4);
        const chA = `AAAAAAAA${suffix}:vars`;
        const chB = `BBBBBBBB${suffix}:vars`;
        const a: unknown[] = [];
        const b: unknown[] = [];
        const bCallback: unknown[] = [];
        await ps.subscribe(chA, (m) => a.push(m));
        await ps.subscribe(chB, (m) => b.push(m));
        await ps.subscribe(`${chB}:callback`, (m) => bCallback.push(m));
        await ps.publish(chA, 'for A');
        await ps.publish(chB, 'for B');
        await ps.publish(chA, 'A sentinel');
        await ps.publish(chB, 'B sentinel');
        await eventually(() => {
          expect(a).to.deep.equal(['for A', 'A sentinel']);
          expect(b).to.deep.equal(['for B', 'B sentinel']);
        });
        expect(bCallback).to.deep.equal([]);
      });
    });

    describe('a throwing handler', () => {
      it('is logged and does not stop delivery to others or to itself later', async () => {
        const ch = freshChannel();
        const thrower: unknown[] = [];
        const other: unknown[] = [];
        await ps.subscribe(ch, (m) => {
          thrower.push(m);
          throw new Error('handler bug');
        });
        await ps.subscribe(ch, (m) => other.push(m));
        await ps.publish(ch, 1);
        await ps.publish(ch, 2);
        await eventually(() => expect(other).to.deep.equal([1, 2]));
        expect(thrower).to.deep.equal([1, 2]);
        await eventually(() => {
          const errors = records.filter((r) => r.level === 50 && r.channel === ch);
          expect(errors).to.have.length(2);
          expect((errors[0]!.err as { message: string }).message).to.equal('handler bug');
        });
      });

      it('an async handler that rejects is logged, not an unhandled rejection', async () => {
        const ch = freshChannel();
        const other: unknown[] = [];
        await ps.subscribe(ch, async () => {
          throw new Error('async handler bug');
        });
        await ps.subscribe(ch, (m) => other.push(m));
        await ps.publish(ch, 'x');
        await eventually(() => expect(other).to.deep.equal(['x']));
        await eventually(() => expect(records.some((r) => r.level === 50 && (r.err as { message?: string } | undefined)?.message === 'async handler bug')).to.equal(true));
      });
    });

    describe('messages JSON cannot carry', () => {
      const refused: Array<[string, () => unknown]> = [
        ['undefined', () => undefined],
        ['a function', () => () => 1],
        ['a symbol', () => Symbol('s')],
        ['a BigInt', () => ({ n: 10n })],
        [
          'a cycle',
          () => {
            const o: Record<string, unknown> = {};
            o.self = o;
            return o;
          },
        ],
      ];
      for (const [what, make] of refused) {
        it(`refuses ${what} with a clear error`, async () => {
          const ch = freshChannel();
          let err: unknown;
          try {
            await ps.publish(ch, make());
          } catch (e) {
            err = e;
          }
          expect(err).to.be.instanceOf(TypeError);
          expect((err as Error).name).to.equal('UnserialisableMessageError');
          expect((err as Error).message).to.include(ch);
        });
      }

      it('carries the rest as JSON does (Date → ISO string, undefined fields dropped)', async () => {
        const ch = freshChannel();
        const got: unknown[] = [];
        await ps.subscribe(ch, (m) => got.push(m));
        await ps.publish(ch, { at: new Date(0), gone: undefined, nan: Number.NaN, s: 'ünï🎮' });
        await eventually(() => expect(got).to.deep.equal([{ at: '1970-01-01T00:00:00.000Z', nan: null, s: 'ünï🎮' }]));
      });
    });

    describe('stop, then start again (a restart of the pubsub worker)', () => {
      it('keeps the subscriptions: messages published after start() reach the handlers subscribed before stop()', async () => {
        const ch = freshChannel();
        const other = freshChannel('logs');
        const got: unknown[] = [];
        await ps.subscribe(ch, (m) => got.push(['a', m]));
        const unsubscribe = await ps.subscribe(other, (m) => got.push(['gone', m]));
        await ps.stop();
        // Unsubscribing while stopped holds: that handler is not subscribed again.
        await unsubscribe();
        await ps.start();
        expect((await ps.health()).ok).to.equal(true);
        await ps.subscribe(ch, (m) => got.push(['b', m]));
        expect(await ps.publish(ch, 1)).to.equal(1);
        expect(await ps.publish(other, 2)).to.equal(0);
        await eventually(() => expect(got).to.deep.equal([['a', 1], ['b', 1]]));
      });
    });

    describe('stop', () => {
      it('refuses publish and subscribe once stopped', async () => {
        const ch = freshChannel();
        await ps.stop();
        let pubErr: unknown;
        let subErr: unknown;
        await ps.publish(ch, 1).catch((e: unknown) => (pubErr = e));
        await ps.subscribe(ch, () => undefined).catch((e: unknown) => (subErr = e));
        expect((pubErr as Error).message).to.match(/stopped/);
        expect((subErr as Error).message).to.match(/stopped/);
        expect((await ps.health()).ok).to.equal(false);
      });
    });
  });
}
