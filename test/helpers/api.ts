/** HTTP helpers for API tests: a signed-in user (email, API key, session token) and JSON calls. */
import { randomBytes } from 'node:crypto';
import type { Daemon } from './daemon.js';

export interface TestUser {
  email: string;
  password: string;
  apiKey: string;
  token: string;
}

export interface JsonResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** Registers a fresh user and signs in. */
export async function signedInUser(daemon: Daemon, password = 'correct horse battery'): Promise<TestUser> {
  const email = `u${randomBytes(6).toString('hex')}@example.com`;
  const apiKey = await daemon.register(email, password);
  const res = await call<{ token: string }>(daemon, 'POST', '/api/sessions', { body: { email, password } });
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { email, password, apiKey, token: res.body.token };
}

export interface CallOptions {
  token?: string;
  /** Serialised as JSON unless it is already a string. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** One request; the body is parsed as JSON when there is one (else it is the raw text). */
export async function call<T = Record<string, unknown>>(daemon: Daemon, method: string, path: string, opts: CallOptions = {}): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${daemon.http}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}
