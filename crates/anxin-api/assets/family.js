// The family page: an elder's contact opens the link they were sent (/family#t=TOKEN),
// which is exchanged for an HttpOnly cookie and taken out of the address bar; then one
// socket brings that elder's open incidents live, and the contact answers (seen, going with
// an ETA, "I called: all is well", cannot help). States: signed out, link revoked, too many
// tries, no open incident, connection lost. Web Push when the server offers a key. The
// elder's home-care orders, and ordering one, are in family/care.js.

import { observeServerTime, serverNow } from './common/clock.js';
import { byId, h, whenReady } from './common/dom.js';
import { refusalText } from './common/errors.js';
import { createFeed, socketUrl } from './common/feed.js';
import { formatClock, formatElapsed, pad2 } from './common/format.js';
import {
  chooseLanguage,
  defineStrings,
  htmlLang,
  language,
  otherLanguage,
  rememberedLanguage,
  setLanguage,
  t,
} from './common/i18n.js';
import { FAMILY_STRINGS } from './family/strings.js';
import { placeMap } from './family/map.js';
import { clearCare, refreshCare, relabelCare, renderCare, startCare } from './family/care.js';
import { requestJson } from './common/http.js';

defineStrings(FAMILY_STRINGS);

const LANG_KEY = 'anxin.family.lang';
const CLOSE_SIGNED_OUT = 4401;
// The server sends a heartbeat every 5 s: a socket silent for this long has stalled.
const STALL_AFTER_MS = 12000;
const MAX_ETA_MIN = 1440;
const ENDED = new Set(['closed', 'cancelled', 'false_alarm']);

const state = {
  view: 'loading',
  /** {elder_name, contact_id, contact_name, relation} */
  member: null,
  /** open incidents by id, the family's view */
  incidents: new Map(),
  /** ended since this page opened, shown until the next welcome: id → incident */
  ended: new Map(),
  map: null,
  history: null,
  historyFailed: false,
  /** the incident whose "going" form is open */
  etaFor: null,
  /** [key, vars] to show on each incident's card after an answer */
  notes: new Map(),
  conn: 'connecting',
  push: 'checking',
  limitedFor: 0,
  signedOutText: 'signed_out_text',
};

const maps = new Map();
let feed = null;

// ---- sign-in -------------------------------------------------------------------------------

/** The token in the address (#t=... or ?t=...), taken out of it at once. */
function tokenFromAddress() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  const query = new URLSearchParams(location.search);
  const token = hash.get('t') || query.get('t');
  if (token) history.replaceState(null, '', '/family');
  return token;
}

const api = requestJson;

/** Shows why a sign-in failed; true when it did not. */
function refused({ status, body }) {
  if (status === 200) return false;
  // Signed out: nothing of the elder stays on the screen.
  state.member = null;
  state.incidents.clear();
  state.ended.clear();
  state.history = null;
  clearCare();
  const code = body?.code;
  if (status === 429 || code === 'too_many_tries') {
    state.limitedFor = body?.retry_after_s || 30;
    show('limited');
  } else if (code === 'token_revoked') {
    show('revoked');
  } else {
    state.signedOutText = code === 'token_unknown' ? 'unknown_text' : 'signed_out_text';
    show('signed-out');
  }
  return true;
}

async function signIn() {
  const token = tokenFromAddress();
  const answer = token
    ? await api('POST', '/api/v1/family/session', { token })
    : await api('GET', '/api/v1/family/session');
  if (answer.status === 0) {
    // The server cannot be reached: the socket will keep trying once we know who we are.
    setTimeout(signIn, 3000);
    return;
  }
  if (refused(answer)) return;
  state.member = answer.body.member;
  show('home');
  refreshCare();
  startFeed();
  setUpPush();
}

async function signOut() {
  feed?.stop();
  feed = null;
  await api('DELETE', '/api/v1/family/session');
  state.member = null;
  state.signedOutText = 'signed_out_text';
  show('signed-out');
}

// ---- the feed ------------------------------------------------------------------------------

