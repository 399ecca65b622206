import { expect } from 'chai';
import {
  DEFAULT_MAX_LINE_BYTES,
  checkApiKey,
  checkDeviceId,
  decodeServerLine,
  decodeVarsPayload,
  encodeLogs,
  encodeLogsJson,
  encodeVars,
  encodeVerify,
  inferType,
  jsonBudget,
  toWireVar,
  typedValue,
} from '../../../src/sdk/codec.js';
import { SdkError } from '../../../src/sdk/errors.js';
import { parseLine } from '../../../src/tcp/protocol.js';

const KEY = 'AbCdEf012345';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(SdkError);
    return (err as SdkError).code;
  }
  throw new Error('expected an SdkError');
}

describe('sdk codec', () => {
  describe('checkApiKey / checkDeviceId', () => {
    it('accept the daemon formats', () => {
      checkApiKey(KEY);
      checkDeviceId('pixel-8.qa_1');
    });
    it('reject anything else with the daemon codes', () => {
      for (const k of ['', 'short', `${KEY}x`, 'AbCdEf01234-', 42, undefined]) expect(codeOf(() => checkApiKey(k))).to.equal('bad_api_key');
      for (const d of ['', 'a b', 'a:b', 'x'.repeat(65), null]) expect(codeOf(() => checkDeviceId(d))).to.equal('bad_device_id');
    });
  });

  describe('inferType', () => {
    it('tells integers, floats, booleans and strings apart', () => {
      expect(inferType(-1)).to.equal('integer');
      expect(inferType(0)).to.equal('integer');
      expect(inferType(1.5)).to.equal('float');
      expect(inferType(true)).to.equal('boolean');
      expect(inferType('-1')).to.equal('string');
    });
  });

  describe('toWireVar', () => {
    it('sends values as strings, with the inferred or given type', () => {
      expect(toWireVar({ name: 'speed', value: -1 })).to.deep.equal({ name: 'speed', type: 'integer', value: '-1' });
      expect(toWireVar({ name: 'g', value: 9.81 })).to.deep.equal({ name: 'g', type: 'float', value: '9.81' });
      expect(toWireVar({ name: 'god', value: false })).to.deep.equal({ name: 'god', type: 'boolean', value: 'false' });
      expect(toWireVar({ name: 'ratio', value: 2, type: 'float' })).to.deep.equal({ name: 'ratio', type: 'float', value: '2' });
    });
    it('rejects what the daemon would reject as bad_shape', () => {
      expect(codeOf(() => toWireVar({ name: '', value: 1 }))).to.equal('bad_var');
      expect(codeOf(() => toWireVar({ name: 'x'.repeat(129), value: 1 }))).to.equal('bad_var');
      expect(codeOf(() => toWireVar({ name: 'a\tb', value: 1 }))).to.equal('bad_var');
      expect(codeOf(() => toWireVar({ name: 'a', value: NaN }))).to.equal('bad_var');
      expect(codeOf(() => toWireVar({ name: 'a', value: Infinity }))).to.equal('bad_var');
      expect(codeOf(() => toWireVar({ name: 'a', value: 1, type: '' }))).to.equal('bad_var');
      expect(codeOf(() => toWireVar({ name: 'a', value: 1, type: 't'.repeat(33) }))).to.equal('bad_var');
      expect(codeOf(() => toWireVar({ name: 'a', value: null as unknown as string }))).to.equal('bad_var');
    });
  });

  describe('typedValue', () => {
    it('reads numbers and booleans by type and leaves the rest as strings', () => {
      expect(typedValue('integer', '-1')).to.equal(-1);
      expect(typedValue('float', ' 2.5 ')).to.equal(2.5);
      expect(typedValue('Int', '7')).to.equal(7);
      expect(typedValue('boolean', 'TRUE')).to.equal(true);
      expect(typedValue('bool', '0')).to.equal(false);
      expect(typedValue('string', '42')).to.equal('42');
      expect(typedValue('color', '#fff')).to.equal('#fff');
    });
    it('keeps a value that does not parse as its type as a string instead of NaN', () => {
      expect(typedValue('integer', '')).to.equal('');
      expect(typedValue('float', 'fast')).to.equal('fast');
      expect(typedValue('boolean', 'maybe')).to.equal('maybe');
    });
  });

  describe('encoders', () => {
    it('build the lines the daemon parses', () => {
      expect(encodeVerify(KEY)).to.equal(`v:${KEY}`);
      expect(encodeVerify(KEY, null)).to.equal(`v:${KEY}`);
      expect(encodeVerify(KEY, 'dev-1')).to.equal(`v:${KEY}:dev-1`);
      const vars = [{ name: 'speed', type: 'integer', value: '-1' }];
      expect(parseLine(encodeVars(KEY, vars))).to.deep.equal({ kind: 'vars', apiKey: KEY, vars });
      const logs = [{ message: 'é 🎮', level: 'info', timestamp: 1 }];
      expect(parseLine(encodeLogs(KEY, logs))).to.deep.equal({ kind: 'logs', apiKey: KEY, logs });
      expect(encodeLogsJson(KEY, [JSON.stringify(logs[0])])).to.equal(encodeLogs(KEY, logs));
    });
    it('compute a JSON budget whose base64 line never exceeds the limit', () => {
      for (const max of [256, 1000, 1001, 1002, 1003, DEFAULT_MAX_LINE_BYTES]) {
        const budget = jsonBudget(max);
        const line = encodeLogsJson(KEY, [JSON.stringify({ message: 'x'.repeat(budget - 2 - 15) })]);
        expect(Buffer.byteLength(line), String(max)).to.be.at.most(max);
        expect(Buffer.byteLength(line), String(max)).to.be.greaterThan(max - 8);
      }
    });
  });

  describe('decodeServerLine', () => {
    it('reads OK, errors and pushed variables', () => {
      expect(decodeServerLine('OK')).to.deep.equal({ kind: 'ok' });
      expect(decodeServerLine('e:unknown_api_key:API key is not registered')).to.deep.equal({ kind: 'error', code: 'unknown_api_key', message: 'API key is not registered' });
      expect(decodeServerLine('e:bad_shape:vars[0]: a:b')).to.deep.equal({ kind: 'error', code: 'bad_shape', message: 'vars[0]: a:b' });
      expect(decodeServerLine('e:internal')).to.deep.equal({ kind: 'error', code: 'internal', message: '' });
      const b64 = Buffer.from('[{"name":"speed","type":"integer","value":"3"}]').toString('base64');
      expect(decodeServerLine(`v:${KEY}:${b64}`)).to.deep.equal({ kind: 'vars', apiKey: KEY, vars: [{ name: 'speed', type: 'integer', value: '3' }] });
    });
    it('reads numbers and booleans as strings, like the daemon', () => {
      const b64 = Buffer.from('[{"name":"a","type":"integer","value":3},{"name":"b","type":"boolean","value":true}]').toString('base64');
      expect(decodeVarsPayload(b64)).to.deep.equal([
        { name: 'a', type: 'integer', value: '3' },
        { name: 'b', type: 'boolean', value: 'true' },
      ]);
    });
    it('reports broken payloads and passes unknown lines through', () => {
      expect(decodeServerLine(`v:${KEY}`).kind).to.equal('invalid');
      expect(decodeServerLine(`v:short:W10=`).kind).to.equal('invalid');
      expect(decodeServerLine(`v:${KEY}:***`).kind).to.equal('invalid');
      expect(decodeServerLine(`v:${KEY}:${Buffer.from('nope').toString('base64')}`).kind).to.equal('invalid');
      expect(decodeServerLine(`v:${KEY}:${Buffer.from('{}').toString('base64')}`).kind).to.equal('invalid');
      expect(decodeServerLine(`v:${KEY}:${Buffer.from('[{"name":"a","type":"string","value":null}]').toString('base64')}`).kind).to.equal('invalid');
      expect(decodeServerLine('e:').kind).to.equal('invalid');
      expect(decodeServerLine('p:ping')).to.deep.equal({ kind: 'unknown', line: 'p:ping' });
    });
  });
});
