import { describe, expect, it } from 'vitest';
import { diffPaths, flatten } from './diff';
import { hexDump, jsonTree } from './detail';
import { positionText } from '../dom';

describe('compare', () => {
  it('flattens nested values to paths', () => {
    expect([...flatten({ a: { b: [1, { c: 'x' }] }, e: {} })]).toEqual([['a.b[0]', '1'], ['a.b[1].c', '"x"'], ['e', '{}']]);
  });

  it('marks changed, added and removed fields', () => {
    const rows = diffPaths({ id: '1', amount: 5, gone: true }, { id: '2', amount: 5, extra: null });
    const kinds = Object.fromEntries(rows.map((r) => [r.path, r.kind]));
    expect(kinds).toEqual({ amount: 'same', extra: 'added', gone: 'removed', id: 'changed' });
  });
});

describe('detail', () => {
  it('hex dumps like hexdump -C', () => {
    expect(hexDump(new Uint8Array([0x41, 0x00, 0xff]))).toBe('00000000  41 00 ff' + ' '.repeat(39) + '  |A..|');
  });

  it('renders JSON as text nodes, never markup', () => {
    const el = jsonTree({ html: '<script>x</script>' });
    expect(el.querySelector('script')).toBeNull();
    expect(el.textContent).toContain('"<script>x</script>"');
  });
});

describe('positions', () => {
  it('writes each bus position as its bus does', () => {
    expect(positionText({ partition: 2, offset: 26 })).toBe('2@26');
    expect(positionText({ partition: null, offset: 1700000000000, sub_offset: 3 })).toBe('1700000000000-3');
    expect(positionText({ partition: null, offset: null })).toBe('');
  });
});
