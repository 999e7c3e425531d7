// Anxin responder's phone: sign in with a token, keep a socket to /ws, show the offer or job
// the server says this responder holds, and send each step back.
//
// A native ES module with no build step; the daemon embeds it and serves it at
// /assets/responder.js, with what every page shares (the feed, words, the clock,
// formatting) from common/. The server sends `hello` (who we are, on duty or not), then
// `job` (the whole current offer or job, or null) whenever it changes, and a `result` for
// every action we send. The page never guesses a state: it shows the last `job` frame, so a
// reconnect or a reload lands on the truth.

import { observeServerTime, serverNow } from './common/clock.js';
import { createFeed, socketUrl } from './common/feed.js';
import { formatClock, formatCountdown, formatElapsed, formatPhone, readableId } from './common/format.js';
import { byId, whenReady } from './common/dom.js';
import {
  chooseLanguage,
  defineStrings,
  formatDistance,
  formatList,
  has,
  htmlLang,
  message,
  otherLanguage,
  rememberedLanguage,
  setLanguage,
  t,
} from './common/i18n.js';
import { recall, remember } from './common/storage.js';
import { createLocationSharing } from './responder/location.js';
import { createOrders } from './responder/orders.js';
import { RESPONDER_STRINGS } from './responder/strings.js';
import { createVisits } from './responder/visit.js';

defineStrings(RESPONDER_STRINGS);

const TOKEN_KEY = 'anxin.responder.token';
const LANG_KEY = 'anxin.responder.lang';
// Incidents this phone accepted itself (an `accepted` job it did not accept was assigned by a
// dispatcher, and asks for consent), and `ended` messages the responder dismissed.
const MINE_KEY = 'anxin.responder.mine';
const DISMISSED_KEY = 'anxin.responder.dismissed';
const REMEMBERED_IDS = 30;

// The server closes a socket whose token it does not know with this code.
const CLOSE_BAD_TOKEN = 4401;

// The server answers within 15 s or says it could not; past this we say so ourselves.
const RESULT_TIMEOUT_MS = 20000;
// After an action is accepted, the new `job` frame is due; until it comes (or this long
// passes) the buttons stay disabled, so a second tap cannot repeat the step.
const FRAME_GRACE_MS = 5000;
// The countdown turns urgent below this.
const COUNTDOWN_URGENT_MS = 15000;
// Buttons that appear (a new step, a consent, the reasons) stay inert this long, so the second
// tap of a double tap, or a tap meant for the button that was there before, does nothing.
const ARM_MS = 1200;
const REASONS = ['too_far', 'busy', 'unwell', 'no_transport', 'other'];

const JOB_STATES = new Set(['offered', 'accepted', 'en_route', 'on_scene']);
const KINDS = new Set(['sos', 'fall', 'fire', 'intrusion', 'unreadable', 'service']);
// The one button each state offers (an offer has two, see render).
const NEXT_STEP = { accepted: 'en_route', en_route: 'on_scene', on_scene: 'resolve' };
const ACTIONS = ['accept', 'decline', 'en_route', 'on_scene', 'resolve'];
// The other buttons of the action bar: consent to an assignment, withdraw, leave the reasons.
const EXTRA_ACTIONS = ['consent_go', 'consent_cannot', 'withdraw', 'reason_back'];

const state = {
  token: null,
  /** who the server says we are (`hello`), or null before it has */
  responder: null,
  /** the last `job` frame's job, or null */
  job: null,
  /** whether a `job` frame has arrived since signing in */
  jobKnown: false,
  /** full length of the current offer's countdown, for the bar */
  offer: { id: null, totalMs: 0 },
  lastVibratedOffer: null,
  /** 'connected' once the server said hello on an open socket, else 'reconnecting' */
  conn: 'reconnecting',
  /** the feed's tries since its last healthy connection */
  attempt: 0,
  /** actions sent and not yet answered: local id → { kind, on } */
  pending: new Map(),
  requestSeq: 0,
  /** set when an action was accepted and its `job` frame has not come yet */
  awaitingFrameSince: 0,
  /** the message under the buttons, as [key, vars] so it follows the language; or null */
  actionError: null,
  outcomeError: false,
  /** the message under the token field, as [key, vars]; or null */
  signinError: null,
  /** what the action bar shows now (incident, state, mode), and until when it is inert */
  armKey: '',
  armedUntil: 0,
  /** the reasons being asked for: 'decline' or 'withdraw', or null */
  reasonsFor: null,
  /** incidents this phone accepted itself (see MINE_KEY) */
  mine: [],
  /** a job someone else ended or took away: { incident_id, state, by, reason, reassigned_to, elder } */
  ended: null,
  dismissed: [],
  lastVibratedAssignment: null,
};

