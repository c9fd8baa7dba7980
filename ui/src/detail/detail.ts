// The event detail pane: decoded JSON as a collapsible tree, headers, properties, key and the
// raw payload as text and hex, each with a copy button. Everything is rendered as text.

import type { EventView, JsonValue } from '../bindings';
import { h, copy, positionText } from '../dom';

export function jsonTree(v: JsonValue | undefined, name?: string, depth = 0): HTMLElement {
  const label = name !== undefined ? h('span', { class: 'jkey' }, name, ': ') : null;
  if (v !== null && typeof v === 'object') {
    const entries: [string, JsonValue | undefined][] = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
    const open = depth < 2;
    const brace = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
    const summary = h('summary', {}, label, h('span', { class: 'jpunct' }, brace[0]), h('span', { class: 'jcount' }, ` ${entries.length} ${Array.isArray(v) ? 'items' : 'fields'} `), h('span', { class: 'jpunct' }, brace[1]));
    const d = h('details', { class: 'jnode' }, summary, h('div', { class: 'jchildren' }, entries.map(([k, x]) => jsonTree(x, k, depth + 1))));
    d.open = open;
    return d;
  }
  const cls = v === null ? 'jnull' : typeof v === 'string' ? 'jstr' : typeof v === 'number' ? 'jnum' : 'jbool';
  return h('div', { class: 'jleaf' }, label, h('span', { class: cls }, typeof v === 'string' ? JSON.stringify(v) : String(v)));
}

export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** `hexdump -C` style lines: offset, 16 hex bytes, printable ASCII. */
export function hexDump(bytes: Uint8Array, max = 4096): string {
  const lines: string[] = [];
  const n = Math.min(bytes.length, max);
  for (let off = 0; off < n; off += 16) {
    const chunk = bytes.slice(off, Math.min(off + 16, n));
    const hex = Array.from(chunk, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(chunk, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join('\n');
}

function section(title: string, copyText: string | null, body: Node): HTMLElement {
  const btn = copyText !== null ? h('button', { class: 'ghost small', title: `Copy ${title.toLowerCase()}` }, 'Copy') : null;
  if (btn) btn.addEventListener('click', () => copy(copyText!, btn));
  return h('section', { class: 'detail-section' }, h('header', {}, h('h3', {}, title), btn), body);
}

function kvTable(obj: JsonValue): HTMLElement {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj) || Object.keys(obj).length === 0) return h('p', { class: 'muted' }, 'none');
  return h('table', { class: 'kv' }, Object.entries(obj).map(([k, v]) =>
    h('tr', {}, h('th', {}, k), h('td', {}, typeof v === 'string' ? v : JSON.stringify(v)))));
}

export function renderDetail(e: EventView): HTMLElement {
  const bytes = base64ToBytes(e.payload);
  const decoded = e.decoded !== null ? JSON.stringify(e.decoded, null, 2) : null;
  const where = positionText(e);
  return h('div', { class: 'detail' },
    h('div', { class: 'detail-meta' },
      h('div', { class: 'detail-title' }, h('strong', {}, `${e.connection}:${e.source}`), ' ', h('span', { class: 'muted' }, where)),
      h('div', { class: 'muted' }, e.timestamp ?? e.captured_at, ' · ', e.schema ?? e.encoding, ' · ', `${e.size} bytes`, e.truncated ? ' (cut)' : ''),
      e.decode_error ? h('div', { class: 'decode-error' }, e.decode_error) : null,
      h('div', { class: 'muted small' }, 'id ', h('code', {}, e.id))),
    decoded !== null ? section('Decoded', decoded, h('div', { class: 'jtree' }, jsonTree(e.decoded))) : null,
    section('Headers', JSON.stringify(e.headers, null, 2), kvTable(e.headers)),
    e.properties !== null ? section('Properties', JSON.stringify(e.properties, null, 2), kvTable(e.properties)) : null,
    section('Key', e.key_text ?? e.key ?? '', h('pre', { class: 'mono' }, e.key_text ?? (e.key ? `base64 ${e.key}` : 'none'))),
    e.payload_text !== null ? section('Payload (text)', e.payload_text, h('pre', { class: 'mono wrap' }, e.payload_text)) : null,
    section('Payload (hex)', hexDump(bytes, 1 << 20), h('pre', { class: 'mono hex' }, hexDump(bytes))),
  );
}
