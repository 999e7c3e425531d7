// The detail panel of one incident: the elder, contacts, location, the job and the press,
// its claim and its action buttons, and its timeline (fetched as it changes).

import { h } from '../common/dom.js';
import { formatClock, pad2, readableId } from '../common/format.js';
import { formatDistance, formatList, has, t } from '../common/i18n.js';
import { acknowledge, claim, command, openForm, renderForm } from './actions.js';
import { request } from './feed.js';
import { isOnline } from './header.js';
import {
  answeredByName,
  callEndLabel,
  callNumber,
  callerMatchLabel,
  callerName,
  callsOf,
  claimHolder,
  isDialling,
  isMine,
  isOutbound,
  isOverdue,
  isScheduled,
  isRinging,
  isStandIn,
  isTalking,
  isWelfare,
  kindLabel,
  locationSourceLabel,
  outcomeLabel,
  pressMoment,
  problemText,
  stateLabel,
  talkTime,
  WITHHELD_STAND_IN,
  welfareReasonLabel,
  whyNobody,
} from './incident.js';
import { map } from './map-card.js';
import { familySection } from './family.js';
import { callBadge, kv, phoneWithCopy, ringIcon } from './parts.js';
import { markDirty, nobodyText, rowOf } from './queue.js';
import { dom, state } from './state.js';
import { actorText, renderTimeline } from './timeline.js';

// What the panel knows of incidents no longer in the live set: the last view shown of each
// (it closed while open, say), and the summaries a `history` answer gave, with their elder.
const lastViews = new Map();
const summaries = new Map();
const KEEP_VIEWS = 200;

function remember(view) {
  const id = String(view.id);
  lastViews.delete(id);
  lastViews.set(id, view);
  if (lastViews.size > KEEP_VIEWS) lastViews.delete(lastViews.keys().next().value);
}

const knownEnded = (id) => lastViews.has(id) || summaries.has(id);

/** The live view of an incident, or the last one the panel showed once it has ended. */
export const knownView = (id) => state.incidents.get(String(id)) ?? lastViews.get(String(id)) ?? null;

export function openIncident(id) {
  const key = String(id);
  if (!state.incidents.has(key) && state.openId !== key && !knownEnded(key)) return;
  const previous = state.openId;
  state.openId = key;
  state.selectedId = key;
  if (previous !== key) {
    state.form = null;
    state.timeline = { id: key, seq: null, events: null, error: null, loading: false };
    state.suggestions = { id: null, list: null, error: null, loading: false };
    // Each incident opened asks for its elder's history afresh: it may have grown.
    history = { elderId: null, list: null, error: null, loading: false, elder: null };
    if (previous) markDirty(previous);
  }
  markDirty(key);
  dom.detail.hidden = false;
  dom.layout.classList.add('with-detail');
  dom.mapCard.hidden = true;
  if (map) {
    map.select('incident', key);
    map.reveal('incident', key);
  }
  state.panelDirty = true;
  renderPanel();
  renderForm();
  rowOf(key)?.scrollIntoView({ block: 'nearest' });
}

// The panel covers the map: close it and centre the incident there at street level.
function showOnMap(id) {
  const key = String(id);
  closePanel();
  state.selectedId = key;
  markDirty(key);
  if (map) {
    map.select('incident', key);
    map.focus('incident', key);
  }
}

export function closePanel() {
  const id = state.openId;
  state.openId = null;
  state.form = null;
  dom.detail.hidden = true;
  dom.layout.classList.remove('with-detail');
  if (map) map.select(null, null);
  if (id) markDirty(id);
  renderForm();
}

// One timeline query at a time; a newer seq seen meanwhile is fetched when it answers.
function requestTimeline(id, seq) {
  const tl = state.timeline;
  if (tl.loading) {
    tl.wantSeq = seq;
    return;
  }
  tl.loading = true;
  tl.pendingSeq = seq;
  tl.wantSeq = undefined;
  request({ type: 'timeline', incident_id: Number(id) }).then((result) => {
    if (state.timeline !== tl) return;
    tl.loading = false;
    tl.seq = tl.pendingSeq;
    tl.pendingSeq = undefined;
    if (result.ok && Array.isArray(result.events)) {
      tl.events = result.events;
      tl.error = null;
    } else {
      tl.error = result.error || '?';
    }
    if (tl.wantSeq !== undefined && tl.wantSeq !== tl.seq) requestTimeline(id, tl.wantSeq);
    // An ended incident's panel is read off its timeline: how it ended, and by whom.
    if (state.openId === String(id) && !state.incidents.has(String(id))) renderPanel();
    else renderTimeline();
  });
}

