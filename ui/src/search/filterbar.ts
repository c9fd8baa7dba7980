// The filter bar: the CLI's filter language with completion of field paths seen in the data,
// syntax help, and errors that point at the column the API's error names.

import { h, clear } from '../dom';
import { SluiceError } from '../api';
import { state } from '../app';
import type { BusKind } from '../bindings';

export const METADATA_FIELDS = [
  'source', 'topic', 'partition', 'offset', 'key', 'schema', 'decode_error', 'event.id', 'event.bus', 'connection',
  'routing_key', 'event.exchange', 'exists(', 'after:', 'before:', 'last:15m',
];

/** The syntax help; which buses have `property.NAME` comes from their descriptions. */
export function help(kinds: BusKind[]): [string, string][] {
  const withProperties = kinds.filter((k) => k.capabilities.properties).map((k) => k.label);
  const listed = withProperties.length > 1 ? `${withProperties.slice(0, -1).join(', ')} and ${withProperties[withProperties.length - 1]}` : withProperties.join('');
  const properties = withProperties.length ? `; property.NAME for ${listed} properties` : '';
  return HELP.map(([ex, what]) => [ex, ex.startsWith('header.') ? `a header${properties}` : what]);
}

const HELP: [string, string][] = [
  ['"payment declined"', 'free text anywhere in the decoded or text payload (any case)'],
  ['order.customer.id = 42', 'a decoded field by path; items[0].sku for arrays'],
  ['status in ("FAILED", "RETRY")', 'one of several values'],
  ['amount > 100.5', 'comparisons: = != < <= > >= and ~ (regex or substring)'],
  ['exists(refund)', 'the field is present'],
  ['source = orders and partition = 3', 'metadata: source/topic, partition, offset, key, schema; event.id, event.bus'],
  ['header.trace-id = "x"', 'a header'],
  ['decode_error exists', 'events that failed to decode'],
  ['after:2026-11-20T10:00:00Z  last:15m', 'time: after:, before:, last:'],
  ['not (a or b) and c', 'and, or, not, parentheses'],
];

/** The word being typed at the caret, and the completions that fit it. */
export function complete(text: string, caret: number, fields: string[]): { from: number; to: number; items: string[] } {
  let from = caret;
  while (from > 0 && /[A-Za-z0-9_.\[\]#:-]/.test(text[from - 1])) from--;
  const word = text.slice(from, caret);
  // Inside a quoted string nothing is a field.
  const quotes = (text.slice(0, from).match(/"/g) ?? []).length;
  if (!word || quotes % 2 === 1) return { from, to: caret, items: [] };
  const lower = word.toLowerCase();
  const all = [...new Set([...fields, ...METADATA_FIELDS])];
  const starts = all.filter((f) => f.toLowerCase().startsWith(lower) && f !== word);
  const inside = all.filter((f) => !f.toLowerCase().startsWith(lower) && f.toLowerCase().includes(lower));
  return { from, to: caret, items: [...starts.sort(), ...inside.sort()].slice(0, 12) };
}

/** A filter the API refused: its message and, for a syntax error, the column (from 1). */
export type FilterProblem = { message: string; column: number | null };

/** The problem an API call that took a filter failed with. */
export function filterProblem(e: unknown): FilterProblem {
  return { message: e instanceof Error ? e.message : String(e), column: e instanceof SluiceError ? e.column : null };
}

export class FilterBar {
  el: HTMLElement;
  input: HTMLInputElement;
  private list: HTMLUListElement;
  private error: HTMLElement;
  private help: HTMLElement;
  private items: string[] = [];
  private active = 0;
  private range = { from: 0, to: 0 };
  fields: string[] = [];

  constructor(private onSubmit: (filter: string) => void, private check?: (filter: string) => Promise<FilterProblem | null>) {
    this.input = h('input', {
      type: 'text', class: 'filter-input', spellcheck: 'false', autocomplete: 'off',
      placeholder: 'Filter: status = "FAILED" and amount > 100   (press / to focus)', 'aria-label': 'Filter',
      oninput: () => this.update(), onkeydown: (e: KeyboardEvent) => this.key(e), onblur: () => setTimeout(() => this.hide(), 150),
    });
    this.list = h('ul', { class: 'completions', role: 'listbox', hidden: true });
    this.error = h('div', { class: 'filter-error', role: 'alert', hidden: true });
    this.help = h('div', { class: 'filter-help', hidden: true });
    this.el = h('div', { class: 'filter-bar' },
      h('div', { class: 'filter-row' },
        this.input,
        h('button', { class: 'primary', onclick: () => this.submit(), title: 'Search (Enter)' }, 'Search'),
        h('button', { class: 'ghost', 'aria-label': 'Filter syntax help', title: 'Filter syntax', onclick: () => this.toggleHelp() }, '?'),
      ),
      this.list, this.error, this.help);
  }

  value() {
    return this.input.value.trim();
  }

  set(filter: string) {
    this.input.value = filter;
  }

  showError(problem: FilterProblem | null) {
    if (!problem) {
      this.error.hidden = true;
      this.input.classList.remove('invalid');
      return;
    }
    const { message, column: col } = problem;
    this.input.classList.add('invalid');
    const text = this.input.value;
    clear(this.error,
      col !== null ? h('pre', { class: 'caret-line' }, text + '\n' + ' '.repeat(Math.max(0, col - 1)) + '^') : null,
      h('span', {}, message));
    this.error.hidden = false;
  }

  /** Drawn when opened: the buses are known by then. */
  private toggleHelp() {
    clear(this.help, h('table', {}, help(state.kinds).map(([ex, what]) => h('tr', {}, h('td', {}, h('code', {}, ex)), h('td', {}, what)))));
    this.help.hidden = !this.help.hidden;
  }

  private submit() {
    this.hide();
    this.onSubmit(this.value());
  }

  private update() {
    const caret = this.input.selectionStart ?? this.input.value.length;
    const c = complete(this.input.value, caret, this.fields);
    this.items = c.items;
    this.range = { from: c.from, to: c.to };
    this.active = 0;
    this.render();
    if (this.check) {
      const v = this.value();
      this.check(v).then((err) => {
        if (this.value() === v) this.showError(err);
      });
    }
  }

  private render() {
    if (!this.items.length) return this.hide();
    clear(this.list, this.items.map((item, i) =>
      h('li', { role: 'option', class: i === this.active ? 'active' : '', 'aria-selected': i === this.active ? 'true' : 'false', onmousedown: (e: MouseEvent) => { e.preventDefault(); this.accept(i); } }, item)));
    this.list.hidden = false;
  }

  private hide() {
    this.list.hidden = true;
    this.items = [];
  }

  private accept(i: number) {
    const item = this.items[i];
    if (!item) return;
    const v = this.input.value;
    this.input.value = v.slice(0, this.range.from) + item + v.slice(this.range.to);
    const caret = this.range.from + item.length;
    this.input.setSelectionRange(caret, caret);
    this.hide();
    this.input.focus();
  }

  private key(e: KeyboardEvent) {
    const open = !this.list.hidden && this.items.length > 0;
    if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : this.items.length - 1)) % this.items.length;
      this.render();
    } else if (open && e.key === 'Tab') {
      e.preventDefault();
      this.accept(this.active);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (open && e.altKey) this.accept(this.active);
      else this.submit();
    } else if (e.key === 'Escape') {
      this.hide();
      this.input.blur();
    }
    e.stopPropagation();
  }
}
