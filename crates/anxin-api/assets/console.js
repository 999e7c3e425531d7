// Anxin dispatcher console: keeps a live table of the open incidents from the /ws feed.
//
// Plain JavaScript with no build step; the daemon embeds this file and serves it at
// /assets/console.js. The feed sends a `snapshot` (the whole open set as of a sequence
// number) and then `incident` deltas (one incident's new view, with a larger sequence
// number). On reconnect we ask for `?since=<last applied seq>` so the server can send only
// what we missed, or a fresh snapshot when it cannot.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------
  // Words. Every visible label has both languages; server text (names, addresses, notes,
  // `problem`) is shown as sent.
  // ---------------------------------------------------------------------------------------
  const STRINGS = {
    zh: {
      title: '安心 · 24 小时调度台',
      title_short: '安心调度台',
      count_open: '进行中',
      count_unassigned: '待调度',
      conn_connected: '已连接',
      conn_connecting: '正在连接…',
      conn_reconnecting: '连接中断 · 正在重连',
      conn_retry: '（第 {n} 次）',
      lang_toggle: 'English',
      stale: '连接已中断：下表可能不是最新状态，正在自动重连。',
      col_since: '按键时长',
      col_kind: '类型 / 状态',
      col_elder: '老人',
      col_location: '位置',
      col_responder: '响应人',
      empty: '当前没有进行中的事件。',
      waiting: '正在等待服务器数据…',
      legend: '排序：紧急程度优先，其次按键最早者在前。',
      seq_info: '数据序号 {seq} · 更新于 {time}',
      pressed_at: '按键于 {time}',
      kind_sos: '紧急呼叫',
      kind_fall: '跌倒',
      kind_unreadable: '无法识别',
      kind_service: '服务请求',
      presses: '按了 {n} 次',
      state_offered: '已派单 · 待接单',
      state_awaiting_dispatcher: '待调度员处理',
      state_station_alerted: '已通知站点值班',
      state_accepted: '已接单',
      state_en_route: '在途',
      state_on_scene: '已到场',
      state_resolved: '已处置 · 待结案',
      state_closed: '已结案',
      state_cancelled: '已取消',
      state_false_alarm: '误报',
      loc_device: '设备定位',
      loc_home: '登记住址',
      accuracy: '精度 ±{d}',
      fix_null_island: '设备定位无效 (0,0)，已改用住址',
      fix_too_inaccurate: '设备定位精度不足，已改用住址',
      fix_too_far_from_home: '设备定位离家过远，已改用住址',
      fix_other: '设备定位未采用：{reason}',
      nobody: '无人在范围内',
      dispatcher_first: '待调度员派单',
      to_station: '→ 站点：{name}',
      no_station: '→ 附近没有站点',
      station_backup: '站点：{name}',
      distance_m: '{n} 米',
      distance_km: '{n} 公里',
      phone: '电话 {phone}',
      cancel_requested: '老人请求取消，请核实',
      problem: '注意：{text}',
    },
    en: {
      title: 'Anxin · 24-hour dispatch',
      title_short: 'Anxin dispatch',
      count_open: 'Open',
      count_unassigned: 'Needs dispatcher',
      conn_connected: 'Connected',
      conn_connecting: 'Connecting…',
      conn_reconnecting: 'Connection lost · reconnecting',
      conn_retry: ' (attempt {n})',
      lang_toggle: '中文',
      stale: 'Connection lost: this table may be out of date. Reconnecting automatically.',
      col_since: 'Since press',
      col_kind: 'Kind / state',
      col_elder: 'Elder',
      col_location: 'Location',
      col_responder: 'Responder',
      empty: 'No open incidents.',
      waiting: 'Waiting for the server…',
      legend: 'Order: most urgent first, then the oldest press first.',
      seq_info: 'seq {seq} · updated {time}',
      pressed_at: 'pressed {time}',
      kind_sos: 'SOS',
      kind_fall: 'Fall',
      kind_unreadable: 'Unreadable',
      kind_service: 'Service',
      presses: '{n} presses',
      state_offered: 'Offered · pending',
      state_awaiting_dispatcher: 'Needs a dispatcher',
      state_station_alerted: 'Station duty line alerted',
      state_accepted: 'Accepted',
      state_en_route: 'En route',
      state_on_scene: 'On scene',
      state_resolved: 'Resolved · to close',
      state_closed: 'Closed',
      state_cancelled: 'Cancelled',
      state_false_alarm: 'False alarm',
      loc_device: 'Device fix',
      loc_home: 'Home address',
      accuracy: '±{d}',
      fix_null_island: 'Device fix invalid (0,0); using home',
      fix_too_inaccurate: 'Device fix too inaccurate; using home',
      fix_too_far_from_home: 'Device fix too far from home; using home',
      fix_other: 'Device fix not used: {reason}',
      nobody: 'Nobody in range',
      dispatcher_first: 'Dispatcher to assign',
      to_station: '→ station: {name}',
      no_station: '→ no station nearby',
      station_backup: 'Station: {name}',
      distance_m: '{n} m',
      distance_km: '{n} km',
      phone: 'tel. {phone}',
      cancel_requested: 'Elder asked to cancel: verify',
      problem: 'Note: {text}',
    },
  };

  const LANG_KEY = 'anxin.console.lang';

  // States after which an incident leaves the console. None are sent yet; listed so that a
  // closing delta removes its row instead of leaving it open forever.
  const CLOSED_STATES = new Set(['closed', 'cancelled', 'false_alarm']);

  // The press clock turns amber at 5 minutes (the doorstep circle) and red at 15 (the
  // elder-care circle of the Xishan plan).
  const AGE_WARN_MS = 5 * 60 * 1000;
  const AGE_LATE_MS = 15 * 60 * 1000;

  // Reconnect backoff: 0.5 s doubling to 15 s, each delay drawn from its upper half so that
  // many consoles do not all come back in the same millisecond after a server restart.
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  // A socket that stays in CONNECTING longer than this is given up and tried again.
  const CONNECT_TIMEOUT_MS = 10000;
  // A connection that lived this long was healthy: the next failure starts backoff afresh.
  const HEALTHY_AFTER_MS = 10000;

  const state = {
    lang: 'zh',
    /** @type {Map<string, object>} incident views by id */
    incidents: new Map(),
    /** highest sequence number applied, or null before the first message */
    lastSeq: null,
    /** the store history the sequence numbers belong to (from the last snapshot) */
    history: null,
    /** whether a snapshot has been applied since the page loaded */
    loaded: false,
    /** server clock minus browser clock, measured when a snapshot arrives */
    clockOffsetMs: 0,
    lastUpdate: null,
    ws: null,
    conn: 'reconnecting',
    everConnected: false,
    attempt: 0,
    reconnectTimer: null,
    renderPending: false,
    /** ids that arrived by delta since the last render, to flash once */
    fresh: new Set(),
  };

  const $ = (id) => document.getElementById(id);
  let dom = null;

  function t(key, vars) {
    const table = STRINGS[state.lang] || STRINGS.zh;
    let s = key in table ? table[key] : STRINGS.zh[key] ?? key;
    if (vars) {
      for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
    }
    return s;
  }

  function serverNow() {
    return Date.now() + state.clockOffsetMs;
  }

  // ---------------------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------------------
  const pad2 = (n) => String(n).padStart(2, '0');

  // mm:ss; minutes keep counting past 59 so the figure always reads as "minutes waiting".
  function formatElapsed(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    return `${pad2(Math.floor(total / 60))}:${pad2(total % 60)}`;
  }

  function formatClock(epochMs) {
    const d = new Date(epochMs);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  function formatDistance(m) {
    if (typeof m !== 'number' || !Number.isFinite(m)) return '';
    if (m < 1000) return t('distance_m', { n: Math.round(m) });
    return t('distance_km', { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
  }

  // The moment the clock counts from. A device clock that runs ahead (the engine trusts it
  // within a few minutes) would put the press after we received it; it cannot be, so take
  // whichever is earlier.
  function pressMoment(view) {
    const p = Number(view.pressed_at);
    const o = Number(view.opened_at);
    if (Number.isFinite(p) && Number.isFinite(o)) return Math.min(p, o);
    return Number.isFinite(p) ? p : o;
  }

  function ageLevel(ms) {
    if (ms >= AGE_LATE_MS) return 'late';
    if (ms >= AGE_WARN_MS) return 'warn';
    return 'ok';
  }

  function isUnassigned(view) {
    return !view.responder || view.state === 'awaiting_dispatcher';
  }

  function isEmergency(view) {
    return view.kind === 'sos' || view.kind === 'fall';
  }

  // The server says why an incident waits for a dispatcher; "nobody in range" is shown only
  // when that is the reason (service requests and unreadable messages go to a person first).
  function isNobodyInRange(view) {
    if ('dispatcher_needed' in view) {
      return view.state === 'station_alerted' || view.dispatcher_needed === 'nobody_going';
    }
    return isEmergency(view);
  }

  function priorityOf(view) {
    return typeof view.priority === 'number' ? view.priority : 99;
  }

  // Most urgent first, then the one waiting longest, then by id so equal rows never swap.
  function compareViews(a, b) {
    return (
      priorityOf(a) - priorityOf(b) ||
      pressMoment(a) - pressMoment(b) ||
      String(a.id).localeCompare(String(b.id), 'en', { numeric: true })
    );
  }

  // ---------------------------------------------------------------------------------------
  // DOM building (server text only ever goes in through textContent)
  // ---------------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') node.className = v;
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function kindLabel(kind) {
    const key = `kind_${kind}`;
    return key in STRINGS.zh ? t(key) : String(kind);
  }

  function stateLabel(st) {
    const key = `state_${st}`;
    return key in STRINGS.zh ? t(key) : String(st);
  }

  function sinceCell(view) {
    const from = pressMoment(view);
    const elapsed = serverNow() - from;
    return h(
      'td',
      { class: 'c-since' },
      h(
        'span',
        { class: 'timer', 'data-field': 'since', 'data-from': from, 'data-age': ageLevel(elapsed) },
        formatElapsed(elapsed),
      ),
      h('span', { class: 'sub' }, t('pressed_at', { time: formatClock(from) })),
    );
  }

  // What happened and where it stands: the kind, the state, and anything to look at twice.
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
    );
  }

  function elderCell(view) {
    const e = view.elder || {};
    const phone = e.phone
      ? h('a', { class: 'phone', href: `tel:${e.phone}` }, t('phone', { phone: e.phone }))
      : null;
    return h(
      'td',
      { class: 'c-elder' },
      h('div', { class: 'elder-name', 'data-field': 'elder-name' }, e.name || e.id || '—'),
      h('div', { class: 'elder-address', 'data-field': 'elder-address' }, e.address || ''),
      phone || e.notes
        ? h('div', { class: 'sub' }, phone, phone && e.notes ? ' · ' : null, e.notes ? h('span', { class: 'notes' }, e.notes) : null)
        : null,
    );
  }

  function locationCell(view) {
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
        key in STRINGS.zh ? t(key) : t('fix_other', { reason: loc.fix_rejected }),
      );
    }
    return h(
      'td',
      { class: 'c-location', 'data-field': 'location', 'data-source': source },
      h('span', { class: `source source-${source}`, 'data-field': 'location-source' }, label),
      accuracy ? ' ' : null,
      accuracy,
      rejected,
    );
  }

  function responderCell(view) {
    const station = view.station;
    if (view.responder) {
      const r = view.responder;
      return h(
        'td',
        { class: 'c-responder' },
        h(
          'div',
          { class: 'resp-line' },
          h('span', { class: 'resp-name', 'data-field': 'responder-name' }, r.name || r.id || '—'),
          ' ',
          h('span', { class: 'resp-distance', 'data-field': 'responder-distance' }, formatDistance(r.distance_m)),
        ),
        station
          ? h(
              'div',
              { class: 'sub clip', title: t('station_backup', { name: station.name || station.id }) },
              t('station_backup', { name: station.name || station.id }),
            )
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
    const phone = station && station.phone
      ? h('a', { class: 'sub phone', href: `tel:${station.phone}` }, t('phone', { phone: station.phone }))
      : null;
    return h(
      'td',
      { class: 'c-responder' },
      isNobodyInRange(view)
        ? h('span', { class: 'nobody', 'data-field': 'nobody' }, t('nobody'))
        : h('span', { class: 'nobody dispatcher-first', 'data-field': 'dispatcher-first' }, t('dispatcher_first')),
      target,
      phone,
    );
  }

  function buildRow(view) {
    const classes = ['row', `prio-${Math.min(priorityOf(view), 9)}`];
    if (isUnassigned(view)) classes.push(isEmergency(view) ? 'unassigned' : 'unassigned-calm');
    return h(
      'tr',
      {
        class: classes.join(' '),
        'data-incident-id': view.id,
        'data-device-id': view.device_id,
        'data-kind': view.kind,
        'data-state': view.state,
        'data-seq': view.seq,
      },
      sinceCell(view),
      kindCell(view),
      elderCell(view),
      locationCell(view),
      responderCell(view),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Rendering: changes are batched to one render per frame (or per 200 ms when hidden).
  // ---------------------------------------------------------------------------------------
  /** @type {Map<string, HTMLTableRowElement>} rows by incident id */
  const rows = new Map();
  /** ids whose row must be rebuilt on the next render */
  const dirty = new Set();
  let rebuildAll = false;

  function scheduleRender() {
    if (state.renderPending) return;
    state.renderPending = true;
    const run = () => {
      state.renderPending = false;
      render();
    };
    if (document.hidden) setTimeout(run, 200);
    else requestAnimationFrame(run);
  }

  function render() {
    const tbody = dom.tbody;
    if (rebuildAll) {
      rows.clear();
      tbody.replaceChildren();
      dirty.clear();
      for (const id of state.incidents.keys()) dirty.add(id);
      rebuildAll = false;
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
      if (state.fresh.has(id)) row.classList.add('fresh');
      if (old) old.replaceWith(row);
      rows.set(id, row);
    }
    dirty.clear();
    state.fresh.clear();

    // Put rows in order, moving only those out of place.
    const ordered = [...state.incidents.values()].sort(compareViews);
    let cursor = tbody.firstElementChild;
    for (const view of ordered) {
      const row = rows.get(String(view.id));
      if (row === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        tbody.insertBefore(row, cursor);
      }
    }

    renderSummary();
  }

  function renderSummary() {
    let unassigned = 0;
    for (const v of state.incidents.values()) if (isUnassigned(v)) unassigned += 1;
    const open = state.incidents.size;
    dom.countOpen.textContent = String(open);
    dom.countUnassigned.textContent = String(unassigned);
    dom.countUnassigned.parentElement.dataset.active = unassigned > 0 ? 'true' : 'false';
    dom.empty.hidden = open > 0;
    dom.empty.textContent = state.loaded ? t('empty') : t('waiting');
    dom.table.dataset.loaded = state.loaded ? 'true' : 'false';
    dom.table.dataset.seq = String(state.lastSeq ?? 0);
    dom.seqInfo.textContent = state.lastUpdate === null
      ? ''
      : t('seq_info', { seq: state.lastSeq ?? 0, time: formatClock(state.lastUpdate) });
    document.title = `${unassigned > 0 ? '⚠ ' : ''}(${open}) ${t('title_short')}`;
  }

  function renderStatic() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    dom.langToggle.textContent = t('lang_toggle');
    dom.langToggle.lang = state.lang === 'zh' ? 'en' : 'zh-CN';
    renderConn();
  }

  function renderConn() {
    const el = dom.conn;
    el.dataset.state = state.conn;
    if (state.conn === 'connected') {
      dom.connText.textContent = t('conn_connected');
    } else if (!state.everConnected) {
      dom.connText.textContent = t('conn_connecting');
    } else {
      dom.connText.textContent =
        t('conn_reconnecting') + (state.attempt > 1 ? t('conn_retry', { n: state.attempt }) : '');
    }
    // Only a connection that was up and dropped makes the table suspect.
    const stale = state.conn !== 'connected' && state.loaded;
    dom.staleBanner.hidden = !stale;
    document.body.classList.toggle('stale', stale);
  }

  // Every second, on the second: the wall clock and every press clock.
  function tick() {
    const now = serverNow();
    dom.clock.textContent = formatClock(now);
    dom.clock.dateTime = new Date(now).toISOString();
    for (const row of rows.values()) {
      const timer = row.firstElementChild.firstElementChild;
      const elapsed = now - Number(timer.dataset.from);
      const text = formatElapsed(elapsed);
      if (timer.textContent !== text) timer.textContent = text;
      const level = ageLevel(elapsed);
      if (timer.dataset.age !== level) timer.dataset.age = level;
    }
    setTimeout(tick, 1000 - (now % 1000) + 5);
  }

  // ---------------------------------------------------------------------------------------
  // The feed
  // ---------------------------------------------------------------------------------------
  function validView(v) {
    return v && typeof v === 'object' && (typeof v.id === 'number' || typeof v.id === 'string');
  }

  function upsert(view) {
    const id = String(view.id);
    if (CLOSED_STATES.has(view.state)) {
      state.incidents.delete(id);
    } else {
      state.incidents.set(id, view);
    }
    dirty.add(id);
  }

  function applySnapshot(msg) {
    if (!Array.isArray(msg.incidents) || typeof msg.seq !== 'number') return;
    if (typeof msg.server_time === 'number' && Number.isFinite(msg.server_time)) {
      state.clockOffsetMs = msg.server_time - Date.now();
    }
    state.incidents.clear();
    for (const view of msg.incidents) {
      if (validView(view) && !CLOSED_STATES.has(view.state)) state.incidents.set(String(view.id), view);
    }
    state.fresh.clear();
    rebuildAll = true;
    state.lastSeq = msg.seq;
    // Sequence numbers belong to one store's history; a reconnect names it, so a server
    // whose store was replaced sends a fresh snapshot instead of deltas on top of stale rows.
    state.history = typeof msg.history === 'string' ? msg.history : null;
    state.loaded = true;
    state.lastUpdate = serverNow();
    renderConn();
    scheduleRender();
  }

  function applyDelta(msg) {
    if (typeof msg.seq !== 'number' || !validView(msg.incident)) return;
    // Sequence numbers only grow, with gaps; anything not newer is already reflected.
    if (state.lastSeq !== null && msg.seq <= state.lastSeq) return;
    const id = String(msg.incident.id);
    if (state.loaded && !state.incidents.has(id)) state.fresh.add(id);
    upsert(msg.incident);
    state.lastSeq = msg.seq;
    state.lastUpdate = serverNow();
    scheduleRender();
  }

  function handleMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'snapshot':
        applySnapshot(msg);
        break;
      case 'incident':
        applyDelta(msg);
        break;
      default:
        // Unknown message types are for newer consoles.
        break;
    }
  }

  function feedUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = state.lastSeq !== null
      ? `?since=${encodeURIComponent(state.lastSeq)}${state.history ? `&history=${encodeURIComponent(state.history)}` : ''}`
      : '';
    return `${scheme}//${location.host}/ws${since}`;
  }

  function setConn(value) {
    state.conn = value;
    renderConn();
  }

  function connect() {
    state.reconnectTimer = null;
    let ws;
    try {
      ws = new WebSocket(feedUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    let openedAt = null;
    const giveUp = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.close();
    }, CONNECT_TIMEOUT_MS);

    ws.onopen = () => {
      clearTimeout(giveUp);
      openedAt = Date.now();
      state.everConnected = true;
      setConn('connected');
    };
    ws.onmessage = (ev) => {
      // A server that sends data is healthy; start backoff afresh when it next fails.
      state.attempt = 0;
      if (typeof ev.data === 'string') handleMessage(ev.data);
    };
    ws.onclose = () => {
      clearTimeout(giveUp);
      if (state.ws !== ws) return;
      state.ws = null;
      if (openedAt !== null && Date.now() - openedAt >= HEALTHY_AFTER_MS) state.attempt = 0;
      scheduleReconnect();
    };
    // An error is always followed by close, which does the work.
    ws.onerror = () => {};
  }

  function scheduleReconnect() {
    if (state.reconnectTimer !== null) return;
    state.attempt += 1;
    setConn('reconnecting');
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (state.attempt - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  // When the network comes back there is no reason to sit out the backoff.
  function reconnectNow() {
    if (state.reconnectTimer === null) return;
    clearTimeout(state.reconnectTimer);
    connect();
  }

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------
  function loadLang() {
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (saved === 'zh' || saved === 'en') return saved;
    } catch {
      // Storage can be refused (private windows); the default will do.
    }
    return 'zh';
  }

  function toggleLang() {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    try {
      localStorage.setItem(LANG_KEY, state.lang);
    } catch {
      // Not remembered across reloads; nothing else depends on it.
    }
    renderStatic();
    rebuildAll = true;
    scheduleRender();
  }

  function start() {
    dom = {
      table: $('incidents'),
      tbody: $('incident-rows'),
      empty: $('empty'),
      conn: $('conn-status'),
      connText: $('conn-text'),
      staleBanner: $('stale-banner'),
      countOpen: $('count-open'),
      countUnassigned: $('count-unassigned'),
      clock: $('clock'),
      seqInfo: $('seq-info'),
      langToggle: $('lang-toggle'),
    };
    state.lang = loadLang();
    dom.langToggle.addEventListener('click', toggleLang);
    window.addEventListener('online', reconnectNow);
    renderStatic();
    renderSummary();
    tick();
    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
