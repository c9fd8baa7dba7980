// Matches over time above the results: drag across the bars to zoom into that time range.

import type { Histogram } from '../bindings';
import { h, clear, formatCount } from '../dom';

export function bucketRange(hist: Histogram, a: number, b: number): [number, number] {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  return [hist.start_us + lo * hist.bucket_us, hist.start_us + (hi + 1) * hist.bucket_us];
}

export function isoUs(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().replace('.000Z', 'Z');
}

export class HistogramView {
  el: HTMLElement;
  private hist: Histogram | null = null;
  private dragFrom = -1;
  private dragTo = -1;

  constructor(private onZoom: (fromUs: number, toUs: number) => void) {
    this.el = h('div', { class: 'histogram', 'aria-label': 'Matches over time' });
    window.addEventListener('mouseup', () => this.finish());
  }

  set(hist: Histogram | null) {
    this.hist = hist;
    this.render();
  }

  private finish() {
    if (this.dragFrom < 0 || !this.hist) return;
    const [from, to] = bucketRange(this.hist, this.dragFrom, this.dragTo);
    const moved = this.dragFrom !== this.dragTo;
    this.dragFrom = this.dragTo = -1;
    this.render();
    if (moved || this.hist.counts.length > 1) this.onZoom(from, to);
  }

  private render() {
    const hist = this.hist;
    if (!hist || !hist.counts.length) return clear(this.el);
    const max = Math.max(1, ...hist.counts);
    const [lo, hi] = this.dragFrom < 0 ? [-1, -1] : [Math.min(this.dragFrom, this.dragTo), Math.max(this.dragFrom, this.dragTo)];
    clear(this.el,
      h('div', { class: 'bars' }, hist.counts.map((n, i) => {
        const bar = h('div', {
          class: `bar${i >= lo && i <= hi ? ' picked' : ''}`,
          title: `${isoUs(hist.start_us + i * hist.bucket_us)}: ${formatCount(n)}`,
          onmousedown: (e: MouseEvent) => { e.preventDefault(); this.dragFrom = this.dragTo = i; this.render(); },
          onmouseenter: () => { if (this.dragFrom >= 0) { this.dragTo = i; this.render(); } },
        }, h('div', { class: 'fill' }));
        (bar.firstChild as HTMLElement).style.height = `${n ? Math.max(4, (n / max) * 100) : 0}%`;
        return bar;
      })),
      h('div', { class: 'axis' },
        h('span', {}, isoUs(hist.start_us)),
        h('span', { class: 'muted' }, 'drag to zoom'),
        h('span', {}, isoUs(hist.start_us + hist.counts.length * hist.bucket_us))));
  }
}
