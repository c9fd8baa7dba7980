// Search: the filter bar, a histogram of matches, a virtualized table over server-side pages
// (a million matches scroll without being loaded), the detail pane, selection, compare,
// replay and export.

import type { EventRow } from '../bindings';
import { call, downloadExport, inBrowser } from '../api';
import { h, clear, formatCount, dialog, toast } from '../dom';
import { FilterBar, filterProblem } from './filterbar';
import { HistogramView, isoUs } from './histogram';
import { VirtualList } from '../virtual';
import { renderDetail } from '../detail/detail';
import { renderDiff } from '../detail/diff';
import { openReplay } from '../replay/replay';
import { hub, positionOf } from '../app';

const PAGE = 100;
const KEEP_PAGES = 40;

/** The filter the table shows: the user's filter and the zoomed time range. */
export function effectiveFilter(filter: string, range: [number, number] | null): string {
  const parts: string[] = [];
  if (filter.trim()) parts.push(`(${filter.trim()})`);
  if (range) parts.push(`after:${isoUs(range[0])}`, `before:${isoUs(range[1])}`);
  return parts.join(' and ');
}

export class SearchView {
  el: HTMLElement;
  bar: FilterBar;
  private hist: HistogramView;
  private list: VirtualList<EventRow>;
  private pages = new Map<number, EventRow[]>();
  private loading = new Set<number>();
  private total = 0;
  private filter = '';
  private range: [number, number] | null = null;
  private generation = 0;
  private checked = new Set<string>();
  /** The row ticked last, where a Shift-click range starts. */
  private lastTicked = -1;
  private shift = false;
  private selected = -1;
  private status: HTMLElement;
  private actions: HTMLElement;
  private detail: HTMLElement;

  constructor() {
    this.bar = new FilterBar((f) => this.run(f), async (f) => {
      try {
        await call('filter_check', { filter: f });
        return null;
      } catch (e) {
        return filterProblem(e);
      }
    });
    this.hist = new HistogramView((a, b) => { this.range = [a, b]; this.refresh(); });
    this.list = new VirtualList<EventRow>(28, (i) => this.rowAt(i), (i, r) => this.row(i, r), (a, b) => this.fetch(a, b));
    this.status = h('span', { class: 'muted search-status', role: 'status' });
    this.actions = h('div', { class: 'actions' });
    this.detail = h('div', { class: 'detail-pane' }, h('p', { class: 'muted' }, 'Select an event to see it here.'));
    this.el = h('section', { class: 'view search-view' },
      this.bar.el,
      h('div', { class: 'toolbar' }, this.status, this.actions),
      this.hist.el,
      h('div', { class: 'split' }, h('div', { class: 'table search-table' }, this.header(), this.list.el), this.detail));
    this.renderActions();
    // A new mapping re-decodes stored events: show them as they now decode.
    hub.on('redecoded', () => { this.loadFields(); if (this.generation) this.refresh(); });
  }

  async loadFields() {
    this.bar.fields = await call('fields', {}).catch(() => []);
  }

  private header() {
    return h('div', { class: 'row head' },
      h('span', { class: 'c-check' }), h('span', { class: 'c-time' }, 'time'), h('span', { class: 'c-src' }, 'source'), h('span', { class: 'c-pos' }, 'part@offset'),
      h('span', { class: 'c-key' }, 'key'), h('span', { class: 'c-type' }, 'type'), h('span', { class: 'c-payload' }, 'payload'));
  }

  private rowAt(i: number): EventRow | undefined {
    return this.pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  }

  private row(i: number, r: EventRow | undefined): HTMLElement {
    if (!r) return h('div', { class: 'row loading' }, h('span', { class: 'muted' }, '…'));
    const box = h('input', { type: 'checkbox', checked: this.checked.has(r.id), 'aria-label': 'Select event',
      onclick: (e: MouseEvent) => { e.stopPropagation(); this.shift = e.shiftKey; },
      onchange: (e: Event) => this.tick(i, r.id, (e.target as HTMLInputElement).checked) });
    return h('div', { class: `row${i === this.selected ? ' selected' : ''}${r.decode_error ? ' error' : ''}`, 'data-id': r.id, onclick: () => this.show(i) },
      h('span', { class: 'c-check' }, box),
      h('span', { class: 'c-time', title: r.timestamp ?? '' }, (r.timestamp ?? '').replace('T', ' ').slice(0, 19)),
      h('span', { class: 'c-src' }, `${r.connection}:${r.source}`),
      h('span', { class: 'c-pos' }, positionOf(r)),
      h('span', { class: 'c-key' }, r.key_text ?? ''),
      h('span', { class: 'c-type' }, r.schema ?? r.encoding),
      h('span', { class: 'c-payload' }, r.preview));
  }

