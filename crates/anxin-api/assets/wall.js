// Anxin supervisors' wallboard (/console/wall): the centre at a glance on a wall screen, read
// from across a room. It opens the console's feed (/ws) as the signed-in supervisor: the open
// incidents (snapshot and deltas) give the emergencies by state, nobody going and the oldest
// waiting; the roster gives each station's responders; the `wallboard` frame, which the
// server sends supervisors alone, gives the day so far against the standards, each
// dispatcher's day and the devices offline. Sign-in is the console's: without a session the
// page sends the browser there, and the console sends a supervisor back here.

import { observeServerTime, serverNow } from './common/clock.js';
import { byId, h, whenReady } from './common/dom.js';
import { createFeed, socketUrl } from './common/feed.js';
import { formatClock, pad2, readableId } from './common/format.js';
import { chooseLanguage, defineStrings, htmlLang, otherLanguage, rememberedLanguage, setLanguage, t } from './common/i18n.js';
import { LANG_KEY } from './console/state.js';
import { CONSOLE_STRINGS } from './console/strings.js';
import { WALL_STRINGS } from './wall/strings.js';

defineStrings(CONSOLE_STRINGS);
defineStrings(WALL_STRINGS);

const EMERGENCY = new Set(['sos', 'fall', 'fire', 'intrusion']);
const ENDED = new Set(['closed', 'cancelled', 'false_alarm']);
// Nobody going yet: the ladder or a dispatcher still has it.
const WAITING = new Set(['offered', 'station_alerted', 'awaiting_dispatcher']);
// The state groups shown, in the order of an incident's life.
const GROUPS = [
  ['offered', ['offered']],
  ['station_alerted', ['station_alerted']],
  ['awaiting_dispatcher', ['awaiting_dispatcher']],
  ['going', ['accepted', 'en_route']],
  ['on_scene', ['on_scene']],
  ['resolved', ['resolved']],
];
const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;

const wall = {
  me: null,
  staff: new Map(),
  online: new Set(),
  incidents: new Map(),
  responders: new Map(),
  stations: new Map(),
  figures: null,
  conn: 'connecting',
  langChosen: false,
};

function renderStatic() {
  document.documentElement.lang = htmlLang();
  document.title = t('wall_title');
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  const lang = byId('wall-lang');
  lang.textContent = t('lang_toggle');
  lang.lang = htmlLang(otherLanguage());
  if (wall.me) byId('wall-me').textContent = wall.me.name || wall.me.id;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t('wall_sec', { n: s });
  if (s % 60 === 0) return t('wall_min', { n: s / 60 });
  return t('wall_min_sec', { m: Math.floor(s / 60), s: s % 60 });
}

function elapsed(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const rest = `${pad2(Math.floor((total % 3600) / 60))}:${pad2(total % 60)}`;
  return hours > 0 ? `${hours}:${rest}` : rest;
}

function setText(id, text) {
  const node = byId(id);
  if (node.textContent !== String(text)) node.textContent = String(text);
}

function renderNow() {
  const open = [...wall.incidents.values()].filter((v) => EMERGENCY.has(v.kind));
  setText('wall-open', open.length);
  const nobody = open.filter((v) => v.dispatcher_needed === 'nobody_going').length;
  setText('wall-nobody', nobody);
  byId('tile-nobody').dataset.level = nobody > 0 ? 'red' : 'calm';
  const states = byId('wall-states');
  states.replaceChildren(
    ...GROUPS.map(([group, members]) => {
      const n = open.filter((v) => members.includes(v.state)).length;
      return h(
        'li',
        { class: 'state', 'data-state-count': group, 'data-zero': n === 0 },
        h('span', { class: 'state-n' }, n),
        h('span', { class: 'state-label' }, t(`wall_group_${group}`)),
      );
    }),
  );
  renderOldest();
}

