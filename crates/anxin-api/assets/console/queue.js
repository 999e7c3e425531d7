// The queue: one table row per open incident, most urgent first, rebuilt only for the
// incidents that changed, at most once per animation frame; the counts above it; and the
// clocks that tick every second.

import { serverNow } from '../common/clock.js';
import { h } from '../common/dom.js';
import { formatClock, formatElapsed } from '../common/format.js';
import { formatDistance, has, t } from '../common/i18n.js';
import { needLabel } from './alarm.js';
import { renderPanel } from './detail.js';
import {
  ageLevel,
  claimHolder,
  compareViews,
  isEmergency,
  isMine,
  isNobodyInRange,
  isUnassigned,
  kindLabel,
  pressMoment,
  priorityOf,
  stateLabel,
  targetOf,
} from './incident.js';
import { dom, state } from './state.js';

function sinceCell(view) {
  const from = pressMoment(view);
  const elapsed = serverNow() - from;
  const target = targetOf(view);
  const targetText = target.kind === 'accept'
    ? t('target_accept', { n: state.targets.accept_s })
    : target.kind === 'on_scene'
      ? t('target_on_scene', { n: state.targets.on_scene_min })
      : '';
  return h(
    'td',
    { class: 'c-since' },
    h(
      'span',
      {
        class: 'timer',
        'data-field': 'since',
        'data-from': from,
        'data-target-ms': target.ms,
        'data-target': target.kind,
        'data-age': ageLevel(elapsed, target),
      },
      formatElapsed(elapsed),
    ),
    h('span', { class: 'sub' }, t('pressed_at', { time: formatClock(from) })),
    targetText ? h('span', { class: 'sub target', 'data-field': 'target' }, targetText) : null,
  );
}

function kindCell(view) {
  const presses = Number(view.press_count) > 1
    ? h('div', { class: 'presses', 'data-field': 'press-count' }, t('presses', { n: view.press_count }))
    : null;
  return h(
    'td',
    { class: 'c-kind' },
    h('span', { class: `kind kind-${view.kind}`, 'data-field': 'kind' }, kindLabel(view.kind)),
    h('div', { class: `state state-${view.state}`, 'data-field': 'state' }, stateLabel(view.state)),
    presses,
    view.cancel_requested ? h('div', { class: 'warn-line', 'data-field': 'cancel' }, t('cancel_requested')) : null,
    view.problem ? h('div', { class: 'problem', 'data-field': 'problem' }, t('problem', { text: view.problem })) : null,
    state.alarms.has(String(view.id)) ? h('div', { class: 'alarm-line', 'data-field': 'alarm' }, t('alarm_row_need', { need: needLabel(state.alarms.get(String(view.id)).need) })) : null,
  );
}

function locationLine(view) {
  const loc = view.location || {};
  const source = loc.source === 'device' || loc.source === 'home' ? loc.source : String(loc.source ?? '');
  const label = source === 'device' ? t('loc_device') : source === 'home' ? t('loc_home') : source;
  const accuracy = source === 'device' && typeof loc.accuracy_m === 'number'
    ? h('span', { class: 'sub', 'data-field': 'accuracy' }, t('accuracy', { d: formatDistance(loc.accuracy_m) }))
    : null;
  let rejected = null;
  if (loc.fix_rejected) {
    const key = `fix_${loc.fix_rejected}`;
    rejected = h(
      'div',
      { class: 'warn-line', 'data-field': 'fix-rejected' },
      has(key) ? t(key) : t('fix_other', { reason: loc.fix_rejected }),
    );
  }
  return h(
    'div',
    { class: 'loc-line', 'data-field': 'location', 'data-source': source },
    h('span', { class: `source source-${source}`, 'data-field': 'location-source' }, label),
    accuracy ? ' ' : null,
    accuracy,
    rejected,
  );
}

