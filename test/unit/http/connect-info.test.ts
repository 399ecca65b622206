/**
 * Where the dashboard tells games to connect (GET /api/connect-info): the advertise config wins, the
 * bound ports and host come next, and only a wildcard bind falls back to the request's Host header,
 * which is checked like advertise.host because it ends up in code a developer pastes into a game.
 */
import { expect } from 'chai';
import { connectAddress, forwardedHttps, hostOfHeader } from '../../../src/http/api/connect-info.js';
import { loadConfig } from '../../../src/config.js';
import { ObserverioError } from '../../../src/errors.js';

/** `s` as a regular expression matching it literally. */
const escape = (s: string): string => s.replace(/[[\]\\().*+?^$|{}]/g, '\\$&');
const bound = { tcpPort: 41234, httpPort: 41235 };
const config = (overrides: Record<string, unknown>) => loadConfig({ env: {}, overrides });
const badRequest = (fn: () => unknown, message: RegExp): void => {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'thrown').to.be.instanceOf(ObserverioError);
  expect((err as ObserverioError).code).to.equal('bad_request');
  expect((err as ObserverioError).message).to.match(message);
};

describe('connect info', () => {
  describe('connectAddress', () => {
    it('gives the bound host and the bound ports, whatever the request says', () => {
      expect(connectAddress(config({ host: '127.0.0.1', tcpPort: 0, httpPort: 0 }), bound, { headers: { host: 'elsewhere.example:80' } })).to.deep.equal({
        host: '127.0.0.1',
        tcpPort: 41234,
        httpPort: 41235,
        sdkUrl: 'ws://127.0.0.1:41235/sdk',
      });
    });
    it("bound to a wildcard address, takes the host the browser reached the dashboard at", () => {
      for (const host of ['0.0.0.0', '::']) {
        expect(connectAddress(config({ host }), bound, { headers: { host: 'game-server.lan:4000' } }), host).to.deep.include({ host: 'game-server.lan', sdkUrl: 'ws://game-server.lan:41235/sdk' });
        expect(connectAddress(config({ host }), bound, { headers: { host: '[fd00::7]:4000' } }), host).to.deep.include({ host: 'fd00::7', sdkUrl: 'ws://[fd00::7]:41235/sdk' });
      }
    });
    it('lets advertise win over the bound host, the Host header and the bound ports', () => {
      const c = config({ host: '0.0.0.0', advertise: { host: 'play.example.com', tcpPort: 14040, httpPort: 8080 } });
      expect(connectAddress(c, bound, { headers: {} })).to.deep.equal({ host: 'play.example.com', tcpPort: 14040, httpPort: 8080, sdkUrl: 'ws://play.example.com:8080/sdk' });
      expect(connectAddress(config({ advertise: { host: '::1' } }), bound, { headers: {} }).sdkUrl).to.equal('ws://[::1]:41235/sdk');
      expect(connectAddress(config({ advertise: { tcpPort: 5 } }), bound, { headers: {} })).to.deep.include({ host: '127.0.0.1', tcpPort: 5, httpPort: 41235 });
    });
  });

  describe('the browser SDK URL scheme', () => {
    it('is ws:// by default, wss:// when a proxy says the dashboard was reached over HTTPS, and advertise.tls wins over the request', () => {
      const plain = config({});
      expect(connectAddress(plain, bound, { headers: {} }).sdkUrl).to.equal('ws://127.0.0.1:41235/sdk');
      expect(connectAddress(plain, bound, { headers: { 'x-forwarded-proto': 'https' } }).sdkUrl).to.equal('wss://127.0.0.1:41235/sdk');
      expect(connectAddress(plain, bound, { headers: { forwarded: 'for=192.0.2.60;proto=https;by=203.0.113.43' } }).sdkUrl).to.equal('wss://127.0.0.1:41235/sdk');
      const c = config({ advertise: { host: 'play.example.com', httpPort: 443, tls: true } });
      expect(connectAddress(c, bound, { headers: {} })).to.deep.equal({ host: 'play.example.com', tcpPort: 41234, httpPort: 443, sdkUrl: 'wss://play.example.com:443/sdk' });
      expect(connectAddress(config({ advertise: { tls: false } }), bound, { headers: { 'x-forwarded-proto': 'https' } }).sdkUrl).to.equal('ws://127.0.0.1:41235/sdk');
      expect(connectAddress(config({ advertise: { host: '::1', tls: true } }), bound, { headers: {} }).sdkUrl).to.equal('wss://[::1]:41235/sdk');
    });
    it('reads only the first hop, in any case, and takes anything malformed, oversized or hostile as plain HTTP', () => {
      const cases: Array<[Record<string, string>, boolean]> = [
        [{ 'x-forwarded-proto': 'HTTPS' }, true],
        [{ 'x-forwarded-proto': ' https , http' }, true],
        [{ 'x-forwarded-proto': 'http, https' }, false],
        [{ 'x-forwarded-proto': 'http' }, false],
        [{ 'x-forwarded-proto': '' }, false],
        [{ 'x-forwarded-proto': 'httpsx' }, false],
        [{ 'x-forwarded-proto': 'https\r\nX-Evil: 1' }, false],
        [{ 'x-forwarded-proto': `https${' '.repeat(2000)}` }, false],
        [{ forwarded: 'proto="https"' }, true],
        [{ forwarded: 'Proto=HTTPS;for=x' }, true],
        [{ forwarded: 'for=a;proto=http, for=b;proto=https' }, false],
        [{ forwarded: 'proto' }, false],
        [{ forwarded: '==;;,,' }, false],
        [{ forwarded: `proto=https;${'x'.repeat(2000)}` }, false],
        // X-Forwarded-Proto, when present, is the one read.
        [{ 'x-forwarded-proto': 'http', forwarded: 'proto=https' }, false],
      ];
      for (const [headers, https] of cases) expect(forwardedHttps(headers), JSON.stringify(headers).slice(0, 80)).to.equal(https);
    });
  });

  describe('hostOfHeader', () => {
    it('reads name, name:port, [v6] and [v6]:port', () => {
      expect(hostOfHeader('example.com')).to.equal('example.com');
      expect(hostOfHeader('10.1.2.3:4000')).to.equal('10.1.2.3');
      expect(hostOfHeader('[::1]')).to.equal('::1');
      expect(hostOfHeader('[2001:db8::1]:443')).to.equal('2001:db8::1');
    });
    it('refuses a missing, malformed, oversized or hostile Host header with a clear 400', () => {
      badRequest(() => hostOfHeader(undefined), /^missing Host header: .*set advertise\.host/);
      badRequest(() => hostOfHeader(''), /^missing Host header/);
      badRequest(() => hostOfHeader('a'.repeat(301)), /^Host header longer than 300 characters/);
      const cases: Array<[string, RegExp]> = [
        ['::1', /is not host\[:port\]/],
        ['example.com:', /is not host\[:port\]/],
        ['example.com:123456', /is not host\[:port\]/],
        ['[::1', /is not host\[:port\]/],
        ['[example.com]:80', /holds no IPv6 address between its brackets/],
        ['[fe80::1%eth0]:80', /must not carry an IPv6 zone id/],
        [':4000', /must not be empty/],
        ['0.0.0.0:4000', /is a wildcard bind address/],
        ['[::]:4000', /is a wildcard bind address/],
        ["x');require('child_process').exec('rm -rf ~');('", /must be an IPv4 address/],
        ['evil"host', /must be an IPv4 address/],
        ['a b', /must be an IPv4 address/],
        ['host\r\nX-Evil: 1', /is not host\[:port\]/],
        ['host\r\nevil', /must be an IPv4 address/],
        ['user@host', /must be an IPv4 address/],
        ['ex%61mple.com', /must be an IPv4 address/],
      ];
      for (const [header, message] of cases) {
        badRequest(() => hostOfHeader(header), message);
        badRequest(() => hostOfHeader(header), /; set advertise\.host$/);
        // The header is quoted as JSON, so a line break or a quote in it cannot forge the message.
        badRequest(() => hostOfHeader(header), new RegExp(`^Host header ${escape(JSON.stringify(header))}: `));
      }
    });
  });
});
