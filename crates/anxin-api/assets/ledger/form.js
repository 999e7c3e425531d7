// An entry's panel: its form (new or existing), saved with the tag it was read with
// (If-Match), so another's change meanwhile is caught and offered for reloading; retiring
// after a confirmation; a device's password shown the one time it exists; and the history.

import { h } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { copyText, toast } from '../console/parts.js';
import { createEntry, readEntry, refusal, resetPassword, retireEntry, updateEntry } from './api.js';
import { readForm, renderField, showProblems } from './fields.js';
import { renderHistory } from './history.js';
import { KINDS, bodyFor } from './kinds.js';
import { dom, ledger } from './state.js';
import { load } from './table.js';

/**
 * The open entry: `item` as read ({entry, etag, retired_at}; null while new), the form's
 * values kept across a change of language, what the panel shows (`view`), a notice, and a
 * device's password while it is on screen.
 */
const open = { plural: null, id: null, item: null, draft: null, view: 'details', notice: null, password: null, confirm: null };
let form = null;
/** Called to show another list filtered (an elder's devices). */
let navigate = () => {};

export function setNavigator(fn) {
  navigate = fn;
}

const kindWord = (plural) => t(`kind_${KINDS[plural].kind}`);
const readOnly = () => !ledger.canWrite || Boolean(open.item && open.item.retired_at);

/** Opens an entry of `plural` by id, or a blank form for a new one (`id` null). */
export async function openEntry(plural, id, { keepPassword = false } = {}) {
  Object.assign(open, { plural, id, item: null, draft: null, view: 'details', notice: null, confirm: null });
  if (!keepPassword) open.password = null;
  dom.entry.hidden = false;
  dom.entry.dataset.kind = plural;
  dom.entry.dataset.id = id ?? '';
  if (id === null) {
    open.draft = KINDS[plural].blank();
    render();
    return;
  }
  dom.entry.dataset.loaded = 'false';
  dom.entry.replaceChildren(h('p', { class: 'muted ledger-pad' }, t('loading')));
  const answer = await readEntry(plural, id);
  if (open.plural !== plural || open.id !== id) return;
  if (!answer.ok) {
    dom.entry.replaceChildren(head(id), h('p', { class: 'form-error ledger-pad', role: 'alert' }, refusal(answer)));
    return;
  }
  open.item = answer.body;
  open.draft = structuredClone(answer.body.entry);
  render();
}

export function closeEntry() {
  Object.assign(open, { plural: null, id: null, item: null, draft: null, password: null });
  dom.entry.hidden = true;
  dom.entry.replaceChildren();
}

/** Draws the panel again in the page's language, keeping what was typed. */
export function rerender() {
  if (!open.plural || !open.draft) return;
  if (form) open.draft = readForm(form, KINDS[open.plural].fields, open.draft).entry;
  render();
}

function head(title) {
  const sub = open.id === null
    ? t('new_title', { kind: kindWord(open.plural) })
    : `${kindWord(open.plural)} · ${open.id}`;
  return h('header', { class: 'detail-head' },
    h('div', null,
      h('h2', { id: 'entry-title' }, title),
      h('div', { class: 'detail-sub' }, sub,
        open.item && open.item.retired_at ? h('span', { class: 'chip chip-warn', 'data-field': 'retired' }, t('retired_at', { at: new Date(open.item.retired_at).toLocaleString(document.documentElement.lang) })) : null)),
    h('button', { class: 'btn btn-quiet detail-close', type: 'button', id: 'entry-close', title: t('close'), onclick: closeEntry }, '✕'));
}

function render() {
  const spec = KINDS[open.plural];
  const creating = open.id === null;
  const title = creating ? t('new_title', { kind: kindWord(open.plural) }) : spec.title(open.item.entry) || open.id;
  const views = creating ? null : h('div', { class: 'ledger-subtabs', role: 'tablist' },
    ['details', 'history'].map((v) => h('button', {
      class: `ledger-subtab${open.view === v ? ' active' : ''}`,
      type: 'button',
      role: 'tab',
      'aria-selected': String(open.view === v),
      'data-view': v,
      onclick: () => {
        if (form) open.draft = readForm(form, spec.fields, open.draft).entry;
        open.view = v;
        render();
      },
    }, t(`tab_${v}`))));
  const body = h('div', { class: 'ledger-entry-body' });
  form = null;
  if (open.view === 'history' && !creating) {
    renderHistory(body, open.plural, open.id);
  } else {
    form = h('form', { class: 'ledger-form', id: 'entry-form', novalidate: true, onsubmit: (ev) => {
      ev.preventDefault();
      save();
    } }, spec.fields.map((f) => renderField(f, open.draft, { creating, readOnly: readOnly() })));
    body.append(form, actions());
  }
  // replaceChildren would write a null as the text "null".
  dom.entry.replaceChildren(...[head(title), passwordBox(), views, notice(), body].filter(Boolean));
  dom.entry.dataset.loaded = 'true';
  dom.entry.dataset.view = open.view;
}

/** The notice above the form: a stale save (with a reload), a refusal, or what to correct. */
function notice() {
  if (!open.notice) return null;
  const { kind, text, loose = [] } = open.notice;
  if (kind === 'stale') {
    return h('div', { class: 'ledger-notice warn', role: 'alert', 'data-notice': 'stale' },
      h('p', null, t('stale')),
      h('button', { class: 'btn btn-warn', type: 'button', id: 'entry-reload', onclick: () => openEntry(open.plural, open.id, { keepPassword: true }) }, t('reload')));
  }
  return h('div', { class: 'ledger-notice error', role: 'alert', 'data-notice': kind },
    h('p', null, text),
    loose.length ? h('ul', null, loose.map((f) => h('li', null, `${f.field}: ${f.message}`))) : null);
}