function elderCell(view) {
  const e = view.elder || {};
  return h(
    'td',
    { class: 'c-elder' },
    h(
      'div',
      { class: 'elder-name-line' },
      h('span', { class: 'elder-name', 'data-field': 'elder-name' }, e.name || e.id || '—'),
      typeof e.age === 'number' ? h('span', { class: 'elder-age' }, ` ${t('f_age_value', { n: e.age })}`) : null,
      e.lives_alone === true ? h('span', { class: 'chip chip-alone' }, t('f_lives_alone')) : null,
    ),
    h('div', { class: 'elder-address', 'data-field': 'elder-address' }, e.address || ''),
    locationLine(view),
  );
}

function responderCell(view) {
  const station = view.station;
  const offers = Array.isArray(view.offers) ? view.offers : [];
  const r = view.responder || (offers.length ? offers[0].responder : null);
  const more = !view.responder && offers.length > 1 ? ` +${offers.length - 1}` : '';
  if (r) {
    return h(
      'td',
      { class: 'c-responder' },
      !view.responder ? h('div', { class: 'sub offered-to' }, t('offered_to')) : null,
      h(
        'div',
        { class: 'resp-line' },
        h('span', { class: 'resp-name', 'data-field': 'responder-name' }, r.name || r.id || '—'),
        ' ',
        h('span', { class: 'resp-distance', 'data-field': 'responder-distance' }, formatDistance(r.distance_m)),
        more ? h('span', { class: 'resp-more', 'data-field': 'offers-more' }, more) : null,
      ),
      station
        ? h('div', { class: 'sub clip' }, t('station_backup', { name: station.name || station.id }))
        : null,
    );
  }
  const target = station
    ? h(
        'div',
        { class: 'station-line', 'data-field': 'station' },
        t('to_station', { name: station.name || station.id }),
        station.distance_m !== null && station.distance_m !== undefined ? ` · ${formatDistance(station.distance_m)}` : '',
      )
    : h('div', { class: 'station-line', 'data-field': 'station' }, t('no_station'));
  return h(
    'td',
    { class: 'c-responder' },
    isNobodyInRange(view)
      ? h('span', { class: 'nobody', 'data-field': 'nobody' }, t('nobody'))
      : h('span', { class: 'nobody dispatcher-first', 'data-field': 'dispatcher-first' }, t('dispatcher_first')),
    target,
    view.ladder && view.ladder.emergency_number
      ? h('div', { class: 'emergency-number', 'data-field': 'emergency-number' }, `☎ ${view.ladder.emergency_number}`)
      : null,
  );
}

function claimedCell(view) {
  const c = claimHolder(view);
  if (!c) return h('td', { class: 'c-claimed' }, h('span', { class: 'unclaimed', 'data-field': 'claimed-by' }, '—'));
  const mine = isMine(c);
  return h(
    'td',
    { class: 'c-claimed' },
    h(
      'span',
      { class: `claimed ${mine ? 'claimed-mine' : 'claimed-other'}`, 'data-field': 'claimed-by', 'data-claimed-id': c.id, title: c.name || c.id },
      mine ? t('claimed_me') : c.name || c.id,
    ),
  );
}

function buildRow(view) {
  const id = String(view.id);
  const classes = ['row', `prio-${Math.min(priorityOf(view), 9)}`];
  if (isUnassigned(view)) classes.push(isEmergency(view) ? 'unassigned' : 'unassigned-calm');
  if (state.alarms.has(id)) classes.push('alarm');
  if (state.selectedId === id) classes.push('selected');
  if (state.openId === id) classes.push('open');
  return h(
    'tr',
    {
      class: classes.join(' '),
      'data-incident-id': view.id,
      'data-device-id': view.device_id,
      'data-kind': view.kind,
      'data-state': view.state,
      'data-seq': view.seq,
      'data-claimed': claimHolder(view) ? 'true' : 'false',
      'data-alarm': state.alarms.get(id)?.level,
      'data-alarm-need': state.alarms.get(id)?.need,
      tabindex: '-1',
    },
    sinceCell(view),
    kindCell(view),
    elderCell(view),
    responderCell(view),
    claimedCell(view),
  );
}

