/**
 * How a pubsub message travels: JSON text, the same for the local and the Redis implementation, so a
 * message that works on one node works between nodes. A node decodes each message once: its handlers
 * share that copy, frozen (deepFreeze), so none can change what another sees.
 */

import { randomBytes } from 'node:crypto';

/** Thrown by `publish` for a value JSON cannot carry (undefined, a function, a symbol, a BigInt, a cycle). */
export class UnserialisableMessageError extends TypeError {
  override name = 'UnserialisableMessageError';
}

/**
 * Encodes a message once per publish. Nested values follow JSON's own rules (`undefined` fields
 * vanish, a Date becomes its ISO string, NaN becomes null): only a message that would arrive as
 * nothing at all, or cannot be encoded, is refused, so the publisher hears about it instead of the
 * subscribers receiving `undefined`.
 */
export function encodeMessage(channel: string, message: unknown): string {
  if (message instanceof EncodedMessage) return message.json;
  let text: string | undefined;
  try {
    text = JSON.stringify(message);
  } catch (err) {
    throw new UnserialisableMessageError(`cannot publish on ${channel}: message is not JSON-serialisable (${(err as Error).message})`);
  }
  if (text === undefined) {
    throw new UnserialisableMessageError(`cannot publish on ${channel}: message of type ${typeof message} is not JSON-serialisable`);
  }
  return text;
}

/**
 * A message its publisher encoded itself (Gateway.publishMany lays a batch of dashboard events out so
 * /ws can cut each event's frame from the text): published as this text, which must be what
 * JSON.stringify makes of some value (a subscriber decodes it as that value).
 */
export class EncodedMessage {
  constructor(readonly json: string) {}
}

export function decodeMessage(text: string): unknown {
  return JSON.parse(text) as unknown;
}

/**
 * Freezes a decoded message and everything in it, so handlers sharing it cannot change it (a write
 * throws, in strict code). Iterative: a foreign publisher's deeply nested JSON, which JSON.parse takes,
 * must not overflow the stack here. Only decoded JSON comes here: no cycles, no accessors.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  const stack: object[] = [value];
  while (stack.length > 0) {
    const o = stack.pop() as Record<string, unknown>;
    Object.freeze(o);
    if (Array.isArray(o)) {
      for (let i = 0; i < o.length; i++) {
        const x: unknown = o[i];
        if (typeof x === 'object' && x !== null) stack.push(x);
      }
    } else {
      for (const k in o) {
        const x = o[k];
        if (typeof x === 'object' && x !== null) stack.push(x);
      }
    }
  }
  return value;
}

/** The four characters JSON allows before a value: a mark made of them leaves the payload valid JSON. */
const MARK_ALPHABET = ' \t\n\r';
/** 32 characters, two bits each: 64 random bits, so two instances never share a mark in practice. */
export const ORIGIN_MARK_LENGTH = 32;

/**
 * A per-instance origin mark for RedisPubSub: a fixed-length prefix of JSON whitespace. The instance
 * recognises its own echo from Redis with one startsWith; every other reader (another node, an older
 * version that knows nothing of marks) decodes the payload as it is, JSON.parse skipping the mark.
 */
export function newOriginMark(): string {
  let mark = '';
  for (const byte of randomBytes(ORIGIN_MARK_LENGTH / 4)) {
    for (let shift = 0; shift < 8; shift += 2) mark += MARK_ALPHABET[(byte >> shift) & 3];
  }
  return mark;
}
