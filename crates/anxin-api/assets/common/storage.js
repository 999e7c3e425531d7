// Remembering small things (a language, a sign-in token) in localStorage, which a browser
// may refuse (private windows, storage full): then the page works and forgets on reload.

/** The stored text under `key`, or null when there is none or storage is refused. */
export function recall(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Stores `value` under `key`; null forgets it. */
export function remember(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Not remembered across reloads; nothing else depends on it.
  }
}
