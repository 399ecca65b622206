/**
 * The one Store contract suite: every implementation (memory, Redis) must pass it unchanged.
 * The factory returns a started store built with `contractStoreConfig`; cleanup stops and removes it.
 */
import { expect } from 'chai';
import type { StoreConfig } from '../../src/config.js';
import { ObserverioError } from '../../src/errors.js';
import { API_KEY_RE, type Var } from '../../src/model.js';
import { loginRule, type LoginRule } from '../../src/store/login-limiter.js';
import { newApiKey } from '../../src/store/passwords.js';
import type { Store } from '../../src/store/store.js';
import { eventually } from '../helpers/eventually.js';

export interface StoreFixture {
  store: Store;
  cleanup(): Promise<void>;
}

/** The configuration every factory must build its store with (the cap test relies on outboxMaxPerKey). */
export const contractStoreConfig: StoreConfig = Object.freeze({ snapshotIntervalMs: 0, sessionTtlMs: 60_000, outboxMaxPerKey: 16, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 });

let seq = 0;
/** An email no other test (or earlier run against a shared Redis) has used. */
function freshEmail(tag = 'user'): string {
  return `${tag}-${process.pid}-${Date.now()}-${++seq}@example.com`;
}

const v = (name: string, value: string, type = 'string'): Var => ({ name, type, value });

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function expectEmailTaken(err: unknown): void {
  expect(err).to.be.instanceOf(ObserverioError);
  expect((err as ObserverioError).code).to.equal('email_taken');
  expect((err as ObserverioError).status).to.equal(409);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

export function storeContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`Store contract: ${name}`, function () {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    describe('health', () => {
      it('reports ok for its own kind', async () => {
        const h = await store.health();
        expect(h.ok).to.equal(true);
        expect(h.kind).to.equal(store.kind);
      });
    });

    describe('stop, then start again (a restart of the store worker)', () => {
      it('keeps every record and serves again', async () => {
        const u = await store.createUser(freshEmail('restart'), 'correct horse');
        const session = await store.createSession(u, 60_000);
        await store.setVars(u.apiKey, [v('a', '1'), v('b', '2')]);
        await store.outboxPush(u.apiKey, [v('c', '3')]);
        await store.stop();
        await store.start();
        expect((await store.health()).ok).to.equal(true);
        expect(await store.verifyApiKey(u.apiKey)).to.equal(true);
        expect(await store.getSession(session.token)).to.deep.equal(session);
        expect(await store.getVars(u.apiKey)).to.deep.equal([v('a', '1'), v('b', '2')]);
        // Written after the restart, then read back: the store is fully usable, not only readable.
        await store.setVars(u.apiKey, [v('a', '9')]);
        expect(await store.getVars(u.apiKey)).to.deep.equal([v('a', '9'), v('b', '2')]);
        expect(await store.outboxTake(u.apiKey)).to.deep.equal([v('c', '3')]);
      });
    });

    describe('createUser', () => {
      it('returns the user with a fresh 12-character API key', async () => {
        const email = freshEmail();
        const before = Date.now();
        const u = await store.createUser(email, 'correct horse');
        expect(u.email).to.equal(email);
        expect(u.apiKey).to.match(API_KEY_RE);
        expect(u.createdAt).to.be.within(before, Date.now());
      });

      it('refuses a taken email, ignoring case, with email_taken', async () => {
        const email = freshEmail('Case');
        await store.createUser(email, 'pw-one');
        expectEmailTaken(await rejection(store.createUser(email, 'pw-two')));
        expectEmailTaken(await rejection(store.createUser(email.toUpperCase(), 'pw-two')));
        expectEmailTaken(await rejection(store.createUser(email.toLowerCase(), 'pw-two')));
      });

      it('lets exactly one of several concurrent registrations of one email win', async () => {
        const email = freshEmail('race');
        const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => store.createUser(i % 2 ? email : email.toUpperCase(), `pw${i}`)));
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).to.have.length(1);
        for (const r of results) if (r.status === 'rejected') expectEmailTaken(r.reason);
      });

      it('gives every user a distinct key of [A-Za-z0-9]{12}', async () => {
        const users = await Promise.all(Array.from({ length: 40 }, () => store.createUser(freshEmail('many'), 'pw')));
        const keys = users.map((u) => u.apiKey);
        for (const k of keys) expect(k).to.match(API_KEY_RE);
        expect(new Set(keys).size).to.equal(keys.length);
      });
    });

    describe('authenticate', () => {
      it('returns the user for the right password, with the email in any case', async () => {
        const email = freshEmail('Auth');
        const u = await store.createUser(email, 's3cret!');
        expect(await store.authenticate(email, 's3cret!')).to.deep.equal(u);
        expect((await store.authenticate(email.toUpperCase(), 's3cret!'))?.apiKey).to.equal(u.apiKey);
      });

      it('returns null for a wrong password', async () => {
        const email = freshEmail();
        await store.createUser(email, 's3cret!');
        expect(await store.authenticate(email, 's3cret')).to.equal(null);
        expect(await store.authenticate(email, 'S3CRET!')).to.equal(null);
        expect(await store.authenticate(email, '')).to.equal(null);
      });

      it('returns null for an unknown email', async () => {
        expect(await store.authenticate(freshEmail('nobody'), 'whatever')).to.equal(null);
      });

      it('spends a password check on an unknown email too (no timing oracle)', async () => {
        const email = freshEmail();
        await store.createUser(email, 'pw');
        await store.authenticate(freshEmail('warm'), 'x'); // first call builds the dummy hash
        // CPU time (scrypt runs on libuv's pool, counted in the process's usage), not wall time, which
        // a loaded machine stretches by any factor: the question is whether the work was done.
        const time = async (f: () => Promise<unknown>): Promise<number> => {
          const u0 = process.cpuUsage();
          await f();
          const u = process.cpuUsage(u0);
          return u.user + u.system;
        };
        const wrong: number[] = [];
        const unknown: number[] = [];
        for (let i = 0; i < 5; i++) {
          wrong.push(await time(() => store.authenticate(email, 'nope')));
          unknown.push(await time(() => store.authenticate(freshEmail('nobody'), 'nope')));
        }
        // A missing hash would cost well under a millisecond against tens of milliseconds for scrypt.
        expect(median(unknown)).to.be.greaterThan(median(wrong) * 0.4);
      });
    });

    describe('verifyApiKey', () => {
      it('is true for a registered key', async () => {
        const u = await store.createUser(freshEmail(), 'pw');
        expect(await store.verifyApiKey(u.apiKey)).to.equal(true);
      });

      it('is false for an unregistered or malformed key', async () => {
        const u = await store.createUser(freshEmail(), 'pw');
        expect(await store.verifyApiKey(newApiKey())).to.equal(false);
        expect(await store.verifyApiKey(u.apiKey.toLowerCase() === u.apiKey ? u.apiKey.toUpperCase() : u.apiKey.toLowerCase())).to.equal(false);
        for (const bad of ['', 'short', 'x'.repeat(5000), '*', '__proto__', 'constructor', 'ünïcödé😀😀😀😀']) {
          expect(await store.verifyApiKey(bad)).to.equal(false, bad);
        }
      });
    });

    describe('createSession', () => {
      it('returns a long random token bound to the user', async () => {
        const u = await store.createUser(freshEmail(), 'pw');
        const before = Date.now();
        const s = await store.createSession(u, 60_000);
        expect(s.token).to.match(/^[A-Za-z0-9_-]{22,}$/);
        expect(s.apiKey).to.equal(u.apiKey);
        expect(s.email).to.equal(u.email);
        expect(s.expiresAt).to.be.within(before + 60_000, Date.now() + 60_000);
        const s2 = await store.createSession(u, 60_000);
        expect(s2.token).to.not.equal(s.token);
      });

      it('rejects a ttl that is not a positive number', async () => {
        const u = await store.createUser(freshEmail(), 'pw');
        for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
          expect(await rejection(store.createSession(u, ttl))).to.be.instanceOf(RangeError);
        }
      });
    });

    describe('getSession', () => {
      it('returns the session for its token', async () => {
        const u = await store.createUser(freshEmail(), 'pw');
        const s = await store.createSession(u, 60_000);
        expect(await store.getSession(s.token)).to.deep.equal(s);
      });

      it('returns null for an unknown token', async () => {
        expect(await store.getSession('no-such-token')).to.equal(null);
        expect(await store.getSession('')).to.equal(null);
        expect(await store.getSession('__proto__')).to.equal(null);
      });

      it('returns null once the session has expired', async () => {
        const u = await store.createUser(freshEmail(), 'pw');
        const short = await store.createSession(u, 150);
        const long = await store.createSession(u, 60_000);
        expect(await store.getSession(short.token)).to.not.equal(null);
        await eventually(async () => expect(await store.getSession(short.token)).to.equal(null), { timeoutMs: 3000 });
        expect(await store.getSession(long.token)).to.deep.equal(long);
      });
    });

    describe('deleteSession', () => {
      it('removes only that session', async () => {
        const u = await store.createUser(freshEmail(), 'pw');
        const a = await store.createSession(u, 60_000);
        const b = await store.createSession(u, 60_000);
        await store.deleteSession(a.token);
        expect(await store.getSession(a.token)).to.equal(null);
        expect(await store.getSession(b.token)).to.deep.equal(b);
      });

      it('is a no-op for an unknown token', async () => {
        await store.deleteSession('no-such-token');
      });
    });

    describe('loginBegin / loginEnd (the failed-login rule, shared by every node on Redis)', () => {
      const rule = (r: Partial<LoginRule> = {}): LoginRule => loginRule({ maxFailures: 3, windowMs: 60_000, baseDelayMs: 60_000, maxDelayMs: 60_000, ...r });
      const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
      let key: string;
      beforeEach(() => {
        key = freshEmail('login');
      });
      const failOnce = async (k: string, r: LoginRule) => {
        expect(await store.loginBegin(k, r)).to.equal(null);
        await store.loginEnd(k, 'fail', r);
      };

      it('lets maxFailures failures through, then refuses with the lockout left; other emails go ahead', async () => {
        const r = rule();
        for (let i = 0; i < 3; i++) await failOnce(key, r);
        const wait = await store.loginBegin(key, r);
        expect(wait).to.be.a('number').within(50_000, 60_000);
        expect(await store.loginBegin(`${key}-other`, r)).to.equal(null);
      });

      it('doubles the lockout with each failure past the limit, up to maxDelayMs', async () => {
        const r = rule({ maxFailures: 2, baseDelayMs: 150, maxDelayMs: 500 });
        for (let i = 0; i < 2; i++) await failOnce(key, r);
        const waits: number[] = [];
        for (let i = 0; i < 3; i++) {
          waits.push((await store.loginBegin(key, r)) as number);
          await eventually(async () => expect(await store.loginBegin(key, r)).to.equal(null), { timeoutMs: 3000, intervalMs: 25 });
          await store.loginEnd(key, 'fail', r);
        }
        waits.push((await store.loginBegin(key, r)) as number);
        expect(waits[0]).to.be.within(1, 150);
        expect(waits[1]).to.be.within(151, 300);
        expect(waits[2]).to.be.within(301, 500);
        expect(waits[3]).to.be.within(301, 500);
      });

      it('a success clears the email’s record', async () => {
        const r = rule();
        for (let i = 0; i < 2; i++) await failOnce(key, r);
        expect(await store.loginBegin(key, r)).to.equal(null);
        await store.loginEnd(key, 'succeed', r);
        for (let i = 0; i < 2; i++) await failOnce(key, r);
        expect(await store.loginBegin(key, r)).to.equal(null);
      });

      it('counts attempts in flight, so parallel attempts stop at the limit; an abandoned one frees its place', async () => {
        const r = rule({ maxFailures: 5, baseDelayMs: 1000 });
        const answers = await Promise.all(Array.from({ length: 10 }, () => store.loginBegin(key, r)));
        expect(answers.filter((w) => w === null)).to.have.length(5);
        for (const w of answers.filter((x) => x !== null)) expect(w).to.equal(1000);
        await store.loginEnd(key, 'abandon', r);
        expect(await store.loginBegin(key, r)).to.equal(null);
        expect(await store.loginBegin(key, r)).to.equal(1000);
      });

      it('an abandoned attempt is neither a failure nor a success', async () => {
        const r = rule();
        for (let i = 0; i < 2; i++) await failOnce(key, r);
        for (let i = 0; i < 3; i++) {
          expect(await store.loginBegin(key, r)).to.equal(null);
          await store.loginEnd(key, 'abandon', r);
        }
        await failOnce(key, r);
        expect(await store.loginBegin(key, r)).to.be.a('number');
      });

      it('forgets failures older than the window', async () => {
        const r = rule({ windowMs: 300 });
        for (let i = 0; i < 2; i++) await failOnce(key, r);
        await pause(400); // the window passes
        for (let i = 0; i < 2; i++) await failOnce(key, r);
        expect(await store.loginBegin(key, r)).to.equal(null);
      });

      it('forgets an attempt still in flight after attemptTimeoutMs (its node died before answering)', async () => {
        const r = rule({ maxFailures: 2, baseDelayMs: 1000, attemptTimeoutMs: 300 });
        expect(await store.loginBegin(key, r)).to.equal(null);
        expect(await store.loginBegin(key, r)).to.equal(null);
        expect(await store.loginBegin(key, r)).to.equal(1000);
        await pause(400); // both attempts time out
        expect(await store.loginBegin(key, r)).to.equal(null);
      });

      it('ending an attempt of an email it has no record of is harmless; a failure still counts', async () => {
        const r = rule({ maxFailures: 1 });
        await store.loginEnd(`${key}-a`, 'abandon', r);
        await store.loginEnd(`${key}-a`, 'succeed', r);
        expect(await store.loginBegin(`${key}-a`, r)).to.equal(null);
        await store.loginEnd(`${key}-b`, 'fail', r);
        expect(await store.loginBegin(`${key}-b`, r)).to.be.a('number');
      });

      it('takes keys verbatim and keeps them apart: very long, unicode, __proto__, separators', async () => {
        const r = rule({ maxFailures: 1 });
        const keys = [`${'a'.repeat(10_000)}@x`, `${key}-ünï@x`, '__proto__', `${key}:f i l`, `${key}:f`];
        await failOnce(keys[0] as string, r);
        await failOnce('__proto__', r);
        for (const k of keys) {
          const wait = await store.loginBegin(k, r);
          if (k === keys[0] || k === '__proto__') expect(wait, k.slice(0, 40)).to.be.a('number').within(50_000, 60_000);
          else expect(wait, k.slice(0, 40)).to.equal(null);
        }
      });
    });

    describe('setVars', () => {
      it('keeps variables in first-seen order across calls', async () => {
        const k = newApiKey();
        await store.setVars(k, [v('testing1', '1', 'integer')]);
        await store.setVars(k, [v('testing2', 'a')]);
        await store.setVars(k, [v('testing3', 'true', 'boolean'), v('testing0', '0')]);
        expect(await store.getVars(k)).to.deep.equal([v('testing1', '1', 'integer'), v('testing2', 'a'), v('testing3', 'true', 'boolean'), v('testing0', '0')]);
      });

      it('overwrites a variable in place, type and value', async () => {
        const k = newApiKey();
        await store.setVars(k, [v('a', '1'), v('b', '2'), v('c', '3')]);
        await store.setVars(k, [v('b', '20', 'integer'), v('d', '4')]);
        expect(await store.getVars(k)).to.deep.equal([v('a', '1'), v('b', '20', 'integer'), v('c', '3'), v('d', '4')]);
      });

      it('takes the last value when one batch names a variable twice', async () => {
        const k = newApiKey();
        await store.setVars(k, [v('x', '1'), v('y', '2'), v('x', '3')]);
        expect(await store.getVars(k)).to.deep.equal([v('x', '3'), v('y', '2')]);
      });

      it('keeps first-seen order for many variables with long values', async () => {
        const k = newApiKey();
        // Past 256 variables or a 64-byte value Redis stops storing a hash in insertion order.
        const names = Array.from({ length: 150 }, (_, i) => `var_${(i * 7919) % 1000}_${i}`);
        for (let i = 0; i < names.length; i += 10) {
          await store.setVars(k, names.slice(i, i + 10).map((n) => v(n, `${n}:${'x'.repeat(100)}`)));
        }
        expect((await store.getVars(k)).map((x) => x.name)).to.deep.equal(names);
      });

      it('keeps keys apart', async () => {
        const k1 = newApiKey();
        const k2 = newApiKey();
        await store.setVars(k1, [v('speed', '1')]);
        await store.setVars(k2, [v('speed', '2'), v('hp', '3')]);
        expect(await store.getVars(k1)).to.deep.equal([v('speed', '1')]);
        expect(await store.getVars(k2)).to.deep.equal([v('speed', '2'), v('hp', '3')]);
      });

      it('accepts an empty batch', async () => {
        const k = newApiKey();
        await store.setVars(k, []);
        expect(await store.getVars(k)).to.deep.equal([]);
      });
    });

    describe('getVars', () => {
      it('returns [] for a key with no variables', async () => {
        expect(await store.getVars(newApiKey())).to.deep.equal([]);
      });
    });

    describe('getVarTypes', () => {
      it('gives the types of the names asked for that exist, as getVars has them', async () => {
        const k = newApiKey();
        await store.setVars(k, [v('a', '1', 'integer'), v('b', 'x'), v('__proto__', 'true', 'boolean'), v('a', '2', 'float')]);
        const types = await store.getVarTypes(k, ['b', 'nope', 'a', '__proto__']);
        expect([...types]).to.deep.equal([['b', 'string'], ['a', 'float'], ['__proto__', 'boolean']]);
        expect(new Map((await store.getVars(k)).map((x) => [x.name, x.type]))).to.deep.equal(new Map([['a', 'float'], ['b', 'string'], ['__proto__', 'boolean']]));
        expect(await store.getVarTypes(k, [])).to.deep.equal(new Map());
        expect(await store.getVarTypes(newApiKey(), ['a'])).to.deep.equal(new Map());
        await store.deleteVar(k, 'a');
        expect(await store.getVarTypes(k, ['a'])).to.deep.equal(new Map());
      });
    });

    describe('deleteVar', () => {
      it('removes only that variable and keeps the others in first-seen order', async () => {
        const k = newApiKey();
        await store.setVars(k, [v('a', '1'), v('b', '2', 'integer'), v('c', '3')]);
        expect(await store.deleteVar(k, 'b')).to.equal(true);
        expect(await store.getVars(k)).to.deep.equal([v('a', '1'), v('c', '3')]);
      });

      it('answers false for a variable or a key that does not exist, changing nothing', async () => {
        const k = newApiKey();
        await store.setVars(k, [v('a', '1')]);
        expect(await store.deleteVar(k, 'nope')).to.equal(false);
        expect(await store.deleteVar(newApiKey(), 'a')).to.equal(false);
        expect(await store.getVars(k)).to.deep.equal([v('a', '1')]);
      });

      it('puts a variable reported again after its deletion at the end', async () => {
        const k = newApiKey();
        await store.setVars(k, [v('a', '1'), v('b', '2'), v('c', '3')]);
        await store.deleteVar(k, 'a');
        expect(await store.deleteVar(k, 'a'), 'a second delete').to.equal(false);
        await store.setVars(k, [v('a', '10'), v('d', '4')]);
        expect(await store.getVars(k)).to.deep.equal([v('b', '2'), v('c', '3'), v('a', '10'), v('d', '4')]);
      });

      it('deletes the last variable of a key, and keeps keys apart', async () => {
        const k1 = newApiKey();
        const k2 = newApiKey();
        await store.setVars(k1, [v('speed', '1')]);
        await store.setVars(k2, [v('speed', '2')]);
        expect(await store.deleteVar(k1, 'speed')).to.equal(true);
        expect(await store.getVars(k1)).to.deep.equal([]);
        expect(await store.getVars(k2)).to.deep.equal([v('speed', '2')]);
      });

      it('takes names verbatim: separators, a name that ends like a field, unicode', async () => {
        const k = newApiKey();
        const odd = [v('a:type', '1'), v('a', '2'), v('ünï:cødé:value', '3'), v('with space', '4')];
        await store.setVars(k, odd);
        expect(await store.deleteVar(k, 'a')).to.equal(true);
        expect(await store.getVars(k)).to.deep.equal([odd[0], odd[2], odd[3]]);
        expect(await store.deleteVar(k, 'ünï:cødé:value')).to.equal(true);
        expect(await store.deleteVar(k, 'a:type')).to.equal(true);
        expect(await store.getVars(k)).to.deep.equal([odd[3]]);
      });
    });

    describe('outboxPush', () => {
      it('returns how many variables are waiting', async () => {
        const k = newApiKey();
        expect(await store.outboxPush(k, [v('a', '1'), v('b', '2')])).to.equal(2);
        expect(await store.outboxPush(k, [v('c', '3')])).to.equal(3);
        expect(await store.outboxPush(k, [v('a', '4')])).to.equal(3);
        expect(await store.outboxPush(k, [])).to.equal(3);
      });

      it('replaces a waiting variable with the newer value and moves it to the end', async () => {
        const k = newApiKey();
        await store.outboxPush(k, [v('a', '1'), v('b', '2'), v('c', '3')]);
        await store.outboxPush(k, [v('a', '10', 'integer')]);
        expect(await store.outboxTake(k)).to.deep.equal([v('b', '2'), v('c', '3'), v('a', '10', 'integer')]);
      });

      it('keeps at most outboxMaxPerKey variables, dropping the oldest', async () => {
        const k = newApiKey();
        const max = contractStoreConfig.outboxMaxPerKey;
        const names = Array.from({ length: max + 3 }, (_, i) => `n${i}`);
        let n = 0;
        for (const name of names.slice(0, 2)) n = await store.outboxPush(k, [v(name, name)]);
        n = await store.outboxPush(k, names.slice(2).map((name) => v(name, name)));
        expect(n).to.equal(max);
        expect(await store.outboxLength(k)).to.equal(max);
        expect((await store.outboxTake(k)).map((x) => x.name)).to.deep.equal(names.slice(3));
      });

      it('keeps keys apart', async () => {
        const k1 = newApiKey();
        const k2 = newApiKey();
        await store.outboxPush(k1, [v('a', '1')]);
        await store.outboxPush(k2, [v('a', '2'), v('b', '3')]);
        expect(await store.outboxTake(k1)).to.deep.equal([v('a', '1')]);
        expect(await store.outboxLength(k2)).to.equal(2);
        expect(await store.outboxTake(k2)).to.deep.equal([v('a', '2'), v('b', '3')]);
      });
    });

    describe('outboxTake', () => {
      it('returns everything oldest first and leaves the outbox empty', async () => {
        const k = newApiKey();
        await store.outboxPush(k, [v('z', '1'), v('a', '2')]);
        await store.outboxPush(k, [v('m', '3')]);
        expect(await store.outboxTake(k)).to.deep.equal([v('z', '1'), v('a', '2'), v('m', '3')]);
        expect(await store.outboxTake(k)).to.deep.equal([]);
        expect(await store.outboxLength(k)).to.equal(0);
        expect(await store.outboxPush(k, [v('a', '5')])).to.equal(1);
        expect(await store.outboxTake(k)).to.deep.equal([v('a', '5')]);
      });

      it('hands each change to exactly one of several concurrent takers', async () => {
        const k = newApiKey();
        await store.outboxPush(k, [v('a', '1'), v('b', '2'), v('c', '3')]);
        const taken = await Promise.all([store.outboxTake(k), store.outboxTake(k), store.outboxTake(k)]);
        expect(taken.flat().map((x) => x.name).sort()).to.deep.equal(['a', 'b', 'c']);
        expect(taken.filter((t) => t.length > 0)).to.have.length(1);
      });

      it('returns [] for a key with nothing waiting', async () => {
        expect(await store.outboxTake(newApiKey())).to.deep.equal([]);
      });
    });

    describe('outboxLength', () => {
      it('counts distinct waiting variables', async () => {
        const k = newApiKey();
        expect(await store.outboxLength(k)).to.equal(0);
        await store.outboxPush(k, [v('a', '1'), v('a', '2'), v('b', '1')]);
        expect(await store.outboxLength(k)).to.equal(2);
      });
    });

    describe('hostile input', () => {
      it('handles unicode and odd strings in emails and passwords', async () => {
        const email = `Ünïcödé-${Date.now()}-${++seq}@例え.テスト`;
        const password = 'pässwörd 🔑 \u0000 \n\t "quoted" $scrypt$1$2$3';
        const u = await store.createUser(email, password);
        expect(u.email).to.equal(email);
        expect(await store.authenticate(email.toLowerCase(), password)).to.deep.equal(u);
        expect(await store.authenticate(email, password.normalize('NFD'))).to.deep.equal(u);
        expect(await store.authenticate(email, 'pässwörd 🔑')).to.equal(null);
        expectEmailTaken(await rejection(store.createUser(email.toUpperCase(), 'x')));
        expect(await store.authenticate('\u0000', '\u0000')).to.equal(null);
        expect(await store.authenticate('', '')).to.equal(null);
      });

      it('stores variable names and values verbatim, including separators and unicode', async () => {
        const k = newApiKey();
        const odd = [
          v('a:type', 'x'),
          v('b:value', 'y'),
          v(':', ':'),
          v('', 'empty name'),
          v('__proto__', 'p'),
          v('constructor', 'c'),
          v('123', 'numeric name'),
          v('名前 😀', 'värde\nwith newline', 'ünïcode-type'),
          v('quote"s', '{"json":true}'),
        ];
        await store.setVars(k, odd);
        expect(await store.getVars(k)).to.deep.equal(odd);
        await store.outboxPush(k, odd);
        expect(await store.outboxTake(k)).to.deep.equal(odd);
      });

      it('answers empty for odd key strings', async () => {
        for (const key of ['', '__proto__', 'a:b', '*', '😀']) {
          expect(await store.getVars(key)).to.deep.equal([]);
          expect(await store.outboxLength(key)).to.equal(0);
          expect(await store.outboxTake(key)).to.deep.equal([]);
        }
      });
    });
  });
}
