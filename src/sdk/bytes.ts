/**
 * UTF-8 lengths and base64 payloads for the SDK, the same in Node and in browsers: Node's Buffer
 * where there is one (native and fast on a game server), else TextEncoder/TextDecoder with
 * btoa/atob, so the browser bundle needs no Buffer polyfill.
 */

/** The part of Node's Buffer used here, typed locally so the SDK's types never need @types/node. */
interface NodeBufferLike {
  byteLength(text: string, encoding: 'utf8'): number;
  from(text: string, encoding: 'utf8' | 'base64'): { toString(encoding: 'utf8' | 'base64'): string };
}

const nodeBuffer = (globalThis as { Buffer?: NodeBufferLike }).Buffer;
const encoder = new TextEncoder();
// Not fatal: broken UTF-8 becomes U+FFFD, as Buffer decodes it.
const decoder = new TextDecoder('utf-8');
/** Bytes per String.fromCharCode call: well under any engine's argument limit. */
const CHUNK = 0x8000;

/** Bytes of `text` as UTF-8, without encoding it (a lone surrogate counts as U+FFFD, 3 bytes). */
export function utf8LengthPortable(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Standard padded base64 of the text's UTF-8 bytes. */
export function base64FromTextPortable(text: string): string {
  const bytes = encoder.encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(binary);
}

/** The UTF-8 text a base64 payload holds, or null when atob refuses it. */
export function textFromBase64Portable(b64: string): string | null {
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    return null;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return decoder.decode(bytes);
}

export function utf8Length(text: string): number {
  return nodeBuffer ? nodeBuffer.byteLength(text, 'utf8') : utf8LengthPortable(text);
}

export function base64FromText(text: string): string {
  return nodeBuffer ? nodeBuffer.from(text, 'utf8').toString('base64') : base64FromTextPortable(text);
}

/** Callers check the alphabet first; Buffer decodes whatever is left leniently, atob may refuse it (null). */
export function textFromBase64(b64: string): string | null {
  return nodeBuffer ? nodeBuffer.from(b64, 'base64').toString('utf8') : textFromBase64Portable(b64);
}
