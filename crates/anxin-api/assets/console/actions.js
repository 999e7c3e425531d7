// The dispatcher's actions: commands (claim, acknowledge, assign, note, call, escalate,
// resolve, close, cancel, false alarm) and their forms, one at a time in the panel; a form
// survives live updates of its incident.

import { h } from '../common/dom.js';
import { readableId } from '../common/format.js';
import { formatDistance, t } from '../common/i18n.js';
import { categoryLabel, orderStateLabel } from '../common/services.js';
import { needLabel } from './alarm.js';
import { request } from './feed.js';
import { callNumber, callsOf, claimHolder, isMine, isOutbound, isStandIn, isWelfare, modeLabel } from './incident.js';
import { toast } from './parts.js';
import { CALL_OUTCOMES, EMERGENCY_NUMBERS, OUTCOMES, PROGRAMME_OUTCOMES, WELFARE_OUTCOMES, dom, state } from './state.js';

// A button's label carries its shortcut ("备注 (n)"); a toast says what was done, without it.
const withoutKey = (label) => String(label).replace(/\s*[（(][^()（）]{1,3}[)）]\s*$/u, '');

/** A dispatcher command; says how it went in a toast. Resolves with whether it worked. */
export async function command(incidentId, action, fields, label, { quiet = false } = {}) {
  const result = await request({ type: 'command', incident_id: Number(incidentId), action, ...fields });
  if (quiet) return result;
  if (result.ok) {
    if (label) toast(t('done_ok', { what: withoutKey(label) }), 'ok');
  } else {
    toast(t('done_failed', { error: result.error || '?' }), 'error');
  }
  return result;
}

/**
 * Acknowledges the alarm this console shows for the incident (its raised_seq), so that an
 * alarm raised since is not silenced unseen: the engine then refuses with alarm_changed and
 * the new alarm stays flagged. The flag goes when the engine's next view has no alarm.
 */
export async function acknowledge(id, { quiet = false } = {}) {
  if (!id) return null;
  const shown = state.alarms.get(String(id));
  if (!shown) {
    if (!quiet) toast(t('ack_nothing', { id: readableId(id) }), 'info');
    return { ok: true, nothing: true };
  }
  const result = await command(id, 'acknowledge', { alarm: shown.raised_seq }, t('ev_acknowledged'), { quiet: true });
  if (quiet) return result;
  if (result.ok) toast(t('done_ok', { what: t('ev_acknowledged') }), 'ok');
  else if (result.code === 'alarm_changed') {
    const now = state.alarms.get(String(id));
    toast(t('ack_alarm_changed', { id: readableId(id), need: now ? needLabel(now.need) : '?' }), 'error');
  } else toast(t('done_failed', { error: result.error || '?' }), 'error');
  return result;
}

export async function claim(id) {
  if (!id) return;
  const view = state.incidents.get(String(id));
  if (view && isMine(claimHolder(view))) return;
  await command(id, 'claim', {}, t('ev_claimed'));
}

export function openForm(kind) {
  if (!state.openId) return;
  state.form = { kind, incidentId: state.openId };
  if (kind === 'assign') {
    state.suggestions = { id: state.openId, list: null, error: null, loading: true };
    const id = state.openId;
    const s = state.suggestions;
    request({ type: 'suggest', incident_id: Number(id) }).then((result) => {
      if (state.suggestions !== s) return;
      s.loading = false;
      if (result.ok && Array.isArray(result.suggestions)) s.list = result.suggestions;
      else s.error = result.error || '?';
      if (state.form && state.form.kind === 'assign') renderForm();
    });
  }
  renderForm();
  const first = dom.detailForm.querySelector('textarea, input, select');
  if (first) first.focus();
}

export function closeForm() {
  state.form = null;
  renderForm();
  dom.detail.focus({ preventScroll: true });
}

function formShell(title, fields, onSubmit) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, t('submit'));
  const form = h(
    'form',
    { class: 'action-form', 'data-form': state.form.kind, novalidate: true },
    h('h3', null, title),
    ...fields,
    error,
    h('div', { class: 'form-buttons' }, submit, h('button', { class: 'btn', type: 'button', onclick: closeForm }, t('cancel_form'))),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const problem = onSubmit.validate ? onSubmit.validate(form) : null;
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = t('sending');
    const result = await onSubmit.send(form);
    submit.disabled = false;
    submit.textContent = t('submit');
    if (result.ok) closeForm();
    else {
      error.textContent = t('done_failed', { error: result.error || '?' });
      error.hidden = false;
    }
  });
  return form;
}

const field = (labelText, control) => h('label', { class: 'field' }, h('span', null, labelText), control);

