// Schemas: drop or pick .proto files, folders or descriptor sets; see the message types and
// any error at file:line:col; map a topic's values (and keys) to a type.

import type { DroppedFile, RedecodeProgress, SchemaAdded, SchemaListing } from '../bindings';
import { call } from '../api';
import { h, clear, formatCount, toast } from '../dom';
import { hub, state } from '../app';
import { pickedFiles } from './drop';

export async function addSchemas(files: DroppedFile[]): Promise<SchemaAdded | null> {
  if (!files.length) {
    toast('Nothing to add: drop .proto files, folders of them, or descriptor sets (.binpb, .pb, .desc)', 'error');
    return null;
  }
  try {
    const added = await call('schema_drop', { files });
    if (added.errors.length) toast(`${added.errors.length} schema error(s): ${added.errors[0].display}`, 'error');
    else toast(`Added ${added.message_types.length} message type(s) from ${added.files.length} file(s)`);
    hub.emit('schemas', null);
    added.redecoding.forEach(watchRedecode);
    return added;
  } catch (e) {
    toast((e as Error).message, 'error');
    return null;
  }
}

/** Follows a re-decode job to its end, then tells the search view to show the new decoding. */
export async function watchRedecode(id: number) {
  for (;;) {
    const u = await call('job_poll', { id, after: 0, wait_ms: 2000 }).catch(() => null);
    if (!u) return;
    if (u.job.running) continue;
    if (u.job.error) {
      toast(`Re-decoding ${u.job.label} failed: ${u.job.error.message}`, 'error');
    } else {
      const p = u.result as RedecodeProgress;
      if (p.events) toast(`Re-decoded ${formatCount(p.events)} stored event(s) of ${u.job.label}: ${formatCount(p.changed)} changed, ${formatCount(p.errors)} with a decode error`);
      hub.emit('redecoded', u.job.label);
    }
    return;
  }
}

export class SchemasView {
  el: HTMLElement;
  private types: HTMLElement;
  private mappings: HTMLElement;
  private errors: HTMLElement;
  private listing: SchemaListing = { message_types: [], mappings: [] };
  private search: HTMLInputElement;

  constructor() {
    this.types = h('ul', { class: 'types' });
    this.mappings = h('div', {});
    this.errors = h('div', { class: 'schema-errors' });
    this.search = h('input', { type: 'search', placeholder: 'Filter types', oninput: () => this.renderTypes() });
    const pick = h('input', { type: 'file', multiple: true, hidden: true, onchange: async (e: Event) => this.added(await addSchemas(await pickedFiles((e.target as HTMLInputElement).files!))) });
    const pickDir = h('input', { type: 'file', multiple: true, hidden: true, webkitdirectory: true, onchange: async (e: Event) => this.added(await addSchemas(await pickedFiles((e.target as HTMLInputElement).files!))) });
    this.el = h('section', { class: 'view schemas-view' },
      h('div', { class: 'dropzone' },
        h('p', {}, h('strong', {}, 'Drop .proto files, folders or descriptor sets anywhere on the window.')),
        h('p', { class: 'muted' }, 'Imports between dropped files resolve by their path inside the dropped folder; Google\'s well-known types are built in.'),
        h('div', { class: 'row-buttons' }, h('button', { class: 'ghost', onclick: () => pick.click() }, 'Choose files…'), h('button', { class: 'ghost', onclick: () => pickDir.click() }, 'Choose folder…')),
        pick, pickDir),
      this.errors,
      h('div', { class: 'columns' },
        h('div', {}, h('h2', {}, 'Message types'), this.search, this.types),
        h('div', {}, h('h2', {}, 'Topic mappings'), this.mappings)));
    hub.on('schemas', () => this.load());
    hub.on('connections', () => this.renderMappings());
  }

  added(a: SchemaAdded | null) {
    if (!a) return;
    clear(this.errors, a.errors.map((e) => h('div', { class: 'bad mono' }, e.display)));
  }

