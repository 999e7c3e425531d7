// The welfare list: welfare checks (kind `welfare`: a device gone silent, switched off or low
// on battery) wait here, behind a tab of their own beside the emergency queue, so that
// somebody phones the elder or the family when the emergencies allow. They never sound,
// never flash and never count among the emergencies (alarm.js, queue.js). A row says whose
// device it is, why in words, how long ago the check opened, the nearest station and who
// has claimed it; a click opens the incident's panel as for any other incident. The engine
// closes a check by itself when the device is heard again or charged, and its row goes.
//
// The welfare programme's scheduled calls and visits are listed here too, timed from when
// they fell due (their `pressed_at`: earlier than they opened if the centre was down then).
// One still open `programme.overdue_after_h` past that (the welcome frame says how long) is
// overdue: a red chip on its row, and a count in the list's tab and its tools.

import { serverNow } from '../common/clock.js';
import { h } from '../common/dom.js';
import { formatClock } from '../common/format.js';
import { language, t } from '../common/i18n.js';
import { claimHolder, isOverdue, isScheduled, stateLabel, welfareReasonLabel } from './incident.js';
import { addressSpan, claimedCell, elderCell, markDirty, matchesText, pillFilter, rowAttributes, scheduleRender, searchBox } from './queue.js';
import { WELFARE_REASONS, dom, state } from './state.js';

/** the rendered row of each welfare check, by id */
export const welfareRows = new Map();

/** The welfare list's own filter: a reason, and words typed in its search box. */
export const welfareFilter = { reason: 'all', text: '' };

const REASON_RANK = Object.fromEntries(WELFARE_REASONS.map((r, i) => [r, i]));
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** How long ago, in words a dispatcher reads at a glance ("12 分钟前", "3 小时 5 分钟前"). */
export function agoText(ms) {
  const span = Math.max(0, ms);
  if (span < MINUTE) return t('ago_now');
  if (span < HOUR) return t('ago_min', { n: Math.floor(span / MINUTE) });
  if (span < DAY) return t('ago_hours', { h: Math.floor(span / HOUR), m: Math.floor((span % HOUR) / MINUTE) });
  return t('ago_days', { d: Math.floor(span / DAY), h: Math.floor((span % DAY) / HOUR) });
}

// Devices that cannot call first (silent, switched off), then low batteries; the oldest
// first within each; a resolved check waits below the rest to be closed.
function compareWelfare(a, b) {
  const resolved = (v) => (v.state === 'resolved' ? 1 : 0);
  const rank = (v) => REASON_RANK[v.welfare] ?? WELFARE_REASONS.length;
  return (
    resolved(a) - resolved(b) ||
    rank(a) - rank(b) ||
    Number(a.opened_at) - Number(b.opened_at) ||
    String(a.id).localeCompare(String(b.id), 'en', { numeric: true })
  );
}

function matchesWelfare(view) {
  if (welfareFilter.reason !== 'all' && view.welfare !== welfareFilter.reason) return false;
  return matchesText(view, welfareFilter.text);
}

/** Nobody has claimed it or acknowledged it yet: the engine's alarm is still up. */
const unseen = (view) => Boolean(view.alarm) && view.state !== 'resolved' && !claimHolder(view);

function sinceCell(view) {
  const scheduled = isScheduled(view);
  const from = Number(scheduled ? view.pressed_at : view.opened_at);
  const time = formatClock(from).slice(0, 5);
  return h(
    'td',
    { class: 'c-since' },
    h('span', { class: 'ago', 'data-field': 'ago', 'data-from': from }, agoText(serverNow() - from)),
    h('span', { class: 'sub' }, t(scheduled ? 'welfare_due_at' : 'welfare_opened_at', { time })),
  );
}