/** the rendered row of each incident, by id */
export const rows = new Map();
/** ids whose rows are to be rebuilt at the next render */
export const dirty = new Set();

export function scheduleRender() {
  if (state.renderPending) return;
  state.renderPending = true;
  const run = () => {
    state.renderPending = false;
    render();
  };
  if (document.hidden) setTimeout(run, 200);
  else requestAnimationFrame(run);
}

export function markDirty(id) {
  dirty.add(String(id));
  if (state.openId === String(id)) state.panelDirty = true;
  scheduleRender();
}

function render() {
  const tbody = dom.tbody;
  if (state.rebuildAll) {
    rows.clear();
    tbody.replaceChildren();
    dirty.clear();
    for (const id of state.incidents.keys()) dirty.add(id);
    state.rebuildAll = false;
  }
  for (const id of dirty) {
    const old = rows.get(id);
    const view = state.incidents.get(id);
    if (!view) {
      if (old) old.remove();
      rows.delete(id);
      continue;
    }
    const row = buildRow(view);
    // In a flood of arrivals the alarm says enough; a highlight on each would only cost.
    if (state.fresh.has(id) && state.fresh.size <= 20) row.classList.add('fresh');
    if (old) old.replaceWith(row);
    rows.set(id, row);
  }
  dirty.clear();
  state.fresh.clear();

  const ordered = [...state.incidents.values()].sort(compareViews);
  state.order = ordered.map((v) => String(v.id));
  let cursor = tbody.firstElementChild;
  for (const id of state.order) {
    const row = rows.get(id);
    if (row === cursor) cursor = cursor.nextElementSibling;
    else tbody.insertBefore(row, cursor);
  }
  if (state.selectedId && !state.incidents.has(state.selectedId)) state.selectedId = null;

  renderSummary();
  if (state.panelDirty) {
    state.panelDirty = false;
    renderPanel();
  }
}

export function renderSummary() {
  let unassigned = 0;
  for (const v of state.incidents.values()) if (isUnassigned(v)) unassigned += 1;
  const open = state.incidents.size;
  dom.countOpen.textContent = String(open);
  dom.countUnassigned.textContent = String(unassigned);
  dom.countUnassigned.parentElement.dataset.active = unassigned > 0 ? 'true' : 'false';
  dom.countAlarm.textContent = String(state.alarms.size);
  dom.countAlarm.parentElement.dataset.active = state.alarms.size > 0 ? 'true' : 'false';
  dom.empty.hidden = open > 0;
  dom.empty.textContent = state.loaded ? t('empty') : t('waiting');
  dom.table.dataset.loaded = state.loaded ? 'true' : 'false';
  dom.table.dataset.seq = String(state.lastSeq ?? 0);
  dom.seqInfo.textContent = state.lastUpdate === null
    ? ''
    : t('seq_info', { seq: state.lastSeq ?? 0, time: formatClock(state.lastUpdate) });
  const flag = state.alarms.size > 0 ? '🔴 ' : unassigned > 0 ? '⚠ ' : '';
  document.title = `${flag}(${open}) ${t('title_short')}`;
}

// Every second, on the second: the wall clock, every press clock and its colour.
export function tick() {
  const now = serverNow();
  if (dom.app && !dom.app.hidden) {
    dom.clock.textContent = formatClock(now);
    dom.clock.dateTime = new Date(now).toISOString();
    for (const row of rows.values()) {
      const timer = row.firstElementChild.firstElementChild;
      const elapsed = now - Number(timer.dataset.from);
      const text = formatElapsed(elapsed);
      if (timer.textContent !== text) timer.textContent = text;
      const level = ageLevel(elapsed, { ms: Number(timer.dataset.targetMs) });
      if (timer.dataset.age !== level) timer.dataset.age = level;
    }
  }
  setTimeout(tick, 1000 - (now % 1000) + 5);
}

