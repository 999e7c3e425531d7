// JSON over HTTP for the pages that talk REST (the family page, the services board): one
// call that never throws, so a page words every outcome the same way.

/**
 * `method` on `path` with `body` sent as JSON (none if absent), the session's cookie along:
 * `{ ok, status, body }`, `body` the answer's JSON or null; a request that never got an
 * answer (no network, the server down) is status 0.
 */
export async function requestJson(method, path, body) {
  try {
    const res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    let json = null;
    try {
      json = await res.json();
    } catch {
      json = null;
    }
    return { ok: res.ok, status: res.status, body: json };
  } catch {
    return { ok: false, status: 0, body: null };
  }
}