export function renderPanel() {
  if (!state.openId) return;
  const id = state.openId;
  const view = state.incidents.get(id);
  const panel = dom.detail;
  panel.dataset.incidentId = id;
  if (!view) {
    renderEnded(id);
    return;
  }
  remember(view);
  dom.detailActions.hidden = false;
  panel.dataset.state = view.state;
  panel.dataset.seq = view.seq;
  dom.detailTitle.replaceChildren(
    h('span', { class: `kind kind-${view.kind}` }, kindLabel(view.kind)),
    ' ',
    h('span', { 'data-field': 'detail-elder' }, callerName(view)),
  );
  const badge = callBadge(view);
  dom.detailSub.replaceChildren(
    ...[
      t('detail_incident', { id: readableId(id) }),
      ' · ',
      // A welfare check waiting for a dispatcher is not the red "nobody is going".
      h('span', { class: `state state-${isWelfare(view) ? 'welfare' : view.state}`, 'data-field': 'detail-state' }, stateLabel(view.state)),
      isWelfare(view) ? ' · ' : null,
      isWelfare(view) ? h('span', { class: `reason-chip reason-${view.welfare || 'unknown'}`, 'data-field': 'detail-reason' }, welfareReasonLabel(view.welfare)) : null,
      view.cancel_requested ? h('span', { class: 'warn-line inline', 'data-field': 'detail-cancel' }, ` · ${t('cancel_requested')}`) : null,
      badge ? ' · ' : null,
      badge,
    ].filter(Boolean),
  );
  renderClaim(view);
  renderActions(view);
  renderBody(view);
  requestHistory(view.elder);
  renderHistory();
  if (state.timeline.id !== id) state.timeline = { id, seq: null, events: null, error: null, loading: false };
  const tl = state.timeline;
  if (tl.seq !== view.seq && tl.pendingSeq !== view.seq) requestTimeline(id, view.seq);
}

function renderClaim(view) {
  const c = claimHolder(view);
  const supervisor = state.me && state.me.role === 'supervisor';
  let text;
  let buttons = [];
  if (!c) {
    text = h('span', { class: 'claim-none', 'data-field': 'claim-status' }, t('not_claimed'));
    buttons = [h('button', { class: 'btn btn-primary', type: 'button', 'data-action': 'claim', onclick: () => claim(view.id) }, `${t('claim')} (c)`)];
  } else if (isMine(c)) {
    text = h('span', { class: 'claim-mine', 'data-field': 'claim-status' }, t('claimed_by_me'));
    buttons = [h('button', { class: 'btn', type: 'button', 'data-action': 'release', onclick: () => command(view.id, 'release', {}, t('ev_released')) }, t('release'))];
  } else {
    text = h('span', { class: 'claim-other', 'data-field': 'claim-status' }, t('claimed_by_other', { name: c.name || c.id }));
    // The claimant has no console connected (the engine frees the claim after a while).
    if (isOnline(c.id) === false) text = h('span', null, text, ' ', h('span', { class: 'claimant-offline', 'data-field': 'claimant-offline' }, t('claimant_offline')));
    if (supervisor) {
      buttons = [h('button', { class: 'btn', type: 'button', 'data-action': 'claim', onclick: () => claim(view.id) }, t('claim_take_over'))];
    }
  }
  dom.detailClaim.dataset.claimed = c ? (isMine(c) ? 'me' : 'other') : 'none';
  dom.detailClaim.replaceChildren(text, ...buttons);
}

function renderActions(view) {
  const id = view.id;
  const resolved = view.state === 'resolved';
  const button = (action, label, onclick, extra = '') =>
    h('button', { class: `btn ${extra}`, type: 'button', 'data-action': action, onclick }, label);
  if (isWelfare(view)) {
    // A welfare check is a phone call: nobody is sent, nothing to acknowledge (claiming it is
    // seeing it) and nothing to cancel; it is closed in one step with what the call found.
    dom.detailActions.replaceChildren(
      button('call', t('act_call'), () => openForm('call'), 'btn-primary'),
      button('note', t('act_note'), () => openForm('note')),
      button('escalate', t('act_escalate'), () => openForm('escalate')),
      // A call about the elder (the programme's calls and visits, a long quiet) may find a
      // home-care need: the order form, its source this call. A device's check is about the
      // device.
      view.elder?.id && ['scheduled_call', 'scheduled_visit', 'inactive'].includes(view.welfare)
        ? button('service_order', t('act_service_order'), () => window.open(serviceOrderUrl(view, 'welfare'), '_blank', 'noopener'))
        : null,
      button('close', t('act_close'), () => openForm('close'), 'btn-good'),
    );
    return;
  }
  const list = [
    state.alarms.has(String(id)) ? button('acknowledge', t('act_acknowledge'), () => acknowledge(id), 'btn-alarm') : button('acknowledge', t('act_acknowledge'), () => acknowledge(id)),
    resolved ? null : button('assign', t('act_assign'), () => openForm('assign')),
    button('note', t('act_note'), () => openForm('note')),
    button('call', t('act_call'), () => openForm('call')),
    button('escalate', t('act_escalate'), () => openForm('escalate')),
    ['offered', 'station_alerted'].includes(view.state) && !(view.ladder && view.ladder.off_ladder)
      ? button('take_off_ladder', t('act_off_ladder'), () => command(id, 'take_off_ladder', {}, t('ev_taken_off_ladder')))
      : null,
    resolved ? null : button('resolve', t('act_resolve'), () => openForm('resolve'), 'btn-good'),
    button('close', t('act_close'), () => openForm('close'), resolved ? 'btn-good' : ''),
    button('cancel', t('act_cancel'), () => openForm('cancel'), 'btn-warn'),
    button('false_alarm', t('act_false_alarm'), () => openForm('false_alarm'), 'btn-warn'),
    // A green-key press asks for a home-care service: the order form, with the elder filled in.
    view.kind === 'service' && view.elder?.id
      ? button('service_order', t('act_service_order'), () => window.open(serviceOrderUrl(view, 'incident'), '_blank', 'noopener'), 'btn-good')
      : null,
  ];
  dom.detailActions.replaceChildren(...list.filter(Boolean));
}

