/**
 * The SDK's encoder and decoder against docs/protocol-vectors.json: what the SDK sends is what the
 * vectors (and so the daemon) accept, and what the daemon sends decodes to the vectors' values.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  checkApiKey,
  checkDeviceId,
  decodeLabelsLine,
  decodeServerLine,
  encodeLabels,
  encodeLogs,
  encodeVars,
  encodeVerify,
  typedValue,
  type LogRecord,
  type Var,
} from '../../../src/sdk/codec.js';
import { SdkError } from '../../../src/sdk/errors.js';
import { parseLine } from '../../../src/tcp/protocol.js';
import { MAX_LABELS_PAYLOAD_BASE64 } from '../../../src/variables/labels.js';

interface Vector {
  direction: 'to_daemon' | 'to_sdk';
  line: string;
  expect: {
    kind: string;
    code?: string;
    message?: string;
    apiKey?: string;
    deviceId?: string | null;
    vars?: Var[];
    logs?: LogRecord[];
    values?: unknown[];
    labels?: Record<string, string>;
  };
  note: string;
  canonical?: boolean;
  /** An extension (`"devices"`: the d: line, which this SDK speaks; see the last describe). */
  since?: string;
}

const all = JSON.parse(readFileSync(new URL('../../../docs/protocol-vectors.json', import.meta.url), 'utf8')) as Vector[];
const vectors = all.filter((v) => v.since === undefined);
const devices = all.filter((v) => v.since === 'devices');

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

/** The payload's JSON when it decodes to one (base64 and JSON as the protocol reads them), else undefined. */
function payloadJson(line: string): unknown {
  const sep = line.indexOf(':', 2);
  if (sep < 0) return undefined;
  try {
    return JSON.parse(Buffer.from(line.slice(sep + 1), 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

describe('sdk codec against the devices extension vectors (d: lines)', () => {
  it('has the extension cases, and every one is a to_daemon d: line', () => {
    expect(devices.length).to.be.greaterThan(25);
    for (const v of devices) {
      expect(v.direction, v.note).to.equal('to_daemon');
      expect(v.line.startsWith('d:'), v.note).to.equal(true);
    }
  });

  it('reproduces every canonical d: line exactly', () => {
    const canonical = devices.filter((v) => v.canonical);
    expect(canonical.length).to.be.greaterThan(3);
    for (const v of canonical) expect(encodeLabels(v.expect.apiKey ?? '', v.expect.labels ?? {}), v.note).to.equal(v.line);
  });

  it('encodes every accepted label set so that the reference parser reads it back unchanged', () => {
    const accepted = devices.filter((v) => v.expect.kind === 'labels');
    expect(accepted.length).to.be.greaterThan(5);
    for (const v of accepted) {
      expect(decodeLabelsLine(v.line), v.note).to.deep.equal(v.expect);
      expect(decodeLabelsLine(encodeLabels(v.expect.apiKey ?? '', v.expect.labels ?? {})), v.note).to.deep.equal(v.expect);
    }
  });

  it('decodes every rejected line to its error code', () => {
    for (const v of devices.filter((x) => x.expect.kind === 'error')) expect(decodeLabelsLine(v.line), v.note).to.include({ kind: 'error', code: v.expect.code });
  });

  it('refuses locally, as bad_labels, every label set the daemon refuses as bad_shape, and a bad key as bad_api_key', () => {
    const byContent = devices.filter((v) => v.expect.kind === 'error' && (v.expect.code === 'bad_api_key' || (v.expect.code === 'bad_shape' && payloadJson(v.line) !== undefined && v.line.length - 15 <= MAX_LABELS_PAYLOAD_BASE64)));
    // The base64/JSON cases, and the oversized payload (padded with white space), cannot come out of
    // an encoder: it writes compact JSON of checked labels, which always fits.
    expect(byContent.length).to.be.greaterThan(15);
    for (const v of byContent) {
      const sep = v.line.indexOf(':', 2);
      const apiKey = v.line.slice(2, sep);
      const code = thrownCode(() => encodeLabels(apiKey, payloadJson(v.line) as Record<string, string>));
      expect(code, v.note).to.equal(v.expect.code === 'bad_shape' ? 'bad_labels' : 'bad_api_key');
    }
  });
});
