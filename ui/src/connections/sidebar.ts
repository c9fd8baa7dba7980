// The sidebar: connections, and under each its topics / exchanges / queues with counts,
// refreshed on demand and every 15 seconds while expanded.

import type { SourceInfo } from '../bindings';
import { call } from '../api';
import { h, clear, formatCount, toast } from '../dom';
import { hub, state, loadConnections, select, kindOf, connectionKind } from '../app';
import { openConnectionForm } from './form';
import { describeTest } from './form';

const REFRESH_MS = 15_000;

/** Whether a connection's bus can be read at all (an HTTP endpoint is a destination only). */
function reads(connection: string): boolean {
  return connectionKind(connection)?.capabilities.reads ?? true;
}

/** A source that no listing shows (a NATS subject, an MQTT topic filter, a Redis channel
 * pattern, a Kafka topic by name): typed, then opened like a listed one. */
/** One box per connection, kept across redraws of the tree: the tree is drawn again when its
 * listing arrives or refreshes, and a new box would lose what the user was typing. */
const openers = new Map<string, HTMLElement>();

function openByName(connection: string, bus: string): HTMLElement {
  const key = `${bus}\n${connection}`;
  const kept = openers.get(key);
  if (kept) return kept;
  const made = newOpener(connection, bus);
  // Kept once the bus is known, so its placeholder names what the bus holds.
  if (kindOf(bus)) openers.set(key, made);
  return made;
}

function newOpener(connection: string, bus: string): HTMLElement {
  const noun = kindOf(bus)?.source_noun ?? 'topic';
  const input = h('input', { type: 'text', name: 'open-source', class: 'small', placeholder: `open a ${noun} by name or pattern…`, 'aria-label': `Open a ${noun} of ${connection} by name` }) as HTMLInputElement;
  return h('form', { class: 'open-source', onsubmit: (e: Event) => {
    e.preventDefault();
    const name = input.value.trim();
    if (name) select({ connection, source: name, bus });
  } }, input);
}

export function sourceCounts(s: SourceInfo): string {
  // Seen during a short look (MQTT), not counted by the bus: say so, with when.
  if (s.last_seen !== undefined) return `${formatCount(s.ready ?? 0)} seen · ${s.last_seen.slice(11, 19)}`;
  if (s.ready !== undefined || s.unacked !== undefined) {
    const parts = [`${formatCount(s.ready ?? 0)} ready`];
    if (s.unacked) parts.push(`${formatCount(s.unacked)} unacked`);
    if (s.delayed) parts.push(`${formatCount(s.delayed)} delayed`);
    return parts.join(' · ');
  }
  if (s.partitions.length) {
    const msgs = s.partitions.reduce((n, p) => n + Math.max(0, p.high - p.low), 0);
    return `${s.partitions.length}p · ${formatCount(msgs)}`;
  }
  return '';
}

export class Sidebar {
  el: HTMLElement;
  private tree: HTMLElement;
  private open = new Set<string>();
  private errors = new Map<string, string>();

  constructor() {
    this.tree = h('nav', { class: 'tree', 'aria-label': 'Connections' });
    this.el = h('aside', { class: 'sidebar' },
      h('div', { class: 'sidebar-head' },
        h('h2', {}, 'Connections'),
        h('button', { class: 'ghost small', title: 'Refresh counts', 'aria-label': 'Refresh', onclick: () => this.refreshAll() }, '↻'),
        h('button', { class: 'ghost small', title: 'Add a connection', onclick: () => openConnectionForm() }, '+ Add')),
      this.tree);
    hub.on('connections', () => this.render());
    hub.on('select', () => this.render());
    setInterval(() => this.refreshAll(), REFRESH_MS);
  }

  async refreshAll() {
    await loadConnections().catch((e) => toast(e.message, 'error'));
    await Promise.all([...this.open].filter(reads).map((n) => this.load(n)));
  }

  private async load(name: string) {
    try {
      state.sources.set(name, await call('topics', { name }));
      this.errors.delete(name);
    } catch (e) {
      this.errors.set(name, describeTest(e).text);
    }
    this.render();
  }

  private toggle(name: string) {
    if (this.open.has(name)) this.open.delete(name);
    else {
      this.open.add(name);
      if (reads(name)) this.load(name);
    }
    this.render();
  }

  render() {
    if (!state.connections.length) {
      clear(this.tree, h('p', { class: 'muted empty' }, 'No connections yet. ', h('button', { class: 'link', onclick: () => openConnectionForm() }, 'Add one')));
      return;
    }
    // A kept open-by-name box is moved by the redraw, which takes the keyboard focus from it:
    // given back, with the caret where it was.
    const active = document.activeElement;
    const typing = active instanceof HTMLInputElement && active.name === 'open-source' ? active : null;
    const caret = typing ? [typing.selectionStart, typing.selectionEnd] : null;
    clear(this.tree, state.connections.map((c) => {
      const open = this.open.has(c.name);
      const sources = (state.sources.get(c.name) ?? []).filter((s) => !s.internal);
      const err = this.errors.get(c.name);
      return h('div', { class: 'conn' },
        h('div', { class: 'conn-row' },
          h('button', { class: 'conn-name', 'aria-expanded': open ? 'true' : 'false', onclick: () => this.toggle(c.name) },
            h('span', { class: 'chev' }, open ? '▾' : '▸'), h('span', { class: `bus bus-${c.bus}` }, c.bus), c.name),
          h('button', { class: 'ghost small', title: `Edit ${c.name}`, onclick: async () => openConnectionForm(await call('connection_get', { name: c.name })) }, 'Edit'),
          h('button', { class: 'ghost small danger', title: `Remove ${c.name}`, onclick: async () => {
            if (!confirm(`Remove connection ${c.name}? Its captured events stay in the lake.`)) return;
            await call('connection_remove', { name: c.name }).catch((e) => toast(e.message, 'error'));
            await loadConnections();
          } }, '×')),
        open && !reads(c.name) ? h('ul', { class: 'sources' },
          h('li', { class: 'muted small' }, 'A replay destination: Sluice sends events here and reads nothing.')) : null,
        open && reads(c.name) ? h('ul', { class: 'sources' },
          err ? h('li', { class: 'bad small' }, err) : null,
          kindOf(c.bus)?.listing_note ? h('li', { class: 'muted small note' }, kindOf(c.bus)!.listing_note) : null,
          !err && !state.sources.has(c.name) ? h('li', { class: 'muted small' }, 'loading…') : null,
          sources.map((s) => {
            const sel = state.selected?.connection === c.name && state.selected?.source === s.name;
            return h('li', {},
              h('button', { class: `source${sel ? ' selected' : ''}`, title: s.kind ?? kindOf(c.bus)?.source_noun ?? 'topic', 'data-source': s.name,
                onclick: () => select({ connection: c.name, source: s.name, bus: c.bus }) },
                h('span', { class: 'source-name' }, s.name || '(default)'),
                h('span', { class: 'counts' }, sourceCounts(s))));
          }),
          // A collector has nothing to open: clients name its sources (Captures listens).
          kindOf(c.bus)?.capabilities.listens ? null : h('li', {}, openByName(c.name, c.bus))) : null);
    }));
    if (typing?.isConnected && caret) {
      typing.focus();
      typing.setSelectionRange(caret[0], caret[1]);
    }
  }
}