// A welfare check ends with what the call found, not with how somebody helped on scene.
function outcomeFields(view) {
  const scheduled = view.welfare === 'scheduled_call' || view.welfare === 'scheduled_visit';
  const codes = scheduled ? PROGRAMME_OUTCOMES : isWelfare(view) ? WELFARE_OUTCOMES : OUTCOMES;
  return [
    field(t('outcome_label'), h('select', { name: 'code' }, codes.map((c) => h('option', { value: c }, t(`outcome_${c}`))))),
    field(t('outcome_text'), h('input', { name: 'text', maxlength: 500 })),
  ];
}

function outcomeValue(form) {
  const code = form.elements.code.value;
  const text = form.elements.text.value.trim();
  return text ? `${code}: ${text}` : code;
}

function validateOutcome(form) {
  return form.elements.code.value === 'other' && !form.elements.text.value.trim() ? t('outcome_other_required') : null;
}

function callTargets(view) {
  const e = view.elder || {};
  const list = [];
  const caller = callsOf(view).find((c) => c.caller !== 'withheld' && !isOutbound(c));
  if (isStandIn(view)) {
    // A caller nobody knows: the one to call back is the number that rang.
    if (caller) list.push({ who: `caller:${callNumber(caller)}`, label: t('call_caller', { number: callNumber(caller) }), number: callNumber(caller).replace(/\s/g, '') });
  } else {
    list.push({ who: 'elder', label: t('call_elder'), number: e.phone || '' });
  }
  for (const c of Array.isArray(e.contacts) ? e.contacts : []) {
    list.push({ who: `contact:${c.name}${c.relation ? `(${c.relation})` : ''}`, label: t('call_contact', { name: `${c.name}${c.relation ? ` (${c.relation})` : ''}` }), number: c.phone || '' });
  }
  const r = view.responder || (view.offers && view.offers[0] && view.offers[0].responder);
  if (r) list.push({ who: `responder:${r.id}`, label: t('call_responder', { name: r.name || r.id }), number: r.phone || '' });
  if (view.station) list.push({ who: `station:${view.station.id}`, label: t('call_station', { name: view.station.name || view.station.id }), number: view.station.phone || '' });
  const number = view.ladder?.emergency_number || defaultEmergencyNumber(view);
  list.push({ who: `emergency:${number}`, label: t('call_emergency', { number }), number });
  list.push({ who: 'other', label: t('call_other'), number: '' });
  return list;
}

export function defaultEmergencyNumber(view) {
  if (view.ladder?.emergency_number) return view.ladder.emergency_number;
  if (view.kind === 'fire') return '119';
  if (view.kind === 'intrusion') return '110';
  return '120';
}

