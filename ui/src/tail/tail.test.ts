import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BusKind } from '../bindings';
import { chosenMode, readModes, select, showReadModes, state } from '../app';
import { TailView } from './tail';
import { CapturesView } from '../captures/captures';
import fixture from '../connections/bus-kinds.fixture.json';

const kinds = fixture as BusKind[];
const [kafka, amqp, sqs] = kinds;
let started: Record<string, unknown>[] = [];

beforeEach(() => {
  state.kinds = kinds;
  state.connections = [
    { name: 'k', bus: kafka.bus, brokers: 'b:9092', auth: 'none', tls: false, registry: null },
    { name: 'r', bus: amqp.bus, brokers: 'amqp://h', auth: 'none', tls: false, registry: null },
    { name: 'q', bus: sqs.bus, brokers: 'eu-west-1', auth: 'none', tls: false, registry: null },
  ];
  started = [];
  vi.stubGlobal('fetch', vi.fn(async (url: string, init: { body: string }) => {
    const command = url.replace('api/', '');
    if (command === 'tail_start' || command === 'capture_start') started.push({ command, ...JSON.parse(init.body) });
    const answer = command === 'job_poll' ? { events: [], next: 0, dropped: 0, job: { id: 1, kind: 'tail', label: '', running: false, paused: false, progress: null, error: null }, result: null }
      : command === 'job_list' ? [] : command.endsWith('_start') ? 1 : null;
    return new Response(JSON.stringify(answer), { status: 200 });
  }));
});

afterEach(() => {
  vi.unstubAllGlobals();
  state.kinds = [];
  state.connections = [];
  select(null);
});

const options = (s: HTMLSelectElement) => [...s.options].map((o) => [o.value, o.textContent]);

describe('read modes', () => {
  it("come from the bus's description, the default first", () => {
    expect(readModes(amqp.bus).map((m) => m.name)).toEqual(['tap', 'requeue', 'destructive', 'stream']);
    expect(readModes(kafka.bus)).toEqual([]);
    expect(readModes('unknown')).toEqual([]);
    const s = document.createElement('select');
    showReadModes(s, sqs.read_modes);
    expect(options(s)).toEqual(sqs.read_modes.map((m) => [m.name, m.label]));
    expect([s.hidden, chosenMode(s)]).toEqual([false, 'requeue']);
    // A bus read one way only shows no choice and sends no mode.
    showReadModes(s, []);
    expect([s.hidden, chosenMode(s)]).toEqual([true, null]);
  });

  it('the tail offers the selected source’s modes and starts with the one chosen', async () => {
    const tail = new TailView();
    const mode = tail.el.querySelector<HTMLSelectElement>('select[aria-label="Read mode"]')!;
    select({ connection: 'r', source: 'orders', bus: amqp.bus });
    expect(options(mode)).toEqual(amqp.read_modes.map((m) => [m.name, m.label]));
    expect(mode.hidden).toBe(false);
    mode.value = 'stream';
    await tail.start();
    await tail.stop();
    select({ connection: 'k', source: 'orders', bus: kafka.bus });
    expect([mode.hidden, mode.options.length]).toEqual([true, 0]);
    await tail.start();
    await tail.stop();
    expect(started.map((s) => [s.connection, s.mode])).toEqual([['r', 'stream'], ['k', null]]);
  });

  it('a capture offers the chosen connection’s modes', async () => {
    const captures = new CapturesView();
    const conn = captures.el.querySelector<HTMLSelectElement>('select[name=connection]')!;
    const mode = captures.el.querySelector<HTMLSelectElement>('select[name=mode]')!;
    const sources = captures.el.querySelector<HTMLInputElement>('input[name=sources]')!;
    expect([conn.value, mode.hidden, sources.placeholder]).toEqual(['k', true, 'topics, comma-separated']);
    conn.value = 'q';
    conn.dispatchEvent(new Event('change'));
    expect(options(mode)).toEqual(sqs.read_modes.map((m) => [m.name, m.label]));
    expect([mode.hidden, sources.placeholder]).toEqual([false, 'queues, comma-separated']);
    mode.value = 'destructive';
    sources.value = 'jobs';
    [...captures.el.querySelectorAll('button')].find((b) => b.textContent === 'Start capture')!.click();
    await vi.waitFor(() => expect(started.length).toBe(1));
    conn.value = 'k';
    conn.dispatchEvent(new Event('change'));
    [...captures.el.querySelectorAll('button')].find((b) => b.textContent === 'Start capture')!.click();
    await vi.waitFor(() => expect(started.length).toBe(2));
    expect(started.map((s) => [s.command, s.connection, s.sources, s.mode])).toEqual([['capture_start', 'q', ['jobs'], 'destructive'], ['capture_start', 'k', ['jobs'], null]]);
  });
});
