// Field-level diff of two events' decoded JSON: every leaf path with its value on each side.

import type { EventView, JsonValue } from '../bindings';
import { h, positionText } from '../dom';

export type DiffRow = { path: string; left: string | undefined; right: string | undefined; kind: 'same' | 'changed' | 'added' | 'removed' };

export function flatten(v: JsonValue | undefined, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (v !== null && typeof v === 'object') {
    const entries = Array.isArray(v) ? v.map((x, i) => [`[${i}]`, x] as const) : Object.entries(v).map(([k, x]) => [prefix ? `.${k}` : k, x] as const);
    if (entries.length === 0) out.set(prefix || '(root)', Array.isArray(v) ? '[]' : '{}');
    for (const [k, x] of entries) flatten(x, prefix + k, out);
  } else if (v !== undefined) {
    out.set(prefix || '(root)', JSON.stringify(v));
  }
  return out;
}

export function diffPaths(a: JsonValue | undefined, b: JsonValue | undefined): DiffRow[] {
  const l = flatten(a);
  const r = flatten(b);
  const paths = [...new Set([...l.keys(), ...r.keys()])].sort();
  return paths.map((path) => {
    const left = l.get(path);
    const right = r.get(path);
    const kind = left === undefined ? 'added' : right === undefined ? 'removed' : left === right ? 'same' : 'changed';
    return { path, left, right, kind };
  });
}

function value(e: EventView): JsonValue {
  return e.decoded ?? e.payload_text ?? e.payload;
}

export function renderDiff(a: EventView, b: EventView): HTMLElement {
  const rows = diffPaths(value(a), value(b));
  const changed = rows.filter((r) => r.kind !== 'same').length;
  return h('div', { class: 'diff' },
    h('p', {}, `${changed} of ${rows.length} fields differ`),
    h('table', { class: 'diff-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'field'), h('th', {}, `${a.source} ${positionText(a)}`), h('th', {}, `${b.source} ${positionText(b)}`))),
      h('tbody', {}, rows.map((r) => h('tr', { class: `diff-${r.kind}` }, h('td', { class: 'mono' }, r.path), h('td', { class: 'mono' }, r.left ?? '—'), h('td', { class: 'mono' }, r.right ?? '—'))))));
}
