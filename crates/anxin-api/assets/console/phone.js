// The console's softphone: the dispatcher's own SIP line in the browser (WebRTC, JsSIP).
//
// When a dispatcher signs in, the console asks anxind for their SIP credentials
// (GET /api/v1/telephony/credentials; 404 means the centre has no softphone and nothing is
// shown) and registers with the SIP server over its WebSocket. Every registered console
// rings with each hotline call; the engine's `incoming_call` alarm already sounds and shows
// the incident, and this panel shows who is calling with Answer and Hang up, then Mute,
// Hold and Hang up while they talk. The first console to answer takes the call (the SIP
// server cancels the others) and the engine gives that dispatcher the incident.
//
// The dispatcher calls out too: each telephone number the panel and the map card show gets
// a Call button (callButton, used by parts.js), which dials it through the SIP server's
// trunk, naming the incident open in the panel (X-Anxin-Incident).
//
// JsSIP (vendor/jssip/) is a classic script defining the global `JsSIP`; it is loaded only
// when there are credentials. The bar shows the line's state (registered or not); the
// panel shows only while there is a call.

import { byId, h } from '../common/dom.js';
import { defineStrings, t } from '../common/i18n.js';
import { formatElapsed, formatPhone } from '../common/format.js';
import { defaultEmergencyNumber } from './actions.js';
import { openIncident } from './detail.js';
import { toast } from './parts.js';
import { dom, state } from './state.js';

const CREDENTIALS_URL = '/api/v1/telephony/credentials';
const JSSIP_URL = '/assets/vendor/jssip/jssip.min.js';
// New credentials this long before the old ones run out (they last 12 hours).
const RENEW_BEFORE_MS = 10 * 60 * 1000;
// A line that failed to register tries again after this long (JsSIP retries a lost
// WebSocket by itself; this is for refusals, such as credentials that ran out).
const RETRY_AFTER_MS = 30 * 1000;
// An ended call's panel stays this long, so the dispatcher sees how it ended.
const ENDED_SHOWN_MS = 4000;

