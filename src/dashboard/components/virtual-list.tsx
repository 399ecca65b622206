/**
 * A windowed list of fixed-height rows: only the rows in view (plus a few either side) are in the
 * DOM, so a list of 1,000 devices costs what a list of 20 does on every render. Rows are positioned
 * inside a spacer as tall as the whole list, so the scroll bar stays honest.
 */
import type { ComponentChildren } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';

export function VirtualList<T>(props: {
  items: readonly T[];
  /** Every row's height in px; the row's CSS must give it exactly this height. */
  rowHeight: number;
  /** The scroll box grows with the list up to this height. */
  maxHeight: number;
  keyOf: (item: T) => string;
  row: (item: T, index: number) => ComponentChildren;
  overscan?: number;
  class?: string;
  testid?: string;
  label?: string;
}) {
  const { items, rowHeight, maxHeight } = props;
  const overscan = props.overscan ?? 6;
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const frame = useRef<number | null>(null);
  const total = items.length * rowHeight;
  const height = Math.min(maxHeight, total);

  // A list that shrank below the scroll position would otherwise show an empty window. Only then:
  // reading scrollTop lays the whole page out there and then, which a list that grew never needs.
  const lastTotal = useRef(total);
  useLayoutEffect(() => {
    const shrank = total < lastTotal.current;
    lastTotal.current = total;
    const el = box.current;
    if (shrank && el && el.scrollTop !== scrollTop) setScrollTop(el.scrollTop);
  }, [total]);

  useLayoutEffect(
    () => () => {
      if (frame.current !== null) cancelAnimationFrame(frame.current);
    },
    [],
  );

  const onScroll = (): void => {
    // One render per frame however many scroll events arrive.
    if (frame.current !== null) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = null;
      if (box.current) setScrollTop(box.current.scrollTop);
    });
  };

  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  const shown = items.slice(first, last);
  return (
    <div
      ref={box}
      class={`vlist ${props.class ?? ''}`}
      style={{ height: `${height}px` }}
      onScroll={onScroll}
      data-testid={props.testid}
      role="list"
      aria-label={props.label}
    >
      <div class="vlist-spacer" style={{ height: `${total}px` }}>
        <div class="vlist-window" style={{ transform: `translateY(${first * rowHeight}px)` }}>
          {shown.map((item, i) => (
            <div key={props.keyOf(item)} role="listitem" class="vlist-item" style={{ height: `${rowHeight}px` }}>
              {props.row(item, first + i)}
            </div>
          ))}
        </div>
      </div>
    </div>
  );
}
