// The replay dialog: a destination (any connection and topic/exchange/queue, or back to
// origin), a rate, a dry-run preview of exactly what will be sent, then progress with pause
// and cancel, and a summary. Selected events can be edited first: their decoded JSON is
// re-encoded by Sluice with each event's own type and framing. Finished replays land in the
// history view.

import type { JsonValue, ReplayArgs, ReplayEdit, ReplayProgress, ReplaySummary } from '../bindings';
import { call } from '../api';
import { h, clear, dialog, formatCount, toast } from '../dom';
import { state, connectionKind } from '../app';

export function replayArgs(filter: string, form: { connection: string; target: string; origin: boolean; rate: string; limit: string }, edits: Map<string, JsonValue> = new Map(), ids: string[] = []): ReplayArgs {
  const num = (s: string) => (s.trim() && Number(s) > 0 ? Math.floor(Number(s)) : null);
  return {
    filter,
    // Ticked rows go as a list, not as an `event.id in (...)` filter: a filter holds 1,024 terms.
    ids,
    to: form.origin ? '' : form.target.trim() ? `${form.connection}:${form.target.trim()}` : form.connection,
    to_origin: form.origin,
    rate: num(form.rate),
    limit: num(form.limit),
    keep_partition: false,
    edits: [...edits].map(([id, decoded]): ReplayEdit => ({ id, decoded })),
  };
}

/** The edited JSON, or where it stops being JSON. */
export function parseEdit(text: string): { value: JsonValue } | { error: string } {
  try {
    return { value: JSON.parse(text) as JsonValue };
  } catch (e) {
    return { error: `Not JSON: ${(e as Error).message}` };
  }
}

/** At most this many selected events offer an editor. */
const EDITABLE = 50;

/** "Edit before sending": pick a selected event, change its decoded JSON (a JSON string for a
 * text payload). Only changed events are sent edited; the rest go out byte for byte. */
function editor(ids: string[], edits: Map<string, JsonValue>): HTMLElement {
  const pick = h('select', { name: 'edit-event', 'aria-label': 'Event to edit' }, ids.map((id) => h('option', { value: id }, id)));
  const area = h('textarea', { name: 'edit-json', class: 'mono edit-json', rows: 10, spellcheck: false, hidden: true });
  const note = h('p', { class: 'muted' });
  let original = '';
  const load = async () => {
    const id = pick.value;
    try {
      const e = await call('event_get', { id });
      const base: JsonValue = e.decoded ?? e.payload_text;
      if (base === null) {
        area.hidden = true;
        note.textContent = `This ${e.encoding} payload has no decoded form to edit.`;
        return;
      }
      original = JSON.stringify(base, null, 2);
      area.value = edits.has(id) ? JSON.stringify(edits.get(id), null, 2) : original;
      area.hidden = false;
      note.textContent = e.schema ? `Re-encoded as ${e.schema} when changed.` : `Sent as ${e.encoding} when changed.`;
    } catch (err) {
      note.textContent = (err as Error).message;
    }
  };
  area.addEventListener('input', () => {
    const id = pick.value;
    if (area.value.trim() === original.trim()) {
      edits.delete(id);
      note.textContent = 'Unchanged: the original bytes are sent.';
      note.className = 'muted';
      return;
    }
    const r = parseEdit(area.value);
    if ('error' in r) {
      edits.delete(id);
      note.textContent = r.error;
      note.className = 'bad';
    } else {
      edits.set(id, r.value);
      note.textContent = `Edited (${edits.size} event${edits.size === 1 ? '' : 's'} changed); the preview checks it against the schema.`;
      note.className = 'good';
    }
  });
  pick.addEventListener('change', load);
  const open = h('button', { class: 'ghost', onclick: load }, 'Edit');
  return h('details', { class: 'replay-edit' }, h('summary', {}, 'Edit before sending'), h('div', { class: 'inline' }, pick, open), area, note);
}

/** Why the form cannot be sent yet, or null. */
export function replayProblem(form: { connection: string; target: string; origin: boolean }): string | null {
  if (form.origin) return null;
  if (!form.connection) return 'Choose a destination connection.';
  const kind = connectionKind(form.connection);
  if (!form.target.trim() && (kind?.capabilities.needs_target ?? true)) return `Name the destination ${kind?.source_noun ?? 'topic, exchange or queue'}.`;
  return null;
}

