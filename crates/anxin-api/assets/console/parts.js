// Small pieces the panel and the map card share: label/value rows, phone numbers with a
// copy button (and a call button with the softphone), and toasts.

import { h } from '../common/dom.js';
import { t } from '../common/i18n.js';
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

export function phoneWithCopy(phone) {
  // With a softphone: a button to call it from here.
  const call = callButton(phone);
  return h(
    'span',
    { class: 'phone-copy' },
    h('a', { class: 'phone', href: `tel:${phone}`, 'data-field': 'phone' }, phone),
    ' ',
    h('button', { class: 'btn btn-small', type: 'button', 'data-copy': phone, onclick: () => copyText(phone) }, t('copy')),
    call ? [' ', call] : null,
  );
}