let dom = null;

// The phone's position goes to the server while on duty (see responder/location.js).
const positions = createLocationSharing({
  wanted: () => Boolean(state.token && state.responder && state.responder.on_duty),
  send: (frame) => sendFrame(frame),
  changed: () => renderGeo(),
});

// A carer's visits and help button (see responder/visit.js), from the `hello` frame's `carer`.
const visits = createVisits({
  request: (frame) => feed.request(frame, RESULT_TIMEOUT_MS),
  lastFix: () => positions.geo.fix,
  changed: () => render(),
});

// A service worker's orders (see responder/orders.js), from the `hello` frame's `worker`.
const orders = createOrders({
  request: (frame) => feed.request(frame, RESULT_TIMEOUT_MS),
  lastFix: () => positions.geo.fix,
  now: () => serverNow(),
  changed: () => render(),
});

/** Latitude and longitude of a job, whether the server nests them under `at` or not. */
function jobCoordinates(job) {
  const loc = job && job.location;
  if (!loc) return null;
  const at = loc.at && typeof loc.at === 'object' ? loc.at : loc;
  const lat = Number(at.lat);
  const lon = Number(at.lon);
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
  return { lat, lon };
}

// ---------------------------------------------------------------------------------------
// Rendering: the DOM is fixed; these only fill it in and show or hide parts.
// ---------------------------------------------------------------------------------------
function applyLanguage() {
  document.documentElement.lang = htmlLang();
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  dom.langToggle.textContent = t('lang_toggle');
  dom.langToggle.lang = htmlLang(otherLanguage());
  dom.langToggle.setAttribute('aria-label', t('lang_toggle_label'));
  dom.outcome.placeholder = t('outcome_placeholder');
}

function currentView() {
  if (!state.token) return 'signed-out';
  if (!state.responder || !state.jobKnown) return 'connecting';
  return state.job ? 'job' : 'idle';
}

function render() {
  const view = currentView();
  document.body.dataset.view = view;
  dom.signin.hidden = view !== 'signed-out';
  dom.connecting.hidden = view !== 'connecting';
  dom.idle.hidden = view !== 'idle';
  dom.foot.hidden = view === 'signed-out';
  dom.connStatus.hidden = view === 'signed-out';

  dom.signinError.hidden = !state.signinError;
  dom.signinError.textContent = message(state.signinError);

  const r = state.responder;
  dom.who.hidden = !r;
  dom.who.textContent = r ? t('who', { name: r.name || r.id, id: r.id }) : '';

  renderConn();
  renderEnded(view === 'signed-out' ? null : state.ended);
  if (view === 'idle') renderIdle();
  renderJob(view === 'job' ? state.job : null);
  if (view === 'idle' || view === 'job') visits.render(state.conn === 'connected');
  else dom.visits.hidden = true;
  if (view === 'idle' || view === 'job') orders.render(state.conn === 'connected');
  else dom.orders.hidden = true;
  renderGeo();
  renderTick();
}

function renderConn() {
  const connected = state.conn === 'connected';
  dom.connStatus.dataset.state = connected ? 'connected' : 'reconnecting';
  let text;
  if (connected) text = t('conn_connected');
  else if (state.attempt <= 1 && !state.responder) text = t('conn_connecting');
  else text = t('conn_reconnecting') + (state.attempt > 1 ? t('conn_retry', { n: state.attempt }) : '');
  dom.connText.textContent = text;
  dom.staleBanner.hidden = connected || !state.token || !state.responder;
}

