// The dispatcher console against a real anxind: presses go in over MQTT as a device sends
// them and must show up on the open page without a reload, in headless Chromium.
//
// Run from the repository root after `cargo build -p anxind`:
//   cd e2e && npm install && node --test
// ANXIND_BIN overrides the daemon binary (default target/debug/anxind).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  countBeeps,
  launchChromium,
  publishEvent,
  resultsDir,
  screenshotsDir,
  signIn,
  spawnDaemon,
  watchPageErrors,
} from './support.mjs';

// Generous, bounded waits: a debug build on a two-core machine can be slow, but a press that
// takes longer than this to reach the console is a failure.
const SHOWS_UP = { timeout: 15_000 };
const KUNMING = { lat: 25.03, lon: 102.68 };

/** Asks the server itself, over a second socket from the page, for its view of a device's incident. */
async function serverView(page, deviceId) {
  return page.evaluate(
    (id) =>
      new Promise((resolve, reject) => {
        const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
        const ws = new WebSocket(`${scheme}//${location.host}/ws`);
        const timer = setTimeout(() => {
          ws.close();
          reject(new Error('no snapshot on a fresh socket within 10 s'));
        }, 10_000);
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data);
          if (msg.type !== 'snapshot') return;
          clearTimeout(timer);
          ws.close();
          resolve(msg.incidents.find((v) => v.device_id === id) ?? null);
        };
      }),
    deviceId,
  );
}

const row = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);

