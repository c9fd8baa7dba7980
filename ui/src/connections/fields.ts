// Settings fields as the API describes them (`BusKind.fields`), drawn as form inputs that show
// and hide with the field they depend on, and read back as `connection_add` arguments. Nothing
// here knows a bus: a new bus's form comes from its description alone.

import type { Field } from '../bindings';
import { h } from '../dom';

/** What a form holds: `connection_add`'s arguments by name. */
export type Values = Record<string, unknown>;

/** The UI's own fields may also hide while another is set (a registry token once a user is). */
export type FormField = Field & { hidden_with?: string };

/**
 * A Schema Registry for framed payloads, with basic auth (user and password) or a bearer
 * token: every bus has these, after its own fields.
 */
export const REGISTRY_FIELDS: FormField[] = [
  { name: 'registry_url', label: 'Schema Registry', kind: 'text', required: false, choices: [], placeholder: 'http://127.0.0.1:8081', help: 'optional: decodes Confluent-framed Avro, protobuf and JSON Schema' },
  { name: 'registry_username', label: 'Registry user', kind: 'text', required: false, choices: [], help: 'optional: basic auth', shown_with: 'registry_url' },
  { name: 'registry_password', label: 'Registry password', kind: 'secret', required: false, choices: [], shown_with: 'registry_username' },
  { name: 'registry_token', label: 'Registry token', kind: 'secret', required: false, choices: [], help: 'optional: bearer token', shown_with: 'registry_url', hidden_with: 'registry_username' },
];

function isSet(x: unknown): boolean {
  return x === true || (typeof x === 'string' && x !== '');
}

/** Whether `f` shows: the field it is shown with is set and itself shown, all the way up. */
export function shown(f: FormField, all: FormField[], v: Values, seen = new Set<string>()): boolean {
  if (f.hidden_with !== undefined && isSet(v[f.hidden_with])) return false;
  if (f.shown_with === undefined) return true;
  if (!isSet(v[f.shown_with]) || seen.has(f.name)) return false;
  seen.add(f.name);
  const parent = all.find((g) => g.name === f.shown_with);
  return !parent || shown(parent, all, v, seen);
}

/**
 * The arguments the shown fields give: flags as booleans, other fields when filled in. An
 * empty required field goes as `""` so the API names what is missing; a hidden one is not
 * set at all (TLS files do not count once TLS is unticked).
 */
export function fieldArgs(fields: FormField[], v: Values): Record<string, string | boolean> {
  const args: Record<string, string | boolean> = {};
  for (const f of fields) {
    if (!shown(f, fields, v)) continue;
    const x = v[f.name];
    if (f.kind === 'flag') args[f.name] = x === true;
    else if (typeof x === 'string' && x !== '') args[f.name] = x;
    else if (f.required) args[f.name] = '';
  }
  return args;
}

/** A labelled form row, with a hint under the input. */
export function labelled(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

function input(f: FormField, v: Values, editing: boolean, changed: () => void): HTMLElement {
  const text = (x: unknown) => (typeof x === 'string' ? x : '');
  const set = (value: string | boolean | null) => {
    v[f.name] = value;
    changed();
  };
  switch (f.kind) {
    case 'flag':
      return h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: f.name, checked: v[f.name] === true, onchange: (e: Event) => set((e.target as HTMLInputElement).checked) }), f.label,
        f.help ? h('small', { class: 'muted' }, ` ${f.help}`) : null);
    case 'choice':
      return labelled(f.label, h('select', { name: f.name, onchange: (e: Event) => set((e.target as HTMLSelectElement).value || null) },
        (f.choices ?? []).map((c) => h('option', { value: c, selected: text(v[f.name]) === c }, c || 'none'))), f.help);
    case 'secret':
      // Secrets live in the keyring and never come back: blank while editing keeps the old one.
      return labelled(f.label, h('input', { type: 'password', name: f.name, value: text(v[f.name]), placeholder: editing ? '(unchanged)' : (f.placeholder ?? ''), oninput: (e: Event) => set((e.target as HTMLInputElement).value || null) }), f.help);
    case 'secret_lines':
      // Several secret lines (an endpoint's headers): a textarea, its text masked like a password.
      return labelled(f.label, h('textarea', { name: f.name, class: 'secret-lines mono', rows: 3, spellcheck: false, autocomplete: 'off', placeholder: editing ? '(unchanged)' : (f.placeholder ?? ''), oninput: (e: Event) => set((e.target as HTMLTextAreaElement).value || null) }, text(v[f.name])), f.help);
    default:
      return labelled(f.label, h('input', { type: 'text', name: f.name, value: text(v[f.name]), placeholder: f.placeholder, oninput: (e: Event) => set((e.target as HTMLInputElement).value || null) }), f.help);
  }
}

/**
 * The rows for `fields`, bound to `v`: typing updates `v` and shows or hides the rows that
 * depend on the field, without redrawing (the caret stays where it is).
 */
export function renderFields(fields: FormField[], v: Values, editing: boolean): HTMLElement[] {
  const rows: [FormField, HTMLElement][] = [];
  const update = () => { for (const [f, el] of rows) el.hidden = !shown(f, fields, v); };
  for (const f of fields) rows.push([f, input(f, v, editing, update)]);
  update();
  return rows.map(([, el]) => el);
}
