// Sharing the phone's position while on duty: a watch on the browser's geolocation, and
// the latest fix sent to the server at most every 15 s (a fix that cannot go now waits for
// the next chance; only the newest is kept).

// Location goes to the server at most this often.
const LOCATION_EVERY_MS = 15000;
// A check-in waits this long for a position before it says it has none.
const POSITION_TIMEOUT_MS = 20000;
// The watch that shares the position while on duty gives a fix whenever the phone moves; one
// this recent stands for where the phone is (asking afresh while the watch runs may get no
// answer in some browsers until the phone moves).
const FIX_FRESH_MS = 30000;

/**
 * Where the phone is now, for a check-in at a door: the watch's last fix if it is fresh
 * (`lastFix()`, {lat, lon, at} or null), else a position asked for; `{failure}` with a
 * string key when there is none.
 */
export function currentPosition(lastFix) {
  const fix = lastFix();
  if (fix && Date.now() - fix.at < FIX_FRESH_MS) return Promise.resolve({ lat: fix.lat, lon: fix.lon });
  return new Promise((resolve) => {
    if (!('geolocation' in navigator) || !navigator.geolocation) return resolve({ failure: 'visit_no_position' });
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({ lat: Number(pos.coords.latitude.toFixed(6)), lon: Number(pos.coords.longitude.toFixed(6)) }),
      (err) => resolve({ failure: err && err.code === 1 ? 'visit_position_denied' : 'visit_no_position' }),
      { enableHighAccuracy: true, maximumAge: 0, timeout: POSITION_TIMEOUT_MS },
    );
  });
}

/**
 * wanted(): whether to share now (signed in and on duty); send(frame): sends a `location`
 * frame, false if it could not go; changed(): the status or the last sent time changed.
 * Returns { geo, update, flush }: geo.status is off | waiting | sharing | denied | error |
 * unavailable | insecure, geo.lastSentAt when a fix last went, geo.fix the last fix the watch
 * gave ({lat, lon, at}: a carer's check-in uses it); update() starts or stops the
 * watch as wanted() says; flush() sends a kept fix if it may go.
 */
export function createLocationSharing({ wanted, send, changed }) {
  const g = { watchId: null, status: 'off', latest: null, lastSentAt: 0, timer: null, fix: null };

  function update() {
    const want = wanted();
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
    g.latest = {
      lat: Number(c.latitude.toFixed(6)),
      lon: Number(c.longitude.toFixed(6)),
      accuracy_m: Number.isFinite(c.accuracy) ? Math.round(c.accuracy) : undefined,
    };
    g.fix = { lat: g.latest.lat, lon: g.latest.lon, at: Date.now() };
    if (g.status !== 'sharing') {
      g.status = 'sharing';
      changed();
    }
    flush();
  }

  function onPositionError(err) {
    if (err && err.code === 1) {
      // Refused: stop asking; a reload (after allowing it in settings) asks again.
      if (g.watchId !== null) navigator.geolocation.clearWatch(g.watchId);
      g.watchId = null;
      g.status = 'denied';
    } else if (g.status !== 'sharing' || !g.latest) {
      g.status = 'error';
    }
    changed();
  }

  /** Sends the latest position now, or schedules it for when 15 s have passed since the last. */
  function flush() {
    if (!g.latest || g.timer !== null) return;
    const wait = g.lastSentAt + LOCATION_EVERY_MS - Date.now();
    if (wait > 0) {
      g.timer = setTimeout(() => {
        g.timer = null;
        flush();
      }, wait);
      return;
    }
    const frame = { type: 'location', lat: g.latest.lat, lon: g.latest.lon };
    if (g.latest.accuracy_m !== undefined) frame.accuracy_m = g.latest.accuracy_m;
    if (send(frame)) {
      g.lastSentAt = Date.now();
      g.latest = null;
      changed();
    }
    // Not connected: kept in `latest`, sent after the next hello.
  }

  return { geo: g, update, flush };
}
