// The live feed: one WebSocket to the daemon's /ws, kept open. A dropped socket is opened
// again after a backoff; frames are JSON; a request carries a request_id and is answered
// by a `result` frame with the same id, or fails on its own after a timeout or when the
// socket drops (then nobody can know whether the server got it).
//
// The page decides what a connection asks for (`url`, called before every attempt, so a
// console can resume from the last sequence number it applied) and what a close means
// (`onClose` returns true for a close that must not be retried, such as a refused sign-in).
//
// A socket can stall without closing (a laptop's Wi-Fi gone, a frozen server, a NAT that
// forgot us): with `stallAfterMs`, a feed whose open socket brings no frame for that long
// (the server sends a heartbeat every 5 s) says 'stalled', drops the socket and connects
// again.

// Backoff: 0.5 s doubling to 15 s, each delay drawn from its upper half so that a
// district's phones and consoles do not all come back in the same millisecond.
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
// A socket still connecting after this long is given up and tried again.
const CONNECT_TIMEOUT_MS = 10000;
// A connection that lived this long was healthy: the next failure starts backoff afresh.
// (A server that accepts and then drops at once is thereby not hammered.)
const HEALTHY_AFTER_MS = 10000;
// The server answers a request within 15 s or says it could not; past this we say so.
const REQUEST_TIMEOUT_MS = 20000;
// How often a feed with a stall limit looks at how long its socket has been silent.
const STALL_CHECK_MS = 1000;

/** The ws: or wss: URL of `path` on this page's host, with `params` (null ones left out). */
export function socketUrl(path, params = {}) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) query.set(k, String(v));
  const q = query.toString();
  return `${scheme}//${location.host}${path}${q ? `?${q}` : ''}`;
}

/**
 * A feed, not yet connected. Options:
 * - url(): the URL for the next connection;
 * - onFrame(frame): every frame but the answers to this feed's own requests;
 * - onStatus(status, attempt): 'connecting', 'open', 'stalled' (an open socket went
 *   silent and was dropped), 'waiting' (to reconnect) or 'stopped'; `attempt` counts the
 *   tries since the last healthy connection;
 * - onClose(event): true when this close must not be retried (the feed then stops);
 * - stallAfterMs: drop an open socket silent for this long (null: never).
 */
export function createFeed({ url, onFrame = () => {}, onStatus = () => {}, onClose = () => false, stallAfterMs = null }) {
  let ws = null;
  let running = false;
  let attempt = 0;
  let openedAt = null;
  let retryTimer = null;
  let lastFrameAt = 0;
  let stallTimer = null;
  const pending = new Map();
  const prefix = Math.random().toString(36).slice(2, 8);
  let nextRequest = 1;

  function status(s) {
    onStatus(s, attempt);
  }

  function connect() {
    retryTimer = null;
    if (!running) return;
    let socket;
    try {
      socket = new WebSocket(url());
    } catch {
      retry();
      return;
    }
    ws = socket;
    openedAt = null;
    status('connecting');
    const giveUp = setTimeout(() => {
      if (socket.readyState === WebSocket.CONNECTING) socket.close();
    }, CONNECT_TIMEOUT_MS);
    socket.onopen = () => {
      clearTimeout(giveUp);
      if (ws !== socket) return;
      openedAt = Date.now();
      lastFrameAt = openedAt;
      status('open');
    };
    socket.onmessage = (ev) => {
      if (ws !== socket || typeof ev.data !== 'string') return;
      lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!frame || typeof frame !== 'object') return;
      if (frame.type === 'result' && answer(frame)) return;
      onFrame(frame);
    };
    socket.onclose = (ev) => {
      clearTimeout(giveUp);
      if (ws !== socket) return;
      ws = null;
      if (openedAt !== null && Date.now() - openedAt >= HEALTHY_AFTER_MS) attempt = 0;
      failPending();
      if (onClose(ev) === true) {
        stop();
        return;
      }
      retry();
    };
    socket.onerror = () => {};
  }

  function retry() {
    if (retryTimer !== null || !running) return;
    attempt += 1;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
    retryTimer = setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
    status('waiting');
  }

  /** Resolves the request this result answers; false if it answers none of ours. */
  function answer(frame) {
    const entry = pending.get(String(frame.request_id));
    if (!entry) return false;
    pending.delete(String(frame.request_id));
    clearTimeout(entry.timer);
    entry.resolve(frame);
    return true;
  }

  function failPending() {
    for (const [id, entry] of pending) {
      clearTimeout(entry.timer);
      pending.delete(id);
      entry.resolve({ ok: false, failure: 'lost' });
    }
  }

  /** Drops the current socket without waiting for its close (it may never come). */
  function drop() {
    const socket = ws;
    if (!socket) return;
    ws = null;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    try {
      socket.close();
    } catch {
      // Closing a socket that is already going is no failure.
    }
    failPending();
  }

  function checkStall() {
    if (!running || !ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastFrameAt < stallAfterMs) return;
    drop();
    status('stalled');
    retry();
  }

  /** Drops the socket and connects again at once (the page found it is behind). */
  function reconnect() {
    if (!running) return;
    drop();
    if (retryTimer !== null) clearTimeout(retryTimer);
    connect();
  }

  // Back online or back in the foreground: no reason to sit out the backoff.
  function reconnectNow() {
    if (retryTimer === null) return;
    clearTimeout(retryTimer);
    connect();
  }
  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') reconnectNow();
  });

  /** Connects (again) from a fresh backoff. */
  function start() {
    if (running) return;
    running = true;
    attempt = 0;
    if (stallAfterMs && stallTimer === null) stallTimer = setInterval(checkStall, STALL_CHECK_MS);
    connect();
  }

  /** Closes the socket for good; requests in flight fail as 'lost'. */
  function stop() {
    running = false;
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = null;
    if (stallTimer !== null) clearInterval(stallTimer);
    stallTimer = null;
    const socket = ws;
    ws = null;
    if (socket) socket.close(1000);
    failPending();
    status('stopped');
  }

  const isOpen = () => Boolean(ws && ws.readyState === WebSocket.OPEN);

  /** Sends a frame now; false when there is no open socket to send it on. */
  function send(frame) {
    if (!isOpen()) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Sends a frame with a fresh request_id and resolves with its `result` frame, or with
   * {ok: false, failure} where failure is 'offline' (not sent), 'timeout' or 'lost'.
   */
  function request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve) => {
      const requestId = `${prefix}-${nextRequest++}`;
      if (!send({ ...frame, request_id: requestId })) {
        resolve({ ok: false, failure: 'offline' });
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(requestId);
        resolve({ ok: false, failure: 'timeout' });
      }, timeoutMs);
      pending.set(requestId, { resolve, timer });
    });
  }

  return { start, stop, send, request, isOpen, reconnect, reconnectNow, attempt: () => attempt };
}
