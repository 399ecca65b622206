/**
 * Credentials shared by every Store: scrypt password hashes in a self-describing string, API keys and
 * session tokens from the system CSPRNG, and the email normalisation that makes emails case-insensitive.
 */
import { randomBytes, randomInt, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** About 40 ms and 16 MiB per hash here; raising it later is safe because every hash records its own parameters. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 16384, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Node's default maxmem (32 MiB) is too tight for r=8 past N=2^14; stored hashes may carry larger N.
const MAX_MEM = 256 * 1024 * 1024;

function scryptAsync(password: Buffer, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

// NFC so that the same password typed on systems that compose accents differently still matches.
function passwordBytes(password: string): Buffer {
  return Buffer.from(password.normalize('NFC'), 'utf8');
}

/** `scrypt$N$r$p$<salt base64>$<hash base64>`: the parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(passwordBytes(password), salt, KEY_BYTES, { ...params, maxmem: MAX_MEM });
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

const isInt = (s: string | undefined, min: number, max: number): boolean => s !== undefined && /^\d{1,10}$/.test(s) && Number(s) >= min && Number(s) <= max;

// Bounds keep a tampered or corrupt stored hash from asking scrypt for gigabytes.
function parseHash(stored: string): ParsedHash | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [, n, r, p, salt, key] = parts;
  if (!isInt(n, 2, 2 ** 20) || !isInt(r, 1, 32) || !isInt(p, 1, 16)) return null;
  const N = Number(n);
  if ((N & (N - 1)) !== 0) return null;
  const saltBuf = Buffer.from(salt ?? '', 'base64');
  const keyBuf = Buffer.from(key ?? '', 'base64');
  if (saltBuf.length < 8 || keyBuf.length < 16 || keyBuf.length > 128) return null;
  return { params: { N, r: Number(r), p: Number(p) }, salt: saltBuf, key: keyBuf };
}

/** True when the password matches the stored hash; a malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await scryptAsync(passwordBytes(password), parsed.salt, parsed.key.length, { ...parsed.params, maxmem: MAX_MEM });
  return timingSafeEqual(key, parsed.key);
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends one verify against a throw-away hash and returns false: an unknown email must cost the same as
 * a wrong password, or response time tells an attacker which emails are registered.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword(randomBytes(16).toString('base64'));
  await verifyPassword(password, await dummyHash);
  return false;
}

const API_KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** 12 characters of [A-Za-z0-9] (about 71 bits); randomInt rejection-samples, so there is no modulo bias. */
export function newApiKey(): string {
  let key = '';
  for (let i = 0; i < 12; i++) key += API_KEY_ALPHABET.charAt(randomInt(API_KEY_ALPHABET.length));
  return key;
}

/** A dashboard session token: 256 random bits, base64url (43 characters, URL- and header-safe). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The lookup key for an email: case-insensitive, and é typed precomposed or decomposed is one address. */
export function emailKey(email: string): string {
  return email.normalize('NFC').toLowerCase();
}
