// Anxin services board (/console/services): the home-care orders whose life is not over, in
// the groups a dispatcher works through (needs a dispatcher, late, due today, waiting for
// the elder's confirmation, the rest), each with the actions its state allows; and the form
// that quotes a new order (what it costs, what the allowance pays, who could take it) and
// places it.
//
// The list comes from GET /api/v1/services/orders, read again on every (re)connection of the
// console's feed (/ws), whose `order` frames carry each change meanwhile: the frames are not
// numbered, so the list read on connecting is what makes sure nothing was missed. With the
// zones spread over several nodes, the list names the zones whose owner did not answer in
// time (`zones_unanswered`): the board then says, above the orders, that it is incomplete and
// which zones are missing, and reads the list again every ASK_AGAIN_MS until every zone has
// answered. Sign-in is the console's: without a session the page sends the browser there, and
// the console sends it back (see console/signin.js).

import { observeServerTime, serverNow } from './common/clock.js';
import { byId, h, whenReady } from './common/dom.js';
import { createFeed, socketUrl } from './common/feed.js';
import { requestJson } from './common/http.js';
import { formatClock, readableId } from './common/format.js';
import { chooseLanguage, defineStrings, formatList, htmlLang, otherLanguage, rememberedLanguage, setLanguage, t } from './common/i18n.js';
import {
  categoryLabel,
  fromInputs,
  hhmm,
  momentLabel,
  orderRefusal,
  orderStateLabel,
  toInputs,
  whyNoProvider,
  windowLabel,
  yuan,
} from './common/services.js';
import { LANG_KEY } from './console/state.js';
import { CONSOLE_STRINGS } from './console/strings.js';
import { SERVICES_STRINGS } from './services/strings.js';

defineStrings(CONSOLE_STRINGS);
defineStrings(SERVICES_STRINGS);
// The notice of zones missing from the list (the board's other words: services/strings.js).
defineStrings({
  zh: {
    sv_missing_title: '工单列表不完整',
    sv_missing_zone: '分区 {zones} 没有答复，其工单未列在下面（该分区可能正在移交给另一台服务器，或其服务器无响应）。页面每 10 秒自动重新读取，直到所有分区都答复。',
    sv_missing_zones: '分区 {zones} 没有答复，其工单未列在下面（这些分区可能正在移交给另一台服务器，或其服务器无响应）。页面每 10 秒自动重新读取，直到所有分区都答复。',
  },
  en: {
    sv_missing_title: 'This list is incomplete',
    sv_missing_zone: 'Zone {zones} did not answer: its orders are not listed below (the zone may be moving to another server, or its server is not answering). The page reads the list again every 10 s until every zone answers.',
    sv_missing_zones: 'Zones {zones} did not answer: their orders are not listed below (the zones may be moving to another server, or their server is not answering). The page reads the list again every 10 s until every zone answers.',
  },
});

const API = '/api/v1/services';
const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;
const TERMINAL = new Set(['confirmed', 'settled', 'cancelled']);
// The groups, in the order a dispatcher works through them.
const GROUPS = ['needs', 'late', 'done', 'today', 'rest'];
// What a dispatcher may do to an order in each state (the engine's rules: order_acts).
const ACTIONS_BY_STATE = {
  unmatched: ['rematch', 'offer_to', 'reschedule', 'cancel', 'note'],
  offered: ['offer_to', 'reschedule', 'cancel', 'note'],
  accepted: ['reschedule', 'cancel', 'note'],
  en_route: ['cancel', 'note'],
  on_site: ['note'],
  done: ['confirm', 'dispute', 'note'],
  disputed: ['settle', 'note'],
};
const GOING = new Set(['offered', 'accepted', 'en_route', 'on_site']);
// How soon the list is read again while a zone's orders are missing from it (the notice's
// words say 10 s too).
const ASK_AGAIN_MS = 10_000;

