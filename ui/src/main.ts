// The window: header with views and the lake in use, the connections sidebar, and one view
// at a time. Schemas can be dropped anywhere. Keyboard: `/` filter, j/k or ↓/↑ next/previous
// event, x select, r replay selection, Esc closes dialogs.

import './style.css';
import { call } from './api';
import { h, clear, dialog, toast } from './dom';
import { hub, loadConnections, loadKinds, select } from './app';
import { Sidebar } from './connections/sidebar';
import { SearchView } from './search/search';
import { TailView } from './tail/tail';
import { SchemasView, addSchemas } from './schemas/schemas';
import { droppedFiles } from './schemas/drop';
import { CapturesView } from './captures/captures';
import { renderHistory } from './replay/replay';

const search = new SearchView();
const tail = new TailView();
const schemas = new SchemasView();
const captures = new CapturesView();
const history = h('section', { class: 'view history-view' });
const sidebar = new Sidebar();

const views: Record<string, { label: string; el: HTMLElement; shown?: () => void }> = {
  search: { label: 'Search', el: search.el, shown: () => search.loadFields() },
  tail: { label: 'Live tail', el: tail.el },
  captures: { label: 'Captures', el: captures.el, shown: () => captures.refresh() },
  schemas: { label: 'Schemas', el: schemas.el, shown: () => schemas.load() },
  replays: { label: 'Replays', el: h('div', {}, h('h2', {}, 'Replay history'), history), shown: () => renderHistory(history) },
};
let current = 'search';

const main = h('main', { class: 'main' });
const tabs = h('nav', { class: 'tabs', role: 'tablist' });
const lake = h('button', { class: 'ghost small lake', title: 'Open another lake folder' }, 'lake');

function show(name: string) {
  if (!views[name]) name = 'search';
  current = name;
  clear(main, views[name].el);
  views[name].shown?.();
  clear(tabs, Object.entries(views).map(([k, v]) =>
    h('button', { role: 'tab', class: k === current ? 'tab active' : 'tab', 'aria-selected': k === current ? 'true' : 'false', onclick: () => { show(k); if (k !== 'search') window.history.replaceState(null, '', `#${k}`); } },
      v.label, k === 'captures' ? captures.badge : null)));
  hub.emit('view', name);
}

async function openLake() {
  const input = h('input', { type: 'text', placeholder: '/path/to/lake', 'aria-label': 'Lake folder' });
  const d = dialog('Open a lake folder', h('div', { class: 'form' }, h('p', {}, 'A folder of Sluice Parquet files (exported or shared). Search and replay will use it.'), input), [
    h('button', { class: 'primary', onclick: async () => {
      try {
        const info = await call('lake_open', { path: input.value });
        lake.textContent = info.lake_dir;
        d.close();
        show('search');
        search.refresh();
      } catch (e) {
        toast((e as Error).message, 'error');
      }
    } }, 'Open')]);
}
lake.addEventListener('click', openLake);

document.body.appendChild(h('div', { class: 'app' },
  h('header', { class: 'top' }, h('div', { class: 'brand' }, h('span', { class: 'logo' }, '≋'), 'Sluice'), tabs, lake),
  h('div', { class: 'body' }, sidebar.el, main)));

// Drop schemas anywhere.
const overlay = h('div', { class: 'drop-overlay', hidden: true }, h('div', {}, 'Drop .proto files, folders or descriptor sets'));
document.body.appendChild(overlay);
let depth = 0;
window.addEventListener('dragenter', (e) => { if (e.dataTransfer?.types.includes('Files')) { depth++; overlay.hidden = false; } });
window.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; overlay.hidden = true; } });
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', async (e) => {
  e.preventDefault();
  depth = 0;
  overlay.hidden = true;
  if (!e.dataTransfer) return;
  const added = await addSchemas(await droppedFiles(e.dataTransfer));
  show('schemas');
  schemas.added(added);
});

window.addEventListener('keydown', (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLSelectElement;
  if (typing || e.ctrlKey || e.metaKey || e.altKey || document.querySelector('dialog[open]')) return;
  const view = current === 'tail' ? tail : search;
  if (e.key === '/') {
    e.preventDefault();
    show('search');
    search.bar.input.focus();
  } else if (e.key === 'j' || e.key === 'ArrowDown') {
    e.preventDefault();
    view.move(1);
  } else if (e.key === 'k' || e.key === 'ArrowUp') {
    e.preventDefault();
    view.move(-1);
  } else if (e.key === 'x' && current === 'search') {
    search.toggleChecked();
  } else if (e.key === 'r' && current === 'search') {
    search.replaySelected();
  }
});

hub.on('select', (s) => { if (s && current !== 'tail' && current !== 'captures') show('tail'); });

async function boot() {
  try {
    const info = await call('app_info', {});
    lake.textContent = info.lake_dir;
  } catch (e) {
    toast((e as Error).message, 'error');
  }
  // What each bus looks like (its form, read modes, nouns) before anything shows a connection.
  await loadKinds().catch((e) => toast(e.message, 'error'));
  await loadConnections().catch((e) => toast(e.message, 'error'));
  const [route, query] = location.hash.replace(/^#/, '').split('?');
  show(route || 'search');
  if (current === 'search') {
    const q = new URLSearchParams(query ?? '').get('q') ?? '';
    search.run(q);
  }
}

select(null);
boot();