function startFeed() {
  feed = createFeed({
    url: () => socketUrl('/ws', { family: 1 }),
    stallAfterMs: STALL_AFTER_MS,
    onFrame,
    onStatus: (status) => {
      // Once lost, the connection stays "lost" through every attempt until one opens: the
      // banner must not flicker off while the feed tries again.
      // Orders are not on the socket: what changed while it was down is read again.
      if (status === 'open' && state.conn !== 'open') refreshCare();
      if (status === 'open') state.conn = 'open';
      else if (status === 'stalled' || status === 'waiting' || state.conn === 'lost') state.conn = 'lost';
      else state.conn = 'connecting';
      renderConn();
    },
    onClose: (ev) => {
      if (ev.code !== CLOSE_SIGNED_OUT) return false;
      // Revoked, or signed out: ask why, and stop.
      feed = null;
      api('GET', '/api/v1/family/session').then((answer) => {
        if (!refused(answer)) signIn();
      });
      return true;
    },
  });
  feed.start();
}

function onFrame(frame) {
  if (frame.server_time) observeServerTime(frame.server_time);
  switch (frame.type) {
    case 'family_welcome':
      state.member = frame.member;
      state.map = frame.map;
      state.incidents = new Map(frame.incidents.map((i) => [i.id, i]));
      state.ended.clear();
      askHistory();
      render();
      break;
    case 'family_incident': {
      const i = frame.incident;
      const held = state.incidents.get(i.id) || state.ended.get(i.id);
      if (held && held.seq >= i.seq) return;
      if (ENDED.has(i.state)) {
        state.incidents.delete(i.id);
        state.ended.set(i.id, i);
        askHistory();
      } else {
        state.incidents.set(i.id, i);
        if (!held) askHistory();
      }
      render();
      break;
    }
    default:
      break;
  }
}

async function askHistory() {
  if (!feed) return;
  const result = await feed.request({ type: 'family_history' });
  if (result.ok) {
    state.history = result.past;
    state.historyFailed = false;
  } else {
    state.historyFailed = true;
  }
  renderHistory();
}

async function answer(incident, verb, etaMin) {
  const frame = { type: 'family_answer', incident_id: incident.id, answer: verb };
  if (verb === 'going') frame.eta_min = etaMin;
  state.notes.set(incident.id, ['sending']);
  render();
  const result = feed ? await feed.request(frame) : { ok: false, failure: 'offline' };
  if (result.ok) {
    state.notes.set(incident.id, ['sent']);
    state.etaFor = null;
  } else if (result.failure) {
    state.notes.set(incident.id, [`failed_${result.failure}`]);
  } else {
    // Worded from its code (the page's own words first, then the shared refusals).
    state.notes.set(incident.id, ['refusal', result]);
  }
  render();
}

// ---- push ----------------------------------------------------------------------------------

const pushSupported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

function base64UrlToBytes(text) {
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

let pushKey = null;

async function setUpPush() {
  if (!pushSupported()) {
    state.push = 'unsupported';
    renderPush();
    return;
  }
  const key = await api('GET', '/api/v1/family/push-key');
  if (key.status !== 200 || !key.body?.public_key) {
    state.push = 'not_configured';
    renderPush();
    return;
  }
  pushKey = key.body.public_key;
  try {
    const registration = await navigator.serviceWorker.register('/family-sw.js');
    const existing = await registration.pushManager.getSubscription();
    if (existing && Notification.permission === 'granted') {
      await api('POST', '/api/v1/family/push-subscription', existing.toJSON());
      state.push = 'enabled';
    } else {
      state.push = Notification.permission === 'denied' ? 'denied' : 'off';
    }
  } catch {
    state.push = 'unsupported';
  }
  renderPush();
}

async function enablePush() {
  try {
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      state.push = 'denied';
      renderPush();
      return;
    }
    const registration = await navigator.serviceWorker.ready;
    const sub = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: base64UrlToBytes(pushKey),
    });
    const saved = await api('POST', '/api/v1/family/push-subscription', sub.toJSON());
    state.push = saved.status === 204 ? 'enabled' : 'failed';
  } catch {
    state.push = 'failed';
  }
  renderPush();
}

// ---- rendering -----------------------------------------------------------------------------

function show(view) {
  state.view = view;
  document.body.dataset.view = view;
  render();
}

const elderName = () => state.member?.elder_name || '';
// A welfare check for an elder's inactivity is about the elder, not the call button.
const kindLabel = (kind, welfare) => {
  if (welfare === 'inactive') return t('kind_welfare_inactive');
  if (welfare === 'scheduled_call' || welfare === 'scheduled_visit') return t('kind_welfare_scheduled');
  return t(`kind_${kind}`);
};

function answerLabel(a) {
  if (!a) return '';
  return a.type === 'going' ? t('answer_going', { eta: a.eta_min }) : t(`answer_${a.type}`);
}

