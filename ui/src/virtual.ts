// A virtualized list: only the rows in view (plus a margin) exist in the DOM, so a million
// rows scroll as smoothly as ten. Rows have one fixed height; data comes from `get`, and
// `missing` is told which rows in view have none yet (the search table loads them by page).

import { h } from './dom';

export function visibleRange(scrollTop: number, viewport: number, rowHeight: number, total: number, overscan = 8): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(total, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  return [first, Math.max(first, last)];
}

// Browsers cap element heights (~16-33M px); beyond this, scroll positions are scaled.
const MAX_HEIGHT = 8_000_000;

export class VirtualList<T> {
  el: HTMLElement;
  private spacer: HTMLElement;
  private rows: HTMLElement;
  total = 0;
  private frame = 0;

  constructor(
    private rowHeight: number,
    private get: (i: number) => T | undefined,
    private render: (i: number, item: T | undefined) => HTMLElement,
    private missing?: (first: number, last: number) => void,
  ) {
    this.spacer = h('div', { class: 'vspacer' });
    this.rows = h('div', { class: 'vrows' });
    this.el = h('div', { class: 'vlist', tabindex: '0', onscroll: () => this.schedule() }, this.spacer, this.rows);
    new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  private scale() {
    const full = this.total * this.rowHeight;
    return full > MAX_HEIGHT ? full / MAX_HEIGHT : 1;
  }

  setTotal(n: number) {
    this.total = n;
    this.spacer.style.height = `${Math.min(n * this.rowHeight, MAX_HEIGHT)}px`;
    this.schedule();
  }

  /** Repaints at the next frame: many updates in one frame cost one paint. */
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paint();
    });
  }

  paint() {
    const scale = this.scale();
    const top = this.el.scrollTop * scale;
    const [first, last] = visibleRange(top, this.el.clientHeight || 600, this.rowHeight, this.total);
    const out: HTMLElement[] = [];
    let lacking = -1;
    let lackingEnd = -1;
    for (let i = first; i < last; i++) {
      const item = this.get(i);
      if (item === undefined) {
        if (lacking < 0) lacking = i;
        lackingEnd = i + 1;
      }
      const row = this.render(i, item);
      row.style.transform = `translateY(${i * this.rowHeight - (top - this.el.scrollTop)}px)`;
      row.style.height = `${this.rowHeight}px`;
      out.push(row);
    }
    this.rows.replaceChildren(...out);
    if (lacking >= 0 && this.missing) this.missing(lacking, lackingEnd);
  }

  scrollToIndex(i: number) {
    const top = i * this.rowHeight / this.scale();
    const view = this.el.clientHeight;
    if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + this.rowHeight > this.el.scrollTop + view) this.el.scrollTop = top + this.rowHeight - view;
    this.schedule();
  }

  scrollToEnd() {
    this.el.scrollTop = this.el.scrollHeight;
    this.schedule();
  }

  atEnd() {
    return this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - this.rowHeight;
  }
}