describe('dispatcher console on a live anxind', () => {
  let daemon;
  let browser;
  let page;
  let errors;

  // Each step leaves a screenshot behind when it fails, beside the daemon's log.
  async function step(name, fn) {
    try {
      await fn();
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await page?.screenshot({ path: join(resultsDir, `failed-${name}.png`) }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; last lines:\n${daemon?.tail()})`;
      throw err;
    }
  }

  // The detail panel of the most urgent row, then a responder's card on the map.
  async function pictures(lang) {
    await page.locator('#incidents tbody tr[data-device-id="xs-d0005"]').click();
    await page.locator('#detail .tl').first().waitFor(SHOWS_UP);
    // Chinese shows the elder's profile at the top; English the location, response and timeline.
    if (lang === 'en') await page.locator('#detail [data-section="location"]').evaluate((n) => n.scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: join(screenshotsDir, `console-detail-${lang}.png`) });
    await page.keyboard.press('Escape');
    await page.locator('#detail').waitFor({ state: 'hidden', ...SHOWS_UP });
    const busy = page.locator('[data-marker="responder"].st-offered, [data-marker="responder"].st-busy').first();
    await busy.click({ force: true });
    await page.locator('#map-card').waitFor({ state: 'visible', ...SHOWS_UP });
    await page.screenshot({ path: join(screenshotsDir, `console-map-${lang}.png`) });
    await page.keyboard.press('Escape');
  }

  before(async () => {
    daemon = await spawnDaemon();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    errors = watchPageErrors(page);
    await page.addInitScript(countBeeps);
  });

  after(async () => {
    await browser?.close();
    // Normally stopped by the last test; this catches a run that failed before it.
    await daemon?.stop();
  });

  it('shows only the sign-in form until signed in; a wrong password is refused', { timeout: 30_000 }, () =>
    step('signin', async () => {
      await page.goto(daemon.consoleUrl);
      await page.locator('#signin-form').waitFor(SHOWS_UP);
      assert.equal(await page.locator('#app').isHidden(), true);
      assert.equal(await page.locator('#incidents').isVisible(), false);
      // The feed itself refuses a socket without a session.
      const code = await page.evaluate(
        () =>
          new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/ws`);
            ws.onclose = (ev) => resolve(ev.code);
          }),
      );
      assert.equal(code, 4401);

      await page.locator('#signin-user').fill('dispatcher');
      await page.locator('#signin-password').fill('not-the-password');
      await page.locator('#signin-submit').click();
      await page.locator('#signin-error', { hasText: '用户名或密码不正确' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#app').isHidden(), true);

      // Someone guessing dispatcher2's password is slowed down, and the form says for how long.
      await page.locator('#signin-user').fill('dispatcher2');
      for (let n = 0; n < 6; n += 1) {
        await page.locator('#signin-password').fill(`guess-${n}`);
        await page.locator('#signin-submit').click();
        await page.locator('#signin-submit:not([disabled])').waitFor(SHOWS_UP);
      }
      await page.locator('#signin-error', { hasText: '密码错误次数过多，请 30 秒后再试' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#app').isHidden(), true);
    }));

  it('signs in and opens connected, with an empty table', { timeout: 30_000 }, () =>
    step('open', async () => {
      await signIn(page, daemon.consoleUrl);
      assert.equal(await page.locator('#incidents tbody tr').count(), 0);
      assert.equal(await page.locator('#conn-text').textContent(), '已连接');
      assert.match(await page.locator('#me').textContent(), /值班调度员/);
      // The demo district is on the map: stations with circles and responders.
      await page.waitForFunction(() => document.querySelectorAll('[data-marker="station"]').length === 8, null, SHOWS_UP);
      assert.equal(await page.locator('.service-circle').count(), 8);
      assert.equal(await page.locator('[data-marker="responder"]').count(), 43);
      // Of them the demo's three home-care workers, drawn apart: never offered an emergency.
      assert.deepEqual(
        await page.locator('[data-marker="responder"].worker').evaluateAll((m) => m.map((x) => x.dataset.id).sort()),
        ['xs-w1', 'xs-w2', 'xs-w3'],
      );
      // Marks this page load; a reload would lose it.
      await page.evaluate(() => {
        window.__sameLoad = true;
      });
    }));

  it('shows a press with a device fix, live, with a responder and a running clock', { timeout: 30_000 }, () =>
    step('device-fix', async () => {
      await publishEvent(daemon.mqttUrl, 'xs-d0001', { location: { ...KUNMING, accuracy_m: 12 } });
      const r = row(page, 'xs-d0001');
      await r.waitFor(SHOWS_UP);
      assert.equal(await page.evaluate(() => window.__sameLoad), true, 'the page reloaded');
      // A new SOS sounds and flashes until a dispatcher acknowledges it.
      await page.waitForFunction(() => window.__beeps >= 3, null, SHOWS_UP);
      assert.match(await r.getAttribute('class'), /\balarm\b/);
      assert.equal(await page.locator('#count-alarm').textContent(), '1');
      await r.click();
      await page.locator('#detail [data-action="acknowledge"]').click();
      await page.waitForFunction(() => !document.querySelector('tr[data-device-id="xs-d0001"]').classList.contains('alarm'), null, SHOWS_UP);
      assert.equal(await page.locator('#count-alarm').textContent(), '0');
      await page.locator('#detail .tl-acknowledged').waitFor(SHOWS_UP);
      await page.keyboard.press('Escape');
      assert.match(await r.getAttribute('data-incident-id'), /\S/);

      const view = await serverView(page, 'xs-d0001');
      assert.ok(view, 'the server has an incident for xs-d0001');
      const offered = view.responder || view.offers?.[0]?.responder;
      assert.ok(offered, `the demo registry has somebody near xs-d0001: ${JSON.stringify(view)}`);
      assert.equal(await r.locator('[data-field="responder-name"]').textContent(), offered.name);
      assert.match(await r.locator('[data-field="elder-name"]').textContent(), /\S/);

      const loc = r.locator('[data-field="location"]');
      assert.equal(await loc.getAttribute('data-source'), 'device');
      assert.match(await loc.textContent(), /设备定位/);
      assert.match(await loc.textContent(), /±12 米/);

      const timer = r.locator('[data-field="since"]');
      const first = await timer.textContent();
      assert.match(first, /^\d{2}:\d{2}$/);
      await page.waitForFunction(
        (before) => document.querySelector('tr[data-device-id="xs-d0001"] [data-field="since"]')?.textContent !== before,
        first,
        { timeout: 5_000 },
      );
    }));

  it('shows a press without a fix at the home address', { timeout: 30_000 }, () =>
    step('home', async () => {
      await publishEvent(daemon.mqttUrl, 'xs-d0002');
      const r = row(page, 'xs-d0002');
      await r.waitFor(SHOWS_UP);
      const loc = r.locator('[data-field="location"]');
      assert.equal(await loc.getAttribute('data-source'), 'home');
      assert.match(await loc.textContent(), /登记住址/);
      assert.equal(await page.locator('#incidents tbody tr').count(), 2);
    }));

  it('shows several presses at once, in order (Chinese screenshot)', { timeout: 60_000 }, () =>
    step('several', async () => {
      const now = Date.now();
      // Device clocks a few minutes behind, as when a device held a press while offline,
      // so the clocks in the screenshot are not all zero.
      await publishEvent(daemon.mqttUrl, 'xs-d0003', {
        type: 'fall',
        ts: now - 7 * 60_000 - 12_000,
        location: { lat: 25.02, lon: 102.67, accuracy_m: 25 },
      });
      await publishEvent(daemon.mqttUrl, 'xs-d0004', { type: 'service', ts: now - 3 * 60_000 });
      await publishEvent(daemon.mqttUrl, 'xs-d0005', { ts: now - 95_000, location: { ...KUNMING, accuracy_m: 8 } });
      await publishEvent(daemon.mqttUrl, 'xs-d0005', { ts: now - 40_000, location: { ...KUNMING, accuracy_m: 8 } });
      await publishEvent(daemon.mqttUrl, 'xs-d0006', { ts: now - 2 * 60_000, location: { lat: 0, lon: 0, accuracy_m: 10 } });
      // Far out in the hills: likely nobody within reach.
      await publishEvent(daemon.mqttUrl, 'xs-d0007', { ts: now - 4 * 60_000, location: { lat: 25.3, lon: 102.42, accuracy_m: 30 } });

      for (const id of ['xs-d0003', 'xs-d0004', 'xs-d0005', 'xs-d0006', 'xs-d0007']) {
        await row(page, id).waitFor(SHOWS_UP);
      }
      await row(page, 'xs-d0005').locator('[data-field="press-count"]').waitFor(SHOWS_UP);
      assert.equal(await page.locator('#incidents tbody tr').count(), 7, 'a second press joins the open incident');

      // Rows come most urgent first, then oldest press first.
      const order = await page.locator('#incidents tbody tr').evaluateAll((rows) =>
        rows.map((r) => ({
          priority: Number(/prio-(\d)/.exec(r.className)[1]),
          from: Number(r.querySelector('[data-field="since"]').dataset.from),
        })),
      );
      for (let i = 1; i < order.length; i += 1) {
        const [a, b] = [order[i - 1], order[i]];
        assert.ok(a.priority < b.priority || (a.priority === b.priority && a.from <= b.from), `rows out of order: ${JSON.stringify(order)}`);
      }

      // Every row without a responder says why, in the terms the server's view allows.
      for (const id of ['xs-d0004', 'xs-d0007']) {
        const view = await serverView(page, id);
        const r = row(page, id);
        const offered = view.responder || view.offers?.[0]?.responder;
        if (offered) {
          assert.equal(await r.locator('[data-field="responder-name"]').textContent(), offered.name);
        } else {
          const marker = view.kind === 'sos' || view.kind === 'fall' ? 'nobody' : 'dispatcher-first';
          assert.equal(await r.locator(`[data-field="${marker}"]`).count(), 1, `${id} (${view.kind}) shows ${marker}`);
        }
      }

      await mkdir(screenshotsDir, { recursive: true });
      // No arrival flash in the picture.
      await page.emulateMedia({ reducedMotion: 'reduce' });
      await page.screenshot({ path: join(screenshotsDir, 'console-zh.png') });
      await pictures('zh');
    }));

  it('a second console that loses its socket reconnects with ?since= and catches up', { timeout: 60_000 }, () =>
    step('reconnect', async () => {
      // The second console reaches /ws through playwright's proxy, which lets the test cut
      // its socket and hold its next connection until a press has happened meanwhile.
      const other = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      const otherErrors = watchPageErrors(other);
      const urls = [];
      let current = null;
      let hold = null;
      await other.routeWebSocket(/\/ws(\?.*)?$/, async (ws) => {
        urls.push(ws.url());
        if (hold) await hold;
        ws.connectToServer();
        current = ws;
      });
      try {
        await signIn(other, daemon.consoleUrl);
        await other.locator('#incidents tbody tr[data-device-id="xs-d0007"]').waitFor(SHOWS_UP);
        await other.evaluate(() => {
          window.__sameLoad = true;
        });

        let release;
        hold = new Promise((res) => {
          release = res;
        });
        await current.close({ code: 1012, reason: 'e2e: connection cut' });
        await other.locator('#conn-status[data-state="reconnecting"]').waitFor(SHOWS_UP);
        await other.locator('#stale-banner').waitFor({ state: 'visible', ...SHOWS_UP });
        // What the console had when its socket went: read only now, since deltas (offers
        // lapsing, say) may still arrive between the row showing up and the cut.
        const seqBefore = Number(await other.locator('#incidents').getAttribute('data-seq'));

        await publishEvent(daemon.mqttUrl, 'xs-d0008', { location: { ...KUNMING, accuracy_m: 20 } });
        // The console still connected gets it live meanwhile.
        await row(page, 'xs-d0008').waitFor(SHOWS_UP);
        // Every reconnect so far has been held: the press happened while this console was away.
        assert.equal(await other.locator('#conn-status').getAttribute('data-state'), 'reconnecting');
        hold = null;
        release();

        await other.locator('#conn-status[data-state="connected"]').waitFor({ timeout: 30_000 });
        await other.locator('#incidents tbody tr[data-device-id="xs-d0008"]').waitFor(SHOWS_UP);
        await other.locator('#stale-banner').waitFor({ state: 'hidden', ...SHOWS_UP });
        assert.equal(await other.evaluate(() => window.__sameLoad), true, 'the page reloaded');
        assert.equal(new URL(urls[0]).searchParams.get('since'), null, urls[0]);
        assert.equal(new URL(urls[1]).searchParams.get('since'), String(seqBefore), urls[1]);
        assert.equal(await other.locator('#incidents tbody tr').count(), 8);
        assert.deepEqual(otherErrors, []);
      } finally {
        await other.close();
      }
    }));

  it('switches to English (English screenshot)', { timeout: 30_000 }, () =>
    step('english', async () => {
      const header = page.locator('#incidents thead th').nth(2);
      assert.equal(await header.textContent(), '老人 / 位置');
      await page.locator('#lang-toggle').click();
      assert.equal(await header.textContent(), 'Elder / location');
      assert.equal(await page.locator('#conn-text').textContent(), 'Connected');
      await row(page, 'xs-d0002').locator('[data-field="location-source"]', { hasText: 'Home address' }).waitFor(SHOWS_UP);
      await page.screenshot({ path: join(screenshotsDir, 'console-en.png') });
      await pictures('en');
    }));

  it('logged no page errors', () => {
    assert.deepEqual(errors, []);
  });

  it('stops on SIGTERM within 5 s', { timeout: 30_000 }, async () => {
    await browser.close();
    browser = null;
    const exit = await daemon.stop(5_000);
    daemon = null;
    assert.equal(exit.killed, false, 'anxind ignored SIGTERM for 5 s and was killed');
    assert.equal(exit.code, 0, `anxind exited with ${JSON.stringify(exit)}`);
  });
});
