// The console's feed: /ws sends `welcome` (who we are, the staff, targets, language,
// tiles), `roster` (responders and stations), a `snapshot` (the open set as of a sequence
// number), then `incident` deltas, `responder` changes and `responder_retired` (off the
// map); `presence` says which staff
// have a console connected, and a `heartbeat` every 5 s carries the feed's latest sequence
// numbers. The feed is numbered per zone (each zone's engine numbers its own events,
// zone * 2^40 + n, so a number says its zone); we keep the last applied of each. A socket
// silent for 12 s is dropped as stalled; a heartbeat ahead of what we applied in any zone,
// with no delta to fill the gap, makes us connect again and catch up. On reconnect we ask
// for `?since=<last applied of each zone, comma-separated>&history=<id>` so the server sends
// only what we missed, or a fresh snapshot when it cannot. Commands and queries go up the
// same socket and are answered by a `result`.

import { observeServerTime, serverNow } from '../common/clock.js';
import { createFeed, socketUrl } from '../common/feed.js';
import { setLanguage, t } from '../common/i18n.js';
import { refusalText } from '../common/errors.js';
import { alarmFromView, alarmsFromSnapshot } from './alarm.js';
import { renderConn, renderLegend, renderPresence, renderStatic } from './header.js';
import { stateLabel } from './incident.js';
import { hideMapCard, map, mapIncident, mapResponder, remapAll, showMapCard } from './map-card.js';
import { markDirty, scheduleRender } from './queue.js';
import { showSignin } from './signin.js';
import {
  BEHIND_GRACE_MS,
  CLOSED_STATES,
  CLOSE_UNAUTHENTICATED,
  COMMAND_TIMEOUT_MS,
  STALL_AFTER_MS,
  dom,
  state,
} from './state.js';

function validView(v) {
  return v && typeof v === 'object' && (typeof v.id === 'number' || typeof v.id === 'string');
}

