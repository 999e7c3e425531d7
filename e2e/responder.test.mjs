// The responder's phone page: against a real anxind, a press over MQTT becomes an offer on
// the phone of the nearest responder, who takes it through to resolved; another declines;
// a wrong token is refused. A second part drives the page from a scripted socket for what
// a live server does not show on demand (a phone clock that is off, a dropped connection,
// a refusal).
//
// Run from the repository root after `cargo build -p anxind`:
//   cd e2e && npm ci && node --test responder.test.mjs
// ANXIND_BIN overrides the daemon binary; UPDATE_SCREENSHOTS=1 also writes docs/screenshots.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, resultsDir, spawnDaemon, watchPageErrors } from './support.mjs';
import {
  demoRegistry,
  eventually,
  openPhone,
  pickPresses,
  recordFrames,
  screenshot,
  scriptServer,
  serveResponderAssets,
} from './responder-support.mjs';

// Generous, bounded waits: a debug build on a two-core machine can be slow.
const SHOWS_UP = { timeout: 15_000 };

const job = (page) => page.locator('#job');
const button = (page, action) => page.locator(`[data-action="${action}"]`);
const field = (page, name) => page.locator(`#job [data-field="${name}"]`);

async function signIn(page, url, token) {
  await page.goto(url);
  await page.locator('#token').fill(token);
  await button(page, 'sign-in').click();
}

// Each step leaves a screenshot behind when it fails, beside the daemon's log.
async function step(name, page, daemon, fn) {
  try {
    await fn();
  } catch (err) {
    await mkdir(resultsDir, { recursive: true });
    await page?.screenshot({ path: join(resultsDir, `failed-responder-${name}.png`) }).catch(() => {});
    if (daemon) err.message += `\n(daemon log: ${daemon.logPath}; last lines:\n${daemon.tail()})`;
    throw err;
  }
}

