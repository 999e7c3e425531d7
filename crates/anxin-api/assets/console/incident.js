// What the console reads from an incident view: when it was pressed, which target runs,
// how urgent it is, who holds it, and its labels in words.

import { has, t, withColon } from '../common/i18n.js';
import { AWAITING_ACCEPT, AWAITING_SCENE, OUTCOMES, state } from './state.js';

export function pressMoment(view) {
  const p = Number(view.pressed_at);
  const o = Number(view.opened_at);
  if (Number.isFinite(p) && Number.isFinite(o)) return Math.min(p, o);
  return Number.isFinite(p) ? p : o;
}

/** Which target runs for a view, and its length in ms. */
export function targetOf(view) {
  if (AWAITING_ACCEPT.has(view.state)) return { kind: 'accept', ms: state.targets.accept_s * 1000 };
  if (AWAITING_SCENE.has(view.state)) return { kind: 'on_scene', ms: state.targets.on_scene_min * 60000 };
  return { kind: 'done', ms: 0 };
}

// Amber from 75 % of the target, red past it; a clock with no target running is calm.
export function ageLevel(elapsed, target) {
  if (!target.ms) return 'done';
  if (elapsed >= target.ms) return 'late';
  if (elapsed >= target.ms * 0.75) return 'warn';
  return 'ok';
}

export function isUnassigned(view) {
  const offered = Array.isArray(view.offers) && view.offers.length > 0;
  return (!view.responder && !offered) || view.state === 'awaiting_dispatcher';
}

export function isEmergency(view) {
  return view.kind === 'sos' || view.kind === 'fall' || view.kind === 'fire' || view.kind === 'intrusion';
}

export function isNobodyInRange(view) {
  if ('dispatcher_needed' in view) {
    return view.state === 'station_alerted' || view.dispatcher_needed === 'nobody_going';
  }
  return isEmergency(view);
}

export function priorityOf(view) {
  return typeof view.priority === 'number' ? view.priority : 99;
}

export function compareViews(a, b) {
  return (
    priorityOf(a) - priorityOf(b) ||
    pressMoment(a) - pressMoment(b) ||
    String(a.id).localeCompare(String(b.id), 'en', { numeric: true })
  );
}

export function kindLabel(kind) {
  return has(`kind_${kind}`) ? t(`kind_${kind}`) : String(kind);
}

export function stateLabel(st) {
  return has(`state_${st}`) ? t(`state_${st}`) : String(st);
}

export function roleLabel(role) {
  return has(`role_${role}`) ? t(`role_${role}`) : String(role ?? '');
}

export function modeLabel(mode) {
  return has(`mode_${mode}`) ? t(`mode_${mode}`) : String(mode ?? '');
}

export function outcomeLabel(text) {
  const s = String(text ?? '');
  const m = /^([a-z_]+)(?::\s*(.*))?$/s.exec(s);
  if (m && OUTCOMES.includes(m[1])) {
    const label = t(`outcome_${m[1]}`);
    return m[2] ? withColon(label, m[2]) : label;
  }
  return s;
}

export function claimHolder(view) {
  const c = view.claimed_by;
  return c && typeof c === 'object' && (c.id || c.name) ? c : null;
}

export const isMine = (party) => Boolean(party && state.me && String(party.id) === String(state.me.id));