/**
 * The services board's new-order form for this elder, from this incident: `incident` for a
 * service press, `welfare` for a welfare call (the order's source says which).
 */
function serviceOrderUrl(view, from) {
  return `/console/services?${new URLSearchParams({ elder: view.elder.id, [from]: String(view.id) })}`;
}

function section(title, ...content) {
  return h('section', { class: 'dsec' }, h('h3', null, title), ...content);
}

function renderBody(view) {
  const e = view.elder || {};
  const loc = view.location || {};
  const at = loc.at || {};
  const livesAlone = e.lives_alone === true ? t('yes') : e.lives_alone === false ? t('no') : t('unknown');
  const elder = section(
    t('sec_elder'),
    h(
      'dl',
      { class: 'kv', 'data-section': 'elder' },
      kv(t('f_name'), e.name || e.id, { 'data-field': 'elder-name' }),
      kv(t('f_age'), typeof e.age === 'number' ? t('f_age_value', { n: e.age }) : t('unknown'), { 'data-field': 'age' }),
      kv(t('f_lives_alone'), livesAlone, { 'data-field': 'lives-alone', class: e.lives_alone ? 'kv-row kv-flag' : 'kv-row' }),
      kv(t('f_address'), e.address, { 'data-field': 'address' }),
      kv(t('f_phone'), e.phone ? phoneWithCopy(e.phone) : null, { 'data-field': 'elder-phone' }),
      kv(t('f_conditions'), formatList(e.conditions) || t('none'), { 'data-field': 'conditions' }),
      kv(t('f_medications'), formatList(e.medications) || t('none'), { 'data-field': 'medications' }),
      kv(t('f_mobility'), e.mobility || t('unknown'), { 'data-field': 'mobility' }),
      kv(t('f_language'), e.language || t('unknown'), { 'data-field': 'language' }),
      kv(t('f_door_notes'), e.door_notes || t('none'), { 'data-field': 'door-notes' }),
      kv(t('f_notes'), e.notes, { 'data-field': 'notes' }),
    ),
  );
  const contacts = Array.isArray(e.contacts) ? e.contacts : [];
  const contactList = section(
    t('sec_contacts'),
    contacts.length
      ? h(
          'ul',
          { class: 'contacts', 'data-section': 'contacts' },
          contacts.map((c) =>
            h(
              'li',
              { class: 'contact', 'data-field': 'contact' },
              h('span', { class: 'contact-name' }, c.name || '—'),
              c.relation ? h('span', { class: 'contact-rel' }, ` (${c.relation})`) : null,
              c.phone ? h('span', { class: 'contact-phone' }, ' ', phoneWithCopy(c.phone)) : null,
            ),
          ),
        )
      : h('p', { class: 'muted', 'data-section': 'contacts' }, t('none')),
  );
  const source = locationSourceLabel(loc.source);
  // Nowhere known (a caller nobody knows): its (0, 0) means nothing and is not shown.
  const nowhere = loc.source === 'unknown';
  const fixKey = loc.fix_rejected ? `fix_${loc.fix_rejected}` : null;
  const welfare = isWelfare(view);
  const location = section(
    t('sec_location'),
    h(
      'dl',
      { class: 'kv', 'data-section': 'location' },
      kv(t('f_source'), source, { 'data-field': 'location-source', class: nowhere ? 'kv-row kv-flag' : 'kv-row' }),
      nowhere ? kv('⚠', t('loc_unknown_hint'), { 'data-field': 'location-hint', class: 'kv-row kv-flag' }) : null,
      nowhere ? null : kv(t('f_accuracy'), typeof loc.accuracy_m === 'number' ? `±${formatDistance(loc.accuracy_m)}` : '—', { 'data-field': 'accuracy' }),
      kv(
        t('f_coords'),
        !nowhere && Number.isFinite(at.lat) && Number.isFinite(at.lon)
          ? h(
              'span',
              null,
              `${at.lat.toFixed(5)}, ${at.lon.toFixed(5)} `,
              // A welfare check has no marker on the map.
              welfare ? null : h('button', { class: 'btn btn-small', type: 'button', 'data-action': 'show-on-map', onclick: () => showOnMap(view.id) }, t('show_on_map')),
            )
          : null,
      ),
      fixKey ? kv('⚠', has(fixKey) ? t(fixKey) : t('fix_other', { reason: loc.fix_rejected }), { class: 'kv-row kv-flag' }) : null,
      view.problem ? kv('⚠', problemText(view.problem), { class: 'kv-row kv-flag' }) : null,
    ),
  );
  const offers = Array.isArray(view.offers) ? view.offers : [];
  const ladder = view.ladder || {};
  const job = section(
    t('sec_job'),
    h(
      'dl',
      { class: 'kv', 'data-section': 'job' },
      kv(
        t('f_responder'),
        view.responder
          ? h('span', null, `${view.responder.name || view.responder.id} ${formatDistance(view.responder.distance_m)} `, view.responder.phone ? phoneWithCopy(view.responder.phone) : null)
          : t('none'),
        { 'data-field': 'job-responder' },
      ),
      offers.length
        ? kv(
            t('f_offers'),
            h(
              'ul',
              { class: 'offers' },
              offers.map((o) =>
                h(
                  'li',
                  { 'data-field': 'offer', 'data-asking': o.asking == null ? null : String(o.asking) },
                  `${o.responder?.name || o.responder?.id} ${formatDistance(o.responder?.distance_m)} · ${
                    o.asking == null ? t('offer_deadline', { time: formatClock(o.deadline) }) : t('offer_asking', { zone: o.asking, time: formatClock(o.deadline) })
                  }`,
                ),
              ),
            ),
          )
        : null,
      view.station
        ? kv(t('f_station'), h('span', null, `${view.station.name || view.station.id} ${formatDistance(view.station.distance_m)} `, view.station.phone ? phoneWithCopy(view.station.phone) : null))
        : null,
      whyNobody(view) ? kv(t('f_why_nobody'), nobodyText(whyNobody(view)), { 'data-field': 'why-nobody', class: 'kv-row kv-flag' }) : null,
      view.emergency_call ? kv(t('f_emergency_called'), emergencyCallText(view.emergency_call), { 'data-field': 'emergency-called' }) : null,
      ladder.emergency_number && !view.emergency_call ? kv(t('f_emergency_number'), h('strong', { class: 'emergency-number', 'data-field': 'emergency-number' }, ladder.emergency_number), { class: 'kv-row kv-flag' }) : null,
      ladder.on_scene_by ? kv(t('f_on_scene_by'), formatClock(ladder.on_scene_by)) : null,
      ladder.reminders ? kv(t('f_reminders'), String(ladder.reminders)) : null,
      view.outcome ? kv(t('f_outcome'), outcomeLabel(view.outcome)) : null,
    ),
  );
  const press = section(
    t('sec_press'),
    h(
      'dl',
      { class: 'kv', 'data-section': 'press' },
      // A call opened it: the count of presses means something only once the device pressed.
      view.kind === 'call' && Number(view.press_count ?? 1) <= 1
        ? null
        : kv(t('f_press_count'), String(view.press_count ?? 1), { 'data-field': 'press-count', class: Number(view.press_count) > 1 ? 'kv-row kv-flag' : 'kv-row' }),
      kv(t(view.kind === 'call' ? 'f_called_at' : 'f_pressed_at'), formatClock(pressMoment(view))),
      kv(t('f_opened_at'), formatClock(view.opened_at)),
      // A caller nobody knows rang from no device: their stand-in id is nobody's business.
      kv(t('f_device'), isStandIn(view) ? t('no_device') : deviceWithSim(view), { 'data-field': 'device' }),
    ),
  );
  const timeline = section(t('sec_timeline'), h('ol', { class: 'timeline', id: 'timeline', 'data-section': 'timeline' }));
  const calls = callsSection(view);
  if (welfare) {
    // What the call is about comes first; a welfare check has no responder and no press.
    dom.detailBody.replaceChildren(welfareSection(view), elder, contactList, familySection(view, () => renderPanel()), historySection(), location, timeline);
  } else if (isStandIn(view)) {
    // A caller the ledger does not know: no profile, contacts or family to show; the number
    // to call back instead, and the calls. A number's earlier calls are its history.
    const withheld = view.device_id === WITHHELD_STAND_IN;
    dom.detailBody.replaceChildren(...[callerSection(view), calls, withheld ? null : historySection(), location, job, press, timeline].filter(Boolean));
  } else {
    dom.detailBody.replaceChildren(...[elder, calls, historySection(), contactList, familySection(view, () => renderPanel()), location, job, press, timeline].filter(Boolean));
  }
  renderTimeline();
}

