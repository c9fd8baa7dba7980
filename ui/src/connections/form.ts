// Add or edit a Kafka, RabbitMQ or SQS connection, with each bus's auth options, and test it.

import type { ConnectionAdd } from '../bindings';
import { call, SluiceError } from '../api';
import { h, clear, dialog, toast } from '../dom';
import { loadConnections } from '../app';

export function blankConnection(bus = 'kafka'): ConnectionAdd {
  return {
    name: '', bus, brokers: '', management_url: null, region: null, aws_profile: null, endpoint_url: null,
    access_key_id: null, sasl_mechanism: null, username: null, password: null, tls: false, tls_ca: null,
    tls_cert: null, tls_key: null, registry_url: null, registry_username: null, registry_password: null,
    registry_token: null, replace: false,
  };
}

/** What the test result says, by the error code the API returned. */
export function describeTest(e: unknown): { ok: boolean; text: string } {
  if (e instanceof SluiceError) {
    const what = e.code === 'auth_failed' ? 'Authentication failed' : e.code === 'unreachable' ? 'Unreachable' : 'Failed';
    return { ok: false, text: `${what}: ${e.message}` };
  }
  return { ok: false, text: String(e) };
}

function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

export function openConnectionForm(existing?: ConnectionAdd) {
  const c: ConnectionAdd = existing ? { ...existing } : blankConnection();
  const editing = Boolean(existing);
  const body = h('form', { class: 'form', onsubmit: (e: Event) => e.preventDefault() });
  const result = h('div', { class: 'test-result', role: 'status' });
  const text = (k: keyof ConnectionAdd, attrs: Record<string, string> = {}) =>
    h('input', { type: 'text', name: k, value: (c[k] as string | null) ?? '', oninput: (e: Event) => ((c as Record<string, unknown>)[k] = (e.target as HTMLInputElement).value || null), ...attrs });

  // A Schema Registry for framed payloads: basic auth (user and password) or a bearer token.
  const registryFields = () => [
    field('Schema Registry', text('registry_url', { placeholder: 'http://127.0.0.1:8081' }), 'optional: decodes Confluent-framed Avro, protobuf and JSON Schema'),
    ...(c.registry_url ? [
      field('Registry user', text('registry_username'), 'optional: basic auth'),
      c.registry_username
        ? field('Registry password', text('registry_password', { type: 'password', placeholder: editing ? '(unchanged)' : '' }))
        : field('Registry token', text('registry_token', { type: 'password', placeholder: editing ? '(unchanged)' : '' }), 'optional: bearer token'),
    ] : []),
  ];

  const render = () => {
    const bus = h('select', { name: 'bus', disabled: editing, onchange: (e: Event) => { c.bus = (e.target as HTMLSelectElement).value; render(); } },
      [['kafka', 'Kafka'], ['amqp', 'RabbitMQ (AMQP)'], ['sqs', 'Amazon SQS']].map(([v, l]) => h('option', { value: v, selected: c.bus === v }, l)));
    const common = [field('Name', text('name', editing ? { readonly: '' } : { required: '', placeholder: 'local' })), field('Bus', bus)];
    let specific: HTMLElement[] = [];
    if (c.bus === 'kafka') {
      const mech = h('select', { name: 'sasl_mechanism', onchange: (e: Event) => { c.sasl_mechanism = (e.target as HTMLSelectElement).value || null; render(); } },
        [['', 'none'], ['PLAIN', 'PLAIN'], ['SCRAM-SHA-256', 'SCRAM-SHA-256'], ['SCRAM-SHA-512', 'SCRAM-SHA-512']].map(([v, l]) => h('option', { value: v, selected: (c.sasl_mechanism ?? '') === v }, l)));
      specific = [
        field('Brokers', text('brokers', { placeholder: '127.0.0.1:9092' }), 'HOST:PORT, comma-separated'),
        field('SASL', mech),
        ...(c.sasl_mechanism ? [field('Username', text('username')), field('Password', text('password', { type: 'password', placeholder: editing ? '(unchanged)' : '' }))] : []),
        h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'tls', checked: c.tls, onchange: (e: Event) => { c.tls = (e.target as HTMLInputElement).checked; render(); } }), 'TLS'),
        ...(c.tls ? [field('CA file', text('tls_ca', { placeholder: '/path/ca.pem' })), field('Client certificate', text('tls_cert')), field('Client key', text('tls_key'))] : []),
        ...registryFields(),
      ];
    } else if (c.bus === 'amqp') {
      specific = [
        field('URL', text('brokers', { placeholder: 'amqp://guest@127.0.0.1:5672/%2f' }), 'amqp[s]://USER@HOST:PORT/VHOST'),
        field('Password', text('password', { type: 'password', placeholder: editing ? '(unchanged)' : '' })),
        field('Management API', text('management_url', { placeholder: 'http://127.0.0.1:15672' }), 'for listing exchanges and queues with counts'),
      ];
    } else {
      specific = [
        field('Region', text('region', { placeholder: 'eu-west-1' })),
        field('AWS profile', text('aws_profile'), 'optional: a named profile'),
        field('Endpoint URL', text('endpoint_url'), 'optional: another endpoint (LocalStack, moto)'),
        field('Access key id', text('access_key_id'), 'optional: static credentials'),
        ...(c.access_key_id ? [field('Secret access key', text('password', { type: 'password', placeholder: editing ? '(unchanged)' : '' }))] : []),
      ];
    }
    clear(body, common, specific, result);
  };
  render();

  const save = async () => {
    try {
      const added = await call('connection_add', { ...c, replace: editing });
      if (added.warning) toast(added.warning);
      await loadConnections();
      return true;
    } catch (e) {
      clear(result, h('span', { class: 'bad' }, (e as Error).message));
      return false;
    }
  };
  const test = async () => {
    clear(result, h('span', { class: 'muted' }, 'Testing…'));
    if (!(await save())) return;
    try {
      const health = await call('connection_test', { name: c.name });
      clear(result, h('span', { class: 'good' }, `Reachable: ${health.sources} topics/queues seen in ${health.latency_ms} ms`),
        health.registry ? h('div', { class: 'good' }, health.registry) : null);
    } catch (e) {
      const d = describeTest(e);
      clear(result, h('span', { class: 'bad' }, d.text));
    }
  };
  const d = dialog(editing ? `Edit ${c.name}` : 'Add connection', body, [
    h('button', { class: 'ghost', onclick: test }, 'Save and test'),
    h('button', { class: 'primary', onclick: async () => { if (await save()) { d.close(); toast(`Saved ${c.name}`); } } }, 'Save'),
  ]);
}
