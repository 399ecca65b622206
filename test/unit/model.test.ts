import { expect } from 'chai';
import {
  canonicalVarValue,
  inferVarType,
  isVarName,
  isVarType,
  MAX_VAR_NAME,
  MAX_VAR_TYPE,
  varBoolean,
  varKind,
  varNameProblem,
  varNumber,
  varTypeProblem,
  wireValue,
} from '../../src/model.js';

// One rule set for the TCP parser, the change service, the HTTP schemas and the SDK codec.
describe('model: variable rules', () => {
  describe('varNameProblem / varTypeProblem', () => {
    it('accepts 1 up to the maximum printable characters, unicode included', () => {
      expect(varNameProblem('a')).to.equal(null);
      expect(varNameProblem('n'.repeat(MAX_VAR_NAME))).to.equal(null);
      expect(varNameProblem('vitesse du héros ✓')).to.equal(null);
      expect(varTypeProblem('t'.repeat(MAX_VAR_TYPE))).to.equal(null);
    });

    it('names what is wrong: not a string, empty or too long, a control character', () => {
      for (const v of [undefined, null, 5, true, {}, ['a']]) expect(varNameProblem(v)).to.equal('not_string');
      expect(varNameProblem('')).to.equal('length');
      expect(varNameProblem('n'.repeat(MAX_VAR_NAME + 1))).to.equal('length');
      expect(varTypeProblem('t'.repeat(MAX_VAR_TYPE + 1))).to.equal('length');
      for (const c of ['\u0000', '\n', '\u001f', '\u007f']) expect(varNameProblem(`a${c}b`)).to.equal('control');
      expect(varTypeProblem('in\tt')).to.equal('control');
    });

    it('isVarName / isVarType agree with them', () => {
      expect(isVarName('speed')).to.equal(true);
      expect(isVarName('a\nb')).to.equal(false);
      expect(isVarType('integer')).to.equal(true);
      expect(isVarType('')).to.equal(false);
    });
  });

  describe('wireValue', () => {
    it('writes strings as they are, finite numbers and booleans with String()', () => {
      expect(wireValue('x ')).to.equal('x ');
      expect(wireValue('')).to.equal('');
      expect(wireValue(3.5)).to.equal('3.5');
      expect(wireValue(-0)).to.equal('0');
      expect(wireValue(false)).to.equal('false');
    });

    it('refuses everything else', () => {
      for (const v of [Number.NaN, Infinity, -Infinity, null, undefined, {}, [1], 10n]) expect(wireValue(v)).to.equal(null);
    });
  });

  describe('varKind / inferVarType', () => {
    it('knows the well-known type names and aliases in any case; the rest is text', () => {
      expect(['integer', 'INT', 'Int'].map(varKind)).to.deep.equal(['integer', 'integer', 'integer']);
      expect(['float', 'double', 'Number'].map(varKind)).to.deep.equal(['float', 'float', 'float']);
      expect(['boolean', 'BOOL'].map(varKind)).to.deep.equal(['boolean', 'boolean']);
      expect(['string', 'difficulty', 'long', 'constructor', '__proto__'].map(varKind)).to.deep.equal(['string', 'string', 'string', 'string', 'string']);
    });

    it('infers integer, float, boolean or string from a JSON value', () => {
      expect([3, 3.5, true, '3'].map(inferVarType)).to.deep.equal(['integer', 'float', 'boolean', 'string']);
    });
  });

  describe('varNumber / varBoolean', () => {
    it('reads numbers from trimmed text; empty text, booleans and non-finite results are not numbers', () => {
      expect(varNumber(' 0042 ')).to.equal(42);
      expect(varNumber('1e3')).to.equal(1000);
      expect(varNumber(7)).to.equal(7);
      for (const v of ['', '  ', 'abc', '1e400', true, false]) expect(varNumber(v)).to.equal(null);
    });

    it('reads true/1 and false/0 in any case, trimmed', () => {
      expect([' TRUE ', '1', 1, true].map(varBoolean)).to.deep.equal([true, true, true, true]);
      expect(['false', '0', 0, false].map(varBoolean)).to.deep.equal([false, false, false, false]);
      for (const v of ['yes', '', '2', 2]) expect(varBoolean(v)).to.equal(null);
    });
  });

  describe('canonicalVarValue', () => {
    it('writes values of the well-known types in canonical form', () => {
      expect(canonicalVarValue('int', ' 0042 ')).to.deep.equal({ value: '42' });
      expect(canonicalVarValue('float', '2.50')).to.deep.equal({ value: '2.5' });
      expect(canonicalVarValue('bool', '1')).to.deep.equal({ value: 'true' });
      expect(canonicalVarValue('difficulty', 3)).to.deep.equal({ value: '3' });
    });

    it('says what a value should have been', () => {
      expect(canonicalVarValue('integer', 'abc')).to.deep.equal({ expected: 'a number' });
      expect(canonicalVarValue('integer', 1.5)).to.deep.equal({ expected: 'an integer' });
      expect(canonicalVarValue('integer', 2 ** 60)).to.deep.equal({ expected: 'an integer' });
      expect(canonicalVarValue('float', true)).to.deep.equal({ expected: 'a number' });
      expect(canonicalVarValue('boolean', 'yes')).to.deep.equal({ expected: 'a boolean' });
    });
  });
});