defineStrings({
  zh: {
    phone_label: '电话',
    phone_connecting: '正在连接…',
    phone_registered: '已就绪',
    phone_unregistered: '未登记',
    phone_failed: '不可用',
    phone_failed_title: '软电话无法登记：{why}',
    phone_incoming: '来电',
    phone_connecting_call: '正在接通…',
    phone_talking: '通话中',
    phone_held: '已保持',
    phone_ended: '通话结束',
    phone_missed: '来电已停止振铃',
    phone_failed_call: '通话失败：{why}',
    phone_unknown_caller: '未知号码',
    phone_withheld: '号码未显示',
    phone_answer: '接听',
    phone_hangup: '挂断',
    phone_mute: '静音',
    phone_unmute: '取消静音',
    phone_hold: '保持',
    phone_resume: '恢复通话',
    phone_open_incident: '查看事件',
    phone_busy_line: '已在通话中，新来电由其他调度台接听',
    phone_no_microphone: '无法使用麦克风：{why}',
    phone_transfer: '转接',
    phone_transfer_blind: '直接转接',
    phone_transfer_blind_title: '对方直接拨打所选号码，本台随即退出',
    phone_transfer_consult: '先通话再转',
    phone_transfer_consult_title: '来电人保持等待，本台先与所选号码通话，再完成转接',
    phone_consulting: '咨询 {number}：{state}（来电人保持中）',
    phone_complete_transfer: '完成转接',
    phone_end_consult: '结束咨询',
    phone_consult_failed: '咨询未接通：{why}',
    phone_transfer_title: '把这通电话转给其他号码，本台退出通话',
    phone_transfer_station: '站点值班 {name}',
    phone_transfer_emergency: '紧急号码',
    phone_transfer_other: '其他号码',
    phone_transfer_go: '转接',
    phone_transfer_cancel: '取消',
    phone_transferring: '正在转接至 {number}…',
    phone_transferred: '已转接至 {number}',
    phone_transfer_failed: '转接失败：{why}',
    phone_dial: '拨打',
    phone_device_of: '{name}的设备',
    phone_dial_title: '用软电话拨打 {number}',
    phone_dialling: '正在呼叫…',
    phone_ringing_out: '对方振铃中',
    phone_not_ready: '软电话未就绪，暂不能拨打',
    phone_line_taken: '正在通话中：请先挂断',
    phone_bad_number: '无法拨打这个号码：{number}',
    phone_cancelled: '已取消呼叫',
    phone_cause_busy: '对方忙',
    phone_cause_no_answer: '无人接听',
    phone_cause_unavailable: '暂时无法接通',
    phone_cause_not_found: '号码不存在',
    phone_cause_rejected: '对方拒接',
  },
  en: {
    phone_label: 'Phone',
    phone_connecting: 'Connecting…',
    phone_registered: 'Ready',
    phone_unregistered: 'Not registered',
    phone_failed: 'Unavailable',
    phone_failed_title: 'The softphone could not register: {why}',
    phone_incoming: 'Incoming call',
    phone_connecting_call: 'Connecting…',
    phone_talking: 'On the call',
    phone_held: 'On hold',
    phone_ended: 'Call ended',
    phone_missed: 'The call stopped ringing',
    phone_failed_call: 'The call failed: {why}',
    phone_unknown_caller: 'Unknown number',
    phone_withheld: 'Number withheld',
    phone_answer: 'Answer',
    phone_hangup: 'Hang up',
    phone_mute: 'Mute',
    phone_unmute: 'Unmute',
    phone_hold: 'Hold',
    phone_resume: 'Resume',
    phone_open_incident: 'Open incident',
    phone_busy_line: 'Already on a call: another console takes the new one',
    phone_no_microphone: 'The microphone cannot be used: {why}',
    phone_transfer: 'Transfer',
    phone_transfer_blind: 'Blind',
    phone_transfer_blind_title: 'The other side calls the number chosen, and this console leaves at once',
    phone_transfer_consult: 'Talk first',
    phone_transfer_consult_title: 'The caller waits on hold while this console talks to the number chosen, then completes the transfer',
    phone_consulting: 'Consulting {number}: {state} (caller on hold)',
    phone_complete_transfer: 'Complete transfer',
    phone_end_consult: 'End consultation',
    phone_consult_failed: 'The consultation did not connect: {why}',
    phone_transfer_title: 'Hand this call on to another number; this console leaves it',
    phone_transfer_station: 'Station duty line {name}',
    phone_transfer_emergency: 'Emergency number',
    phone_transfer_other: 'Another number',
    phone_transfer_go: 'Transfer',
    phone_transfer_cancel: 'Cancel',
    phone_transferring: 'Transferring to {number}…',
    phone_transferred: 'Transferred to {number}',
    phone_transfer_failed: 'Transfer failed: {why}',
    phone_dial: 'Call',
    phone_device_of: "{name}'s device",
    phone_dial_title: 'Call {number} on the softphone',
    phone_dialling: 'Calling…',
    phone_ringing_out: 'Ringing',
    phone_not_ready: 'The softphone is not ready to call',
    phone_line_taken: 'On a call: hang up first',
    phone_bad_number: 'This number cannot be called: {number}',
    phone_cancelled: 'Call cancelled',
    phone_cause_busy: 'busy',
    phone_cause_no_answer: 'no answer',
    phone_cause_unavailable: 'unavailable',
    phone_cause_not_found: 'no such number',
    phone_cause_rejected: 'declined',
  },
});

/** The line: null when the console has no softphone. */
const phone = {
  /** bumped on every start and stop, so that an answer for an old start is dropped */
  generation: 0,
  credentials: null,
  ua: null,
  /** 'connecting', 'registered', 'unregistered' or 'failed' */
  line: 'connecting',
  why: '',
  renewTimer: null,
  /** the call shown, or null: {session, direction ('in' or 'out'), callId, from (the other
   * party's number), label, incidentId, state, startedAt, muted, held, ended} */
  call: null,
  /** what the dispatcher is dialling, until JsSIP reports the session it made */
  dialling: null,
  /** the call a consultation is being dialled for (attended transfer), until JsSIP reports it */
  consulting: null,
  clockTimer: null,
};

let jssipLoading = null;

/** Loads the vendored JsSIP once; resolves to the `JsSIP` global. */
function loadJsSip() {
  if (window.JsSIP) return Promise.resolve(window.JsSIP);
  if (!jssipLoading) {
    jssipLoading = new Promise((resolve, reject) => {
      const script = h('script', { src: JSSIP_URL });
      script.addEventListener('load', () => resolve(window.JsSIP));
      script.addEventListener('error', () => {
        jssipLoading = null;
        reject(new Error('JsSIP did not load'));
      });
      document.head.append(script);
    });
  }
  return jssipLoading;
}

