// What the console reads from an incident view: when it was pressed, which target runs,
// how urgent it is, who holds it, and its labels in words.

import { serverNow } from '../common/clock.js';
import { formatElapsed, formatPhone } from '../common/format.js';
import { has, t, withColon } from '../common/i18n.js';
import { OUTCOMES, PROGRAMME_OUTCOMES, WELFARE_OUTCOMES, state } from './state.js';

const HOUR = 3_600_000;

/** A call or visit of the welfare programme: its `pressed_at` is when it fell due. */
export const isScheduled = (view) => view.welfare === 'scheduled_call' || view.welfare === 'scheduled_visit';

/** A scheduled task still to do `programme.overdue_after_h` or longer past falling due. */
export function isOverdue(view, now = serverNow()) {
  if (!isScheduled(view) || view.state === 'resolved' || view.state === 'closed') return false;
  return now - Number(view.pressed_at) >= state.targets.programme_overdue_h * HOUR;
}

export function pressMoment(view) {
  const p = Number(view.pressed_at);
  const o = Number(view.opened_at);
  if (Number.isFinite(p) && Number.isFinite(o)) return Math.min(p, o);
  return Number.isFinite(p) ? p : o;
}

export function isUnassigned(view) {
  const offered = Array.isArray(view.offers) && view.offers.length > 0;
  return (!view.responder && !offered) || view.state === 'awaiting_dispatcher';
}

/** A welfare check (a device gone silent, switched off or low on battery): it has a list of
 * its own and never sounds or counts among the emergencies. */
export function isWelfare(view) {
  return view?.kind === 'welfare';
}

export function isEmergency(view) {
  return view.kind === 'sos' || view.kind === 'fall' || view.kind === 'fire' || view.kind === 'intrusion';
}

// Why no responder holds an emergency the ladder has left: offers made and none taken
// (`lapsed`), or none made at all (`none`, with the engine's reason in `no_offer` when the
// view carries it). Null while offers are out, somebody has the job, or for a kind that goes
// to a dispatcher first.
export function whyNobody(view) {
  if (view.responder || (Array.isArray(view.offers) && view.offers.length > 0)) return null;
  if (!isEmergency(view) || !['station_alerted', 'awaiting_dispatcher', 'offered'].includes(view.state)) return null;
  const made = Number(view.ladder?.offers_made) || 0;
  if (made > 0) return { kind: 'lapsed', made, tried: Array.isArray(view.ladder?.tried) ? view.ladder.tried.length : made };
  return { kind: 'none', reason: view.no_offer && typeof view.no_offer === 'object' ? view.no_offer : null };
}

export function isNobodyInRange(view) {
  return whyNobody(view)?.kind === 'none';
}

// The state groups a dispatcher tells apart at a glance, most pressing first.
export const GROUPS = ['needs', 'ladder', 'going', 'on_scene', 'resolved'];

/** Which group a view is in: a person is needed now (a critical alarm, or the engine says a
 * dispatcher is needed), the ladder is still working, somebody is going, somebody is there,
 * or it is resolved and waits to be closed. An urgent or routine alarm (a new emergency not
 * yet seen, a request to cancel) flags the row in its group: `data-alarm`. */
export function groupOf(view) {
  if (view.state === 'resolved') return 'resolved';
  if (alarmLevel(view) === 'critical' || view.dispatcher_needed || view.state === 'awaiting_dispatcher') return 'needs';
  if (view.state === 'offered' || view.state === 'station_alerted') return 'ladder';
  if (view.state === 'accepted' || view.state === 'en_route') return 'going';
  if (view.state === 'on_scene') return 'on_scene';
  return 'needs';
}

export function alarmLevel(view) {
  const level = view.alarm && typeof view.alarm === 'object' ? view.alarm.level : null;
  return level === 'critical' || level === 'urgent' || level === 'routine' ? level : null;
}

/**
 * The rung the incident is on and its own target: `kind` (offer, station, dispatcher,
 * on_scene, there, resolved), the deadline it runs to (ms, or null), how long that target
 * is (for amber), and whether it is missed already whatever the clock says.
 */
