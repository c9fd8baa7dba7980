// Live tail: decoded messages as they arrive, in a virtualized list with a capped buffer,
// pause, lock-to-bottom and seek. Events arrive in batches from a job (through a channel in
// the app, by long-polling in a browser), and the list repaints at most once per frame.

import type { EventView, JobUpdate } from '../bindings';
import { call, watchJob } from '../api';
import { h, clear, formatCount, toast } from '../dom';
import { hub, state, readModes, showReadModes, chosenMode, positionOf } from '../app';
import { VirtualList } from '../virtual';
import { renderDetail } from '../detail/detail';

export const BUFFER_CAP = 10_000;

/** Keeps the newest `cap` events; returns how many were dropped from the front. */
export function pushCapped<T>(buffer: T[], items: T[], cap: number): number {
  buffer.push(...items);
  const over = buffer.length - cap;
  if (over > 0) buffer.splice(0, over);
  return Math.max(0, over);
}

export function eventPreview(e: EventView): string {
  if (e.decoded !== null) return JSON.stringify(e.decoded);
  return e.payload_text ?? `<${e.size} bytes>`;
}

export class TailView {
  el: HTMLElement;
  private buffer: EventView[] = [];
  private list: VirtualList<EventView>;
  private status: HTMLElement;
  private detail: HTMLElement;
  private job: number | null = null;
  private paused = false;
  /** Batches that arrived while paused. */
  private held: EventView[] = [];
  private lock = true;
  private dropped = 0;
  private selected = -1;
  private from: HTMLInputElement;
  private mode: HTMLSelectElement;
  private title: HTMLElement;
  private startBtn: HTMLButtonElement;
  private pauseBtn: HTMLButtonElement;

  constructor() {
    this.list = new VirtualList<EventView>(28, (i) => this.buffer[i], (i, e) => this.row(i, e));
    this.list.el.addEventListener('scroll', () => { if (!this.list.atEnd()) this.setLock(false); });
    this.status = h('span', { class: 'muted' }, 'Pick a topic, exchange or queue in the sidebar.');
    this.detail = h('div', { class: 'detail-pane' }, h('p', { class: 'muted' }, 'Select a message to see it decoded.'));
    this.from = h('input', { type: 'text', value: 'end', list: 'from-options', class: 'narrow', title: 'beginning, end, -N (last N), OFFSET or @2026-11-20T10:00:00Z', 'aria-label': 'Start from' });
    this.mode = h('select', { 'aria-label': 'Read mode' });
    this.title = h('h2', {}, 'Live tail');
    this.startBtn = h('button', { class: 'primary', onclick: () => (this.job ? this.stop() : this.start()) }, 'Start');
    this.pauseBtn = h('button', { class: 'ghost', onclick: () => this.togglePause(), disabled: true }, 'Pause');
    const lockBox = h('input', { type: 'checkbox', checked: true, onchange: (e: Event) => this.setLock((e.target as HTMLInputElement).checked) });
    this.lockBox = lockBox;
    this.el = h('section', { class: 'view tail-view' },
      h('div', { class: 'toolbar' }, this.title,
        h('label', {}, 'from ', this.from), this.mode, this.startBtn, this.pauseBtn,
        h('label', { class: 'check' }, lockBox, 'Lock to bottom'),
        h('button', { class: 'ghost', onclick: () => this.clearBuffer() }, 'Clear'),
        this.status),
      h('datalist', { id: 'from-options' }, ['end', 'beginning', '-100', '-1000', 'last'].map((v) => h('option', { value: v }))),
      h('div', { class: 'split' }, h('div', { class: 'table tail-table' }, this.header(), this.list.el), this.detail));
    hub.on('select', (s) => {
      if (!s) return;
      this.title.textContent = `${s.connection}:${s.source || '(default)'}`;
      showReadModes(this.mode, readModes(s.bus));
      if (this.job) this.stop().then(() => this.start());
    });
  }
  private lockBox: HTMLInputElement;

  private header() {
    return h('div', { class: 'row head' }, h('span', { class: 'c-time' }, 'time'), h('span', { class: 'c-pos' }, 'part@offset'), h('span', { class: 'c-key' }, 'key'), h('span', { class: 'c-type' }, 'type'), h('span', { class: 'c-payload' }, 'payload'));
  }