/** Starts the softphone for the dispatcher who just signed in, if the centre has one. */
export async function startPhone() {
  stopPhone();
  const generation = phone.generation;
  let credentials;
  try {
    const res = await fetch(CREDENTIALS_URL, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (res.status === 404 || res.status === 401 || res.status === 403) return; // no softphone here
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      showLine('failed', body.error || `HTTP ${res.status}`);
      return;
    }
    credentials = body;
  } catch {
    if (generation === phone.generation) retryLater(generation);
    return;
  }
  if (generation !== phone.generation) return;
  phone.credentials = credentials;
  showLine('connecting');
  let JsSIP;
  try {
    JsSIP = await loadJsSip();
  } catch (err) {
    showLine('failed', err.message);
    return;
  }
  if (generation !== phone.generation) return;
  register(JsSIP, credentials, generation);
}

/** Stops the softphone (signed out): hangs up, unregisters, hides it. */
export function stopPhone() {
  phone.generation += 1;
  clearTimeout(phone.renewTimer);
  phone.renewTimer = null;
  if (phone.call?.session && !phone.call.session.isEnded()) phone.call.session.terminate();
  endCallView();
  if (phone.ua) {
    const ua = phone.ua;
    phone.ua = null;
    ua.removeAllListeners();
    ua.stop();
  }
  phone.credentials = null;
  if (dom.phoneStatus) dom.phoneStatus.hidden = true;
}

/** Starts the line again from new credentials later; never while a call is on (it would
 * end the call), so then it waits again. */
function retryLater(generation) {
  clearTimeout(phone.renewTimer);
  phone.renewTimer = setTimeout(function retry() {
    if (generation !== phone.generation || !state.me) return;
    if (phone.call && !phone.call.ended) {
      phone.renewTimer = setTimeout(retry, RETRY_AFTER_MS);
      return;
    }
    startPhone();
  }, RETRY_AFTER_MS);
}

