// The family page's home-care section (issue 23): the elder's open service orders, with
// Confirm (stars and a comment) and Dispute once done and Cancel before the worker is at the
// door, and a small form that quotes an order first, says what the elder would pay, and asks
// for agreement when that is more than nothing.
//
// Orders are not on the family socket: the list is read over REST after each action, when
// the socket (re)opens, when the page becomes visible and every 30 s while it is.

import { serverNow } from '../common/clock.js';
import { byId, h } from '../common/dom.js';
import { readableId } from '../common/format.js';
import { requestJson as api } from '../common/http.js';
import { t } from '../common/i18n.js';
import {
  DEFAULT_CATEGORIES,
  categoryLabel,
  fromInputs,
  momentLabel,
  orderRefusal,
  orderStateLabel,
  toInputs,
  whyNoProvider,
  windowLabel,
  yuan,
} from '../common/services.js';

const POLL_MS = 30_000;
/** Before the worker is at the door, a family member may still call it off. */
const CANCELLABLE = new Set(['offered', 'unmatched', 'accepted', 'en_route']);

const care = {
  /** null until first read */
  orders: null,
  failed: false,
  /** what `orders` was drawn from, to redraw only on a change */
  drawn: '',
  /** {id, action} of the order whose form is open; its typed text and stars */
  acting: null,
  draft: { rating: 0, text: '' },
  /** [key, vars, kind] after an action, per order id */
  notes: new Map(),
  /** the last quote and the form it was for */
  quote: null,
  quotedFor: '',
  formNote: null,
  busy: false,
};

let member = () => null;
let timer = null;

/** Starts the section for the member `who()` returns (null when signed out). */
export function startCare(who) {
  member = who;
  fillCategories();
  const form = byId('care-form');
  form.addEventListener('input', formChanged);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    quote();
  });
  byId('care-place').addEventListener('click', place);
  byId('care-agree').addEventListener('change', renderForm);
  const tomorrow = toInputs(Date.now() + 86_400_000);
  byId('care-date').value = tomorrow.date;
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshCare();
  });
  timer ??= setInterval(() => {
    if (document.visibilityState === 'visible' && member()) refreshCare();
  }, POLL_MS);
}

/** Reads the elder's open orders again. */
export async function refreshCare() {
  if (!member()) return;
  const answer = await api('GET', '/api/v1/family/orders');
  if (answer.status === 200 && Array.isArray(answer.body?.orders)) {
    care.orders = answer.body.orders;
    care.failed = false;
  } else {
    care.failed = true;
  }
  renderCare();
}

/** Forgets the orders (signed out). */
export function clearCare() {
  care.orders = null;
  care.drawn = '';
  care.acting = null;
  care.quote = null;
}

// ---- the form ------------------------------------------------------------------------------

function fillCategories() {
  const select = byId('care-category');
  const chosen = select.value || 'cleaning';
  select.replaceChildren(...DEFAULT_CATEGORIES.map((c) => h('option', { value: c }, categoryLabel(c))));
  select.value = chosen;
}

/** The order the form describes, or null with the reason shown. */
function formRequest(agreed) {
  const m = member();
  const date = byId('care-date').value;
  const from = fromInputs(date, byId('care-from').value);
  const to = fromInputs(date, byId('care-to').value);
  if (!m || !Number.isFinite(from) || !Number.isFinite(to)) return null;
  return {
    elder_id: m.elder_id,
    category: byId('care-category').value,
    from,
    to,
    notes: byId('care-notes').value.trim(),
    source: { from: 'family', contact: m.contact_id },
    self_paid_agreed: agreed,
  };
}

const formKey = (r) => (r ? JSON.stringify([r.category, r.from, r.to, r.notes]) : '');

function formChanged(ev) {
  if (ev.target.id === 'care-agree') return;
  // A quote is for what was asked: anything changed, it must be asked again.
  if (care.quote && formKey(formRequest(false)) !== care.quotedFor) {
    care.quote = null;
    care.formNote = ['care_requote'];
  }
  renderForm();
}

async function quote() {
  const request = formRequest(false);
  if (!request) {
    care.formNote = ['care_need_when', null, 'error'];
    renderForm();
    return;
  }
  care.busy = true;
  care.formNote = ['care_quoting'];
  renderForm();
  const answer = await api('POST', '/api/v1/family/quote', request);
  care.busy = false;
  if (answer.status === 200) {
    care.quote = answer.body;
    care.quotedFor = formKey(request);
    care.formNote = null;
    byId('care-agree').checked = false;
  } else {
    care.quote = null;
    care.formNote = ['refusal', answer.status ? answer.body : { code: 'network' }, 'error'];
  }
  renderForm();
}

