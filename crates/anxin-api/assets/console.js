// Anxin dispatcher console: sign-in, the live queue, the map, an incident's detail and the
// dispatcher's actions, all over the /ws feed.
//
// Native ES modules with no build step; the daemon embeds them and serves them under
// /assets/. This one finds the page's elements and starts; the rest is in console/ (one
// module per concern) and common/ (what every page shares: the feed, words, the clock,
// formatting). The map is Leaflet, vendored in vendor/leaflet/.

import { byId, h, whenReady } from './common/dom.js';
import { defineStrings, rememberedLanguage, setLanguage } from './common/i18n.js';
import { unlockAudio } from './console/alarm.js';
import { closePanel, openIncident } from './console/detail.js';
import { renderStatic, toggleLang } from './console/header.js';
import { onKey } from './console/keys.js';
import { tick } from './console/queue.js';
import { checkSession, signIn, signOut } from './console/signin.js';
import { LANG_KEY, dom, state } from './console/state.js';
import { CONSOLE_STRINGS } from './console/strings.js';
import { showTab } from './console/welfare.js';

defineStrings(CONSOLE_STRINGS);

function start() {
  Object.assign(dom, {
    app: byId('app'),
    signin: byId('signin'),
    signinForm: byId('signin-form'),
    signinUser: byId('signin-user'),
    signinPassword: byId('signin-password'),
    signinError: byId('signin-error'),
    signinSubmit: byId('signin-submit'),
    layout: document.querySelector('.layout'),
    table: byId('incidents'),
    tbody: byId('incident-rows'),
    empty: byId('empty'),
    conn: byId('conn-status'),
    connText: byId('conn-text'),
    staleBanner: byId('stale-banner'),
    countOpen: byId('count-open'),
    countUnassigned: byId('count-unassigned'),
    countAlarm: byId('count-alarm'),
    clock: byId('clock'),
    seqInfo: byId('seq-info'),
    me: byId('me'),
    map: byId('map'),
    mapCard: byId('map-card'),
    legendCircle: byId('legend-circle'),
    detail: byId('detail'),
    detailTitle: byId('detail-title'),
    detailSub: byId('detail-sub'),
    detailClaim: byId('detail-claim'),
    detailActions: byId('detail-actions'),
    detailForm: byId('detail-form'),
    detailBody: byId('detail-body'),
    shortcuts: byId('shortcuts'),
    shortcutsList: byId('shortcuts-list'),
    toasts: byId('toasts'),
    tabEmergency: byId('tab-emergency'),
    tabWelfare: byId('tab-welfare'),
    tabCountEmergency: byId('tab-count-emergency'),
    tabCountWelfare: byId('tab-count-welfare'),
    tabOverdueWelfare: byId('tab-overdue-welfare'),
    tabAlarm: byId('tab-alarm'),
    queuePanel: byId('queue-panel'),
    welfarePanel: byId('welfare-panel'),
    welfareTools: byId('welfare-tools'),
    welfareTable: byId('welfare'),
    welfareBody: byId('welfare-rows'),
    welfareEmpty: byId('welfare-empty'),
  });
  dom.soundHint = h('button', { id: 'sound-hint', class: 'btn btn-alarm sound-hint', type: 'button', hidden: true, onclick: unlockAudio });
  dom.conn.after(dom.soundHint);
  const chosen = rememberedLanguage(LANG_KEY);
  state.langChosen = chosen !== null;
  setLanguage(chosen ?? 'zh');
  for (const b of document.querySelectorAll('.lang-toggle')) b.addEventListener('click', toggleLang);
  dom.signinForm.addEventListener('submit', signIn);
  byId('signout').addEventListener('click', signOut);
  byId('help-button').addEventListener('click', () => dom.shortcuts.showModal());
  byId('detail-close').addEventListener('click', closePanel);
  const openRow = (ev) => {
    const row = ev.target instanceof Element ? ev.target.closest('tr[data-incident-id]') : null;
    if (row && !(ev.target instanceof HTMLAnchorElement)) openIncident(row.dataset.incidentId);
  };
  dom.tbody.addEventListener('click', openRow);
  dom.welfareBody.addEventListener('click', openRow);
  for (const tab of [dom.tabEmergency, dom.tabWelfare]) tab.addEventListener('click', () => showTab(tab.dataset.tab));
  document.addEventListener('keydown', onKey);
  document.addEventListener('pointerdown', unlockAudio, { capture: true });
  renderStatic();
  tick();
  checkSession();
}

whenReady(start);
