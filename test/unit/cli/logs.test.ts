/**
 * `logs tail --follow` over a stubbed API: newest last, every new line exactly once even when polls
 * overlap, a line indexed late (older receive time) still printed, history before the first page not.
 */
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { formatLog, tailLogs, type LogHit, type LogSearch } from '../../../src/cli/logs.js';
import type { Api, Query, RequestOptions } from '../../../src/cli/http-client.js';
import type { CliIo } from '../../../src/cli/io.js';

const hit = (n: number, receivedAt: number, extra: Partial<LogHit> = {}): LogHit => ({
  id: `${receivedAt}-node-${n}`,
  apiKey: 'abcDEF123456',
  deviceId: 'pc-1',
  level: 'info',
  message: `line ${n}`,
  timestamp: null,
  receivedAt,
  fields: {},
  ...extra,
});

/** An API over a list of indexed logs that tests add to between polls; answers like GET /api/logs. */
function stubApi(indexed: LogHit[], onPoll: (poll: number, q: Query) => void, stopAfter: number, stop: AbortController): Api & { queries: Query[] } {
  const queries: Query[] = [];
  return {
    queries,
    async request<T>(_method: string, _path: string, opts: RequestOptions = {}): Promise<T> {
      const q = opts.query ?? {};
      queries.push(q);
      onPoll(queries.length, q);
      if (queries.length > stopAfter) stop.abort();
      const from = q.from === undefined ? -Infinity : Number(q.from);
      const matching = indexed.filter((h) => h.receivedAt >= from && (q.level === undefined || h.level === q.level)).sort((a, b) => b.receivedAt - a.receivedAt || (a.id < b.id ? 1 : -1));
      const res: LogSearch = { hits: matching.slice(0, Number(q.limit ?? 100)), total: matching.length };
      return res as T;
    },
  };
}

function captureIo(): { io: CliIo; out: () => string } {
  let out = '';
  const stream = { write: (s: string) => (out += s) };
  return { io: { stdout: stream, stderr: { write: () => true }, env: {}, stdin: new PassThrough() }, out: () => out };
}

describe('cli/logs', () => {
  it('formats a log as time, level, device, message and fields', () => {
    expect(formatLog(hit(1, Date.UTC(2025, 0, 31, 12), { level: 'warn', deviceId: null, message: 'two\nlines', fields: { fps: 21, scene: 'level 3' } }))).to.equal(
      '2025-01-31T12:00:00.000Z  WARN   -  two\\nlines fps=21 scene=level 3\n',
    );
  });

  it('tail prints the newest lines oldest first and stops without --follow', async () => {
    const { io, out } = captureIo();
    const stop = new AbortController();
    const api = stubApi([hit(1, 1000), hit(2, 2000), hit(3, 3000)], () => undefined, 10, stop);
    expect(await tailLogs(api, 'token', { limit: 2 }, io)).to.equal(2);
    expect(out().split('\n').map((l) => l.split('  ').at(-1))).to.deep.equal(['line 2', 'line 3', '']);
    expect(api.queries).to.have.length(1);
  });

  it('--follow prints each new line once, a late-indexed one too, and no history before the first page', async () => {
    const { io, out } = captureIo();
    const stop = new AbortController();
    const indexed = [hit(1, 1000), hit(2, 2000), hit(3, 3000)];
    const api = stubApi(
      indexed,
      (poll) => {
        if (poll === 2) indexed.push(hit(4, 4000), hit(5, 5000));
        // Received before line 5 but indexed after it was already printed.
        if (poll === 3) indexed.push(hit(6, 4500));
        if (poll === 4) indexed.push(hit(7, 5000));
      },
      6,
      stop,
    );
    const printed = await tailLogs(api, 'token', { limit: 1, follow: true, intervalMs: 1, signal: stop.signal }, io);
    expect(out().trim().split('\n').map((l) => l.split('  ').at(-1))).to.deep.equal(['line 3', 'line 4', 'line 5', 'line 6', 'line 7']);
    expect(printed).to.equal(5);
    // Polls look back over an overlap window from the newest line printed, with the largest page.
    expect(api.queries[1]).to.include({ limit: 1000 });
    expect(Number(api.queries[1]?.from)).to.be.at.most(3000);
  });
});