async function place() {
  const request = formRequest(byId('care-agree').checked);
  if (!request || !care.quote) return;
  care.busy = true;
  care.formNote = ['care_placing'];
  renderForm();
  const answer = await api('POST', '/api/v1/family/orders', request);
  care.busy = false;
  if (answer.status === 201) {
    care.quote = null;
    care.formNote = ['care_placed', { id: readableId(answer.body.id) }, 'ok'];
    byId('care-notes').value = '';
    byId('care-agree').checked = false;
    refreshCare();
  } else {
    care.formNote = ['refusal', answer.status ? answer.body : { code: 'network' }, 'error'];
  }
  renderForm();
}

const noteText = (note) => (note[0] === 'refusal' ? orderRefusal(note[1]) : t(note[0], note[1]));

function renderForm() {
  const q = care.quote;
  const box = byId('care-quote');
  box.hidden = !q;
  const agreeRow = byId('care-agree-row');
  const agree = byId('care-agree');
  if (q) {
    const line = (key, field, fen) => h('div', { class: 'care-q' }, h('dt', null, t(key)), h('dd', { 'data-quote': field }, yuan(fen)));
    const none = q.providers?.length ? null : h('p', { class: 'hint', 'data-field': 'care-none' }, whyNoProvider(q.none_because), ' ', t('care_none_still'));
    byId('care-quote-lines').replaceChildren(
      line('care_q_price', 'price', q.price_fen),
      line('care_q_allowance_left', 'left', Math.max(0, q.allowance_fen - q.spent_fen)),
      line('care_q_subsidy', 'subsidy', q.subsidy_fen),
      line('care_q_self', 'self', q.self_paid_fen),
    );
    byId('care-quote-none').replaceChildren(...(none ? [none] : []));
    agreeRow.hidden = !(q.self_paid_fen > 0);
    byId('care-agree-text').textContent = t('care_agree', { amount: yuan(q.self_paid_fen) });
  } else {
    agreeRow.hidden = true;
  }
  const place = byId('care-place');
  place.hidden = !q;
  place.disabled = care.busy || !q || (q.self_paid_fen > 0 && !agree.checked);
  byId('care-quote-btn').disabled = care.busy;
  const note = byId('care-form-note');
  note.hidden = !care.formNote;
  note.className = `note ${care.formNote?.[2] || ''}`;
  note.textContent = care.formNote ? noteText(care.formNote) : '';
}

// ---- the orders ----------------------------------------------------------------------------

async function act(order, body, done) {
  care.notes.set(order.id, ['care_sending', null, '']);
  renderCare(true);
  const answer = await api('POST', `/api/v1/family/orders/${order.id}`, body);
  if (answer.status === 204) {
    care.acting = null;
    care.draft = { rating: 0, text: '' };
    care.notes.set(order.id, [done, { id: readableId(order.id) }, 'ok']);
    await refreshCare();
  } else {
    care.notes.set(order.id, ['refusal', answer.status ? answer.body : { code: 'network' }, 'error']);
  }
  renderCare(true);
}

function open(order, action) {
  care.acting = { id: order.id, action };
  care.draft = { rating: 0, text: '' };
  care.notes.delete(order.id);
  renderCare(true);
  byId(`care-text-${order.id}`)?.focus();
}

/** The open form under an order: stars and a comment, or a reason. */
function actionForm(o) {
  const { action } = care.acting;
  const stars =
    action === 'confirm'
      ? h(
          'fieldset',
          { class: 'stars', 'data-field': 'stars' },
          h('legend', null, t('care_rating')),
          [1, 2, 3, 4, 5].map((n) =>
            h(
              'button',
              {
                type: 'button',
                class: `star${n <= care.draft.rating ? ' on' : ''}`,
                'data-rating': n,
                'aria-pressed': n === care.draft.rating ? 'true' : 'false',
                'aria-label': t('care_stars', { n }),
                onclick: () => {
                  care.draft.rating = n;
                  care.notes.delete(o.id);
                  renderCare(true);
                },
              },
              '★',
            ),
          ),
        )
      : null;
  const label = { confirm: 'care_comment', dispute: 'care_dispute_reason', cancel: 'care_cancel_reason' }[action];
  return h(
    'form',
    {
      class: 'care-act',
      'data-field': 'care-act',
      'data-action': action,
      novalidate: true,
      onsubmit: (ev) => {
        ev.preventDefault();
        const text = care.draft.text.trim();
        if (action === 'confirm' && !care.draft.rating) {
          care.notes.set(o.id, ['care_need_rating', null, 'error']);
        } else if (action !== 'confirm' && !text) {
          care.notes.set(o.id, ['care_need_reason', null, 'error']);
        } else if (action === 'confirm') {
          act(o, { action, rating: care.draft.rating, comment: text }, 'care_done_confirm');
          return;
        } else {
          act(o, { action, reason: text }, `care_done_${action}`);
          return;
        }
        renderCare(true);
      },
    },
    stars,
    h('label', { for: `care-text-${o.id}` }, t(label)),
    h('textarea', {
      id: `care-text-${o.id}`,
      rows: 2,
      oninput: (ev) => {
        care.draft.text = ev.target.value;
      },
    }),
    h(
      'div',
      { class: 'eta-actions' },
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'care-send' }, t(`care_send_${action}`)),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-secondary',
          onclick: () => {
            care.acting = null;
            renderCare(true);
          },
        },
        t('care_back'),
      ),
    ),
  );
}

