/**
 * Runs every case of docs/protocol-vectors.json through the daemon's parser and packer, so the
 * published vectors and the daemon cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ERRORS, protocolErrorLine, type ErrorCode } from '../../../src/errors.js';
import { OK_REPLY, errorReply, packVars, parseLine } from '../../../src/tcp/protocol.js';
import type { Var } from '../../../src/model.js';

interface Vector {
  direction: 'to_daemon' | 'to_sdk';
  line: string;
  expect: { kind: string; code?: string; message?: string; apiKey?: string; vars?: Var[]; values?: unknown[]; [k: string]: unknown };
  note: string;
  canonical?: boolean;
  /** The extension a vector belongs to (`"devices"`: the d: line); the daemon's parser speaks them all. */
  since?: string;
}

function loadVectors(): Vector[] {
  return JSON.parse(readFileSync(new URL('../../../docs/protocol-vectors.json', import.meta.url), 'utf8')) as Vector[];
}

const vectors = loadVectors();
const PARSE_CODES: ErrorCode[] = ['unknown_command', 'bad_api_key', 'bad_device_id', 'bad_base64', 'bad_json', 'bad_shape'];
// The codes a TCP client can receive (DESIGN.md §2); the rest of the catalog is HTTP's.
const TCP_CODES: ErrorCode[] = [
  ...PARSE_CODES,
  'unknown_api_key',
  'not_verified',
  'key_mismatch',
  'line_too_long',
  'too_many_errors',
  'verify_timeout',
  'server_busy',
  'internal',
  // The connection answers a v: it cannot check (store down) with the HTTP catalog's code.
  'unavailable',
  // Per-tenant limits (config `limits`).
  'too_many_vars',
  'too_many_new_vars',
  'too_many_connections',
  'rate_limited',
];

describe('protocol vectors (docs/protocol-vectors.json)', () => {
  it('name only codes of the catalog', () => {
    for (const v of vectors) if (v.expect.kind === 'error') expect(ERRORS).to.have.property(v.expect.code ?? '');
  });

  it('cover every error code parseLine can return and every TCP error code as a daemon line', () => {
    const parsed = new Set(vectors.filter((v) => v.direction === 'to_daemon' && v.expect.kind === 'error').map((v) => v.expect.code));
    expect([...parsed].sort()).to.deep.equal([...PARSE_CODES].sort());
    const sent = new Set(vectors.filter((v) => v.direction === 'to_sdk' && v.expect.kind === 'error').map((v) => v.expect.code));
    expect([...sent].sort()).to.deep.equal([...TCP_CODES].sort());
    for (const kind of ['verify', 'logs', 'vars', 'labels']) expect(vectors.some((v) => v.direction === 'to_daemon' && v.expect.kind === kind), kind).to.equal(true);
  });

  describe('parseLine', () => {
    for (const v of vectors.filter((x) => x.direction === 'to_daemon')) {
      it(`${JSON.stringify(v.line.length > 60 ? `${v.line.slice(0, 57)}...` : v.line)}: ${v.note}`, () => {
        const got = parseLine(v.line);
        if (v.expect.kind === 'error') {
          expect(got.kind, JSON.stringify(got)).to.equal('error');
          expect((got as { code: string }).code).to.equal(v.expect.code);
          expect((got as { message: string }).message).to.be.a('string').and.not.match(/[\r\n]/);
        } else {
          expect(got).to.deep.equal(v.expect);
        }
      });
    }
  });

  describe('packVars and the error replies', () => {
    for (const v of vectors.filter((x) => x.direction === 'to_sdk')) {
      it(`${JSON.stringify(v.line.length > 60 ? `${v.line.slice(0, 57)}...` : v.line)}: ${v.note}`, () => {
        if (v.expect.kind === 'ok') expect(OK_REPLY).to.equal(`${v.line}\n`);
        else if (v.expect.kind === 'error') {
          const code = v.expect.code as ErrorCode;
          expect(errorReply({ code, message: v.expect.message ?? '' })).to.equal(`${v.line}\n`);
          expect(protocolErrorLine(code)).to.equal(v.line);
        } else {
          expect(v.expect.kind).to.equal('vars');
          expect(packVars(v.expect.apiKey ?? '', v.expect.vars ?? [])).to.equal(`${v.line}\n`);
        }
      });
    }
  });
});