/** The one sentence saying where things stand. */
function statusLine(i) {
  const name = i.responder?.name || '';
  switch (i.state) {
    case 'accepted':
    case 'en_route':
      return i.responder?.eta_min
        ? t('status_coming_eta', { name, eta: i.responder.eta_min })
        : t('status_coming', { name });
    case 'on_scene':
      return t('status_on_scene', { name });
    case 'resolved':
      return t('status_resolved');
    case 'closed':
    case 'cancelled':
    case 'false_alarm':
      return t(`status_${i.state}`);
    case 'station_alerted':
      return i.station ? t('status_station', { station: i.station }) : t('status_finding');
    case 'awaiting_dispatcher':
      return i.emergency_call ? t('status_called', { number: i.emergency_call.number }) : t('status_dispatcher');
    default:
      return t('status_finding');
  }
}

/** How far along: 0 received, 1 somebody took it, 2 at the door, 3 dealt with. */
function stepOf(i) {
  if (['resolved', 'closed'].includes(i.state)) return 3;
  if (i.state === 'on_scene') return 2;
  if (['accepted', 'en_route'].includes(i.state)) return 1;
  return 0;
}

function steps(i) {
  const at = stepOf(i);
  const names = ['step_received', 'step_assigned', 'step_on_scene', 'step_done'];
  return h(
    'ol',
    { class: 'steps', 'data-field': 'steps', 'data-step': at },
    names.map((key, n) =>
      h('li', { class: n < at ? 'done' : n === at ? 'current' : 'todo', 'aria-current': n === at ? 'step' : null }, t(key)),
    ),
  );
}

function familyList(i) {
  const me = state.member?.contact_id;
  const answered = i.contacts?.filter((c) => c.answer) || [];
  const rows = (i.contacts || []).map((c) =>
    h(
      'li',
      { 'data-contact': c.id, class: c.id === me ? 'me' : null },
      h('span', { class: 'fam-name' }, language() === 'en' ? `${c.name} (${c.relation})` : `${c.name}（${c.relation}）`, c.id === me ? t('you') : ''),
      h(
        'span',
        { class: 'fam-answer', 'data-field': 'answer' },
        c.answer ? `${answerLabel(c.answer)} · ${formatClock(c.answered_at)}` : c.told_at ? t('told_at', { time: formatClock(c.told_at) }) : '',
      ),
    ),
  );
  return h(
    'div',
    { class: 'family' },
    h('h3', null, t('family_title')),
    answered.length === 0 ? h('p', { class: 'hint' }, t('nobody_answered')) : null,
    rows.length ? h('ul', { class: 'fam-list' }, rows) : null,
  );
}

function answerButtons(i) {
  if (ENDED.has(i.state)) return null;
  const mine = i.contacts?.find((c) => c.id === state.member?.contact_id)?.answer;
  const button = (verb, label) =>
    h(
      'button',
      {
        type: 'button',
        class: `btn answer answer-${verb}${mine?.type === verb ? ' chosen' : ''}`,
        'data-answer': verb,
        'aria-pressed': mine?.type === verb ? 'true' : 'false',
        onclick: () => {
          if (verb === 'going') {
            state.etaFor = i.id;
            render();
            byId(`eta-${i.id}`)?.focus();
          } else {
            answer(i, verb);
          }
        },
      },
      label,
    );
  const form =
    state.etaFor === i.id
      ? h(
          'form',
          {
            class: 'eta',
            'data-field': 'eta-form',
            novalidate: true,
            onsubmit: (ev) => {
              ev.preventDefault();
              const n = Number(byId(`eta-${i.id}`).value);
              if (!Number.isInteger(n) || n < 1 || n > MAX_ETA_MIN) {
                state.notes.set(i.id, ['eta_invalid']);
                render();
                return;
              }
              answer(i, 'going', n);
            },
          },
          h('label', { for: `eta-${i.id}` }, t('eta_label')),
          h(
            'div',
            { class: 'eta-row' },
            h('input', {
              id: `eta-${i.id}`,
              name: 'eta',
              type: 'number',
              inputmode: 'numeric',
              min: 1,
              max: MAX_ETA_MIN,
              value: mine?.type === 'going' ? mine.eta_min : 20,
              required: true,
            }),
            h('span', { class: 'eta-unit' }, t('eta_unit')),
          ),
          h(
            'div',
            { class: 'eta-actions' },
            h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'eta-send' }, t('eta_send')),
            h(
              'button',
              {
                type: 'button',
                class: 'btn btn-secondary',
                onclick: () => {
                  state.etaFor = null;
                  render();
                },
              },
              t('eta_cancel'),
            ),
          ),
        )
      : null;
  const note = state.notes.get(i.id);
  return h(
    'div',
    { class: 'answers' },
    h('h3', null, t('your_answer')),
    h(
      'div',
      { class: 'answer-grid' },
      button('seen', t('btn_seen')),
      button('going', t('btn_going')),
      button('fine', t('btn_fine', { elder: elderName() })),
      button('cannot_help', t('btn_cannot_help')),
    ),
    form,
    note
      ? h(
          'p',
          { class: `note ${note[0] === 'sent' ? 'ok' : note[0] === 'sending' ? '' : 'error'}`, 'data-field': 'answer-note', role: 'status' },
          note[0] === 'refusal' ? refusalText(note[1]) : t(note[0], note[1]),
        )
      : null,
  );
}

