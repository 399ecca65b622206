/** The CLI's flag checks: each accepts what a user means and refuses the rest with a message. */
import { expect } from 'chai';
import { InvalidArgumentError } from 'commander';
import { apiKeyArg, hostPortArg, intArg, numberArg, timeArg, urlArg } from '../../../src/cli/options.js';

const refuses = (fn: () => unknown, message: string | RegExp): void => {
  expect(fn).to.throw(InvalidArgumentError, message);
};

describe('cli/options', () => {
  describe('apiKeyArg', () => {
    it('accepts exactly 12 characters of [A-Za-z0-9]', () => expect(apiKeyArg('abcDEF123456')).to.equal('abcDEF123456'));
    for (const bad of ['', 'abcDEF12345', 'abcDEF1234567', 'abcDEF-23456', 'abcDEF 23456', 'äbcDEF123456'])
      it(`refuses ${JSON.stringify(bad)}`, () => refuses(() => apiKeyArg(bad), 'exactly 12 characters'));
  });

  describe('intArg', () => {
    const devices = intArg(1, 20_000);
    it('accepts whole numbers within the bounds', () => {
      expect(devices('1')).to.equal(1);
      expect(devices('20000')).to.equal(20_000);
      expect(devices(' 42 ')).to.equal(42);
    });
    for (const bad of ['0', '20001', '-1', '1.5', '1e3', 'ten', '', '0x10'])
      it(`refuses ${JSON.stringify(bad)}`, () => refuses(() => devices(bad), 'from 1 to 20000'));
  });

  describe('numberArg', () => {
    it('accepts decimals; an exclusive minimum refuses the minimum itself', () => {
      expect(numberArg(0, 10, true)('0.5')).to.equal(0.5);
      refuses(() => numberArg(0, 10, true)('0'), 'greater than 0');
      expect(numberArg(0, 10)('0')).to.equal(0);
    });
    for (const bad of ['-1', '11', 'NaN', 'Infinity', '1e2', '.5', ''])
      it(`refuses ${JSON.stringify(bad)}`, () => refuses(() => numberArg(0, 10)(bad), 'from 0 to 10'));
  });

  describe('hostPortArg', () => {
    it('reads HOST:PORT, [v6]:PORT and :PORT', () => {
      expect(hostPortArg('127.0.0.1:4040')).to.deep.equal({ host: '127.0.0.1', port: 4040 });
      expect(hostPortArg('game-server.local:1')).to.deep.equal({ host: 'game-server.local', port: 1 });
      expect(hostPortArg('[::1]:65535')).to.deep.equal({ host: '::1', port: 65535 });
      expect(hostPortArg(':4041')).to.deep.equal({ host: '127.0.0.1', port: 4041 });
    });
    for (const bad of ['localhost', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', 'host:port', '::1:4040', 'a b:1', 'http://x:1'])
      it(`refuses ${JSON.stringify(bad)}`, () => refuses(() => hostPortArg(bad), 'HOST:PORT'));
  });

  describe('urlArg', () => {
    it('accepts http and https URLs, without the trailing slash', () => {
      expect(urlArg('http://127.0.0.1:4000/')).to.equal('http://127.0.0.1:4000');
      expect(urlArg('https://observer.example.com/base/')).to.equal('https://observer.example.com/base');
    });
    for (const bad of ['127.0.0.1:4000', 'ftp://x', 'not a url', 'http://x/?q=1', 'http://x/#top'])
      it(`refuses ${JSON.stringify(bad)}`, () => refuses(() => urlArg(bad), /URL/));
  });

  describe('timeArg', () => {
    const now = 1_700_000_000_000;
    const t = timeArg(() => now);
    it('reads epoch milliseconds, ISO dates and times ago', () => {
      expect(t('1699999999000')).to.equal(1_699_999_999_000);
      expect(t('2023-11-14T22:13:20Z')).to.equal(now);
      expect(t('30s')).to.equal(now - 30_000);
      expect(t('15m')).to.equal(now - 900_000);
      expect(t('2h')).to.equal(now - 7_200_000);
      expect(t('1d')).to.equal(now - 86_400_000);
    });
    for (const bad of ['yesterday', '15 minutes', '-5m', '2023-13-45', ''])
      it(`refuses ${JSON.stringify(bad)}`, () => refuses(() => t(bad), 'ISO date'));
  });
});