/** A made-up host for the Contact: the browser cannot know its own address. */
function contactHost() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}.invalid`;
}

function register(JsSIP, credentials, generation) {
  // The SIP server names who answered by the Contact's user: the staff id.
  const user = credentials.uri.replace(/^sip:/, '').split('@')[0];
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(credentials.ws_url)],
    uri: credentials.uri,
    authorization_user: credentials.username,
    password: credentials.password,
    contact_uri: `sip:${user}@${contactHost()};transport=ws`,
    display_name: state.me?.name || user,
    register: true,
    session_timers: false,
    user_agent: 'Anxin console',
  });
  phone.ua = ua;
  const mine = () => generation === phone.generation && phone.ua === ua;
  ua.on('registered', () => mine() && showLine('registered'));
  ua.on('unregistered', () => mine() && showLine('unregistered'));
  ua.on('disconnected', () => mine() && phone.line === 'registered' && showLine('connecting'));
  ua.on('registrationFailed', (e) => {
    if (!mine()) return;
    showLine('failed', e.cause || '');
    // Credentials that ran out, or a server that refused them: fetch new ones later.
    retryLater(generation);
  });
  ua.on('newRTCSession', (e) => mine() && onSession(e));
  ua.start();
  scheduleRenewal(generation);
}

/** New credentials before the old ones run out, once the line is free. */
function scheduleRenewal(generation) {
  clearTimeout(phone.renewTimer);
  const due = Number(phone.credentials?.expires_at) - RENEW_BEFORE_MS - Date.now();
  if (!Number.isFinite(due)) return;
  phone.renewTimer = setTimeout(function renew() {
    if (generation !== phone.generation) return;
    if (phone.call && !phone.call.ended) {
      phone.renewTimer = setTimeout(renew, 60 * 1000);
      return;
    }
    startPhone();
  }, Math.max(due, 1000));
}

// ---- calls ------------------------------------------------------------------------------

function onSession({ session, originator, request }) {
  if (originator === 'local' && phone.consulting) {
    onConsultSession(session, request);
    return;
  }
  let call;
  if (originator === 'local') {
    // A call the dispatcher placed (dial): JsSIP reports it while dial() waits.
    const out = phone.dialling || {};
    phone.dialling = null;
    call = { direction: 'out', from: out.number || '', label: out.label || '', incidentId: out.incidentId ?? null, state: 'dialling' };
  } else {
    if (phone.call && !phone.call.ended) {
      // One call at a time: the others keep ringing elsewhere.
      session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      toast(t('phone_busy_line'));
      return;
    }
    call = { direction: 'in', from: session.remote_identity?.uri?.user || '', label: '', incidentId: null, state: 'ringing' };
  }
  Object.assign(call, { session, callId: request?.call_id || '', startedAt: null, muted: false, held: false, ended: null });
  endCallView();
  phone.call = call;
  const current = () => phone.call === call;
  const listen = (peerconnection) => {
    peerconnection.addEventListener('track', (ev) => {
      call.remote = ev.streams[0] || new MediaStream([ev.track]);
      if (current() && !call.consult?.remote) playRemote(call.remote);
    });
  };
  // An outgoing call's connection may exist already; an incoming one's comes with the answer.
  if (session.connection) listen(session.connection);
  else session.on('peerconnection', ({ peerconnection }) => listen(peerconnection));
  // Each of the session's news changes the call, then the panel.
  const on = (event, change) =>
    session.on(event, () => {
      if (!current()) return;
      change();
      renderCall();
    });
  on('progress', () => {
    if (call.state === 'dialling') call.state = 'ringing_out';
  });
  on('accepted', () => {
    call.state = 'connecting';
  });
  on('confirmed', () => {
    call.state = 'talking';
    call.startedAt = Date.now();
  });
  on('hold', () => {
    call.held = true;
  });
  on('unhold', () => {
    call.held = false;
  });
  on('muted', () => {
    call.muted = true;
  });
  on('unmuted', () => {
    call.muted = false;
  });
  const finish = (kind, cause) => {
    if (!current()) return;
    // The caller is gone: a consultation for them has nothing to complete.
    const consultation = call.consult?.session;
    if (consultation && !consultation.isEnded()) consultation.terminate();
    call.ended = { kind, cause: cause || '' };
    call.state = 'ended';
    stopRemote();
    renderCall();
    setTimeout(() => {
      if (phone.call === call) endCallView();
    }, ENDED_SHOWN_MS);
  };
  session.on('ended', (e) => finish('ended', e.cause));
  session.on('failed', (e) => {
    if (call.direction === 'out') {
      // Hung up before the other side answered, or they could not be reached.
      finish(e.originator === 'local' && e.cause === 'Canceled' ? 'cancelled' : 'failed', e.cause);
      return;
    }
    // Cancelled while it rang: the caller gave up, or another console answered first.
    const stopped = e.cause === 'Canceled' || e.cause === 'Request Timeout' || e.cause === 'Rejected';
    finish(stopped && !call.startedAt ? 'missed' : 'failed', e.cause);
  });
  renderCall();
}

/** Calls `number` from this console, for the incident `incidentId` if any; `label` names
 * who is called in the panel. Says why not when it cannot. */
export function dial(number, { label = '', incidentId = null } = {}) {
  if (!phone.ua || phone.line !== 'registered') {
    toast(t('phone_not_ready'), 'error');
    return;
  }
  if (phone.call && !phone.call.ended) {
    toast(t('phone_line_taken'), 'error');
    return;
  }
  // The trunk takes digits: '0871-6800 0001' is 087168000001.
  const digits = numberToCall(number);
  if (!digits) return;
  phone.dialling = { number: digits, label, incidentId };
  try {
    placeCall(digits, incidentId);
  } catch (err) {
    phone.dialling = null;
    toast(t('phone_failed_call', { why: err.message }), 'error');
  }
}

/** Starts a call to `digits` on the trunk, naming the incident it is for (JsSIP reports its
 * session to onSession). */
function placeCall(digits, incidentId) {
  const domain = phone.credentials.uri.split('@')[1];
  phone.ua.call(`sip:${digits}@${domain}`, {
    mediaConstraints: { audio: true, video: false },
    pcConfig: pcConfig(),
    extraHeaders: incidentId ? [`X-Anxin-Incident: ${incidentId}`] : [],
  });
}

/** Who `digits` belong to on incident `view`: the elder, a contact, the responder, the
 * station, the device (talk-back); '' for none of them. */
function whoHas(view, digits) {
  const same = (phone) => phone && String(phone).replace(/\D/g, '') === digits;
  if (!view) return '';
  if (same(view.elder?.phone)) return view.elder.name || '';
  const contact = (view.elder?.contacts || []).find((c) => same(c.phone));
  if (contact) return contact.relation ? `${contact.name}（${contact.relation}）` : contact.name || '';
  if (same(view.responder?.phone)) return view.responder.name || view.responder.id || '';
  if (same(view.station?.phone)) return view.station.name || view.station.id || '';
  if (same(view.device_sim)) return t('phone_device_of', { name: view.elder?.name || view.device_id });
  return '';
}

/**
 * A Call button for a telephone number the console shows (parts.js puts it beside each),
 * or null when this console has no softphone. In the incident panel it calls for the
 * incident open there.
 */
export function callButton(number) {
  if (!phone.credentials) return null;
  return h(
    'button',
    {
      class: 'btn btn-small btn-good phone-dial',
      type: 'button',
      'data-dial': number,
      title: t('phone_dial_title', { number }),
      onclick: (ev) => {
        const inPanel = ev.currentTarget.closest('#detail') && state.openId !== null ? state.openId : null;
        const view = inPanel === null ? null : state.incidents.get(String(inPanel));
        dial(number, { label: whoHas(view, String(number).replace(/\D/g, '')), incidentId: inPanel });
      },
    },
    t('phone_dial'),
  );
}

function answer() {
  const call = phone.call;
  if (!call || call.state !== 'ringing') return;
  call.state = 'connecting';
  renderCall();
  try {
    call.session.answer({ mediaConstraints: { audio: true, video: false }, pcConfig: pcConfig() });
  } catch (err) {
    toast(t('phone_no_microphone', { why: err.message }), 'error');
  }
}

function hangUp() {
  const call = phone.call;
  if (!call) return;
  if (call.ended) {
    endCallView();
    return;
  }
  if (!call.session.isEnded()) call.session.terminate();
}

function toggleMute() {
  const call = phone.call;
  if (!call || call.state !== 'talking') return;
  if (call.muted) call.session.unmute({ audio: true });
  else call.session.mute({ audio: true });
}

/** The browser's media connection: TURN servers where anxind names them (the same
 * credentials as SIP, coturn's use-auth-secret), only through them with relay_only. */
function pcConfig() {
  const c = phone.credentials || {};
  const turn = Array.isArray(c.turn_urls) ? c.turn_urls : [];
  return {
    iceServers: turn.length ? [{ urls: turn, username: c.username, credential: c.password }] : [],
    iceTransportPolicy: c.relay_only && turn.length ? 'relay' : 'all',
  };
}

/** Shows or hides the transfer targets under the call's buttons. */
function toggleTransfer() {
  const call = phone.call;
  if (!call || call.state !== 'talking' || call.transferring) return;
  call.choosing = !call.choosing;
  renderCall();
}

/**
 * Hands the call on to `number` (a blind transfer): a REFER asks the other side to call it
 * instead; once they say the new call is answered (or simply hang up), this console leaves
 * the call. The SIP server tells anxind, which puts the transfer on the incident's timeline.
 */
function transfer(number) {
  const call = phone.call;
  if (!call || call.state !== 'talking' || call.ended || call.transferring) return;
  const digits = numberToCall(number);
  if (!digits) return;
  call.choosing = false;
  // Shown as given ('0871-68000001'); dialled as digits.
  sendRefer(call, String(number).trim(), digits, null);
}

/** The digits to dial for `number` (3 to 20 of them), or null after saying why not. */
function numberToCall(number) {
  const digits = String(number).replace(/\D/g, '');
  if (digits.length >= 3 && digits.length <= 20) return digits;
  toast(t('phone_bad_number', { number }), 'error');
  return null;
}

/**
 * Asks the other side of `call` to call `digits` instead (REFER), replacing the consultation
 * `replaces` (a session) for an attended transfer. Once they say the new call is answered,
 * this console leaves the call, and the consultation with it; a refusal says so and keeps
 * the call. `shown` is how the panel names the number.
 */
function sendRefer(call, shown, digits, replaces) {
  const domain = phone.credentials.uri.split('@')[1];
  call.transferring = shown;
  renderCall();
  const failed = (why) => {
    if (phone.call !== call || call.ended) return;
    call.transferring = null;
    toast(t('phone_transfer_failed', { why }), 'error');
    renderCall();
  };
  try {
    call.session.refer(`sip:${digits}@${domain}`, {
      ...(replaces ? { replaces } : {}),
      eventHandlers: {
        requestFailed: (e) => failed(e?.cause || e?.response?.reason_phrase || 'REFER'),
        failed: (e) => failed(e?.status_line?.reason_phrase || 'NOTIFY'),
        accepted: () => {
          if (phone.call !== call || call.ended) return;
          call.transferredTo = shown;
          // The transferor's BYE, after JsSIP has answered the NOTIFY that said so.
          setTimeout(() => {
            for (const session of [replaces, call.session]) if (session && !session.isEnded()) session.terminate();
          }, 0);
        },
      },
    });
  } catch (err) {
    failed(err.message);
  }
}

function toggleHold() {
  const call = phone.call;
  if (!call || call.state !== 'talking') return;
  if (call.held) call.session.unhold();
  else call.session.hold();
}

// ---- what the dispatcher sees ------------------------------------------------------------

function ensureDom() {
  if (dom.phoneStatus) return;
  dom.phoneStatus = h(
    'span',
    { id: 'phone-status', class: 'conn phone-line', role: 'status', 'aria-live': 'polite', hidden: true },
    h('span', { class: 'conn-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'phone-line-label' }),
    h('span', { class: 'phone-line-text' }),
  );
  (byId('conn-status') || dom.conn)?.after(dom.phoneStatus);
  dom.phonePanel = h('section', { id: 'phone', class: 'phone-panel', 'aria-live': 'assertive', hidden: true });
  dom.phoneAudio = h('audio', { id: 'phone-audio', autoplay: true });
  document.body.append(dom.phonePanel, dom.phoneAudio);
  // The page's language changes by setting <html lang>: the words follow it.
  new MutationObserver(() => {
    renderLine();
    renderCall();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ['lang'] });
}

function showLine(line, why = '') {
  phone.line = line;
  phone.why = why;
  renderLine();
}

function renderLine() {
  ensureDom();
  const node = dom.phoneStatus;
  if (!phone.credentials && phone.line !== 'failed') {
    node.hidden = true;
    return;
  }
  node.hidden = false;
  node.dataset.state = phone.line;
  node.querySelector('.phone-line-label').textContent = t('phone_label');
  node.querySelector('.phone-line-text').textContent = t(`phone_${phone.line}`);
  node.title = phone.line === 'failed' ? t('phone_failed_title', { why: phone.why }) : phone.credentials?.uri || '';
}

/** The incident this call is about: the one it was dialled from, or the one an incoming
 * call rings on once the engine has it (the SIP server tells it). */
function incidentOf(call) {
  if (call?.incidentId !== null && call?.incidentId !== undefined) return state.incidents.get(String(call.incidentId)) ?? null;
  if (!call?.callId) return null;
  for (const view of state.incidents.values()) {
    if (Array.isArray(view.calls) && view.calls.some((c) => c.call_id === call.callId)) return view;
  }
  return null;
}

function callerText(call, view) {
  const number = call.from && call.from !== 'anonymous' ? formatPhone(call.from) : t('phone_withheld');
  const name = call.direction === 'out' ? call.label : view?.elder?.name;
  return name ? `${name} · ${number}` : view || call.from ? number : t('phone_unknown_caller');
}

/** Why a call failed, in words where JsSIP's cause is a common one. */
function causeText(cause) {
  const key = { Busy: 'busy', 'No Answer': 'no_answer', Unavailable: 'unavailable', 'Not Found': 'not_found', Rejected: 'rejected' }[cause];
  return key ? t(`phone_cause_${key}`) : cause;
}

function stateText(call) {
  if (call.ended) {
    if (call.ended.kind === 'missed') return t('phone_missed');
    if (call.ended.kind === 'cancelled') return t('phone_cancelled');
    if (call.transferredTo || call.transferring) return t('phone_transferred', { number: formatPhone(call.transferredTo || call.transferring) });
    if (call.ended.kind === 'failed') return t('phone_failed_call', { why: causeText(call.ended.cause) });
    return t('phone_ended');
  }
  if (call.state === 'ringing') return t('phone_incoming');
  if (call.state === 'dialling') return t('phone_dialling');
  if (call.state === 'ringing_out') return t('phone_ringing_out');
  if (call.state === 'connecting') return t('phone_connecting_call');
  if (call.transferring) return t('phone_transferring', { number: formatPhone(call.transferring) });
  return call.held ? t('phone_held') : t('phone_talking');
}

function button(action, label, cls, onclick, extra = {}) {
  return h('button', { class: `btn ${cls}`, type: 'button', 'data-phone-action': action, onclick, ...extra }, label);
}

function renderCall() {
  ensureDom();
  const call = phone.call;
  const panel = dom.phonePanel;
  clearInterval(phone.clockTimer);
  phone.clockTimer = null;
  if (!call) {
    panel.hidden = true;
    panel.replaceChildren();
    panel.removeAttribute('data-state');
    return;
  }
  const view = incidentOf(call);
  panel.hidden = false;
  panel.dataset.state = call.ended ? 'ended' : call.held ? 'held' : call.state;
  panel.dataset.callId = call.callId;
  const talking = call.state === 'talking' && !call.ended;
  const buttons = [];
  if (call.state === 'ringing' && !call.ended) buttons.push(button('answer', t('phone_answer'), 'btn-primary', answer));
  if (talking) {
    buttons.push(
      button('mute', call.muted ? t('phone_unmute') : t('phone_mute'), call.muted ? 'btn-warn' : '', toggleMute, { 'aria-pressed': String(call.muted) }),
      button('hold', call.held ? t('phone_resume') : t('phone_hold'), call.held ? 'btn-warn' : '', toggleHold, { 'aria-pressed': String(call.held) }),
      button('transfer', t('phone_transfer'), call.choosing ? 'btn-warn' : '', toggleTransfer, {
        'aria-pressed': String(Boolean(call.choosing)),
        'aria-expanded': String(Boolean(call.choosing)),
        title: t('phone_transfer_title'),
        disabled: Boolean(call.transferring),
      }),
    );
  }
  const c = call.consult;
  if (c && !call.ended) {
    // A consultation: the caller waits on hold; complete the transfer, or go back to them.
    buttons.length = 0;
    buttons.push(
      button('complete-transfer', t('phone_complete_transfer'), 'btn-primary', completeTransfer, { disabled: c.state !== 'talking' || Boolean(call.transferring) }),
      button('end-consult', t('phone_end_consult'), '', endConsult, { disabled: Boolean(call.transferring) }),
    );
  }
  if (!call.ended) buttons.push(button('hangup', t('phone_hangup'), 'btn-alarm', hangUp));
  panel.replaceChildren(
    h('div', { class: 'phone-head' },
      h('span', { class: 'phone-state', 'data-field': 'phone-state' }, stateText(call)),
      h('span', { class: 'phone-clock', 'data-field': 'phone-clock' }, clockText(call)),
    ),
    h('div', { class: 'phone-caller', 'data-field': 'phone-caller' }, callerText(call, view)),
    view
      ? h('button', { class: 'btn btn-small btn-quiet phone-open', type: 'button', 'data-incident-id': view.id, onclick: () => openIncident(String(view.id)) }, t('phone_open_incident'))
      : null,
    ...(c && !call.ended
      ? [
          h(
            'div',
            { class: 'phone-consult', 'data-field': 'phone-consult', 'data-state': c.state },
            t('phone_consulting', { number: formatPhone(c.number), state: t(c.state === 'talking' ? 'phone_talking' : c.state === 'ringing_out' ? 'phone_ringing_out' : 'phone_dialling') }),
          ),
        ]
      : []),
    h('div', { class: 'phone-buttons' }, buttons),
    ...(talking && call.choosing && !c ? [transferTargets(view)] : []),
  );
  // Once a second while it is shown: the talk time, and the incident once the engine has
  // it (the SIP server tells anxind a moment after the console starts ringing). Only text
  // changes in place, so a button is never replaced under the dispatcher's pointer.
  phone.clockTimer = setInterval(() => {
    if (phone.call !== call) return;
    if (!view && incidentOf(call)) {
      renderCall();
      return;
    }
    const clock = panel.querySelector('.phone-clock');
    if (clock) clock.textContent = clockText(call);
  }, 1000);
}

/**
 * Attended transfer, first step: the caller is put on hold and this console calls `number`
 * (a consultation, on the incident as a call out). Once they answer, the dispatcher either
 * completes the transfer (completeTransfer) or ends the consultation and goes back to the
 * caller (endConsult).
 */
function consult(number) {
  const call = phone.call;
  if (!call || call.state !== 'talking' || call.ended || call.transferring || call.consult) return;
  const digits = numberToCall(number);
  if (!digits) return;
  call.choosing = false;
  if (!call.held) call.session.hold();
  const view = incidentOf(call);
  const incidentId = call.incidentId ?? view?.id ?? null;
  call.consult = { session: null, number: String(number).trim(), digits, state: 'dialling', remote: null };
  phone.consulting = call;
  renderCall();
  try {
    placeCall(digits, incidentId);
  } catch (err) {
    phone.consulting = null;
    call.consult = null;
    toast(t('phone_failed_call', { why: err.message }), 'error');
    renderCall();
  }
}

/** The consultation's session, as JsSIP reports it while consult() waits. */
function onConsultSession(session, request) {
  const call = phone.consulting;
  phone.consulting = null;
  const c = call.consult;
  if (!c) {
    session.terminate();
    return;
  }
  Object.assign(c, { session, callId: request?.call_id || '' });
  const mine = () => phone.call === call && call.consult === c;
  const listen = (pc) =>
    pc.addEventListener('track', (ev) => {
      c.remote = ev.streams[0] || new MediaStream([ev.track]);
      if (mine()) playRemote(c.remote);
    });
  if (session.connection) listen(session.connection);
  else session.on('peerconnection', ({ peerconnection }) => listen(peerconnection));
  const on = (event, change) =>
    session.on(event, (e) => {
      if (!mine()) return;
      change(e);
      renderCall();
    });
  on('progress', () => {
    if (c.state === 'dialling') c.state = 'ringing_out';
  });
  on('confirmed', () => {
    c.state = 'talking';
  });
  const over = (e) => {
    // The consultation ended before the transfer (they hung up, or could not be reached):
    // back to the caller.
    if (call.transferredTo) return;
    if (c.state !== 'talking') toast(t('phone_consult_failed', { why: causeText(e?.cause || '') }), 'error');
    call.consult = null;
    if (!call.ended && call.held) call.session.unhold();
    if (call.remote) playRemote(call.remote);
  };
  on('ended', over);
  on('failed', over);
  renderCall();
}

/** Attended transfer, second step: the caller is asked to call the consulted party, taking
 * the consultation's place (REFER with Replaces); then this console leaves both calls. */
function completeTransfer() {
  const call = phone.call;
  const c = call?.consult;
  if (!c || c.state !== 'talking' || call.ended || call.transferring) return;
  sendRefer(call, c.number, c.digits, c.session);
}

/** Ends the consultation and goes back to the caller. */
function endConsult() {
  const c = phone.call?.consult;
  if (!c) return;
  if (c.session && !c.session.isEnded()) c.session.terminate();
  else {
    phone.call.consult = null;
    phone.consulting = null;
    if (phone.call.held) phone.call.session.unhold();
    renderCall();
  }
}

/** Where the call can be handed: the incident's station duty line, the emergency number for
 * its kind, or a number typed in. */
function transferTargets(view) {
  const targets = [];
  if (view?.station?.phone) {
    targets.push({ number: view.station.phone, label: t('phone_transfer_station', { name: view.station.name || view.station.id }) });
  }
  const emergency = view ? defaultEmergencyNumber(view) : '120';
  targets.push({ number: emergency, label: t('phone_transfer_emergency') });
  const input = h('input', { class: 'phone-transfer-number', type: 'tel', inputmode: 'tel', autocomplete: 'off', 'aria-label': t('phone_transfer_other'), placeholder: t('phone_transfer_other') });
  const call = phone.call;
  const go = (number) => (call?.transferMode === 'consult' ? consult(number) : transfer(number));
  const other = () => go(input.value);
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') other();
  });
  const mode = (which, label, hint) =>
    h('button', {
      class: `btn btn-small${(call?.transferMode || 'blind') === which ? ' btn-warn' : ''}`,
      type: 'button',
      'data-transfer-mode': which,
      'aria-pressed': String((call?.transferMode || 'blind') === which),
      title: hint,
      onclick: () => {
        if (!call) return;
        call.transferMode = which;
        renderCall();
      },
    }, label);
  return h(
    'div',
    { class: 'phone-transfer', 'data-field': 'phone-transfer' },
    h('div', { class: 'phone-transfer-modes' }, mode('blind', t('phone_transfer_blind'), t('phone_transfer_blind_title')), mode('consult', t('phone_transfer_consult'), t('phone_transfer_consult_title'))),
    ...targets.map((tg) =>
      h('button', { class: 'btn btn-small', type: 'button', 'data-transfer-to': String(tg.number).replace(/\D/g, ''), onclick: () => go(tg.number) }, tg.label, ' ', h('span', { class: 'phone-transfer-digits' }, formatPhone(String(tg.number)))),
    ),
    h('div', { class: 'phone-transfer-other' }, input, h('button', { class: 'btn btn-small', type: 'button', 'data-phone-action': 'transfer-other', onclick: other }, t('phone_transfer_go'))),
  );
}

const clockText = (call) => (call.startedAt && !call.ended ? formatElapsed(Date.now() - call.startedAt) : '');

function endCallView() {
  stopRemote();
  phone.call = null;
  renderCall();
}

function playRemote(stream) {
  ensureDom();
  dom.phoneAudio.srcObject = stream;
  dom.phoneAudio.play?.().catch(() => {
    // Autoplay refused: the sign-in click normally allows it; nothing else to do here.
  });
}

function stopRemote() {
  if (dom.phoneAudio) dom.phoneAudio.srcObject = null;
}