function renderIdle() {
  const r = state.responder;
  const on = Boolean(r.on_duty);
  dom.idleName.textContent = r.name || r.id;
  dom.idleStation.textContent = t('station', { station: r.station_name || r.station_id || '—', id: r.id });
  dom.duty.setAttribute('aria-checked', on ? 'true' : 'false');
  dom.dutyText.textContent = on ? t('duty_on') : t('duty_off');
  const dutyPending = [...state.pending.values()].some((p) => p.kind === 'duty');
  dom.duty.disabled = dutyPending || state.conn !== 'connected';
  dom.duty.setAttribute('aria-busy', dutyPending ? 'true' : 'false');
  dom.idleWaiting.textContent = on ? t('waiting_on') : t('waiting_off');
  dom.idleWaiting.dataset.duty = on ? 'on' : 'off';
  // Offline, the banner says so and the switch is disabled; this is for refusals.
  const error = message(state.actionError);
  dom.idleError.hidden = !error;
  dom.idleError.textContent = error;
}

function renderJob(job) {
  const card = dom.job;
  if (!job) {
    card.hidden = true;
    card.removeAttribute('data-incident-id');
    card.removeAttribute('data-state');
    card.removeAttribute('data-kind');
    return;
  }
  card.hidden = false;
  const jobState = JOB_STATES.has(job.state) ? job.state : String(job.state ?? '');
  const kind = KINDS.has(job.kind) ? job.kind : 'unreadable';
  card.dataset.incidentId = String(job.incident_id);
  card.dataset.state = jobState;
  card.dataset.kind = kind;

  dom.kind.textContent = t(`kind_${kind}`);
  dom.jobState.textContent = has(`state_${jobState}`) ? t(`state_${jobState}`) : jobState;

  const elder = job.elder || {};
  dom.elderName.textContent = elder.name || elder.id || '—';
  dom.address.textContent = elder.address || '';
  dom.address.hidden = !elder.address;
  dom.notes.hidden = !elder.notes;
  dom.notesText.textContent = elder.notes || '';
  renderDoor(elder);

  dom.distance.textContent = formatDistance(job.distance_m, '—');
  dom.eta.textContent = Number.isFinite(Number(job.eta_min)) && job.eta_min !== null
    ? t('eta', { n: Number(job.eta_min) })
    : '—';

  const loc = job.location || {};
  let locText;
  if (loc.source === 'device') {
    locText = typeof loc.accuracy_m === 'number'
      ? t('loc_device_acc', { d: formatDistance(loc.accuracy_m) })
      : t('loc_device');
  } else {
    locText = loc.fix_rejected ? t('loc_home_rejected') : t('loc_home');
  }
  dom.location.textContent = locText;
  dom.location.dataset.source = loc.source === 'device' ? 'device' : 'home';

  if (elder.phone) {
    const digits = String(elder.phone).replace(/[^\d+]/g, '');
    dom.phone.href = `tel:${digits}`;
    dom.phone.textContent = t('call', { phone: formatPhone(elder.phone) });
    dom.phone.hidden = false;
  } else {
    dom.phone.hidden = true;
    dom.phone.removeAttribute('href');
  }

  const at = jobCoordinates(job);
  if (at) {
    dom.map.href = amapMarkerUrl(at, elder.name);
    dom.map.textContent = t('map');
    dom.map.hidden = false;
  } else {
    dom.map.hidden = true;
    dom.map.removeAttribute('href');
  }

  // The action bar: an offer gets accept and decline; an assignment asks for consent; a held
  // job gets its next step; a decline or a withdrawal first asks why.
  const assigned = isAssigned(job);
  const mode = state.reasonsFor ? 'reasons' : assigned ? 'consent' : 'steps';
  dom.jobState.textContent = assigned ? t('state_assigned') : dom.jobState.textContent;
  card.dataset.assigned = assigned ? 'true' : 'false';
  if (assigned && state.lastVibratedAssignment !== job.incident_id) {
    state.lastVibratedAssignment = job.incident_id;
    vibrate();
  }
  const shown = mode !== 'steps' ? [] : jobState === 'offered' ? ['decline', 'accept'] : NEXT_STEP[jobState] ? [NEXT_STEP[jobState]] : [];
  const armKey = `${job.incident_id}|${jobState}|${mode}|${state.reasonsFor ?? ''}`;
  if (armKey !== state.armKey) {
    state.armKey = armKey;
    state.armedUntil = Date.now() + ARM_MS;
    setTimeout(render, ARM_MS + 20);
  }
  const arming = Date.now() < state.armedUntil;
  dom.actionsBox.dataset.arming = arming ? 'true' : 'false';
  const busy = state.pending.size > 0 || (state.awaitingFrameSince > 0 && Date.now() - state.awaitingFrameSince < FRAME_GRACE_MS);
  const offline = state.conn !== 'connected';
  const inert = busy || offline || arming;
  const sendingKinds = new Set([...state.pending.values()].map((p) => p.kind));
  for (const action of ACTIONS) {
    const b = dom.actions[action];
    b.hidden = !shown.includes(action);
    b.disabled = inert;
    const sending = sendingKinds.has(action);
    b.textContent = sending ? t('sending') : t(action);
    b.setAttribute('aria-busy', sending ? 'true' : 'false');
  }
  dom.actionRow.hidden = mode !== 'steps';
  dom.consent.hidden = mode !== 'consent';
  dom.reasons.hidden = mode !== 'reasons';
  dom.reasonsTitle.textContent = state.reasonsFor ? t(`reasons_${state.reasonsFor}`) : '';
  const canWithdraw = mode === 'steps' && (jobState === 'accepted' || jobState === 'en_route');
  dom.extra.withdraw.hidden = !canWithdraw;
  for (const action of EXTRA_ACTIONS) dom.extra[action].disabled = inert;
  const goSending = sendingKinds.has('en_route');
  dom.extra.consent_go.textContent = goSending ? t('sending') : t('consent_go');
  for (const reason of REASONS) {
    const b = dom.reasons.querySelector(`[data-reason="${reason}"]`);
    b.disabled = inert;
    const sending = [...state.pending.values()].some((p) => p.reason === reason);
    b.textContent = sending ? t('sending') : t(`reason_${reason}`);
  }
  dom.resolveBox.hidden = jobState !== 'on_scene' || mode !== 'steps';
  dom.outcomeError.hidden = !(state.outcomeError && jobState === 'on_scene');
  const error = offline ? t('offline_actions') : message(state.actionError);
  dom.actionError.hidden = !error;
  dom.actionError.textContent = error;
}