function upsert(view) {
  const id = String(view.id);
  if (CLOSED_STATES.has(view.state)) {
    state.incidents.delete(id);
    alarmFromView(id, null);
    if (state.openId === id) state.panelDirty = true;
  } else {
    state.incidents.set(id, view);
    alarmFromView(id, view);
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
  if (Number(c.programme_overdue_after_h) > 0) state.targets.programme_overdue_h = Number(c.programme_overdue_after_h);
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

// A responder retired from the ledger: off the map, and their card closed if it is open.
function applyResponderRetired(msg) {
  if (msg.id === undefined || msg.id === null) return;
  const id = String(msg.id);
  state.responders.delete(id);
  if (map) map.removeMarker('responder', id);
  if (!dom.mapCard.hidden && dom.mapCard.dataset.kind === 'responder' && dom.mapCard.dataset.id === id) hideMapCard();
}

export function refreshMapCard() {
  if (!dom.mapCard.hidden && dom.mapCard.dataset.kind !== 'incident') {
    showMapCard(dom.mapCard.dataset.kind, dom.mapCard.dataset.id);
  }
}

// The zone a sequence number belongs to (exact: numbers stay below 2^53).
const zoneOf = (seq) => Math.floor(seq / 2 ** 40);

// A snapshot's or heartbeat's numbers, one a zone (`seqs`; an older server sent `seq` alone).
function seqsOf(msg) {
  const seqs = Array.isArray(msg.seqs) && msg.seqs.length > 0 ? msg.seqs : [msg.seq];
  return seqs.filter((n) => typeof n === 'number');
}

function applySnapshot(msg) {
  if (!Array.isArray(msg.incidents) || typeof msg.seq !== 'number') return;
  observeServerTime(msg.server_time);
  const previous = new Set(state.incidents.keys());
  for (const id of previous) if (map) map.removeMarker('incident', id);
  state.incidents.clear();
  const open = [];
  for (const view of msg.incidents) {
    if (!validView(view) || CLOSED_STATES.has(view.state)) continue;
    state.incidents.set(String(view.id), view);
    open.push(view);
  }
  // Whatever already needs a person is flagged and sounds, however long it has waited.
  alarmsFromSnapshot(open);
  for (const view of open) mapIncident(view);
  state.fresh.clear();
  state.rebuildAll = true;
  state.panelDirty = true;
  state.seqs.clear();
  for (const n of seqsOf(msg)) state.seqs.set(zoneOf(n), n);
  state.lastSeq = msg.seq;
  state.history = typeof msg.history === 'string' ? msg.history : null;
  state.loaded = true;
  state.lastUpdate = serverNow();
  renderConn();
  scheduleRender();
}

function applyDelta(msg) {
  if (typeof msg.seq !== 'number' || !validView(msg.incident)) return;
  const zone = zoneOf(msg.seq);
  if (msg.seq <= (state.seqs.get(zone) ?? 0)) return;
  const id = String(msg.incident.id);
  if (state.loaded && !state.incidents.has(id)) state.fresh.add(id);
  upsert(msg.incident);
  state.seqs.set(zone, msg.seq);
  state.lastSeq = Math.max(state.lastSeq ?? 0, msg.seq);
  state.lastUpdate = serverNow();
}

function applyPresence(msg) {
  state.online = new Set((Array.isArray(msg.online) ? msg.online : []).map(String));
  renderPresence();
  // The claim bar says whether the claimant is still here.
  if (state.openId) state.panelDirty = true;
  scheduleRender();
}

// A heartbeat ahead of what we applied: the deltas in between should be on their way. If
// they have not come after a grace period, this socket is behind: connect again and catch up.
let behindCheck = null;
function applyHeartbeat(msg) {
  observeServerTime(msg.server_time);
  if (typeof msg.seq !== 'number' || !state.loaded || state.lastSeq === null) return;
  const behind = (n) => n > (state.seqs.get(zoneOf(n)) ?? 0);
  const wanted = seqsOf(msg).filter(behind);
  if (wanted.length === 0 || behindCheck !== null) return;
  behindCheck = setTimeout(() => {
    behindCheck = null;
    if (state.loaded && state.lastSeq !== null && wanted.some(behind)) feed.reconnect();
  }, BEHIND_GRACE_MS);
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
    case 'responder_retired':
      applyResponderRetired(msg);
      break;
    case 'snapshot':
      applySnapshot(msg);
      break;
    case 'incident':
      applyDelta(msg);
      break;
    case 'presence':
      applyPresence(msg);
      break;
    case 'heartbeat':
      applyHeartbeat(msg);
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
      since: state.seqs.size > 0 ? [...state.seqs.values()].join(',') : null,
      history: state.seqs.size > 0 ? state.history : null,
    }),
  onFrame: handleMessage,
  stallAfterMs: STALL_AFTER_MS,
  onStatus: (status, attempt) => {
    state.attempt = attempt;
    if (status === 'open') {
      state.everConnected = true;
      state.stalled = false;
    }
    if (status === 'stalled') state.stalled = true;
    if (status === 'stopped') state.stalled = false;
    setConn(status === 'open' ? 'connected' : state.stalled ? 'stalled' : 'reconnecting');
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

// A refusal's args in words a dispatcher knows: names for ids, labels for states.
function argName(arg, value) {
  if (arg === 'by') {
    // The engine names a holder "name (id)" or by id alone; the console shows the name.
    const id = /\(([^()]+)\)$/.exec(value)?.[1] ?? value;
    const s = state.staff.get(id);
    return s ? s.name || s.id : value;
  }
  if (arg === 'responder') {
    const r = state.responders.get(value);
    return r ? r.name || r.id : value;
  }
  if (arg === 'from' || arg === 'to') return stateLabel(value);
  return value;
}

/**
 * Sends a frame as a request; resolves with the `result` frame, or {ok: false, error}. A
 * refusal's `error` is put in the page's words (from its code and args); the server's
 * English stays in `serverError`.
 */
export async function request(frame) {
  const result = await feed.request(frame, COMMAND_TIMEOUT_MS);
  if (result.failure) return { ok: false, error: t(FAILURES[result.failure]) };
  if (result.ok === false) return { ...result, serverError: result.error, error: refusalText(result, argName) };
  return result;
}
