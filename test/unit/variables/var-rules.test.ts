import { expect } from 'chai';
import { canonicalValue, checkVarName, checkVarType, inferType, resolveVarValue, sameValue } from '../../../src/variables/var-rules.js';
import { errorOf } from './helpers.js';

describe('variables/var-rules', () => {
  it('checks names like the i: line: 1-128 characters, no control characters', () => {
    expect(checkVarName('speed')).to.equal(null);
    expect(checkVarName('x'.repeat(128))).to.equal(null);
    expect(checkVarName('')).to.be.a('string');
    expect(checkVarName('x'.repeat(129))).to.be.a('string');
    expect(checkVarName('a\nb')).to.include('control');
    expect(checkVarName(3)).to.include('string');
  });
  it('checks types: 1-32 printable characters', () => {
    expect(checkVarType('integer')).to.equal(null);
    expect(checkVarType('')).to.be.a('string');
    expect(checkVarType('x'.repeat(33))).to.be.a('string');
    expect(checkVarType(1)).to.be.a('string');
  });
  it('infers types from JSON values', () => {
    expect([inferType(1), inferType(1.5), inferType(true), inferType('x')]).to.deep.equal(['integer', 'float', 'boolean', 'string']);
  });
  it('canonicalises numbers and booleans and keeps other types as text', () => {
    expect(canonicalValue('integer', ' 2 ')).to.deep.equal({ value: '2' });
    expect(canonicalValue('float', '1.50')).to.deep.equal({ value: '1.5' });
    expect(canonicalValue('bool', 1)).to.deep.equal({ value: 'true' });
    expect(canonicalValue('Boolean', 'FALSE')).to.deep.equal({ value: 'false' });
    expect(canonicalValue('string', ' x ')).to.deep.equal({ value: ' x ' });
    expect(canonicalValue('color', '#fff')).to.deep.equal({ value: '#fff' });
  });
  it('rejects values that do not fit their type', () => {
    expect(canonicalValue('integer', '1.5')).to.have.property('problem').that.includes('not an integer');
    expect(canonicalValue('integer', 'abc')).to.have.property('problem').that.includes('not a number');
    expect(canonicalValue('float', '')).to.have.property('problem');
    expect(canonicalValue('float', true)).to.have.property('problem');
    expect(canonicalValue('boolean', 'yes')).to.have.property('problem').that.includes('not a boolean');
    expect(canonicalValue('float', Number.NaN)).to.have.property('problem');
    expect(canonicalValue('string', null)).to.have.property('problem');
  });
  it('resolveVarValue takes the given type, else the existing one, else infers, and names the variable in errors', () => {
    expect(resolveVarValue('a', '3', undefined, 'integer')).to.deep.equal({ name: 'a', type: 'integer', value: '3' });
    expect(resolveVarValue('a', 3, 'float', 'integer')).to.deep.equal({ name: 'a', type: 'float', value: '3' });
    expect(resolveVarValue('a', true, undefined, undefined)).to.deep.equal({ name: 'a', type: 'boolean', value: 'true' });
    expect(errorOf(() => resolveVarValue('speed', 'fast', undefined, 'integer'))).to.equal('variable speed: value "fast" is not a number (type integer)');
    expect(errorOf(() => resolveVarValue('speed', {}, undefined, undefined))).to.include('variable speed');
    expect(errorOf(() => resolveVarValue('', 1, undefined, undefined))).to.include('variable name');
    expect(errorOf(() => resolveVarValue('a', 1, '', undefined))).to.include('variable a: type');
  });
  it('sameValue compares in canonical form for number and boolean types only', () => {
    expect(sameValue('float', '1.50', '1.5')).to.equal(true);
    expect(sameValue('bool', '1', 'true')).to.equal(true);
    expect(sameValue('integer', '2', '3')).to.equal(false);
    expect(sameValue('string', '1.50', '1.5')).to.equal(false);
    expect(sameValue('integer', 'x', 'y')).to.equal(false);
  });
});
