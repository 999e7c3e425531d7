// Keyboard shortcuts: move through the queue, open, claim, acknowledge, note, suggest.

import { h } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { acknowledge, claim, closeForm, openForm } from './actions.js';
import { unlockAudio } from './alarm.js';
import { closePanel, openIncident } from './detail.js';
import { hideMapCard } from './map-card.js';
import { rowOf } from './queue.js';
import { dom, state } from './state.js';
import { showTab } from './welfare.js';

const SHORTCUTS = [
  ['j / ↓ · k / ↑', 'key_move'],
  ['Enter', 'key_open'],
  ['c', 'key_claim'],
  ['a', 'key_ack'],
  ['n', 'key_note'],
  ['s', 'key_suggest'],
  ['w', 'key_tab'],
  ['Esc', 'key_esc'],
  ['?', 'key_help'],
];

export function renderShortcuts() {
  dom.shortcutsList.replaceChildren(...SHORTCUTS.map(([k, label]) => h('div', { class: 'kv-row' }, h('dt', null, h('kbd', null, k)), h('dd', null, t(label)))));
}

function moveSelection(step) {
  if (state.order.length === 0) return;
  const at = state.selectedId ? state.order.indexOf(state.selectedId) : -1;
  const next = at < 0 ? (step > 0 ? 0 : state.order.length - 1) : Math.max(0, Math.min(state.order.length - 1, at + step));
  const previous = state.selectedId;
  state.selectedId = state.order[next];
  if (previous) rowOf(previous)?.classList.remove('selected');
  const row = rowOf(state.selectedId);
  if (row) {
    row.classList.add('selected');
    row.scrollIntoView({ block: 'nearest' });
  }
}

const target = () => state.openId || state.selectedId;

function typing(ev) {
  const el = ev.target;
  if (!(el instanceof HTMLElement)) return false;
  return el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
}

export function onKey(ev) {
  if (!state.me || dom.app.hidden) return;
  unlockAudio();
  if (ev.key === 'Escape') {
    if (dom.shortcuts.open) return; // the dialog closes itself
    if (state.form) closeForm();
    else if (!dom.mapCard.hidden) hideMapCard();
    else if (state.openId) closePanel();
    else return;
    ev.preventDefault();
    return;
  }
  if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  switch (ev.key) {
    case 'j':
    case 'ArrowDown':
      moveSelection(1);
      break;
    case 'k':
    case 'ArrowUp':
      moveSelection(-1);
      break;
    case 'Enter':
      if (ev.target instanceof HTMLButtonElement || ev.target instanceof HTMLAnchorElement) return;
      if (state.selectedId) openIncident(state.selectedId);
      break;
    case 'c':
      claim(target());
      break;
    case 'a':
      acknowledge(target());
      break;
    case 'n':
      if (!state.openId && state.selectedId) openIncident(state.selectedId);
      if (state.openId) openForm('note');
      break;
    case 's':
      if (!state.openId && state.selectedId) openIncident(state.selectedId);
      if (state.openId) openForm('assign');
      break;
    case 'w':
      showTab(state.tab === 'welfare' ? 'emergency' : 'welfare');
      break;
    case '?':
      if (!dom.shortcuts.open) dom.shortcuts.showModal();
      break;
    default:
      return;
  }
  ev.preventDefault();
}

