// The alarm: a new emergency sounds and its row flashes until someone acknowledges or
// claims it.

import { t } from '../common/i18n.js';
import { claimHolder } from './incident.js';
import { markDirty } from './queue.js';
import { ALARM_MIN_GAP_MS, ALARM_REPEAT_MS, dom, state } from './state.js';

let audio = null;
let lastBeep = 0;
let alarmTimer = null;

// Browsers allow sound only after a user gesture; the sign-in click is one, and any
// click or key press after a reload with a live session is another.
export function unlockAudio() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) audio = new Ctx();
    if (audio.state === 'suspended') audio.resume().then(renderSound, () => {});
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

function beep() {
  const now = Date.now();
  if (now - lastBeep < ALARM_MIN_GAP_MS) return;
  lastBeep = now;
  if (!audio) return;
  try {
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const start = audio.currentTime + 0.02;
    // Three short rising tones: distinct from a phone ring, loud enough across a room.
    [880, 988, 1175].forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'square';
      osc.frequency.value = freq;
      const at = start + i * 0.22;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.18, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.2);
    });
  } catch {
    // A broken audio device must not stop the console; the flashing row remains.
  }
}

export function raiseAlarm(id) {
  if (state.alarms.has(id)) return;
  state.alarms.add(id);
  beep();
  armAlarmRepeat();
}

export function clearAlarm(id) {
  if (!state.alarms.delete(id)) return;
  markDirty(id);
  if (state.alarms.size === 0 && alarmTimer !== null) {
    clearInterval(alarmTimer);
    alarmTimer = null;
  }
}

// Flashing: one class on the queue's body, toggled twice a second while any alarm is up.
const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : null;
setInterval(() => {
  if (!dom || !dom.tbody) return;
  const on = state.alarms.size > 0 && !(reducedMotion && reducedMotion.matches) && !dom.tbody.classList.contains('flash-on');
  dom.tbody.classList.toggle('flash-on', on);
}, 500);

function armAlarmRepeat() {
  if (alarmTimer !== null) return;
  alarmTimer = setInterval(() => {
    if (state.alarms.size === 0) {
      clearInterval(alarmTimer);
      alarmTimer = null;
      return;
    }
    beep();
  }, ALARM_REPEAT_MS);
}

/** Stops the repeating sound (signing out: the alarms themselves are cleared with the data). */
export function silenceAlarms() {
  if (alarmTimer !== null) clearInterval(alarmTimer);
  alarmTimer = null;
}

// A view says it was acknowledged when the server sends so, or when a dispatcher holds it.
export function viewAcknowledged(view) {
  return Boolean(view.acknowledged || view.acknowledged_by || view.acknowledged_at || claimHolder(view));
}