const sv = {
  me: null,
  /** order id → OrderView */
  orders: new Map(),
  catalogue: { categories: [], providers: [], monthly_allowance_fen: [] },
  loaded: false,
  conn: 'connecting',
  langChosen: false,
  /** a list read in flight: its generation, and the frames that came meanwhile */
  loading: null,
  loadGeneration: 0,
  /** the zones whose orders the last list lacked (their owner did not answer in time) */
  missing: [],
  /** the timer that reads the list again while `missing` is not empty */
  askAgain: null,
  /** the words the notice of missing zones shows now ('' for none) */
  missingShown: '',
  /** the board's last message, as [key, vars] or a refusal body; with its kind */
  flash: null,
  error: null,
  /** the new-order form: the quote shown (and the request it answers), in flight, result */
  quote: null,
  quoteFor: null,
  newBusy: null,
  newError: null,
  newDone: null,
  source: { from: 'dispatcher' },
  /** the open action dialog: { order, action } */
  dialog: null,
  dialogBusy: false,
  dialogError: null,
};

// ---------------------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------------------

const call = requestJson;

/** What a failed call says, in words. */
function failure(res) {
  if (res.status === 0) return t('oerr_network');
  if (res.status === 401) return t('oerr_no_session');
  return orderRefusal(res.body);
}

/** Reads the open orders afresh; frames that came while it was read are applied after.
 * While the list lacks a zone's orders, it is read again in ASK_AGAIN_MS. */
async function loadOrders() {
  clearTimeout(sv.askAgain);
  sv.askAgain = null;
  sv.loadGeneration += 1;
  const generation = sv.loadGeneration;
  sv.loading = { generation, frames: [] };
  const res = await call('GET', `${API}/orders`);
  if (generation !== sv.loadGeneration) return;
  const frames = sv.loading.frames;
  sv.loading = null;
  if (res.status === 401) return signInAgain();
  if (res.ok) {
    sv.orders = new Map((res.body?.orders || []).map((o) => [o.id, o]));
    for (const o of frames) applyOrder(o);
    // A single node leaves it out or empty.
    const missing = res.body?.zones_unanswered;
    sv.missing = Array.isArray(missing) ? missing.filter(Number.isInteger) : [];
    sv.loaded = true;
    sv.error = null;
  } else {
    // The zones missing before are still missing.
    sv.error = failure(res);
  }
  if (sv.missing.length > 0) sv.askAgain = setTimeout(loadOrders, ASK_AGAIN_MS);
  renderBoard();
}

/** One order's change: newer than what the board holds, or it is ignored. */
function applyOrder(o) {
  if (!o || typeof o.id !== 'number') return;
  const held = sv.orders.get(o.id);
  if (held && Number(held.updated_at) > Number(o.updated_at)) return;
  if (TERMINAL.has(o.state)) sv.orders.delete(o.id);
  else sv.orders.set(o.id, o);
}

function signInAgain() {
  location.replace(`/console#services=${encodeURIComponent(location.pathname + location.search)}`);
}

// ---------------------------------------------------------------------------------------
// The board
// ---------------------------------------------------------------------------------------

const startOfToday = (now) => {
  const d = new Date(now);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
};

/** Why an order is late, or null: its window is over and it is not done, or its
 * appointment has passed and nobody is at the door. */
function lateWhy(o, now) {
  if (GOING.has(o.state) && Number(o.to) < now) return 'sv_late_window';
  if ((o.state === 'accepted' || o.state === 'en_route') && o.appointment_at != null && Number(o.appointment_at) < now) {
    return 'sv_late_appointment';
  }
  return null;
}

/** The group an order is shown in. */
function groupOf(o, now) {
  if (o.state === 'unmatched' || o.state === 'disputed') return 'needs';
  if (lateWhy(o, now)) return 'late';
  if (o.state === 'done') return 'done';
  const start = startOfToday(now);
  const end = start + 86_400_000;
  const today = o.appointment_at != null
    ? Number(o.appointment_at) >= start && Number(o.appointment_at) < end
    : Number(o.from) < end && Number(o.to) >= start;
  return today ? 'today' : 'rest';
}

/** When it is wanted, soonest first, for the order within a group. */
const when = (o) => Number(o.appointment_at ?? o.from);

