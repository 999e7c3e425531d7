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
import { formatClock, formatCountdown, formatElapsed, formatPhone } from './common/format.js';
import { byId, whenReady } from './common/dom.js';
import {
  chooseLanguage,
  defineStrings,
  formatDistance,
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
import { RESPONDER_STRINGS } from './responder/strings.js';

defineStrings(RESPONDER_STRINGS);

const TOKEN_KEY = 'anxin.responder.token';
const LANG_KEY = 'anxin.responder.lang';

// The server closes a socket whose token it does not know with this code.
const CLOSE_BAD_TOKEN = 4401;

// The server answers within 15 s or says it could not; past this we say so ourselves.
const RESULT_TIMEOUT_MS = 20000;
// After an action is accepted, the new `job` frame is due; until it comes (or this long
// passes) the buttons stay disabled, so a second tap cannot repeat the step.
const FRAME_GRACE_MS = 5000;
// The countdown turns urgent below this.
const COUNTDOWN_URGENT_MS = 15000;

const JOB_STATES = new Set(['offered', 'accepted', 'en_route', 'on_scene']);
const KINDS = new Set(['sos', 'fall', 'fire', 'intrusion', 'unreadable', 'service']);
// The one button each state offers (an offer has two, see render).
const NEXT_STEP = { accepted: 'en_route', en_route: 'on_scene', on_scene: 'resolve' };
const ACTIONS = ['accept', 'decline', 'en_route', 'on_scene', 'resolve'];

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
};

let dom = null;

// The phone's position goes to the server while on duty (see responder/location.js).
const positions = createLocationSharing({
  wanted: () => Boolean(state.token && state.responder && state.responder.on_duty),
  send: (frame) => sendFrame(frame),
  changed: () => renderGeo(),
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
  if (view === 'idle') renderIdle();
  renderJob(view === 'job' ? state.job : null);
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
  dom.idleStation.textContent = t('station', { station: r.station_id || '—', id: r.id });
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
    const name = encodeURIComponent(elder.name || '');
    dom.map.href = `https://uri.amap.com/marker?position=${at.lon.toFixed(6)},${at.lat.toFixed(6)}&name=${name}`;
    dom.map.textContent = t('map');
    dom.map.hidden = false;
  } else {
    dom.map.hidden = true;
    dom.map.removeAttribute('href');
  }

  // Buttons: an offer gets accept and decline; a held job gets its next step.
  const shown = jobState === 'offered' ? ['decline', 'accept'] : NEXT_STEP[jobState] ? [NEXT_STEP[jobState]] : [];
  const busy = state.pending.size > 0 || (state.awaitingFrameSince > 0 && Date.now() - state.awaitingFrameSince < FRAME_GRACE_MS);
  const offline = state.conn !== 'connected';
  for (const action of ACTIONS) {
    const b = dom.actions[action];
    b.hidden = !shown.includes(action);
    b.disabled = busy || offline;
    const sending = [...state.pending.values()].some((p) => p.kind === action);
    b.textContent = sending ? t('sending') : t(action);
    b.setAttribute('aria-busy', sending ? 'true' : 'false');
  }
  dom.resolveBox.hidden = jobState !== 'on_scene';
  dom.outcomeError.hidden = !(state.outcomeError && jobState === 'on_scene');
  const error = offline ? t('offline_actions') : message(state.actionError);
  dom.actionError.hidden = !error;
  dom.actionError.textContent = error;
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
  state.responder = { id: String(r.id ?? ''), name: r.name ?? '', station_id: r.station_id ?? '', on_duty: Boolean(r.on_duty) };
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
  const incidentId = job.incident_id;
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
  request(action, { incident_id: incidentId });
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
    outcome: byId('outcome'),
    outcomeError: byId('outcome-error'),
    actionError: byId('action-error'),
    actions: Object.fromEntries(ACTIONS.map((a) => [a, job.querySelector(`[data-action="${a}"]`)])),
    foot: byId('foot'),
    geoStatus: byId('geo-status'),
  };

  setLanguage(rememberedLanguage(LANG_KEY) ?? 'zh');
  applyLanguage();

  dom.langToggle.addEventListener('click', () => {
    chooseLanguage(otherLanguage(), LANG_KEY);
    applyLanguage();
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
