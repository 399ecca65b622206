/**
 * How a pubsub message travels: JSON text, the same for the local and the Redis implementation, so a
 * message that works on one node works between nodes, and every subscriber gets its own copy.
 */

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

export function decodeMessage(text: string): unknown {
  return JSON.parse(text) as unknown;
}
