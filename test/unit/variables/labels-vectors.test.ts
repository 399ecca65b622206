/**
 * The devices extension's vectors (docs/protocol-vectors.json, `"since": "devices"`) against the
 * pure parser and encoder of the d: line, until the daemon's parser and the SDK speak it (the tcp and
 * sdk vector suites skip them till then).
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { encodeLabelsLine, parseLabelsLine } from '../../../src/variables/labels.js';

interface Vector {
  direction: 'to_daemon' | 'to_sdk';
  line: string;
  expect: { kind: string; code?: string; apiKey?: string; labels?: Record<string, string> };
  note: string;
  canonical?: boolean;
  since?: string;
}

const all = JSON.parse(readFileSync(new URL('../../../docs/protocol-vectors.json', import.meta.url), 'utf8')) as Vector[];
const vectors = all.filter((v) => v.since === 'devices');

describe('devices extension vectors (d: lines)', () => {
  it('are all to_daemon d: lines, and the only vectors marked since', () => {
    expect(vectors.length).to.be.greaterThan(30);
    for (const v of vectors) expect(v.direction === 'to_daemon' && v.line.startsWith('d:'), v.note).to.equal(true);
    expect(all.filter((v) => v.since !== undefined && v.since !== 'devices')).to.deep.equal([]);
  });

  it('cover accepted labels and every error code of the d: line', () => {
    const codes = new Set(vectors.filter((v) => v.expect.kind === 'error').map((v) => v.expect.code));
    expect([...codes].sort()).to.deep.equal(['bad_api_key', 'bad_base64', 'bad_json', 'bad_shape']);
    expect(vectors.some((v) => v.expect.kind === 'labels')).to.equal(true);
  });

  describe('parseLabelsLine', () => {
    for (const v of vectors) {
      it(`${JSON.stringify(v.line.length > 60 ? `${v.line.slice(0, 57)}...` : v.line)}: ${v.note}`, () => {
        const got = parseLabelsLine(v.line);
        if (v.expect.kind === 'error') {
          expect(got.kind, JSON.stringify(got).slice(0, 200)).to.equal('error');
          expect((got as { code: string }).code).to.equal(v.expect.code);
          expect((got as { message: string }).message).to.be.a('string').and.not.match(/[\r\n]/);
        } else expect(got).to.deep.equal(v.expect);
      });
    }
  });

  it('encodeLabelsLine reproduces every canonical line and re-encodes every accepted one', () => {
    const accepted = vectors.filter((v) => v.expect.kind === 'labels');
    expect(accepted.filter((v) => v.canonical).length).to.be.greaterThan(4);
    for (const v of accepted) {
      const line = encodeLabelsLine(v.expect.apiKey ?? '', v.expect.labels ?? {});
      if (v.canonical) expect(line, v.note).to.equal(v.line);
      expect(parseLabelsLine(line), v.note).to.deep.equal(v.expect);
    }
  });

  it('parseLabelsLine refuses other commands', () => {
    expect(parseLabelsLine('i:AbCdEf012345:W10=')).to.include({ kind: 'error', code: 'unknown_command' });
  });
});
