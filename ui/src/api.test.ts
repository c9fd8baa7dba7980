import { afterEach, describe, expect, it, vi } from 'vitest';
import { watchJob } from './api';
import type { JobUpdate } from './bindings';

function update(next: number, running: boolean, events = 1): JobUpdate {
  return {
    events: Array.from({ length: events }, () => ({}) as JobUpdate['events'][number]),
    next,
    dropped: 0,
    job: { id: 7, kind: 'tail', label: 't', running, paused: false, progress: null, error: null },
    result: null,
  };
}

type Internals = {
  transformCallback: (cb: (m: unknown) => void) => number;
  unregisterCallback: (id: number) => void;
  invoke: (cmd: string, args: Record<string, unknown>) => Promise<unknown>;
};
const w = window as unknown as { __TAURI_INTERNALS__?: Internals };

afterEach(() => {
  delete w.__TAURI_INTERNALS__;
  vi.unstubAllGlobals();
});

describe('watchJob', () => {
  it('in the app, takes updates from a Tauri channel in the order they were sent', async () => {
    const callbacks = new Map<number, (m: unknown) => void>();
    const calls: [string, Record<string, unknown>][] = [];
    w.__TAURI_INTERNALS__ = {
      transformCallback: (cb) => { callbacks.set(callbacks.size + 1, cb); return callbacks.size; },
      unregisterCallback: (id) => { callbacks.delete(id); },
      invoke: async (cmd, args) => {
        calls.push([cmd, args]);
        const channel = callbacks.get((args.onUpdate as { id: number }).id)!;
        // Channel messages may overtake each other; the index puts them back in order.
        channel({ index: 1, message: update(2, false, 0) });
        channel({ index: 0, message: update(1, true) });
        return null;
      },
    };
    const seen: JobUpdate[] = [];
    await watchJob(7, 0, (u) => seen.push(u));
    expect(calls.map(([c, a]) => [c, a.id, a.after])).toEqual([['watch', 7, 0]]);
    expect(seen.map((u) => u.next)).toEqual([1, 2]);
  });

  it('in a browser, long-polls from the cursor until the ended job has nothing left', async () => {
    const answers = [update(200, true, 200), update(250, false, 50), update(250, false, 0)];
    const bodies: { after: number }[] = [];
    vi.stubGlobal('fetch', vi.fn(async (url: string, init: { body: string }) => {
      expect(url).toBe('api/job_poll');
      bodies.push(JSON.parse(init.body));
      return new Response(JSON.stringify(answers.shift()), { status: 200 });
    }));
    const seen: number[] = [];
    await watchJob(7, 0, (u) => seen.push(u.events.length));
    // The job ended with 50 events still to fetch: they are not lost.
    expect(seen).toEqual([200, 50, 0]);
    expect(bodies.map((b) => b.after)).toEqual([0, 200, 250]);
  });
});
