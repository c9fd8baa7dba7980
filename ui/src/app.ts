// Shared state of the window: the connections and their sources, what is selected, and a
// small event hub so views stay independent of each other.

import type { ConnectionSummary, SourceInfo } from './bindings';
import { call } from './api';

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
  connections: [] as ConnectionSummary[],
  sources: new Map<string, SourceInfo[]>(),
  selected: null as Selected,
};

export async function loadConnections() {
  state.connections = await call('connection_list', {});
  hub.emit('connections', state.connections);
  return state.connections;
}

export function select(s: Selected) {
  state.selected = s;
  hub.emit('select', s);
}

export function busOf(connection: string): string {
  return state.connections.find((c) => c.name === connection)?.bus ?? 'kafka';
}

/** Read modes that make sense on each bus, the first being the default. */
export function readModes(bus: string): [string, string][] {
  if (bus === 'amqp') return [['tap', 'tap exchange (takes nothing)'], ['requeue', 'queue: give back'], ['destructive', 'queue: take (delete when captured)'], ['stream', 'stream queue']];
  if (bus === 'sqs') return [['requeue', 'peek (give back)'], ['destructive', 'drain (delete when captured)']];
  return [['tap', 'read partitions (no consumer group)']];
}