function reasonCell(view) {
  const reason = view.welfare || 'unknown';
  let line;
  if (view.state === 'resolved') line = stateLabel(view.state);
  else if (unseen(view)) line = t('welfare_new');
  else line = t('welfare_to_call');
  const overdue = isOverdue(view)
    ? h('span', { class: 'overdue-chip', 'data-field': 'overdue', title: t('welfare_overdue_title', { h: state.targets.programme_overdue_h }) }, t('welfare_overdue'))
    : null;
  return h(
    'td',
    { class: 'c-reason' },
    h('span', { class: `reason-chip reason-${reason}`, 'data-field': 'reason' }, welfareReasonLabel(view.welfare)),
    overdue ? ' ' : null,
    overdue,
    h('div', { class: `welfare-state${unseen(view) ? ' welfare-new' : ''}`, 'data-field': 'state' }, line),
  );
}

function stationCell(view) {
  const st = view.station;
  return h(
    'td',
    { class: 'c-station' },
    h('div', { class: 'station-name', 'data-field': 'station', title: st ? st.name || st.id : '' }, st ? st.name || st.id : t('no_station_short')),
    st?.phone ? h('div', { class: 'sub' }, st.phone) : null,
  );
}

function buildRow(view) {
  const classes = ['row', 'welfare-row'];
  if (unseen(view)) classes.push('unseen');
  if (view.state === 'resolved') classes.push('resolved');
  if (isOverdue(view)) classes.push('overdue');
  const row = h(
    'tr',
    rowAttributes(view, classes, {
      'data-welfare': view.welfare ?? '',
      'data-unseen': unseen(view) ? 'true' : 'false',
      'data-overdue': isOverdue(view) ? 'true' : 'false',
    }),
    sinceCell(view),
    reasonCell(view),
    // The phone first: a welfare check is a call to make.
    elderCell(
      view,
      view.elder?.phone ? h('span', { class: 'elder-phone', 'data-field': 'elder-phone' }, view.elder.phone) : null,
      view.elder?.phone && view.elder?.address ? ' · ' : null,
      addressSpan(view),
    ),
    stationCell(view),
    claimedCell(view),
  );
  row.hidden = !matchesWelfare(view);
  return row;
}

/** Builds (or rebuilds) a welfare check's row; the next render puts it in its place. */
export function setWelfareRow(view) {
  const id = String(view.id);
  const row = buildRow(view);
  const old = welfareRows.get(id);
  if (old) old.replaceWith(row);
  welfareRows.set(id, row);
}

export function dropWelfareRow(id) {
  const old = welfareRows.get(String(id));
  if (old) old.remove();
  welfareRows.delete(String(id));
}

export function resetWelfareRows() {
  welfareRows.clear();
  dom.welfareBody?.replaceChildren();
}

function applyWelfareFilter() {
  for (const [id, row] of welfareRows) {
    const view = state.incidents.get(id);
    if (view) row.hidden = !matchesWelfare(view);
  }
  scheduleRender();
}

/** The reasons with their counts, and a search box; built again when the language changes. */
function renderTools() {
  const bar = dom.welfareTools;
  const reasons = pillFilter({
    label: t('welfare_filter_reason'),
    attribute: 'data-reason-filter',
    values: ['all', ...WELFARE_REASONS],
    current: welfareFilter.reason,
    className: () => 'welfare-reason-filter',
    text: (r) => (r === 'all' ? t('group_all') : welfareReasonLabel(r)),
    onPick: (r) => {
      welfareFilter.reason = r;
      applyWelfareFilter();
    },
  });
  const search = searchBox('welfare-search', welfareFilter.text, (text) => {
    welfareFilter.text = text;
    applyWelfareFilter();
  });
  const overdue = h('span', { class: 'overdue-count', 'data-field': 'overdue-count', hidden: true });
  bar.replaceChildren(reasons, h('div', { class: 'qt-row' }, search, overdue, h('span', { class: 'qt-shown welfare-note' }, t('welfare_note'))));
}

let toolsLanguage = null;