function renderOldest() {
  const waiting = [...wall.incidents.values()].filter((v) => EMERGENCY.has(v.kind) && WAITING.has(v.state));
  const oldest = waiting.reduce((a, v) => (a === null || v.opened_at < a.opened_at ? v : a), null);
  const tile = byId('tile-oldest');
  if (!oldest) {
    setText('wall-oldest', t('wall_oldest_none'));
    setText('wall-oldest-sub', '');
    tile.dataset.level = 'calm';
    delete tile.dataset.incident;
    return;
  }
  const waited = serverNow() - oldest.opened_at;
  setText('wall-oldest', elapsed(waited));
  setText('wall-oldest-sub', `#${readableId(oldest.id)} · ${t(`kind_${oldest.kind}`)} · ${oldest.elder?.name ?? ''}`);
  tile.dataset.incident = String(oldest.id);
  // Amber past a minute (an answer is due by then), red past three.
  tile.dataset.level = waited > 180_000 ? 'red' : waited > 60_000 ? 'amber' : 'calm';
}

function renderDay() {
  const f = wall.figures;
  byId('tile-offline').dataset.level = f && f.devices_offline > 0 ? 'amber' : 'calm';
  setText('wall-offline', f ? f.devices_offline : '—');
  setText('wall-day-since', f ? t('wall_day_since') : '');
  const box = byId('wall-standards');
  box.replaceChildren(
    ...(f ? f.standards : []).map((s) => {
      const share = typeof s.share_pct === 'number' ? `${s.share_pct.toFixed(1)}%` : '—';
      const rule = t(`std_rule_${s.standard}`, { target: s.target_pct, within: duration(s.within_s) });
      const ids = (s.missed_ids || []).slice(0, 8).map((id) => `#${readableId(id)}`).join(' ');
      return h(
        'article',
        { class: 'standard', 'data-standard': s.standard, 'data-rating': s.rating },
        h('header', { class: 'std-head' }, h('span', { class: 'std-name' }, t(`std_${s.standard}`)), h('span', { class: 'std-rating' }, t(`rating_${s.rating}`))),
        h('div', { class: 'std-share', 'data-figure': 'share' }, share),
        h('div', { class: 'std-rule' }, rule),
        h(
          'div',
          { class: 'std-counts' },
          s.met + s.missed + s.pending === 0
            ? t('std_none')
            : t('std_counts', { met: s.met, missed: s.missed, pending: s.pending }),
        ),
        h('span', { hidden: true, 'data-figure': 'met' }, s.met),
        h('span', { hidden: true, 'data-figure': 'missed' }, s.missed),
        h('span', { hidden: true, 'data-figure': 'pending' }, s.pending),
        h('div', { class: 'std-missed' }, ids ? t('std_missed_ids', { ids }) : ''),
      );
    }),
  );
  renderDispatchers();
}

function renderDispatchers() {
  const figures = new Map((wall.figures?.dispatchers || []).map((d) => [d.id, d]));
  const ids = new Set([...figures.keys()]);
  for (const s of wall.staff.values()) if (s.role === 'dispatcher' || s.role === 'supervisor') ids.add(s.id);
  const rows = [...ids].sort().map((id) => {
    const d = figures.get(id) || { claimed: 0, handled: 0 };
    const who = wall.staff.get(id);
    return h(
      'tr',
      { 'data-dispatcher': id, 'data-online': wall.online.has(id) },
      h('td', { class: 'who' }, h('span', { class: 'dot', title: wall.online.has(id) ? t('wall_online') : '' }), who?.name || id),
      h('td', { 'data-col': 'claimed' }, d.claimed),
      h('td', { 'data-col': 'handled' }, d.handled),
      h('td', { 'data-col': 'handling' }, typeof d.handling_s_avg === 'number' ? duration(d.handling_s_avg) : '—'),
    );
  });
  byId('wall-dispatchers').tBodies[0].replaceChildren(...rows);
}

function renderStations() {
  const counts = new Map([...wall.stations.values()].map((s) => [s.id, { free: 0, busy: 0, off: 0 }]));
  for (const r of wall.responders.values()) {
    // Home-care workers are not the station's: the ladder never offers them an emergency.
    if (r.provider_id) continue;
    const c = counts.get(r.station_id) || { free: 0, busy: 0, off: 0 };
    if (r.status === 'off_duty' || !r.on_duty) c.off += 1;
    else if (r.status === 'available') c.free += 1;
    else c.busy += 1;
    counts.set(r.station_id, c);
  }
  const items = [...counts.entries()]
    .sort(([a, x], [b, y]) => x.free - y.free || String(a).localeCompare(String(b)))
    .map(([id, c]) =>
      h(
        'li',
        { class: 'station', 'data-station': id, 'data-none-free': c.free === 0 },
        h('span', { class: 'who' }, wall.stations.get(id)?.name || id),
        h('span', { class: 'n free', title: t('wall_col_free') }, h('b', { 'data-col': 'free' }, c.free), ` ${t('wall_col_free')}`),
        h('span', { class: 'n busy', title: t('wall_col_busy') }, h('b', { 'data-col': 'busy' }, c.busy), ` ${t('wall_col_busy')}`),
        h('span', { class: 'n off', title: t('wall_col_off') }, h('b', { 'data-col': 'off' }, c.off), ` ${t('wall_col_off')}`),
      ),
    );
  byId('wall-stations').replaceChildren(...items);
}