export function rungOf(view) {
  const l = view.ladder || {};
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  switch (view.state) {
    case 'offered':
      return {
        kind: 'offer',
        k: Math.max(1, Number(l.offers_made) || 1),
        of: Number(view.offers_planned) || 0,
        deadline: num(l.offer_deadline) ?? num(view.offers?.[0]?.deadline),
        span: state.targets.accept_s * 1000,
      };
    case 'station_alerted':
      return { kind: 'station', deadline: num(l.station_deadline), span: 120000 };
    case 'awaiting_dispatcher': {
      const nobody = view.dispatcher_needed === 'nobody_going' || view.dispatcher_needed === 'on_scene_overdue';
      // Nobody going (or late on scene): that target is missed, whenever the next reminder.
      return { kind: 'dispatcher', deadline: nobody ? null : num(l.remind_at), span: 60000, reminders: Number(l.reminders) || 0, missed: nobody };
    }
    case 'accepted':
    case 'en_route':
      return {
        kind: 'on_scene',
        deadline: num(l.on_scene_by),
        span: state.targets.on_scene_min * 60000,
        missed: view.dispatcher_needed === 'on_scene_overdue',
      };
    case 'on_scene':
      return { kind: 'there', deadline: null, span: 0 };
    case 'resolved':
      return { kind: 'resolved', deadline: null, span: 0 };
    default:
      return { kind: 'none', deadline: null, span: 0 };
  }
}

/** The colour of a rung's clock at `now`: red only when its own target is missed. */
export function rungLevel(rung, now) {
  if (rung.missed) return 'late';
  if (rung.deadline === null) return 'done';
  const left = rung.deadline - now;
  if (left < 0) return 'late';
  if (left <= Math.max(10000, rung.span * 0.25)) return 'warn';
  return 'ok';
}

export function priorityOf(view) {
  return typeof view.priority === 'number' ? view.priority : 99;
}

// Resolved incidents wait below the live work, whatever their kind.
export function compareViews(a, b) {
  const resolved = (v) => (v.state === 'resolved' ? 1 : 0);
  return (
    resolved(a) - resolved(b) ||
    priorityOf(a) - priorityOf(b) ||
    pressMoment(a) - pressMoment(b) ||
    String(a.id).localeCompare(String(b.id), 'en', { numeric: true })
  );
}

export function kindLabel(kind) {
  return has(`kind_${kind}`) ? t(`kind_${kind}`) : String(kind);
}

// A call from a number no device or elder in the ledger has opens an incident on a stand-in
// device, `call:<number>` (or `call:withheld`), whose elder is that same id and names nobody.
const STAND_IN = 'call:';
/** The stand-in of every caller who withheld their number (each call its own incident). */
export const WITHHELD_STAND_IN = 'call:withheld';

/** Whether the incident is a caller's the ledger does not know (no elder, no position). */
export function isStandIn(view) {
  const device = String(view?.device_id ?? '');
  return device.startsWith(STAND_IN) && !view?.elder?.name;
}

/** Who the incident is about, as its title and row name them: the elder's name; for a caller
 * nobody knows, "unknown caller" and the number (or "number withheld"); else the elder's id. */
export function callerName(view) {
  const e = view?.elder || {};
  if (e.name) return e.name;
  if (isStandIn(view)) {
    if (view.device_id === WITHHELD_STAND_IN) return t('withheld_caller');
    return t('unknown_caller', { number: formatPhone(String(view.device_id).slice(STAND_IN.length)) });
  }
  return e.id || '—';
}

/** The calls on an incident, in the order they rang or were dialled (none: an empty list):
 * calls to the hotline, and dispatchers' calls out (`caller` "dispatcher", `from` the staff
 * id, `to` the number). A call in with neither `answered_at` nor `ended_at` rings now; a call
 * out like that is being dialled; one answered and not ended is in progress. */
export const callsOf = (view) => (Array.isArray(view?.calls) ? view.calls.filter((c) => c && typeof c === 'object') : []);

/** Whether a dispatcher placed the call (from the console), rather than somebody calling in. */
export const isOutbound = (call) => call?.caller === 'dispatcher';
/** A call in that rings now: it needs a dispatcher. A call out being dialled does not. */
export const isRinging = (call) => !isOutbound(call) && !call.answered_at && !call.ended_at;
export const isDialling = (call) => isOutbound(call) && !call.answered_at && !call.ended_at;
export const isTalking = (call) => Boolean(call.answered_at) && !call.ended_at;

/** Whether a call of the incident rings now. */
export const rings = (view) => callsOf(view).some(isRinging);

/** A call's number as a dispatcher reads it back and dials it from China ("+86 138-0000-0005"
 * is 138 0000 0005), or "number withheld". Anything else is shown as the network gave it. */
export function callNumber(call) {
  // A call out: the number the dispatcher called.
  const from = String((isOutbound(call) ? call?.to : call?.from) ?? '').trim();
  if (call?.caller === 'withheld' || !from || from.toLowerCase() === 'anonymous') return t('withheld_number');
  const bare = from.replace(/^(sip|tel):/, '').split(/[@;]/)[0].replace(/[\s().-]/g, '');
  const mobile = /^(?:\+86|0086)?(1\d{10})$/.exec(bare);
  return mobile ? formatPhone(mobile[1]) : from;
}

