// The console's feed: /ws sends `welcome` (who we are, the staff, targets, language,
// tiles), `roster` (responders and stations), a `snapshot` (the open set as of a sequence
// number), then `incident` deltas and `responder` changes. On reconnect we ask for
// `?since=<last applied seq>&history=<id>` so the server sends only what we missed, or a
// fresh snapshot when it cannot. Commands and queries go up the same socket and are
// answered by a `result`.

import { observeServerTime, serverNow } from '../common/clock.js';
import { createFeed, socketUrl } from '../common/feed.js';
import { setLanguage, t } from '../common/i18n.js';
import { clearAlarm, raiseAlarm, viewAcknowledged } from './alarm.js';
import { renderConn, renderLegend, renderStatic } from './header.js';
import { priorityOf } from './incident.js';
import { map, mapIncident, mapResponder, remapAll, showMapCard } from './map-card.js';
import { markDirty, scheduleRender } from './queue.js';
import { showSignin } from './signin.js';
import { CLOSED_STATES, CLOSE_UNAUTHENTICATED, COMMAND_TIMEOUT_MS, dom, state } from './state.js';

function validView(v) {
  return v && typeof v === 'object' && (typeof v.id === 'number' || typeof v.id === 'string');
}

function upsert(view, { isNew }) {
  const id = String(view.id);
  const before = state.incidents.get(id);
  if (CLOSED_STATES.has(view.state)) {
    state.incidents.delete(id);
    clearAlarm(id);
    if (state.openId === id) state.panelDirty = true;
  } else {
    state.incidents.set(id, view);
    const becameUrgent = before && priorityOf(before) > 1 && priorityOf(view) === 1;
    if (viewAcknowledged(view)) clearAlarm(id);
    else if (priorityOf(view) === 1 && (isNew || becameUrgent)) raiseAlarm(id);
  }
  markDirty(id);
  mapIncident(view);
}

function applyWelcome(msg) {
  if (msg.user && typeof msg.user === 'object') state.me = msg.user;
  state.staff.clear();
  for (const s of Array.isArray(msg.staff) ? msg.staff : []) if (s && s.id) state.staff.set(String(s.id), s);
  observeServerTime(msg.server_time);
  const c = msg.console || {};
  if (Number(c.accept_target_s) > 0) state.targets.accept_s = Number(c.accept_target_s);
  if (Number(c.on_scene_target_min) > 0) state.targets.on_scene_min = Number(c.on_scene_target_min);
  if (!state.langChosen) {
    if (c.language) setLanguage(String(c.language).toLowerCase().startsWith('en') ? 'en' : 'zh');
  }
  if (map) map.setBase(c.map);
  renderStatic();
  state.rebuildAll = true;
  state.panelDirty = true;
  scheduleRender();
}

function applyRoster(msg) {
  // A reconnect sends the roster again: drop who is gone, keep the map where it is.
  if (map) {
    for (const id of state.responders.keys()) map.removeMarker('responder', id);
    for (const id of state.stations.keys()) {
      map.removeMarker('station', id);
      map.setCircle(id, null, null);
    }
  }
  state.responders.clear();
  state.stations.clear();
  for (const s of Array.isArray(msg.stations) ? msg.stations : []) if (s && s.id) state.stations.set(String(s.id), s);
  for (const r of Array.isArray(msg.responders) ? msg.responders : []) if (r && r.id) state.responders.set(String(r.id), r);
  remapAll();
  renderLegend();
  refreshMapCard();
}

function applyResponder(msg) {
  const r = msg.responder;
  if (!r || !r.id) return;
  state.responders.set(String(r.id), r);
  mapResponder(r);
  refreshMapCard();
}

export function refreshMapCard() {
  if (!dom.mapCard.hidden && dom.mapCard.dataset.kind !== 'incident') {
    showMapCard(dom.mapCard.dataset.kind, dom.mapCard.dataset.id);
  }
}

function applySnapshot(msg) {
  if (!Array.isArray(msg.incidents) || typeof msg.seq !== 'number') return;
  observeServerTime(msg.server_time);
  const wasLoaded = state.loaded;
  const previous = new Set(state.incidents.keys());
  for (const id of previous) if (map) map.removeMarker('incident', id);
  state.incidents.clear();
  for (const view of msg.incidents) {
    if (!validView(view) || CLOSED_STATES.has(view.state)) continue;
    const id = String(view.id);
    state.incidents.set(id, view);
    // After a gap, anything urgent we had not seen is new to this dispatcher.
    if (wasLoaded && !previous.has(id) && priorityOf(view) === 1 && !viewAcknowledged(view)) raiseAlarm(id);
    if (viewAcknowledged(view)) state.alarms.delete(id);
    mapIncident(view);
  }
  for (const id of [...state.alarms]) if (!state.incidents.has(id)) state.alarms.delete(id);
  state.fresh.clear();
  state.rebuildAll = true;
  state.panelDirty = true;
  state.lastSeq = msg.seq;
  state.history = typeof msg.history === 'string' ? msg.history : null;
  state.loaded = true;
  state.lastUpdate = serverNow();
  renderConn();
  scheduleRender();
}

function applyDelta(msg) {
  if (typeof msg.seq !== 'number' || !validView(msg.incident)) return;
  if (state.lastSeq !== null && msg.seq <= state.lastSeq) return;
  const id = String(msg.incident.id);
  const isNew = state.loaded && !state.incidents.has(id);
  if (isNew) state.fresh.add(id);
  upsert(msg.incident, { isNew });
  state.lastSeq = msg.seq;
  state.lastUpdate = serverNow();
}

function handleMessage(msg) {
  switch (msg.type) {
    case 'welcome':
      applyWelcome(msg);
      break;
    case 'roster':
      applyRoster(msg);
      break;
    case 'responder':
      applyResponder(msg);
      break;
    case 'snapshot':
      applySnapshot(msg);
      break;
    case 'incident':
      applyDelta(msg);
      break;
    default:
      break;
  }
}

// The one feed of this page. A reconnection asks for what it missed since the last applied
// sequence number of its history, so the server sends only that, or a fresh snapshot when
// it cannot.
const feed = createFeed({
  url: () =>
    socketUrl('/ws', {
      since: state.lastSeq,
      history: state.lastSeq !== null ? state.history : null,
    }),
  onFrame: handleMessage,
  onStatus: (status, attempt) => {
    state.attempt = attempt;
    if (status === 'open') state.everConnected = true;
    setConn(status === 'open' ? 'connected' : 'reconnecting');
  },
  onClose: (ev) => {
    if (ev.code !== CLOSE_UNAUTHENTICATED) return false;
    // The session is gone (expired, signed out elsewhere): back to the sign-in form.
    showSignin(t('signin_expired'));
    return true;
  },
});

export function setConn(value) {
  state.conn = value;
  renderConn();
}

/** Opens the feed for the signed-in dispatcher. */
export function connect() {
  if (state.me) feed.start();
}

export function disconnect() {
  feed.stop();
}

// ---------------------------------------------------------------------------------------
// Commands and queries
// ---------------------------------------------------------------------------------------
const FAILURES = { offline: 'not_connected', timeout: 'no_answer', lost: 'no_answer' };

/** Sends a frame as a request; resolves with the `result` frame, or {ok: false, error}. */
export async function request(frame) {
  const result = await feed.request(frame, COMMAND_TIMEOUT_MS);
  return result.failure ? { ok: false, error: t(FAILURES[result.failure]) } : result;
}
