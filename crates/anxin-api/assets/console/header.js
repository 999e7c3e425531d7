// The page's fixed words and the bar at the top: language, who is signed in, who else is
// online, the connection, and the map legend's service-circle line.

import { h } from '../common/dom.js';
import { chooseLanguage, htmlLang, otherLanguage, t } from '../common/i18n.js';
import { renderForm } from './actions.js';
import { renderSound } from './alarm.js';
import { renderBulkButton } from './bulk.js';
import { refreshMapCard } from './feed.js';
import { roleLabel } from './incident.js';
import { renderShortcuts } from './keys.js';
import { map, remapAll } from './map-card.js';
import { scheduleRender } from './queue.js';
import { LANG_KEY, dom, state } from './state.js';

export function renderStatic() {
  document.documentElement.lang = htmlLang();
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll('[data-i18n-title]')) node.title = t(node.dataset.i18nTitle);
  for (const b of document.querySelectorAll('.lang-toggle')) {
    b.textContent = t('lang_toggle');
    b.lang = htmlLang(otherLanguage());
  }
  renderMe();
  renderPresence();
  renderLegend();
  renderShortcuts();
  if (map) map.relabel();
  renderConn();
  renderSound();
  renderBulkButton();
}

function renderMe() {
  if (!dom.me) return;
  dom.me.textContent = state.me ? `${state.me.name || state.me.id} · ${roleLabel(state.me.role)}` : '';
  dom.me.dataset.role = state.me?.role ?? '';
  // A supervisor reads the ledger too; a dispatcher has no use for it.
  const ledgerLink = document.getElementById('ledger-link');
  if (ledgerLink) ledgerLink.hidden = state.me?.role !== 'supervisor';
  // --- wallboard (issue 24): supervisors' link to /console/wall
  const wallLink = document.getElementById('wall-link');
  if (wallLink) wallLink.hidden = state.me?.role !== 'supervisor';
  // --- end wallboard
}

export function renderLegend() {
  const mins = new Set();
  for (const s of state.stations.values()) if (Number(s.service_circle_min) > 0) mins.add(Number(s.service_circle_min));
  dom.legendCircle.textContent = mins.size === 1
    ? t('lg_circle', { min: [...mins][0] })
    : t('lg_circle_plain');
}

/** The staff with a console connected now (from `presence`), by name, me first. */
export function renderPresence() {
  if (!dom.me) return;
  if (!dom.presence) {
    dom.presence = h('span', { id: 'presence', class: 'presence', 'data-field': 'presence' });
    dom.me.after(dom.presence);
  }
  const online = state.online;
  if (!online || !state.me) {
    dom.presence.hidden = true;
    dom.presence.replaceChildren();
    return;
  }
  const others = [...online].filter((id) => id !== String(state.me.id));
  const names = others.map((id) => {
    const s = state.staff.get(id);
    return h('span', { class: 'presence-name', 'data-staff-id': id, title: id }, s ? s.name || s.id : id);
  });
  dom.presence.hidden = false;
  dom.presence.dataset.count = String(others.length);
  dom.presence.title = `${t('presence_title')}: ${others.map((id) => state.staff.get(id)?.name || id).join(', ') || t('presence_only_me')}`;
  dom.presence.replaceChildren(
    h('span', { class: 'presence-label' }, t('presence_label')),
    ...(names.length ? names : [h('span', { class: 'presence-none' }, t('presence_only_me'))]),
  );
}

/** Whether a member of staff has a console connected (unknown before a presence frame). */
export function isOnline(id) {
  return state.online === null ? null : state.online.has(String(id));
}

export function renderConn() {
  dom.conn.dataset.state = state.conn;
  if (state.conn === 'connected') {
    dom.connText.textContent = t('conn_connected');
  } else if (state.conn === 'stalled') {
    dom.connText.textContent = t('conn_stalled') + (state.attempt > 1 ? t('conn_retry', { n: state.attempt }) : '');
  } else if (!state.everConnected) {
    dom.connText.textContent = t('conn_connecting');
  } else {
    dom.connText.textContent = t('conn_reconnecting') + (state.attempt > 1 ? t('conn_retry', { n: state.attempt }) : '');
  }
  const stale = state.conn !== 'connected' && state.loaded;
  dom.staleBanner.hidden = !stale;
  document.body.classList.toggle('stale', stale);
}

export function toggleLang() {
  chooseLanguage(otherLanguage(), LANG_KEY);
  state.langChosen = true;
  renderStatic();
  if (!dom.signin.hidden) {
    dom.signinSubmit.textContent = t('signin_submit');
    dom.signinError.hidden = true;
  }
  state.rebuildAll = true;
  state.panelDirty = true;
  remapAll();
  renderForm();
  refreshMapCard();
  scheduleRender();
}
