import { describe, expect, it, vi, beforeEach } from 'vitest';
import { replayArgs, replayProblem, openReplay, parseEdit } from './replay';
import { state } from '../app';
import type { BusKind, ConnectionSummary } from '../bindings';
import kinds from '../connections/bus-kinds.fixture.json';

describe('the replay dialog', () => {
  it('builds the request the API takes', () => {
    expect(replayArgs('event.id in ("a")', { connection: 'dev', target: ' orders ', origin: false, rate: '50', limit: '' })).toEqual({
      filter: 'event.id in ("a")', ids: [], to: 'dev:orders', to_origin: false, rate: 50, limit: null, keep_partition: false, edits: [],
    });
    // Ticked rows travel as a list of ids, any number of them, not as a filter.
    const many = Array.from({ length: 5000 }, (_, i) => `kafka:dev/in/0/${i}`);
    const picked = replayArgs('', { connection: 'dev', target: 'o', origin: false, rate: '', limit: '' }, new Map(), many);
    expect(picked.filter).toBe('');
    expect(picked.ids).toHaveLength(5000);
    const back = replayArgs('x', { connection: 'dev', target: '', origin: true, rate: '0', limit: '10' });
    expect(back.to_origin).toBe(true);
    expect(back.to).toBe('');
    expect(back.rate).toBeNull();
    expect(back.limit).toBe(10);
  });

  it('sends edits by event id and rejects text that is not JSON', () => {
    const edits = new Map([['kafka:dev/in/0/7', { status: 'OK' }]]);
    expect(replayArgs('x', { connection: 'dev', target: 'o', origin: false, rate: '', limit: '' }, edits).edits).toEqual([{ id: 'kafka:dev/in/0/7', decoded: { status: 'OK' } }]);
    expect(parseEdit('{"a": 1}')).toEqual({ value: { a: 1 } });
    expect(parseEdit('"text"')).toEqual({ value: 'text' });
    expect('error' in parseEdit('{"a": ')).toBe(true);
  });

  it('needs no target for a destination whose bus names none (an HTTP endpoint)', () => {
    state.kinds = kinds as BusKind[];
    state.connections = [
      { name: 'hook', bus: 'http' } as ConnectionSummary,
      { name: 'jets', bus: 'nats' } as ConnectionSummary,
    ];
    expect(replayProblem({ connection: 'hook', target: '', origin: false })).toBeNull();
    expect(replayArgs('x', { connection: 'hook', target: '', origin: false, rate: '', limit: '' }).to).toBe('hook');
    expect(replayArgs('x', { connection: 'hook', target: '/v1', origin: false, rate: '', limit: '' }).to).toBe('hook:/v1');
    expect(replayProblem({ connection: 'jets', target: '', origin: false })).toMatch(/subject/);
    state.kinds = [];
    state.connections = [];
  });

  it('says what is missing before sending', () => {
    expect(replayProblem({ connection: '', target: 'x', origin: false })).toMatch(/connection/);
    expect(replayProblem({ connection: 'dev', target: ' ', origin: false })).toMatch(/topic/);
    expect(replayProblem({ connection: '', target: '', origin: true })).toBeNull();
  });

  describe('in the page', () => {
    beforeEach(() => {
      document.body.replaceChildren();
      state.connections = [{ name: 'dev', bus: 'kafka', brokers: 'b', auth: 'none', tls: false, registry: null }];
      state.sources.set('dev', [{ name: 'orders', internal: false, partitions: [], subjects: [], groups: [] }]);
    });

    it('previews exactly what the dry run returns, rendered as text', async () => {
      const calls: [string, unknown][] = [];
      vi.stubGlobal('fetch', vi.fn(async (url: string, init: RequestInit) => {
        const command = url.replace('api/', '');
        calls.push([command, JSON.parse(String(init.body))]);
        const body = command === 'replay_plan'
          ? { total: 1, rows: [{ id: 'i', source: 'dev:in', destination: 'dev:orders', key_text: 'k', preview: '<b>not bold</b>', size: 3 }] }
          : [];
        return new Response(JSON.stringify(body), { status: 200 });
      }));
      openReplay('status = "FAILED"', 1);
      const dlg = document.querySelector('dialog')!;
      const target = dlg.querySelector<HTMLInputElement>('input[name=target]')!;
      target.value = 'orders';
      target.dispatchEvent(new Event('input'));
      [...dlg.querySelectorAll('button')].find((b) => b.textContent?.startsWith('Preview'))!.click();
      await vi.waitFor(() => expect(dlg.textContent).toContain('Dry run: 1 events would be sent'));
      expect(calls.find(([c]) => c === 'replay_plan')![1]).toMatchObject({ filter: 'status = "FAILED"', to: 'dev:orders' });
      expect(dlg.querySelector('b')).toBeNull();
      expect(dlg.textContent).toContain('<b>not bold</b>');
      vi.unstubAllGlobals();
    });

    it('edits a selected event and sends the edit with the preview', async () => {
      const calls: [string, unknown][] = [];
      vi.stubGlobal('fetch', vi.fn(async (url: string, init: RequestInit) => {
        const command = url.replace('api/', '');
        calls.push([command, JSON.parse(String(init.body))]);
        const body = command === 'event_get'
          ? { id: 'e1', encoding: 'protobuf', schema: 'shop.Order', decoded: { status: 'FAILED' }, payload_text: null }
          : command === 'replay_plan' ? { total: 1, rows: [] } : [];
        return new Response(JSON.stringify(body), { status: 200 });
      }));
      openReplay('', 1, ['e1']);
      const dlg = document.querySelector('dialog')!;
      const target = dlg.querySelector<HTMLInputElement>('input[name=target]')!;
      target.value = 'orders';
      target.dispatchEvent(new Event('input'));
      [...dlg.querySelectorAll('button')].find((b) => b.textContent === 'Edit')!.click();
      const area = dlg.querySelector<HTMLTextAreaElement>('textarea[name=edit-json]')!;
      await vi.waitFor(() => expect(area.hidden).toBe(false));
      expect(JSON.parse(area.value)).toEqual({ status: 'FAILED' });
      expect(dlg.textContent).toContain('Re-encoded as shop.Order');
      area.value = '{"status": ';
      area.dispatchEvent(new Event('input'));
      expect(dlg.textContent).toContain('Not JSON');
      area.value = '{"status": "OK"}';
      area.dispatchEvent(new Event('input'));
      [...dlg.querySelectorAll('button')].find((b) => b.textContent?.startsWith('Preview'))!.click();
      await vi.waitFor(() => expect(calls.some(([c]) => c === 'replay_plan')).toBe(true));
      expect(calls.find(([c]) => c === 'replay_plan')![1]).toMatchObject({ ids: ['e1'], edits: [{ id: 'e1', decoded: { status: 'OK' } }] });
      vi.unstubAllGlobals();
    });
  });
});
