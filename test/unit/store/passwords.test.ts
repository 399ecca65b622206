import { expect } from 'chai';
import { API_KEY_RE } from '../../../src/model.js';
import { emailKey, hashPassword, newApiKey, newToken, verifyAgainstDummy, verifyPassword } from '../../../src/store/passwords.js';

describe('passwords', () => {
  describe('hashPassword', () => {
    it('writes a self-describing salted scrypt hash', async () => {
      const a = await hashPassword('hunter2');
      const b = await hashPassword('hunter2');
      expect(a).to.match(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
      expect(a).to.not.equal(b);
      expect(a).to.not.include('hunter2');
    });

    it('records other parameters so they can change later', async () => {
      const h = await hashPassword('pw', { N: 1024, r: 4, p: 2 });
      expect(h).to.match(/^scrypt\$1024\$4\$2\$/);
      expect(await verifyPassword('pw', h)).to.equal(true);
    });
  });

  describe('verifyPassword', () => {
    it('accepts the password and nothing else', async () => {
      const h = await hashPassword('correct horse');
      expect(await verifyPassword('correct horse', h)).to.equal(true);
      expect(await verifyPassword('correct horse ', h)).to.equal(false);
      expect(await verifyPassword('Correct horse', h)).to.equal(false);
      expect(await verifyPassword('', h)).to.equal(false);
    });

    it('treats composed and decomposed accents as the same password', async () => {
      const h = await hashPassword('caf\u00e9');
      expect(await verifyPassword('cafe\u0301', h)).to.equal(true);
    });

    it('never matches a malformed or tampered hash, and does not try absurd costs', async () => {
      const good = await hashPassword('pw');
      const [, , , , salt, key] = good.split('$');
      const bad = [
        '',
        'pw',
        'bcrypt$16384$8$1$' + salt + '$' + key,
        `scrypt$16384$8$1$${salt}`,
        `scrypt$1000$8$1$${salt}$${key}`, // N not a power of two
        `scrypt$${2 ** 30}$8$1$${salt}$${key}`, // a gigabyte-scale cost
        `scrypt$16384$999$1$${salt}$${key}`,
        `scrypt$16384$8$1$$${key}`,
        `scrypt$16384$8$1$${salt}$AAAA`,
        `scrypt$-1$8$1$${salt}$${key}`,
      ];
      const t0 = Date.now();
      for (const h of bad) expect(await verifyPassword('pw', h), h).to.equal(false);
      expect(Date.now() - t0).to.be.below(1000);
    });
  });

  describe('verifyAgainstDummy', () => {
    it('is false and costs about one verify', async () => {
      // CPU time (scrypt runs on libuv's pool, counted in the process's usage), not wall time: a busy
      // machine stretches wall time by any factor, while the work done per verify stays the same.
      const cpuOf = async (fn: () => Promise<unknown>): Promise<number> => {
        const u0 = process.cpuUsage();
        await fn();
        const u = process.cpuUsage(u0);
        return u.user + u.system;
      };
      await verifyAgainstDummy('warm-up');
      const h = await hashPassword('x');
      const real = await cpuOf(() => verifyPassword('y', h));
      let dummy = 0;
      const dummyCpu = await cpuOf(async () => (dummy = Number(await verifyAgainstDummy('y'))));
      expect(dummy).to.equal(0);
      expect(dummyCpu).to.be.greaterThan(real * 0.4);
    });
  });

  describe('newApiKey', () => {
    it('draws 12 characters of [A-Za-z0-9], all of them, about evenly', () => {
      const counts = new Map<string, number>();
      const keys = new Set<string>();
      const n = 10_000;
      for (let i = 0; i < n; i++) {
        const k = newApiKey();
        expect(k).to.match(API_KEY_RE);
        keys.add(k);
        for (const c of k) counts.set(c, (counts.get(c) ?? 0) + 1);
      }
      expect(keys.size).to.equal(n);
      expect(counts.size).to.equal(62);
      // 120000 draws over 62 symbols: expected about 1935 each, standard deviation about 44.
      const expected = (n * 12) / 62;
      for (const [c, count] of counts) expect(Math.abs(count - expected), c).to.be.below(300);
    });
  });

  describe('newToken', () => {
    it('is 256 random bits in base64url', () => {
      const tokens = new Set(Array.from({ length: 1000 }, () => newToken()));
      expect(tokens.size).to.equal(1000);
      for (const t of tokens) {
        expect(t).to.match(/^[A-Za-z0-9_-]{43}$/);
        expect(Buffer.from(t, 'base64url')).to.have.length(32);
      }
    });
  });

  describe('emailKey', () => {
    it('folds case and Unicode composition', () => {
      expect(emailKey('User@Example.COM')).to.equal('user@example.com');
      expect(emailKey('J\u00c9r\u00f4me@x.fr')).to.equal(emailKey('Je\u0301ro\u0302me@X.FR'));
    });
  });
});