// Why the welfare check opened and what to do, with the station to ask and the device.
function welfareSection(view) {
  const reason = view.welfare || 'unknown';
  const station = view.station;
  return section(
    t('sec_welfare'),
    h(
      'dl',
      { class: 'kv', 'data-section': 'welfare' },
      kv(t('f_welfare_reason'), h('span', { class: `reason-chip reason-${reason}`, 'data-field': 'welfare-reason' }, welfareReasonLabel(view.welfare)), { class: 'kv-row kv-flag' }),
      kv(t('f_welfare_what'), has(`welfare_explain_${reason}`) ? t(`welfare_explain_${reason}`) : null, { 'data-field': 'welfare-explain' }),
      kv(t('f_welfare_opened'), formatClock(view.opened_at)),
      // A scheduled task: when it fell due, and whether it is overdue now.
      isScheduled(view)
        ? kv(
            t('f_welfare_due'),
            h(
              'span',
              null,
              dayAndTime(view.pressed_at),
              isOverdue(view) ? ' ' : null,
              isOverdue(view) ? h('span', { class: 'overdue-chip', 'data-field': 'detail-overdue' }, t('welfare_overdue')) : null,
            ),
            { 'data-field': 'welfare-due' },
          )
        : null,
      kv(t('f_welfare_todo'), view.state === 'resolved' ? null : t(has(`welfare_todo_${reason}`) ? `welfare_todo_${reason}` : 'welfare_todo'), { 'data-field': 'welfare-todo' }),
      station
        ? kv(t('f_station'), h('span', null, `${station.name || station.id} ${formatDistance(station.distance_m)} `, station.phone ? phoneWithCopy(station.phone) : null))
        : null,
      kv(t('f_device'), deviceWithSim(view), { 'data-field': 'device' }),
      view.outcome ? kv(t('f_outcome'), outcomeLabel(view.outcome)) : null,
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Calls to the hotline (issue 22): each call on the incident, and a caller nobody knows.
// ---------------------------------------------------------------------------------------

/** What became of a call, in words: ringing, in progress, who answered and the talk time, or
 * how it ended unanswered. */
function callStatus(call) {
  if (isOutbound(call)) return callOutStatus(call);
  if (isRinging(call)) {
    return [h('span', { class: 'call-badge ringing', 'data-field': 'call-state', 'data-state': 'ringing' }, ringIcon(), ' ', t('call_state_ringing'))];
  }
  const parts = [];
  if (call.answered_at) {
    parts.push(h('span', { class: 'call-answered', 'data-field': 'call-answered-by' }, t('call_answered_by', { name: answeredByName(call.answered_by) })));
  }
  if (isTalking(call)) {
    parts.push(h('span', { class: 'call-badge talking', 'data-field': 'call-state', 'data-state': 'talking' }, t('call_state_talking')));
  } else if (call.answered_at) {
    const talk = talkTime(call);
    if (talk) parts.push(h('span', { class: 'call-talk', 'data-field': 'call-talk' }, t('call_talk', { t: talk })));
    // Hung up after talking is the ordinary end; any other is said.
    if (call.end && call.end !== 'bye') parts.push(h('span', { class: 'call-end', 'data-field': 'call-end', 'data-end': call.end }, callEndLabel(call.end)));
  } else {
    parts.push(h('span', { class: 'call-end missed', 'data-field': 'call-end', 'data-end': call.end ?? '' }, callEndLabel(call.end)));
  }
  return parts.flatMap((p, i) => (i ? [' · ', p] : [p]));
}

/** The device, and its SIM number to call it on (talk-back: many devices answer on their
 * speaker), with the Call button where the console has a softphone. */
function deviceWithSim(view) {
  if (!view.device_sim) return view.device_id;
  return h('span', null, `${view.device_id} · ${t('f_device_sim')} `, h('span', { 'data-field': 'device-sim' }, phoneWithCopy(view.device_sim)));
}

/** What became of a dispatcher's call out: being dialled, in progress, the talk time, or how
 * it ended unanswered. */
function callOutStatus(call) {
  if (isDialling(call)) {
    return [h('span', { class: 'call-badge talking', 'data-field': 'call-state', 'data-state': 'dialling' }, t('call_state_dialling'))];
  }
  if (isTalking(call)) {
    return [h('span', { class: 'call-badge talking', 'data-field': 'call-state', 'data-state': 'talking' }, t('call_state_talking'))];
  }
  if (call.answered_at) {
    const talk = talkTime(call);
    return [h('span', { class: 'call-talk', 'data-field': 'call-talk' }, talk ? t('call_out_talk', { t: talk }) : t('call_out_connected'))];
  }
  const end = call.end ?? '';
  const label = has(`call_out_end_${end}`) ? t(`call_out_end_${end}`) : callEndLabel(end);
  return [h('span', { class: 'call-end', 'data-field': 'call-end', 'data-end': end }, label)];
}

/** The Calls section: each call with when it rang, the number, how the caller was
 * recognised, who answered and the talk time or how it ended. Null when there are none. */
function callsSection(view) {
  const calls = callsOf(view);
  if (!calls.length) return null;
  const items = calls.map((call) => {
    const number = callNumber(call);
    const from = String(call.from ?? '').trim();
    const out = isOutbound(call);
    const callState = isRinging(call) ? 'ringing' : isDialling(call) ? 'dialling' : isTalking(call) ? 'talking' : call.answered_at ? 'ended' : out ? 'unanswered' : 'missed';
    return h(
      'li',
      { class: `call call-${callState}${out ? ' call-out' : ''}`, 'data-call-id': call.call_id, 'data-call-state': callState, 'data-direction': out ? 'out' : 'in' },
      h('time', { class: 'tl-time', 'data-field': 'call-rang' }, formatClock(call.rang_at)),
      h(
        'span',
        { class: 'call-from', 'data-field': 'call-from' },
        call.caller === 'withheld' || !from ? h('span', { class: 'call-number' }, number) : phoneWithCopy(number.replace(/\s/g, ''), number),
      ),
      h(
        'span',
        { class: `call-caller caller-${call.caller}`, 'data-field': 'call-caller' },
        out ? t('call_out_by', { name: answeredByName(call.from) }) : callerMatchLabel(call.caller),
      ),
      h(
        'span',
        { class: 'call-status' },
        ...callStatus(call),
        call.transferred_to
          ? [' · ', h('span', { class: 'call-transferred', 'data-field': 'call-transferred' }, t('call_transferred_to', { number: callNumber({ caller: 'dispatcher', to: call.transferred_to }) }))]
          : null,
      ),
    );
  });
  return h('section', { class: 'dsec', 'data-section': 'calls' }, h('h3', null, t('sec_calls')), h('ol', { class: 'calls' }, ...items));
}

/** For a caller the ledger does not know: the number to call back, and what to ask. */
function callerSection(view) {
  const call = callsOf(view)[0];
  const withheld = view.device_id === WITHHELD_STAND_IN || call?.caller === 'withheld';
  const from = call ? String(call.from ?? '').trim() : '';
  return section(
    t('sec_caller'),
    h(
      'dl',
      { class: 'kv', 'data-section': 'caller' },
      kv(t('f_caller_number'), withheld || !from ? t('withheld_number') : phoneWithCopy(callNumber(call).replace(/\s/g, ''), callNumber(call)), { 'data-field': 'caller-number' }),
      kv(t('f_caller_match'), callerMatchLabel(withheld ? 'withheld' : 'unknown'), { 'data-field': 'caller-match', class: 'kv-row kv-flag' }),
    ),
    h('p', { class: 'caller-hint', 'data-field': 'caller-hint' }, t(withheld ? 'caller_withheld_hint' : 'caller_unknown_hint')),
  );
}

function emergencyCallText(call) {
  const text = call.reference
    ? t('called_ref', { number: call.number, reference: call.reference })
    : t('called', { number: call.number });
  return `${text} · ${formatClock(call.at)}`;
}

// ---------------------------------------------------------------------------------------
// An elder's history: their incidents of the last 30 days, from the store.
// ---------------------------------------------------------------------------------------

const DAY_MS = 24 * 3600 * 1000;
let history = { elderId: null, list: null, error: null, loading: false, elder: null };

function requestHistory(elder) {
  const elderId = elder && elder.id ? String(elder.id) : null;
  // Every withheld number shares one stand-in id: its history would be strangers'.
  if (!elderId || elderId === WITHHELD_STAND_IN) return;
  if (history.elderId === elderId && (history.loading || history.list)) return;
  const h0 = { elderId, list: null, error: null, loading: true, elder };
  history = h0;
  request({ type: 'history', elder_id: elderId }).then((result) => {
    if (history !== h0) return;
    h0.loading = false;
    if (result.ok && Array.isArray(result.incidents)) {
      h0.list = result.incidents;
      for (const s of result.incidents) summaries.set(String(s.id), { summary: s, elder });
    } else {
      h0.error = result.error || '?';
    }
    renderHistory();
  });
}

function historySection() {
  return section(t('sec_history'), h('div', { id: 'elder-history', 'data-section': 'history' }));
}

function dayAndTime(ms) {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return '—';
  return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

// The store's answer may be older than the live view of an incident still open.
const liveState = (i) => state.incidents.get(String(i.id))?.state ?? i.state;

function renderHistory() {
  const box = document.getElementById('elder-history');
  if (!box) return;
  if (history.error && !history.list) {
    box.replaceChildren(h('p', { class: 'muted' }, t('history_failed', { error: history.error })));
    return;
  }
  if (!history.list) {
    box.replaceChildren(h('p', { class: 'muted' }, t('history_loading')));
    return;
  }
  const list = history.list;
  const now = Date.now();
  const week = list.filter((i) => Number(i.pressed_at) >= now - 7 * DAY_MS).length;
  const summary = h(
    'p',
    { class: `history-summary${week >= 3 ? ' history-many' : ''}`, 'data-field': 'history-summary', 'data-week': week, 'data-month': list.length },
    t('history_summary', { n: list.length, w: week }),
  );
  const items = list.map((i) => {
    const id = String(i.id);
    const who = i.responder_id ? state.responders.get(String(i.responder_id))?.name || i.responder_id : null;
    const current = id === state.openId;
    return h(
      'li',
      {
        class: `history-item${current ? ' history-current' : ''}`,
        'data-history-id': id,
        'data-state': i.state,
        tabindex: '0',
        role: 'button',
        onclick: () => openIncident(id),
        onkeydown: (ev) => {
          if (ev.key === 'Enter') openIncident(id);
        },
      },
      h('time', { class: 'tl-time' }, dayAndTime(i.pressed_at)),
      h('span', { class: `kind kind-${i.kind}` }, kindLabel(i.kind)),
      h('span', { class: `state state-${i.kind === 'welfare' ? 'welfare' : liveState(i)}` }, stateLabel(liveState(i))),
      h(
        'span',
        { class: 'history-detail' },
        [
          i.outcome ? outcomeLabel(i.outcome) : null,
          who ? t('handled_by', { name: who }) : null,
          i.emergency_call ? t('called', { number: i.emergency_call.number }) : null,
          current ? t('history_this') : `#${readableId(id)}`,
        ]
          .filter(Boolean)
          .join(' · '),
      ),
    );
  });
  box.replaceChildren(summary, list.length ? h('ol', { class: 'history-list' }, ...items) : h('p', { class: 'muted' }, t('history_none')));
}

// ---------------------------------------------------------------------------------------
// An ended incident (closed, cancelled, a false alarm): read only, what it was, how it ended
// and who handled it, from the last view seen (or the history's summary) and the timeline.
// ---------------------------------------------------------------------------------------

const ENDINGS = ['closed', 'cancelled', 'false_alarm'];

// Who ended it: a person by their name alone, the engine or a device as the timeline says.
function actorName(actor) {
  const id = String(actor?.id ?? '');
  if (actor?.type === 'dispatcher' || actor?.type === 'supervisor') return state.staff.get(id)?.name || id;
  if (actor?.type === 'responder') return state.responders.get(id)?.name || id;
  return actorText(actor);
}

function renderEnded(id) {
  const panel = dom.detail;
  const base = lastViews.get(id) || null;
  const known = summaries.get(id) || null;
  const summary = known?.summary || null;
  const elder = base?.elder || known?.elder || {};
  const events = Array.isArray(state.timeline.events) && state.timeline.id === id ? state.timeline.events : [];
  const ending = [...events].reverse().find((ev) => ENDINGS.includes(ev.change?.type));
  const resolvedEv = [...events].reverse().find((ev) => ev.change?.type === 'resolved');
  const opened = events.find((ev) => ev.change?.type === 'opened');
  const endState = ending ? ending.change.type : summary && ENDINGS.includes(summary.state) ? summary.state : 'ended';
  const kind = base?.kind || summary?.kind || opened?.change?.kind || null;
  const outcome = ending ? ending.change.outcome ?? ending.change.reason : summary?.outcome ?? base?.outcome ?? null;
  const resolvedOutcome = resolvedEv?.change?.outcome ?? null;
  const lastTaker = [...events].reverse().find((ev) => ev.change?.type === 'accepted' || ev.change?.type === 'assigned');
  const responderId = summary?.responder_id ?? base?.responder?.id ?? lastTaker?.change?.responder_id ?? null;
  const responderName = base?.responder?.name || (responderId ? state.responders.get(String(responderId))?.name || String(responderId) : null);
  const endedBy = ending ? actorName(ending.actor) : summary?.claimed_by ? state.staff.get(String(summary.claimed_by))?.name || summary.claimed_by : null;
  const endedAt = ending ? ending.at : summary ? summary.updated_at : null;
  const call = summary?.emergency_call || base?.emergency_call || null;
  const welfareReason = kind === 'welfare' ? base?.welfare ?? opened?.change?.welfare ?? null : null;

  panel.dataset.state = endState;
  delete panel.dataset.seq;
  dom.detailTitle.replaceChildren(
    kind ? h('span', { class: `kind kind-${kind}` }, kindLabel(kind)) : null,
    ' ',
    h('span', { 'data-field': 'detail-elder' }, callerName({ device_id: base?.device_id || summary?.device_id, elder })),
  );
  const stateWords = endState === 'ended' ? t('ended') : stateLabel(endState);
  dom.detailSub.replaceChildren(
    t('detail_incident', { id: readableId(id) }),
    ' · ',
    h('span', { class: `state state-${endState}`, 'data-field': 'detail-state' }, stateWords),
  );
  // The claim bar becomes the outcome bar: nobody claims an ended incident.
  dom.detailClaim.dataset.claimed = 'ended';
  dom.detailClaim.replaceChildren(
    h(
      'span',
      { class: 'ended-line', 'data-field': 'ended-summary' },
      [
        outcome ? t('ended_outcome', { outcome: outcomeLabel(outcome) }) : stateWords,
        responderName ? t('handled_by', { name: responderName }) : null,
        endedBy ? t('ended_by', { name: endedBy }) : null,
      ]
        .filter(Boolean)
        .join(' · '),
    ),
  );
  dom.detailActions.replaceChildren();
  dom.detailActions.hidden = true;
  const facts = section(
    t('sec_ended'),
    h(
      'dl',
      { class: 'kv', 'data-section': 'ended' },
      kv(t('f_state'), stateWords, { 'data-field': 'ended-state' }),
      kv(t('f_welfare_reason'), welfareReason ? welfareReasonLabel(welfareReason) : null, { 'data-field': 'ended-reason' }),
      kv(t('f_outcome'), outcome ? outcomeLabel(outcome) : null, { 'data-field': 'ended-outcome' }),
      kv(t('f_resolved_as'), resolvedOutcome && resolvedOutcome !== outcome ? outcomeLabel(resolvedOutcome) : null),
      kv(t('f_responder'), responderName, { 'data-field': 'ended-responder' }),
      kv(t('f_ended_by'), endedBy, { 'data-field': 'ended-by' }),
      kv(t('f_ended_at'), endedAt ? dayAndTime(endedAt) : null),
      kv(t('f_emergency_called'), call ? emergencyCallText(call) : null, { 'data-field': 'emergency-called' }),
      kv(t(kind === 'welfare' ? 'f_welfare_opened' : 'f_pressed_at'), base || summary ? dayAndTime(base ? pressMoment(base) : summary.pressed_at) : null),
      kv(t('f_device'), isStandIn({ device_id: base?.device_id || summary?.device_id, elder }) ? t('no_device') : base?.device_id || summary?.device_id),
    ),
  );
  const e = elder;
  const elderSection = e && (e.name || e.address || e.phone)
    ? section(
        t('sec_elder'),
        h(
          'dl',
          { class: 'kv', 'data-section': 'elder' },
          kv(t('f_name'), e.name || e.id, { 'data-field': 'elder-name' }),
          kv(t('f_address'), e.address, { 'data-field': 'address' }),
          kv(t('f_phone'), e.phone ? phoneWithCopy(e.phone) : null, { 'data-field': 'elder-phone' }),
        ),
      )
    : null;
  const timeline = section(t('sec_timeline'), h('ol', { class: 'timeline', id: 'timeline', 'data-section': 'timeline' }));
  const withHistory = elder.id && elder.id !== WITHHELD_STAND_IN;
  dom.detailBody.replaceChildren(...[facts, elderSection, base ? callsSection(base) : null, withHistory ? historySection() : null, timeline].filter(Boolean));
  if (state.timeline.id !== id) state.timeline = { id, seq: null, events: null, error: null, loading: false };
  if (state.timeline.seq !== 'gone' && state.timeline.pendingSeq !== 'gone') requestTimeline(id, 'gone');
  if (elder.id) {
    // The history was read while this incident was still open: read it again.
    if (history.list && history.list.some((i) => String(i.id) === id && !ENDINGS.includes(i.state)) && ending) {
      history = { elderId: null, list: null, error: null, loading: false, elder: null };
    }
    requestHistory(elder);
    renderHistory();
  }
  renderTimeline();
}
