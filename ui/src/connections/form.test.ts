import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ConnectionAdd } from '../bindings';
import type { BusKind } from '../bindings';
import { ConnectionForm, openConnectionForm } from './form';
import { state } from '../app';
import fixture from './bus-kinds.fixture.json';

const kinds = fixture as BusKind[];

/** A form on `bus`, picked in the bus list as a person would. */
function formOn(bus: string, all = kinds): ConnectionForm {
  const form = new ConnectionForm(all, false);
  const select = form.el.querySelector<HTMLSelectElement>('select[name=bus]')!;
  select.value = bus;
  select.dispatchEvent(new Event('change'));
  return form;
}

const names = (form: ConnectionForm, visibleOnly = false) =>
  [...form.el.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select, textarea')]
    .filter((el) => !visibleOnly || !el.closest('[hidden]'))
    .map((el) => el.name);

function type(form: ConnectionForm, name: string, value: string) {
  const el = form.el.querySelector<HTMLInputElement>(`[name=${name}]`)!;
  el.value = value;
  el.dispatchEvent(new Event('input'));
}

function choose(form: ConnectionForm, name: string, value: string | boolean) {
  const el = form.el.querySelector<HTMLInputElement & HTMLSelectElement>(`[name=${name}]`)!;
  if (typeof value === 'boolean') el.checked = value;
  else el.value = value;
  el.dispatchEvent(new Event('change'));
}

afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
  state.kinds = [];
});

