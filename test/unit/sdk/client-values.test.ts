/**
 * The SDK's local rules, without a socket: defaults, typed getters, setVars from objects and Maps,
 * the types that stick to a name, label checks, and the options a background connect refuses.
 */
import { expect } from 'chai';
import { Client, createClient, SdkError, varInputs, type ConnectOptions } from '../../../src/sdk/index.js';

const KEY = 'AbCdEf012345';
/** A client that never connects: nothing in these tests calls start(). */
const offline = (opts: Partial<ConnectOptions> = {}): Client => new Client({ apiKey: KEY, port: 1, ...opts });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(SdkError);
    return (err as SdkError).code;
  }
  throw new Error('expected an SdkError');
}

describe('sdk client values (no connection)', () => {
  describe('varInputs', () => {
    it('takes an array, an object or a Map, values or {value, type}', () => {
      expect(varInputs([{ name: 'a', value: 1 }])).to.deep.equal([{ name: 'a', value: 1 }]);
      expect(varInputs({ a: 1, b: { value: 2, type: 'float' }, c: 'x' })).to.deep.equal([
        { name: 'a', value: 1 },
        { name: 'b', value: 2, type: 'float' },
        { name: 'c', value: 'x' },
      ]);
      expect(varInputs(new Map<string, number | { value: boolean }>([['a', 1], ['b', { value: true }]]))).to.deep.equal([
        { name: 'a', value: 1 },
        { name: 'b', value: true },
      ]);
    });

    it('reads only own keys, so nothing on a prototype becomes a variable', () => {
      const proto = { inherited: 1 };
      const obj = Object.create(proto) as Record<string, number>;
      obj.own = 2;
      expect(varInputs(obj)).to.deep.equal([{ name: 'own', value: 2 }]);
      // JSON.parse makes "__proto__" an own key: an ordinary (odd) variable name, not a prototype.
      expect(varInputs(JSON.parse('{"__proto__": 3}') as Record<string, number>)).to.deep.equal([{ name: '__proto__', value: 3 }]);
    });

    it('refuses a non-object and a non-string type', () => {
      expect(codeOf(() => varInputs(null as unknown as []))).to.equal('bad_var');
      expect(codeOf(() => varInputs({ a: { value: 1, type: 5 as unknown as string } }))).to.equal('bad_var');
    });
  });

  describe('defaults and getters', () => {
    it('the getters return the defaults before any connection, and the fallback for what is unknown or not of the type', () => {
      const c = offline({ defaults: { enemy_speed: 1.5, god_mode: false, title: 'Boss', spawn_ms: { value: 800, type: 'float' } } });
      expect(c.getNumber('enemy_speed', 9)).to.equal(1.5);
      expect(c.getBool('god_mode', true)).to.equal(false);
      expect(c.getString('title', '?')).to.equal('Boss');
      expect(c.getNumber('spawn_ms', 0)).to.equal(800);
      expect(c.getNumber('missing', 7)).to.equal(7);
      expect(c.getBool('missing', true)).to.equal(true);
      expect(c.getString('missing', 'd')).to.equal('d');
      // A value that is not a number / boolean gives the fallback rather than NaN.
      expect(c.getNumber('title', 3)).to.equal(3);
      expect(c.getBool('title', true)).to.equal(true);
      expect(c.getString('enemy_speed', '')).to.equal('1.5');
      expect(c.getAll()).to.deep.equal({ enemy_speed: 1.5, god_mode: false, title: 'Boss', spawn_ms: 800 });
    });

    it('a bad default throws bad_var when the client is made, not later', () => {
      expect(codeOf(() => offline({ defaults: { speed: NaN } }))).to.equal('bad_var');
      expect(codeOf(() => offline({ defaults: [{ name: '', value: 1 }] }))).to.equal('bad_var');
      expect(codeOf(() => offline({ types: { speed: '' } }))).to.equal('bad_var');
    });

    it('setVar changes what the getters return', () => {
      const c = offline({ defaults: { speed: 1 } });
      c.setVar('speed', 4);
      expect(c.getNumber('speed', 0)).to.equal(4);
      c.setVars({ speed: 5, fog: true });
      c.setVars(new Map([['title', 'x']]));
      expect(c.getAll()).to.deep.equal({ speed: 5, fog: true, title: 'x' });
    });
  });

  describe('types', () => {
    it('a whole number after a float keeps the float type; a fraction after an integer becomes a float', () => {
      const c = offline();
      c.setVar('spawn_ms', 800);
      expect(typeOf(c, 'spawn_ms')).to.equal('integer');
      c.setVar('spawn_ms', 400.5);
      expect(typeOf(c, 'spawn_ms')).to.equal('float');
      c.setVar('spawn_ms', 800);
      expect(typeOf(c, 'spawn_ms')).to.equal('float');
      expect(c.get('spawn_ms')).to.equal(800);
    });

    it('a type from defaults, from the types option or given to setVar sticks to the name', () => {
      const c = offline({ defaults: { spawn_ms: { value: 800, type: 'float' } }, types: { lives: 'float' } });
      expect(typeOf(c, 'spawn_ms')).to.equal('float');
      c.setVar('spawn_ms', 900);
      expect(typeOf(c, 'spawn_ms')).to.equal('float');
      c.setVar('lives', 3);
      expect(typeOf(c, 'lives')).to.equal('float');
      c.setVar('tint', '#fff', 'color');
      c.setVar('tint', '#000');
      expect(typeOf(c, 'tint')).to.equal('color');
      // Without a declared type, a string after a number is a string: types are inferred per value.
      c.setVar('mood', 1);
      c.setVar('mood', 'happy');
      expect(typeOf(c, 'mood')).to.equal('string');
    });
  });

  describe('labels and options', () => {
    it('checks labels locally and keeps them in the given order', () => {
      const c = offline({ labels: { platform: 'android', build: '1.4.2' } });
      expect(c.labels).to.deep.equal({ platform: 'android', build: '1.4.2' });
      expect(Object.keys(c.labels ?? {})).to.deep.equal(['platform', 'build']);
      expect(codeOf(() => offline({ labels: { '1build': 'x' } }))).to.equal('bad_labels');
      expect(codeOf(() => offline({ labels: { build: '1.4.*' } }))).to.equal('bad_labels');
      expect(codeOf(() => offline({ labels: { build: 14 as unknown as string } }))).to.equal('bad_labels');
      expect(codeOf(() => offline({ labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }))).to.equal('bad_labels');
      expect(codeOf(() => offline().setLabels({ 'a b': 'x' }))).to.equal('bad_labels');
    });

    it('confirmRemoteVars defaults to true, and to false for a client with defaults or labels', () => {
      expect(confirms(offline())).to.equal(true);
      expect(confirms(offline({ defaults: { a: 1 } }))).to.equal(false);
      expect(confirms(offline({ labels: { a: 'b' } }))).to.equal(false);
      expect(confirms(offline({ labels: { a: 'b' }, confirmRemoteVars: true }))).to.equal(true);
    });

    it('a background client needs reconnect, and starts only once', async () => {
      expect(codeOf(() => createClient({ apiKey: KEY, port: 1, reconnect: false }))).to.equal('bad_option');
      expect(codeOf(() => createClient({ apiKey: 'short', port: 1 }))).to.equal('bad_api_key');
      const c = createClient({ apiKey: KEY, host: '127.0.0.1', port: 1, reconnect: { initialMs: 60_000, maxMs: 60_000 } });
      expect(codeOf(() => c.startInBackground())).to.equal('bad_option');
      let rejected: unknown = null;
      await c.start().catch((err: unknown) => (rejected = err));
      expect(rejected).to.be.instanceOf(SdkError).with.property('code', 'bad_option');
      await c.close();
    });
  });
});

function typeOf(c: Client, name: string): string | undefined {
  return c.typeOf(name);
}

function confirms(c: Client): boolean {
  return (c as unknown as { o: { confirmRemoteVars: boolean } }).o.confirmRemoteVars;
}
