// Shared state of the window: the buses the API knows, the connections and their sources,
// what is selected, and a small event hub so views stay independent of each other.

import type { ConnectionSummary, SourceInfo } from './bindings';
import type { BusKind, ReadMode } from './bindings';
import { call } from './api';
import { h, clear, positionText } from './dom';

export type Selected = { connection: string; source: string; bus: string } | null;

type Events = {
  connections: ConnectionSummary[];
  select: Selected;
  view: string;
  schemas: null;
  lake: string;
  /** A topic's stored events were decoded again (`CONNECTION:TOPIC`). */
  redecoded: string;
};

type Listener<K extends keyof Events> = (v: Events[K]) => void;

class Hub {
  private listeners = new Map<keyof Events, ((v: never) => void)[]>();
  on<K extends keyof Events>(k: K, f: Listener<K>) {
    const list = this.listeners.get(k) ?? [];
    list.push(f as (v: never) => void);
    this.listeners.set(k, list);
  }
  emit<K extends keyof Events>(k: K, v: Events[K]) {
    for (const f of this.listeners.get(k) ?? []) (f as Listener<K>)(v);
  }
}

export const hub = new Hub();

export const state = {
  /** Every bus the API can connect to, as `bus_kinds` describes it; loaded once at start-up. */
  kinds: [] as BusKind[],
  connections: [] as ConnectionSummary[],
  sources: new Map<string, SourceInfo[]>(),
  selected: null as Selected,
};

export async function loadKinds() {
  state.kinds = await call('bus_kinds', {});
  return state.kinds;
}

export async function loadConnections() {
  state.connections = await call('connection_list', {});
  hub.emit('connections', state.connections);
  return state.connections;
}

export function select(s: Selected) {
  state.selected = s;
  hub.emit('select', s);
}

/** The description of `bus` (a connection's `bus` tag), if the API knows it. */
export function kindOf(bus: string): BusKind | undefined {
  return state.kinds.find((k) => k.bus === bus);
}

/** An event's position as its bus names it: no partition on a bus without partitions (a
 * NATS stream sequence is `4`, not `0@4`). */
export function positionOf(e: { bus: string; partition: number | null; offset: number | null; sub_offset?: number }): string {
  const partitioned = kindOf(e.bus)?.capabilities.partitions ?? true;
  return positionText(partitioned ? e : { ...e, partition: null });
}

/** The description of the bus a saved connection is on. */
export function connectionKind(connection: string): BusKind | undefined {
  const bus = state.connections.find((c) => c.name === connection)?.bus;
  return bus === undefined ? undefined : kindOf(bus);
}

/** How `bus` can be read, the default first; empty when there is one way only. */
export function readModes(bus: string): ReadMode[] {
  return kindOf(bus)?.read_modes ?? [];
}

/** Fills a read-mode select with `modes`, hidden when there is nothing to choose. */
export function showReadModes(select: HTMLSelectElement, modes: ReadMode[]) {
  clear(select, modes.map((m) => h('option', { value: m.name }, m.label)));
  select.hidden = modes.length === 0;
}

/** The `mode` argument of `tail_start`/`capture_start`: none on a bus read one way only. */
export function chosenMode(select: HTMLSelectElement): string | null {
  return select.options.length ? select.value : null;
}