function orderCard(o) {
  const now = serverNow();
  const accepted = Boolean(o.accepted_at);
  const when = o.appointment_at ? t('care_appointment', { m: momentLabel(o.appointment_at, now) }) : t('care_window', { w: windowLabel(o.from, o.to, now) });
  const who = o.provider_name ? (o.worker_name ? `${o.provider_name} · ${o.worker_name}` : o.provider_name) : null;
  const acting = care.acting?.id === o.id;
  const button = (action, key, cls) =>
    h('button', { type: 'button', class: `btn ${cls}`, 'data-order-action': action, onclick: () => open(o, action) }, t(key));
  const buttons = acting
    ? null
    : o.state === 'done'
      ? [button('confirm', 'care_confirm', 'btn-primary'), button('dispute', 'care_dispute', 'btn-secondary')]
      : CANCELLABLE.has(o.state)
        ? [button('cancel', 'care_cancel', 'btn-secondary')]
        : null;
  const note = care.notes.get(o.id);
  return h(
    'li',
    { class: `care-order state-${o.state}`, 'data-order-id': o.id, 'data-state': o.state },
    h('div', { class: 'care-head' }, h('span', { class: 'care-cat', 'data-field': 'category' }, categoryLabel(o.category)), h('span', { class: 'care-state', 'data-field': 'state' }, orderStateLabel(o.state))),
    h('p', { class: 'care-when', 'data-field': 'when' }, when),
    who ? h('p', { class: 'care-who', 'data-field': 'provider' }, who) : o.state === 'unmatched' ? h('p', { class: 'hint' }, t('care_unmatched')) : null,
    accepted
      ? h('p', { class: 'care-money', 'data-field': 'money' }, t('care_money', { price: yuan(o.price_fen), subsidy: yuan(o.subsidy_fen), self: yuan(o.self_paid_fen) }))
      : null,
    o.done ? h('p', { class: 'care-done', 'data-field': 'done' }, t('care_done_what', { text: o.done })) : null,
    o.dispute ? h('p', { class: 'care-dispute', 'data-field': 'dispute' }, t('care_dispute_text', { text: o.dispute })) : null,
    buttons ? h('div', { class: 'care-buttons' }, buttons) : null,
    acting ? actionForm(o) : null,
    note ? h('p', { class: `note ${note[2]}`, 'data-field': 'care-note', role: 'status' }, noteText(note)) : null,
  );
}

/** Draws the list; unless `force`, only when the orders changed (a poll keeps what is typed). */
export function renderCare(force = false) {
  const list = byId('care-orders');
  if (!list) return;
  const empty = byId('care-empty');
  const drawn = JSON.stringify(care.orders);
  if (force || drawn !== care.drawn) {
    care.drawn = drawn;
    const orders = [...(care.orders || [])].sort((a, b) => (a.appointment_at || a.from) - (b.appointment_at || b.from));
    // A note stays under an order that left the list (confirmed, cancelled) as a line of its own.
    const gone = [...care.notes.entries()].filter(([id]) => !orders.some((o) => o.id === id));
    const typed = care.acting ? byId(`care-text-${care.acting.id}`) : null;
    const focused = typed && document.activeElement === typed;
    list.replaceChildren(
      ...orders.map(orderCard),
      ...gone.map(([id, note]) => h('li', { class: 'care-order gone', 'data-order-id': id }, h('p', { class: `note ${note[2]}`, 'data-field': 'care-note', role: 'status' }, noteText(note)))),
    );
    const again = care.acting ? byId(`care-text-${care.acting.id}`) : null;
    if (again) {
      again.value = care.draft.text;
      if (focused) again.focus();
    }
  }
  empty.hidden = !(care.failed || (care.orders && care.orders.length === 0));
  empty.textContent = care.failed ? t('care_failed') : t('care_empty');
}

/** Words again after the language changed. */
export function relabelCare() {
  fillCategories();
  renderCare(true);
  renderForm();
}
