// An incident's audit trail in words: who did what, one line per event.

import { h } from '../common/dom.js';
import { formatClock, formatElapsed } from '../common/format.js';
import { formatDistance, has, t } from '../common/i18n.js';
import { knownView } from './detail.js';
import {
  answeredByName,
  callEndLabel,
  callNumber,
  callerMatchLabel,
  engineNoteText,
  kindLabel,
  locationSourceLabel,
  outcomeLabel,
  welfareReasonLabel,
} from './incident.js';
import { CALL_OUTCOMES, state } from './state.js';

export function actorText(actor) {
  if (!actor || typeof actor !== 'object') return '';
  const id = actor.id === undefined || actor.id === null ? '' : String(actor.id);
  switch (actor.type) {
    case 'device':
      // A caller nobody knows acts through their stand-in device, `call:<number>`.
      return id.startsWith('call:') ? t('actor_caller') : t('actor_device', { id });
    case 'engine':
      return t('actor_engine');
    case 'responder':
      return t('actor_responder', { name: state.responders.get(id)?.name || id });
    case 'dispatcher':
    case 'supervisor':
      return t('actor_dispatcher', { name: state.staff.get(id)?.name || id });
    case 'station':
      return t('actor_station', { name: state.stations.get(id)?.name || id });
    case 'family':
      return t('actor_family', { name: contactName(id) });
    default:
      return [actor.type, id].filter(Boolean).join(' ');
  }
}

function staffName(who) {
  if (!who) return null;
  if (typeof who === 'object') return who.name || who.id || null;
  return state.staff.get(String(who))?.name || String(who);
}

/** A contact of the open incident's elder, by contact id (named after the incident ended too:
 * a welfare check closes by itself while its panel is open). */
function contactName(id) {
  const contacts = knownView(state.openId)?.elder?.contacts || [];
  const c = contacts.find((x) => x.id === id);
  return c ? `${c.name}${c.relation ? ` (${c.relation})` : ''}` : String(id ?? '');
}

const responderName = (id) => state.responders.get(String(id))?.name || String(id ?? '');

function callWhoText(who) {
  const s = String(who ?? '');
  const [kind, ...rest] = s.split(':');
  const name = rest.join(':');
  switch (kind) {
    case 'elder':
      return t('call_elder');
    case 'caller':
      return t('call_caller', { number: name });
    case 'contact':
      return t('call_contact', { name });
    case 'responder':
      return t('call_responder', { name: responderName(name) });
    case 'station':
      return t('call_station', { name: state.stations.get(name)?.name || name });
    case 'emergency':
      return t('call_emergency', { number: name });
    default:
      return s;
  }
}

function callOutcomeText(outcome) {
  const s = String(outcome ?? '');
  const m = /^([a-z_]+)(?::\s*(.*))?$/s.exec(s);
  if (m && CALL_OUTCOMES.includes(m[1])) {
    const label = m[1] === 'other' ? t('outcome_other') : t(`call_${m[1]}`);
    return m[2] ? `${label}: ${m[2]}` : label;
  }
  return s;
}

/** A device event's type in words ("smoke", "low_battery"): its own word, else its kind's. */
function eventLabel(type) {
  if (has(`event_${type}`)) return t(`event_${type}`);
  return has(`kind_${type}`) ? kindLabel(type) : String(type);
}

/** What the family was told, in words; device news names why. */
function noticeText(notice) {
  const type = notice?.type;
  if (!type) return '';
  if (type === 'device_news' || type === 'device_back') {
    const key = type === 'device_back' && notice.reason === 'low_battery' ? 'notice_device_charged' : `notice_${type}`;
    return t(key, { reason: welfareReasonLabel(notice.reason) });
  }
  return has(`notice_${type}`) ? t(`notice_${type}`) : type;
}

