// Bulk acknowledge, for a surge: one button by the 待确认 count opens a confirmation that
// says how many alarms of which needs it will acknowledge (all of them, or one level's or
// one need's), then sends one acknowledge per incident, each naming the alarm shown, and
// says how many the engine took and how many it refused (an alarm raised again meanwhile
// stays flagged).

import { h } from '../common/dom.js';
import { formatList, t } from '../common/i18n.js';
import { acknowledge } from './actions.js';
import { LEVELS, needLabel } from './alarm.js';
import { toast } from './parts.js';
import { dom, state } from './state.js';

// Acknowledgements in flight at once: enough to clear hundreds in seconds, few enough that
// the server's answers to other requests are not queued behind them.
const IN_FLIGHT = 16;

let dialog = null;
let busy = false;

function scopes() {
  const byLevel = new Map();
  const byNeed = new Map();
  for (const a of state.alarms.values()) {
    byLevel.set(a.level, (byLevel.get(a.level) || 0) + 1);
    byNeed.set(a.need, (byNeed.get(a.need) || 0) + 1);
  }
  const list = [{ value: 'all', label: t('bulk_scope_all', { n: state.alarms.size }) }];
  for (const level of LEVELS) {
    if (byLevel.has(level)) list.push({ value: `level:${level}`, label: t('bulk_scope_level', { level: t(`alarm_level_${level}`), n: byLevel.get(level) }) });
  }
  for (const [need, n] of byNeed) list.push({ value: `need:${need}`, label: t('bulk_scope_need', { need: needLabel(need), n }) });
  return list;
}

function chosen(scope) {
  const out = [];
  for (const [id, a] of state.alarms) {
    if (scope === 'all' || scope === `level:${a.level}` || scope === `need:${a.need}`) out.push([id, a]);
  }
  return out;
}

function describe(list) {
  const byNeed = new Map();
  for (const [, a] of list) byNeed.set(a.need, (byNeed.get(a.need) || 0) + 1);
  const needs = formatList([...byNeed].map(([need, n]) => t('bulk_need_count', { need: needLabel(need), n }))) || '—';
  return t('bulk_confirm_text', { n: list.length, needs });
}

function ensureDialog() {
  if (dialog) return dialog;
  const select = h('select', { name: 'scope', 'data-field': 'bulk-scope' });
  const summary = h('p', { class: 'bulk-summary', 'data-field': 'bulk-summary' });
  const confirm = h('button', { class: 'btn btn-alarm', type: 'submit', 'data-action': 'bulk-confirm' });
  const cancel = h('button', { class: 'btn', type: 'button', 'data-action': 'bulk-cancel', onclick: () => dialog.close() });
  const title = h('h2', null);
  const scopeLabel = h('span', null);
  const form = h(
    'form',
    { method: 'dialog', class: 'bulk-form' },
    title,
    h('label', { class: 'field' }, scopeLabel, select),
    summary,
    h('div', { class: 'form-buttons' }, confirm, cancel),
  );
  dialog = h('dialog', { id: 'bulk-ack', class: 'shortcuts bulk-dialog', 'aria-labelledby': 'bulk-ack-title' }, form);
  title.id = 'bulk-ack-title';
  const refresh = () => {
    const list = chosen(select.value);
    summary.textContent = describe(list);
    confirm.textContent = t('bulk_confirm_button', { n: list.length });
    confirm.disabled = list.length === 0 || busy;
  };
  dialog.refresh = () => {
    title.textContent = t('bulk_title');
    scopeLabel.textContent = t('bulk_scope');
    cancel.textContent = t('cancel_form');
    const keep = select.value;
    const options = scopes();
    select.replaceChildren(...options.map((o) => h('option', { value: o.value }, o.label)));
    select.value = options.some((o) => o.value === keep) ? keep : 'all';
    refresh();
  };
  select.addEventListener('change', refresh);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const list = chosen(select.value);
    if (list.length === 0 || busy) return;
    run(list);
  });
  document.body.append(dialog);
  return dialog;
}

async function run(list) {
  busy = true;
  dialog.refresh();
  let ok = 0;
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const [id] = list[next];
      next += 1;
      // The alarm shown when the dispatcher confirmed; one raised since is refused, not silenced.
      const result = await acknowledge(id, { quiet: true });
      if (result && result.ok) ok += 1;
      else failed += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, list.length) }, worker));
  busy = false;
  if (dialog.open) dialog.close();
  toast(failed ? t('bulk_done_failed', { ok, failed }) : t('bulk_done', { ok }), failed ? 'error' : 'ok');
}

/** Opens the confirmation (nothing happens before the dispatcher confirms). */
export function openBulkAck() {
  if (state.alarms.size === 0) return;
  ensureDialog().refresh();
  if (!dialog.open) dialog.showModal();
}

/** The button by the count: there, and enabled, while any alarm is up. */
export function renderBulkButton() {
  if (!dom.countAlarm) return;
  if (!dom.bulkAck) {
    dom.bulkAck = h('button', { id: 'bulk-ack-button', class: 'btn btn-small bulk-ack', type: 'button', 'data-action': 'bulk-ack', onclick: openBulkAck });
    dom.countAlarm.closest('dl').after(dom.bulkAck);
  }
  dom.bulkAck.textContent = t('bulk_button');
  dom.bulkAck.disabled = state.alarms.size === 0;
  if (dialog && dialog.open && !busy) dialog.refresh();
}
