/** Plain-text output shared by the commands: aligned tables, counts, durations, times. */

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** 12345 → "12,345". */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 1234 ms → "1.2s", 75000 → "1m15s", 4000000 → "1h6m". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

/** How long ago `at` was, e.g. "3m05s ago"; "-" for nothing. */
export function ago(at: number | null | undefined, now = Date.now()): string {
  if (at === null || at === undefined || !Number.isFinite(at) || at <= 0) return '-';
  return `${duration(Math.max(0, now - at))} ago`;
}

/** A value on one line, for a table cell or a log field: strings as they are, the rest as JSON. */
export function cell(v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  // A newline in a cell would break the table's lines.
  return text.replace(/\r?\n/g, '\\n');
}

/** JSON output: pretty on a terminal, one line when piped. */
export function json(value: unknown, tty: boolean | undefined): string {
  return `${JSON.stringify(value, null, tty ? 2 : undefined)}\n`;
}
