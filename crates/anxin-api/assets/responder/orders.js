// A service worker's orders on the phone page: offers to their provider, to accept with an
// appointment inside the elder's window or to refuse with a reason; the orders they hold, to
// set off on, check in at the door (with the phone's position; the engine refuses one too far
// from the elder's home and says how far) and check out with what was done. Shown only when
// the server's `hello` carries a `worker` part (a responder whose ledger entry names a
// provider); the server sends a fresh `hello` whenever the worker's orders change, so the
// list is always the engine's.

import { h } from '../common/dom.js';
import { formatPhone } from '../common/format.js';
import { has, t } from '../common/i18n.js';
import { categoryLabel, momentLabel, orderRefusal, orderStateLabel, toInputs, windowLabel } from '../common/services.js';
import { currentPosition } from './location.js';

// The step each held state offers.
const NEXT = { accepted: 'en_route', en_route: 'check_in', on_site: 'check_out' };

/**
 * The worker's panel. `request(frame)` sends an `order` frame and resolves with its `result`
 * (or a failure); `lastFix()` is the location watch's last fix or null; `now()` the server's
 * time; `changed()` asks the page to render again.
 */
export function createOrders({ request, lastFix, now, changed }) {
  const o = {
    /** the server's `worker` part, or null for a responder who works for no provider */
    worker: null,
    /** what the worker typed or chose, by order id, kept across renders */
    drafts: new Map(),
    /** the order an offer is being refused for (the reason box is open) */
    refusing: null,
    /** an action in flight: { id, action } */
    pending: null,
    /** the last refusal or failure: { id, text } */
    error: null,
    /** the last step the server took: { id, action } */
    done: null,
    /** the worker part last drawn, to keep inputs as they are when nothing changed */
    drawn: null,
    root: null,
  };

  function setWorker(worker) {
    o.worker = worker && typeof worker === 'object' ? worker : null;
    const ids = new Set((o.worker?.orders || []).map((w) => w.order.id));
    for (const id of o.drafts.keys()) if (!ids.has(id)) o.drafts.delete(id);
  }

  const draft = (id) => {
    if (!o.drafts.has(id)) o.drafts.set(id, {});
    return o.drafts.get(id);
  };

  async function act(id, action, fields = {}) {
    if (o.pending) return;
    o.pending = { id, action };
    o.error = null;
    o.done = null;
    changed();
    let extra = fields;
    if (action === 'check_in') {
      const at = await currentPosition(lastFix);
      if (at.failure) {
        o.pending = null;
        o.error = { id, text: t(at.failure) };
        changed();
        return;
      }
      extra = { at: { lat: at.lat, lon: at.lon } };
    }
    const result = await request({ type: 'order', order_id: id, action, ...extra });
    o.pending = null;
    if (result.ok) {
      o.done = { id, action };
      if (action === 'refuse') o.refusing = null;
    } else if (result.failure) {
      o.error = { id, text: t(`visit_failure_${result.failure}`) };
    } else {
      o.error = { id, text: orderRefusal(result) };
    }
    changed();
  }

  /** Sends `action` with the text typed as `name`, or asks for it (`missing`). */
  function withText(id, action, name, missing) {
    const text = String(draft(id)[name] || '').trim();
    if (!text) {
      o.error = { id, text: t(missing) };
      changed();
      return;
    }
    act(id, action, { [name]: text });
  }

  function onClick(ev) {
    const b = ev.target.closest('button[data-order-action]');
    if (!b || b.disabled) return;
    const id = Number(b.closest('[data-order-id]').dataset.orderId);
    const d = draft(id);
    switch (b.dataset.orderAction) {
      case 'accept': {
        const at = new Date(d.appointment).getTime();
        if (!Number.isFinite(at)) {
          o.error = { id, text: t('ord_need_time') };
          changed();
          return;
        }
        act(id, 'accept', { appointment_at: at });
        return;
      }
      case 'refuse':
        o.refusing = id;
        o.error = null;
        changed();
        return;
      case 'refuse_back':
        o.refusing = null;
        changed();
        return;
      case 'refuse_send':
        withText(id, 'refuse', 'reason', 'ord_need_reason');
        return;
      case 'check_out':
        withText(id, 'check_out', 'done', 'ord_need_done');
        return;
      default:
        act(id, b.dataset.orderAction);
    }
  }

  function onInput(ev) {
    const input = ev.target.closest('[data-draft]');
    if (!input) return;
    const id = Number(input.closest('[data-order-id]').dataset.orderId);
    draft(id)[input.dataset.draft] = input.value;
  }

  function build(root) {
    o.root = root;
    root.addEventListener('click', onClick);
    root.addEventListener('input', onInput);
    root.addEventListener('change', onInput);
  }

  /** One order's card. */
  function card(w, connected) {
    const order = w.order;
    const id = order.id;
    const d = draft(id);
    const at = now();
    const busy = Boolean(o.pending) || !connected;
    const sending = (action) => o.pending && o.pending.id === id && o.pending.action === action;
    const button = (action, cls, label) =>
      h('button', { type: 'button', class: `btn btn-big ${cls}`, 'data-order-action': action, disabled: busy }, sending(action) ? t('sending') : label);
    const parts = [
      h('div', { class: 'order-head' }, h('span', { class: 'order-cat' }, categoryLabel(order.category)), h('span', { class: 'order-state' }, has(`ord_state_${order.state}`) ? t(`ord_state_${order.state}`) : orderStateLabel(order.state))),
      h('h3', { class: 'order-elder' }, w.elder_name || order.elder_id),
      w.address ? h('p', { class: 'order-address' }, w.address) : null,
      h('p', { class: 'order-when' }, t('ord_window', { w: windowLabel(order.from, order.to, at) })),
      order.appointment_at != null ? h('p', { class: 'order-appointment' }, t('ord_appointment', { m: momentLabel(order.appointment_at, at) })) : null,
      order.notes ? h('p', { class: 'order-notes' }, order.notes) : null,
      w.phone ? h('a', { class: 'btn btn-call order-call', href: `tel:${String(w.phone).replace(/[^\d+]/g, '')}` }, t('call', { phone: formatPhone(w.phone) })) : null,
    ];
    if (order.state === 'offered') {
      if (o.refusing === id) {
        parts.push(
          h('label', { class: 'order-label', for: `ord-reason-${id}` }, t('ord_reason')),
          h('textarea', { id: `ord-reason-${id}`, class: 'order-text', rows: 2, maxlength: 300, 'data-draft': 'reason' }),
          h('div', { class: 'action-row' }, button('refuse_back', 'btn-decline', t('reason_back')), button('refuse_send', 'btn-primary', t('ord_refuse_send'))),
        );
      } else {
        // The appointment: inside the wanted window, from its start (or from now, if it began).
        const min = toInputs(Math.max(Number(order.from), Math.min(Number(order.to), Math.ceil(at / 900_000) * 900_000)));
        const max = toInputs(Number(order.to));
        if (!d.appointment) d.appointment = `${min.date}T${min.time}`;
        parts.push(
          h('label', { class: 'order-label', for: `ord-time-${id}` }, t('ord_appointment_pick')),
          h('input', { id: `ord-time-${id}`, class: 'order-time', type: 'datetime-local', step: 900, min: `${min.date}T${min.time}`, max: `${max.date}T${max.time}`, 'data-draft': 'appointment' }),
          h('div', { class: 'action-row' }, button('refuse', 'btn-decline', t('ord_refuse')), button('accept', 'btn-accept', t('ord_accept'))),
        );
      }
    } else if (NEXT[order.state] === 'check_out') {
      parts.push(
        h('label', { class: 'order-label', for: `ord-done-${id}` }, t('ord_done_label')),
        h('textarea', { id: `ord-done-${id}`, class: 'order-text', rows: 3, maxlength: 500, 'data-draft': 'done' }),
        h('div', { class: 'action-row' }, button('check_out', 'btn-accept', t('ord_check_out'))),
      );
    } else if (NEXT[order.state] === 'check_in') {
      parts.push(
        h('p', { class: 'hint order-radius' }, t('ord_radius', { radius: o.worker.checkin_radius_m })),
        h('div', { class: 'action-row' }, button('check_in', 'btn-primary', sending('check_in') ? t('visit_locating') : t('ord_check_in'))),
      );
    } else if (NEXT[order.state] === 'en_route') {
      parts.push(h('div', { class: 'action-row' }, button('en_route', 'btn-primary', t('ord_en_route'))));
    }
    if (o.error && o.error.id === id) parts.push(h('p', { class: 'error', role: 'alert', 'data-part': 'order-error' }, o.error.text));
    if (o.done && o.done.id === id) parts.push(h('p', { class: 'visit-done', role: 'status' }, t(`ord_done_${o.done.action}`)));
    const li = h('li', { class: 'order-card', 'data-order-id': id, 'data-state': order.state }, parts);
    // Values go in after the nodes exist: a textarea's text and a picker's time.
    for (const input of li.querySelectorAll('[data-draft]')) if (d[input.dataset.draft] !== undefined) input.value = d[input.dataset.draft];
    return li;
  }

  /** Fills the panel in; `connected` says whether actions can go. */
  function render(connected) {
    const root = o.root;
    const w = o.worker;
    root.hidden = !w;
    if (!w) return;
    // Redrawing while the worker types would lose the caret: only when something changed.
    const key = JSON.stringify([w, o.pending, o.error, o.done, o.refusing, connected]);
    if (key === o.drawn) return;
    const focused = document.activeElement?.closest?.('[data-order-id]') && document.activeElement.dataset.draft
      ? { id: document.activeElement.closest('[data-order-id]').dataset.orderId, draft: document.activeElement.dataset.draft }
      : null;
    o.drawn = key;
    root.querySelector('[data-part="provider"]').textContent = t('ord_provider', { provider: w.provider_name || w.provider_id });
    const orders = Array.isArray(w.orders) ? w.orders : [];
    root.querySelector('[data-part="empty"]').hidden = orders.length > 0;
    root.querySelector('[data-part="list"]').replaceChildren(...orders.map((x) => card(x, connected)));
    if (focused) root.querySelector(`[data-order-id="${focused.id}"] [data-draft="${focused.draft}"]`)?.focus();
  }

  /** Draws again whatever changed (a change of language). */
  function redraw(connected) {
    o.drawn = null;
    render(connected);
  }

  function reset() {
    o.worker = null;
    o.drafts.clear();
    o.refusing = null;
    o.pending = null;
    o.error = null;
    o.done = null;
    o.drawn = null;
  }

  return { build, render, redraw, setWorker, reset, state: o };
}
