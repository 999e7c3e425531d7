// The alarm, as the engine derives it: every open incident whose view carries an `alarm`
// ({need, level, raised_seq, raised_at, reminders}) is flagged and sounds until a person acts
// on that need, whether it came up before this console connected (a snapshot) or after (a
// delta). The console keeps no alarm of its own: acknowledging, claiming or assigning
// silences an alarm only when the engine's next view of the incident says so.
//
// Sounds per level, the loudest level up wins: critical (nobody going, on-scene overdue) is
// a fast two-tone siren every 4 s; urgent (a new emergency, an unreadable press, a lost
// claim) three rising tones every 10 s; routine (a service request, a cancel request) one
// soft chime a minute. An alarm that is new, raised again (a new raised_seq) or reminded
// (reminders grew) sounds at once.
//
// A welfare check (level `welfare`: a device gone silent or low on battery) is not an alarm
// here at all: it waits in the welfare list (welfare.js), never sounds, never flashes and is
// not counted as 待确认, whatever need its view names, so a power cut that silences hundreds
// of devices cannot drown an emergency.
//
// A call to the hotline (issue 22) rings with the `incoming_call` alarm, and while it rings a
// caller card pops up at the bottom right: who is calling before anybody picks up, the
// elder's name and the basics of their profile, or the number when the ledger does not know
// it. The card follows the calls, not the alarm: a call joining an emergency whose alarm is
// up already rings too. It leaves when somebody answers, the caller hangs up, the dispatcher
// opens that incident's panel (which says the same and more) or hides the card.

import { serverNow } from '../common/clock.js';
import { h } from '../common/dom.js';
import { formatElapsed, readableId } from '../common/format.js';
import { formatList, has, language, t } from '../common/i18n.js';
import { renderBulkButton } from './bulk.js';
import { openIncident } from './detail.js';
import { callNumber, callerMatchLabel, callerName, callsOf, isRinging, isStandIn, isWelfare, kindLabel } from './incident.js';
import { ringIcon } from './parts.js';
import { markDirty } from './queue.js';
import { ALARM_MIN_GAP_MS, dom, state } from './state.js';

export const LEVELS = ['critical', 'urgent', 'routine'];

const SOUNDS = {
  critical: { wave: 'square', volume: 0.22, repeatMs: 4000, tones: [1319, 988, 1319, 988, 1319, 988], step: 0.16, length: 0.14 },
  urgent: { wave: 'square', volume: 0.18, repeatMs: 10000, tones: [880, 988, 1175], step: 0.22, length: 0.18 },
  routine: { wave: 'sine', volume: 0.1, repeatMs: 60000, tones: [659], step: 0.5, length: 0.45 },
};

let audio = null;
let lastSound = 0;
let repeatTimer = null;
let repeatLevel = null;

// Browsers allow sound only after a user gesture; the sign-in click is one, and any
// click or key press after a reload with a live session is another.
export function unlockAudio() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    const first = !audio;
    if (!audio) audio = new Ctx();
    if (audio.state === 'suspended') audio.resume().then(renderSound, () => {});
    // A reload with alarms up was silent until now: the first gesture lets them be heard.
    if (first && state.alarms.size > 0) rearm({ soundNow: true });
  } catch {
    audio = null;
  }
  renderSound();
}

export function renderSound() {
  if (!dom || !dom.soundHint) return;
  const off = !audio || audio.state !== 'running';
  dom.soundHint.hidden = !off || !state.me;
  dom.soundHint.textContent = t('sound_off');
}

/** The most pressing level among the alarms up, or null for none. */
export function loudestLevel() {
  let best = null;
  for (const a of state.alarms.values()) {
    const at = LEVELS.indexOf(a.level);
    const rank = at < 0 ? 1 : at; // an unknown level is treated as urgent
    if (best === null || rank < best) best = rank;
  }
  return best === null ? null : LEVELS[best];
}

// A sound asked for within the minimum gap of the last is played when the gap ends (once,
// at the loudest level up then), so a critical alarm right after an urgent one is heard.
let deferred = null;

function play(level) {
  const now = Date.now();
  if (now - lastSound < ALARM_MIN_GAP_MS) {
    if (deferred === null) {
      deferred = setTimeout(() => {
        deferred = null;
        const loudest = loudestLevel();
        if (loudest !== null) play(loudest);
      }, ALARM_MIN_GAP_MS - (now - lastSound));
    }
    return;
  }
  lastSound = now;
  if (!audio) return;
  const sound = SOUNDS[level] || SOUNDS.urgent;
  try {
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const start = audio.currentTime + 0.02;
    sound.tones.forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = sound.wave;
      osc.frequency.value = freq;
      const at = start + i * sound.step;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(sound.volume, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + sound.length);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + sound.length + 0.02);
    });
  } catch {
    // A broken audio device must not stop the console; the flashing row remains.
  }
}

