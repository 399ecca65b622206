import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkWorkers, ConfigError, hostProblem, isWildcardHost, loadConfig } from '../../src/config.js';
import { tempDir } from '../helpers/processes.js';

describe('config', () => {
  describe('loadConfig', () => {
    it('has working defaults (embedded backends, DESIGN.md ports)', () => {
      const c = loadConfig({ env: {} });
      expect(c).to.include({ host: '127.0.0.1', tcpPort: 4040, httpPort: 4000, redisUrl: null, meiliUrl: null, adminToken: null });
      expect(c.tcp.maxLineBytes).to.equal(1024 * 1024);
      expect(c.tcp.verifyTimeoutMs).to.equal(10_000);
      expect(Object.isFrozen(c) && Object.isFrozen(c.tcp)).to.equal(true);
    });
    it('applies the NODE_ENV file, then environment variables, then explicit overrides', () => {
      const c = loadConfig({
        env: { NODE_ENV: 'test', OBSERVERIO_TCP_PORT: '5050', REDIS_URL: 'redis://127.0.0.1:6390', LOG_LEVEL: 'debug', OBSERVERIO_ADMIN_TOKEN: 'x'.repeat(32) },
        overrides: { httpPort: 6060 },
      });
      expect(c).to.include({ tcpPort: 5050, httpPort: 6060, redisUrl: 'redis://127.0.0.1:6390', logLevel: 'debug', adminToken: 'x'.repeat(32) });
      expect(c.logs.flushDelayMs).to.equal(20);
    });
    it('caches sessions for a second by default, may turn it off, and rejects a bad or long TTL, naming the key', () => {
      expect(loadConfig({ env: {} }).http.sessionCacheMs).to.equal(1000);
      expect(loadConfig({ env: {}, overrides: { http: { sessionCacheMs: 0 } } }).http.sessionCacheMs).to.equal(0);
      for (const bad of [-1, 1.5, 60_001, '1000', null])
        expect(() => loadConfig({ env: {}, overrides: { http: { sessionCacheMs: bad } } }), JSON.stringify(bad)).to.throw(ConfigError, /http\.sessionCacheMs/);
    });
    it('gives connection actors a small restart backoff, which may be turned off, and rejects a bad one', () => {
      expect(loadConfig({ env: {} }).tcp.restartBackoff).to.deep.equal({ initialMs: 10, maxMs: 1000, resetAfterMs: 2000 });
      expect(loadConfig({ env: {}, overrides: { tcp: { restartBackoff: null } } }).tcp.restartBackoff).to.equal(null);
      const bad: Array<[unknown, RegExp]> = [
        [{ initialMs: 100, maxMs: 50 }, /tcp\.restartBackoff\.maxMs: must be at least initialMs/],
        [{ initialMs: 0 }, /tcp\.restartBackoff\.initialMs/],
        [{ maxMS: 5 }, /tcp\.restartBackoff: Unrecognized key/i],
        [{ resetAfterMs: 1.5 }, /tcp\.restartBackoff\.resetAfterMs/],
        [5, /tcp\.restartBackoff/],
      ];
      for (const [restartBackoff, message] of bad) {
        expect(() => loadConfig({ env: {}, overrides: { tcp: { restartBackoff } } }), JSON.stringify(restartBackoff)).to.throw(ConfigError, message);
      }
    });
    it('runs one process unless workers says more (OBSERVERIO_WORKERS), bounded, and more only with Redis', () => {
      expect(loadConfig({ env: {} }).workers).to.equal(1);
      expect(loadConfig({ env: { OBSERVERIO_WORKERS: '4', REDIS_URL: 'redis://127.0.0.1:6390' } }).workers).to.equal(4);
      for (const v of ['0', '65', '-1', '1.5', 'two', '', ' 2']) expect(() => loadConfig({ env: { OBSERVERIO_WORKERS: v } }), v).to.throw(ConfigError, /^OBSERVERIO_WORKERS: expected a number of worker processes 1-64/);
      for (const workers of [0, 65, 2.5, '2']) expect(() => loadConfig({ env: {}, overrides: { workers } }), String(workers)).to.throw(ConfigError, /workers/);
      expect(() => checkWorkers(loadConfig({ env: { OBSERVERIO_WORKERS: '2' } }))).to.throw(ConfigError, /^workers: 2 worker processes need Redis \(set REDIS_URL or --redis-url\)/);
      expect(() => checkWorkers(loadConfig({ env: { OBSERVERIO_WORKERS: '2', REDIS_URL: 'redis://127.0.0.1:6390' } }))).to.not.throw();
      expect(() => checkWorkers(loadConfig({ env: {} }))).to.not.throw();
    });
    it('advertises the bound host and ports unless advertise says otherwise (OBSERVERIO_ADVERTISED_*)', () => {
      expect(loadConfig({ env: {} }).advertise).to.deep.equal({ host: null, tcpPort: null, httpPort: null, tls: null });
      const c = loadConfig({ env: { OBSERVERIO_ADVERTISED_HOST: 'games.example.com', OBSERVERIO_ADVERTISED_TCP_PORT: '14040', OBSERVERIO_ADVERTISED_HTTP_PORT: '443' } });
      expect(c.advertise).to.deep.equal({ host: 'games.example.com', tcpPort: 14040, httpPort: 443, tls: null });
      expect(Object.isFrozen(c.advertise)).to.equal(true);
      // An empty variable means "derive it", as REDIS_URL= means embedded; the file's other keys stay.
      const partial = loadConfig({ env: { OBSERVERIO_ADVERTISED_HOST: '', OBSERVERIO_ADVERTISED_HTTP_PORT: '' }, overrides: { advertise: { tcpPort: 7 } } });
      expect(partial.advertise).to.deep.equal({ host: null, tcpPort: 7, httpPort: null, tls: null });
      for (const host of ['10.0.0.5', '::1', 'fe80::2', 'localhost', 'a-b.c_d.example.', 'x'.repeat(63)]) expect(loadConfig({ env: { OBSERVERIO_ADVERTISED_HOST: host } }).advertise.host, host).to.equal(host);
    });
    it('rejects an advertised host or port that devices could not connect to, naming the key', () => {
      const hosts: Array<[string, RegExp]> = [
        ['0.0.0.0', /advertise\.host: is a wildcard bind address/],
        ['::', /advertise\.host: is a wildcard bind address/],
        ['[::1]', /advertise\.host: must be an IPv6 address without brackets/],
        ['fe80::1%eth0', /advertise\.host: must not carry an IPv6 zone id/],
        ['http://games.example.com', /advertise\.host: must be a host name or address, without a scheme/],
        ['games.example.com:4040', /advertise\.host: must not carry a port/],
        ['games.example.com/sdk', /advertise\.host: must be an IPv4 address, an IPv6 address or a host name/],
        ["x'); process.exit(1); ('", /advertise\.host: must be an IPv4 address/],
        ['evil"host', /advertise\.host: must be an IPv4 address/],
        ['two words', /advertise\.host: must be an IPv4 address/],
        ['line\nbreak', /advertise\.host: must be an IPv4 address/],
        ['<script>', /advertise\.host: must be an IPv4 address/],
        ['-dash.example', /advertise\.host: must be an IPv4 address/],
        ['a..b', /advertise\.host: must be an IPv4 address/],
        ['999.1.1.1', /advertise\.host: must be an IPv4 address/],
        ['1.2.3', /advertise\.host: must be an IPv4 address/],
        ['x'.repeat(64), /advertise\.host: must be an IPv4 address/],
        [`${'a.'.repeat(127)}ab`, /advertise\.host: must be at most 253 characters/],
      ];
      for (const [host, message] of hosts) expect(() => loadConfig({ env: {}, overrides: { advertise: { host } } }), JSON.stringify(host)).to.throw(ConfigError, message);
      expect(() => loadConfig({ env: {}, overrides: { advertise: { host: '' } } })).to.throw(ConfigError, /advertise\.host: must not be empty/);
      for (const tcpPort of [0, 65536, -1, 1.5, '4040', true]) expect(() => loadConfig({ env: {}, overrides: { advertise: { tcpPort } } }), String(tcpPort)).to.throw(ConfigError, /advertise\.tcpPort/);
      expect(() => loadConfig({ env: {}, overrides: { advertise: { hots: 'x' } } })).to.throw(ConfigError, /advertise: Unrecognized key/i);
      expect(() => loadConfig({ env: {}, overrides: { advertise: { host: 5 } } })).to.throw(ConfigError, /advertise\.host: Invalid input: expected string/);
      for (const v of ['0', '65536', '-1', 'abc', '4040 ', '1e3', '9'.repeat(400)])
        expect(() => loadConfig({ env: { OBSERVERIO_ADVERTISED_TCP_PORT: v } }), v).to.throw(ConfigError, /^OBSERVERIO_ADVERTISED_TCP_PORT: expected a port number 1-65535/);
      expect(() => loadConfig({ env: { OBSERVERIO_ADVERTISED_HTTP_PORT: 'x' } })).to.throw(ConfigError, /^OBSERVERIO_ADVERTISED_HTTP_PORT: expected a port number 1-65535/);
      expect(() => loadConfig({ env: { OBSERVERIO_ADVERTISED_HOST: '0.0.0.0' } })).to.throw(ConfigError, /advertise\.host: is a wildcard bind address/);
    });
    it('takes advertise.tls as true, false or null (OBSERVERIO_ADVERTISED_TLS), and refuses anything else', () => {
      expect(loadConfig({ env: { OBSERVERIO_ADVERTISED_TLS: 'true' } }).advertise.tls).to.equal(true);
      expect(loadConfig({ env: { OBSERVERIO_ADVERTISED_TLS: 'false' } }).advertise.tls).to.equal(false);
      // Empty: derived from the request; CLI flags and other overrides come last, as for every key.
      expect(loadConfig({ env: { OBSERVERIO_ADVERTISED_TLS: '' } }).advertise.tls).to.equal(null);
      expect(loadConfig({ env: { OBSERVERIO_ADVERTISED_TLS: 'false' }, overrides: { advertise: { tls: true } } }).advertise.tls).to.equal(true);
      expect(loadConfig({ env: {}, overrides: { advertise: { tls: false } } }).advertise).to.deep.equal({ host: null, tcpPort: null, httpPort: null, tls: false });
      for (const v of ['1', 'yes', 'TRUE', ' true', 'wss', 'x'.repeat(10_000)])
        expect(() => loadConfig({ env: { OBSERVERIO_ADVERTISED_TLS: v } }), v.slice(0, 20)).to.throw(ConfigError, /^OBSERVERIO_ADVERTISED_TLS: expected true, false or empty/);
      for (const tls of ['true', 1, 'wss', {}]) expect(() => loadConfig({ env: {}, overrides: { advertise: { tls } } }), String(tls)).to.throw(ConfigError, /advertise\.tls: Invalid input: expected boolean/);
    });
    it('memory: the heap reduction after a busy spell is on at 5% by default, can be turned off, and refuses malformed values', () => {
      expect(loadConfig({ env: {} }).memory).to.deep.equal({ reduceAfterBusySpell: true, quietUtilization: 0.05 });
      expect(loadConfig({ env: {}, overrides: { memory: { reduceAfterBusySpell: false, quietUtilization: 0.05 } } }).memory.reduceAfterBusySpell).to.equal(false);
      for (const bad of [{ reduceAfterBusySpell: 'yes', quietUtilization: 0.05 }, { reduceAfterBusySpell: true, quietUtilization: 1.5 }, { reduceAfterBusySpell: true, quietUtilization: -0.1 }, { reduceAfterBusySpell: true, quietUtilization: '0.05' }, { reduceAfterBusySpell: true, quietUtilization: 0.05, extra: 1 }])
        expect(() => loadConfig({ env: {}, overrides: { memory: bad } }), JSON.stringify(bad)).to.throw(ConfigError, /memory(\.|: Unrecognized key)/);
    });
    it('tells wildcard bind addresses and host names apart', () => {
      for (const h of ['0.0.0.0', '::', '[::]', '::0', '0:0:0:0:0:0:0:0']) expect(isWildcardHost(h), h).to.equal(true);
      for (const h of ['127.0.0.1', '::1', 'localhost', '0.0.0.1', '']) expect(isWildcardHost(h), h).to.equal(false);
      expect(hostProblem('game-server.lan')).to.equal(null);
    });
    it('rejects malformed environment values with the variable named', () => {
      expect(() => loadConfig({ env: { OBSERVERIO_TCP_PORT: '80a' } })).to.throw(ConfigError, /OBSERVERIO_TCP_PORT/);
      expect(() => loadConfig({ env: { OBSERVERIO_HTTP_PORT: '70000' } })).to.throw(ConfigError, /httpPort/);
      expect(() => loadConfig({ env: { REDIS_URL: 'http://nope' } })).to.throw(ConfigError, /redisUrl: must start with redis:\/\//);
      expect(() => loadConfig({ env: { MEILI_URL: 'localhost:7700' } })).to.throw(ConfigError, /meiliUrl/);
      expect(() => loadConfig({ env: { LOG_LEVEL: 'loud' } })).to.throw(ConfigError, /logLevel/);
      expect(() => loadConfig({ env: { OBSERVERIO_ADMIN_TOKEN: 'short' } })).to.throw(ConfigError, /adminToken: must be at least 16/);
      expect(() => loadConfig({ env: { NODE_ENV: '../../etc/passwd' } })).to.throw(ConfigError, /NODE_ENV/);
    });
    it('rejects unknown keys, wrong types and broken files, naming every problem', () => {
      const dir = tempDir();
      try {
        mkdirSync(dir.path, { recursive: true });
        writeFileSync(join(dir.path, 'default.json'), JSON.stringify({ ...loadConfig({ env: {} }), tcpPortt: 1, tcp: { maxLineBytes: -1 } }));
        const err = (() => {
          try {
            loadConfig({ env: {}, configDir: dir.path });
          } catch (e) {
            return e as Error;
          }
        })();
        expect(err).to.be.instanceOf(ConfigError);
        expect(err!.message).to.match(/tcpPortt/).and.match(/tcp\.maxLineBytes/).and.match(/tcp: .*|tcp\.verifyTimeoutMs/);
        writeFileSync(join(dir.path, 'default.json'), '{ not json');
        expect(() => loadConfig({ env: {}, configDir: dir.path })).to.throw(ConfigError, /invalid JSON/);
        writeFileSync(join(dir.path, 'default.json'), '[1,2]');
        expect(() => loadConfig({ env: {}, configDir: dir.path })).to.throw(ConfigError, /not a JSON object/);
      } finally {
        dir.remove();
      }
    });
  });
});