/** When it started, in the words of how it started: a press, a call, or a check. */
function whenText(i) {
  const key = i.kind === 'call' ? 'called_at' : i.kind === 'welfare' ? 'raised_at' : 'pressed_at';
  return t(key, { time: formatClock(i.pressed_at), elapsed: formatElapsed(serverNow() - i.pressed_at) });
}

function incidentCard(i) {
  const p = i.place;
  const amap = `https://uri.amap.com/marker?position=${p.lon},${p.lat}&coordinate=wgs84&name=${encodeURIComponent(p.address || '')}`;
  const mapBox = h('div', { class: 'map', 'data-field': 'map', role: 'img' });
  const card = h(
    'article',
    { class: `panel incident kind-${i.kind} state-${i.state}`, 'data-incident': i.id, 'data-state': i.state },
    h(
      'header',
      { class: 'inc-head' },
      h('h1', { class: 'inc-kind', 'data-field': 'kind' }, kindLabel(i.kind, i.welfare)),
      h('p', { class: 'inc-when', 'data-field': 'pressed' }, whenText(i)),
    ),
    h('p', { class: 'inc-status', 'data-field': 'status', role: 'status' }, statusLine(i)),
    steps(i),
    i.outcome ? h('p', { class: 'inc-outcome', 'data-field': 'outcome' }, t('outcome', { text: i.outcome })) : null,
    answerButtons(i),
    familyList(i),
    h(
      'div',
      { class: 'where' },
      h('h3', null, t('where')),
      h('p', { class: 'address', 'data-field': 'address' }, p.address || '',
        Number.isFinite(p.accuracy_m) ? h('span', { class: 'hint' }, ` · ${t('accuracy', { n: Math.round(p.accuracy_m) })}`) : null),
      mapBox,
      h('a', { class: 'btn btn-secondary map-link', href: amap, target: '_blank', rel: 'noopener' }, t('open_map')),
    ),
  );
  return { card, mapBox };
}

function renderIncidents() {
  const box = byId('incidents');
  const shown = [...state.incidents.values(), ...state.ended.values()].sort((a, b) => b.pressed_at - a.pressed_at);
  const keep = new Set(shown.map((i) => i.id));
  for (const [id, m] of maps) {
    if (!keep.has(id)) {
      m.map.remove();
      maps.delete(id);
    }
  }
  // What the contact is typing survives a change arriving meanwhile.
  const typing = state.etaFor !== null ? byId(`eta-${state.etaFor}`) : null;
  const typed = typing ? { value: typing.value, focused: document.activeElement === typing } : null;
  const fresh = [];
  const cards = shown.map((i) => {
    const { card, mapBox } = incidentCard(i);
    // The map is kept across renders (drawing it again would flash): its element moves over.
    const held = maps.get(i.id);
    if (held) {
      mapBox.replaceWith(held.element);
      held.map.move(i.place);
    } else {
      fresh.push([i, mapBox]);
    }
    return card;
  });
  box.replaceChildren(...cards);
  for (const [i, mapBox] of fresh) {
    maps.set(i.id, { map: placeMap(mapBox, i.place, state.map, t('map_label')), element: mapBox });
  }
  for (const { map } of maps.values()) map.resize();
  if (typed) {
    const input = byId(`eta-${state.etaFor}`);
    if (input) {
      input.value = typed.value;
      if (typed.focused) input.focus();
    }
  }
  const none = byId('none');
  none.hidden = state.incidents.size > 0 || state.ended.size > 0;
  none.querySelector('[data-field="none-title"]').textContent = t('none_title', { elder: elderName() });
}