// The repeat follows the loudest level up: re-armed whenever that level changes.
function rearm({ soundNow }) {
  renderBulkButton();
  const level = loudestLevel();
  if (level === null) {
    silenceAlarms();
    return;
  }
  if (soundNow) play(level);
  if (repeatLevel === level && repeatTimer !== null && !soundNow) return;
  if (repeatTimer !== null) clearInterval(repeatTimer);
  repeatLevel = level;
  repeatTimer = setInterval(() => {
    const now = loudestLevel();
    if (now === null) silenceAlarms();
    else play(now);
  }, SOUNDS[level].repeatMs);
}

function validAlarm(a) {
  return a && typeof a === 'object' && typeof a.raised_seq === 'number';
}

/**
 * Takes an incident's alarm from its view (null when it is closed or has none). Returns
 * whether it is one to sound now: new here, raised again, or a reminder.
 */
function take(id, view) {
  const before = state.alarms.get(id);
  const quiet = isWelfare(view) || view?.alarm?.level === 'welfare';
  const alarm = view && validAlarm(view.alarm) && view.state !== 'resolved' && !quiet ? view.alarm : null;
  if (!alarm) {
    if (before) {
      state.alarms.delete(id);
      markDirty(id);
    }
    return false;
  }
  state.alarms.set(id, alarm);
  if (!before) return true;
  if (before.raised_seq !== alarm.raised_seq || before.level !== alarm.level || before.need !== alarm.need) {
    markDirty(id);
    return true;
  }
  if (Number(alarm.reminders) > Number(before.reminders)) {
    markDirty(id);
    return true;
  }
  return false;
}

/** One incident changed (a delta, or its end when `view` is null). */
export function alarmFromView(id, view) {
  const ring = take(String(id), view);
  rearm({ soundNow: ring });
}

/** A snapshot replaced everything: `views` are all the open incidents. */
export function alarmsFromSnapshot(views) {
  const seen = new Set();
  let ring = false;
  for (const view of views) {
    const id = String(view.id);
    seen.add(id);
    if (take(id, view)) ring = true;
  }
  for (const id of [...state.alarms.keys()]) {
    if (!seen.has(id)) {
      state.alarms.delete(id);
      markDirty(id);
    }
  }
  rearm({ soundNow: ring });
}

// Flashing: one class on the queue's body, toggled twice a second while any alarm is up.
const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : null;
setInterval(() => {
  if (!dom || !dom.tbody) return;
  const on = state.alarms.size > 0 && !(reducedMotion && reducedMotion.matches) && !dom.tbody.classList.contains('flash-on');
  dom.tbody.classList.toggle('flash-on', on);
}, 500);

/** Stops the repeating sound (no alarm is up, or signing out). */
export function silenceAlarms() {
  if (repeatTimer !== null) clearInterval(repeatTimer);
  if (deferred !== null) clearTimeout(deferred);
  repeatTimer = null;
  repeatLevel = null;
  deferred = null;
}

/** The words for an alarm's need, e.g. "nobody is going". */
export function needLabel(need) {
  const key = `alarm_need_${need}`;
  return has(key) ? t(key) : String(need);
}

// ---------------------------------------------------------------------------------------
// The caller card: who is calling, while it rings.
// ---------------------------------------------------------------------------------------

// Cards shown at once; more ringing calls are counted under them.
const MAX_CALL_CARDS = 3;
/** call ids the dispatcher hid on this console while they ring */
const hiddenCalls = new Set();
let callPop = null;

function ensureCallPop() {
  if (!callPop) {
    callPop = h('div', { id: 'call-pop', class: 'call-pop', role: 'region', 'aria-live': 'assertive', hidden: true });
    // Inside the app, so it goes with it when the dispatcher signs out.
    (dom.app || document.body).append(callPop);
  }
  return callPop;
}

function profileRows(view) {
  const e = view.elder || {};
  const row = (label, value, field) => (value ? h('div', { class: 'kv-row', 'data-field': field }, h('dt', null, label), h('dd', null, value)) : null);
  return h(
    'dl',
    { class: 'kv cp-profile' },
    row(t('f_address'), e.address, 'cp-address'),
    row(t('f_conditions'), formatList(e.conditions), 'cp-conditions'),
    row(t('f_mobility'), e.mobility, 'cp-mobility'),
    row(t('f_language'), e.language, 'cp-language'),
  );
}