/** How the caller was recognised, in words. */
export function callerMatchLabel(match) {
  return has(`caller_${match}`) ? t(`caller_${match}`) : String(match ?? '');
}

/** How a call ended, in words. */
export function callEndLabel(end) {
  return has(`call_end_${end}`) ? t(`call_end_${end}`) : String(end ?? '');
}

/** Who picked up: a member of staff by name, anybody else by their SIP user. */
export function answeredByName(by) {
  const id = String(by ?? '');
  return state.staff.get(id)?.name || id;
}

/** Talk time, mm:ss, of a call answered and ended; null otherwise. */
export function talkTime(call) {
  const answered = Number(call.answered_at);
  const ended = Number(call.ended_at);
  if (!call.answered_at || !call.ended_at || !Number.isFinite(answered) || !Number.isFinite(ended)) return null;
  return formatElapsed(ended - answered);
}

/** Where the engine placed the incident, in words: the device's fix, the home address, or
 * nowhere known (a caller nobody knows). */
export function locationSourceLabel(source) {
  return has(`loc_${source}`) ? t(`loc_${source}`) : String(source ?? '');
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

/** Why a welfare check opened, in words ("设备离线"). */
export function welfareReasonLabel(reason) {
  return has(`welfare_${reason}`) ? t(`welfare_${reason}`) : String(reason ?? '');
}

// The outcomes the engine writes when it ends a welfare check by itself, by their words.
const ENGINE_OUTCOMES = {
  'the device was heard again': 'outcome_device_heard_again',
  'the device was charged': 'outcome_device_charged',
  'superseded: the device was switched off': 'outcome_device_switched_off',
  'superseded: the device went silent': 'outcome_device_went_silent',
  'the device was retired': 'outcome_device_retired',
  'the elder was active again': 'outcome_elder_active_again',
  'the elder no longer lives alone': 'outcome_elder_not_alone',
  'the elder was retired': 'outcome_elder_retired',
  'the elder left the programme': 'outcome_elder_left_programme',
};

// The notes the engine writes on a check it opens (engine/activity.rs inactivity_note,
// engine/programme.rs), read back into the dispatcher's language; any other note as written.
const INACTIVITY_NOTE =
  /^No activity for (\d+) waking hours\. Waking hours (.+?) \((?:the centre's fixed hours until (\d+) days are watched|the hours with activity on at least (\d+)% of the last (\d+) days)\)\. Last activity (\d\d:\d\d)(?: (yesterday)| (\d+) days ago)?, from device (\S+)\.$/;
const VISIT_NOTE = /^(\d+) scheduled calls went unanswered: a visit instead\.$/;

export function engineNoteText(text) {
  const s = String(text ?? '');
  const v = VISIT_NOTE.exec(s);
  if (v) return t('note_visit_instead', { n: v[1] });
  const m = INACTIVITY_NOTE.exec(s);
  if (!m) return s;
  const [, n, hours, fixedDays, share, learnedDays, time, yesterday, daysAgo, device] = m;
  const how = fixedDays ? t('note_hours_fixed', { days: fixedDays }) : t('note_hours_learned', { share, days: learnedDays });
  const when = yesterday ? t('note_when_yesterday', { time }) : daysAgo ? t('note_when_days', { n: daysAgo, time }) : time;
  return t('note_inactive', { n, hours: hours === 'none' ? t('note_hours_none') : hours, how, when, device });
}

/** An incident's `problem` in words: what a scheduled call or visit found (engine/programme.rs
 * writes "found on a scheduled_call: needs_help: …"), else as sent. */
export function problemText(text) {
  const s = String(text ?? '');
  const m = /^found on a (scheduled_call|scheduled_visit): (.+)$/s.exec(s);
  return m ? t('problem_found_on', { task: welfareReasonLabel(m[1]), outcome: outcomeLabel(m[2]) }) : s;
}

export function outcomeLabel(text) {
  const s = String(text ?? '');
  if (Object.hasOwn(ENGINE_OUTCOMES, s)) return t(ENGINE_OUTCOMES[s]);
  const m = /^([a-z_]+)(?::\s*(.*))?$/s.exec(s);
  if (m && (OUTCOMES.includes(m[1]) || WELFARE_OUTCOMES.includes(m[1]) || PROGRAMME_OUTCOMES.includes(m[1]))) {
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