  async load() {
    try {
      this.listing = await call('schema_list', {});
    } catch (e) {
      toast((e as Error).message, 'error');
    }
    this.renderTypes();
    this.renderMappings();
  }

  private renderTypes() {
    const q = this.search.value.toLowerCase();
    const types = this.listing.message_types.filter((t) => t.toLowerCase().includes(q));
    clear(this.types, types.length ? types.slice(0, 500).map((t) => h('li', { class: 'mono' }, t)) : h('li', { class: 'muted' }, 'No message types yet.'));
  }

  renderMappings() {
    const conn = h('select', { name: 'connection', 'aria-label': 'Connection' }, state.connections.map((c) => h('option', { value: c.name, selected: state.selected?.connection === c.name }, c.name)));
    const topic = h('input', { type: 'text', name: 'topic', placeholder: 'topic / exchange / queue', value: state.selected?.source ?? '' });
    const typeOptions = h('datalist', { id: 'type-options' }, this.listing.message_types.map((t) => h('option', { value: t })));
    const valueType = h('input', { type: 'text', name: 'value_type', list: 'type-options', placeholder: 'value type' });
    const keyType = h('input', { type: 'text', name: 'key_type', list: 'type-options', placeholder: 'key type (optional)' });
    const map = async () => {
      try {
        const set = await call('schema_map', { connection: conn.value, topic: topic.value.trim(), value_type: valueType.value.trim(), key_type: keyType.value.trim() || null });
        toast(`${set.mapping.topic} now decodes as ${set.mapping.value_type}; re-decoding what the lake holds of it`);
        this.load();
        watchRedecode(set.redecode_job);
      } catch (e) {
        toast((e as Error).message, 'error');
      }
    };
    const suggestions = h('div', { class: 'suggestions' });
    const detect = async () => {
      clear(suggestions, h('p', { class: 'muted' }, 'Scoring every known type on this topic\'s payloads…'));
      try {
        const found = await call('schema_detect', { connection: conn.value, topic: topic.value.trim() });
        if (!found.length) return clear(suggestions, h('p', { class: 'muted' }, 'No known type fits these payloads.'));
        valueType.value = found[0].type_name;
        clear(suggestions, h('ul', { class: 'candidates' }, found.slice(0, 5).map((c) => h('li', {},
          h('button', { class: 'link mono', title: 'Use this type', onclick: () => { valueType.value = c.type_name; } }, c.type_name),
          ` ${Math.round(c.confidence * 100)}% of fields fit · ${c.decoded}/${c.samples} decode${c.unseen_fields ? ` · ${c.unseen_fields} declared fields unused` : ''}`,
          c.tied ? h('span', { class: 'badge', title: 'Fits exactly as well as its neighbour: the samples cannot tell them apart' }, 'tie') : null))));
      } catch (e) {
        clear(suggestions, h('p', { class: 'bad' }, (e as Error).message));
      }
    };
    clear(this.mappings,
      this.listing.mappings.length ? h('table', { class: 'history' },
        h('thead', {}, h('tr', {}, h('th', {}, 'connection'), h('th', {}, 'topic'), h('th', {}, 'values'), h('th', {}, 'keys'))),
        h('tbody', {}, this.listing.mappings.map((m) => h('tr', {}, h('td', {}, m.connection), h('td', {}, m.topic), h('td', { class: 'mono' }, m.value_type), h('td', { class: 'mono' }, m.key_type ?? '—'))))) : h('p', { class: 'muted' }, 'No mappings: unmapped payloads show as JSON, text or bytes.'),
      h('div', { class: 'form inline-form' }, conn, topic, valueType, keyType, typeOptions,
        h('button', { class: 'ghost', title: 'Suggest the type that best fits the payloads', onclick: detect }, 'Detect'),
        h('button', { class: 'primary', onclick: map }, 'Map')),
      suggestions);
  }
}