/** Where the elder is, for Amap: its URI API reads `position` as GCJ-02 unless told otherwise,
 * and ours are WGS-84 (off by a few hundred metres in China), so it is told. */
function amapMarkerUrl(at, name) {
  const position = `${at.lon.toFixed(6)},${at.lat.toFixed(6)}`;
  return `https://uri.amap.com/marker?position=${position}&name=${encodeURIComponent(name || '')}&coordinate=wgs84&src=anxin&callnative=1`;
}

/** Whether a dispatcher put this responder on the job without them accepting it on this phone. */
function isAssigned(job) {
  return job.state === 'accepted' && !state.mine.includes(job.incident_id);
}

/** What the responder needs at the door: how to get in, who the elder is, whom to call. */
function renderDoor(elder) {
  const door = String(elder.door_notes || '').trim();
  dom.door.hidden = !door;
  dom.doorText.textContent = door;

  const rows = {
    age: Number.isFinite(Number(elder.age)) && elder.age !== null ? t('age', { n: Number(elder.age) }) : '',
    alone: elder.lives_alone === true ? t('alone_yes') : elder.lives_alone === false ? t('alone_no') : '',
    mobility: String(elder.mobility || '').trim(),
    language: String(elder.language || '').trim(),
    conditions: formatList((elder.conditions || []).filter(Boolean)) || '',
    medications: formatList((elder.medications || []).filter(Boolean)) || '',
  };
  let any = false;
  for (const [name, text] of Object.entries(rows)) {
    dom.profileRows[name].hidden = !text;
    dom.profileValues[name].textContent = text;
    any ||= Boolean(text);
  }
  dom.profile.hidden = !any;

  const contacts = (Array.isArray(elder.contacts) ? elder.contacts : []).filter((c) => c && c.phone);
  dom.contacts.hidden = contacts.length === 0;
  dom.contactList.replaceChildren(
    ...contacts.map((c) => {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.className = 'btn btn-call btn-contact';
      a.href = `tel:${String(c.phone).replace(/[^\d+]/g, '')}`;
      const who = document.createElement('span');
      who.className = 'contact-who';
      who.textContent = c.relation ? t('contact', { name: c.name || '', relation: c.relation }) : c.name || '';
      const number = document.createElement('span');
      number.className = 'contact-phone';
      number.textContent = formatPhone(c.phone);
      a.append(who, number);
      li.append(a);
      return li;
    }),
  );
}

