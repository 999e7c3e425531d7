// The console's queue and detail panel against a real anxind (issue 17, points 9, 10, 12, 13):
// why nobody took a job, an ended incident's panel, rows that look as different as their
// states are, each rung's own target and clock, an emergency call on its row, filters and
// search, an elder's history from the store, and ten rows or more at 1366×768.
//
// Run from the repository root after `cargo build -p anxind`:
//   ANXIND_BIN=$PWD/target/debug/anxind node --test e2e/console-queue.test.mjs
// SHOTS=before|after with UPDATE_SCREENSHOTS=1 names the pictures of the `pictures` test.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  launchChromium,
  publishEvent,
  resultsDir,
  screenshotsDir,
  serverSnapshot,
  signIn,
  spawnDaemon,
  watchPageErrors,
} from './support.mjs';

const SHOWS_UP = { timeout: 20_000 };
// Far out in the hills west of the district: nobody within the 5 km offer distance.
const HILLS = { lat: 25.3, lon: 102.42, accuracy_m: 30 };

const row = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);

/** Sends one frame over a second console socket of the page (its session) and returns the result. */
async function ask(page, frame) {
  return page.evaluate(
    (f) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`);
        const timer = setTimeout(() => {
          ws.close();
          reject(new Error(`no answer to ${JSON.stringify(f)} within 15 s`));
        }, 15_000);
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data);
          if (msg.type === 'snapshot') ws.send(JSON.stringify({ ...f, request_id: 'e2e' }));
          if (msg.type === 'result' && msg.request_id === 'e2e') {
            clearTimeout(timer);
            ws.close();
            resolve(msg);
          }
        };
      }),
    frame,
  );
}

/** The server's own view of a device's open incident (a fresh snapshot). */
async function serverView(page, deviceId) {
  return (await serverSnapshot(page)).incidents.find((v) => v.device_id === deviceId) ?? null;
}

async function commandOk(page, frame) {
  const result = await ask(page, { type: 'command', ...frame });
  assert.equal(result.ok, true, `${JSON.stringify(frame)}: ${JSON.stringify(result)}`);
  return result;
}

/** Puts a responder on the incident by hand, as a dispatcher would: the best suggested one free. */
async function assignOffered(page, deviceId) {
  await row(page, deviceId).waitFor(SHOWS_UP);
  const view = await serverView(page, deviceId);
  const offered = view.offers?.map((o) => o.responder.id) ?? [];
  const { suggestions = [] } = await ask(page, { type: 'suggest', incident_id: view.id });
  for (const id of [...offered, ...suggestions.map((s) => s.responder.id)]) {
    const result = await ask(page, { type: 'command', incident_id: view.id, action: 'assign', responder_id: id });
    if (result.ok) {
      const after = await serverView(page, deviceId);
      return { view: after, responder: after.responder };
    }
  }
  throw new Error(`nobody could be assigned to ${deviceId}`);
}

/** Shows every row again (the queue's filters, where the page has them). */
async function clearFilters(page) {
  if ((await page.locator('#queue-search').count()) === 0) return;
  await page.locator('#queue-search').fill('');
  await page.locator('[data-group-filter="all"]').click();
  for (const name of ['kind', 'alarm', 'station']) await page.locator(`[data-filter="${name}"]`).selectOption('all');
}

describe('console queue and panel on a live anxind', () => {
  let daemon;
  let browser;
  let page;
  let errors;

  async function step(name, fn) {
    try {
      await fn();
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await page?.screenshot({ path: join(resultsDir, `failed-queue-${name}.png`) }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; last lines:\n${daemon?.tail()})`;
      throw err;
    }
  }

  before(async () => {
    // Offers lapse in 2 s and the station's duty line has 3 s, so the ladder runs out quickly.
    process.env.ANXIN_DISPATCH__OFFER_TIMEOUT_S = '2';
    process.env.ANXIN_DISPATCH__STATION_TIMEOUT_S = '3';
    daemon = await spawnDaemon();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    errors = watchPageErrors(page);
    await signIn(page, daemon.consoleUrl);
  });

  after(async () => {
    await browser?.close();
    if (daemon) await daemon.stop();
  });

  it('says three responders were offered and none accepted, not "nobody in range" (point 9)', { timeout: 90_000 }, () =>
    step('lapsed', async () => {
      await publishEvent(daemon.mqttUrl, 'xs-d0011');
      const r = row(page, 'xs-d0011');
      await r.waitFor(SHOWS_UP);
      // Every offer lapses, then the station's line: the ladder has left it to a dispatcher.
      await r.locator('[data-field="offers-lapsed"]').waitFor({ timeout: 60_000 });
      const view = await serverView(page, 'xs-d0011');
      assert.ok(view.ladder.offers_made >= 1, JSON.stringify(view.ladder));
      assert.equal(
        await r.locator('[data-field="offers-lapsed"]').textContent(),
        `已派 ${view.ladder.offers_made} 人，均未接单`,
      );
      assert.equal(await r.locator('[data-field="nobody"]').count(), 0, 'nobody-in-range is not what happened');

      // Far out in the hills, nobody is within reach: the row says how far was searched.
      await publishEvent(daemon.mqttUrl, 'xs-d0012', { location: HILLS });
      const far = row(page, 'xs-d0012');
      await far.locator('[data-field="nobody"]').waitFor(SHOWS_UP);
      const farView = await serverView(page, 'xs-d0012');
      assert.equal(farView.ladder.offers_made ?? 0, 0);
      assert.equal(farView.no_offer?.type, 'nobody_in_range', JSON.stringify(farView.no_offer));
      assert.equal(await far.locator('[data-field="nobody"]').textContent(), '5.0 公里内无空闲响应人');

      // In English too.
      await page.locator('#lang-toggle').click();
      await far.locator('[data-field="nobody"]', { hasText: 'Nobody free within 5.0 km' }).waitFor(SHOWS_UP);
      await r.locator('[data-field="offers-lapsed"]', { hasText: `${view.ladder.offers_made} offered, none accepted` }).waitFor(SHOWS_UP);
      await page.locator('#lang-toggle').click();
      await r.locator('[data-field="offers-lapsed"]', { hasText: '均未接单' }).waitFor(SHOWS_UP);
    }));

  it('shows the rung, its own target and state groups; an emergency call on the row; resolved rows below (point 12)', { timeout: 90_000 }, () =>
    step('hierarchy', async () => {
      // Needs a person now: the ladder runs out.
      await publishEvent(daemon.mqttUrl, 'xs-d0013');
      const needs = row(page, 'xs-d0013');
      await needs.waitFor(SHOWS_UP);
      await page.waitForFunction(() => document.querySelector('tr[data-device-id="xs-d0013"]')?.dataset.state === 'awaiting_dispatcher', null, { timeout: 60_000 });
      assert.equal(await needs.getAttribute('data-group'), 'needs');
      const needsView = await serverView(page, 'xs-d0013');
      if (needsView.alarm) assert.equal(await needs.getAttribute('data-alarm'), needsView.alarm.level);
      assert.equal(await needs.locator('[data-field="target"]').getAttribute('data-rung'), 'dispatcher');
      assert.equal(await needs.locator('[data-field="since"]').getAttribute('data-age'), 'late', 'nobody is going: that target is missed');

      // Escalating to 120 with a reference shows on the row at once.
      await commandOk(page, { incident_id: needsView.id, action: 'escalate', number: '120', reference: 'KM-7788' });
      await needs.locator('[data-field="emergency-called"]', { hasText: '☎120 已呼叫 · 参考号 KM-7788' }).waitFor(SHOWS_UP);
      assert.match(await needs.getAttribute('class'), /\bcalled\b/);

      // Pressed a while ago by the device's clock, and just offered: the offer's own target
      // runs, so the clock is not red though more than a minute has passed since the press.
      await publishEvent(daemon.mqttUrl, 'xs-d0021', { ts: Date.now() - 5 * 60_000 });
      const offered = row(page, 'xs-d0021');
      await offered.waitFor(SHOWS_UP);
      const offer = await offered.evaluate((tr) => {
        const target = tr.querySelector('[data-field="target"]');
        return {
          state: tr.dataset.state,
          group: tr.dataset.group,
          rung: target.dataset.rung,
          text: target.textContent,
          age: tr.querySelector('[data-field="since"]').dataset.age,
          elapsed: tr.querySelector('[data-field="since"]').textContent,
        };
      });
      if (offer.state === 'offered') {
        assert.equal(offer.group, 'ladder');
        assert.equal(offer.rung, 'offer');
        assert.match(offer.text, /^派单 [123]\/3 · (还剩|超时) \d+:\d\d$/);
        assert.match(offer.elapsed, /^0[45]:/, 'about five minutes since the press');
        if (/还剩/.test(offer.text)) assert.notEqual(offer.age, 'late', 'the offer is not late: its clock is not red');
      }

      // Somebody going: the on-scene target, with its own deadline.
      const { responder } = await assignOffered(page, 'xs-d0021');
      await page.waitForFunction(() => document.querySelector('tr[data-device-id="xs-d0021"]')?.dataset.group === 'going', null, SHOWS_UP);
      const going = await offered.evaluate((tr) => ({
        rung: tr.querySelector('[data-field="target"]').dataset.rung,
        text: tr.querySelector('[data-field="target"]').textContent,
        age: tr.querySelector('[data-field="since"]').dataset.age,
        name: tr.querySelector('[data-field="responder-name"]').textContent,
      }));
      assert.equal(going.rung, 'on_scene');
      assert.match(going.text, /^\d\d:\d\d 前到场 · 还剩 \d+:\d\d$/);
      assert.notEqual(going.age, 'late', 'five minutes of a thirty-minute on-scene target is not red');
      assert.equal(going.name, responder.name);

      // Resolved: its own group, below every live row, never flagged or flashing.
      const goingView = await serverView(page, 'xs-d0021');
      await commandOk(page, { incident_id: goingView.id, action: 'resolve', outcome: 'helped_at_home' });
      await page.waitForFunction(() => document.querySelector('tr[data-device-id="xs-d0021"]')?.dataset.group === 'resolved', null, SHOWS_UP);
      const order = await page.locator('#incidents tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.group));
      const firstResolved = order.indexOf('resolved');
      assert.ok(order.slice(firstResolved).every((g) => g === 'resolved'), `resolved rows sort last: ${order}`);
      const resolved = row(page, 'xs-d0021');
      assert.equal(await resolved.getAttribute('data-alarm'), null);
      assert.doesNotMatch(await resolved.getAttribute('class'), /\balarm\b/);
      assert.equal(await resolved.locator('[data-field="target"]').getAttribute('data-rung'), 'resolved');
      assert.equal(await resolved.locator('[data-field="since"]').getAttribute('data-age'), 'done');

      // The four looks differ in more than text colour: the state badges' fills differ.
      const fills = await page.locator('#incidents tbody tr [data-field="state"]').evaluateAll((els) =>
        Object.fromEntries(els.map((e) => [e.dataset.group, getComputedStyle(e).backgroundColor + '|' + getComputedStyle(e).borderStyle])),
      );
      assert.notEqual(fills.needs, fills.resolved);
      assert.ok(new Set(Object.values(fills)).size === Object.keys(fills).length, JSON.stringify(fills));
    }));

  it("shows an ended incident's kind, elder, outcome and who handled it, with no empty bars (point 10)", { timeout: 60_000 }, () =>
    step('ended', async () => {
      await publishEvent(daemon.mqttUrl, 'xs-d0091');
      const { view, responder } = await assignOffered(page, 'xs-d0091');
      await commandOk(page, { incident_id: view.id, action: 'resolve', outcome: 'taken_to_hospital' });
      await page.waitForFunction(() => document.querySelector('tr[data-device-id="xs-d0091"]')?.dataset.state === 'resolved', null, SHOWS_UP);
      await row(page, 'xs-d0091').click();
      await page.locator(`#detail[data-incident-id="${view.id}"][data-state="resolved"]`).waitFor(SHOWS_UP);
      await commandOk(page, { incident_id: view.id, action: 'close', outcome: 'taken_to_hospital' });
      await page.locator('#detail[data-state="closed"]').waitFor(SHOWS_UP);
      await page.locator('#detail [data-field="ended-summary"]', { hasText: '已送医' }).waitFor(SHOWS_UP);
      const title = await page.locator('#detail-title').textContent();
      assert.match(title, /紧急呼叫/, `the kind is in the title: ${title}`);
      assert.match(title, new RegExp(view.elder.name), `the elder is in the title: ${title}`);
      const summary = await page.locator('#detail [data-field="ended-summary"]').textContent();
      assert.match(summary, new RegExp(responder.name), summary);
      assert.match(await page.locator('#detail-sub').textContent(), /已结案/);
      assert.match(await page.locator('#detail [data-field="ended-responder"]').textContent(), new RegExp(responder.name));
      assert.match(await page.locator('#detail [data-field="ended-by"]').textContent(), /值班调度员/);
      // No empty bars: the claim bar holds the outcome, the actions bar is gone.
      assert.ok((await page.locator('#detail-claim').textContent()).trim().length > 0);
      assert.equal(await page.locator('#detail-actions').isVisible(), false);
      await page.keyboard.press('Escape');
    }));

  it('filters and searches the queue with counts, and shows an elder\'s last 30 days (point 13)', { timeout: 90_000 }, () =>
    step('filters', async () => {
      // Somebody going, a service request (it needs a dispatcher), and a press to look for.
      await publishEvent(daemon.mqttUrl, 'xs-d0031', { type: 'service' });
      await publishEvent(daemon.mqttUrl, 'xs-d0093');
      await publishEvent(daemon.mqttUrl, 'xs-d0032');
      await assignOffered(page, 'xs-d0032');
      await page.waitForFunction(() => document.querySelector('tr[data-device-id="xs-d0032"]')?.dataset.group === 'going', null, SHOWS_UP);
      await row(page, 'xs-d0031').waitFor(SHOWS_UP);
      await row(page, 'xs-d0093').waitFor(SHOWS_UP);
      const tools = page.locator('#queue-tools');
      await tools.locator('[data-group-filter="needs"]').waitFor(SHOWS_UP);
      const visible = () => page.locator('#incidents tbody tr:visible').evaluateAll((rows) => rows.map((r) => r.dataset.deviceId));
      const total = await page.locator('#incidents tbody tr').count();
      await tools.locator('[data-count="all"]', { hasText: String(total) }).waitFor(SHOWS_UP);

      // By state group.
      await tools.locator('[data-group-filter="needs"]').click();
      const needs = await visible();
      assert.ok(needs.includes('xs-d0031') && !needs.includes('xs-d0032'), `${needs} of ${total}`);
      for (const id of needs) assert.equal(await row(page, id).getAttribute('data-group'), 'needs');
      await tools.locator('[data-group-filter="going"]').click();
      assert.ok((await visible()).includes('xs-d0032'));
      await tools.locator('[data-count="going"]', { hasText: String((await visible()).length) }).waitFor(SHOWS_UP);
      await tools.locator('[data-group-filter="all"]').click();

      // Search by the elder's name, by device id, by incident id.
      const view = await serverView(page, 'xs-d0093');
      const search = page.locator('#queue-search');
      await search.fill(view.elder.name);
      await page.waitForFunction((n) => document.querySelectorAll('#incidents tbody tr:not([hidden])').length < n, total, SHOWS_UP);
      const byName = await visible();
      assert.ok(byName.includes('xs-d0093'), `${byName}`);
      for (const id of byName) assert.equal(await row(page, id).locator('[data-field="elder-name"]').textContent(), view.elder.name);
      await page.locator('#queue-shown', { hasText: `显示 ${byName.length} / ${total}` }).waitFor(SHOWS_UP);
      await search.fill('xs-d0032');
      assert.deepEqual(await visible(), ['xs-d0032']);
      await search.fill(`#${view.id}`);
      assert.deepEqual(await visible(), ['xs-d0093']);
      // Keys typed in the search box do not act on the queue.
      await search.press('a');
      await search.fill('');
      assert.equal((await visible()).length, total);

      // By kind, and by alarm: the service request's routine alarm is up, nobody has seen it.
      await tools.locator('[data-filter="kind"]').selectOption('service');
      assert.deepEqual(await visible(), ['xs-d0031']);
      await tools.locator('[data-filter="alarm"]').selectOption('routine');
      assert.deepEqual(await visible(), ['xs-d0031']);
      await tools.locator('[data-filter="alarm"]').selectOption('all');
      await tools.locator('[data-filter="kind"]').selectOption('all');

      // An elder's history: an incident of theirs closed, then a new press.
      await publishEvent(daemon.mqttUrl, 'xs-d0092');
      const { view: first } = await assignOffered(page, 'xs-d0092');
      await commandOk(page, { incident_id: first.id, action: 'resolve', outcome: 'taken_to_hospital' });
      await commandOk(page, { incident_id: first.id, action: 'close', outcome: 'taken_to_hospital' });
      await page.waitForFunction(() => !document.querySelector('tr[data-device-id="xs-d0092"]'), null, SHOWS_UP);
      await publishEvent(daemon.mqttUrl, 'xs-d0092');
      const again = row(page, 'xs-d0092');
      await again.waitFor(SHOWS_UP);
      await again.click();
      const summary = page.locator('#detail [data-field="history-summary"]');
      await summary.waitFor(SHOWS_UP);
      assert.equal(await summary.getAttribute('data-month'), '2');
      assert.equal(await summary.getAttribute('data-week'), '2');
      assert.equal(await summary.textContent(), '近 30 天 2 次 · 本周 2 次');
      const items = page.locator('#detail [data-history-id]');
      assert.equal(await items.count(), 2);
      const closed = page.locator('#detail [data-history-id][data-state="closed"]');
      assert.match(await closed.textContent(), /已送医/);
      // Opening the closed one from the history shows its ended panel.
      const closedId = await closed.getAttribute('data-history-id');
      await closed.click();
      await page.locator(`#detail[data-incident-id="${closedId}"][data-state="closed"]`).waitFor(SHOWS_UP);
      await page.locator('#detail [data-field="ended-summary"]', { hasText: '已送医' }).waitFor(SHOWS_UP);
      await page.keyboard.press('Escape');
    }));

  it('fits at least ten compact rows at 1366×768 (point 13)', { timeout: 120_000 }, () =>
    step('layout', async () => {
      await clearFilters(page);
      for (let n = 41; n <= 52; n += 1) await publishEvent(daemon.mqttUrl, `xs-d${String(n).padStart(4, '0')}`);
      await page.waitForFunction(() => document.querySelectorAll('#incidents tbody tr').length >= 14, null, SHOWS_UP);
      await page.locator('#queue-scroll').evaluate((el) => el.scrollTo(0, 0));
      const fully = await page.evaluate(() => {
        const box = document.querySelector('#queue-scroll').getBoundingClientRect();
        const head = document.querySelector('#incidents thead').getBoundingClientRect();
        const top = Math.max(box.top, head.bottom);
        return [...document.querySelectorAll('#incidents tbody tr')].filter((tr) => {
          const r = tr.getBoundingClientRect();
          return !tr.hidden && r.height > 0 && r.top >= top - 0.5 && r.bottom <= box.bottom + 0.5;
        }).length;
      });
      assert.ok(fully >= 10, `${fully} rows fully visible at 1366×768`);
      // What needs a person is never cut short beside the kind ("无…" once stood for
      // "无人前往", nobody going), in either language.
      for (const lang of ['zh', 'en']) {
        if ((lang === 'en') !== (await page.evaluate(() => document.documentElement.lang === 'en'))) await page.locator('#lang-toggle').click();
        await page.waitForFunction((l) => (document.documentElement.lang === 'en') === (l === 'en'), lang);
        const cut = await page.evaluate(() =>
          [...document.querySelectorAll('#incidents tbody tr:not([hidden]) .alarm-line')]
            .filter((el) => el.getBoundingClientRect().width > 0 && el.scrollWidth > el.clientWidth + 1)
            .map((el) => el.textContent));
        const shown = await page.evaluate(() => document.querySelectorAll('#incidents tbody tr:not([hidden]) .alarm-line').length);
        assert.ok(shown > 0, 'rows with an alarm are on screen');
        assert.deepEqual(cut, [], `alarms cut at 1366×768 (${lang})`);
      }
      assert.deepEqual(errors, []);
    }));

  // Pictures of the queue and panel, made the same way on main's code (SHOTS=before) and on
  // this branch's (SHOTS=after): it makes its own scene and asserts nothing new, so it runs on
  // both (alone: --test-name-pattern=pictures).
  it('pictures', { timeout: 180_000 }, () =>
    step('pictures', async () => {
      const tag = process.env.SHOTS ?? 'after';
      const dev = (n) => `xs-d${String(n).padStart(4, '0')}`;
      await clearFilters(page);
      const until = (id, want) => page.waitForFunction(([d, w]) => document.querySelector(`tr[data-device-id="${d}"]`)?.dataset.state === w, [id, want], { timeout: 60_000 });
      // Nobody going, escalated to 120; somebody going; resolved; nobody in range; a service
      // request; and a dozen new presses being offered.
      await publishEvent(daemon.mqttUrl, dev(61), { ts: Date.now() - 3 * 60_000 });
      await publishEvent(daemon.mqttUrl, dev(62), { ts: Date.now() - 5 * 60_000, type: 'fall' });
      await publishEvent(daemon.mqttUrl, dev(63), { ts: Date.now() - 9 * 60_000 });
      await publishEvent(daemon.mqttUrl, dev(64), { location: HILLS });
      await publishEvent(daemon.mqttUrl, dev(65), { type: 'service' });
      await publishEvent(daemon.mqttUrl, dev(76), { ts: Date.now() - 12 * 60_000, type: 'fall' });
      await assignOffered(page, dev(62));
      await assignOffered(page, dev(63));
      const resolvedView = await serverView(page, dev(63));
      await commandOk(page, { incident_id: resolvedView.id, action: 'resolve', outcome: 'family_attending' });
      await assignOffered(page, dev(76));
      const closing = await serverView(page, dev(76));
      await until(dev(61), 'awaiting_dispatcher');
      const needs = await serverView(page, dev(61));
      await commandOk(page, { incident_id: needs.id, action: 'escalate', number: '120', reference: 'KM-7788' });
      for (let n = 66; n <= 75; n += 1) await publishEvent(daemon.mqttUrl, dev(n));
      await row(page, dev(75)).waitFor(SHOWS_UP);
      await mkdir(screenshotsDir, { recursive: true });
      await page.emulateMedia({ reducedMotion: 'reduce' });
      const setLang = async (lang) => {
        const now = await page.evaluate(() => document.documentElement.lang);
        if ((lang === 'en') !== (now === 'en')) await page.locator('#lang-toggle').click();
        await page.waitForFunction((l) => (document.documentElement.lang === 'en') === (l === 'en'), lang);
      };
      for (const [w, hgt] of [[1366, 768], [1920, 1080]]) {
        await page.setViewportSize({ width: w, height: hgt });
        for (const lang of ['zh', 'en']) {
          await setLang(lang);
          await page.locator('#queue-scroll').evaluate((el) => el.scrollTo(0, 0));
          await page.screenshot({ path: join(screenshotsDir, `console-queue-${tag}-${w}-${lang}.png`) });
        }
      }
      await page.setViewportSize({ width: 1366, height: 768 });
      await setLang('zh');
      // An incident's panel when it is closed while open, then (a new press from the same
      // elder) the panel with the elder's history.
      await row(page, dev(76)).click();
      await page.locator('#detail .tl').first().waitFor(SHOWS_UP);
      await commandOk(page, { incident_id: closing.id, action: 'resolve', outcome: 'taken_to_hospital' });
      await commandOk(page, { incident_id: closing.id, action: 'close', outcome: 'taken_to_hospital' });
      await page.locator('#detail[data-state="closed"], #detail[data-state="gone"]').waitFor(SHOWS_UP);
      await page.locator('#detail .tl-closed').waitFor(SHOWS_UP);
      await page.screenshot({ path: join(screenshotsDir, `console-panel-closed-${tag}-1366-zh.png`) });
      await page.keyboard.press('Escape');
      await publishEvent(daemon.mqttUrl, dev(76));
      await row(page, dev(76)).click();
      await page.locator('#detail .tl').first().waitFor(SHOWS_UP);
      await setLang('en');
      await page.screenshot({ path: join(screenshotsDir, `console-panel-history-${tag}-1366-en.png`) });
      await setLang('zh');
      await page.keyboard.press('Escape');
    }));
});
