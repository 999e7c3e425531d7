// Issue 17 on the responder's phone, against a real anxind and real Chromium at 390×844:
//
// - point 5: a double tap on "I'm on my way" reports en route only, never on scene;
// - point 6: the card shows what the responder needs at the door (how to get in, contacts to
//   call, medication, conditions, mobility, language, age, living alone);
// - point 7: a job a dispatcher ends (false alarm) or takes away says so until dismissed; an
//   assignment asks for consent ("I'm going" / "I can't go" with a reason: `withdraw`); a
//   decline asks why (`decline` with a `reason`); the station shows by name;
// - point 8: the Amap link says its position is WGS-84 (`coordinate=wgs84`).
//
// Dispatcher commands go over a console socket the test opens as the demo dispatcher.
//
// Run from the repository root after `cargo build -p anxind`:
//   ANXIND_BIN=$PWD/target/debug/anxind node --test e2e/responder-door.test.mjs
// UPDATE_SCREENSHOTS=1 also writes docs/screenshots (SHOT_SUFFIX names them; default "after").

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, resultsDir, spawnDaemon, watchPageErrors } from './support.mjs';
import { demoRegistry, eventually, openPhone, pickPresses, recordFrames, screenshot } from './responder-support.mjs';

const SHOWS_UP = { timeout: 15_000 };
const SUFFIX = process.env.SHOT_SUFFIX ?? 'after';

const job = (page) => page.locator('#job');
const button = (page, action) => page.locator(`[data-action="${action}"]`);
const field = (page, name) => page.locator(`#job [data-field="${name}"]`);

async function signInPhone(page, url, token) {
  await page.goto(url);
  await page.locator('#token').fill(token);
  await button(page, 'sign-in').click();
  await page.locator('#conn-status[data-state="connected"]').waitFor(SHOWS_UP);
}

async function step(name, page, daemon, fn) {
  try {
    await fn();
  } catch (err) {
    await mkdir(resultsDir, { recursive: true });
    await page?.screenshot({ path: join(resultsDir, `failed-responder-door-${name}.png`) }).catch(() => {});
    if (daemon) err.message += `\n(daemon log: ${daemon.logPath}; last lines:\n${daemon.tail()})`;
    throw err;
  }
}

/** A console socket signed in as the demo dispatcher; `command(frame)` resolves to its result. */
async function openDispatcher(browser, consoleUrl) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(new URL('/healthz', consoleUrl).toString());
  const status = await page.evaluate(async () => {
    const r = await fetch('/api/v1/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'dispatcher', password: 'anxin-demo' }),
    });
    return r.status;
  });
  assert.equal(status, 200, 'the demo dispatcher signs in');
  await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
        const waiting = new Map();
        let n = 0;
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data);
          if (msg.type === 'result' && waiting.has(msg.request_id)) {
            waiting.get(msg.request_id)(msg);
            waiting.delete(msg.request_id);
          }
        };
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error('the console socket failed'));
        window.command = (frame) =>
          new Promise((res) => {
            n += 1;
            const request_id = `t-${n}`;
            waiting.set(request_id, res);
            ws.send(JSON.stringify({ type: 'command', ...frame, request_id }));
          });
      }),
  );
  return {
    command: (frame) => page.evaluate((f) => window.command(f), frame),
    close: () => context.close(),
  };
}

/**
 * A new phone signed in as `press`'s responder, with the offer their device's press makes:
 * the page, its errors and frames, and the incident.
 */
async function phoneWithOffer(browser, daemon, url, press) {
  const { context, page } = await openPhone(browser, { position: press.responder.position });
  const errors = watchPageErrors(page);
  const frames = recordFrames(page);
  await step('offer', page, daemon, async () => {
    await signInPhone(page, url, `demo-${press.responder.id}`);
    await page.locator('#idle').waitFor(SHOWS_UP);
    await publishEvent(daemon.mqttUrl, press.device.id);
    await page.locator('#job[data-state="offered"]').waitFor(SHOWS_UP);
  });
  const incidentId = Number(await job(page).getAttribute('data-incident-id'));
  return { context, page, errors, frames, incidentId };
}