/** The message about a job someone else ended or took away, until the responder dismisses it. */
function renderEnded(ended) {
  dom.ended.hidden = !ended;
  if (!ended) {
    dom.ended.removeAttribute('data-incident-id');
    return;
  }
  dom.ended.dataset.incidentId = String(ended.incident_id);
  dom.ended.dataset.state = String(ended.state);
  const over = ['false_alarm', 'cancelled', 'closed', 'resolved'].includes(ended.state);
  dom.endedTitle.textContent = over ? t('ended_title_over') : t('ended_title_moved');
  dom.endedWhat.textContent = ended.elder
    ? t('ended_what', { id: readableId(ended.incident_id), elder: ended.elder })
    : t('ended_what_id', { id: readableId(ended.incident_id) });
  let text;
  if (ended.state === 'false_alarm') text = t('ended_false_alarm');
  else if (ended.state === 'cancelled') text = ended.by === 'device' ? t('ended_cancelled_device') : t('ended_cancelled');
  else if (ended.state === 'closed') text = t('ended_closed');
  else if (ended.state === 'resolved') text = t('ended_resolved');
  else if (ended.reassigned_to) text = ended.by === 'responder' ? t('ended_taken') : t('ended_reassigned', { name: ended.reassigned_to });
  else if (ended.by === 'engine') text = t('ended_lapsed');
  else text = t('ended_taken_back');
  dom.endedText.textContent = text;
  dom.endedReason.hidden = !ended.reason;
  dom.endedReason.textContent = ended.reason ? t('ended_reason', { reason: ended.reason }) : '';
}

/** The parts that move with the clock: the offer's countdown and the time since the press. */
function renderTick() {
  const job = currentView() === 'job' ? state.job : null;
  if (!job) {
    dom.countdown.hidden = true;
    return;
  }
  const now = serverNow();
  const pressed = Number(job.pressed_at);
  dom.since.textContent = Number.isFinite(pressed) ? formatElapsed(now - pressed) : '--:--';

  const deadline = Number(job.offer_deadline);
  if (job.state !== 'offered' || job.offer_deadline == null || !Number.isFinite(deadline)) {
    dom.countdown.hidden = true;
    return;
  }
  dom.countdown.hidden = false;
  const left = deadline - now;
  dom.countdownTime.textContent = formatCountdown(left);
  dom.countdown.dataset.urgency = left <= 0 ? 'over' : left <= COUNTDOWN_URGENT_MS ? 'urgent' : 'calm';
  dom.countdownLabel.textContent = left <= 0 ? t('countdown_over') : t('countdown_label');
  const total = state.offer.id === job.incident_id && state.offer.totalMs > 0 ? state.offer.totalMs : Math.max(left, 1);
  const fraction = Math.min(1, Math.max(0, left / total));
  dom.countdownFill.style.transform = `scaleX(${fraction.toFixed(4)})`;
}

function renderGeo() {
  const g = positions.geo;
  let text = '';
  if (g.status === 'sharing') text = g.lastSentAt ? t('geo_sent', { time: formatClock(g.lastSentAt) }) : t('geo_sharing');
  else if (g.status !== 'off') text = t(`geo_${g.status}`);
  dom.geoStatus.textContent = text;
  dom.geoStatus.dataset.state = g.status;
  dom.geoStatus.hidden = !text;
}

// ---------------------------------------------------------------------------------------
// Frames from the server
// ---------------------------------------------------------------------------------------
function onHello(msg) {
  const r = msg.responder;
  if (!r || typeof r !== 'object') return;
  state.responder = {
    id: String(r.id ?? ''),
    name: r.name ?? '',
    station_id: r.station_id ?? '',
    station_name: r.station_name ?? '',
    on_duty: Boolean(r.on_duty),
  };
  visits.setCarer(r.carer);
  orders.setWorker(r.worker);
  state.signinError = null;
  setConn('connected');
  positions.update();
  positions.flush();
  render();
}

