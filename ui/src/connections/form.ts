// Add or edit a connection and test it. The form is drawn from the API's description of each
// bus (`bus_kinds`): its label in the bus list, its fields, then the Schema Registry's.

import type { ConnectionAdd } from '../bindings';
import type { BusKind } from '../bindings';
import { call, SluiceError } from '../api';
import { h, clear, dialog, toast } from '../dom';
import { loadConnections, loadKinds, state } from '../app';
import { REGISTRY_FIELDS, fieldArgs, labelled, renderFields, type FormField, type Values } from './fields';

/** What the test result says, by the error code the API returned. */
export function describeTest(e: unknown): { ok: boolean; text: string } {
  if (e instanceof SluiceError) {
    const what = e.code === 'auth_failed' ? 'Authentication failed' : e.code === 'unreachable' ? 'Unreachable' : 'Failed';
    return { ok: false, text: `${what}: ${e.message}` };
  }
  return { ok: false, text: String(e) };
}

/** The form's fields and what they hold; a new connection starts on the first bus listed. */
export class ConnectionForm {
  readonly el: HTMLFormElement;
  /** Where saving and testing report. */
  readonly result: HTMLElement;
  readonly values: Values;

  constructor(private kinds: BusKind[], private editing: boolean, existing?: ConnectionAdd) {
    this.values = existing ? { ...(existing as unknown as Values) } : { name: '', bus: kinds[0]?.bus ?? '' };
    this.el = h('form', { class: 'form', onsubmit: (e: Event) => e.preventDefault() });
    this.result = h('div', { class: 'test-result', role: 'status' });
    this.render();
  }

  kind(): BusKind | undefined {
    return this.kinds.find((k) => k.bus === this.values.bus);
  }

  private fields(): FormField[] {
    return [...(this.kind()?.fields ?? []), ...REGISTRY_FIELDS];
  }

  /** `connection_add`'s arguments: the name, the bus and what its shown fields hold. */
  args(): ConnectionAdd {
    const args = { name: String(this.values.name ?? ''), bus: String(this.values.bus ?? ''), ...fieldArgs(this.fields(), this.values), replace: this.editing };
    // The generated type spells out each bus's settings; the form builds them from the description.
    return args as unknown as ConnectionAdd;
  }

  private render() {
    const v = this.values;
    const name = h('input', { type: 'text', name: 'name', value: String(v.name ?? ''), oninput: (e: Event) => (v.name = (e.target as HTMLInputElement).value), ...(this.editing ? { readonly: '' } : { required: '', placeholder: 'local' }) });
    const bus = h('select', { name: 'bus', disabled: this.editing, onchange: (e: Event) => { v.bus = (e.target as HTMLSelectElement).value; this.render(); } },
      this.kinds.map((k) => h('option', { value: k.bus, selected: v.bus === k.bus }, k.label)));
    clear(this.el, labelled('Name', name), labelled('Bus', bus), renderFields(this.fields(), v, this.editing), this.result);
  }
}

export async function openConnectionForm(existing?: ConnectionAdd) {
  if (!state.kinds.length) {
    try {
      await loadKinds();
    } catch (e) {
      return toast((e as Error).message, 'error');
    }
  }
  const editing = Boolean(existing);
  const form = new ConnectionForm(state.kinds, editing, existing);
  const name = () => String(form.values.name ?? '');

  const save = async () => {
    try {
      const added = await call('connection_add', form.args());
      if (added.warning) toast(added.warning);
      await loadConnections();
      return true;
    } catch (e) {
      clear(form.result, h('span', { class: 'bad' }, (e as Error).message));
      return false;
    }
  };
  const test = async () => {
    clear(form.result, h('span', { class: 'muted' }, 'Testing…'));
    if (!(await save())) return;
    try {
      const health = await call('connection_test', { name: name() });
      const seen = form.kind()?.sources_noun ?? 'topics/queues';
      clear(form.result, h('span', { class: 'good' }, `Reachable: ${health.sources} ${seen} seen in ${health.latency_ms} ms`),
        health.registry ? h('div', { class: 'good' }, health.registry) : null);
    } catch (e) {
      clear(form.result, h('span', { class: 'bad' }, describeTest(e).text));
    }
  };
  const d = dialog(editing ? `Edit ${name()}` : 'Add connection', form.el, [
    h('button', { class: 'ghost', onclick: test }, 'Save and test'),
    h('button', { class: 'primary', onclick: async () => { if (await save()) { d.close(); toast(`Saved ${name()}`); } } }, 'Save'),
  ]);
}
