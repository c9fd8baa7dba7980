import { describe, expect, it, vi } from 'vitest';
import { complete, filterProblem, FilterBar, help } from './filterbar';
import { SluiceError } from '../api';
import { state } from '../app';
import type { BusKind } from '../bindings';
import kinds from '../connections/bus-kinds.fixture.json';

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
  it('takes the column from the API error, never from its text', () => {
    const e = new SluiceError({ code: 'filter', message: 'filter error at col 7: expected a value after `=`', column: 7 });
    expect(filterProblem(e)).toEqual({ message: 'filter error at col 7: expected a value after `=`', column: 7 });
    expect(filterProblem(new SluiceError({ code: 'filter', message: 'filter error at column 10: no column field' })).column).toBeNull();
    expect(filterProblem(new Error('something else'))).toEqual({ message: 'something else', column: null });
  });

  it('marks the column the error field names', async () => {
    const bar = new FilterBar(() => undefined, async () => filterProblem(new SluiceError({ code: 'filter', message: 'filter error at col 7: expected a value', column: 7 })));
    bar.input.value = 'a = 1 (';
    bar.input.dispatchEvent(new Event('input'));
    await vi.waitFor(() => expect(bar.el.querySelector('.caret-line')).not.toBeNull());
    expect(bar.el.querySelector('.caret-line')!.textContent).toBe('a = 1 (\n      ^');
    expect(bar.el.querySelector('.filter-error span')!.textContent).toBe('filter error at col 7: expected a value');
    expect(bar.input.classList.contains('invalid')).toBe(true);
  });

  it('draws a caret under the column and marks the input', () => {
    const bar = new FilterBar(() => undefined);
    bar.set('amount > ');
    bar.showError({ message: 'filter error at column 10: expected a value after `>`', column: 10 });
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

describe('syntax help', () => {
  it('names the buses whose messages have properties, from their descriptions', () => {
    const line = (k: BusKind[]) => help(k).find(([ex]) => ex.startsWith('header.'))![1];
    expect(line(kinds as BusKind[])).toBe('a header; property.NAME for RabbitMQ (AMQP), Amazon SQS, NATS, MQTT and Redis properties');
    expect(line([])).toBe('a header');
  });

  it('opens on ?', () => {
    state.kinds = kinds as BusKind[];
    const bar = new FilterBar(() => undefined);
    const button = bar.el.querySelector<HTMLButtonElement>('button[aria-label="Filter syntax help"]')!;
    button.click();
    expect(bar.el.querySelector('.filter-help')!.hasAttribute('hidden')).toBe(false);
    expect(bar.el.querySelectorAll('.filter-help tr').length).toBe(10);
    expect(bar.el.querySelector('.filter-help')!.textContent).toContain('MQTT and Redis properties');
    button.click();
    expect(bar.el.querySelector('.filter-help')!.hasAttribute('hidden')).toBe(true);
    state.kinds = [];
  });
});