function renderBoard() {
  const box = byId('sv-groups');
  box.dataset.loaded = String(sv.loaded);
  const now = serverNow();
  const grouped = new Map(GROUPS.map((g) => [g, []]));
  for (const o of sv.orders.values()) grouped.get(groupOf(o, now)).push(o);
  byId('sv-total').textContent = sv.loaded ? String(sv.orders.size) : '';
  renderMissing();
  if (!sv.loaded) {
    box.replaceChildren(h('p', { class: 'sv-muted' }, t('sv_loading')));
  } else {
    box.replaceChildren(
      ...GROUPS.map((g) => {
        const list = grouped.get(g).sort((a, b) => when(a) - when(b) || a.id - b.id);
        return h(
          'section',
          { class: 'sv-group', 'data-group': g, 'data-count': list.length },
          h('h3', { class: 'sv-group-h' }, t(`sv_group_${g}`), ' ', h('span', { class: 'sv-count' }, list.length)),
          list.length === 0
            ? h('p', { class: 'sv-muted sv-empty' }, t('sv_group_empty'))
            : h(
                'table',
                { class: 'sv-table' },
                h(
                  'thead',
                  null,
                  h(
                    'tr',
                    null,
                    ['order', 'elder', 'category', 'when', 'who', 'money', 'state', 'actions'].map((c) =>
                      h('th', { class: `c-${c}` }, t(`sv_col_${c}`)),
                    ),
                  ),
                ),
                h('tbody', null, list.map((o) => orderRow(o, now))),
              ),
        );
      }),
    );
  }
  const flash = byId('sv-flash');
  flash.hidden = !sv.flash;
  flash.textContent = sv.flash ? t(sv.flash[0], sv.flash[1]) : '';
  const error = byId('sv-error');
  error.hidden = !sv.error;
  error.textContent = sv.error || '';
}

/** The notice above the orders naming the zones missing from them; hidden when none is. */
function renderMissing() {
  const notice = byId('sv-missing');
  const zones = sv.missing;
  notice.hidden = zones.length === 0;
  notice.dataset.zones = zones.join(',');
  const text = zones.length ? t(zones.length === 1 ? 'sv_missing_zone' : 'sv_missing_zones', { zones: formatList(zones) }) : '';
  // Put up again only when it says something new: it is an alert, read out when it changes.
  if (sv.missingShown === text) return;
  sv.missingShown = text;
  notice.replaceChildren(...(zones.length ? [h('strong', { class: 'sv-missing-h' }, t('sv_missing_title')), h('span', null, text)] : []));
}

