// The queue: one table row per open incident, most urgent first, rebuilt only for the
// incidents that changed, at most once per animation frame; the counts above it; and the
// clocks that tick every second. Welfare checks are rendered in the same pass, but into the
// welfare list (welfare.js), never among the emergencies.

import { serverNow } from '../common/clock.js';
import { h } from '../common/dom.js';
import { formatClock, formatCountdown, formatElapsed, parseReadableId, readableId } from '../common/format.js';
import { formatDistance, has, language, t } from '../common/i18n.js';
import { needLabel, renderCallPop, tickCallPop } from './alarm.js';
import { renderPanel } from './detail.js';
import {
  GROUPS,
  alarmLevel,
  callerName,
  callsOf,
  claimHolder,
  compareViews,
  groupOf,
  isEmergency,
  isMine,
  isUnassigned,
  isWelfare,
  kindLabel,
  locationSourceLabel,
  pressMoment,
  priorityOf,
  problemText,
  rings,
  rungLevel,
  rungOf,
  stateLabel,
  whyNobody,
} from './incident.js';
import { callBadge } from './parts.js';
import { dom, state } from './state.js';
import { dropWelfareRow, renderWelfare, resetWelfareRows, setWelfareRow, tickWelfare, welfareRows } from './welfare.js';

// Time left to a deadline ("还剩 0:40"; a dispatcher's rung counts to the next reminder), or
// how far past it ("超时 0:12").
function countdown(ms, rung) {
  if (ms < 0) return t('time_over', { t: formatCountdown(-ms) });
  return t(rung === 'dispatcher' ? 'remind_in' : 'time_left', { t: formatCountdown(ms) });
}

/** The rung's words: which rung, and its own target. */
function rungText(view, rung) {
  switch (rung.kind) {
    case 'offer':
      return rung.of > 0 ? t('rung_offer', { k: rung.k, n: rung.of }) : t('rung_offer_plain', { k: rung.k });
    case 'station':
      return t('rung_station');
    case 'dispatcher':
      // A call nobody has picked up: answer it while it rings, else call back.
      if (view.dispatcher_needed === 'call') return t(rings(view) ? 'rung_answer' : 'rung_call_back');
      return rung.reminders > 0 ? t('rung_dispatcher_reminded', { n: rung.reminders }) : t('rung_dispatcher');
    case 'on_scene':
      return rung.deadline !== null ? t('rung_on_scene', { time: formatClock(rung.deadline).slice(0, 5) }) : t('rung_there');
    case 'there':
      return t('rung_there');
    case 'resolved':
      return t('rung_resolved');
    default:
      return '';
  }
}

function sinceCell(view) {
  const from = pressMoment(view);
  const now = serverNow();
  const rung = rungOf(view);
  const level = rungLevel(rung, now);
  return h(
    'td',
    { class: 'c-since' },
    h(
      'span',
      {
        class: 'timer',
        'data-field': 'since',
        'data-from': from,
        'data-deadline': rung.deadline ?? '',
        'data-span': rung.span,
        'data-missed': rung.missed ? 'true' : 'false',
        'data-age': level,
      },
      formatElapsed(now - from),
    ),
    h(
      'span',
      { class: 'sub target rung', 'data-field': 'target', 'data-rung': rung.kind },
      rungText(view, rung),
      rung.deadline !== null
        ? h('span', { class: 'countdown', 'data-field': 'countdown', 'data-age': level }, ` · ${countdown(rung.deadline - now, rung.kind)}`)
        : null,
    ),
  );
}

const GROUP_ICONS = { needs: '⚠', ladder: '⋯', going: '➜', on_scene: '✚', resolved: '✓' };

// The need's name alone fits the compact row; its title says the whole (and the key).
function alarmChip(alarm) {
  const need = needLabel(alarm.need);
  return h('span', { class: 'alarm-line', 'data-field': 'alarm', title: t('alarm_row_need', { need }) }, need);
}

