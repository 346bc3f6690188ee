// Windowing math for the virtualized lists (fixed row height): which rows to render for a scroll
// position, and where to scroll to bring a row into view. Pure: test/unit/webview-virtual.test.ts.

export interface Window {
  /** First row to render. */
  start: number;
  /** One past the last row to render. */
  end: number;
  /** translateY of the first rendered row. */
  offset: number;
  /** Height of the whole list (the scroll area's content). */
  height: number;
}

/** Rows [start, end) cover the viewport plus `overscan` rows above and below. */
export function windowFor(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan = 10): Window {
  const height = count * rowHeight;
  if (count === 0 || rowHeight <= 0) return { start: 0, end: 0, offset: 0, height: 0 };
  const top = Math.max(0, Math.min(scrollTop, Math.max(0, height - viewport)));
  const first = Math.floor(top / rowHeight);
  const visible = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, first + visible + overscan);
  return { start, end, offset: start * rowHeight, height };
}

/** The scrollTop that shows row `index` entirely, moving as little as possible (unchanged if it is in view). */
export function scrollToShow(index: number, scrollTop: number, viewport: number, rowHeight: number): number {
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + viewport) return Math.max(0, bottom - viewport);
  return scrollTop;
}