/** One audit event in words; unknown kinds of change are shown with their fields. */
function changeText(change) {
  const c = change && typeof change === 'object' ? change : { type: String(change) };
  const d = (m) => formatDistance(Number(m));
  switch (c.type) {
    case 'opened': {
      if (c.welfare) return t('ev_opened_welfare', { reason: welfareReasonLabel(c.welfare) });
      const src = c.location?.source ? locationSourceLabel(c.location.source) : '';
      return src ? t('ev_opened', { kind: kindLabel(c.kind), source: src }) : t('ev_opened_plain', { kind: kindLabel(c.kind) });
    }
    case 'press_joined':
      return t('ev_press_joined', { n: c.press_count, event: c.event && c.event !== 'sos' ? `(${eventLabel(c.event)})` : '' });
    case 'kind_changed':
      return t('ev_kind_changed', { from: kindLabel(c.from), to: kindLabel(c.to) });
    case 'offered':
      return t('ev_offered', { name: responderName(c.responder_id), d: d(c.distance_m), time: formatClock(c.deadline) });
    case 'offer_declined':
      return t('ev_offer_declined', { name: responderName(c.responder_id) });
    case 'offer_timed_out':
      return t('ev_offer_timed_out', { name: responderName(c.responder_id) });
    case 'offer_withdrawn':
      return t('ev_offer_withdrawn', { name: responderName(c.responder_id) });
    case 'asked_across':
      return t('ev_asked_across', { name: responderName(c.responder_id), zone: c.zone, d: d(c.distance_m), time: formatClock(c.deadline) });
    case 'held_across':
      return t('ev_held_across', { name: responderName(c.responder_id), zone: c.zone, d: d(c.distance_m), time: formatClock(c.deadline) });
    case 'refused_across':
      return t('ev_refused_across', { name: responderName(c.responder_id), zone: c.zone });
    case 'station_alerted':
      return t('ev_station_alerted', { name: state.stations.get(String(c.station_id))?.name || c.station_id });
    case 'nobody_going':
      return t('ev_nobody_going', { number: c.emergency_number ? t('ev_nobody_going_number', { number: c.emergency_number }) : '' });
    case 'reminder':
      return t('ev_reminder', { n: c.count });
    case 'accepted':
      return t('ev_accepted', { name: responderName(c.responder_id) });
    case 'en_route':
      return t('ev_en_route');
    case 'on_scene':
      return t('ev_on_scene');
    case 'on_scene_overdue':
      return t('ev_on_scene_overdue', { name: responderName(c.responder_id) });
    case 'assigned':
      return t('ev_assigned', { name: responderName(c.responder_id) });
    case 'taken_off_ladder':
      return t('ev_taken_off_ladder');
    case 'acknowledged':
      return t('ev_acknowledged');
    case 'resolved':
      return t('ev_resolved', { outcome: outcomeLabel(c.outcome) });
    case 'closed':
      return t('ev_closed', { outcome: outcomeLabel(c.outcome) });
    case 'cancelled':
      return t('ev_cancelled', { reason: c.reason });
    case 'false_alarm':
      return t('ev_false_alarm', { reason: c.reason });
    case 'nobody_in_range':
      return t('ev_nobody_in_range', { d: d(c.max_distance_m) });
    case 'nobody_qualified':
      return t('ev_nobody_qualified', c);
    case 'for_carer':
      return t('ev_for_carer', { responder: responderName(c.carer_id) });
    case 'nearest_station':
      return t('ev_nearest_station', { name: state.stations.get(String(c.station_id))?.name || c.station_id, d: d(c.distance_m) });
    case 'cancel_requested':
      return t('ev_cancel_requested');
    case 'nobody_free_at_station':
      return t('ev_nobody_free_at_station', { name: state.stations.get(String(c.station_id))?.name || c.station_id || '—' });
    case 'claimed':
    case 'claim': {
      const name = staffName(c.by || c.dispatcher || c.user);
      const from = staffName(c.from);
      const text = name ? t('ev_claimed_by', { name }) : t('ev_claimed');
      return from ? `${text}${t('ev_taken_over_from', { name: from })}` : text;
    }
    case 'released':
    case 'release':
    case 'unclaimed':
      return t('ev_released');
    case 'note':
    case 'noted':
    case 'note_added':
      return t('ev_note', { text: engineNoteText(c.text) });
    case 'call':
    case 'called':
    case 'call_logged':
    case 'call_made':
      return t('ev_call', { who: callWhoText(c.who), number: c.number ? ` ${c.number}` : '', outcome: callOutcomeText(c.outcome) });
    case 'family_told':
      return t('ev_family_told', {
        name: contactName(c.contact_id),
        channel: t(`family_channel_${c.channel || 'sms'}`),
        notice: noticeText(c.notice),
      });
    case 'family_answered':
      return t('ev_family_answered', {
        name: contactName(c.contact_id),
        answer: c.answer?.type === 'going' ? t('family_answer_going', { eta: c.answer.eta_min }) : t(`family_answer_${c.answer?.type}`),
      });
    case 'family_delivery':
      return t('ev_family_delivery', { name: contactName(c.contact_id), delivery: t(`family_delivery_${c.delivery}`) });
    case 'family_exhausted':
      return t('ev_family_exhausted');
    case 'call_rang':
      return t('ev_call_rang', { number: callNumber(c), caller: callerMatchLabel(c.caller) });
    case 'call_transferred':
      return t('ev_call_transferred', { number: callNumber({ caller: 'dispatcher', to: c.to }) });
    case 'call_dialled':
      return t('ev_call_dialled', { number: callNumber({ caller: 'dispatcher', to: c.to }) });
    case 'call_answered':
      // A call out is answered by whoever was called: it connected.
      return callsOut.has(c.call_id) ? t('ev_call_connected') : t('ev_call_answered', { name: answeredByName(c.by) });
    case 'call_ended':
      return t('ev_call_ended', {
        reason: callEndLabel(c.reason),
        talk: typeof c.talk_s === 'number' ? t('ev_call_ended_talk', { t: formatElapsed(c.talk_s * 1000) }) : '',
      });
    case 'escalate':
    case 'escalated':
    case 'emergency_called':
      return t('ev_escalated', { number: c.number ?? '', reference: c.reference ? t('ev_escalated_ref', { reference: c.reference }) : '' });
    default: {
      const fields = Object.entries(c)
        .filter(([k]) => k !== 'type')
        .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
        .join(', ');
      return `${t('ev_unknown', { type: c.type ?? '?' })}${fields ? ` (${fields})` : ''}`;
    }
  }
}