describe('responder phone on a live anxind', () => {
  let daemon;
  let browser;
  let url;
  let presses;

  before(async () => {
    presses = pickPresses(demoRegistry(), 2);
    daemon = await spawnDaemon();
    url = new URL('/responder', daemon.consoleUrl).toString();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('refuses a wrong token and stays signed out', { timeout: 30_000 }, async () => {
    const { context, page } = await openPhone(browser);
    await step('wrong-token', page, daemon, async () => {
      await signIn(page, url, 'not-a-token');
      const error = page.locator('#signin-error');
      await error.waitFor(SHOWS_UP);
      assert.match(await error.textContent(), /口令错误/);
      assert.ok(await page.locator('#token').isVisible(), 'back at sign-in');
      assert.equal(await page.evaluate(() => localStorage.getItem('anxin.responder.token')), null);

      // The same in English.
      await page.locator('#lang-toggle').click();
      await button(page, 'sign-in').click();
      await page.locator('#signin-error', { hasText: 'Please enter your token' }).waitFor(SHOWS_UP);
      await page.locator('#token').fill('still-not-a-token');
      await button(page, 'sign-in').click();
      await page.locator('#signin-error', { hasText: 'Wrong token' }).waitFor(SHOWS_UP);
    });
    await context.close();
  });

  it('takes an SOS from offer to resolved', { timeout: 120_000 }, async () => {
    const { device, elder, responder } = presses[0];
    const { context, page } = await openPhone(browser, { position: responder.position });
    const errors = watchPageErrors(page);
    const frames = recordFrames(page);
    const fetched = [];
    page.on('request', (r) => fetched.push(r.url()));

    await step('sign-in', page, daemon, async () => {
      await signIn(page, url, `demo-${responder.id}`);
      await page.locator('#conn-status[data-state="connected"]').waitFor(SHOWS_UP);
      await page.locator('#idle').waitFor(SHOWS_UP);
      assert.equal(await page.locator('#idle [data-field="responder-name"]').textContent(), responder.name);
      assert.equal(await button(page, 'duty').getAttribute('aria-checked'), 'true');
      assert.match(await page.locator('#idle-waiting').textContent(), /等待派单/);
      assert.ok(await job(page).isHidden(), 'no job card before a press');
      const hello = frames.received.find((f) => f.type === 'hello');
      assert.equal(hello?.responder?.id, responder.id);
    });

    await step('location', page, daemon, async () => {
      // On duty, the phone shares where it is (here: where the registry has the responder).
      const sent = await eventually(() => frames.sent.find((f) => f.type === 'location'), 'a location frame', 10_000);
      assert.ok(Math.abs(sent.lat - responder.position.lat) < 1e-5, JSON.stringify(sent));
      assert.ok(Math.abs(sent.lon - responder.position.lon) < 1e-5, JSON.stringify(sent));
      assert.equal(await page.locator('#geo-status').getAttribute('data-state'), 'sharing');
    });

    let incidentId;
    await step('offer', page, daemon, async () => {
      await publishEvent(daemon.mqttUrl, device.id);
      await page.locator('#job[data-state="offered"]').waitFor(SHOWS_UP);
      incidentId = await job(page).getAttribute('data-incident-id');
      assert.match(incidentId, /^\d+$/);
      assert.equal(await field(page, 'elder-name').textContent(), elder.name);
      assert.equal(await field(page, 'address').textContent(), elder.address);
      assert.equal(await field(page, 'kind').textContent(), '紧急呼叫 SOS');
      if (elder.notes) assert.equal(await field(page, 'notes-text').textContent(), elder.notes);
      if (elder.phone) assert.equal(await field(page, 'phone').getAttribute('href'), `tel:${elder.phone}`);
      // No fix in the press: the card goes to the registered home.
      assert.equal(await field(page, 'location').getAttribute('data-source'), 'home');
      const map = await field(page, 'map').getAttribute('href');
      assert.ok(
        map.startsWith(`https://uri.amap.com/marker?position=${elder.home.lon.toFixed(6)},${elder.home.lat.toFixed(6)}`),
        map,
      );
      assert.match(await field(page, 'distance').textContent(), /^\d+ 米$|^\d+\.\d 公里$/);
      assert.match(await field(page, 'eta').textContent(), /约 \d+ 分钟/);

      // The countdown runs.
      const countdown = field(page, 'countdown-time');
      const first = await countdown.textContent();
      assert.match(first, /^\d+:\d{2}$/);
      await page.waitForFunction(
        (before) => document.querySelector('#job [data-field="countdown-time"]').textContent !== before,
        first,
        { timeout: 5_000 },
      );
      assert.ok(await button(page, 'accept').isVisible());
      assert.ok(await button(page, 'decline').isVisible());
    });

    await step('screenshots', page, daemon, async () => {
      await screenshot(page, 'responder-offer-zh');
      await page.locator('#lang-toggle').click();
      assert.equal(await button(page, 'accept').textContent(), 'Accept');
      assert.equal(await field(page, 'kind').textContent(), 'SOS');
      await screenshot(page, 'responder-offer-en');
      await page.locator('#lang-toggle').click();
      assert.equal(await button(page, 'accept').textContent(), '接单');
    });

    await step('accept', page, daemon, async () => {
      await button(page, 'accept').click();
      await page.locator(`#job[data-state="accepted"][data-incident-id="${incidentId}"]`).waitFor(SHOWS_UP);
      assert.ok(await field(page, 'countdown').isHidden(), 'no countdown once accepted');
      assert.ok(await button(page, 'en_route').isVisible());
    });

    await step('reload', page, daemon, async () => {
      // A reload stays signed in and lands on the job as the server has it.
      await page.reload();
      await page.locator(`#job[data-state="accepted"][data-incident-id="${incidentId}"]`).waitFor(SHOWS_UP);
      await page.locator('#conn-status[data-state="connected"]').waitFor(SHOWS_UP);
    });

    await step('en-route-on-scene', page, daemon, async () => {
      await button(page, 'en_route').click();
      await page.locator('#job[data-state="en_route"]').waitFor(SHOWS_UP);
      await button(page, 'on_scene').click();
      await page.locator('#job[data-state="on_scene"]').waitFor(SHOWS_UP);
    });

    await step('resolve', page, daemon, async () => {
      // The outcome is required: nothing is sent without it.
      const before = frames.sent.length;
      await button(page, 'resolve').click();
      await page.locator('#outcome-error').waitFor(SHOWS_UP);
      assert.equal(frames.sent.filter((f, i) => i >= before && f.type === 'resolve').length, 0);

      await page.locator('#outcome').fill('已扶起，无外伤，家属已知悉');
      await button(page, 'resolve').click();
      await job(page).waitFor({ state: 'hidden', ...SHOWS_UP });
      await page.locator('#idle').waitFor(SHOWS_UP);
      const resolve = frames.sent.find((f) => f.type === 'resolve');
      assert.deepEqual(
        { ...resolve, request_id: undefined },
        { type: 'resolve', incident_id: Number(incidentId), outcome: '已扶起，无外伤，家属已知悉', request_id: undefined },
      );
      const results = frames.received.filter((f) => f.type === 'result');
      assert.ok(results.length >= 4, JSON.stringify(results));
      assert.deepEqual(results.filter((r) => !r.ok), []);
    });

    await step('sign-out', page, daemon, async () => {
      await button(page, 'sign-out').click();
      await page.locator('#token').waitFor(SHOWS_UP);
      assert.equal(await page.evaluate(() => localStorage.getItem('anxin.responder.token')), null);
      assert.deepEqual(
        fetched.filter((u) => !u.startsWith(new URL(url).origin)),
        [],
        'the page fetches nothing from elsewhere (the map is a link)',
      );
      assert.deepEqual(errors, []);
    });
    await context.close();
  });

  it('declines an offer, and the card goes away', { timeout: 90_000 }, async () => {
    const { device, elder, responder } = presses[1];
    const { context, page } = await openPhone(browser, { position: responder.position });
    const errors = watchPageErrors(page);
    const frames = recordFrames(page);

    await step('duty', page, daemon, async () => {
      await signIn(page, url, `demo-${responder.id}`);
      await page.locator('#idle').waitFor(SHOWS_UP);
      const duty = button(page, 'duty');
      assert.equal(await duty.getAttribute('aria-checked'), 'true');
      await duty.click();
      await page.locator('#duty[aria-checked="false"]').waitFor(SHOWS_UP);
      assert.match(await page.locator('#idle-waiting').textContent(), /休息/);
      await page.locator('#duty:not([disabled])').waitFor(SHOWS_UP);
      await duty.click();
      await page.locator('#duty[aria-checked="true"]').waitFor(SHOWS_UP);
      const duties = frames.sent.filter((f) => f.type === 'duty').map((f) => f.on);
      assert.deepEqual(duties, [false, true]);
    });

    await step('decline', page, daemon, async () => {
      await publishEvent(daemon.mqttUrl, device.id);
      await page.locator('#job[data-state="offered"]').waitFor(SHOWS_UP);
      assert.equal(await field(page, 'elder-name').textContent(), elder.name);
      const incidentId = Number(await job(page).getAttribute('data-incident-id'));
      await button(page, 'decline').click();
      // It asks why; a reason sends the decline.
      await page.locator('[data-reason="busy"]:not([disabled])').click();
      await job(page).waitFor({ state: 'hidden', ...SHOWS_UP });
      await page.locator('#idle').waitFor(SHOWS_UP);
      const decline = frames.sent.find((f) => f.type === 'decline');
      assert.equal(decline?.incident_id, incidentId);
      assert.equal(decline?.reason, 'busy');
      assert.ok(frames.received.some((f) => f.type === 'result' && f.request_id === decline.request_id && f.ok));
      assert.deepEqual(errors, []);
    });
    await context.close();
  });
});

describe('responder phone against a scripted socket', () => {
  // Loopback counts as a secure origin, so geolocation works as it does on the live daemon.
  const ORIGIN = 'http://127.0.0.1:61234';
  const URL_ = `${ORIGIN}/responder`;
  const HELLO = { type: 'hello', responder: { id: 'xs-r011', name: '王伟', station_id: 'xs-s01', on_duty: true } };
  let browser;

  const offer = (serverTime, over = {}) => ({
    incident_id: 12,
    state: 'offered',
    offer_deadline: serverTime + 45_000,
    kind: 'fall',
    elder: { name: '张秀英', address: '西山区前卫街道 12号', phone: '13800000000', notes: '独居；门禁 1234' },
    location: { lat: 25.0, lon: 102.6, accuracy_m: 15.0, source: 'device' },
    distance_m: 412.5,
    eta_min: 2,
    pressed_at: serverTime - 20_000,
    server_time: serverTime,
    ...over,
  });

  before(async () => {
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
  });

  it('counts down by the server clock when the phone clock is off', { timeout: 30_000 }, async () => {
    const { context, page } = await openPhone(browser);
    const errors = watchPageErrors(page);
    await serveResponderAssets(page, ORIGIN);
    const sockets = await scriptServer(page, (s) => {
      s.send(HELLO);
      // The server's clock is ten minutes ahead of the phone's.
      const serverNow = Date.now() + 10 * 60_000;
      s.send({ type: 'job', job: offer(serverNow) });
      s.send({ type: 'weather', today: 'sunny' });
      // The same job again, as a frame the server made 30 s ago and kept (what a phone that
      // connects later gets): it must not add 30 s to the countdown.
      s.send({ type: 'job', job: { ...offer(serverNow), server_time: serverNow - 30_000 } });
    });
    await step('clock', page, null, async () => {
      await signIn(page, URL_, 'demo-xs-r011');
      await page.locator('#job[data-state="offered"][data-incident-id="12"]').waitFor(SHOWS_UP);
      assert.equal(sockets[0].url.searchParams.get('token'), 'demo-xs-r011');
      assert.match(await field(page, 'countdown-time').textContent(), /^0:4\d$/);
      assert.match(await field(page, 'since').textContent(), /^00:2\d$/);
      assert.equal(await field(page, 'kind').textContent(), '跌倒报警');
      assert.equal(await field(page, 'location').getAttribute('data-source'), 'device');
      assert.match(await field(page, 'location').textContent(), /±15 米/);
      assert.equal(await field(page, 'distance').textContent(), '413 米');
      assert.equal(await field(page, 'phone').getAttribute('href'), 'tel:13800000000');
      assert.ok((await field(page, 'map').getAttribute('href')).includes('position=102.600000,25.000000'));
      assert.ok((await field(page, 'map').getAttribute('href')).includes('&coordinate=wgs84'));
      assert.deepEqual(errors, []);
    });
    await context.close();
  });

  it('shows a refusal, sends the outcome, and reconnects after a drop', { timeout: 45_000 }, async () => {
    const { context, page } = await openPhone(browser, { position: { lat: 25.03, lon: 102.7 } });
    const errors = watchPageErrors(page);
    await serveResponderAssets(page, ORIGIN);
    const sockets = await scriptServer(page, (s) => {
      s.send(HELLO);
      s.send({ type: 'job', job: offer(Date.now()) });
    });
    await step('refusal', page, null, async () => {
      await signIn(page, URL_, 'demo-xs-r011');
      await page.locator('#job[data-state="offered"]').waitFor(SHOWS_UP);
      await button(page, 'accept').click();
      const accept = await eventually(() => sockets[0].sent.find((f) => f.type === 'accept'), 'an accept frame');
      assert.deepEqual({ ...accept, request_id: typeof accept.request_id }, { type: 'accept', incident_id: 12, request_id: 'string' });
      assert.ok(await button(page, 'accept').isDisabled(), 'no second tap while it is in flight');
      sockets[0].send({ type: 'result', request_id: accept.request_id, ok: false, error: 'the offer has lapsed' });
      await page.locator('#action-error', { hasText: '未成功：the offer has lapsed' }).waitFor(SHOWS_UP);
      assert.ok(await button(page, 'accept').isEnabled());
    });

    await step('location', page, null, async () => {
      const first = await eventually(() => sockets[0].sent.find((f) => f.type === 'location'), 'a location frame');
      assert.deepEqual(first, { type: 'location', lat: 25.03, lon: 102.7, accuracy_m: 12 });
      // A move a moment later waits for the 15 s spacing.
      await context.setGeolocation({ latitude: 25.031, longitude: 102.701, accuracy: 12 });
      await page.waitForTimeout(1_500);
      assert.equal(sockets[0].sent.filter((f) => f.type === 'location').length, 1);
    });

    await step('outcome', page, null, async () => {
      const now = Date.now();
      sockets[0].send({ type: 'job', job: offer(now, { state: 'on_scene', offer_deadline: null }) });
      await page.locator('#job[data-state="on_scene"]').waitFor(SHOWS_UP);
      assert.ok(await page.locator('#action-error').isHidden(), 'a new state clears the old refusal');
      assert.ok(await field(page, 'countdown').isHidden());
      await page.locator('#outcome').fill('helped up, no injury');
      await button(page, 'resolve').click();
      const resolve = await eventually(() => sockets[0].sent.find((f) => f.type === 'resolve'), 'a resolve frame');
      assert.equal(resolve.outcome, 'helped up, no injury');
      assert.equal(resolve.incident_id, 12);
      sockets[0].send({ type: 'result', request_id: resolve.request_id, ok: true });
      sockets[0].send({ type: 'job', job: null });
      await job(page).waitFor({ state: 'hidden', ...SHOWS_UP });
    });

    await step('reconnect', page, null, async () => {
      sockets[0].close(1011, 'restarting');
      await page.locator('#conn-status[data-state="reconnecting"]').waitFor(SHOWS_UP);
      await page.locator('#stale-banner').waitFor(SHOWS_UP);
      assert.ok(await button(page, 'duty').isDisabled(), 'no duty change while offline');
      await eventually(() => sockets.length === 2, 'a second socket');
      await page.locator('#conn-status[data-state="connected"]').waitFor(SHOWS_UP);
      assert.ok(await page.locator('#stale-banner').isHidden());
      assert.equal(sockets[1].url.searchParams.get('token'), 'demo-xs-r011');
      assert.deepEqual(errors, []);
    });
    await context.close();
  });
});
