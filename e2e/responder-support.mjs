// Helpers for the responder phone tests: the demo district as the daemon prints it, who is
// nearest to whom, a phone-sized browser context, the frames a page's socket carries, and
// the responder page served from the working tree for scripted-server tests.

import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { assetFile, repoRoot, resultsDir } from './support.mjs';

const EARTH_RADIUS_M = 6_371_008.8;
// The daemon's dispatch defaults (anxin-core `Policy::default`): nobody further than this is
// offered an incident, and among those the one who gets there soonest by their travel mode,
// inside their station's service circle, is offered first.
const MAX_OFFER_DISTANCE_M = 5_000;
const SPEED_MPS = { foot: 1.2, ebike: 4.0, car: 6.0 };
const DETOUR_FACTOR = 1.3;
const DEFAULT_SERVICE_CIRCLE_MIN = 15;
// The chosen responder must win by this much on both counts, so that neither rounding nor the
// choice between "nearest" and "soonest" can change who is offered the job.
const CLEAR_WIN_M = 50;
const CLEAR_WIN_MIN = 0.5;

export const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  locale: 'zh-CN',
  timezoneId: 'Asia/Shanghai',
};

function daemonBin() {
  return process.env.ANXIND_BIN ? resolve(process.env.ANXIND_BIN) : join(repoRoot, 'target', 'debug', 'anxind');
}

/** The demo district the daemon runs with: elders, devices, stations, responders. */
export function demoRegistry() {
  const text = execFileSync(daemonBin(), ['registry-example'], { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(text.toString('utf8'));
}

/** Great-circle distance in metres (haversine on the mean Earth radius). */
export function greatCircleM(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** On-duty responders with a position, nearest to `at` first, with their distances. */
export function respondersByDistance(registry, at) {
  return registry.responders
    .filter((r) => r.on_duty !== false && r.position)
    .map((r) => ({ responder: r, distance_m: greatCircleM(at, r.position) }))
    .sort((x, y) => x.distance_m - y.distance_m);
}

/** Minutes a responder needs to reach a point `distance_m` away, as the daemon estimates it. */
function travelMin(responder, distance_m) {
  const speed = SPEED_MPS[responder.mode] ?? SPEED_MPS.foot;
  return (distance_m * DETOUR_FACTOR) / speed / 60;
}

/**
 * Picks `count` SOS presses (a device and its elder), each with a different responder who is
 * both the nearest on-duty responder to the elder's home by great circle and the one the
 * daemon offers first (soonest there, inside their station's service circle), clearly on
 * both counts. Elders with notes and a phone come first, so the card shows everything.
 */
export function pickPresses(registry, count) {
  const elders = new Map(registry.elders.map((e) => [e.id, e]));
  const circles = new Map(registry.stations.map((s) => [s.id, s.service_circle_min ?? DEFAULT_SERVICE_CIRCLE_MIN]));
  const candidates = [];
  for (const device of registry.devices) {
    const elder = elders.get(device.elder_id);
    if (!elder?.home) continue;
    const byDistance = respondersByDistance(registry, elder.home).filter((c) => c.distance_m <= MAX_OFFER_DISTANCE_M);
    const [nearest, runnerUp] = byDistance;
    if (!nearest || (runnerUp && runnerUp.distance_m - nearest.distance_m < CLEAR_WIN_M)) continue;
    const bySpeed = byDistance
      .map((c) => ({ ...c, minutes: travelMin(c.responder, c.distance_m) }))
      .filter((c) => c.minutes <= (circles.get(c.responder.station_id) ?? DEFAULT_SERVICE_CIRCLE_MIN))
      .sort((x, y) => x.minutes - y.minutes);
    const [soonest, nextSoonest] = bySpeed;
    if (soonest?.responder.id !== nearest.responder.id) continue;
    if (nextSoonest && nextSoonest.minutes - soonest.minutes < CLEAR_WIN_MIN) continue;
    const richness = (elder.notes ? 2 : 0) + (elder.phone ? 1 : 0);
    candidates.push({ device, elder, responder: nearest.responder, distance_m: nearest.distance_m, richness });
  }
  candidates.sort((a, b) => b.richness - a.richness || a.device.id.localeCompare(b.device.id));
  const picked = [];
  const used = new Set();
  for (const c of candidates) {
    if (used.has(c.responder.id)) continue;
    used.add(c.responder.id);
    picked.push(c);
    if (picked.length === count) return picked;
  }
  throw new Error(`the demo district has only ${picked.length} presses with distinct clearly-nearest responders`);
}

/** A new phone-sized context and page; `position` grants geolocation at that point. */
export async function openPhone(browser, { position, lang } = {}) {
  const options = { ...PHONE };
  if (position) {
    options.geolocation = { latitude: position.lat, longitude: position.lon, accuracy: 12 };
    options.permissions = ['geolocation'];
  }
  if (lang === 'en') options.locale = 'en-GB';
  const context = await browser.newContext(options);
  const page = await context.newPage();
  return { context, page };
}

/** Records the JSON frames each socket of the page sends and receives, in order. */
export function recordFrames(page) {
  const frames = { sent: [], received: [] };
  const parse = (payload) => {
    try {
      return JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
    } catch {
      return { unparsed: String(payload) };
    }
  };
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => frames.sent.push(parse(f.payload)));
    ws.on('framereceived', (f) => frames.received.push(parse(f.payload)));
  });
  return frames;
}

/** Polls `probe` until it returns something truthy, or fails with `what` after `timeoutMs`. */
export async function eventually(probe, what, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Saves a screenshot of the phone's screen to e2e/test-results/screenshots, and also to
 * docs/screenshots when UPDATE_SCREENSHOTS=1.
 */
export async function screenshot(page, name) {
  const dirs = [join(resultsDir, 'screenshots')];
  if (process.env.UPDATE_SCREENSHOTS === '1') dirs.push(join(repoRoot, 'docs', 'screenshots'));
  const image = await page.screenshot({ animations: 'disabled', caret: 'hide' });
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${name}.png`), image);
  }
}

/** Serves the responder page and its assets from the working tree at a made-up origin. */
export async function serveResponderAssets(page, origin) {
  await page.route(`${origin}/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    const file = await assetFile(path, { '/responder': 'responder.html' });
    if (!file) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({ status: 200, contentType: file.type, body: file.body });
  });
}

/**
 * A scripted stand-in for the server's phone socket: every socket the page opens to /ws is
 * answered here. `onSocket(socket, url)` runs for each; `socket.send(obj)` sends a frame,
 * `socket.sent` holds what the page sent, `socket.close(code)` closes it.
 */
export async function scriptServer(page, onSocket) {
  const sockets = [];
  await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
    const socket = {
      url: new URL(ws.url()),
      sent: [],
      send: (obj) => ws.send(JSON.stringify(obj)),
      close: (code = 1000, reason = '') => ws.close({ code, reason }),
    };
    ws.onMessage((message) => {
      try {
        socket.sent.push(JSON.parse(String(message)));
      } catch {
        socket.sent.push({ unparsed: String(message) });
      }
    });
    sockets.push(socket);
    onSocket(socket);
  });
  return sockets;
}
