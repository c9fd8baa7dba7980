// Captures: start capturing chosen topics/queues into the lake, and watch every capture's
// counters (messages, bytes, rate, errors). Captures are jobs of the Sluice process, so they
// keep running while the user looks at other views.

import type { CaptureProgress, JobInfo } from '../bindings';
import { call } from '../api';
import { h, clear, formatBytes, formatCount, toast } from '../dom';
import { hub, state, connectionKind, showReadModes, chosenMode } from '../app';

export function rate(p: CaptureProgress): string {
  return p.elapsed_ms > 0 ? `${formatCount(Math.round((p.read * 1000) / p.elapsed_ms))}/s` : '—';
}

/** The connections as the form offers them: names and buses. */
function listed(): string {
  return state.connections.map((c) => `${c.name}:${c.bus}`).join('\n');
}

/** Where a running collector takes events, and the token its clients send. */
function listening(l: NonNullable<CaptureProgress['listening']>): HTMLElement {
  const lines: string[] = [];
  if (l.http) lines.push(`POST ${l.http}`);
  if (l.grpc) lines.push(`gRPC ${l.grpc}`);
  lines.push(l.token ? `Authorization: Bearer ${l.token}` : 'token: the connection\'s own (keyring)');
  return h('div', { class: 'listening muted' }, lines.map((t) => h('div', {}, h('code', {}, t))));
}

export class CapturesView {
  el: HTMLElement;
  private jobs: HTMLElement;
  private form: HTMLElement;
  badge: HTMLElement;
  private names = '';

  constructor() {
    this.jobs = h('div', { class: 'jobs' });
    this.form = h('div', { class: 'form inline-form' });
    this.badge = h('span', { class: 'badge', hidden: true });
    this.el = h('section', { class: 'view captures-view' }, h('h2', {}, 'Capture into the lake'), this.form, h('h2', {}, 'Captures'), this.jobs);
    // The sidebar reloads the connections every 15 s: the form is drawn again only when the
    // list of connections changed, and keeps what the user typed into it either way.
    hub.on('connections', () => {
      if (listed() !== this.names) this.renderForm(true);
    });
    hub.on('select', () => this.renderForm(false));
    this.renderForm();
    setInterval(() => this.refresh(), 1000);
  }

  /** Draws the form again, keeping what was typed: all of it when only the connections
   * changed (`keepChoice`), all but the connection and sources when a source was selected. */
  private renderForm(keepChoice = false) {
    this.names = listed();
    const typed = (name: string) => this.form.querySelector<HTMLInputElement>(`[name="${name}"]`);
    const keptFrom = typed('from')?.value || 'end';
    const keptStop = typed('stop_at_end')?.checked ?? false;
    const keptConn = keepChoice ? typed('connection')?.value : undefined;
    const keptSources = keepChoice ? typed('sources')?.value : undefined;
    const keptMode = keepChoice ? typed('mode')?.value : undefined;
    const chosen = keptConn ?? state.selected?.connection;
    const conn = h('select', { name: 'connection', 'aria-label': 'Connection', onchange: () => updateModes() }, state.connections.map((c) => h('option', { value: c.name, selected: chosen === c.name }, c.name)));
    const sources = h('input', { type: 'text', name: 'sources', value: keptSources ?? state.selected?.source ?? '' });
    const from = h('input', { type: 'text', name: 'from', value: keptFrom, class: 'narrow', list: 'from-options', title: 'beginning, end, -N, OFFSET or @TIME' });
    const mode = h('select', { name: 'mode', 'aria-label': 'Read mode' });
    const stopAtEnd = h('input', { type: 'checkbox', name: 'stop_at_end', checked: keptStop });
    const fromLabel = h('label', {}, 'from ', from);
    const stopLabel = h('label', { class: 'check' }, stopAtEnd, 'stop at end');
    const updateModes = () => {
      const kind = connectionKind(conn.value);
      showReadModes(mode, kind?.read_modes ?? []);
      // A collector listens: its sources are whatever clients post to, and it has no
      // history to start from or reach the end of.
      const listens = kind?.capabilities.listens ?? false;
      sources.placeholder = listens
        ? `${kind?.sources_noun ?? 'sources'} to take, comma-separated (empty: every one)`
        : `${kind?.sources_noun ?? 'topics or queues'}, comma-separated`;
      fromLabel.hidden = listens;
      stopLabel.hidden = listens;
    };
    updateModes();
    if (keptMode && [...mode.options].some((o) => o.value === keptMode)) mode.value = keptMode;
    const start = async () => {
      const list = sources.value.split(',').map((s) => s.trim()).filter(Boolean);
      try {
        const listens = connectionKind(conn.value)?.capabilities.listens ?? false;
        await call('capture_start', { connection: conn.value, sources: list, from: listens ? null : from.value, mode: chosenMode(mode), binding_key: null, max_messages: null, stop_at_end: !listens && stopAtEnd.checked });
        toast(listens ? `Listening for ${list.join(', ') || 'every source'}` : `Capturing ${list.join(', ')}`);
        this.refresh();
      } catch (e) {
        toast((e as Error).message, 'error');
      }
    };
    clear(this.form, conn, sources, fromLabel, mode, stopLabel, h('button', { class: 'primary', onclick: start }, 'Start capture'));
  }

  async refresh() {
    let jobs: JobInfo[];
    try {
      jobs = (await call('job_list', {})).filter((j) => j.kind === 'capture');
    } catch {
      return;
    }
    const running = jobs.filter((j) => j.running).length;
    this.badge.hidden = running === 0;
    this.badge.textContent = String(running);
    if (!this.el.isConnected) return;
    clear(this.jobs, jobs.length === 0 ? h('p', { class: 'muted' }, 'No captures yet.') : h('table', { class: 'history captures' },
      h('thead', {}, h('tr', {}, ['capture', 'state', 'messages', 'in lake', 'bytes', 'rate', 'errors', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, jobs.reverse().map((j) => {
        const p = (j.progress ?? {}) as CaptureProgress;
        return h('tr', { 'data-job': j.id },
          h('td', {}, j.label, j.running && p.listening ? listening(p.listening) : null),
          h('td', { class: j.error ? 'bad' : j.running ? 'good' : '' }, j.error ? j.error.message : j.running ? 'running' : `done (${p.stopped_by ?? 'stopped'})`),
          h('td', {}, formatCount(p.read ?? 0)), h('td', {}, formatCount(p.captured ?? 0)), h('td', {}, formatBytes(p.bytes ?? 0)),
          h('td', {}, p.read !== undefined ? rate(p) : '—'), h('td', {}, formatCount(p.decode_errors ?? 0)),
          h('td', {}, j.running ? h('button', { class: 'ghost small', onclick: () => call('job_stop', { id: j.id }).catch((e) => toast(e.message, 'error')) }, 'Stop') : null));
      }))));
  }
}
