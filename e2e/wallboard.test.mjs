// The supervisors' wallboard (/console/wall) on a real anxind: presses and a responder's
// acceptance move its numbers and colours, a dispatcher's claim lands on their row, the day's
// figures are the same after a restart, and a dispatcher is not shown it. Screenshots at
// 1920x1080 in Chinese and English.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, resultsDir, serverSnapshot, shoot, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 20_000 };
const WALL = { viewport: { width: 1920, height: 1080 } };
// An alarm must be taken on within 20 s here (the standard's 60 s would make the test wait a
// minute to see a miss); the test accepts its first alarm at once and leaves the second.
const ENV = { ANXIN_WALLBOARD__TSA_ANSWER_S: '20' };

const standard = (page, id) => page.locator(`#wall-standards [data-standard="${id}"]`);
const figure = async (page, id, name) => Number(await standard(page, id).locator(`[data-figure="${name}"]`).textContent());

/** Waits until the standard shows these counts and rating. */
async function standardIs(page, id, { met, missed, rating }) {
  const sel = `#wall-standards [data-standard="${id}"][data-rating="${rating}"]`;
  await page.waitForFunction(
    ([s, m, x]) => {
      const card = document.querySelector(s);
      const n = (f) => Number(card?.querySelector(`[data-figure="${f}"]`)?.textContent);
      return card && n('met') === m && n('missed') === x;
    },
    [sel, met, missed],
    SHOWS_UP,
  );
}

/** Waits until one figure of a standard reads `value`. */
async function figureIs(page, id, name, value) {
  await page.waitForFunction(
    ([s, f, v]) => Number(document.querySelector(`#wall-standards [data-standard="${s}"] [data-figure="${f}"]`)?.textContent) === v,
    [id, name, value],
    SHOWS_UP,
  );
}

async function openWall(browser, daemon, lang) {
  const page = await browser.newPage(WALL);
  const errors = watchPageErrors(page);
  await page.addInitScript((l) => localStorage.setItem('anxin.console.lang', l), lang);
  await signIn(page, daemon.consoleUrl, { user: 'supervisor' });
  await page.goto(new URL('/console/wall', daemon.consoleUrl).toString());
  await page.locator('body[data-loaded="true"]').waitFor(SHOWS_UP);
  await page.locator('#wall-standards [data-standard="tsa_60"]').waitFor(SHOWS_UP);
  return { page, errors };
}

