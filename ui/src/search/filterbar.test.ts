import { describe, expect, it, vi } from 'vitest';
import { complete, errorColumn, FilterBar } from './filterbar';

describe('completion', () => {
  const fields = ['order.customer.id', 'order.total', 'status', 'items[0].sku', 'header.trace-id'];

  it('offers field paths that start with the word at the caret, then ones containing it', () => {
    const c = complete('status = "x" and ord', 20, fields);
    expect(c.items.slice(0, 2)).toEqual(['order.customer.id', 'order.total']);
    expect([c.from, c.to]).toEqual([17, 20]);
    expect(complete('cust', 4, fields).items).toContain('order.customer.id');
  });

  it('offers nothing inside a quoted string or on an empty word', () => {
    expect(complete('status = "ord', 13, fields).items).toEqual([]);
    expect(complete('status = ', 9, fields).items).toEqual([]);
  });

  it('knows metadata and time keywords', () => {
    expect(complete('aft', 3, []).items).toContain('after:');
    expect(complete('event.i', 7, []).items).toContain('event.id');
  });
});

describe('errors', () => {
  it('reads the column out of the API message', () => {
    expect(errorColumn('filter error at column 10: expected a value after `=`')).toBe(10);
    expect(errorColumn('something else')).toBeNull();
  });

  it('draws a caret under the column and marks the input', () => {
    const bar = new FilterBar(() => undefined);
    bar.set('amount > ');
    bar.showError('filter error at column 10: expected a value after `>`');
    const caret = bar.el.querySelector('.caret-line')!.textContent!;
    expect(caret.split('\n')[1]).toBe(' '.repeat(9) + '^');
    expect(bar.input.classList.contains('invalid')).toBe(true);
    bar.showError(null);
    expect(bar.input.classList.contains('invalid')).toBe(false);
  });

  it('Tab accepts a completion and Enter submits the filter', () => {
    const submit = vi.fn();
    const bar = new FilterBar(submit);
    bar.fields = ['order.customer.id'];
    document.body.appendChild(bar.el);
    bar.input.value = 'order.cu';
    bar.input.setSelectionRange(8, 8);
    bar.input.dispatchEvent(new Event('input'));
    bar.input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab' }));
    expect(bar.input.value).toBe('order.customer.id');
    bar.input.value += ' = 42';
    bar.input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    expect(submit).toHaveBeenCalledWith('order.customer.id = 42');
  });
});