function callCard(view, call) {
  const e = view.elder || {};
  const id = String(view.id);
  const hint = call.caller === 'withheld' ? 'caller_withheld_hint' : 'caller_unknown_hint';
  return h(
    'div',
    { class: 'call-pop-card', 'data-incident-id': id, 'data-call-id': call.call_id, 'data-caller': call.caller },
    h(
      'div',
      { class: 'cp-head' },
      h('span', { class: 'call-badge ringing' }, ringIcon(), ' ', t('ringing')),
      h('span', { class: 'cp-number', 'data-field': 'caller-number' }, callNumber(call)),
      h('span', { class: `call-caller caller-${call.caller}`, 'data-field': 'caller-match' }, callerMatchLabel(call.caller)),
      h('span', { class: 'cp-for', 'data-field': 'ringing-for', 'data-from': call.rang_at }, t('callpop_ringing_for', { t: formatElapsed(serverNow() - Number(call.rang_at)) })),
    ),
    h(
      'div',
      { class: 'cp-name-line' },
      h('span', { class: 'cp-name', 'data-field': 'caller-name' }, callerName(view)),
      typeof e.age === 'number' ? h('span', { class: 'elder-age' }, ` ${t('f_age_value', { n: e.age })}`) : null,
      e.lives_alone === true ? h('span', { class: 'chip chip-alone' }, t('f_lives_alone')) : null,
    ),
    isStandIn(view) ? h('p', { class: 'caller-hint', 'data-field': 'caller-hint' }, t(hint)) : profileRows(view),
    h(
      'div',
      { class: 'cp-foot' },
      h('span', { class: 'cp-incident' }, h('span', { class: `kind kind-${view.kind}` }, kindLabel(view.kind)), ' ', t('detail_incident', { id: readableId(id) })),
      h('button', { class: 'btn btn-primary btn-small', type: 'button', 'data-action': 'open-call', onclick: () => openIncident(id) }, t('callpop_open')),
      h(
        'button',
        {
          class: 'btn btn-quiet btn-small',
          type: 'button',
          'data-action': 'hide-call',
          onclick: () => {
            hiddenCalls.add(String(call.call_id));
            renderCallPop();
          },
        },
        t('callpop_hide'),
      ),
    ),
  );
}

/** A card for each call ringing now, the longest ringing first, but for the incident open in
 * the panel and the calls hidden here. Called after each render of the queue. */
export function renderCallPop() {
  const pop = ensureCallPop();
  const ringing = [];
  const stillRinging = new Set();
  for (const view of state.incidents.values()) {
    if (isWelfare(view) || view.state === 'resolved') continue;
    for (const call of callsOf(view).filter(isRinging)) {
      const callId = String(call.call_id);
      stillRinging.add(callId);
      if (String(view.id) !== state.openId && !hiddenCalls.has(callId)) ringing.push([view, call]);
    }
  }
  // A call hidden here that no longer rings is forgotten.
  for (const callId of hiddenCalls) if (!stillRinging.has(callId)) hiddenCalls.delete(callId);
  ringing.sort(([, a], [, b]) => Number(a.rang_at) - Number(b.rang_at));
  // Drawn again only when what it shows changed.
  const key = `${language()}|${ringing.map(([v, c]) => `${v.id}:${v.seq}:${c.call_id}`).join(',')}`;
  if (pop.dataset.key === key) return;
  pop.dataset.key = key;
  pop.dataset.count = String(ringing.length);
  pop.setAttribute('aria-label', t('callpop_title'));
  const cards = ringing.slice(0, MAX_CALL_CARDS).map(([view, call]) => callCard(view, call));
  const more = ringing.length - cards.length;
  if (more > 0) cards.push(h('div', { class: 'cp-more', 'data-field': 'callpop-more' }, t('callpop_more', { n: more })));
  pop.replaceChildren(...cards);
  pop.hidden = ringing.length === 0;
}

/** Every second: how long each call on a card has rung. */
export function tickCallPop(now) {
  if (!callPop || callPop.hidden) return;
  for (const el of callPop.querySelectorAll('[data-field="ringing-for"]')) {
    const text = t('callpop_ringing_for', { t: formatElapsed(now - Number(el.dataset.from)) });
    if (el.textContent !== text) el.textContent = text;
  }
}