describe('responder phone, issue 17, on a live anxind', () => {
  let daemon;
  let browser;
  let url;
  let presses;
  let registry;
  let dispatcher;

  before(async () => {
    registry = demoRegistry();
    presses = pickPresses(registry, 7);
    daemon = await spawnDaemon();
    url = new URL('/responder', daemon.consoleUrl).toString();
    browser = await launchChromium();
    dispatcher = await openDispatcher(browser, daemon.consoleUrl);
  });

  /** The dispatcher puts `responder` on the incident (they spoke on the phone). */
  async function assign(incidentId, responder) {
    const result = await dispatcher.command({ incident_id: incidentId, action: 'assign', responder_id: responder.id });
    assert.equal(result.ok, true, JSON.stringify(result));
  }

  after(async () => {
    await dispatcher?.close();
    await browser?.close();
    await daemon?.stop();
  });

  it('point 5: a double tap on "on my way" reports en route only', { timeout: 90_000 }, async () => {
    const { context, page, errors, frames, incidentId } = await phoneWithOffer(browser, daemon, url, presses[0]);
    await step('double-tap', page, daemon, async () => {
      await button(page, 'accept').click();
      await page.locator('#job[data-state="accepted"]').waitFor(SHOWS_UP);
      const enRoute = page.locator('[data-action="en_route"]:not([disabled])');
      await enRoute.waitFor(SHOWS_UP);
      const box = await enRoute.boundingBox();
      const x = box.x + box.width / 2;
      const y = box.y + box.height / 2;
      // A finger taps twice on the same spot, 350 ms apart.
      await page.touchscreen.tap(x, y);
      await page.waitForTimeout(350);
      await page.touchscreen.tap(x, y);
      // Wait until the first tap has been answered and the page has settled on what came of it
      // (on scene if the second tap went through, else an on-scene button that is live).
      await eventually(
        async () =>
          frames.received.some((f) => f.type === 'job' && f.job?.state === 'en_route') &&
          ((await job(page).getAttribute('data-state')) === 'on_scene' ||
            (await page.locator('[data-action="on_scene"]:not([disabled])').isVisible())),
        'the en-route step to settle',
      );
      await screenshot(page, `responder-17-double-tap-${SUFFIX}`);
      const steps = frames.sent.filter((f) => ['en_route', 'on_scene'].includes(f.type)).map((f) => f.type);
      assert.deepEqual(steps, ['en_route'], 'only en route is sent');
      assert.equal(await job(page).getAttribute('data-state'), 'en_route');
    });
    await step('reassigned', page, daemon, async () => {
      // The dispatcher gives the job to somebody else: the phone says so, and to whom.
      const other = presses[6].responder;
      await assign(incidentId, other);
      await job(page).waitFor({ state: 'hidden', ...SHOWS_UP });
      await page.locator('#idle').waitFor(SHOWS_UP);
      await screenshot(page, `responder-17-reassigned-zh-${SUFFIX}`);
      const ended = page.locator(`#ended[data-incident-id="${incidentId}"]`);
      await ended.waitFor(SHOWS_UP);
      assert.match(await ended.textContent(), new RegExp(`改派给 ${other.name}`));
      assert.deepEqual(errors, []);
    });
    await context.close();
  });

  it('point 6 and 8: everything needed at the door, and a WGS-84 Amap link', { timeout: 90_000 }, async () => {
    const { device, elder, responder } = presses[1];
    const { context, page } = await openPhone(browser, { position: responder.position });
    const errors = watchPageErrors(page);
    await step('door', page, daemon, async () => {
      await signInPhone(page, url, `demo-${responder.id}`);
      await page.locator('#idle').waitFor(SHOWS_UP);
      await screenshot(page, `responder-17-idle-${SUFFIX}`);
      const idleStation = await page.locator('#idle [data-field="station"]').textContent();

      await publishEvent(daemon.mqttUrl, device.id);
      await page.locator('#job[data-state="offered"]').waitFor(SHOWS_UP);
      await screenshot(page, `responder-17-door-zh-${SUFFIX}`);
      await page.screenshot({ path: join(resultsDir, `responder-17-door-full-${SUFFIX}.png`), fullPage: true });

      const map = await field(page, 'map').getAttribute('href');
      const link = new URL(map);
      assert.equal(link.origin + link.pathname, 'https://uri.amap.com/marker');
      assert.equal(link.searchParams.get('position'), `${elder.home.lon.toFixed(6)},${elder.home.lat.toFixed(6)}`);
      assert.equal(link.searchParams.get('coordinate'), 'wgs84', map);
      assert.equal(link.searchParams.get('name'), elder.name);

      const p = elder.profile;
      assert.equal(await field(page, 'door-text').textContent(), p.door_notes);
      assert.ok(await field(page, 'door').isVisible());
      const age = new Date().getFullYear() - p.birth_year;
      assert.match(await field(page, 'age').textContent(), new RegExp(`^(${age - 1}|${age}) 岁$`));
      assert.equal(await field(page, 'alone').textContent(), p.lives_alone ? '独居' : '与家人同住');
      assert.equal(await field(page, 'mobility').textContent(), p.mobility);
      assert.equal(await field(page, 'language').textContent(), p.language);
      assert.equal(await field(page, 'conditions').textContent(), p.conditions.join('、'));
      assert.equal(await field(page, 'medications').textContent(), p.medications.join('、'));
      const contacts = page.locator('#job [data-field="contact-list"] a');
      assert.equal(await contacts.count(), p.contacts.length);
      for (const [i, c] of p.contacts.entries()) {
        assert.equal(await contacts.nth(i).getAttribute('href'), `tel:${c.phone}`);
        assert.match(await contacts.nth(i).textContent(), new RegExp(`${c.name}（${c.relation}）`));
      }

      await page.locator('#lang-toggle').click();
      assert.equal(await field(page, 'alone').textContent(), p.lives_alone ? 'Alone' : 'With family');
      assert.match(await page.locator('#job .door-label').textContent(), /Getting in/);
      await screenshot(page, `responder-17-door-en-${SUFFIX}`);
      await page.locator('#lang-toggle').click();

      // The station by name, not by id (point 7's "names, not ids").
      const station = registry.stations.find((s) => s.id === responder.station_id);
      assert.ok(idleStation.includes(station.name), idleStation);
      assert.deepEqual(errors, []);
    });
    await context.close();
  });

  it('point 7: a decline asks why and sends the reason', { timeout: 90_000 }, async () => {
    const { context, page, errors, frames, incidentId } = await phoneWithOffer(browser, daemon, url, presses[5]);
    await step('decline', page, daemon, async () => {
      await button(page, 'decline').click();
      await screenshot(page, `responder-17-decline-reasons-${SUFFIX}`);
      assert.equal(frames.sent.filter((f) => f.type === 'decline').length, 0, 'one tap sends no decline');
      await page.locator('#job [data-field="reasons"]').waitFor(SHOWS_UP);
      await page.locator('[data-reason="too_far"]:not([disabled])').click();
      await job(page).waitFor({ state: 'hidden', ...SHOWS_UP });
      const decline = frames.sent.find((f) => f.type === 'decline');
      assert.equal(decline.incident_id, incidentId);
      assert.equal(decline.reason, 'too_far');
      assert.ok(frames.received.some((f) => f.type === 'result' && f.request_id === decline.request_id && f.ok));
      // The responder's own decline ends the offer without a message.
      assert.ok(await page.locator('#ended').isHidden());
      assert.deepEqual(errors, []);
    });
    await context.close();
  });

  it('point 7: a false alarm marked at the console is shown until dismissed', { timeout: 90_000 }, async () => {
    const { elder } = presses[2];
    const { context, page, errors, incidentId } = await phoneWithOffer(browser, daemon, url, presses[2]);
    await step('false-alarm', page, daemon, async () => {
      await page.locator('[data-action="accept"]:not([disabled])').click();
      await page.locator('#job[data-state="accepted"]').waitFor(SHOWS_UP);
      const result = await dispatcher.command({ incident_id: incidentId, action: 'false_alarm', reason: '老人误按，已电话确认无事' });
      assert.equal(result.ok, true, JSON.stringify(result));
      await job(page).waitFor({ state: 'hidden', ...SHOWS_UP });
      await page.locator('#idle').waitFor(SHOWS_UP);
      await screenshot(page, `responder-17-false-alarm-zh-${SUFFIX}`);
      const ended = page.locator(`#ended[data-incident-id="${incidentId}"]`);
      await ended.waitFor(SHOWS_UP);
      assert.match(await ended.textContent(), /误报/);
      assert.match(await ended.textContent(), /老人误按，已电话确认无事/);
      assert.match(await ended.textContent(), new RegExp(elder.name));
      await page.locator('#lang-toggle').click();
      assert.match(await ended.textContent(), /false alarm/);
      await screenshot(page, `responder-17-false-alarm-en-${SUFFIX}`);
      await page.locator('#lang-toggle').click();

      // Kept across a reload until dismissed, and gone for good after.
      await page.reload();
      await page.locator('#idle').waitFor(SHOWS_UP);
      await ended.waitFor(SHOWS_UP);
      await button(page, 'dismiss-ended').click();
      await ended.waitFor({ state: 'hidden', ...SHOWS_UP });
      await page.reload();
      await page.locator('#conn-status[data-state="connected"]').waitFor(SHOWS_UP);
      await page.locator('#idle').waitFor(SHOWS_UP);
      assert.ok(await page.locator('#ended').isHidden());
      assert.deepEqual(errors, []);
    });
    await context.close();
  });

  it('point 7: an assignment asks for consent; "I can\'t go" sends withdraw with a reason', { timeout: 90_000 }, async () => {
    const { context, page, errors, frames, incidentId } = await phoneWithOffer(browser, daemon, url, presses[3]);
    await step('assign', page, daemon, async () => {
      await assign(incidentId, presses[3].responder);
      await page.locator('#job[data-state="accepted"]').waitFor(SHOWS_UP);
      await page.locator('[data-action="consent_go"]:not([disabled])').waitFor(SHOWS_UP).catch(() => {});
      await screenshot(page, `responder-17-assigned-zh-${SUFFIX}`);
      const consent = page.locator('#job [data-field="consent"]');
      await consent.waitFor(SHOWS_UP);
      assert.ok(await button(page, 'en_route').isHidden(), 'no step before consent');
      await page.locator('#lang-toggle').click();
      await screenshot(page, `responder-17-assigned-en-${SUFFIX}`);
      await page.locator('#lang-toggle').click();

      await page.locator('[data-action="consent_cannot"]:not([disabled])').click();
      await page.locator('#job [data-field="reasons"]').waitFor(SHOWS_UP);
      await page.locator('[data-reason="unwell"]:not([disabled])').waitFor(SHOWS_UP);
      await screenshot(page, `responder-17-withdraw-reasons-${SUFFIX}`);
      await page.locator('[data-reason="unwell"]:not([disabled])').click();
      await job(page).waitFor({ state: 'hidden', ...SHOWS_UP });
      const withdraw = frames.sent.find((f) => f.type === 'withdraw');
      assert.deepEqual({ ...withdraw, request_id: undefined }, { type: 'withdraw', incident_id: incidentId, reason: 'unwell', request_id: undefined });
      assert.ok(frames.received.some((f) => f.type === 'result' && f.request_id === withdraw.request_id && f.ok));
      assert.deepEqual(errors, []);
    });
    await context.close();
  });

  it('point 7: "I\'m going" on an assignment sends en route', { timeout: 90_000 }, async () => {
    const { context, page, errors, frames, incidentId } = await phoneWithOffer(browser, daemon, url, presses[4]);
    await step('consent', page, daemon, async () => {
      await assign(incidentId, presses[4].responder);
      await page.locator('#job [data-field="consent"]').waitFor(SHOWS_UP);
      await page.locator('[data-action="consent_go"]:not([disabled])').click();
      await page.locator('#job[data-state="en_route"]').waitFor(SHOWS_UP);
      assert.ok(await page.locator('#job [data-field="consent"]').isHidden());
      assert.deepEqual(frames.sent.filter((f) => f.type === 'en_route').map((f) => f.incident_id), [incidentId]);
      assert.equal(frames.sent.filter((f) => f.type === 'accept').length, 0);
      assert.deepEqual(errors, []);
    });
    await context.close();
  });
});