/** Puts the welfare rows in order and updates the counts; returns the ids shown, in order. */
export function renderWelfare() {
  if (!dom.welfareBody) return [];
  if (toolsLanguage !== language()) {
    toolsLanguage = language();
    renderTools();
  }
  const views = [...state.incidents.values()].filter((v) => welfareRows.has(String(v.id))).sort(compareWelfare);
  let cursor = dom.welfareBody.firstElementChild;
  const counts = { all: views.length };
  for (const r of WELFARE_REASONS) counts[r] = 0;
  let unseenCount = 0;
  let overdueCount = 0;
  const now = serverNow();
  for (const view of views) {
    const row = welfareRows.get(String(view.id));
    if (row === cursor) cursor = cursor.nextElementSibling;
    else dom.welfareBody.insertBefore(row, cursor);
    if (view.welfare in counts) counts[view.welfare] += 1;
    if (unseen(view)) unseenCount += 1;
    if (isOverdue(view, now)) overdueCount += 1;
  }
  for (const el of dom.welfareTools.querySelectorAll('[data-count]')) el.textContent = String(counts[el.dataset.count] ?? 0);
  dom.tabCountWelfare.textContent = String(views.length);
  dom.tabWelfare.dataset.unseen = unseenCount > 0 ? 'true' : 'false';
  dom.tabWelfare.title = t('welfare_tab_title', { n: views.length, u: unseenCount });
  // Overdue programme work, counted where the dispatcher looks: the tab and the list's tools.
  dom.tabOverdueWelfare.hidden = overdueCount === 0;
  dom.tabOverdueWelfare.textContent = t('welfare_overdue_n', { n: overdueCount });
  dom.tabOverdueWelfare.dataset.count = String(overdueCount);
  const tools = dom.welfareTools.querySelector('[data-field="overdue-count"]');
  if (tools) {
    tools.hidden = overdueCount === 0;
    tools.textContent = t('welfare_overdue_tasks', { n: overdueCount });
    tools.dataset.count = String(overdueCount);
  }
  dom.welfareEmpty.hidden = views.length > 0;
  dom.welfareEmpty.textContent = state.loaded ? t('welfare_empty') : t('waiting');
  dom.welfareTable.dataset.count = String(views.length);
  // The footer says how the list shown is ordered.
  const legend = document.getElementById('foot-legend');
  if (legend) legend.textContent = t(state.tab === 'welfare' ? 'legend_welfare' : 'legend');
  return views.filter(matchesWelfare).map((v) => String(v.id));
}

/** Every second: how long ago each shown check opened (the words change once a minute), and
 * a task that has just become overdue is marked (its row built again, the counts redone). */
export function tickWelfare(now) {
  let becameOverdue = false;
  for (const [id, row] of welfareRows) {
    const view = state.incidents.get(id);
    if (view && (row.dataset.overdue === 'true') !== isOverdue(view, now)) {
      setWelfareRow(view);
      becameOverdue = true;
    }
  }
  if (becameOverdue) scheduleRender();
  if (state.tab !== 'welfare') return;
  for (const row of welfareRows.values()) {
    if (row.hidden) continue;
    const ago = row.firstElementChild.firstElementChild;
    const text = agoText(now - Number(ago.dataset.from));
    if (ago.textContent !== text) ago.textContent = text;
  }
}

/** Shows the emergency queue or the welfare list beside the map. */
export function showTab(tab) {
  state.tab = tab === 'welfare' ? 'welfare' : 'emergency';
  const welfare = state.tab === 'welfare';
  dom.queuePanel.hidden = welfare;
  dom.welfarePanel.hidden = !welfare;
  dom.tabEmergency.setAttribute('aria-selected', welfare ? 'false' : 'true');
  dom.tabWelfare.setAttribute('aria-selected', welfare ? 'true' : 'false');
  dom.layout.dataset.tab = state.tab;
  // The keys move through the list shown.
  if (state.selectedId) markDirty(state.selectedId);
  state.selectedId = null;
  scheduleRender();
}
