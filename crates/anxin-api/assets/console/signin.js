// Signing in and out: the console shows nothing until the server knows who is signed in
// (a session cookie from POST /api/v1/session).

import { t } from '../common/i18n.js';
import { silenceAlarms, unlockAudio } from './alarm.js';
import { renderBulkButton } from './bulk.js';
import { connect, disconnect, setConn } from './feed.js';
import { renderStatic } from './header.js';
import { ensureMap, map } from './map-card.js';
import { startPhone, stopPhone } from './phone.js';
import { dirty, renderSummary, rows } from './queue.js';
import { resetWelfareRows } from './welfare.js';
import { dom, state } from './state.js';

export function showSignin(message) {
  disconnect();
  stopPhone();
  state.me = null;
  resetData();
  dom.app.hidden = true;
  dom.signin.hidden = false;
  document.body.dataset.view = 'signin';
  dom.signinError.hidden = !message;
  dom.signinError.textContent = message || '';
  dom.signinSubmit.disabled = false;
  dom.signinSubmit.textContent = t('signin_submit');
  document.title = t('title_short');
  dom.signinUser.focus();
}

function resetData() {
  state.incidents.clear();
  state.responders.clear();
  state.stations.clear();
  state.alarms.clear();
  state.online = null;
  state.stalled = false;
  state.lastSeq = null;
  state.seqs.clear();
  state.history = null;
  state.loaded = false;
  state.everConnected = false;
  state.attempt = 0;
  state.openId = null;
  state.selectedId = null;
  state.form = null;
  rows.clear();
  dirty.clear();
  if (dom.tbody) dom.tbody.replaceChildren();
  resetWelfareRows();
  if (dom.detail) dom.detail.hidden = true;
  if (map) map.clear();
  silenceAlarms();
  renderBulkButton();
}

function showApp(user) {
  // An administrator keeps the ledger and sees no incidents (the feed refuses them with
  // 4403), so the console never opens for them; a supervisor may ask for the ledger too.
  if (user.role === 'admin' || (user.role === 'supervisor' && location.hash === '#ledger')) {
    location.replace('/ledger');
    return;
  }
  // --- wallboard (issue 24): a supervisor sent to sign in from /console/wall goes back there.
  if (user.role === 'supervisor' && location.hash === '#wall') {
    location.replace('/console/wall');
    return;
  }
  // --- end wallboard
  // The services board sends a dispatcher here to sign in, with where to go back to.
  const back = /^#services=(.*)$/.exec(location.hash);
  if (back) {
    const path = decodeURIComponent(back[1]);
    if (path.startsWith('/console/services')) {
      location.replace(path);
      return;
    }
  }
  state.me = user;
  dom.signin.hidden = true;
  dom.app.hidden = false;
  document.body.dataset.view = 'console';
  ensureMap();
  renderStatic();
  renderSummary();
  setConn('reconnecting');
  connect();
  startPhone();
}

export async function checkSession() {
  try {
    const res = await fetch('/api/v1/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (res.ok) {
      const body = await res.json();
      if (body && body.user) {
        showApp(body.user);
        return;
      }
    }
  } catch {
    // Server unreachable: the sign-in form says so when used.
  }
  showSignin('');
}

export async function signIn(ev) {
  ev.preventDefault();
  unlockAudio();
  const user = dom.signinUser.value.trim();
  const password = dom.signinPassword.value;
  if (!user || !password) {
    dom.signinError.textContent = t('signin_missing');
    dom.signinError.hidden = false;
    return;
  }
  dom.signinSubmit.disabled = true;
  dom.signinSubmit.textContent = t('signin_busy');
  let message;
  try {
    const res = await fetch('/api/v1/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ user, password }),
    });
    if (res.ok) {
      const body = await res.json();
      dom.signinPassword.value = '';
      dom.signinError.hidden = true;
      showApp(body.user || { id: user, name: user, role: 'dispatcher' });
      return;
    }
    if (res.status === 401) message = t('signin_wrong');
    else if (res.status === 429) message = t('signin_wait', { seconds: res.headers.get('Retry-After') || '?' });
    else message = t('signin_failed', { status: res.status });
  } catch {
    message = t('signin_failed', { status: '—' });
  }
  dom.signinSubmit.disabled = false;
  dom.signinSubmit.textContent = t('signin_submit');
  dom.signinError.textContent = message;
  dom.signinError.hidden = false;
  dom.signinPassword.select();
}

export async function signOut() {
  disconnect();
  try {
    await fetch('/api/v1/session', { method: 'DELETE', credentials: 'same-origin' });
  } catch {
    // Signed out here either way; the cookie expires on its own.
  }
  showSignin('');
}