export function renderForm() {
  const box = dom.detailForm;
  const f = state.form;
  if (!f || f.incidentId !== state.openId) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const view = state.incidents.get(f.incidentId);
  if (!view) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const id = view.id;
  let form;
  switch (f.kind) {
    case 'note':
      form = formShell(t('act_note'), [field(t('note_label'), h('textarea', { name: 'text', rows: 3, maxlength: 2000, required: true }))], {
        validate: (fm) => (fm.elements.text.value.trim() ? null : t('text_required')),
        send: (fm) => command(id, 'note', { text: fm.elements.text.value.trim() }, t('act_note')),
      });
      break;
    case 'call': {
      const targets = callTargets(view);
      const who = h('select', { name: 'who' }, targets.map((c, i) => h('option', { value: String(i) }, c.label)));
      const number = h('input', { name: 'number', inputmode: 'tel', value: targets[0].number });
      const otherWho = h('input', { name: 'other_who', maxlength: 200 });
      const otherField = field(t('call_other_who'), otherWho);
      otherField.hidden = true;
      who.addEventListener('change', () => {
        const c = targets[Number(who.value)];
        number.value = c.number;
        otherField.hidden = c.who !== 'other';
      });
      form = formShell(
        t('act_call'),
        [
          field(t('call_who'), who),
          otherField,
          field(t('call_number'), number),
          field(t('call_outcome'), h('select', { name: 'outcome' }, CALL_OUTCOMES.map((c) => h('option', { value: c }, c === 'other' ? t('outcome_other') : t(`call_${c}`))))),
          field(t('outcome_text'), h('input', { name: 'text', maxlength: 500 })),
        ],
        {
          validate: (fm) => (targets[Number(fm.elements.who.value)].who === 'other' && !fm.elements.other_who.value.trim() ? t('text_required') : null),
          send: (fm) => {
            const c = targets[Number(fm.elements.who.value)];
            const whoValue = c.who === 'other' ? fm.elements.other_who.value.trim() : c.who;
            const text = fm.elements.text.value.trim();
            const fields = { who: whoValue, outcome: text ? `${fm.elements.outcome.value}: ${text}` : fm.elements.outcome.value };
            if (fm.elements.number.value.trim()) fields.number = fm.elements.number.value.trim();
            return command(id, 'call', fields, t('act_call'));
          },
        },
      );
      break;
    }
    case 'escalate': {
      const preset = defaultEmergencyNumber(view);
      form = formShell(
        t('act_escalate'),
        [
          field(t('escalate_number'), h('select', { name: 'number' }, EMERGENCY_NUMBERS.map((n) => h('option', { value: n, selected: n === preset }, t(`num_${n}`))))),
          field(t('escalate_reference'), h('input', { name: 'reference', maxlength: 200 })),
        ],
        {
          send: (fm) => {
            const fields = { number: fm.elements.number.value };
            if (fm.elements.reference.value.trim()) fields.reference = fm.elements.reference.value.trim();
            return command(id, 'escalate', fields, t('act_escalate'));
          },
        },
      );
      break;
    }
    case 'cancel':
    case 'false_alarm':
      form = formShell(t(f.kind === 'cancel' ? 'act_cancel' : 'act_false_alarm'), [field(t('reason_label'), h('textarea', { name: 'reason', rows: 2, maxlength: 500, required: true }))], {
        validate: (fm) => (fm.elements.reason.value.trim() ? null : t('reason_required')),
        send: (fm) => command(id, f.kind, { reason: fm.elements.reason.value.trim() }, t(f.kind === 'cancel' ? 'act_cancel' : 'act_false_alarm')),
      });
      break;
    case 'resolve':
    case 'close':
      form = formShell(t(f.kind === 'resolve' ? 'act_resolve' : 'act_close'), outcomeFields(view), {
        validate: validateOutcome,
        send: async (fm) => {
          const outcome = outcomeValue(fm);
          // A welfare check ends in one step, as the engine ends one: resolved, then closed.
          if (f.kind === 'close' && isWelfare(view) && view.state !== 'resolved') {
            const resolved = await command(id, 'resolve', { outcome }, null, { quiet: true });
            if (!resolved.ok) return resolved;
          }
          return command(id, f.kind, { outcome }, t(f.kind === 'resolve' ? 'act_resolve' : 'act_close'));
        },
      });
      break;
    case 'assign':
      form = renderSuggestions(view);
      break;
    default:
      form = null;
  }
  box.replaceChildren(...(form ? [form] : []));
  box.hidden = !form;
}

const etaMin = (sg) => Math.max(1, Math.round(Number(sg.eta_min)));

// Why the list is in this order: soonest to arrive, which is not nearest when modes differ;
// with the first pair in the list where a nearer responder ranks lower, in names.
function rankingWhy(list) {
  let pair = null;
  for (let j = 1; j < list.length && !pair; j += 1) {
    const i = list.findIndex((sg, k) => k < j && Number(sg.distance_m) > Number(list[j].distance_m));
    if (i >= 0) pair = [list[i], list[j]];
  }
  const who = (sg) => sg.responder?.name || sg.responder?.id;
  const example = pair
    ? h(
        'span',
        { 'data-field': 'suggest-why-example' },
        ' ',
        t('suggest_why_example', {
          far: who(pair[0]),
          farMode: modeLabel(pair[0].mode),
          farD: formatDistance(Number(pair[0].distance_m)),
          farMin: etaMin(pair[0]),
          near: who(pair[1]),
          nearMode: modeLabel(pair[1].mode),
          nearD: formatDistance(Number(pair[1].distance_m)),
          nearMin: etaMin(pair[1]),
        }),
      )
    : null;
  return h('p', { class: 'sg-why', 'data-field': 'suggest-why' }, t('suggest_why'), example);
}

/** A suggestion's first line: its rank (if any), name, time to get there, mode and distance. */
function suggestionMain(sg, name, rank) {
  return h(
    'div',
    { class: 'sg-main' },
    rank === null ? null : h('span', { class: 'sg-rank' }, `${rank}.`),
    h('strong', null, name),
    h('span', { class: 'sg-eta', 'data-field': 'eta' }, t('suggest_eta', { n: etaMin(sg) })),
    h('span', { class: `sg-mode mode-${sg.mode}`, 'data-field': 'mode', 'data-mode': sg.mode }, modeLabel(sg.mode)),
    h('span', { class: 'sub', 'data-field': 'distance' }, formatDistance(Number(sg.distance_m))),
  );
}

