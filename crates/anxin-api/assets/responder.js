// Anxin responder's phone: sign in with a token, keep a socket to /ws, show the offer or job
// the server says this responder holds, and send each step back.
//
// Plain JavaScript with no build step; the daemon embeds this file and serves it at
// /assets/responder.js. The server sends `hello` (who we are, on duty or not), then `job`
// (the whole current offer or job, or null) whenever it changes, and a `result` for every
// action we send. The page never guesses a state: it shows the last `job` frame, so a
// reconnect or a reload lands on the truth.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------
  // Words. Every label has both languages; what the server sends about the elder (name,
  // address, notes) and its refusals are shown as sent.
  // ---------------------------------------------------------------------------------------
  const STRINGS = {
    zh: {
      title: '安心 · 响应人',
      lang_toggle: 'EN',
      lang_toggle_label: 'Switch to English',
      conn_connected: '已连接',
      conn_connecting: '正在连接…',
      conn_reconnecting: '连接中断，正在重连',
      conn_retry: '（第 {n} 次）',
      stale: '连接中断：以下信息可能不是最新的，正在自动重连。',
      signin_title: '响应人登录',
      signin_hint: '请输入服务站发给您的登录口令。',
      token_label: '登录口令',
      sign_in: '登录',
      sign_out: '退出登录',
      token_required: '请输入登录口令。',
      wrong_token: '口令错误，请核对后重新输入。',
      connecting: '正在连接调度中心…',
      who: '{name} · {id}',
      station: '所属服务站 {station} · 编号 {id}',
      duty_label: '值班状态',
      duty_on: '在岗',
      duty_off: '休息',
      waiting_on: '暂无任务，正在等待派单。',
      waiting_off: '您现在休息，不会收到派单。打开“在岗”开始接单。',
      kind_sos: '紧急呼叫 SOS',
      kind_fall: '跌倒报警',
      kind_fire: '烟感/燃气报警',
      kind_intrusion: '入侵报警',
      kind_unreadable: '无法识别的呼叫',
      kind_service: '服务请求',
      state_offered: '新派单',
      state_accepted: '已接单',
      state_en_route: '正在前往',
      state_on_scene: '已到达现场',
      countdown_label: '请在倒计时内接单',
      countdown_over: '已超时，可能已改派他人',
      notes_label: '注意事项',
      distance_label: '距离',
      eta_label: '预计到达',
      since_label: '按键已过',
      distance_m: '{n} 米',
      distance_km: '{n} 公里',
      eta: '约 {n} 分钟',
      loc_device: '位置：设备定位',
      loc_device_acc: '位置：设备定位，精度 ±{d}',
      loc_home: '位置：登记住址（设备未提供定位）',
      loc_home_rejected: '位置：登记住址（设备定位不可信，未采用）',
      call: '拨打老人电话 {phone}',
      map: '在高德地图中导航',
      accept: '接单',
      decline: '拒绝',
      en_route: '我已出发',
      on_scene: '我已到达现场',
      resolve: '已处理完毕',
      outcome_label: '处理结果（必填）',
      outcome_placeholder: '例如：已扶起，无外伤，家属已知悉',
      outcome_required: '请先填写处理结果。',
      sending: '正在发送…',
      refused: '未成功：{reason}',
      no_answer: '服务器没有回应，请稍后再试。',
      lost_while_sending: '发送时连接中断，重连后请核对当前状态。',
      offline_actions: '连接中断，恢复后才能操作。',
      geo_sharing: '正在共享您的位置',
      geo_sent: '正在共享您的位置 · {time} 已发送',
      geo_waiting: '正在获取您的位置…',
      geo_denied: '未获准使用定位：将按您登记的位置派单。',
      geo_error: '暂时无法获取您的位置。',
      geo_unavailable: '此手机不支持定位共享：将按您登记的位置派单。',
      geo_insecure: '此页面未使用 HTTPS，手机不允许共享位置：将按您登记的位置派单。',
      geo_off: '',
    },
    en: {
      title: 'Anxin · Responder',
      lang_toggle: '中文',
      lang_toggle_label: '切换到中文',
      conn_connected: 'Connected',
      conn_connecting: 'Connecting…',
      conn_reconnecting: 'Connection lost, reconnecting',
      conn_retry: ' (attempt {n})',
      stale: 'Connection lost: what you see may be out of date. Reconnecting automatically.',
      signin_title: 'Responder sign-in',
      signin_hint: 'Enter the sign-in token your care station gave you.',
      token_label: 'Sign-in token',
      sign_in: 'Sign in',
      sign_out: 'Sign out',
      token_required: 'Please enter your token.',
      wrong_token: 'Wrong token. Please check it and try again.',
      connecting: 'Connecting to the dispatch centre…',
      who: '{name} · {id}',
      station: 'Station {station} · ID {id}',
      duty_label: 'Duty',
      duty_on: 'On duty',
      duty_off: 'Off duty',
      waiting_on: 'No job. Waiting for one.',
      waiting_off: 'You are off duty and will not be offered jobs. Turn the switch on to take jobs.',
      kind_sos: 'SOS',
      kind_fall: 'Fall alarm',
      kind_fire: 'Smoke/gas alarm',
      kind_intrusion: 'Break-in alarm',
      kind_unreadable: 'Unreadable call',
      kind_service: 'Service request',
      state_offered: 'New job offer',
      state_accepted: 'Accepted',
      state_en_route: 'On the way',
      state_on_scene: 'On scene',
      countdown_label: 'Time left to accept',
      countdown_over: 'Time is up; it may go to someone else',
      notes_label: 'Notes',
      distance_label: 'Distance',
      eta_label: 'ETA',
      since_label: 'Elapsed',
      distance_m: '{n} m',
      distance_km: '{n} km',
      eta: '{n} min',
      loc_device: 'Location: device fix',
      loc_device_acc: 'Location: device fix, ±{d}',
      loc_home: 'Location: registered home address (no device fix)',
      loc_home_rejected: 'Location: registered home address (device fix not trusted)',
      call: 'Call the elder {phone}',
      map: 'Navigate in Amap',
      accept: 'Accept',
      decline: 'Decline',
      en_route: 'I’m on my way',
      on_scene: 'I’m on scene',
      resolve: 'Resolved',
      outcome_label: 'Outcome (required)',
      outcome_placeholder: 'e.g. helped up, no injury, family told',
      outcome_required: 'Please write the outcome first.',
      sending: 'Sending…',
      refused: 'Not done: {reason}',
      no_answer: 'No answer from the server. Please try again.',
      lost_while_sending: 'The connection dropped while sending. Check the state once reconnected.',
      offline_actions: 'Connection lost: actions wait until it is back.',
      geo_sharing: 'Sharing your location',
      geo_sent: 'Sharing your location · sent {time}',
      geo_waiting: 'Finding your location…',
      geo_denied: 'Location not allowed: jobs are matched to your registered position.',
      geo_error: 'Your location is not available right now.',
      geo_unavailable: 'This phone cannot share its location: jobs are matched to your registered position.',
      geo_insecure: 'This page is not on HTTPS, so the phone will not share its location: jobs are matched to your registered position.',
      geo_off: '',
    },
  };

  const TOKEN_KEY = 'anxin.responder.token';
  const LANG_KEY = 'anxin.responder.lang';

  // The server closes a socket whose token it does not know with this code.
  const CLOSE_BAD_TOKEN = 4401;

  // Reconnect backoff: 0.5 s doubling to 15 s, each delay drawn from its upper half so that
  // a district's phones do not all come back in the same millisecond after a restart.
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  // A socket still connecting after this long is given up and tried again.
  const CONNECT_TIMEOUT_MS = 10000;
  // A connection that lived this long was healthy: the next failure starts backoff afresh.
  const HEALTHY_AFTER_MS = 10000;
  // The server answers within 15 s or says it could not; past this we say so ourselves.
  const RESULT_TIMEOUT_MS = 20000;
  // After an action is accepted, the new `job` frame is due; until it comes (or this long
  // passes) the buttons stay disabled, so a second tap cannot repeat the step.
  const FRAME_GRACE_MS = 5000;
  // Location goes to the server at most this often.
  const LOCATION_EVERY_MS = 15000;
  // The countdown turns urgent below this.
  const COUNTDOWN_URGENT_MS = 15000;

  const JOB_STATES = new Set(['offered', 'accepted', 'en_route', 'on_scene']);
  const KINDS = new Set(['sos', 'fall', 'fire', 'intrusion', 'unreadable', 'service']);
  // The one button each state offers (an offer has two, see render).
  const NEXT_STEP = { accepted: 'en_route', en_route: 'on_scene', on_scene: 'resolve' };
  const ACTIONS = ['accept', 'decline', 'en_route', 'on_scene', 'resolve'];

  const state = {
    lang: 'zh',
    token: null,
    /** who the server says we are (`hello`), or null before it has */
    responder: null,
    /** the last `job` frame's job, or null */
    job: null,
    /** whether a `job` frame has arrived since signing in */
    jobKnown: false,
    /** server clock minus phone clock: the largest of the recent samples (see noteServerTime) */
    clockOffsetMs: 0,
    /** [phone time received, server_time − phone time] for each `job` frame lately */
    clockSamples: [],
    /** full length of the current offer's countdown, for the bar */
    offer: { id: null, totalMs: 0 },
    lastVibratedOffer: null,
    ws: null,
    conn: 'reconnecting',
    connectedAt: 0,
    attempt: 0,
    reconnectTimer: null,
    connectTimer: null,
    /** request_id → { kind, incidentId, on, timer } */
    pending: new Map(),
    requestSeq: 0,
    /** set when an action was accepted and its `job` frame has not come yet */
    awaitingFrameSince: 0,
    /** the message under the buttons, as [key, vars] so it follows the language; or null */
    actionError: null,
    outcomeError: false,
    /** the message under the token field, as [key, vars]; or null */
    signinError: null,
    geo: {
      watchId: null,
      /** off | waiting | sharing | denied | error | unavailable | insecure */
      status: 'off',
      latest: null,
      lastSentAt: 0,
      timer: null,
    },
  };

  const requestPrefix = Math.random().toString(36).slice(2, 8);
  let dom = null;

  function t(key, vars) {
    const table = STRINGS[state.lang] || STRINGS.zh;
    let s = key in table ? table[key] : STRINGS.zh[key] ?? key;
    if (vars) {
      for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
    }
    return s;
  }

  /** A message kept as [key, vars], in the current language; '' for none. */
  function message(m) {
    return m ? t(m[0], m[1]) : '';
  }

  function serverNow() {
    return Date.now() + state.clockOffsetMs;
  }

  function store(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch {
      // Private mode or storage full: the page still works, a reload just signs out.
    }
  }

  function load(key) {
    try {
      return localStorage.getItem(key);
    } catch {
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------------------
  const pad2 = (n) => String(n).padStart(2, '0');

  /** m:ss for a countdown, mm:ss with minutes past 59 for time since the press. */
  function formatCountdown(ms) {
    const total = Math.max(0, Math.ceil(ms / 1000));
    return `${Math.floor(total / 60)}:${pad2(total % 60)}`;
  }

  function formatElapsed(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    return `${pad2(Math.floor(total / 60))}:${pad2(total % 60)}`;
  }

  function formatClock(epochMs) {
    const d = new Date(epochMs);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  function formatDistance(m) {
    if (typeof m !== 'number' || !Number.isFinite(m)) return '—';
    if (m < 1000) return t('distance_m', { n: Math.round(m) });
    return t('distance_km', { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
  }

  /** 13800000000 → 138 0000 0000, easier to read back on the phone; others as sent. */
  function formatPhone(phone) {
    const digits = String(phone).replace(/\s+/g, '');
    return /^1\d{10}$/.test(digits) ? `${digits.slice(0, 3)} ${digits.slice(3, 7)} ${digits.slice(7)}` : String(phone);
  }

  /** Latitude and longitude of a job, whether the server nests them under `at` or not. */
  function jobCoordinates(job) {
    const loc = job && job.location;
    if (!loc) return null;
    const at = loc.at && typeof loc.at === 'object' ? loc.at : loc;
    const lat = Number(at.lat);
    const lon = Number(at.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
    return { lat, lon };
  }

  // ---------------------------------------------------------------------------------------
  // Rendering: the DOM is fixed; these only fill it in and show or hide parts.
  // ---------------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = state.lang === 'en' ? 'en' : 'zh-CN';
    document.title = t('title');
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    dom.langToggle.textContent = t('lang_toggle');
    dom.langToggle.lang = state.lang === 'en' ? 'zh-CN' : 'en';
    dom.langToggle.setAttribute('aria-label', t('lang_toggle_label'));
    dom.outcome.placeholder = t('outcome_placeholder');
  }

  function currentView() {
    if (!state.token) return 'signed-out';
    if (!state.responder || !state.jobKnown) return 'connecting';
    return state.job ? 'job' : 'idle';
  }

  function render() {
    const view = currentView();
    document.body.dataset.view = view;
    dom.signin.hidden = view !== 'signed-out';
    dom.connecting.hidden = view !== 'connecting';
    dom.idle.hidden = view !== 'idle';
    dom.foot.hidden = view === 'signed-out';
    dom.connStatus.hidden = view === 'signed-out';

    dom.signinError.hidden = !state.signinError;
    dom.signinError.textContent = message(state.signinError);

    const r = state.responder;
    dom.who.hidden = !r;
    dom.who.textContent = r ? t('who', { name: r.name || r.id, id: r.id }) : '';

    renderConn();
    if (view === 'idle') renderIdle();
    renderJob(view === 'job' ? state.job : null);
    renderGeo();
    renderTick();
  }

  function renderConn() {
    const connected = state.conn === 'connected';
    dom.connStatus.dataset.state = connected ? 'connected' : 'reconnecting';
    let text;
    if (connected) text = t('conn_connected');
    else if (state.attempt <= 1 && !state.responder) text = t('conn_connecting');
    else text = t('conn_reconnecting') + (state.attempt > 1 ? t('conn_retry', { n: state.attempt }) : '');
    dom.connText.textContent = text;
    dom.staleBanner.hidden = connected || !state.token || !state.responder;
  }

  function renderIdle() {
    const r = state.responder;
    const on = Boolean(r.on_duty);
    dom.idleName.textContent = r.name || r.id;
    dom.idleStation.textContent = t('station', { station: r.station_id || '—', id: r.id });
    dom.duty.setAttribute('aria-checked', on ? 'true' : 'false');
    dom.dutyText.textContent = on ? t('duty_on') : t('duty_off');
    const dutyPending = [...state.pending.values()].some((p) => p.kind === 'duty');
    dom.duty.disabled = dutyPending || state.conn !== 'connected';
    dom.duty.setAttribute('aria-busy', dutyPending ? 'true' : 'false');
    dom.idleWaiting.textContent = on ? t('waiting_on') : t('waiting_off');
    dom.idleWaiting.dataset.duty = on ? 'on' : 'off';
    // Offline, the banner says so and the switch is disabled; this is for refusals.
    const error = message(state.actionError);
    dom.idleError.hidden = !error;
    dom.idleError.textContent = error;
  }

  function renderJob(job) {
    const card = dom.job;
    if (!job) {
      card.hidden = true;
      card.removeAttribute('data-incident-id');
      card.removeAttribute('data-state');
      card.removeAttribute('data-kind');
      return;
    }
    card.hidden = false;
    const jobState = JOB_STATES.has(job.state) ? job.state : String(job.state ?? '');
    const kind = KINDS.has(job.kind) ? job.kind : 'unreadable';
    card.dataset.incidentId = String(job.incident_id);
    card.dataset.state = jobState;
    card.dataset.kind = kind;

    dom.kind.textContent = t(`kind_${kind}`);
    dom.jobState.textContent = STRINGS.zh[`state_${jobState}`] ? t(`state_${jobState}`) : jobState;

    const elder = job.elder || {};
    dom.elderName.textContent = elder.name || elder.id || '—';
    dom.address.textContent = elder.address || '';
    dom.address.hidden = !elder.address;
    dom.notes.hidden = !elder.notes;
    dom.notesText.textContent = elder.notes || '';

    dom.distance.textContent = formatDistance(job.distance_m);
    dom.eta.textContent = Number.isFinite(Number(job.eta_min)) && job.eta_min !== null
      ? t('eta', { n: Number(job.eta_min) })
      : '—';

    const loc = job.location || {};
    let locText;
    if (loc.source === 'device') {
      locText = typeof loc.accuracy_m === 'number'
        ? t('loc_device_acc', { d: formatDistance(loc.accuracy_m) })
        : t('loc_device');
    } else {
      locText = loc.fix_rejected ? t('loc_home_rejected') : t('loc_home');
    }
    dom.location.textContent = locText;
    dom.location.dataset.source = loc.source === 'device' ? 'device' : 'home';

    if (elder.phone) {
      const digits = String(elder.phone).replace(/[^\d+]/g, '');
      dom.phone.href = `tel:${digits}`;
      dom.phone.textContent = t('call', { phone: formatPhone(elder.phone) });
      dom.phone.hidden = false;
    } else {
      dom.phone.hidden = true;
      dom.phone.removeAttribute('href');
    }

    const at = jobCoordinates(job);
    if (at) {
      const name = encodeURIComponent(elder.name || '');
      dom.map.href = `https://uri.amap.com/marker?position=${at.lon.toFixed(6)},${at.lat.toFixed(6)}&name=${name}`;
      dom.map.textContent = t('map');
      dom.map.hidden = false;
    } else {
      dom.map.hidden = true;
      dom.map.removeAttribute('href');
    }

    // Buttons: an offer gets accept and decline; a held job gets its next step.
    const shown = jobState === 'offered' ? ['decline', 'accept'] : NEXT_STEP[jobState] ? [NEXT_STEP[jobState]] : [];
    const busy = state.pending.size > 0 || (state.awaitingFrameSince > 0 && Date.now() - state.awaitingFrameSince < FRAME_GRACE_MS);
    const offline = state.conn !== 'connected';
    for (const action of ACTIONS) {
      const b = dom.actions[action];
      b.hidden = !shown.includes(action);
      b.disabled = busy || offline;
      const sending = [...state.pending.values()].some((p) => p.kind === action);
      b.textContent = sending ? t('sending') : t(action);
      b.setAttribute('aria-busy', sending ? 'true' : 'false');
    }
    dom.resolveBox.hidden = jobState !== 'on_scene';
    dom.outcomeError.hidden = !(state.outcomeError && jobState === 'on_scene');
    const error = offline ? t('offline_actions') : message(state.actionError);
    dom.actionError.hidden = !error;
    dom.actionError.textContent = error;
  }

  /** The parts that move with the clock: the offer's countdown and the time since the press. */
  function renderTick() {
    const job = currentView() === 'job' ? state.job : null;
    if (!job) {
      dom.countdown.hidden = true;
      return;
    }
    const now = serverNow();
    const pressed = Number(job.pressed_at);
    dom.since.textContent = Number.isFinite(pressed) ? formatElapsed(now - pressed) : '--:--';

    const deadline = Number(job.offer_deadline);
    if (job.state !== 'offered' || job.offer_deadline == null || !Number.isFinite(deadline)) {
      dom.countdown.hidden = true;
      return;
    }
    dom.countdown.hidden = false;
    const left = deadline - now;
    dom.countdownTime.textContent = formatCountdown(left);
    dom.countdown.dataset.urgency = left <= 0 ? 'over' : left <= COUNTDOWN_URGENT_MS ? 'urgent' : 'calm';
    dom.countdownLabel.textContent = left <= 0 ? t('countdown_over') : t('countdown_label');
    const total = state.offer.id === job.incident_id && state.offer.totalMs > 0 ? state.offer.totalMs : Math.max(left, 1);
    const fraction = Math.min(1, Math.max(0, left / total));
    dom.countdownFill.style.transform = `scaleX(${fraction.toFixed(4)})`;
  }

  function renderGeo() {
    const g = state.geo;
    let text = '';
    if (g.status === 'sharing') text = g.lastSentAt ? t('geo_sent', { time: formatClock(g.lastSentAt) }) : t('geo_sharing');
    else if (g.status !== 'off') text = t(`geo_${g.status}`);
    dom.geoStatus.textContent = text;
    dom.geoStatus.dataset.state = g.status;
    dom.geoStatus.hidden = !text;
  }

  // ---------------------------------------------------------------------------------------
  // Frames from the server
  // ---------------------------------------------------------------------------------------
  function onHello(msg) {
    const r = msg.responder;
    if (!r || typeof r !== 'object') return;
    state.responder = { id: String(r.id ?? ''), name: r.name ?? '', station_id: r.station_id ?? '', on_duty: Boolean(r.on_duty) };
    state.signinError = null;
    setConn('connected');
    updateGeoWatch();
    flushLocation();
    render();
  }

  function onJob(msg) {
    const job = msg.job && typeof msg.job === 'object' ? msg.job : null;
    const previous = state.job;
    state.jobKnown = true;
    state.awaitingFrameSince = 0;
    if (job) {
      const serverTime = Number(job.server_time);
      if (Number.isFinite(serverTime)) noteServerTime(serverTime);
      const sameIncident = previous && previous.incident_id === job.incident_id;
      if (!sameIncident) {
        dom.outcome.value = '';
        state.outcomeError = false;
      }
      if (!sameIncident || previous.state !== job.state) state.actionError = null;
      if (job.state === 'offered') {
        if (state.offer.id !== job.incident_id) {
          const deadline = Number(job.offer_deadline);
          state.offer = {
            id: job.incident_id,
            totalMs: Number.isFinite(deadline) && Number.isFinite(serverTime) ? deadline - serverTime : 0,
          };
        }
        if (state.lastVibratedOffer !== job.incident_id) {
          state.lastVibratedOffer = job.incident_id;
          vibrate();
        }
      }
    } else {
      state.actionError = null;
      state.outcomeError = false;
      dom.outcome.value = '';
    }
    state.job = job;
    render();
  }

  // A `job` frame may be older than its arrival: the server keeps the latest one and hands
  // it to a phone that connects later, with the `server_time` of when it was made. Such a
  // frame can only make the clock look behind, never ahead, so the largest recent
  // difference is the best estimate; old samples expire in case the phone's clock is set.
  const CLOCK_SAMPLE_MS = 10 * 60 * 1000;

  function noteServerTime(serverTime) {
    const now = Date.now();
    state.clockSamples = state.clockSamples.filter(([at]) => now - at < CLOCK_SAMPLE_MS && at <= now);
    state.clockSamples.push([now, serverTime - now]);
    state.clockOffsetMs = Math.max(...state.clockSamples.map(([, offset]) => offset));
  }

  function onResult(msg) {
    const id = msg.request_id;
    const p = id == null ? null : state.pending.get(String(id));
    // Answers to nothing we asked (a location the server could not take) are not the
    // responder's to act on.
    if (!p) return;
    clearTimeout(p.timer);
    state.pending.delete(String(id));
    if (msg.ok) {
      if (p.kind === 'duty' && state.responder) {
        state.responder.on_duty = p.on;
        updateGeoWatch();
      }
      if (p.kind !== 'duty') state.awaitingFrameSince = Date.now();
      state.actionError = null;
    } else {
      state.actionError = ['refused', { reason: msg.error || '?' }];
    }
    render();
  }

  function vibrate() {
    if (typeof navigator.vibrate !== 'function') return;
    // Chrome refuses (and complains) before the person has touched the page.
    if (navigator.userActivation && !navigator.userActivation.hasBeenActive) return;
    try {
      navigator.vibrate([400, 150, 400, 150, 700]);
    } catch {
      // Nothing to do: the card is on screen anyway.
    }
  }

  // ---------------------------------------------------------------------------------------
  // Frames to the server
  // ---------------------------------------------------------------------------------------
  function sendFrame(frame) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || state.conn !== 'connected') return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends an action with a request_id and waits for its `result`. */
  function request(kind, fields, extra = {}) {
    state.requestSeq += 1;
    const requestId = `${requestPrefix}-${state.requestSeq}`;
    const frame = { type: kind, ...fields, request_id: requestId };
    if (!sendFrame(frame)) {
      state.actionError = ['offline_actions'];
      render();
      return;
    }
    const timer = setTimeout(() => {
      if (!state.pending.delete(requestId)) return;
      state.actionError = ['no_answer'];
      render();
    }, RESULT_TIMEOUT_MS);
    state.pending.set(requestId, { kind, timer, ...extra });
    state.actionError = null;
    render();
  }

  function onAction(action) {
    const job = state.job;
    if (!job) return;
    const incidentId = job.incident_id;
    if (action === 'resolve') {
      const outcome = dom.outcome.value.trim();
      if (!outcome) {
        state.outcomeError = true;
        render();
        dom.outcome.focus();
        return;
      }
      state.outcomeError = false;
      request('resolve', { incident_id: incidentId, outcome });
      return;
    }
    request(action, { incident_id: incidentId });
  }

  function onDuty() {
    if (!state.responder) return;
    const on = !state.responder.on_duty;
    request('duty', { on }, { on });
  }

  // ---------------------------------------------------------------------------------------
  // Location: shared while on duty, at most every 15 s.
  // ---------------------------------------------------------------------------------------
  function updateGeoWatch() {
    const want = Boolean(state.token && state.responder && state.responder.on_duty);
    const g = state.geo;
    if (!want) {
      if (g.watchId !== null) navigator.geolocation.clearWatch(g.watchId);
      g.watchId = null;
      clearTimeout(g.timer);
      g.timer = null;
      g.latest = null;
      g.status = 'off';
      return;
    }
    if (g.watchId !== null || g.status === 'denied' || g.status === 'unavailable' || g.status === 'insecure') return;
    if (!('geolocation' in navigator) || !navigator.geolocation) {
      g.status = 'unavailable';
      return;
    }
    // Browsers give a position only to HTTPS pages (and loopback).
    if (window.isSecureContext === false) {
      g.status = 'insecure';
      return;
    }
    g.status = 'waiting';
    g.watchId = navigator.geolocation.watchPosition(onPosition, onPositionError, {
      enableHighAccuracy: true,
      maximumAge: 10000,
      timeout: 30000,
    });
  }

  function onPosition(pos) {
    const c = pos.coords;
    if (!Number.isFinite(c.latitude) || !Number.isFinite(c.longitude)) return;
    state.geo.latest = {
      lat: Number(c.latitude.toFixed(6)),
      lon: Number(c.longitude.toFixed(6)),
      accuracy_m: Number.isFinite(c.accuracy) ? Math.round(c.accuracy) : undefined,
    };
    if (state.geo.status !== 'sharing') {
      state.geo.status = 'sharing';
      renderGeo();
    }
    flushLocation();
  }

  function onPositionError(err) {
    const g = state.geo;
    if (err && err.code === 1) {
      // Refused: stop asking; a reload (after allowing it in settings) asks again.
      if (g.watchId !== null) navigator.geolocation.clearWatch(g.watchId);
      g.watchId = null;
      g.status = 'denied';
    } else if (g.status !== 'sharing' || !g.latest) {
      g.status = 'error';
    }
    renderGeo();
  }

  /** Sends the latest position now, or schedules it for when 15 s have passed since the last. */
  function flushLocation() {
    const g = state.geo;
    if (!g.latest || g.timer !== null) return;
    const wait = g.lastSentAt + LOCATION_EVERY_MS - Date.now();
    if (wait > 0) {
      g.timer = setTimeout(() => {
        g.timer = null;
        flushLocation();
      }, wait);
      return;
    }
    const frame = { type: 'location', lat: g.latest.lat, lon: g.latest.lon };
    if (g.latest.accuracy_m !== undefined) frame.accuracy_m = g.latest.accuracy_m;
    if (sendFrame(frame)) {
      g.lastSentAt = Date.now();
      g.latest = null;
      renderGeo();
    }
    // Not connected: kept in `latest`, sent after the next hello.
  }

  // ---------------------------------------------------------------------------------------
  // The socket
  // ---------------------------------------------------------------------------------------
  function setConn(conn) {
    if (conn === 'connected' && state.conn !== 'connected') state.connectedAt = Date.now();
    state.conn = conn;
    renderConn();
  }

  function socketUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws?token=${encodeURIComponent(state.token)}`;
  }

  function connect() {
    state.reconnectTimer = null;
    if (!state.token) return;
    state.attempt += 1;
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    renderConn();
    state.connectTimer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.close();
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(state.connectTimer);
    };
    ws.onmessage = (ev) => {
      if (ws !== state.ws) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'hello') onHello(msg);
      else if (msg.type === 'job') onJob(msg);
      else if (msg.type === 'result') onResult(msg);
      // Anything else is from a newer server: ignored.
    };
    ws.onclose = (ev) => {
      clearTimeout(state.connectTimer);
      if (ws !== state.ws) return;
      state.ws = null;
      const lived = state.conn === 'connected' ? Date.now() - state.connectedAt : 0;
      setConn('reconnecting');
      failPending();
      if (ev.code === CLOSE_BAD_TOKEN) {
        signOut(['wrong_token']);
        return;
      }
      if (lived >= HEALTHY_AFTER_MS) state.attempt = 0;
      scheduleReconnect();
      render();
    };
  }

  /** Actions in flight when the socket dropped: we cannot know whether they arrived. */
  function failPending() {
    if (state.pending.size === 0) return;
    for (const p of state.pending.values()) clearTimeout(p.timer);
    state.pending.clear();
    state.actionError = ['lost_while_sending'];
  }

  function scheduleReconnect() {
    if (state.reconnectTimer !== null || !state.token) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, state.attempt - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  // Back online or back in the foreground: no reason to sit out the backoff.
  function reconnectNow() {
    if (state.reconnectTimer === null) return;
    clearTimeout(state.reconnectTimer);
    connect();
  }

  // ---------------------------------------------------------------------------------------
  // Signing in and out
  // ---------------------------------------------------------------------------------------
  function signIn(token) {
    state.token = token;
    state.signinError = null;
    state.attempt = 0;
    store(TOKEN_KEY, token);
    render();
    connect();
  }

  function signOut(error = null) {
    store(TOKEN_KEY, null);
    state.token = null;
    const ws = state.ws;
    state.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    for (const p of state.pending.values()) clearTimeout(p.timer);
    state.pending.clear();
    state.responder = null;
    state.job = null;
    state.jobKnown = false;
    state.actionError = null;
    state.outcomeError = false;
    state.signinError = error;
    state.conn = 'reconnecting';
    state.attempt = 0;
    dom.outcome.value = '';
    updateGeoWatch();
    render();
    if (error) {
      dom.token.select();
      dom.token.focus();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------
  function init() {
    const $ = (id) => document.getElementById(id);
    const job = $('job');
    const field = (name) => job.querySelector(`[data-field="${name}"]`);
    dom = {
      langToggle: $('lang-toggle'),
      connStatus: $('conn-status'),
      connText: $('conn-text'),
      staleBanner: $('stale-banner'),
      who: $('who'),
      signin: $('signin'),
      signinForm: $('signin-form'),
      signinError: $('signin-error'),
      token: $('token'),
      connecting: $('connecting'),
      idle: $('idle'),
      idleName: $('idle').querySelector('[data-field="responder-name"]'),
      idleStation: $('idle').querySelector('[data-field="station"]'),
      duty: $('duty'),
      dutyText: $('duty-text'),
      idleWaiting: $('idle-waiting'),
      idleError: $('idle-error'),
      job,
      kind: field('kind'),
      jobState: field('state'),
      countdown: field('countdown'),
      countdownTime: field('countdown-time'),
      countdownLabel: job.querySelector('.countdown-label'),
      countdownFill: job.querySelector('.countdown-fill'),
      elderName: field('elder-name'),
      address: field('address'),
      notes: field('notes'),
      notesText: field('notes-text'),
      distance: field('distance'),
      eta: field('eta'),
      since: field('since'),
      location: field('location'),
      phone: field('phone'),
      map: field('map'),
      resolveBox: job.querySelector('.resolve-box'),
      outcome: $('outcome'),
      outcomeError: $('outcome-error'),
      actionError: $('action-error'),
      actions: Object.fromEntries(ACTIONS.map((a) => [a, job.querySelector(`[data-action="${a}"]`)])),
      foot: $('foot'),
      geoStatus: $('geo-status'),
    };

    const savedLang = load(LANG_KEY);
    state.lang = savedLang === 'en' ? 'en' : 'zh';
    applyLanguage();

    dom.langToggle.addEventListener('click', () => {
      state.lang = state.lang === 'zh' ? 'en' : 'zh';
      store(LANG_KEY, state.lang);
      applyLanguage();
      render();
    });
    dom.signinForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const token = dom.token.value.trim();
      if (!token) {
        state.signinError = ['token_required'];
        render();
        dom.token.focus();
        return;
      }
      dom.token.value = '';
      signIn(token);
    });
    document.querySelector('[data-action="sign-out"]').addEventListener('click', () => signOut());
    dom.duty.addEventListener('click', onDuty);
    for (const action of ACTIONS) dom.actions[action].addEventListener('click', () => onAction(action));
    dom.outcome.addEventListener('input', () => {
      if (state.outcomeError && dom.outcome.value.trim()) {
        state.outcomeError = false;
        render();
      }
    });

    window.addEventListener('online', reconnectNow);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') reconnectNow();
    });
    setInterval(() => {
      renderTick();
      // The grace after an accepted action ends on its own if no frame came.
      if (state.awaitingFrameSince && Date.now() - state.awaitingFrameSince >= FRAME_GRACE_MS) {
        state.awaitingFrameSince = 0;
        render();
      }
    }, 500);

    const saved = load(TOKEN_KEY);
    if (saved) {
      signIn(saved);
    } else {
      render();
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