  private async show(i: number) {
    this.selected = i;
    this.list.schedule();
    const r = this.rowAt(i);
    if (!r) return;
    try {
      const e = await call('event_get', { id: r.id });
      if (this.selected === i) clear(this.detail, renderDetail(e));
    } catch (e) {
      clear(this.detail, h('p', { class: 'bad' }, (e as Error).message));
    }
  }

  move(delta: number) {
    if (!this.total) return;
    const i = Math.min(this.total - 1, Math.max(0, this.selected + delta));
    this.list.scrollToIndex(i);
    this.show(i);
  }

  /** Ticks or unticks one row; with Shift, every row from the last one ticked to this one
   * (loading the pages between first), the way mail clients select a run of messages. */
  private async tick(i: number, id: string, on: boolean) {
    const from = this.lastTicked;
    this.lastTicked = i;
    const shift = this.shift;
    this.shift = false;
    if (!shift || from < 0 || from === i) {
      if (on) this.checked.add(id);
      else this.checked.delete(id);
      return this.renderActions();
    }
    const [a, b] = from < i ? [from, i] : [i, from];
    const gen = this.generation;
    // A page at a time: a long run passes more pages than are kept in memory.
    for (let p = Math.floor(a / PAGE); p <= Math.floor(b / PAGE); p++) {
      await this.fetch(p * PAGE, (p + 1) * PAGE);
      // A page the list was already loading is not awaited by `fetch`.
      while (!this.pages.has(p) && this.loading.has(p)) await new Promise((ok) => setTimeout(ok, 20));
      if (gen !== this.generation) return;
      for (let k = Math.max(a, p * PAGE); k <= Math.min(b, (p + 1) * PAGE - 1); k++) {
        const row = this.rowAt(k);
        if (!row) continue;
        if (on) this.checked.add(row.id);
        else this.checked.delete(row.id);
      }
      this.renderActions();
    }
    this.list.schedule();
  }

  toggleChecked() {
    const r = this.rowAt(this.selected);
    if (!r) return;
    if (this.checked.has(r.id)) this.checked.delete(r.id);
    else this.checked.add(r.id);
    this.renderActions();
    this.list.schedule();
  }

  /** Loads the pages holding rows `first..last`; resolves when they are in. */
  private async fetch(first: number, last: number) {
    const gen = this.generation;
    const loads: Promise<void>[] = [];
    for (let p = Math.floor(first / PAGE); p <= Math.floor((last - 1) / PAGE); p++) {
      if (this.pages.has(p) || this.loading.has(p)) continue;
      this.loading.add(p);
      loads.push(call('search', { filter: effectiveFilter(this.filter, this.range), offset: p * PAGE, limit: PAGE })
        .then((page) => {
          if (gen !== this.generation) return;
          this.pages.set(p, page.rows);
          // Keep memory bounded while scrolling through a million rows.
          if (this.pages.size > KEEP_PAGES) {
            const far = [...this.pages.keys()].sort((a, b) => Math.abs(b - p) - Math.abs(a - p))[0];
            this.pages.delete(far);
          }
          this.list.schedule();
        })
        .catch((e) => toast(e.message, 'error'))
        .finally(() => this.loading.delete(p)));
    }
    await Promise.all(loads);
  }

  run(filter: string) {
    this.filter = filter;
    this.range = null;
    this.checked.clear();
    this.bar.set(filter);
    history.replaceState(null, '', `#search?q=${encodeURIComponent(filter)}`);
    return this.refresh();
  }

