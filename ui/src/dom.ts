// A tiny element builder. Text always goes in as text nodes, never as HTML: payloads are
// untrusted and must render as text.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | ((e: any) => void) | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (k === 'class') {
      el.className = String(v);
    } else if (k === 'value' && 'value' in el) {
      (el as HTMLInputElement).value = String(v);
    } else if (k === 'checked' && 'checked' in el) {
      (el as HTMLInputElement).checked = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: (Child | Child[])[]) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element, ...children: (Child | Child[])[]) {
  el.replaceChildren();
  append(el, children);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** Copies text and flashes the button that asked. */
export async function copy(text: string, button?: HTMLElement) {
  try {
    await navigator.clipboard.writeText(text);
    if (button) {
      const was = button.textContent;
      button.textContent = 'Copied';
      setTimeout(() => (button.textContent = was), 900);
    }
  } catch {
    if (button) button.textContent = 'Copy failed';
  }
}

export function toast(message: string, kind: 'info' | 'error' = 'info') {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(box);
  }
  const t = h('div', { class: `toast ${kind}` }, message);
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3500);
}

/** A modal dialog; resolves when closed. */
export function dialog(title: string, body: Node, actions: HTMLElement[] = []): { el: HTMLDialogElement; close: () => void } {
  const d = h('dialog', { class: 'dialog' },
    h('header', {}, h('h2', {}, title), h('button', { class: 'icon', title: 'Close (Esc)', 'aria-label': 'Close', onclick: () => close() }, '×')),
    h('div', { class: 'dialog-body' }, body),
    actions.length ? h('footer', {}, actions) : null,
  );
  const close = () => {
    d.close();
    d.remove();
  };
  d.addEventListener('cancel', (e) => {
    e.preventDefault();
    close();
  });
  document.body.appendChild(d);
  if (typeof d.showModal === 'function') d.showModal();
  else d.setAttribute('open', '');
  return { el: d, close };
}

/** Where an event sits on its bus, as its bus writes it: `PARTITION@OFFSET`, a Redis entry id
 * `MS-SEQ` (two numbers), or the offset alone. */
export function positionText(e: { partition: number | null; offset: number | null; sub_offset?: number }): string {
  const offset = e.offset === null ? '' : e.sub_offset !== undefined ? `${e.offset}-${e.sub_offset}` : String(e.offset);
  return e.partition !== null ? `${e.partition}@${offset}` : offset;
}
