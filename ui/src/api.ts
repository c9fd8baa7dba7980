// One typed way to call Sluice: the Tauri window's IPC when running in the desktop app, the
// HTTP API of `sluice serve` (with its access token) in a browser. Both reach the same
// `Session::call` in the Rust API crate; `bindings.ts` is generated from its types. Live job
// updates come through a Tauri channel in the app and by long-polling in a browser.

import { Channel, invoke } from '@tauri-apps/api/core';
import type { ApiError, Commands, JobUpdate } from './bindings';

export type Command = keyof Commands;
export type Args<C extends Command> = Commands[C]['args'];
export type Result<C extends Command> = Commands[C]['result'];

/** An API error with its structured fields, so nothing has to be read back out of the text. */
export class SluiceError extends Error {
  code: string;
  /** The file a schema or edit problem is in, and the line there (from 1). */
  file: string | null;
  line: number | null;
  /** The column (from 1): in the filter for a filter error, else on `line` of `file`. */
  column: number | null;
  constructor(e: ApiError) {
    super(e.message);
    this.code = e.code;
    this.file = e.file ?? null;
    this.line = e.line ?? null;
    this.column = e.column ?? null;
  }
}

type TauriInternals = { invoke: (cmd: string, args: unknown) => Promise<unknown> };

function tauri(): TauriInternals | undefined {
  return (window as unknown as { __TAURI_INTERNALS__?: TauriInternals }).__TAURI_INTERNALS__;
}

const TOKEN_KEY = 'sluice-token';

/** The token `sluice serve` printed arrives in the URL fragment; keep it for this tab only. */
export function token(): string {
  const m = /token=([A-Za-z0-9]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, m[1]);
    const rest = location.hash.replace(/[#&?]?token=[A-Za-z0-9]+/, '');
    history.replaceState(null, '', location.pathname + location.search + rest);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export async function call<C extends Command>(command: C, args: Args<C>): Promise<Result<C>> {
  const t = tauri();
  if (t) {
    try {
      return (await t.invoke('call', { command, args })) as Result<C>;
    } catch (e) {
      throw new SluiceError(asApiError(e));
    }
  }
  let resp: Response;
  try {
    resp = await fetch(`api/${command}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` },
      body: JSON.stringify(args ?? {}),
    });
  } catch (e) {
    throw new SluiceError({ code: 'unreachable', message: `Sluice is not answering: ${String(e)}` });
  }
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new SluiceError(asApiError(body));
  return body as Result<C>;
}

/**
 * Hands a job's updates (live events in batches, progress, the end) to `onUpdate` from
 * sequence number `after` on, until the job has ended; resolves then. The desktop app streams
 * them through a Tauri channel; a browser long-polls `job_poll`. Updates arrive in order, and
 * the last one has `job.running` false.
 */
export async function watchJob(id: number, after: number, onUpdate: (u: JobUpdate) => void): Promise<void> {
  if (tauri()) {
    const channel = new Channel<JobUpdate>(onUpdate);
    try {
      await invoke('watch', { id, after, onUpdate: channel });
    } catch (e) {
      throw new SluiceError(asApiError(e));
    }
    return;
  }
  for (;;) {
    const u = await call('job_poll', { id, after, wait_ms: 1000 });
    after = u.next;
    onUpdate(u);
    if (!u.job.running && !u.events.length) return;
  }
}

/** In a browser, not the desktop window: files then go to the browser's downloads. */
export function inBrowser(): boolean {
  return !tauri();
}

/**
 * Runs an export on the server and hands the file to the browser as a download (the desktop
 * app writes to a path instead). Returns the number of events exported.
 */
export async function downloadExport(filter: string, format: string): Promise<number> {
  let resp: Response;
  try {
    resp = await fetch('download/export', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` },
      body: JSON.stringify({ filter, format }),
    });
  } catch (e) {
    throw new SluiceError({ code: 'unreachable', message: `Sluice is not answering: ${String(e)}` });
  }
  if (!resp.ok) throw new SluiceError(asApiError(await resp.json().catch(() => null)));
  const count = Number(resp.headers.get('x-sluice-count') ?? 0);
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = `sluice-export.${format}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return count;
}

function asApiError(e: unknown): ApiError {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) return e as ApiError;
  return { code: 'io', message: String(e) };
}