/** What the target box asks for on the destination's bus. */
function targetHint(connection: string): string {
  const kind = connectionKind(connection);
  if (!kind) return 'topic, exchange[/routing-key] or queue';
  return kind.capabilities.needs_target ? kind.source_noun : `${kind.source_noun} (optional)`;
}

export function openReplay(filter: string, count: number, ids: string[] = []) {
  const edits = new Map<string, JsonValue>();
  const form = { connection: state.connections[0]?.name ?? '', target: '', origin: false, rate: '', limit: '' };
  const targets = h('datalist', { id: 'replay-targets' });
  const loadTargets = async () => {
    const names = (state.sources.get(form.connection) ?? (await call('topics', { name: form.connection }).catch(() => []))).map((s) => s.name);
    clear(targets, names.map((n) => h('option', { value: n })));
  };
  const target = h('input', { type: 'text', name: 'target', list: 'replay-targets', placeholder: targetHint(form.connection), oninput: (e: Event) => (form.target = (e.target as HTMLInputElement).value) }) as HTMLInputElement;
  const conn = h('select', { name: 'connection', 'aria-label': 'Destination connection', onchange: (e: Event) => { form.connection = (e.target as HTMLSelectElement).value; target.placeholder = targetHint(form.connection); loadTargets(); } },
    state.connections.map((c) => h('option', { value: c.name }, `${c.name} (${c.bus})`)));
  const origin = h('input', { type: 'checkbox', name: 'origin', onchange: (e: Event) => { form.origin = (e.target as HTMLInputElement).checked; conn.disabled = target.disabled = form.origin; } });
  const rate = h('input', { type: 'number', min: '0', name: 'rate', placeholder: 'unlimited', class: 'narrow', oninput: (e: Event) => (form.rate = (e.target as HTMLInputElement).value) });
  const limit = h('input', { type: 'number', min: '0', name: 'limit', placeholder: 'all', class: 'narrow', oninput: (e: Event) => (form.limit = (e.target as HTMLInputElement).value) });
  const out = h('div', { class: 'replay-out' });
  loadTargets();

  const preview = async () => {
    const problem = replayProblem(form);
    if (problem) return clear(out, h('p', { class: 'bad' }, problem));
    clear(out, h('p', { class: 'muted' }, 'Planning…'));
    try {
      const plan = await call('replay_plan', replayArgs(filter, form, edits, ids));
      clear(out,
        h('p', {}, `Dry run: ${formatCount(plan.total)} events would be sent, oldest first${plan.rows.length < plan.total ? ` (first ${plan.rows.length} shown)` : ''}.`),
        h('div', { class: 'plan' }, h('table', { class: 'plan-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'from'), h('th', {}, 'to'), h('th', {}, 'key'), h('th', {}, 'payload'))),
          h('tbody', {}, plan.rows.map((r) => h('tr', {}, h('td', {}, r.source), h('td', {}, r.destination), h('td', { class: 'mono' }, r.key_text ?? ''), h('td', { class: 'mono ellipsis' }, r.preview)))))));
    } catch (e) {
      clear(out, h('p', { class: 'bad' }, (e as Error).message));
    }
  };

  const send = async () => {
    const problem = replayProblem(form);
    if (problem) return clear(out, h('p', { class: 'bad' }, problem));
    let id: number;
    try {
      id = await call('replay_start', replayArgs(filter, form, edits, ids));
    } catch (e) {
      return clear(out, h('p', { class: 'bad' }, (e as Error).message));
    }
    sendBtn.disabled = previewBtn.disabled = true;
    const bar = h('progress', { max: '100', value: '0' });
    const text = h('p', { role: 'status' }, 'Sending…');
    let paused = false;
    const pauseBtn = h('button', { class: 'ghost', onclick: async () => { paused = !paused; await call('job_pause', { id, paused }); pauseBtn.textContent = paused ? 'Resume' : 'Pause'; } }, 'Pause');
    const cancelBtn = h('button', { class: 'ghost danger', onclick: () => call('job_stop', { id }) }, 'Cancel');
    clear(out, bar, text, h('div', { class: 'row-buttons' }, pauseBtn, cancelBtn));
    for (;;) {
      const u = await call('job_poll', { id, after: 0, wait_ms: 1000 }).catch(() => null);
      if (!u) break;
      const p = u.job.progress as ReplayProgress | null;
      if (p) {
        const done = p.sent + p.failed + p.unknown;
        bar.value = count ? Math.min(100, (done / count) * 100) : 0;
        text.textContent = `${formatCount(p.sent)} sent · ${formatCount(p.failed)} failed · ${formatCount(p.unknown)} unknown${paused ? ' · paused' : ''}`;
      }
      if (!u.job.running) {
        pauseBtn.remove();
        cancelBtn.remove();
        if (u.job.error) {
          // The last progress report is the replay's whole account, also after an error.
          text.textContent = `Replay failed: ${u.job.error.message}${p?.done ? ` (${accountText(p)})` : ''}`;
          text.className = 'bad';
        } else {
          const s = u.result as ReplaySummary;
          bar.value = 100;
          text.textContent = `Done: ${formatCount(s.sent)} of ${formatCount(s.matched)} sent, ${formatCount(s.failed)} failed, ${formatCount(s.unknown)} unknown${s.not_sent ? `, ${formatCount(s.not_sent)} not sent` : ''}${s.interrupted ? ' (cancelled)' : ''} in ${(s.elapsed_ms / 1000).toFixed(1)} s.`;
          text.className = s.failed || s.unknown || s.not_sent ? 'bad' : 'good';
          if (s.errors.length) out.appendChild(h('ul', { class: 'errors' }, s.errors.slice(0, 20).map(([id, why]) => h('li', {}, h('code', {}, id), ' ', why))));
          if (s.unknowns.length) out.appendChild(h('ul', { class: 'errors' }, s.unknowns.slice(0, 20).map(([id, why]) => h('li', {}, h('code', {}, id), ' unknown: ', why))));
          toast(text.textContent);
        }
        break;
      }
    }
  };

  const previewBtn = h('button', { class: 'ghost', onclick: preview }, 'Preview (dry run)');
  const sendBtn = h('button', { class: 'primary', onclick: send }, `Send ${formatCount(count)}`);
  dialog(`Replay ${formatCount(count)} event${count === 1 ? '' : 's'}`, h('div', { class: 'form replay-form' },
    h('label', { class: 'field' }, h('span', {}, 'Destination'), h('div', { class: 'inline' }, conn, target)),
    h('label', { class: 'check' }, origin, 'Back to origin (dead-letter headers or the source recorded by Sluice)'),
    h('div', { class: 'inline' },
      h('label', { class: 'field' }, h('span', {}, 'Rate (msg/s)'), rate),
      h('label', { class: 'field' }, h('span', {}, 'Limit'), limit)),
    ids.length && ids.length <= EDITABLE ? editor(ids, edits) : null,
    targets, out), [previewBtn, sendBtn]);
}

/** Sent, failed, unknown (may have arrived) and not sent, as a replay's account says them. */
function accountText(a: { sent: number; failed: number; unknown: number; not_sent: number; matched: number }): string {
  return `${formatCount(a.sent)} of ${formatCount(a.matched)} sent, ${formatCount(a.failed)} failed, ${formatCount(a.unknown)} unknown, ${formatCount(a.not_sent)} not sent`;
}

export function renderHistory(el: HTMLElement) {
  call('replay_history', {}).then((rows) => {
    clear(el, rows.length === 0 ? h('p', { class: 'muted' }, 'No replays yet.') : h('table', { class: 'history' },
      h('thead', {}, h('tr', {}, ['started', 'filter', 'to', 'matched', 'sent', 'failed', 'unknown', 'not sent', 'outcome'].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {},
        h('td', {}, r.started_at.replace('T', ' ').slice(0, 19)), h('td', { class: 'mono ellipsis' }, r.filter || '(everything)'), h('td', {}, r.to),
        h('td', {}, formatCount(r.matched)), h('td', {}, formatCount(r.sent)), h('td', {}, formatCount(r.failed)),
        h('td', {}, formatCount(r.unknown)), h('td', {}, formatCount(r.not_sent)),
        h('td', { class: r.error || r.failed || r.unknown || r.not_sent ? 'bad' : 'good' }, r.error ?? (r.interrupted ? 'cancelled' : 'done')))))));
  }).catch((e) => toast(e.message, 'error'));
}