  async refresh() {
    const gen = ++this.generation;
    const f = effectiveFilter(this.filter, this.range);
    this.pages.clear();
    this.loading.clear();
    this.selected = -1;
    // Row numbers now name other events: a Shift-click range must not start from the old one.
    this.lastTicked = -1;
    this.status.textContent = 'Searching…';
    const t0 = performance.now();
    try {
      this.bar.showError(null);
      this.list.el.scrollTop = 0;
      let counted = false;
      // A common filter's count reads the whole lake while its first page reads only the
      // newest files: the first rows show as soon as they arrive, the total follows.
      const firstPage = this.fetch(0, PAGE).then(() => {
        const rows = this.pages.get(0)?.length ?? 0;
        if (gen !== this.generation || counted || !rows) return;
        this.list.setTotal(rows);
        this.status.textContent = `counting… · first rows in ${Math.round(performance.now() - t0)} ms`;
      });
      const counting = call('count', { filter: f }).then((n) => { counted = true; return n; });
      const [count] = await Promise.all([counting, firstPage]);
      if (gen !== this.generation) return;
      this.total = count;
      this.list.setTotal(count);
      this.status.textContent = `${formatCount(count)} matching · ${Math.round(performance.now() - t0)} ms${this.range ? ' · zoomed' : ''}`;
      this.renderActions();
      call('histogram', { filter: f, buckets: 80 }).then((hist) => { if (gen === this.generation) this.hist.set(hist); }).catch(() => this.hist.set(null));
    } catch (e) {
      if (gen !== this.generation) return;
      this.total = 0;
      this.list.setTotal(0);
      this.hist.set(null);
      this.status.textContent = '';
      this.bar.showError(filterProblem(e));
    }
  }

  private renderActions() {
    const n = this.checked.size;
    clear(this.actions,
      this.range ? h('button', { class: 'ghost', onclick: () => { this.range = null; this.refresh(); } }, 'Reset zoom') : null,
      h('span', { class: 'muted' }, n ? `${n} selected` : ''),
      h('button', { class: 'ghost', disabled: n !== 2, title: 'Compare the two selected events field by field', onclick: () => this.compare() }, 'Compare'),
      h('button', { class: 'ghost', disabled: n === 0, title: 'Replay the selected events (r)', onclick: () => this.replaySelected() }, 'Replay selected'),
      h('button', { class: 'ghost', disabled: this.total === 0, onclick: () => openReplay(effectiveFilter(this.filter, this.range), this.total) }, `Replay all ${formatCount(this.total)} matching`),
      h('button', { class: 'ghost', disabled: this.total === 0, onclick: () => this.exportDialog() }, 'Export…'));
  }

  replaySelected() {
    if (this.checked.size) openReplay('', this.checked.size, [...this.checked]);
    else if (this.rowAt(this.selected)) openReplay('', 1, [this.rowAt(this.selected)!.id]);
  }

  private async compare() {
    const [a, b] = [...this.checked];
    try {
      const [ea, eb] = await Promise.all([call('event_get', { id: a }), call('event_get', { id: b })]);
      dialog('Compare events', renderDiff(ea, eb));
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  }

  private exportDialog() {
    const format = h('select', { 'aria-label': 'Format' }, ['jsonl', 'csv', 'parquet'].map((f) => h('option', { value: f }, f.toUpperCase())));
    // In a browser the file comes to this machine as a download; the desktop app writes a path.
    const browser = inBrowser();
    const path = h('input', { type: 'text', placeholder: '/tmp/events.jsonl', 'aria-label': 'File' });
    const out = h('p', { role: 'status' });
    const where = browser ? 'downloaded by this browser' : 'to a file on this machine';
    const d = dialog('Export results', h('div', { class: 'form' },
      h('p', {}, `${formatCount(this.total)} events, oldest first, ${where}.`),
      h('label', { class: 'field' }, h('span', {}, 'Format'), format),
      browser ? null : h('label', { class: 'field' }, h('span', {}, 'File'), path), out), [
      h('button', { class: 'primary', onclick: async () => {
        out.textContent = 'Exporting…';
        out.className = '';
        const filter = effectiveFilter(this.filter, this.range);
        try {
          if (browser) {
            const n = await downloadExport(filter, format.value);
            d.close();
            toast(`Exported ${formatCount(n)} events to sluice-export.${format.value}`);
          } else {
            const n = await call('export', { filter, format: format.value, path: path.value });
            d.close();
            toast(`Exported ${formatCount(n)} events to ${path.value}`);
          }
        } catch (e) {
          out.textContent = (e as Error).message;
          out.className = 'bad';
        }
      } }, browser ? 'Download' : 'Export')]);
  }
}
