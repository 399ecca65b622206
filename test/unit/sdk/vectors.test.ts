/**
 * The SDK's encoder and decoder against docs/protocol-vectors.json: what the SDK sends is what the
 * vectors (and so the daemon) accept, and what the daemon sends decodes to the vectors' values.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { checkApiKey, checkDeviceId, decodeServerLine, encodeLogs, encodeVars, encodeVerify, typedValue, type LogRecord, type Var } from '../../../src/sdk/codec.js';
import { SdkError } from '../../../src/sdk/errors.js';
import { parseLine } from '../../../src/tcp/protocol.js';

interface Vector {
  direction: 'to_daemon' | 'to_sdk';
  line: string;
  expect: { kind: string; code?: string; message?: string; apiKey?: string; deviceId?: string | null; vars?: Var[]; logs?: LogRecord[]; values?: unknown[] };
  note: string;
  canonical?: boolean;
  /** An extension the SDK does not speak yet (`"devices"`: the d: line, run by test/unit/variables/). */
  since?: string;
}

const vectors = (JSON.parse(readFileSync(new URL('../../../docs/protocol-vectors.json', import.meta.url), 'utf8')) as Vector[]).filter((v) => v.since === undefined);

function encode(e: Vector['expect']): string {
  const apiKey = e.apiKey ?? '';
  if (e.kind === 'verify') return encodeVerify(apiKey, e.deviceId);
  if (e.kind === 'logs') return encodeLogs(apiKey, e.logs ?? []);
  return encodeVars(apiKey, e.vars ?? []);
}

function thrownCode(fn: () => void): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    expect(err).to.be.instanceOf(SdkError);
    return (err as SdkError).code;
  }
}

describe('sdk codec against the protocol vectors', () => {
  const toDaemon = vectors.filter((v) => v.direction === 'to_daemon');
  const toSdk = vectors.filter((v) => v.direction === 'to_sdk');

  it('reproduces every canonical line exactly', () => {
    const canonical = toDaemon.filter((v) => v.canonical);
    expect(canonical.length).to.be.greaterThan(10);
    for (const v of canonical) expect(encode(v.expect), v.note).to.equal(v.line);
  });

  it('encodes every accepted command so that the daemon parses it back to the same value', () => {
    for (const v of toDaemon.filter((x) => x.expect.kind !== 'error')) expect(parseLine(encode(v.expect)), v.note).to.deep.equal(v.expect);
  });

  it('rejects locally the API keys and device ids the daemon rejects in v: lines', () => {
    const verifyErrors = toDaemon.filter((v) => v.line.startsWith('v:') && v.expect.kind === 'error');
    expect(verifyErrors.length).to.be.greaterThan(5);
    for (const v of verifyErrors) {
      const rest = v.line.slice(2);
      const sep = rest.indexOf(':');
      const code = thrownCode(() => {
        checkApiKey(sep < 0 ? rest : rest.slice(0, sep));
        if (sep >= 0) checkDeviceId(rest.slice(sep + 1));
      });
      expect(code, v.note).to.equal(v.expect.code);
    }
  });

  it('decodes every daemon line to the expected result and typed values', () => {
    expect(toSdk.length).to.be.greaterThan(15);
    for (const v of toSdk) {
      const got = decodeServerLine(v.line);
      if (v.expect.kind === 'vars') {
        expect(got, v.note).to.deep.equal({ kind: 'vars', apiKey: v.expect.apiKey, vars: v.expect.vars });
        const vars = v.expect.vars ?? [];
        expect(vars.map((x) => typedValue(x.type, x.value)), v.note).to.deep.equal(v.expect.values);
      } else {
        expect(got, v.note).to.deep.equal(v.expect);
      }
    }
  });
});
