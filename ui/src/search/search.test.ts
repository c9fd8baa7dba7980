import { describe, expect, it, vi } from 'vitest';
import { effectiveFilter } from './search';
import { bucketRange, isoUs } from './histogram';
import { visibleRange } from '../virtual';

describe('the results table', () => {
  it('renders only the rows in view, with a margin', () => {
    expect(visibleRange(0, 280, 28, 1_000_000)).toEqual([0, 18]);
    expect(visibleRange(28 * 500_000, 280, 28, 1_000_000)).toEqual([499_992, 500_018]);
    expect(visibleRange(0, 280, 28, 3)).toEqual([0, 3]);
    expect(visibleRange(0, 280, 28, 0)).toEqual([0, 0]);
  });

  it('zooming adds the time range to the filter, keeping the filter grouped', () => {
    expect(effectiveFilter('a = 1 or b = 2', null)).toBe('(a = 1 or b = 2)');
    expect(effectiveFilter('', null)).toBe('');
    const f = effectiveFilter('x', [Date.UTC(2026, 10, 20, 10) * 1000, Date.UTC(2026, 10, 20, 11) * 1000]);
    expect(f).toBe('(x) and after:2026-11-20T10:00:00Z and before:2026-11-20T11:00:00Z');
  });

  it('a drag over buckets becomes the time span they cover, in either direction', () => {
    const hist = { start_us: 1_000_000, bucket_us: 500, counts: [1, 2, 3, 4] };
    expect(bucketRange(hist, 2, 1)).toEqual([1_000_500, 1_001_500]);
    expect(isoUs(0)).toBe('1970-01-01T00:00:00Z');
  });
});

describe('a new search', () => {
  it('shows the first rows before the count arrives, then the total', async () => {
    const { SearchView } = await import('./search');
    let finishCount: (n: number) => void = () => undefined;
    const row = (i: number) => ({ id: `e${i}`, bus: 'kafka', connection: 'c', source: 't', partition: 0, offset: i, timestamp: null, key_text: null, schema: null, encoding: 'json', preview: '{}', size: 2, decode_error: false });
    vi.stubGlobal('fetch', vi.fn(async (url: string) => {
      const json = (v: unknown) => new Response(JSON.stringify(v), { status: 200 });
      if (url === 'api/search') return json({ offset: 0, rows: [row(1), row(2), row(3)] });
      if (url === 'api/count') return new Promise<Response>((r) => { finishCount = (n) => r(json(n)); });
      if (url === 'api/histogram') return json({ start_us: 0, bucket_us: 1, counts: [] });
      return json([]);
    }));
    const view = new SearchView();
    const status = view.el.querySelector('.search-status')!;
    const done = view.run('status = FAILED');
    await vi.waitFor(() => expect(status.textContent).toMatch(/^counting… · first rows in \d+ ms$/));
    finishCount(1234);
    await done;
    expect(status.textContent).toMatch(/^1,234 matching · \d+ ms$/);
    vi.unstubAllGlobals();
  });
});