/** A command from the page's session (its cookie), on a socket of its own. */
async function command(page, frame) {
  return page.evaluate(
    (f) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/ws`);
        const timer = setTimeout(() => reject(new Error('no result in 15 s')), 15_000);
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data);
          if (msg.type === 'snapshot') ws.send(JSON.stringify({ type: 'command', ...f, request_id: 'wall' }));
          if (msg.type === 'result' && msg.request_id === 'wall') {
            clearTimeout(timer);
            ws.close();
            resolve(msg);
          }
        };
      }),
    frame,
  );
}

describe('the supervisors wallboard on a live anxind', () => {
  let daemon;
  let browser;
  let dir;
  let dbPath;
  const ids = {};

  async function step(name, page, fn) {
    try {
      await fn();
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await page?.screenshot({ path: join(resultsDir, `failed-wall-${name}.png`) }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; last lines:\n${daemon?.tail()})`;
      throw err;
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'anxin-wall-'));
    dbPath = join(dir, 'anxin.db');
    daemon = await spawnDaemon({ dbPath, env: ENV });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts alarms met and missed, by state, per station and per dispatcher, live', { timeout: 120_000 }, async () => {
    const { page, errors } = await openWall(browser, daemon, 'zh');
    await step('live', page, async () => {
      assert.equal(await page.locator('#wall-open').textContent(), '0');
      for (const s of ['tsa_60', 'tsa_180', 'nfpa_1225', 'nena', 'closed_loop']) {
        assert.equal(await standard(page, s).getAttribute('data-rating'), 'none', `${s} before any alarm`);
      }
      // The first alarm: offered at once (NFPA met), accepted by the responder at once (TSA met).
      await publishEvent(daemon.mqttUrl, 'xs-d0001', { type: 'sos' });
      await page.locator('#wall-open', { hasText: '1' }).waitFor(SHOWS_UP);
      const first = (await serverSnapshot(page)).incidents.find((v) => v.device_id === 'xs-d0001');
      ids.first = first.id;
      const responder = first.offers[0].responder.id;
      const accepted = await fetch(new URL('/api/v1/responder/actions', daemon.consoleUrl), {
        method: 'POST',
        headers: { authorization: `Bearer demo-${responder}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'accept', incident_id: first.id }),
      });
      assert.equal(accepted.status, 200, await accepted.text());
      await standardIs(page, 'tsa_60', { met: 1, missed: 0, rating: 'green' });
      await standardIs(page, 'nfpa_1225', { met: 1, missed: 0, rating: 'green' });
      assert.equal(await standard(page, 'tsa_60').locator('.std-share').textContent(), '100.0%');
      await page.locator('[data-state-count="going"] .state-n', { hasText: '1' }).waitFor(SHOWS_UP);
      // The one who accepted is the only responder busy, at their station; the rest are free.
      await page.waitForFunction(
        () => [...document.querySelectorAll('#wall-stations [data-col="busy"]')].reduce((n, b) => n + Number(b.textContent), 0) === 1,
        null,
        SHOWS_UP,
      );
      // The stations count their 40 responders, not the demo's three home-care workers.
      const counted = await page.evaluate(() =>
        [...document.querySelectorAll('#wall-stations [data-col]')].reduce((n, b) => n + Number(b.textContent), 0),
      );
      assert.equal(counted, 40);

      // The second alarm: offered, and nobody takes it on within the 20 s.
      await publishEvent(daemon.mqttUrl, 'xs-d0002', { type: 'fall' });
      await page.locator('#wall-open', { hasText: '2' }).waitFor(SHOWS_UP);
      const second = (await serverSnapshot(page)).incidents.find((v) => v.device_id === 'xs-d0002');
      ids.second = second.id;
      await page.locator(`#tile-oldest[data-incident="${second.id}"]`).waitFor(SHOWS_UP);
      await figureIs(page, 'tsa_60', 'pending', 1); // the second, within its time
      await shoot(page, 'wallboard-pending-zh.png');
      await standardIs(page, 'tsa_60', { met: 1, missed: 1, rating: 'red' });
      assert.equal(await standard(page, 'tsa_60').locator('.std-share').textContent(), '50.0%');
      assert.match(await standard(page, 'tsa_60').locator('.std-missed').textContent(), new RegExp(`#${second.id}\\b`));
      assert.equal(await figure(page, 'tsa_180', 'pending'), 1, 'still within 180 s');

      // The supervisor takes it on: a late answer, still a miss; their claim is on their row.
      const claimed = await command(page, { incident_id: second.id, action: 'claim' });
      assert.equal(claimed.ok, true, JSON.stringify(claimed));
      await page.locator('#wall-dispatchers tr[data-dispatcher="supervisor"] td[data-col="claimed"]', { hasText: '1' }).waitFor(SHOWS_UP);
      await standardIs(page, 'tsa_180', { met: 2, missed: 0, rating: 'green' });
      await standardIs(page, 'tsa_60', { met: 1, missed: 1, rating: 'red' });
      assert.equal(await page.locator('#wall-nobody').textContent(), '0');
      await shoot(page, 'wallboard-zh.png');

      // The same board in English.
      await page.locator('#wall-lang').click();
      await page.locator('html[lang="en"]').waitFor(SHOWS_UP);
      assert.equal(await standard(page, 'tsa_60').locator('.std-rating').textContent(), 'below');
      assert.equal(await page.locator('#wall-dispatchers th').first().textContent(), 'Dispatcher');
      await shoot(page, 'wallboard-en.png');
      assert.deepEqual(errors, []);
    });
    await page.close();
  });

  it('shows the same day after a restart', { timeout: 120_000 }, async () => {
    await daemon.stop();
    daemon = await spawnDaemon({ dbPath, env: ENV });
    const { page, errors } = await openWall(browser, daemon, 'zh');
    await step('restart', page, async () => {
      await standardIs(page, 'tsa_60', { met: 1, missed: 1, rating: 'red' });
      await standardIs(page, 'tsa_180', { met: 2, missed: 0, rating: 'green' });
      await standardIs(page, 'nfpa_1225', { met: 2, missed: 0, rating: 'green' });
      assert.match(await standard(page, 'tsa_60').locator('.std-missed').textContent(), new RegExp(`#${ids.second}\\b`));
      await page.locator('#wall-dispatchers tr[data-dispatcher="supervisor"] td[data-col="claimed"]', { hasText: '1' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#wall-open').textContent(), '2');
      assert.deepEqual(errors, []);
      // The day is read once the restarted engine runs; the page shows it as before.
      await shoot(page, 'wallboard-after-restart-zh.png');
    });
    await page.close();
  });

  it('is not shown to a dispatcher', { timeout: 60_000 }, async () => {
    const page = await browser.newPage(WALL);
    await step('dispatcher', page, async () => {
      await signIn(page, daemon.consoleUrl, { user: 'dispatcher' });
      await page.goto(new URL('/console/wall', daemon.consoleUrl).toString());
      await page.locator('#wall-notice:not([hidden])').waitFor(SHOWS_UP);
      assert.ok(await page.locator('#wall').isHidden());
    });
    await page.close();
  });
});
