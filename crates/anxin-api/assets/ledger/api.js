// The administration API (/api/v1/admin/...) as the ledger page calls it: every answer is
// {status, body, etag}, never a throw, so a form can say what went wrong in its own words.

import { has, t } from '../common/i18n.js';

const BASE = '/api/v1/admin';

async function call(method, path, { body, ifMatch } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (ifMatch) headers['If-Match'] = ifMatch;
  try {
    const res = await fetch(`${BASE}${path}`, {
      method,
      credentials: 'same-origin',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, ok: res.ok, body: json, etag: res.headers.get('ETag') };
  } catch {
    return { status: 0, ok: false, body: null, etag: null };
  }
}

const seg = (s) => encodeURIComponent(s);

/** One page of `plural` (elders, devices…) matching `query` ({search, station, elder, retired, offset, limit}). */
export function listPage(plural, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '' && v !== false) params.set(k, String(v));
  }
  return call('GET', `/${plural}?${params}`);
}

export const readEntry = (plural, id) => call('GET', `/${plural}/${seg(id)}`);
export const readHistory = (plural, id) => call('GET', `/${plural}/${seg(id)}/history`);
export const createEntry = (plural, body) => call('POST', `/${plural}`, { body });
export const updateEntry = (plural, id, body, etag) => call('PUT', `/${plural}/${seg(id)}`, { body, ifMatch: etag });
export const retireEntry = (plural, id, etag) => call('DELETE', `/${plural}/${seg(id)}`, { ifMatch: etag });
export const resetPassword = (id) => call('POST', `/devices/${seg(id)}/password`);

/** A refused answer in the page's language: by its code, else the server's English, else the status. */
export function refusal(answer) {
  const code = answer.body && typeof answer.body.code === 'string' ? answer.body.code : '';
  if (code && has(`err_${code}`)) return t(`err_${code}`);
  if (answer.body && answer.body.error) return answer.body.error;
  return t('load_failed', { status: answer.status || '—' });
}

/** A field's problem in the page's language ({field, code, message} from a 422). */
export function fieldProblem(f) {
  return has(`fe_${f.code}`) ? t(`fe_${f.code}`, { message: f.message }) : f.message || f.code;
}
