// Anxin ledger page (/ledger): elders, devices, stations, responders and staff, for an
// administrator to change and a supervisor to read. Sign-in is the console's: without a
// session the page sends the browser there, and the console sends an administrator here.
//
// Native ES modules, no build step, like the console; this one starts the page, the bar and
// the tabs, and ledger/ holds the rest (the API, the lists, the forms, the history).

import { byId, h, whenReady } from './common/dom.js';
import { chooseLanguage, defineStrings, htmlLang, otherLanguage, rememberedLanguage, setLanguage, t } from './common/i18n.js';
import { dom as consoleDom } from './console/state.js';
import { CONSOLE_STRINGS } from './console/strings.js';
import { listPage } from './ledger/api.js';
import { closeEntry, openEntry, rerender, setNavigator } from './ledger/form.js';
import { PLURALS } from './ledger/kinds.js';
import { LANG_KEY, dom, ledger } from './ledger/state.js';
import { LEDGER_STRINGS } from './ledger/strings.js';
import { query, setOpener, showList } from './ledger/table.js';

defineStrings(CONSOLE_STRINGS);
defineStrings(LEDGER_STRINGS);

function renderStatic() {
  document.documentElement.lang = htmlLang();
  document.title = t('ledger_title');
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const b of document.querySelectorAll('.lang-toggle')) {
    b.textContent = t('lang_toggle');
    b.lang = htmlLang(otherLanguage());
  }
  if (ledger.me) {
    dom.me.textContent = `${ledger.me.name || ledger.me.id} · ${t(`role_${ledger.me.role}`)}`;
    dom.me.dataset.role = ledger.me.role;
  }
  dom.tabs.replaceChildren(...PLURALS.map((p) => h('button', {
    class: `ledger-tab${p === ledger.plural ? ' active' : ''}`,
    type: 'button',
    role: 'tab',
    'data-tab': p,
    'aria-selected': String(p === ledger.plural),
    onclick: () => showTab(p),
  }, t(`tab_${p}`))));
}

/** Shows the list `plural`, with `filters` over its query (an elder's devices). */
function showTab(plural, filters = null) {
  if (!PLURALS.includes(plural)) plural = 'elders';
  ledger.plural = plural;
  if (filters) Object.assign(query(plural), { search: '', offset: 0, retired: false }, filters);
  if (location.hash !== `#${plural}`) history.replaceState(null, '', `#${plural}`);
  renderStatic();
  closeEntry();
  showList();
}

/** The live stations' names, for the station filters, selects and columns. */
async function loadStations() {
  const answer = await listPage('stations', { limit: 500 });
  if (!answer.ok) return;
  ledger.stations = new Map(answer.body.items.map((i) => [i.entry.id, i.entry.name]));
}

function toggleLang() {
  chooseLanguage(otherLanguage(), LANG_KEY);
  renderStatic();
  showList();
  rerender();
}

async function signOut() {
  try {
    await fetch('/api/v1/session', { method: 'DELETE', credentials: 'same-origin' });
  } catch {
    // Signed out here either way; the cookie expires on its own.
  }
  location.assign('/console');
}

async function start() {
  Object.assign(dom, {
    app: byId('app'),
    denied: byId('denied'),
    tabs: byId('tabs'),
    list: byId('list'),
    entry: byId('entry'),
    me: byId('me'),
  });
  consoleDom.toasts = byId('toasts');
  setLanguage(rememberedLanguage(LANG_KEY) ?? 'zh');
  for (const b of document.querySelectorAll('.lang-toggle')) b.addEventListener('click', toggleLang);
  byId('signout').addEventListener('click', signOut);
  setOpener((plural, id) => openEntry(plural, id));
  setNavigator(showTab);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !dom.entry.hidden) closeEntry();
  });
  let user = null;
  try {
    const res = await fetch('/api/v1/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (res.ok) user = (await res.json()).user ?? null;
  } catch {
    user = null;
  }
  if (!user) {
    // Sign in on the console, which brings an administrator (or a supervisor asking) back.
    location.replace('/console#ledger');
    return;
  }
  ledger.me = user;
  renderStatic();
  if (user.role !== 'admin' && user.role !== 'supervisor') {
    dom.denied.hidden = false;
    document.body.dataset.view = 'denied';
    return;
  }
  ledger.canWrite = user.role === 'admin';
  byId('readonly').hidden = ledger.canWrite;
  byId('console-link').hidden = user.role !== 'supervisor';
  dom.app.hidden = false;
  document.body.dataset.view = 'ledger';
  document.body.dataset.role = user.role;
  await loadStations();
  showTab(location.hash.slice(1));
}

whenReady(start);
