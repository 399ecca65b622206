/**
 * Lines per second (log lines plus variable reports) over the last minute, drawn as SVG bars.
 * Counting happens in a ref on every event; the chart itself re-renders once a second.
 */
import { useRef } from 'preact/hooks';
import { plural } from '../format';
import { useLiveEvents, useNow } from '../hooks';
import type { LiveSocket } from '../live-socket';

const WINDOW_S = 60;
/** The headline rate averages this many complete seconds, so it does not flicker. */
const RATE_SPAN_S = 5;
const W = 600;
const H = 120;

/** Counts per epoch second, forgetting anything older than the window. */
export class RateBuckets {
  private readonly counts = new Map<number, number>();

  add(n: number, atMs = Date.now()): void {
    const s = Math.floor(atMs / 1000);
    this.counts.set(s, (this.counts.get(s) ?? 0) + n);
  }

  /** The last `windowS` whole seconds ending with the current (partial) one, oldest first. */
  series(nowMs = Date.now(), windowS = WINDOW_S): number[] {
    const end = Math.floor(nowMs / 1000);
    for (const k of this.counts.keys()) if (k <= end - windowS) this.counts.delete(k);
    const out: number[] = [];
    for (let s = end - windowS + 1; s <= end; s++) out.push(this.counts.get(s) ?? 0);
    return out;
  }
}

/** A round upper bound for the y axis: 1, 2, 5, 10, 20, 50, ... */
export function niceMax(v: number): number {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function ActivityChart(props: { socket: LiveSocket }) {
  const buckets = useRef(new RateBuckets());
  const now = useNow(1000);
  useLiveEvents(props.socket, (ev) => {
    if (ev.type === 'logs') buckets.current.add(Array.isArray(ev.logs) ? ev.logs.length : 1);
    else if (ev.type === 'vars') buckets.current.add(1);
  });

  const series = buckets.current.series(now);
  // The current second is still filling, so the rate is the mean of the last complete seconds.
  const recent = series.slice(-1 - RATE_SPAN_S, -1);
  const mean = recent.reduce((a, b) => a + b, 0) / Math.max(1, recent.length);
  const current = mean >= 10 ? Math.round(mean) : Math.round(mean * 10) / 10;
  const total = series.reduce((a, b) => a + b, 0);
  const peak = Math.max(...series);
  const max = niceMax(peak);
  const bw = W / WINDOW_S;

  return (
    <section class="card activity" aria-labelledby="activity-title">
      <header class="card-head">
        <h2 id="activity-title">Activity</h2>
        <div class="stats">
          <span>
            <strong data-testid="rate-current">{current}</strong> lines/s
            <span class="muted"> (5 s avg)</span>
          </span>
          <span class="muted">peak {peak}</span>
          <span class="muted">{plural(total, 'line')} in 60 s</span>
        </div>
      </header>
      <div class="chart">
        <span class="axis-label top">{max}</span>
        {max >= 2 && <span class="axis-label mid">{max / 2}</span>}
        <svg
          viewBox={`0 0 ${W} ${H}`}
          preserveAspectRatio="none"
          role="img"
          aria-label={`Lines per second over the last minute; now ${current}, peak ${peak}`}
          data-testid="rate-chart"
        >
          <line class="grid" x1="0" x2={W} y1={H / 2} y2={H / 2} />
          <line class="grid" x1="0" x2={W} y1="0.5" y2="0.5" />
          {series.map((v, i) =>
            v > 0 ? (
              <rect
                key={i}
                class={i === series.length - 1 ? 'bar partial' : 'bar'}
                x={i * bw + 1}
                width={bw - 2}
                y={H - (v / max) * H}
                height={(v / max) * H}
              />
            ) : null,
          )}
          <line class="baseline" x1="0" x2={W} y1={H - 0.5} y2={H - 0.5} />
        </svg>
        <div class="x-labels muted small">
          <span>−60 s</span>
          <span>−30 s</span>
          <span>now</span>
        </div>
      </div>
    </section>
  );
}
