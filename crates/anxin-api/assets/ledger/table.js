// One list of the ledger: a search box (asked of the server a moment after the last key),
// filters, a page of entries and the pager. The server searches and counts; the page only
// ever holds the one page it shows, however large the ledger.

import { h } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { listPage, refusal } from './api.js';
import { KINDS } from './kinds.js';
import { PAGE_SIZE, SEARCH_DEBOUNCE_MS, dom, ledger } from './state.js';

/** Called with (plural, id) when a row is chosen, and (plural, null) for a new entry. */
let onOpen = () => {};
let asked = 0;
let debounce = null;
/** The list's controls, made once per list and language. */
let tools = null;

export function setOpener(fn) {
  onOpen = fn;
}

/** The query of the list shown (made on first use). */
export function query(plural = ledger.plural) {
  if (!ledger.queries[plural]) ledger.queries[plural] = { search: '', station: '', elder: '', retired: false, offset: 0 };
  return ledger.queries[plural];
}

const numberText = (n) => Number(n).toLocaleString(document.documentElement.lang);

function stationSelect(value, onchange) {
  const select = h('select', { 'data-filter': 'station', onchange },
    h('option', { value: '' }, t('filter_any')),
    [...ledger.stations].map(([id, name]) => h('option', { value: id }, `${name} (${id})`)));
  select.value = value;
  return select;
}

function buildTools() {
  const plural = ledger.plural;
  const q = query();
  const spec = KINDS[plural];
  const search = h('input', {
    type: 'search',
    id: 'ledger-search',
    placeholder: t('search_hint'),
    'aria-label': t('search'),
    autocomplete: 'off',
    spellcheck: 'false',
  });
  search.value = q.search;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      q.search = search.value.trim();
      q.offset = 0;
      load();
    }, SEARCH_DEBOUNCE_MS);
  });
  const refilter = (key) => (ev) => {
    q[key] = ev.target.value.trim();
    q.offset = 0;
    load();
  };
  const filters = spec.filters.map((f) => {
    if (f === 'station') return h('label', { class: 'ledger-filter' }, t('filter_station'), stationSelect(q.station, refilter('station')));
    const input = h('input', { type: 'search', 'data-filter': 'elder', placeholder: t('filter_any'), onchange: refilter('elder') });
    input.value = q.elder;
    return h('label', { class: 'ledger-filter' }, t('filter_elder'), input);
  });
  const retired = h('input', { type: 'checkbox', 'data-filter': 'retired', onchange: (ev) => {
    q.retired = ev.target.checked;
    q.offset = 0;
    load();
  } });
  retired.checked = q.retired;
  const create = ledger.canWrite
    ? h('button', { class: 'btn btn-primary', type: 'button', id: 'ledger-new', onclick: () => onOpen(plural, null) }, t('new_entry'))
    : null;
  const status = h('span', { class: 'ledger-status', id: 'ledger-status', role: 'status' });
  const prev = h('button', { class: 'btn', type: 'button', id: 'page-prev', onclick: () => turn(-1) }, t('page_prev'));
  const next = h('button', { class: 'btn', type: 'button', id: 'page-next', onclick: () => turn(1) }, t('page_next'));
  const head = h('tr', null, spec.columns.map(([label]) => h('th', { scope: 'col' }, t(label))));
  const tbody = h('tbody', { id: 'ledger-rows', onclick: (ev) => {
    const row = ev.target instanceof Element ? ev.target.closest('tr[data-id]') : null;
    if (row) onOpen(plural, row.dataset.id);
  } });
  const table = h('table', { class: 'ledger-table', id: 'ledger-table', 'data-kind': plural, 'data-loaded': 'false' }, h('thead', null, head), tbody);
  tools = { plural, search, status, prev, next, table, tbody };
  dom.list.replaceChildren(
    h('div', { class: 'ledger-tools' },
      search,
      filters,
      h('label', { class: 'ledger-filter ledger-check' }, retired, t('show_retired')),
      h('span', { class: 'ledger-spacer' }),
      create),
    h('div', { class: 'ledger-scroll' }, table),
    h('div', { class: 'ledger-pager' }, status, prev, next),
  );
}

function turn(step) {
  const q = query();
  q.offset = Math.max(0, q.offset + step * PAGE_SIZE);
  load();
}

/** Shows the list of `ledger.plural` anew (a new tab, a new language, a change saved). */
export function showList() {
  buildTools();
  return load();
}

/** Asks the server for the page the query names, and shows it if it is still the one wanted. */
export async function load() {
  if (!tools || tools.plural !== ledger.plural) buildTools();
  const { plural, status, prev, next, table, tbody } = tools;
  const q = query(plural);
  const mine = ++asked;
  status.textContent = t('loading');
  table.dataset.loaded = 'false';
  const answer = await listPage(plural, {
    search: q.search,
    station: q.station,
    elder: q.elder,
    retired: q.retired,
    offset: q.offset,
    limit: PAGE_SIZE,
  });
  if (mine !== asked || tools.tbody !== tbody) return;
  if (!answer.ok) {
    status.textContent = refusal(answer);
    prev.disabled = true;
    next.disabled = true;
    return;
  }
  const { items = [], total = 0 } = answer.body || {};
  const spec = KINDS[plural];
  tbody.replaceChildren(...items.map((item) => h('tr', {
    'data-id': item.entry.id,
    class: item.retired_at ? 'retired' : null,
    tabindex: '0',
    onkeydown: (ev) => {
      if (ev.key === 'Enter') onOpen(plural, item.entry.id);
    },
  }, spec.columns.map(([label, value]) => h('td', { 'data-col': label }, value(item.entry))))));
  status.textContent = total === 0
    ? t('page_none')
    : t('page_of', { from: numberText(q.offset + 1), to: numberText(q.offset + items.length), total: numberText(total) });
  status.dataset.total = String(total);
  status.dataset.offset = String(q.offset);
  prev.disabled = q.offset === 0;
  next.disabled = q.offset + items.length >= total;
  table.dataset.loaded = 'true';
}