function passwordBox() {
  if (!open.password) return null;
  const { id, password } = open.password;
  return h('div', { class: 'ledger-once', role: 'alert', 'data-notice': 'password' },
    h('p', { class: 'once-title' }, t('password_once', { id })),
    h('div', { class: 'once-line' },
      h('code', { id: 'device-password' }, password),
      h('button', { class: 'btn btn-primary', type: 'button', id: 'copy-password', onclick: () => copyText(password, t('password_copied')) }, t('copy'))),
    h('p', { class: 'once-warning' }, t('password_warning')),
    h('button', { class: 'btn btn-quiet', type: 'button', id: 'password-done', onclick: () => {
      open.password = null;
      rerender();
    } }, t('close')));
}

function actions() {
  if (readOnly()) {
    return open.plural === 'elders' && open.id ? h('div', { class: 'ledger-actions' }, devicesButton()) : null;
  }
  const creating = open.id === null;
  const bar = h('div', { class: 'ledger-actions' },
    h('button', { class: 'btn btn-primary', type: 'submit', form: 'entry-form', id: 'entry-save' }, t(creating ? 'create' : 'save')),
    open.plural === 'elders' && !creating ? devicesButton() : null,
    h('span', { class: 'ledger-spacer' }),
    open.plural === 'devices' && !creating ? h('button', { class: 'btn btn-warn', type: 'button', id: 'entry-reset', onclick: () => ask('reset') }, t('reset_password')) : null,
    creating ? null : h('button', { class: 'btn btn-warn', type: 'button', id: 'entry-retire', onclick: () => ask('retire') }, t('retire')));
  if (!open.confirm) return bar;
  const word = open.confirm === 'retire'
    ? t('retire_confirm', { kind: kindWord(open.plural), id: open.id })
    : t('reset_confirm', { id: open.id });
  const confirm = h('div', { class: 'ledger-confirm', role: 'alertdialog', 'data-confirm': open.confirm },
    h('p', null, word),
    h('button', { class: 'btn btn-alarm', type: 'button', id: 'confirm-yes', onclick: () => (open.confirm === 'retire' ? retire() : reset()) }, t(open.confirm === 'retire' ? 'retire' : 'reset_password')),
    h('button', { class: 'btn', type: 'button', id: 'confirm-no', onclick: () => ask(null) }, t('close')));
  return h('div', null, bar, confirm);
}

function devicesButton() {
  return h('button', { class: 'btn', type: 'button', id: 'elder-devices', onclick: () => navigate('devices', { elder: open.id }) }, t('devices_of'));
}

function ask(what) {
  if (form) open.draft = readForm(form, KINDS[open.plural].fields, open.draft).entry;
  open.confirm = what;
  render();
}

function busy(on) {
  for (const b of dom.entry.querySelectorAll('.ledger-actions button, .ledger-confirm button')) b.disabled = on;
  const save = dom.entry.querySelector('#entry-save');
  if (save && on) save.textContent = t('saving');
}

/** Shows a refused change: beside the fields for a 422, as a notice otherwise. */
function refused(answer) {
  if (answer.status === 412) {
    open.notice = { kind: 'stale' };
    open.confirm = null;
    rerender();
    dom.entry.scrollTop = 0;
    return;
  }
  if (answer.status === 422 && answer.body && Array.isArray(answer.body.fields) && form) {
    const loose = showProblems(form, answer.body.fields);
    open.notice = { kind: 'invalid', text: t('field_errors'), loose };
    busy(false);
    const save = dom.entry.querySelector('#entry-save');
    if (save) save.textContent = t(open.id === null ? 'create' : 'save');
    dom.entry.querySelector('.ledger-notice')?.remove();
    dom.entry.querySelector('.ledger-entry-body').before(notice());
    form.querySelector('.invalid')?.scrollIntoView({ block: 'center' });
    return;
  }
  open.notice = { kind: 'refused', text: refusal(answer) };
  open.confirm = null;
  rerender();
  dom.entry.scrollTop = 0;
}

async function save() {
  const spec = KINDS[open.plural];
  const { entry, problems } = readForm(form, spec.fields, open.draft);
  if (problems.length) {
    showProblems(form, problems);
    return;
  }
  open.draft = entry;
  const plural = open.plural;
  busy(true);
  const creating = open.id === null;
  const answer = creating
    ? await createEntry(plural, bodyFor(plural, entry))
    : await updateEntry(plural, open.id, bodyFor(plural, entry), open.item.etag);
  if (open.plural !== plural) return;
  if (!answer.ok) {
    refused(answer);
    return;
  }
  const id = answer.body.id;
  toast(answer.body.action ? t(creating ? 'created' : 'saved', { kind: kindWord(plural), id }) : t('unchanged'), 'ok');
  if (answer.body.password) open.password = { id, password: answer.body.password };
  await openEntry(plural, id, { keepPassword: true });
  load();
}

async function retire() {
  const { plural, id } = open;
  busy(true);
  const answer = await retireEntry(plural, id, open.item.etag);
  if (open.plural !== plural || open.id !== id) return;
  if (!answer.ok) {
    refused(answer);
    return;
  }
  toast(t('retired', { kind: kindWord(plural), id }), 'ok');
  await openEntry(plural, id);
  load();
}

async function reset() {
  const id = open.id;
  busy(true);
  const answer = await resetPassword(id);
  if (open.id !== id) return;
  if (!answer.ok) {
    refused(answer);
    return;
  }
  open.password = { id, password: answer.body.password };
  await openEntry('devices', id, { keepPassword: true });
}