function kindCell(view) {
  const group = groupOf(view);
  const chips = [
    Number(view.press_count) > 1
      ? h('span', { class: 'presses', 'data-field': 'press-count' }, t('presses', { n: view.press_count }))
      : null,
    view.cancel_requested ? h('span', { class: 'warn-line', 'data-field': 'cancel' }, t('cancel_requested')) : null,
    view.problem ? h('span', { class: 'problem', 'data-field': 'problem' }, t('problem', { text: problemText(view.problem) })) : null,
  ].filter(Boolean);
  return h(
    'td',
    { class: 'c-kind' },
    h(
      'div',
      { class: 'kind-line' },
      h('span', { class: `kind kind-${view.kind}`, 'data-field': 'kind' }, kindLabel(view.kind)),
      state.alarms.has(String(view.id)) && view.state !== 'resolved'
        ? alarmChip(state.alarms.get(String(view.id)))
        : null,
    ),
    h(
      'div',
      { class: `state state-${view.state} group-badge group-${group}`, 'data-field': 'state', 'data-group': group },
      h('span', { class: 'group-icon', 'aria-hidden': 'true' }, GROUP_ICONS[group]),
      ' ',
      stateLabel(view.state),
    ),
    chips.length ? h('div', { class: 'chips-line' }, ...chips) : null,
  );
}

