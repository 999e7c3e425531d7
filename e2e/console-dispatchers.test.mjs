// Many dispatchers on one live anxind: two claim the same incident at the same moment (one
// wins, the other sees who), a supervisor takes over, and a console whose socket drops again
// and again while presses keep coming ends with exactly the server's incidents, none lost and
// none doubled.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  launchChromium,
  publishEvent,
  resultsDir,
  serverSnapshot,
  signIn,
  spawnDaemon,
  watchPageErrors,
} from './support.mjs';

const SHOWS_UP = { timeout: 15_000 };
const VIEWPORT = { viewport: { width: 1440, height: 900 } };
const row = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

describe('several dispatchers on a live anxind', () => {
  let daemon;
  let browser;
  const pages = [];

  async function step(name, fn) {
    try {
      await fn();
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      for (const [i, p] of pages.entries()) {
        await p.screenshot({ path: join(resultsDir, `failed-${name}-${i}.png`) }).catch(() => {});
      }
      err.message += `\n(daemon log: ${daemon?.logPath}; last lines:\n${daemon?.tail()})`;
      throw err;
    }
  }

  before(async () => {
    daemon = await spawnDaemon();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('two dispatchers claim the same incident: one wins, the other sees who', { timeout: 60_000 }, () =>
    step('claim', async () => {
      // Each browser context is its own person with its own session cookie.
      const a = await browser.newPage(VIEWPORT);
      const b = await browser.newPage(VIEWPORT);
      pages.push(a, b);
      const errorsA = watchPageErrors(a);
      const errorsB = watchPageErrors(b);
      await signIn(a, daemon.consoleUrl, { user: 'dispatcher' });
      await signIn(b, daemon.consoleUrl, { user: 'dispatcher2' });
      const nameA = (await a.locator('#me').textContent()).split(' · ')[0];
      const nameB = (await b.locator('#me').textContent()).split(' · ')[0];
      // The server's refusal names the holder by sign-in name; the console shows display names.
      const holder = (name, user) => new RegExp(`${name}|\\b${user}\\b`);

      await publishEvent(daemon.mqttUrl, 'xs-d0010');
      for (const p of [a, b]) {
        await row(p, 'xs-d0010').click(SHOWS_UP);
        await p.locator('#detail [data-action="claim"]').waitFor(SHOWS_UP);
      }
      // Both press Claim in the same instant, before either hears of the other's claim: each
      // page clicks at the same moment of the browser's one clock (handing the two clicks to
      // the pages one after the other let a quick server show the first claim to the second
      // page before its click).
      const at = Date.now() + 300;
      const pressClaimAt = async (when) => {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, when - Date.now() - 20)));
        while (Date.now() < when) {
          // the last few milliseconds, spun rather than left to a timer's granularity
        }
        document.querySelector('#detail [data-action="claim"]').click();
      };
      await Promise.all([a, b].map((p) => p.evaluate(pressClaimAt, at)));

      const status = async (p) => p.locator('#detail-claim').getAttribute('data-claimed');
      await a.waitForFunction(() => document.querySelector('#detail-claim').dataset.claimed !== 'none', null, SHOWS_UP);
      await b.waitForFunction(() => document.querySelector('#detail-claim').dataset.claimed !== 'none', null, SHOWS_UP);
      const [sa, sb] = [await status(a), await status(b)];
      assert.deepEqual([sa, sb].sort(), ['me', 'other'], `claims: ${sa}, ${sb}`);
      const [winner, loser, winnerName, winnerUser] = sa === 'me' ? [a, b, nameA, 'dispatcher'] : [b, a, nameB, 'dispatcher2'];

      // The loser sees who holds it, in the panel and in the queue, and was told why.
      assert.match(await loser.locator('[data-field="claim-status"]').textContent(), new RegExp(winnerName));
      assert.equal(await row(loser, 'xs-d0010').locator('[data-field="claimed-by"]').textContent(), winnerName);
      assert.equal(await row(winner, 'xs-d0010').locator('[data-field="claimed-by"]').textContent(), '我');
      await loser.locator('.toast-error').first().waitFor(SHOWS_UP);
      assert.match(await loser.locator('.toast-error').first().textContent(), holder(winnerName, winnerUser));
      assert.equal(await loser.locator('#detail [data-action="claim"]').count(), 0, 'a dispatcher cannot take over');

      // Anyone may add a note; the loser's other commands on it are refused with the holder's name.
      await loser.locator('#detail [data-action="note"]').click();
      await loser.locator('#detail-form textarea[name="text"]').fill('我也在看');
      await loser.locator('#detail-form button[type="submit"]').click();
      await loser.locator('#detail-form').waitFor({ state: 'hidden', ...SHOWS_UP });
      await winner.locator('#detail .tl-note', { hasText: '我也在看' }).waitFor(SHOWS_UP);
      await loser.locator('#detail [data-action="escalate"]').click();
      await loser.locator('#detail-form button[type="submit"]').click();
      await loser.locator('#detail-form .form-error', { hasText: holder(winnerName, winnerUser) }).waitFor(SHOWS_UP);
      await loser.keyboard.press('Escape');

      // A supervisor may take over.
      const sup = await browser.newPage(VIEWPORT);
      pages.push(sup);
      const errorsSup = watchPageErrors(sup);
      await signIn(sup, daemon.consoleUrl, { user: 'supervisor' });
      await row(sup, 'xs-d0010').click();
      await sup.locator('#detail [data-action="claim"]').click();
      await sup.locator('#detail-claim[data-claimed="me"]').waitFor(SHOWS_UP);
      const supName = (await sup.locator('#me').textContent()).split(' · ')[0];
      await winner.locator('#detail-claim[data-claimed="other"]').waitFor(SHOWS_UP);
      assert.match(await winner.locator('[data-field="claim-status"]').textContent(), new RegExp(supName));
      await sup.locator('#detail .tl-claimed').nth(1).waitFor(SHOWS_UP);

      // Every error the pages logged would be a bug; refusals are toasts, not errors.
      assert.deepEqual([...errorsA, ...errorsB, ...errorsSup], []);
      for (const p of [a, b, sup]) await p.close();
      pages.length = 0;
    }));

  it('a console that keeps losing its socket while presses continue ends with every incident once', { timeout: 120_000 }, () =>
    step('reconnect', async () => {
      const watcher = await browser.newPage(VIEWPORT);
      pages.push(watcher);
      const errors = watchPageErrors(watcher);
      // The feed goes through playwright's proxy so the test can cut it and hold the next
      // connection a while, as a flaky network would.
      const urls = [];
      let current = null;
      let hold = null;
      await watcher.routeWebSocket(/\/ws(\?.*)?$/, async (ws) => {
        urls.push(ws.url());
        if (hold) await hold;
        current = ws;
        ws.connectToServer();
      });
      await signIn(watcher, daemon.consoleUrl);
      await watcher.evaluate(() => {
        window.__sameLoad = true;
      });

      const devices = Array.from({ length: 40 }, (_, i) => `xs-d${String(100 + i).padStart(4, '0')}`);
      let published = 0;
      const presses = (async () => {
        for (const id of devices) {
          await publishEvent(daemon.mqttUrl, id, { type: published % 5 === 0 ? 'fall' : 'sos' });
          published += 1;
          await sleep(60);
        }
      })();

      // Three cuts while the presses go on, each holding the reconnection for a moment.
      for (let cut = 0; cut < 3; cut += 1) {
        await sleep(500);
        let release;
        hold = new Promise((res) => {
          release = res;
        });
        const before = published;
        await current.close({ code: 1012, reason: 'e2e: connection cut' });
        await watcher.locator('#conn-status[data-state="reconnecting"]').waitFor(SHOWS_UP);
        // Wait until a press or two happened while this console was away.
        while (published < Math.min(devices.length, before + 2)) await sleep(50);
        hold = null;
        release();
        await watcher.locator('#conn-status[data-state="connected"]').waitFor({ timeout: 30_000 });
      }
      await presses;

      const feedUrls = [...urls];
      const truth = await serverSnapshot(watcher);
      const expected = new Map(truth.incidents.map((v) => [String(v.id), v]));
      // Every open incident, once: the emergencies in the queue, welfare checks (the demo's
      // flat and switched-off devices) in their own list.
      const ROWS = '#incidents tbody tr, #welfare tbody tr';
      await watcher.waitForFunction(
        ([rows, n]) => document.querySelectorAll(rows).length === n,
        [ROWS, expected.size],
        { timeout: 30_000 },
      );
      // Let any delta still on its way land, then compare row by row.
      await watcher.waitForFunction(
        (seq) => Number(document.querySelector('#incidents').dataset.seq) >= seq,
        truth.seq,
        { timeout: 30_000 },
      );
      const shown = await watcher.locator(ROWS).evaluateAll((rows) =>
        rows.map((r) => ({ id: r.dataset.incidentId, device: r.dataset.deviceId, seq: Number(r.dataset.seq) })),
      );
      const ids = shown.map((r) => r.id);
      assert.equal(new Set(ids).size, ids.length, 'a row appears twice');
      const deviceIds = shown.map((r) => r.device);
      assert.equal(new Set(deviceIds).size, deviceIds.length, 'a device has two incidents');
      for (const id of devices) assert.ok(deviceIds.includes(id), `the press from ${id} is missing`);
      for (const r of shown) {
        const v = expected.get(r.id);
        assert.ok(v, `row ${r.id} is not open on the server`);
        assert.ok(r.seq >= v.seq, `row ${r.id} is behind: seq ${r.seq} < ${v.seq}`);
      }
      assert.equal(await watcher.evaluate(() => window.__sameLoad), true, 'the page reloaded');
      assert.ok(feedUrls.length >= 4, `connections: ${feedUrls.join(' ')}`);
      for (const url of feedUrls.slice(1)) assert.match(url, /[?&]since=\d+/, url);
      console.log(`reconnect: ${devices.length} presses, ${feedUrls.length - 1} reconnections, ${shown.length} rows, server seq ${truth.seq}`);
      assert.deepEqual(errors, []);
      await watcher.close();
      pages.length = 0;
    }));
});