/** The incident's calls out (their call ids), while its timeline is drawn. */
let callsOut = new Set();

export function renderTimeline() {
  const list = document.getElementById('timeline');
  if (!list) return;
  const tl = state.timeline;
  if (tl.error && !tl.events) {
    list.replaceChildren(h('li', { class: 'muted' }, t('timeline_failed', { error: tl.error })));
    return;
  }
  if (!tl.events) {
    list.replaceChildren(h('li', { class: 'muted' }, t('timeline_loading')));
    return;
  }
  if (tl.events.length === 0) {
    list.replaceChildren(h('li', { class: 'muted' }, t('timeline_empty')));
    return;
  }
  list.dataset.count = String(tl.events.length);
  callsOut = new Set(tl.events.filter((ev) => ev.change?.type === 'call_dialled').map((ev) => ev.change.call_id));
  list.replaceChildren(
    ...tl.events.map((ev) =>
      h(
        'li',
        { class: `tl tl-${ev.change?.type ?? 'unknown'}`, 'data-seq': ev.seq, 'data-change': ev.change?.type ?? '' },
        h('time', { class: 'tl-time' }, formatClock(ev.at)),
        // A call rings as the caller's: their device's, or the stand-in of a number nobody
        // knows; neither says who rang as well as "the caller" does.
        h('span', { class: 'tl-actor' }, ev.change?.type === 'call_rang' ? t('actor_caller') : actorText(ev.actor)),
        h('span', { class: 'tl-text' }, changeText(ev.change)),
      ),
    ),
  );
}