function onJob(msg) {
  const job = msg.job && typeof msg.job === 'object' ? msg.job : null;
  const previous = state.job;
  state.jobKnown = true;
  state.awaitingFrameSince = 0;
  const ended = msg.ended && typeof msg.ended === 'object' ? msg.ended : null;
  if (ended && !state.dismissed.includes(ended.incident_id)) {
    // The elder's name, from the job this phone showed (a phone that reconnects has none).
    const shown = previous && previous.incident_id === ended.incident_id ? previous.elder?.name : null;
    const kept = state.ended && state.ended.incident_id === ended.incident_id ? state.ended.elder : null;
    state.ended = { ...ended, elder: shown || kept || null };
    vibrate();
  }
  if (!job || !previous || previous.incident_id !== job.incident_id || previous.state !== job.state) state.reasonsFor = null;
  if (job) {
    const serverTime = Number(job.server_time);
    observeServerTime(job.server_time);
    const sameIncident = previous && previous.incident_id === job.incident_id;
    if (!sameIncident) {
      dom.outcome.value = '';
      state.outcomeError = false;
    }
    if (!sameIncident || previous.state !== job.state) state.actionError = null;
    if (job.state === 'offered') {
      if (state.offer.id !== job.incident_id) {
        const deadline = Number(job.offer_deadline);
        state.offer = {
          id: job.incident_id,
          totalMs: Number.isFinite(deadline) && Number.isFinite(serverTime) ? deadline - serverTime : 0,
        };
      }
      if (state.lastVibratedOffer !== job.incident_id) {
        state.lastVibratedOffer = job.incident_id;
        vibrate();
      }
    }
  } else {
    state.actionError = null;
    state.outcomeError = false;
    dom.outcome.value = '';
  }
  state.job = job;
  render();
}

/** How an action went: its `result` frame, or a failure of the feed (see common/feed.js). */
function onResult(msg, p) {
  if (msg.ok) {
    if (p.kind === 'duty' && state.responder) {
      state.responder.on_duty = p.on;
      positions.update();
    }
    if (p.kind !== 'duty') state.awaitingFrameSince = Date.now();
    state.actionError = null;
  } else if (msg.failure) {
    state.actionError = [FAILURES[msg.failure]];
  } else {
    state.actionError = ['refused', { reason: msg.error || '?' }];
  }
  render();
}

function vibrate() {
  if (typeof navigator.vibrate !== 'function') return;
  // Chrome refuses (and complains) before the person has touched the page.
  if (navigator.userActivation && !navigator.userActivation.hasBeenActive) return;
  try {
    navigator.vibrate([400, 150, 400, 150, 700]);
  } catch {
    // Nothing to do: the card is on screen anyway.
  }
}

// ---------------------------------------------------------------------------------------
// Frames to the server
// ---------------------------------------------------------------------------------------
function sendFrame(frame) {
  return state.conn === 'connected' && feed.send(frame);
}

/** Sends an action and waits for its `result`; the buttons show it as sending meanwhile. */
function request(kind, fields, extra = {}) {
  if (state.conn !== 'connected') {
    state.actionError = ['offline_actions'];
    render();
    return;
  }
  state.requestSeq += 1;
  const id = state.requestSeq;
  const p = { kind, ...extra };
  state.pending.set(id, p);
  state.actionError = null;
  render();
  feed.request({ type: kind, ...fields }, RESULT_TIMEOUT_MS).then((result) => {
    // Signed out meanwhile: nobody is waiting for it.
    if (state.pending.delete(id)) onResult(result, p);
  });
}

function onAction(action) {
  const job = state.job;
  if (!job) return;
  // A tap on a button that has just appeared (the second of a double tap) does nothing.
  if (Date.now() < state.armedUntil) return;
  const incidentId = job.incident_id;
  if (action === 'decline' || action === 'withdraw' || action === 'consent_cannot') {
    state.reasonsFor = action === 'decline' ? 'decline' : 'withdraw';
    render();
    return;
  }
  if (action === 'reason_back') {
    state.reasonsFor = null;
    render();
    return;
  }
  if (action === 'resolve') {
    const outcome = dom.outcome.value.trim();
    if (!outcome) {
      state.outcomeError = true;
      render();
      dom.outcome.focus();
      return;
    }
    state.outcomeError = false;
    request('resolve', { incident_id: incidentId, outcome });
    return;
  }
  if (action === 'accept') rememberMine(incidentId);
  if (action === 'consent_go') {
    rememberMine(incidentId);
    request('en_route', { incident_id: incidentId });
    return;
  }
  request(action, { incident_id: incidentId });
}