function orderRow(o, now) {
  const late = lateWhy(o, now);
  const whenCell = [h('div', null, t('sv_window', { w: windowLabel(o.from, o.to, now) }))];
  if (o.appointment_at != null) whenCell.push(h('div', { class: 'sv-strong' }, t('sv_appointment', { m: momentLabel(o.appointment_at, now) })));
  if (late) whenCell.push(h('div', { class: 'sv-late', 'data-field': 'late' }, t(late)));
  const who = [];
  if (o.provider_name || o.provider_id) who.push(h('div', null, o.provider_name || o.provider_id));
  if (o.worker_name || o.worker_id) who.push(h('div', { class: 'sv-muted' }, o.worker_name || o.worker_id));
  if (o.state === 'offered' && o.offer) {
    who.push(h('div', { 'data-field': 'offered-to' }, t('sv_offered_to', { name: o.offered_to || o.offer.provider_id, time: hhmm(o.offer.deadline) })));
  }
  if (o.state === 'unmatched' && o.unmatched_why) who.push(h('div', { class: 'sv-warn', 'data-field': 'why' }, whyNoProvider(o.unmatched_why)));
  if (o.redirected_to != null && !o.worker_id) who.push(h('div', { class: 'sv-warn' }, t('sv_redirected', { incident: readableId(o.redirected_to) })));
  const state = [h('span', { class: `sv-state sv-state-${o.state}` }, orderStateLabel(o.state))];
  if (o.state === 'disputed' && o.dispute) state.push(h('div', { class: 'sv-warn', 'data-field': 'dispute' }, t('sv_dispute', { text: o.dispute })));
  if ((o.state === 'done' || o.state === 'disputed') && o.done) state.push(h('div', { class: 'sv-muted' }, t('sv_done_what', { text: o.done })));
  const held = o.price_fen > 0 || o.provider_id;
  const money = held
    ? [
        h('span', { 'data-field': 'money' }, t('sv_money', { price: yuan(o.price_fen), subsidy: yuan(o.subsidy_fen), self: yuan(o.self_paid_fen) })),
        o.self_paid_fen > 0 && o.self_paid_agreed ? h('div', { class: 'sv-muted' }, t('sv_self_agreed')) : null,
      ]
    : h('span', { class: 'sv-muted', 'data-field': 'money' }, t('sv_price_unknown'));
  const fromKey = { service_press: 'sv_from_press', welfare_call: 'sv_from_welfare' }[o.source?.from];
  const press = fromKey ? h('div', { class: 'sv-muted', 'data-field': 'source' }, t(fromKey, { incident: readableId(o.source.incident) })) : null;
  return h(
    'tr',
    { 'data-order-id': o.id, 'data-state': o.state, 'data-late': late ? 'true' : 'false' },
    h('td', { class: 'c-order' }, h('strong', null, `#${readableId(o.id)}`), press),
    h('td', { class: 'c-elder' }, h('div', { class: 'sv-strong' }, o.elder_name || o.elder_id), h('div', { class: 'sv-muted' }, o.address || ''), o.notes ? h('div', { class: 'sv-notes' }, o.notes) : null),
    h('td', { class: 'c-category', 'data-field': 'category' }, categoryLabel(o.category)),
    h('td', { class: 'c-when' }, whenCell),
    h('td', { class: 'c-who' }, who.length ? who : '—'),
    h('td', { class: 'c-money' }, money),
    h('td', { class: 'c-state', 'data-field': 'state' }, state),
    h(
      'td',
      { class: 'c-actions' },
      [...(ACTIONS_BY_STATE[o.state] || []), 'history'].map((a) =>
        h('button', { class: `btn btn-small${a === 'confirm' ? ' btn-primary' : ''}`, type: 'button', 'data-action': a, onclick: () => startAction(o.id, a) }, t(`sv_act_${a}`)),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Acting on an order
// ---------------------------------------------------------------------------------------

/** The catalogue's providers who offer a category. */
const providersFor = (category) => sv.catalogue.providers.filter((p) => (p.offers || []).some((x) => x.category === category));

function startAction(id, action) {
  const o = sv.orders.get(id);
  if (!o) return;
  if (action === 'rematch') {
    send(o, action, {});
    return;
  }
  sv.dialog = { order: o, action };
  sv.dialogError = null;
  sv.dialogBusy = false;
  buildDialog();
  byId('act').showModal();
  byId('act-fields').querySelector('textarea, input, select')?.focus();
  if (action === 'history') loadHistory(sv.dialog);
}

// ---------------------------------------------------------------------------------------
// An order's history: every step, when, and by whom (for a dispute or a complaint)
// ---------------------------------------------------------------------------------------

const providerName = (id) => sv.catalogue.providers.find((p) => p.id === id)?.name || id;

/** Who took a step, in words. */
function actorLabel(actor, names) {
  switch (actor?.type) {
    case 'engine':
      return t('sv_by_engine');
    case 'dispatcher':
      return t('sv_by_dispatcher', { id: actor.id });
    case 'family':
      return t('sv_by_family');
    case 'responder':
      return t('sv_by_worker', { name: names[actor.id] || actor.id });
    default:
      return actor?.id || '';
  }
}

/** A step of an order's life, in words. */
function stepLabel(c) {
  const name = (id) => (id ? providerName(id) : '');
  switch (c.type) {
    case 'offered':
      return t('sv_step_offered', { provider: name(c.provider_id) });
    case 'declined':
      return c.reason ? t('sv_step_refused', { provider: name(c.provider_id), reason: c.reason }) : t('sv_step_lapsed', { provider: name(c.provider_id) });
    case 'unmatched':
      return t('sv_step_unmatched', { why: whyNoProvider(c.why) });
    case 'accepted':
      return t('sv_step_accepted', { provider: name(c.provider_id), at: momentLabel(Number(c.appointment_at), serverNow()), price: yuan(c.price_fen), subsidy: yuan(c.subsidy_fen), self: yuan(c.self_paid_fen) });
    case 'checked_in':
      return t('sv_step_checked_in', { m: Math.round(Number(c.distance_m)) });
    case 'checked_out':
      return t('sv_step_checked_out', { text: c.done });
    case 'confirmed':
      return c.comment ? t('sv_step_confirmed_said', { n: c.rating, comment: c.comment }) : t('sv_step_confirmed', { n: c.rating });
    case 'disputed':
      return t('sv_step_disputed', { text: c.reason });
    case 'settled':
      return t('sv_step_settled', { text: c.outcome });
    case 'rescheduled':
      return t('sv_step_rescheduled', { window: windowLabel(Number(c.from), Number(c.to), serverNow()) });
    case 'cancelled':
      return t('sv_step_cancelled', { text: c.reason });
    case 'worker_redirected':
      return t('sv_step_redirected', { incident: readableId(c.incident) });
    case 'worker_changed':
      return t('sv_step_worker_changed', { worker: c.worker_id });
    case 'note':
      return t('sv_step_note', { text: c.text });
    default:
      return t(`sv_step_${c.type}`);
  }
}

async function loadHistory(dialog) {
  const fields = byId('act-fields');
  fields.replaceChildren(h('p', { class: 'sv-muted' }, t('sv_hist_loading')));
  const res = await call('GET', `${API}/orders/${dialog.order.id}`);
  if (sv.dialog !== dialog) return;
  if (res.status === 401) return signInAgain();
  if (!res.ok) {
    sv.dialogError = failure(res);
    fields.replaceChildren();
    renderDialog();
    return;
  }
  const names = res.body.worker_names || {};
  fields.replaceChildren(
    h(
      'ol',
      { class: 'sv-history', 'data-field': 'history' },
      res.body.events.map((e) =>
        h(
          'li',
          { 'data-step': e.change.type },
          h('time', { class: 'sv-muted' }, momentLabel(Number(e.at), serverNow())),
          ' ',
          h('span', { class: 'sv-step' }, stepLabel(e.change)),
          ' ',
          h('span', { class: 'sv-muted sv-by' }, actorLabel(e.actor, names)),
        ),
      ),
    ),
  );
}

function field(label, control) {
  return h('label', { class: 'sv-field' }, h('span', null, label), control);
}

function buildDialog() {
  const { order: o, action } = sv.dialog;
  byId('act-title').textContent = t(`sv_act_${action}`);
  byId('act-order').textContent = t('sv_dlg_order', { id: readableId(o.id), elder: o.elder_name || o.elder_id, category: categoryLabel(o.category) });
  const text = (name, label) => field(label, h('textarea', { name, rows: 3, maxlength: 500, required: true }));
  let fields = [];
  if (action === 'cancel' || action === 'dispute') fields = [text('reason', t('sv_f_reason'))];
  if (action === 'settle') fields = [text('outcome', t('sv_f_outcome'))];
  if (action === 'note') fields = [text('text', t('sv_f_note'))];
  if (action === 'reschedule') {
    const from = toInputs(Number(o.from));
    const to = toInputs(Number(o.to));
    fields = [
      h(
        'div',
        { class: 'sv-when' },
        field(t('sv_f_date'), h('input', { name: 'date', type: 'date', value: from.date, required: true })),
        field(t('sv_f_from'), h('input', { name: 'from', type: 'time', step: 900, value: from.time, required: true })),
        field(t('sv_f_to'), h('input', { name: 'to', type: 'time', step: 900, value: to.time, required: true })),
      ),
    ];
  }
  if (action === 'offer_to') {
    const current = o.offer?.provider_id;
    const choices = providersFor(o.category).filter((p) => p.id !== current);
    fields = choices.length
      ? [field(t('sv_f_provider'), h('select', { name: 'provider_id' }, choices.map((p) => h('option', { value: p.id }, `${p.name} (${yuan(p.offers.find((x) => x.category === o.category)?.price_fen)})`))))]
      : [h('p', { class: 'sv-warn' }, t('sv_f_no_provider'))];
  }
  if (action === 'confirm') {
    fields = [
      h(
        'fieldset',
        { class: 'sv-rating' },
        h('legend', null, t('sv_f_rating')),
        [1, 2, 3, 4, 5].map((n) =>
          h('label', { class: 'sv-star' }, h('input', { type: 'radio', name: 'rating', value: n }), h('span', { 'aria-hidden': 'true' }, '★'.repeat(n)), h('span', { class: 'sv-muted' }, t('sv_stars', { n }))),
        ),
      ),
      field(t('sv_f_comment'), h('textarea', { name: 'comment', rows: 2, maxlength: 500 })),
    ];
  }
  byId('act-fields').replaceChildren(...fields);
  byId('act-send').disabled = action === 'offer_to' && !byId('act-fields').querySelector('select');
  // The history is only read: nothing to send.
  byId('act-send').hidden = action === 'history';
  renderDialog();
}

function renderDialog() {
  const error = byId('act-error');
  error.hidden = !sv.dialogError;
  error.textContent = sv.dialogError || '';
  const send = byId('act-send');
  send.textContent = sv.dialogBusy ? t('sv_sending') : t('sv_send');
  if (sv.dialogBusy) send.disabled = true;
}

/** The action's body from the dialog's fields, or null (and a message) when one is missing. */
function dialogBody() {
  const { order: o, action } = sv.dialog;
  const form = byId('act-form');
  const value = (name) => form.elements.namedItem(name)?.value ?? '';
  const required = (name) => {
    const v = value(name).trim();
    if (!v) {
      sv.dialogError = t('sv_need_text');
      form.elements.namedItem(name)?.focus();
    }
    return v || null;
  };
  switch (action) {
    case 'cancel':
    case 'dispute': {
      const reason = required('reason');
      return reason && { reason };
    }
    case 'settle': {
      const outcome = required('outcome');
      return outcome && { outcome };
    }
    case 'note': {
      const text = required('text');
      return text && { text };
    }
    case 'reschedule':
      // The engine says what is wrong with a window (bad_window); the page only reads it.
      return { from: fromInputs(value('date'), value('from')), to: fromInputs(value('date'), value('to')) };
    case 'offer_to':
      return { provider_id: value('provider_id') };
    case 'confirm': {
      const rating = Number(form.querySelector('input[name="rating"]:checked')?.value);
      if (!rating) {
        sv.dialogError = t('sv_need_rating');
        return null;
      }
      return { rating, comment: value('comment').trim() };
    }
    default:
      return o ? {} : null;
  }
}

/** Sends an action; its result is shown where it was asked (the dialog or the board). */
async function send(o, action, fields) {
  const inDialog = Boolean(sv.dialog);
  if (inDialog) {
    sv.dialogBusy = true;
    sv.dialogError = null;
    renderDialog();
  }
  const res = await call('POST', `${API}/orders/${o.id}`, { action, ...fields });
  if (res.status === 401) return signInAgain();
  if (inDialog) {
    sv.dialogBusy = false;
    if (!res.ok) {
      sv.dialogError = failure(res);
      byId('act-send').disabled = false;
      renderDialog();
      return;
    }
    closeDialog();
  }
  if (res.ok) {
    sv.flash = [`sv_done_${action}`, { id: readableId(o.id) }];
    sv.error = null;
  } else {
    sv.flash = null;
    sv.error = `#${readableId(o.id)}: ${failure(res)}`;
  }
  renderBoard();
}

function closeDialog() {
  sv.dialog = null;
  byId('act').close();
}

// ---------------------------------------------------------------------------------------
// A new order
// ---------------------------------------------------------------------------------------

/** The request the form describes now. */
function formRequest() {
  const date = byId('new-date').value;
  return {
    elder_id: byId('new-elder').value.trim(),
    category: byId('new-category').value,
    from: fromInputs(date, byId('new-from').value),
    to: fromInputs(date, byId('new-to').value),
    notes: byId('new-notes').value.trim(),
    source: sv.source,
  };
}

/** What is missing before the form can be quoted, as a string key; null if nothing. */
function formMissing(req) {
  if (!req.elder_id) return 'sv_new_need_elder';
  if (!Number.isFinite(req.from) || !Number.isFinite(req.to)) return 'sv_new_need_when';
  return null;
}

const sameRequest = (a, b) => a && b && JSON.stringify(a) === JSON.stringify(b);

async function askQuote() {
  const req = formRequest();
  const missing = formMissing(req);
  sv.newDone = null;
  if (missing) {
    sv.newError = t(missing);
    renderNew();
    return;
  }
  sv.newBusy = 'quote';
  sv.newError = null;
  renderNew();
  const res = await call('POST', `${API}/quote`, req);
  if (res.status === 401) return signInAgain();
  sv.newBusy = null;
  if (res.ok) {
    sv.quote = res.body;
    sv.quoteFor = req;
    byId('agree').checked = false;
  } else {
    sv.quote = null;
    sv.quoteFor = null;
    sv.newError = failure(res);
  }
  renderNew();
}

async function place(ev) {
  ev.preventDefault();
  const req = formRequest();
  if (!sv.quote || !sameRequest(req, sv.quoteFor)) return;
  const selfPaid = sv.quote.self_paid_fen > 0;
  if (selfPaid && !byId('agree').checked) return;
  sv.newBusy = 'place';
  sv.newError = null;
  renderNew();
  const res = await call('POST', `${API}/orders`, { ...req, self_paid_agreed: selfPaid });
  if (res.status === 401) return signInAgain();
  sv.newBusy = null;
  if (!res.ok) {
    sv.newError = failure(res);
    renderNew();
    return;
  }
  sv.newDone = ['sv_placed', { id: readableId(res.body.id) }];
  sv.quote = null;
  sv.quoteFor = null;
  byId('new-notes').value = '';
  renderNew();
  // Its `order` frame brings it to the board; the list is read too in case the feed is down.
  if (!sv.orders.has(res.body.id)) loadOrders();
}

function renderNew() {
  const q = sv.quote;
  const fresh = q && sameRequest(formRequest(), sv.quoteFor);
  byId('quote').hidden = !q;
  byId('quote').dataset.fresh = String(Boolean(fresh));
  byId('quote-stale').hidden = !q || fresh;
  if (q) {
    const set = (k, v) => {
      byId('quote').querySelector(`[data-quote="${k}"]`).textContent = v;
    };
    set('price', q.providers.length ? yuan(q.price_fen) : '—');
    set('allowance', yuan(q.allowance_fen));
    set('spent', yuan(q.spent_fen));
    set('subsidy', yuan(q.subsidy_fen));
    set('self', yuan(q.self_paid_fen));
    byId('quote').querySelector('.sv-self').dataset.over = String(q.self_paid_fen > 0);
    const names = new Map(sv.catalogue.providers.map((p) => [p.id, p]));
    byId('quote-providers').replaceChildren(
      ...q.providers.map((id) => {
        const p = names.get(id);
        const price = p?.offers?.find((x) => x.category === q.category)?.price_fen;
        return h('li', { 'data-provider': id }, p?.name || id, price != null ? h('span', { class: 'sv-muted' }, ` ${yuan(price)}`) : null);
      }),
    );
    const none = byId('quote-none');
    none.hidden = q.providers.length > 0;
    none.replaceChildren(...(q.providers.length ? [] : [h('strong', null, whyNoProvider(q.none_because)), h('br'), t('sv_q_none')]));
    byId('agree-row').hidden = !(q.self_paid_fen > 0);
    byId('agree-text').textContent = t('sv_q_agree', { amount: yuan(q.self_paid_fen) });
  }
  const agreed = !q || q.self_paid_fen === 0 || byId('agree').checked;
  const place = byId('new-place');
  place.disabled = !fresh || !agreed || Boolean(sv.newBusy);
  place.textContent = sv.newBusy === 'place' ? t('sv_new_placing') : t('sv_new_place');
  const quote = byId('new-quote');
  quote.disabled = Boolean(sv.newBusy);
  quote.textContent = sv.newBusy === 'quote' ? t('sv_new_quoting') : t('sv_new_quote');
  const error = byId('new-error');
  error.hidden = !sv.newError;
  error.textContent = sv.newError || '';
  const done = byId('new-done');
  done.hidden = !sv.newDone;
  done.textContent = sv.newDone ? t(sv.newDone[0], sv.newDone[1]) : '';
  const source = byId('new-source');
  const sourceText = { service_press: 'sv_new_source_press', welfare_call: 'sv_new_source_welfare' }[sv.source.from];
  source.hidden = !sourceText;
  source.textContent = sourceText ? t(sourceText, { incident: readableId(sv.source.incident) }) : '';
}

function renderCategories() {
  const select = byId('new-category');
  const chosen = select.value;
  select.replaceChildren(...sv.catalogue.categories.map((c) => h('option', { value: c.id }, categoryLabel(c.id))));
  if (chosen) select.value = chosen;
}

function setupForm() {
  const params = new URLSearchParams(location.search);
  if (params.get('elder')) byId('new-elder').value = params.get('elder');
  const incident = Number(params.get('incident'));
  if (Number.isInteger(incident) && incident > 0) sv.source = { from: 'service_press', incident };
  const welfare = Number(params.get('welfare'));
  if (Number.isInteger(welfare) && welfare > 0) sv.source = { from: 'welfare_call', incident: welfare };
  // By default: today, from the next full hour for four hours.
  const start = new Date(serverNow());
  start.setMinutes(0, 0, 0);
  start.setHours(start.getHours() + 1);
  const from = toInputs(start.getTime());
  const to = toInputs(Math.min(start.getTime() + 4 * 3_600_000, new Date(`${from.date}T23:45`).getTime()));
  byId('new-date').value = from.date;
  byId('new-from').value = from.time;
  byId('new-to').value = to.time;
  const form = byId('new-order');
  form.addEventListener('input', () => {
    sv.newDone = null;
    renderNew();
  });
  form.addEventListener('change', () => renderNew());
  form.addEventListener('submit', place);
  byId('new-quote').addEventListener('click', askQuote);
}

// ---------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------

function renderStatic() {
  document.documentElement.lang = htmlLang();
  document.title = t('sv_title');
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  const lang = byId('sv-lang');
  lang.textContent = t('lang_toggle');
  lang.lang = htmlLang(otherLanguage());
  byId('sv-me').textContent = sv.me ? sv.me.name || sv.me.id : '';
  byId('sv-conn').dataset.state = sv.conn;
  byId('sv-conn-text').textContent = t(`sv_conn_${sv.conn}`);
}

function renderAll() {
  renderStatic();
  renderCategories();
  renderBoard();
  renderNew();
  if (sv.dialog) {
    buildDialog();
  }
}

function showNotice(text) {
  const notice = byId('sv-notice');
  notice.textContent = text;
  notice.hidden = false;
  byId('sv').hidden = true;
  document.body.dataset.view = 'notice';
}

function onFrame(msg) {
  if (typeof msg.server_time === 'number') observeServerTime(msg.server_time);
  if (msg.type === 'welcome') {
    sv.me = msg.user;
    if (!sv.langChosen && msg.console?.language) setLanguage(String(msg.console.language).startsWith('en') ? 'en' : 'zh');
    renderAll();
  } else if (msg.type === 'order' && msg.order) {
    if (sv.loading) sv.loading.frames.push(msg.order);
    applyOrder(msg.order);
    if (sv.loaded) renderBoard();
  }
}

async function start() {
  const remembered = rememberedLanguage(LANG_KEY);
  if (remembered) {
    setLanguage(remembered);
    sv.langChosen = true;
  }
  renderStatic();
  byId('sv-lang').addEventListener('click', () => {
    chooseLanguage(otherLanguage(), LANG_KEY);
    sv.langChosen = true;
    renderAll();
  });
  byId('act-close').addEventListener('click', closeDialog);
  byId('act').addEventListener('close', () => {
    sv.dialog = null;
  });
  byId('act-form').addEventListener('input', () => {
    if (!sv.dialogError) return;
    sv.dialogError = null;
    renderDialog();
  });
  byId('act-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!sv.dialog || sv.dialogBusy) return;
    const body = dialogBody();
    if (!body) {
      renderDialog();
      return;
    }
    send(sv.dialog.order, sv.dialog.action, body);
  });

  // The catalogue says whether we are signed in, and as whom may see orders.
  const catalogue = await call('GET', `${API}/catalogue`);
  if (catalogue.status === 401) return signInAgain();
  if (catalogue.status === 403) return showNotice(t('sv_not_dispatcher'));
  if (catalogue.ok) sv.catalogue = catalogue.body;
  else sv.error = failure(catalogue);
  setupForm();
  byId('sv').hidden = false;
  document.body.dataset.view = 'services';
  renderAll();

  const feed = createFeed({
    url: () => socketUrl('/ws'),
    onFrame,
    onStatus: (s) => {
      sv.conn = s === 'open' ? 'open' : s === 'stalled' ? 'stalled' : s === 'waiting' ? 'waiting' : 'connecting';
      renderStatic();
      // Order frames are not numbered: each connection starts from the list.
      if (s === 'open') loadOrders();
    },
    onClose: (ev) => {
      if (ev.code === CLOSE_UNAUTHENTICATED) {
        signInAgain();
        return true;
      }
      if (ev.code === CLOSE_FORBIDDEN) {
        showNotice(t('sv_not_dispatcher'));
        return true;
      }
      return false;
    },
    stallAfterMs: 12_000,
  });
  feed.start();
  // The clock ticks; late orders become late with time, so the board is grouped again.
  let ticks = 0;
  const showClock = () => {
    byId('sv-clock').textContent = formatClock(serverNow());
  };
  showClock();
  setInterval(() => {
    showClock();
    ticks += 1;
    if (ticks % 30 === 0 && sv.loaded) renderBoard();
  }, 1000);
}

whenReady(start);