function renderSuggestions(view) {
  const s = state.suggestions;
  const holder = view.responder;
  // Home-care service workers come after the responders, marked: the ladder never offers
  // them an emergency, and sending one takes them off the order they are on.
  const responders = (s.list || []).filter((sg) => !sg.worker);
  const workers = (s.list || []).filter((sg) => sg.worker);
  let body;
  if (s.loading) body = h('p', { class: 'muted' }, t('suggest_loading'));
  else if (s.error) body = h('p', { class: 'form-error' }, t('suggest_failed', { error: s.error }));
  else if (responders.length === 0) body = h('p', { class: 'muted', 'data-field': 'suggest-none' }, t('suggest_none'));
  else {
    body = h(
      'ol',
      { class: 'suggestions' },
      responders.map((sg, i) => {
        const r = sg.responder || {};
        const name = r.name || r.id;
        const station = state.stations.get(String(r.station_id));
        return h(
          'li',
          { class: 'suggestion', 'data-responder-id': r.id },
          suggestionMain(sg, name, i + 1),
          h(
            'div',
            { class: 'sg-flags' },
            h('span', { class: `chip ${sg.within_circle ? 'chip-ok' : 'chip-warn'}` }, sg.within_circle ? t('suggest_in_circle') : t('suggest_out_circle')),
            h('span', { class: `chip ${sg.has_skill ? 'chip-ok' : 'chip-warn'}` }, sg.has_skill ? t('suggest_skill') : t('suggest_no_skill')),
            station ? h('span', { class: 'sub' }, station.name) : null,
          ),
          h(
            'button',
            {
              class: 'btn btn-primary btn-small',
              type: 'button',
              'data-action': 'assign-to',
              onclick: async (ev) => {
                ev.currentTarget.disabled = true;
                const result = await command(view.id, 'assign', { responder_id: r.id }, t(holder ? 'reassign_to' : 'assign_to', { name }));
                if (result.ok) closeForm();
                else ev.currentTarget.disabled = false;
              },
            },
            t(holder ? 'reassign_to' : 'assign_to', { name }),
          ),
        );
      }),
    );
  }
  return h(
    'div',
    { class: 'action-form', 'data-form': 'assign' },
    h('h3', null, t('suggest_title')),
    responders.length > 0 ? rankingWhy(responders) : null,
    body,
    workers.length > 0 ? renderWorkers(view, workers) : null,
    h('div', { class: 'form-buttons' }, h('button', { class: 'btn', type: 'button', onclick: closeForm }, t('cancel_form'))),
  );
}

/**
 * The service workers near the incident: whom they work for and what they are doing. Sending
 * one who is out on an order asks first, naming the order that will wait for another worker.
 */
function renderWorkers(view, workers) {
  const send = async (button, sg) => {
    button.disabled = true;
    const name = sg.responder.name || sg.responder.id;
    const result = await command(view.id, 'assign', { responder_id: sg.responder.id }, t('worker_send', { name }));
    if (result.ok) closeForm();
    else button.disabled = false;
  };
  return h(
    'section',
    { class: 'sg-workers', 'data-field': 'suggest-workers' },
    h('h4', null, t('suggest_workers_title')),
    h('p', { class: 'sub' }, t('suggest_workers_note')),
    h(
      'ol',
      { class: 'suggestions' },
      workers.map((sg) => {
        const r = sg.responder || {};
        const name = r.name || r.id;
        const on = sg.worker.order;
        const doing = on
          ? t('worker_on_order', { id: readableId(on.id), state: orderStateLabel(on.state), category: categoryLabel(on.category), elder: on.elder_name })
          : t('worker_free');
        const confirm = h(
          'div',
          { class: 'sg-confirm', 'data-field': 'worker-confirm', hidden: true },
          h('span', null, on ? t('worker_confirm', { name, id: readableId(on.id) }) : ''),
          ' ',
          h('button', { class: 'btn btn-primary btn-small', type: 'button', 'data-action': 'worker-send-confirm', onclick: (ev) => send(ev.currentTarget, sg) }, t('worker_send_confirm')),
          ' ',
          h('button', { class: 'btn btn-small', type: 'button', onclick: () => { confirm.hidden = true; } }, t('cancel_form')),
        );
        return h(
          'li',
          { class: 'suggestion worker', 'data-responder-id': r.id, 'data-order-id': on ? on.id : null },
          suggestionMain(sg, name, null),
          h(
            'div',
            { class: 'sg-flags' },
            h('span', { class: 'chip chip-worker', 'data-field': 'provider' }, sg.worker.provider_name),
            h('span', { class: 'sub', 'data-field': 'doing' }, doing),
          ),
          h(
            'button',
            {
              class: 'btn btn-small',
              type: 'button',
              'data-action': 'worker-send',
              onclick: (ev) => {
                if (on) confirm.hidden = false;
                else send(ev.currentTarget, sg);
              },
            },
            t('worker_send', { name }),
          ),
          confirm,
        );
      }),
    ),
  );
}