/** Sends the decline or withdrawal being asked about, with the reason tapped. */
function onReason(reason) {
  const job = state.job;
  if (!job || !state.reasonsFor || Date.now() < state.armedUntil) return;
  request(state.reasonsFor, { incident_id: job.incident_id, reason }, { reason });
}

function rememberMine(incidentId) {
  if (state.mine.includes(incidentId)) return;
  state.mine = [...state.mine, incidentId].slice(-REMEMBERED_IDS);
  remember(MINE_KEY, JSON.stringify(state.mine));
}

function dismissEnded() {
  if (!state.ended) return;
  state.dismissed = [...state.dismissed, state.ended.incident_id].slice(-REMEMBERED_IDS);
  remember(DISMISSED_KEY, JSON.stringify(state.dismissed));
  state.ended = null;
  render();
}

/** A list of incident ids kept under `key`, or none. */
function recallIds(key) {
  try {
    const ids = JSON.parse(recall(key) ?? '[]');
    return Array.isArray(ids) ? ids.filter((n) => Number.isInteger(n)) : [];
  } catch {
    return [];
  }
}

function onDuty() {
  if (!state.responder) return;
  const on = !state.responder.on_duty;
  request('duty', { on }, { on });
}

// ---------------------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------------------
// What an action that never got its answer says (see common/feed.js for the failures).
const FAILURES = { offline: 'offline_actions', timeout: 'no_answer', lost: 'lost_while_sending' };

const feed = createFeed({
  url: () => socketUrl('/ws', { token: state.token }),
  onFrame: (msg) => {
    if (msg.type === 'hello') onHello(msg);
    else if (msg.type === 'job') onJob(msg);
    // Anything else (a result to nothing we asked, a newer server's frame) is ignored.
  },
  onStatus: (status, attempt) => {
    state.attempt = attempt;
    // Connected means the server said hello on this socket (see onHello).
    if (status !== 'open' && state.conn === 'connected') setConn('reconnecting');
    else renderConn();
    if (status === 'waiting') render();
  },
  onClose: (ev) => {
    if (ev.code !== CLOSE_BAD_TOKEN) return false;
    signOut(['wrong_token']);
    return true;
  },
});

function setConn(conn) {
  state.conn = conn;
  renderConn();
}

// ---------------------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------------------
function signIn(token) {
  state.token = token;
  state.signinError = null;
  remember(TOKEN_KEY, token);
  render();
  feed.start();
}

function signOut(error = null) {
  remember(TOKEN_KEY, null);
  state.token = null;
  state.pending.clear();
  feed.stop();
  state.responder = null;
  state.job = null;
  state.jobKnown = false;
  state.actionError = null;
  state.outcomeError = false;
  state.reasonsFor = null;
  state.ended = null;
  visits.reset();
  orders.reset();
  state.signinError = error;
  state.conn = 'reconnecting';
  dom.outcome.value = '';
  positions.update();
  render();
  if (error) {
    dom.token.select();
    dom.token.focus();
  }
}