  private row(i: number, e: EventView | undefined): HTMLElement {
    if (!e) return h('div', { class: 'row' });
    return h('div', { class: `row${i === this.selected ? ' selected' : ''}${e.decode_error ? ' error' : ''}`, onclick: () => this.show(i) },
      h('span', { class: 'c-time' }, (e.timestamp ?? e.captured_at).slice(11, 23)),
      h('span', { class: 'c-pos' }, positionOf(e)),
      h('span', { class: 'c-key' }, e.key_text ?? ''),
      h('span', { class: 'c-type' }, e.schema ?? e.encoding),
      h('span', { class: 'c-payload' }, eventPreview(e).slice(0, 300)));
  }

  private show(i: number) {
    this.selected = i;
    const e = this.buffer[i];
    if (e) clear(this.detail, renderDetail(e));
    this.list.schedule();
  }

  move(delta: number) {
    if (!this.buffer.length) return;
    const i = Math.min(this.buffer.length - 1, Math.max(0, (this.selected < 0 ? this.buffer.length : this.selected) + delta));
    this.setLock(false);
    this.show(i);
    this.list.scrollToIndex(i);
  }

  private setLock(on: boolean) {
    this.lock = on;
    this.lockBox.checked = on;
    if (on) this.list.scrollToEnd();
  }

  private clearBuffer() {
    this.buffer = [];
    this.held = [];
    this.dropped = 0;
    this.selected = -1;
    this.list.setTotal(0);
    this.updateStatus();
  }

  private togglePause() {
    this.paused = !this.paused;
    this.pauseBtn.textContent = this.paused ? 'Resume' : 'Pause';
    if (!this.paused) this.showBatch(this.held.splice(0));
    this.updateStatus();
  }

  private updateStatus(extra = '') {
    const parts = [`${formatCount(this.buffer.length)} shown`];
    if (this.dropped) parts.push(`${formatCount(this.dropped)} older dropped (buffer ${formatCount(BUFFER_CAP)})`);
    if (this.paused) parts.push('paused');
    if (extra) parts.push(extra);
    this.status.textContent = parts.join(' · ');
  }

  async start() {
    const s = state.selected;
    if (!s) return toast('Pick a source in the sidebar first', 'error');
    this.clearBuffer();
    try {
      this.job = await call('tail_start', { connection: s.connection, sources: [s.source], from: this.from.value, mode: chosenMode(this.mode), binding_key: null, max_messages: null, stop_at_end: false });
    } catch (e) {
      return toast((e as Error).message, 'error');
    }
    this.startBtn.textContent = 'Stop';
    this.pauseBtn.disabled = false;
    this.updateStatus('waiting for messages…');
    this.pump(this.job);
  }

  async stop() {
    const id = this.job;
    this.job = null;
    this.startBtn.textContent = 'Start';
    this.pauseBtn.disabled = true;
    if (id) await call('job_stop', { id }).catch(() => undefined);
  }

  private async pump(id: number) {
    try {
      await watchJob(id, 0, (u) => this.receive(id, u));
    } catch (e) {
      if (this.job === id) toast((e as Error).message, 'error');
    }
    if (this.job === id) await this.stop();
    if (!this.job) this.updateStatus('stopped');
  }

  /** One batch from the job. While paused, batches wait (capped like the buffer) and are shown on resume. */
  private receive(id: number, u: JobUpdate) {
    if (this.job !== id) return;
    if (u.job.error && !u.job.running && !u.events.length) toast(u.job.error.message, 'error');
    this.dropped += u.dropped;
    if (this.paused) {
      this.dropped += pushCapped(this.held, u.events, BUFFER_CAP);
      return;
    }
    this.showBatch(u.events);
  }

  private showBatch(events: EventView[]) {
    if (!events.length) return;
    const evicted = pushCapped(this.buffer, events, BUFFER_CAP);
    this.dropped += evicted;
    // The selected message moves up as older ones leave the buffer.
    if (this.selected >= 0) this.selected = Math.max(-1, this.selected - evicted);
    this.list.setTotal(this.buffer.length);
    if (this.lock) this.list.scrollToEnd();
    this.updateStatus();
  }
}
