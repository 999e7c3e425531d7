// Small pieces the panel and the map card share: label/value rows, phone numbers with a
// copy button (and a Call button with the softphone), toasts, and the badge of a call
// ringing or in progress.

import { h } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { answeredByName, callNumber, callsOf, isOutbound, isRinging, isTalking } from './incident.js';
import { callButton } from './phone.js';
import { dom } from './state.js';

export function toast(text, kind = 'info') {
  const node = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  dom.toasts.append(node);
  setTimeout(() => node.remove(), kind === 'error' ? 8000 : 4000);
  while (dom.toasts.childElementCount > 5) dom.toasts.firstElementChild.remove();
}

export function kv(label, value, attrs) {
  if (value === null || value === undefined || value === '') return null;
  return h('div', { class: 'kv-row', ...(attrs || {}) }, h('dt', null, label), h('dd', null, value));
}

/** Copies `text`, saying `done` (by default, what was copied) or that it could not. */
export async function copyText(text, done = null) {
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      ok = true;
    }
  } catch {
    ok = false;
  }
  if (!ok) {
    const area = h('textarea', { class: 'copy-buffer', readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
  }
  toast(ok ? done || t('copied', { text }) : t('copy_failed', { text }), ok ? 'ok' : 'error');
}

/** A number to dial, with a button that copies it and, with a softphone, one that calls it
 * from here; `shown` is how it reads (as given). */
export function phoneWithCopy(phone, shown = phone) {
  const call = callButton(phone);
  return h(
    'span',
    { class: 'phone-copy' },
    h('a', { class: 'phone', href: `tel:${phone}`, 'data-field': 'phone' }, shown),
    ' ',
    h('button', { class: 'btn btn-small', type: 'button', 'data-copy': phone, onclick: () => copyText(phone) }, t('copy')),
    call ? [' ', call] : null,
  );
}

/** The telephone that shakes while a call rings (a glyph the CJK fonts have; an emoji may
 * have no font on a centre's machine). */
export const ringIcon = () => h('span', { class: 'ring-icon', 'aria-hidden': 'true' }, '☎');

/** The badge of an incident whose call rings now, with the caller's number (the queue's row,
 * the panel's head), or of a call in progress, with who is on it; null when no call is live. */
export function callBadge(view) {
  const calls = callsOf(view);
  const ringing = calls.filter(isRinging);
  if (ringing.length) {
    const last = ringing[ringing.length - 1];
    return h(
      'span',
      { class: 'call-badge ringing', 'data-field': 'ringing', 'data-call-id': last.call_id, title: t('ringing_title', { number: callNumber(last) }) },
      ringIcon(),
      ' ',
      t('ringing'),
      ' ',
      h('span', { class: 'call-number' }, callNumber(last)),
    );
  }
  const talking = calls.filter(isTalking);
  if (talking.length) {
    const last = talking[talking.length - 1];
    return h(
      'span',
      { class: 'call-badge talking', 'data-field': 'call-live', 'data-call-id': last.call_id },
      h('span', { 'aria-hidden': 'true' }, '☎'),
      ' ',
      // A call out: the dispatcher who placed it is on it.
      t('call_talking', { name: answeredByName(isOutbound(last) ? last.from : last.answered_by) }),
    );
  }
  return null;
}