describe('the connection form', () => {
  it('lists the buses the API describes, by their labels, the first one chosen', () => {
    const form = new ConnectionForm(kinds, false);
    const options = [...form.el.querySelectorAll('select[name=bus] option')].map((o) => o.textContent);
    expect(options).toEqual(kinds.map((k) => k.label));
    expect(form.kind()).toBe(kinds[0]);
  });

  it("draws each kind's fields in its order, then the Schema Registry's", () => {
    for (const kind of kinds) {
      const form = formOn(kind.bus);
      expect(names(form)).toEqual(['name', 'bus', ...kind.fields.map((f) => f.name), 'registry_url', 'registry_username', 'registry_password', 'registry_token']);
      const labels = [...form.el.querySelectorAll('label.field > span')].map((s) => s.textContent);
      for (const f of kind.fields.filter((f) => f.kind !== 'flag')) expect(labels).toContain(f.label);
      for (const f of kind.fields.filter((f) => f.placeholder)) expect(form.el.querySelector<HTMLInputElement>(`[name=${f.name}]`)!.placeholder).toBe(f.placeholder);
      for (const f of kind.fields.filter((f) => f.help)) expect(form.el.textContent).toContain(f.help);
    }
  });

  it('draws each field kind as its input', () => {
    const tags = { text: 'INPUT:text', file: 'INPUT:text', secret: 'INPUT:password', secret_lines: 'TEXTAREA:textarea', flag: 'INPUT:checkbox', choice: 'SELECT:select-one' };
    for (const kind of kinds) {
      const form = formOn(kind.bus);
      for (const f of kind.fields) {
        const el = form.el.querySelector<HTMLInputElement>(`[name=${f.name}]`)!;
        expect(`${el.tagName}:${el.type}`, f.name).toBe(tags[f.kind]);
      }
    }
    const form = formOn(kinds[0].bus);
    const sasl = form.el.querySelector('select[name=sasl_mechanism]')!;
    expect([...sasl.querySelectorAll('option')].map((o) => [o.value, o.textContent])).toEqual([['', 'none'], ['PLAIN', 'PLAIN'], ['SCRAM-SHA-256', 'SCRAM-SHA-256'], ['SCRAM-SHA-512', 'SCRAM-SHA-512']]);
    expect(form.el.querySelector('label.check')!.textContent).toBe('TLS');
  });

  it('a bus nobody wrote UI code for is drawn from its description alone', () => {
    const other: BusKind = {
      bus: 'pulsar', label: 'Pulsar', source_noun: 'topic', sources_noun: 'topics', read_modes: [], capabilities: kinds[0].capabilities,
      fields: [
        { name: 'servers', label: 'Servers', kind: 'text', required: true, placeholder: 'pulsar://127.0.0.1:6650', choices: [] },
        { name: 'creds', label: 'Credentials file', kind: 'file', required: false, choices: [] },
      ],
    };
    const form = formOn('pulsar', [...kinds, other]);
    expect(names(form)).toEqual(['name', 'bus', 'servers', 'creds', 'registry_url', 'registry_username', 'registry_password', 'registry_token']);
    type(form, 'name', 'n');
    expect(form.args()).toEqual({ name: 'n', bus: 'pulsar', servers: '', replace: false });
  });

  it('shows a field while the one it is shown with is set, without redrawing', () => {
    const kafka = formOn(kinds[0].bus);
    expect(names(kafka, true)).toEqual(['name', 'bus', 'brokers', 'sasl_mechanism', 'tls', 'registry_url']);
    choose(kafka, 'sasl_mechanism', 'PLAIN');
    choose(kafka, 'tls', true);
    expect(names(kafka, true)).toEqual(['name', 'bus', 'brokers', 'sasl_mechanism', 'username', 'password', 'tls', 'tls_ca', 'tls_cert', 'tls_key', 'registry_url']);

    const sqs = formOn(kinds[2].bus);
    const key = sqs.el.querySelector<HTMLInputElement>('[name=access_key_id]')!;
    expect(names(sqs, true)).not.toContain('password');
    type(sqs, 'access_key_id', 'AKIA');
    expect(names(sqs, true)).toContain('password');
    expect(sqs.el.querySelector('[name=access_key_id]')).toBe(key);

    // The registry: a user or a token, a password once there is a user.
    type(sqs, 'registry_url', 'http://r');
    expect(names(sqs, true).slice(-3)).toEqual(['registry_url', 'registry_username', 'registry_token']);
    type(sqs, 'registry_username', 'u');
    expect(names(sqs, true).slice(-3)).toEqual(['registry_url', 'registry_username', 'registry_password']);
    type(sqs, 'registry_url', '');
    expect(names(sqs, true).slice(-1)).toEqual(['registry_url']);
  });

  it("sends the name, the bus and its shown fields as connection_add's arguments", () => {
    const kafka = formOn(kinds[0].bus);
    type(kafka, 'name', 'dev');
    type(kafka, 'brokers', '127.0.0.1:9092');
    choose(kafka, 'tls', true);
    type(kafka, 'tls_ca', '/ca.pem');
    expect(kafka.args()).toEqual({ name: 'dev', bus: 'kafka', brokers: '127.0.0.1:9092', tls: true, tls_ca: '/ca.pem', replace: false });
    // Unticking TLS drops its files; choosing SASL sends the user and password.
    choose(kafka, 'tls', false);
    choose(kafka, 'sasl_mechanism', 'SCRAM-SHA-256');
    type(kafka, 'username', 'alice');
    type(kafka, 'password', 's3cret');
    expect(kafka.args()).toEqual({ name: 'dev', bus: 'kafka', brokers: '127.0.0.1:9092', sasl_mechanism: 'SCRAM-SHA-256', username: 'alice', password: 's3cret', tls: false, replace: false });

    // What another bus's fields held stays out.
    const amqp = formOn(kinds[1].bus);
    type(amqp, 'name', 'rabbit');
    type(amqp, 'url', 'amqp://guest@h:5672/%2f');
    type(amqp, 'registry_url', 'http://r:8081');
    type(amqp, 'registry_token', 't0k');
    expect(amqp.args()).toEqual({ name: 'rabbit', bus: 'amqp', url: 'amqp://guest@h:5672/%2f', registry_url: 'http://r:8081', registry_token: 't0k', replace: false });

    // An empty required field goes as "" for the API to name.
    const sqs = formOn(kinds[2].bus);
    type(sqs, 'name', 'q');
    expect(sqs.args()).toEqual({ name: 'q', bus: 'sqs', region: '', replace: false });
  });

  it('edits a saved connection: fixed name and bus, secrets left unchanged', () => {
    const saved = { name: 'dev', bus: 'kafka', brokers: 'b:9092', sasl_mechanism: 'PLAIN', username: 'alice', password: null, tls: false, registry_url: 'http://r', registry_username: 'u', registry_password: null, registry_token: null, replace: true } as unknown as ConnectionAdd;
    const form = new ConnectionForm(kinds, true, saved);
    expect(form.el.querySelector<HTMLSelectElement>('select[name=bus]')!.disabled).toBe(true);
    expect(form.el.querySelector<HTMLInputElement>('input[name=name]')!.readOnly).toBe(true);
    expect(form.el.querySelector<HTMLSelectElement>('select[name=sasl_mechanism]')!.value).toBe('PLAIN');
    expect(form.el.querySelector<HTMLInputElement>('input[name=username]')!.value).toBe('alice');
    for (const secret of form.el.querySelectorAll<HTMLInputElement>('input[type=password]')) expect(secret.placeholder).toBe('(unchanged)');
    expect(form.args()).toEqual({ name: 'dev', bus: 'kafka', brokers: 'b:9092', sasl_mechanism: 'PLAIN', username: 'alice', tls: false, registry_url: 'http://r', registry_username: 'u', replace: true });
    expect(formOn(kinds[0].bus).el.querySelector<HTMLInputElement>('input[name=password]')!.placeholder).toBe('');
  });

  it('asks the API for the buses, saves what the form holds and tests it', async () => {
    const calls: [string, Record<string, unknown>][] = [];
    const answers: Record<string, unknown> = {
      bus_kinds: kinds,
      connection_add: { name: 'dev', password_store: null, warning: null },
      connection_list: [],
      connection_test: { brokers: [], sources: 3, latency_ms: 12, registry: null },
    };
    vi.stubGlobal('fetch', vi.fn(async (url: string, init: { body: string }) => {
      const command = url.replace('api/', '');
      calls.push([command, JSON.parse(init.body)]);
      return new Response(JSON.stringify(answers[command]), { status: 200 });
    }));
    await openConnectionForm();
    const dialog = document.querySelector('dialog')!;
    const input = (name: string, value: string) => {
      const el = dialog.querySelector<HTMLInputElement>(`input[name=${name}]`)!;
      el.value = value;
      el.dispatchEvent(new Event('input'));
    };
    input('name', 'dev');
    input('brokers', '127.0.0.1:9092');
    [...dialog.querySelectorAll('button')].find((b) => b.textContent === 'Save and test')!.click();
    await vi.waitFor(() => expect(dialog.querySelector('.test-result')!.textContent).toBe('Reachable: 3 topics seen in 12 ms'));
    expect(calls.map(([c]) => c)).toEqual(['bus_kinds', 'connection_add', 'connection_list', 'connection_test']);
    expect(calls[1][1]).toEqual({ name: 'dev', bus: 'kafka', brokers: '127.0.0.1:9092', tls: false, replace: false });
  });
});