// ---------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------
function init() {
  const job = byId('job');
  const field = (name) => job.querySelector(`[data-field="${name}"]`);
  dom = {
    langToggle: byId('lang-toggle'),
    connStatus: byId('conn-status'),
    connText: byId('conn-text'),
    staleBanner: byId('stale-banner'),
    who: byId('who'),
    signin: byId('signin'),
    signinForm: byId('signin-form'),
    signinError: byId('signin-error'),
    token: byId('token'),
    connecting: byId('connecting'),
    idle: byId('idle'),
    idleName: byId('idle').querySelector('[data-field="responder-name"]'),
    idleStation: byId('idle').querySelector('[data-field="station"]'),
    duty: byId('duty'),
    dutyText: byId('duty-text'),
    idleWaiting: byId('idle-waiting'),
    idleError: byId('idle-error'),
    job,
    kind: field('kind'),
    jobState: field('state'),
    countdown: field('countdown'),
    countdownTime: field('countdown-time'),
    countdownLabel: job.querySelector('.countdown-label'),
    countdownFill: job.querySelector('.countdown-fill'),
    elderName: field('elder-name'),
    address: field('address'),
    notes: field('notes'),
    notesText: field('notes-text'),
    distance: field('distance'),
    eta: field('eta'),
    since: field('since'),
    location: field('location'),
    phone: field('phone'),
    map: field('map'),
    resolveBox: job.querySelector('.resolve-box'),
    actionsBox: job.querySelector('.actions'),
    actionRow: job.querySelector('.action-row'),
    consent: field('consent'),
    reasons: field('reasons'),
    reasonsTitle: field('reasons-title'),
    extra: Object.fromEntries(EXTRA_ACTIONS.map((a) => [a, job.querySelector(`[data-action="${a}"]`)])),
    door: field('door'),
    doorText: field('door-text'),
    profile: field('profile'),
    profileRows: Object.fromEntries(
      ['age', 'alone', 'mobility', 'language', 'conditions', 'medications'].map((n) => [n, field(`${n}-row`)]),
    ),
    profileValues: Object.fromEntries(
      ['age', 'alone', 'mobility', 'language', 'conditions', 'medications'].map((n) => [n, field(n)]),
    ),
    contacts: field('contacts'),
    contactList: field('contact-list'),
    ended: byId('ended'),
    endedTitle: byId('ended').querySelector('[data-field="ended-title"]'),
    endedWhat: byId('ended').querySelector('[data-field="ended-what"]'),
    endedText: byId('ended').querySelector('[data-field="ended-text"]'),
    endedReason: byId('ended').querySelector('[data-field="ended-reason"]'),
    outcome: byId('outcome'),
    outcomeError: byId('outcome-error'),
    actionError: byId('action-error'),
    actions: Object.fromEntries(ACTIONS.map((a) => [a, job.querySelector(`[data-action="${a}"]`)])),
    foot: byId('foot'),
    geoStatus: byId('geo-status'),
    visits: byId('visits'),
    orders: byId('orders'),
  };
  visits.build(dom.visits);
  orders.build(dom.orders);

  setLanguage(rememberedLanguage(LANG_KEY) ?? 'zh');
  applyLanguage();

  dom.langToggle.addEventListener('click', () => {
    chooseLanguage(otherLanguage(), LANG_KEY);
    applyLanguage();
    orders.redraw(state.conn === 'connected');
    render();
  });
  dom.signinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = dom.token.value.trim();
    if (!token) {
      state.signinError = ['token_required'];
      render();
      dom.token.focus();
      return;
    }
    dom.token.value = '';
    signIn(token);
  });
  document.querySelector('[data-action="sign-out"]').addEventListener('click', () => signOut());
  dom.duty.addEventListener('click', onDuty);
  for (const action of ACTIONS) dom.actions[action].addEventListener('click', () => onAction(action));
  for (const action of EXTRA_ACTIONS) dom.extra[action].addEventListener('click', () => onAction(action));
  for (const b of dom.reasons.querySelectorAll('[data-reason]')) b.addEventListener('click', () => onReason(b.dataset.reason));
  dom.ended.querySelector('[data-action="dismiss-ended"]').addEventListener('click', dismissEnded);
  state.mine = recallIds(MINE_KEY);
  state.dismissed = recallIds(DISMISSED_KEY);
  dom.outcome.addEventListener('input', () => {
    if (state.outcomeError && dom.outcome.value.trim()) {
      state.outcomeError = false;
      render();
    }
  });

  setInterval(() => {
    renderTick();
    // The grace after an accepted action ends on its own if no frame came.
    if (state.awaitingFrameSince && Date.now() - state.awaitingFrameSince >= FRAME_GRACE_MS) {
      state.awaitingFrameSince = 0;
      render();
    }
  }, 500);

  const saved = recall(TOKEN_KEY);
  if (saved) {
    signIn(saved);
  } else {
    render();
  }
}

whenReady(init);