function renderHistory() {
  const list = document.querySelector('[data-field="history"]');
  const empty = document.querySelector('[data-field="history-empty"]');
  if (!list) return;
  if (state.historyFailed && !state.history) {
    empty.hidden = false;
    empty.textContent = t('history_failed');
    list.replaceChildren();
    return;
  }
  const past = state.history || [];
  empty.hidden = past.length > 0 || state.history === null;
  empty.textContent = t('history_empty');
  list.replaceChildren(
    ...past.map((i) => {
      const d = new Date(i.pressed_at);
      const date = `${d.getMonth() + 1}/${d.getDate()}`;
      const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
      const ended = ENDED.has(i.state) || i.state === 'resolved';
      return h(
        'li',
        { 'data-past': i.id, 'data-state': i.state },
        h('span', { class: 'past-what' }, t('history_item', { date, time, kind: kindLabel(i.kind, i.welfare) })),
        h('span', { class: `past-state ${ended ? '' : 'open'}` }, ended ? t(`status_${i.state}`) : t('state_open')),
        i.outcome ? h('span', { class: 'past-outcome' }, i.outcome) : null,
      );
    }),
  );
}

function renderPush() {
  const line = document.querySelector('[data-field="push-state"]');
  const button = document.querySelector('[data-action="push"]');
  if (!line) return;
  const words = {
    checking: '',
    unsupported: 'push_unsupported',
    not_configured: 'push_not_configured',
    off: 'push_off',
    denied: 'push_denied',
    enabled: 'push_enabled',
    failed: 'push_failed',
  };
  line.textContent = words[state.push] ? t(words[state.push]) : '';
  line.dataset.state = state.push;
  button.hidden = !['off', 'failed'].includes(state.push);
  button.textContent = t('push_on');
}

function renderConn() {
  const conn = byId('conn-status');
  const signedIn = state.view === 'home';
  conn.hidden = !signedIn;
  conn.dataset.state = state.conn;
  byId('conn-text').textContent = t(state.conn === 'open' ? 'conn_connected' : state.conn === 'lost' ? 'conn_lost' : 'conn_connecting');
  byId('stale-banner').hidden = !(signedIn && state.conn === 'lost');
}

function render() {
  document.documentElement.lang = htmlLang();
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const toggle = byId('lang-toggle');
  toggle.textContent = otherLanguage() === 'en' ? 'EN' : '中文';
  toggle.lang = htmlLang(otherLanguage());
  for (const section of document.querySelectorAll('main > [data-section]')) {
    section.hidden = section.dataset.section !== state.view;
  }
  document.querySelector('[data-field="signed-out-text"]').textContent = t(state.signedOutText);
  document.querySelector('[data-field="limited-text"]').textContent = t('limited_text', { n: state.limitedFor });
  const who = byId('who');
  who.hidden = !state.member;
  who.textContent = state.member ? t('who', { elder: elderName() }) : '';
  if (state.member) {
    const m = state.member;
    document.querySelector('[data-field="greeting"]').textContent = t('greeting', { name: m.contact_name, relation: m.relation });
  }
  renderConn();
  if (state.view === 'home') {
    renderIncidents();
    renderHistory();
    renderPush();
    renderCare();
  }
}

whenReady(() => {
  setLanguage(rememberedLanguage(LANG_KEY) || (/^en\b/i.test(navigator.language || '') ? 'en' : 'zh'));
  byId('lang-toggle').addEventListener('click', () => {
    chooseLanguage(otherLanguage(), LANG_KEY);
    render();
    relabelCare();
  });
  document.querySelector('[data-action="push"]').addEventListener('click', enablePush);
  document.querySelector('[data-action="sign-out"]').addEventListener('click', signOut);
  startCare(() => (state.view === 'home' ? state.member : null));
  // A link opened in a tab that already shows the page changes only the fragment.
  window.addEventListener('hashchange', () => {
    if (!/[#&]t=/.test(location.hash)) return;
    feed?.stop();
    feed = null;
    state.incidents.clear();
    state.ended.clear();
    state.history = null;
    show('loading');
    signIn();
  });
  // The elapsed time on each card moves on by itself.
  setInterval(() => {
    for (const el of document.querySelectorAll('[data-incident]')) {
      const i = state.incidents.get(Number(el.dataset.incident));
      const when = el.querySelector('[data-field="pressed"]');
      if (i && when) when.textContent = whenText(i);
    }
  }, 1000);
  render();
  signIn();
});
