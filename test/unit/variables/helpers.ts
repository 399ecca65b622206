/** Shared bits of the variables unit tests. */
import { expect } from 'chai';
import { ObserverioError, type ErrorCode } from '../../../src/errors.js';

/** Runs fn, expects an ObserverioError with this code, returns its message. */
export function errorOf(fn: () => unknown, code: ErrorCode = 'bad_request'): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ObserverioError);
    expect((err as ObserverioError).code).to.equal(code);
    return (err as ObserverioError).message;
  }
  throw new Error('expected an ObserverioError');
}

export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