function renderConn() {
  const node = byId('wall-conn');
  node.dataset.state = wall.conn;
  setText('wall-conn-text', t(`wall_conn_${wall.conn}`));
}

function renderAll() {
  renderStatic();
  renderNow();
  renderDay();
  renderStations();
  renderConn();
}

function onFrame(msg) {
  if (typeof msg.server_time === 'number') observeServerTime(msg.server_time);
  switch (msg.type) {
    case 'welcome': {
      wall.me = msg.user;
      wall.staff = new Map((msg.staff || []).map((s) => [s.id, s]));
      if (!wall.langChosen && msg.console?.language) setLanguage(String(msg.console.language).startsWith('en') ? 'en' : 'zh');
      if (wall.me?.role !== 'supervisor') {
        showNotice(t('wall_not_supervisor'));
        return;
      }
      byId('wall').hidden = false;
      document.body.dataset.view = 'wall';
      renderAll();
      return;
    }
    case 'roster':
      wall.responders = new Map((msg.responders || []).map((r) => [r.id, r]));
      wall.stations = new Map((msg.stations || []).map((s) => [s.id, s]));
      renderStations();
      return;
    case 'responder':
      if (msg.responder) wall.responders.set(msg.responder.id, msg.responder);
      renderStations();
      return;
    case 'responder_retired':
      wall.responders.delete(msg.id);
      renderStations();
      return;
    case 'presence':
      wall.online = new Set(msg.online || []);
      renderDispatchers();
      return;
    case 'snapshot':
      wall.incidents = new Map((msg.incidents || []).map((v) => [String(v.id), v]));
      document.body.dataset.loaded = 'true';
      renderNow();
      return;
    case 'incident': {
      const v = msg.incident;
      if (!v) return;
      if (ENDED.has(v.state)) wall.incidents.delete(String(v.id));
      else wall.incidents.set(String(v.id), v);
      renderNow();
      return;
    }
    case 'wallboard':
      observeServerTime(msg.as_of);
      wall.figures = msg;
      renderDay();
      return;
    default:
  }
}

function showNotice(text) {
  const notice = byId('wall-notice');
  notice.textContent = text;
  notice.hidden = false;
  byId('wall').hidden = true;
  document.body.dataset.view = 'notice';
}

function start() {
  const remembered = rememberedLanguage(LANG_KEY);
  if (remembered) {
    setLanguage(remembered);
    wall.langChosen = true;
  }
  renderStatic();
  renderConn();
  byId('wall-lang').addEventListener('click', () => {
    chooseLanguage(otherLanguage(), LANG_KEY);
    wall.langChosen = true;
    renderAll();
  });
  const feed = createFeed({
    url: () => socketUrl('/ws'),
    onFrame,
    onStatus: (s) => {
      wall.conn = s === 'open' ? 'open' : s === 'stalled' ? 'stalled' : s === 'waiting' ? 'waiting' : 'connecting';
      renderConn();
    },
    onClose: (ev) => {
      if (ev.code === CLOSE_UNAUTHENTICATED) {
        location.replace('/console#wall');
        return true;
      }
      if (ev.code === CLOSE_FORBIDDEN) {
        showNotice(t('wall_not_supervisor'));
        return true;
      }
      return false;
    },
    stallAfterMs: 12_000,
  });
  feed.start();
  // The clock and the oldest wait tick on their own; everything else changes with frames.
  setInterval(() => {
    const now = serverNow();
    setText('wall-clock', formatClock(now));
    const d = new Date(now);
    setText('wall-date', `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`);
    renderOldest();
  }, 1000);
}

whenReady(start);
