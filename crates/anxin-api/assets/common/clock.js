// The server's clock as seen from this browser. Every frame that carries `server_time` is a
// sample. A frame may be older than its arrival (a phone is handed the latest `job` frame
// when it connects, with the time it was made), so a sample can only make the server look
// behind, never ahead: the largest recent difference is the best estimate. Samples expire,
// in case the device's own clock is set meanwhile.

const SAMPLE_LIFE_MS = 10 * 60 * 1000;

/** [device time received, server_time − device time] for each recent sample */
let samples = [];
let offsetMs = 0;

/** Takes a frame's `server_time` (ms since the epoch); anything else is ignored. */
export function observeServerTime(serverTime) {
  const at = Number(serverTime);
  if (typeof serverTime !== 'number' || !Number.isFinite(at)) return;
  const now = Date.now();
  samples = samples.filter(([t]) => now - t < SAMPLE_LIFE_MS && t <= now);
  samples.push([now, at - now]);
  offsetMs = Math.max(...samples.map(([, offset]) => offset));
}

/** The server's time now, in ms since the epoch. */
export function serverNow() {
  return Date.now() + offsetMs;
}