function locationLine(view) {
  const loc = view.location || {};
  const source = String(loc.source ?? '');
  const label = locationSourceLabel(source);
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

/** A row's elder: the name, the age, whether living alone; under it `sub` (the address and
 * the location here, the phone and the address in the welfare list), and a call ringing now
 * or in progress, whatever the incident's kind. */
export function elderCell(view, ...sub) {
  const e = view.elder || {};
  const badge = callBadge(view);
  return h(
    'td',
    { class: 'c-elder' },
    h(
      'div',
      { class: 'elder-name-line' },
      h('span', { class: 'elder-name', 'data-field': 'elder-name' }, callerName(view)),
      typeof e.age === 'number' ? h('span', { class: 'elder-age' }, ` ${t('f_age_value', { n: e.age })}`) : null,
      e.lives_alone === true ? h('span', { class: 'chip chip-alone' }, t('f_lives_alone')) : null,
    ),
    h('div', { class: 'elder-sub', title: e.address || '' }, ...sub),
    badge ? h('div', { class: 'call-line' }, badge) : null,
  );
}

export const addressSpan = (view) => h('span', { class: 'elder-address', 'data-field': 'elder-address' }, view.elder?.address || '');

/** Why nobody holds the job, in words, or null. */
export function nobodyText(why) {
  if (!why) return null;
  if (why.kind === 'lapsed') return t('offers_lapsed', { n: why.made });
  const r = why.reason;
  if (r && r.type === 'nobody_in_range' && Number.isFinite(Number(r.max_distance_m))) {
    return t('nobody_within', { d: formatDistance(Number(r.max_distance_m)) });
  }
  if (r && r.type === 'nobody_qualified') return t('nobody_qualified_short', { n: r.in_range ?? '?' });
  if (r && r.type === 'nobody_free_at_station') return t('nobody_free_station');
  return t('nobody');
}

function emergencyLine(view) {
  const call = view.emergency_call;
  if (call && typeof call === 'object' && call.number) {
    return h(
      'div',
      { class: 'emergency-called', 'data-field': 'emergency-called' },
      call.reference
        ? t('called_ref', { number: call.number, reference: call.reference })
        : t('called', { number: call.number }),
    );
  }
  if (view.ladder && view.ladder.emergency_number && groupOf(view) === 'needs') {
    return h('div', { class: 'emergency-number', 'data-field': 'emergency-number' }, t('should_call', { number: view.ladder.emergency_number }));
  }
  return null;
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
      h(
        'div',
        { class: 'resp-line' },
        // An offer asked of a neighbouring zone, not yet held: nobody's phone has it yet.
        !view.responder
          ? h(
              'span',
              { class: 'sub offered-to' },
              offers[0].asking == null ? t('offered_to') : t('asked_of_zone', { zone: offers[0].asking }),
            )
          : null,
        h('span', { class: 'resp-name', 'data-field': 'responder-name' }, r.name || r.id || '—'),
        ' ',
        h('span', { class: 'resp-distance', 'data-field': 'responder-distance' }, formatDistance(r.distance_m)),
        more ? h('span', { class: 'resp-more', 'data-field': 'offers-more' }, more) : null,
      ),
      emergencyLine(view) ??
        (station ? h('div', { class: 'sub clip' }, t('station_backup', { name: station.name || station.id })) : null),
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
  const why = whyNobody(view);
  let head;
  if (why && why.kind === 'lapsed') {
    head = h('span', { class: 'nobody lapsed', 'data-field': 'offers-lapsed', 'data-offers': why.made }, nobodyText(why));
  } else if (why) {
    head = h('span', { class: 'nobody', 'data-field': 'nobody' }, nobodyText(why));
  } else if (view.state === 'resolved') {
    head = h('span', { class: 'sub' }, t('none'));
  } else if (rings(view) || view.dispatcher_needed === 'call') {
    // A call to pick up (on any incident nobody is sent to), or one nobody picked up.
    head = h('span', { class: 'nobody dispatcher-first', 'data-field': 'dispatcher-first' }, t(rings(view) ? 'dispatcher_answer' : 'dispatcher_call_back'));
  } else {
    head = h('span', { class: 'nobody dispatcher-first', 'data-field': 'dispatcher-first' }, t('dispatcher_first'));
  }
  return h('td', { class: 'c-responder' }, h('div', { class: 'resp-line' }, head), emergencyLine(view) ?? target);
}

export function claimedCell(view) {
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

/** A row's attributes in either list: its classes (with selected and open), the incident,
 * device, kind, state, seq and claim, and the list's own `extra`. */
export function rowAttributes(view, classes, extra) {
  const id = String(view.id);
  if (state.selectedId === id) classes.push('selected');
  if (state.openId === id) classes.push('open');
  return {
    class: classes.join(' '),
    'data-incident-id': view.id,
    'data-device-id': view.device_id,
    'data-kind': view.kind,
    'data-state': view.state,
    'data-seq': view.seq,
    'data-claimed': claimHolder(view) ? 'true' : 'false',
    ...extra,
    tabindex: '-1',
  };
}

function buildRow(view) {
  const id = String(view.id);
  const group = groupOf(view);
  const classes = ['row', `prio-${Math.min(priorityOf(view), 9)}`, `group-${group}`];
  if (isUnassigned(view) && group === 'needs') classes.push(isEmergency(view) ? 'unassigned' : 'unassigned-calm');
  // A resolved incident never flashes, whatever an old flag says.
  if (state.alarms.has(id) && view.state !== 'resolved') classes.push('alarm');
  if (view.emergency_call) classes.push('called');
  const ringing = rings(view);
  if (ringing) classes.push('ringing');
  const level = alarmLevel(view);
  const row = h(
    'tr',
    rowAttributes(view, classes, {
      'data-group': group,
      'data-alarm': state.alarms.get(id)?.level,
      'data-alarm-need': state.alarms.get(id)?.need,
      'data-ringing': ringing ? 'true' : null,
    }),
    sinceCell(view),
    kindCell(view),
    elderCell(view, addressSpan(view), view.elder?.address ? ' · ' : null, locationLine(view)),
    responderCell(view),
    claimedCell(view),
  );
  if (level) row.dataset.alarm = level;
  row.hidden = !matchesFilter(view);
  return row;
}

// ---------------------------------------------------------------------------------------
// Filters and search: which rows show, with counts per group.
// ---------------------------------------------------------------------------------------

/** The queue's filter: a state group, kind, alarm level, station, and free text. */
export const filter = { group: 'all', kind: 'all', alarm: 'all', station: 'all', text: '' };

function searchText(view) {
  const e = view.elder || {};
  const parts = [
    e.name,
    e.id,
    e.phone,
    e.address,
    view.device_id,
    view.station?.name,
    view.station?.id,
    view.responder?.name,
    // A caller's number, as the network gave it.
    ...callsOf(view).map((c) => c.from),
    ...callsOf(view).map((c) => c.to),
  ];
  return parts.filter(Boolean).join('\n').toLowerCase();
}

/** Whether a view matches the words typed in a search box: "#12" or "12" is incident 12,
 * "#1⋅17" or "1-17" zone 1's 17th, as the panel shows it (readableId); anything else is
 * looked for in names, phones, ids, addresses and stations. */
export function matchesText(view, text) {
  const q = text.trim().toLowerCase();
  if (!q) return true;
  const typed = parseReadableId(q);
  if (typed !== null && String(view.id) === String(typed)) return true;
  if (q.startsWith('#')) return false;
  const hay = searchText(view);
  const digits = q.replace(/[\s-]/g, '');
  return hay.includes(q) || Boolean(digits && hay.replace(/[ -]/g, '').includes(digits));
}

export function matchesFilter(view) {
  if (filter.group !== 'all' && groupOf(view) !== filter.group) return false;
  if (filter.kind !== 'all' && view.kind !== filter.kind) return false;
  if (filter.alarm !== 'all') {
    const level = alarmLevel(view);
    if (filter.alarm === 'any' ? !level : level !== filter.alarm) return false;
  }
  if (filter.station !== 'all' && String(view.station?.id ?? '') !== filter.station) return false;
  return matchesText(view, filter.text);
}

function filterActive() {
  return filter.group !== 'all' || filter.kind !== 'all' || filter.alarm !== 'all' || filter.station !== 'all' || filter.text.trim() !== '';
}

/** Applies the filter to every row (after the dispatcher changed it). */
export function applyFilter() {
  for (const [id, row] of rows) {
    const view = state.incidents.get(id);
    if (view) row.hidden = !matchesFilter(view);
  }
  scheduleRender();
}

const KINDS = ['sos', 'fall', 'fire', 'intrusion', 'unreadable', 'service', 'lone_worker', 'call'];

/** A list's search box: `onText` gets what is typed; Escape clears it. */
export function searchBox(id, value, onText) {
  return h('input', {
    type: 'search',
    id,
    class: 'qt-search',
    placeholder: t('search_placeholder'),
    'aria-label': t('search_placeholder'),
    value,
    oninput: (ev) => onText(ev.target.value),
    onkeydown: (ev) => {
      // The console's own keys (a, c, n, s, j, k, w) must not fire while typing here.
      ev.stopPropagation();
      if (ev.key === 'Escape') {
        ev.target.value = '';
        onText('');
        ev.target.blur();
      }
    },
  });
}

/** A row of pill buttons, one pressed at a time, each with a count (`data-count`) that the
 * list fills in: the queue's state groups, the welfare list's reasons. */
export function pillFilter({ label, attribute, values, current, className, text, onPick }) {
  const box = h(
    'div',
    { class: 'qt-groups', role: 'group', 'aria-label': label },
    ...values.map((v) =>
      h(
        'button',
        {
          type: 'button',
          class: `qt-group ${className(v)}`,
          [attribute]: v,
          'aria-pressed': current === v ? 'true' : 'false',
          onclick: () => {
            for (const b of box.querySelectorAll(`[${attribute}]`)) b.setAttribute('aria-pressed', b.getAttribute(attribute) === v ? 'true' : 'false');
            onPick(v);
          },
        },
        h('span', null, text(v)),
        ' ',
        h('span', { class: 'qt-count', 'data-count': v }, '0'),
      ),
    ),
  );
  return box;
}

/** Builds the filter bar once (and again when the language changes). */
export function renderTools() {
  const bar = document.getElementById('queue-tools');
  if (!bar) return;
  const select = (name, options) =>
    h(
      'select',
      {
        class: 'qt-select',
        'data-filter': name,
        'aria-label': t(`filter_${name}`),
        onchange: (ev) => {
          filter[name] = ev.target.value;
          applyFilter();
        },
      },
      ...options.map(([value, label]) => {
        const o = h('option', { value }, label);
        if (filter[name] === value) o.selected = true;
        return o;
      }),
    );
  const groups = pillFilter({
    label: t('filter_group'),
    attribute: 'data-group-filter',
    values: ['all', ...GROUPS],
    current: filter.group,
    className: (g) => `group-${g}`,
    text: (g) => t(`group_${g}`),
    onPick: (g) => {
      filter.group = g;
      applyFilter();
    },
  });
  const stations = [...state.stations.values()].map((st) => [String(st.id), st.name || String(st.id)]);
  const search = searchBox('queue-search', filter.text, (text) => {
    filter.text = text;
    applyFilter();
  });
  bar.replaceChildren(
    groups,
    h(
      'div',
      { class: 'qt-row' },
      search,
      select('kind', [['all', t('filter_all_kinds')], ...KINDS.map((k) => [k, kindLabel(k)])]),
      select('alarm', [
        ['all', t('filter_all_alarms')],
        ['any', t('alarm_any')],
        ['critical', t('alarm_critical')],
        ['urgent', t('alarm_urgent')],
        ['routine', t('alarm_routine')],
      ]),
      select('station', [['all', t('filter_all_stations')], ...stations]),
      h('span', { class: 'qt-shown', id: 'queue-shown', 'data-field': 'shown' }),
    ),
  );
  renderCounts();
}

function renderCounts() {
  const bar = document.getElementById('queue-tools');
  if (!bar) return;
  const counts = { all: 0 };
  for (const g of GROUPS) counts[g] = 0;
  let shown = 0;
  for (const v of state.incidents.values()) {
    if (isWelfare(v)) continue;
    counts.all += 1;
    counts[groupOf(v)] += 1;
    if (matchesFilter(v)) shown += 1;
  }
  for (const el of bar.querySelectorAll('[data-count]')) el.textContent = String(counts[el.dataset.count] ?? 0);
  const info = bar.querySelector('#queue-shown');
  if (info) {
    info.textContent = filterActive() ? t('filter_shown', { n: shown, of: counts.all }) : '';
    info.dataset.shown = String(shown);
  }
  // A station added by the roster after the bar was built gets its option.
  const stationSelect = bar.querySelector('[data-filter="station"]');
  if (stationSelect && stationSelect.options.length !== state.stations.size + 1) renderTools();
}

/** the rendered row of each incident in the emergency queue, by id */
export const rows = new Map();

/** An incident's row, in whichever list it is. */
export const rowOf = (id) => rows.get(String(id)) ?? welfareRows.get(String(id));
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

let toolsLanguage = null;

function render() {
  const tbody = dom.tbody;
  if (toolsLanguage !== language()) {
    toolsLanguage = language();
    renderTools();
  }
  if (state.rebuildAll) {
    rows.clear();
    tbody.replaceChildren();
    resetWelfareRows();
    dirty.clear();
    for (const id of state.incidents.keys()) dirty.add(id);
    state.rebuildAll = false;
  }
  for (const id of dirty) {
    const old = rows.get(id);
    const view = state.incidents.get(id);
    if (!view || isWelfare(view)) {
      if (old) old.remove();
      rows.delete(id);
      if (view) setWelfareRow(view);
      else dropWelfareRow(id);
      continue;
    }
    dropWelfareRow(id);
    const row = buildRow(view);
    // In a flood of arrivals the alarm says enough; a highlight on each would only cost.
    if (state.fresh.has(id) && state.fresh.size <= 20) row.classList.add('fresh');
    if (old) old.replaceWith(row);
    rows.set(id, row);
  }
  dirty.clear();
  state.fresh.clear();

  const ordered = [...state.incidents.values()].filter((v) => !isWelfare(v)).sort(compareViews);
  // The keys move through what shows, in the list shown.
  const welfareOrder = renderWelfare();
  state.order = state.tab === 'welfare' ? welfareOrder : ordered.filter(matchesFilter).map((v) => String(v.id));
  let cursor = tbody.firstElementChild;
  for (const id of ordered.map((v) => String(v.id))) {
    const row = rows.get(id);
    if (row === cursor) cursor = cursor.nextElementSibling;
    else tbody.insertBefore(row, cursor);
  }
  if (state.selectedId && !state.incidents.has(state.selectedId)) state.selectedId = null;

  renderSummary();
  renderCounts();
  if (state.panelDirty) {
    state.panelDirty = false;
    renderPanel();
  }
  renderCallPop();
}

export function renderSummary() {
  let unassigned = 0;
  let open = 0;
  for (const v of state.incidents.values()) {
    if (isWelfare(v)) continue;
    open += 1;
    if (isUnassigned(v)) unassigned += 1;
  }
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
    : t('seq_info', { seq: readableId(state.lastSeq ?? 0), time: formatClock(state.lastUpdate) });
  const flag = state.alarms.size > 0 ? '🔴 ' : unassigned > 0 ? '⚠ ' : '';
  document.title = `${flag}(${open}) ${t('title_short')}`;
  dom.tabCountEmergency.textContent = String(open);
  // On the welfare tab an emergency alarm still shows on the queue's tab, with its count.
  dom.tabEmergency.dataset.alarm = state.alarms.size > 0 ? 'true' : 'false';
  dom.tabAlarm.textContent = state.alarms.size > 0 ? `⚠ ${state.alarms.size}` : '';
  dom.tabAlarm.hidden = state.alarms.size === 0;
}

// Every second, on the second: the wall clock, every press clock, and each rung's own
// countdown and colour (red only when that rung's target is missed).
export function tick() {
  const now = serverNow();
  if (dom.app && !dom.app.hidden) {
    dom.clock.textContent = formatClock(now);
    dom.clock.dateTime = new Date(now).toISOString();
    for (const row of rows.values()) {
      if (row.hidden) continue;
      const cell = row.firstElementChild;
      const timer = cell.firstElementChild;
      const text = formatElapsed(now - Number(timer.dataset.from));
      if (timer.textContent !== text) timer.textContent = text;
      const deadline = timer.dataset.deadline === '' ? null : Number(timer.dataset.deadline);
      const level = rungLevel({ deadline, span: Number(timer.dataset.span), missed: timer.dataset.missed === 'true' }, now);
      if (timer.dataset.age !== level) timer.dataset.age = level;
      const left = deadline === null ? null : cell.querySelector('[data-field="countdown"]');
      if (left) {
        const words = ` · ${countdown(deadline - now, left.parentElement.dataset.rung)}`;
        if (left.textContent !== words) left.textContent = words;
        if (left.dataset.age !== level) left.dataset.age = level;
      }
    }
    tickWelfare(now);
    tickCallPop(now);
  }
  setTimeout(tick, 1000 - (now % 1000) + 5);
}
