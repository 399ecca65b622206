/**
 * Small helpers for uWebSockets.js handlers: read a JSON body within a size limit (answering 413 as
 * soon as it is exceeded), validate it with a zod schema, and answer JSON corked, never after the
 * client went away. Every error body is `{ "error": { "code", "message" } }` from the catalog.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { z } from 'zod';
import { ERRORS, ObserverioError, type ErrorCode } from '../errors.js';
import type { ErrorAnswer } from '../wire.js';

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export function statusLine(status: number): string {
  return STATUS_TEXT[status] ?? `${status} Status`;
}

/** Tracks whether the client is still there; uWS requires onAborted before any async work. */
export class Reply {
  aborted = false;
  done = false;
  status = 0;
  constructor(readonly res: HttpResponse) {
    res.onAborted(() => {
      this.aborted = true;
    });
  }

  json(status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.send(status, status === 204 ? '' : JSON.stringify(body), { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  }

  text(status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
    this.send(status, body, { 'Content-Type': contentType, ...headers });
  }

  send(status: number, body: string | Buffer, headers: Record<string, string>): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.status = status;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v);
      this.res.writeHeader('Cache-Control', 'no-store');
      this.res.writeHeader('X-Content-Type-Options', 'nosniff');
      this.res.end(body);
    });
  }

  error(code: ErrorCode, message?: string, headers: Record<string, string> = {}): void {
    this.json(ERRORS[code].status, { error: { code, message: message ?? ERRORS[code].message } } satisfies ErrorAnswer, headers);
  }

  /** Answers an error thrown by a handler: catalogued ones as such, anything else as a 500. */
  fail(err: unknown): void {
    if (err instanceof ObserverioError) this.error(err.code, err.message);
    else this.error('internal');
  }
}

/** Reads the whole body, at most `maxBytes`; rejects with payload_too_large the moment it is exceeded. */
export function readBody(reply: Reply, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    reply.res.onData((ab, isLast) => {
      if (over) return;
      size += ab.byteLength;
      if (size > maxBytes) {
        over = true;
        reject(new ObserverioError('payload_too_large', `request body exceeds ${maxBytes} bytes`));
        return;
      }
      // The ArrayBuffer is only valid during this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(ab.slice(0))));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

/**
 * Reads, parses and validates a JSON body; throws ObserverioError with a message naming the problem.
 * `accept`, when given, takes the bodies it recognises as valid without the schema (the same value the
 * schema would give) and answers null for anything else, which the schema then judges: a hot route's
 * valid bodies skip zod's parse, and every refusal keeps the schema's message.
 */
export async function readJson<S extends z.ZodType>(reply: Reply, req: RequestInfo, maxBytes: number, schema: S, accept?: (value: unknown) => z.infer<S> | null): Promise<z.infer<S>> {
  const type = req.headers['content-type'] ?? '';
  const body = await readBody(reply, maxBytes);
  if (type && !/^application\/json\b/i.test(type)) throw new ObserverioError('bad_request', `Content-Type must be application/json, not ${type.slice(0, 60)}`);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ObserverioError('bad_request', body.length === 0 ? 'request body is empty; expected JSON' : 'request body is not valid JSON');
  }
  return accept?.(value) ?? validate(schema, value);
}

/** As readJson, for bodies that may be left out (DELETE with an optional target): an empty body is null. */
export async function readOptionalJson<S extends z.ZodType>(reply: Reply, req: RequestInfo, maxBytes: number, schema: S): Promise<z.infer<S> | null> {
  const type = req.headers['content-type'] ?? '';
  const body = await readBody(reply, maxBytes);
  if (body.length === 0) return null;
  if (type && !/^application\/json\b/i.test(type)) throw new ObserverioError('bad_request', `Content-Type must be application/json, not ${type.slice(0, 60)}`);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ObserverioError('bad_request', 'request body is not valid JSON');
  }
  return validate(schema, value);
}

export function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const msg = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
      .join('; ');
    throw new ObserverioError('bad_request', msg);
  }
  return parsed.data;
}

/** What handlers need of a request, copied synchronously (uWS requests die at the first await). */
export interface RequestInfo {
  method: string;
  url: string;
  query: string;
  headers: Record<string, string>;
  params: string[];
  remoteAddress: string;
}

export function requestInfo(res: HttpResponse, req: HttpRequest, paramCount = 0): RequestInfo {
  const headers: Record<string, string> = {};
  req.forEach((k, v) => {
    headers[k] = v;
  });
  const params: string[] = [];
  for (let i = 0; i < paramCount; i++) params.push(req.getParameter(i) ?? '');
  return {
    method: req.getMethod(),
    url: req.getUrl(),
    query: req.getQuery() ?? '',
    headers,
    params,
    remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
  };
}

export function bearer(info: RequestInfo): string | null {
  const h = info.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? (m[1] as string) : null;
}
