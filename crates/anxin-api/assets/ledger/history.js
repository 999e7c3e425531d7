// An entry's history: every change to it (when, who, what, and which fields an update
// touched), and for an elder or a device the incidents it had.

import { h } from '../common/dom.js';
import { formatList, has, t } from '../common/i18n.js';
import { pad2, readableId } from '../common/format.js';
import { readHistory, refusal } from './api.js';

/** 2026-12-03 16:04:05 in the browser's time zone. */
export function formatWhen(epochMs) {
  const d = new Date(Number(epochMs));
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** The paths (one level into objects: `profile.contacts`) whose values differ. */
function changedPaths(before, after) {
  const out = [];
  const keys = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  for (const k of keys) {
    const a = before ? before[k] : undefined;
    const b = after ? after[k] : undefined;
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const nested = a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && k !== 'home' && k !== 'position';
    if (nested) out.push(...changedPaths(a, b).map((p) => `${k}.${p}`));
    else out.push(k);
  }
  return out;
}

/** A field's label where the form has one (`profile.station_id` → 所属站点), else its path. */
function fieldName(path) {
  const key = `f_${path.replace(/^profile\./, '').replace(/_id$/, '').replace(/^service_circle_min$/, 'circle')}`;
  return has(key) ? t(key).replace(/[（(].*$/, '').trim() : path;
}

/** Who did it: `staff:kang` → kang; an import keeps its name. */
const actor = (a) => String(a || '').replace(/^staff:/, '');

function changesTable(changes) {
  if (!changes.length) return h('p', { class: 'muted' }, t('history_none'));
  // Listed the latest first: the change before each is the next line.
  const rows = changes.map((c, i) => {
    const older = changes[i + 1];
    const what = c.action === 'updated' && older
      ? formatList(changedPaths(older.body, c.body).filter((p) => p !== 'kind').map(fieldName))
      : null;
    return h('tr', { 'data-action': c.action, 'data-seq': c.seq },
      h('td', null, formatWhen(c.at)),
      h('td', null, actor(c.actor)),
      h('td', null, h('span', { class: `chip action-${c.action}` }, has(`action_${c.action}`) ? t(`action_${c.action}`) : c.action),
        what ? h('span', { class: 'changed-fields' }, ` ${what}`) : null));
  });
  return h('table', { class: 'ledger-table history-table', 'data-history': 'changes' },
    h('thead', null, h('tr', null, h('th', null, t('col_when')), h('th', null, t('col_who')), h('th', null, t('col_what')))),
    h('tbody', null, rows));
}

function incidentsTable(incidents) {
  if (!incidents.length) return h('p', { class: 'muted' }, t('history_none'));
  const label = (prefix, v) => (has(`${prefix}_${v}`) ? t(`${prefix}_${v}`) : v);
  return h('table', { class: 'ledger-table history-table', 'data-history': 'incidents' },
    h('thead', null, h('tr', null, ['col_incident', 'col_kind', 'col_state', 'col_device', 'col_when'].map((k) => h('th', null, t(k))))),
    h('tbody', null, incidents.map((i) => h('tr', { 'data-incident-id': i.id },
      h('td', null, `#${readableId(i.id)}`),
      h('td', null, h('span', { class: `kind kind-${i.kind}` }, label('kind', i.kind))),
      h('td', null, label('state', i.state)),
      h('td', null, i.device_id),
      h('td', null, formatWhen(i.pressed_at))))));
}

/** Fills `box` with the history of an entry, once the server answers. */
export async function renderHistory(box, plural, id) {
  box.replaceChildren(h('p', { class: 'muted' }, t('loading')));
  const answer = await readHistory(plural, id);
  if (!box.isConnected) return;
  if (!answer.ok) {
    box.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, refusal(answer)));
    return;
  }
  const { changes = [], incidents = [] } = answer.body || {};
  const sections = [h('section', { class: 'history', 'data-section': 'changes' }, h('h3', null, t('history_changes')), changesTable(changes))];
  if (plural === 'elders' || plural === 'devices') {
    sections.push(h('section', { class: 'history', 'data-section': 'incidents' }, h('h3', null, t('history_incidents')), incidentsTable(incidents)));
  }
  box.replaceChildren(...sections);
  box.dataset.loaded = 'true';
}
