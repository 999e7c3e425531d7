// The engine's alarm as a dispatcher meets it, on a live anxind with a fast ladder (offers
// and the station lapse after 2 s): incidents that already need a person when a console
// loads are flagged and sound; acknowledging an early alarm does not silence the later
// escalation; each level has its own sound and the loudest wins; a reminder sounds again;
// bulk acknowledge says how many of which needs before it acts; a frozen server is noticed
// and caught up after; who is online is shown, a claimant who went offline or signed out
// loses the claim, and another dispatcher can then act; refusals are in the page's language.
//
// Sound is observed as a page's listener would: an init script counts the oscillators the
// page starts and their frequencies (critical 1319/988 Hz, urgent 880/988/1175 Hz,
// routine 659 Hz).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, recordTones, resultsDir, screenshotsDir, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 20_000 };
const ESCALATES = { timeout: 40_000 };
const row = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);
const FAST = {
  ANXIN_DISPATCH__OFFER_TIMEOUT_S: '2',
  ANXIN_DISPATCH__STATION_TIMEOUT_S: '2',
};
const CRITICAL_HZ = 1319;
const URGENT_HZ = 1175;
const ROUTINE_HZ = 659;

const tones = (page, hz) => page.evaluate((f) => window.__tones.filter((t) => t.hz === f).length, hz);
const waitTones = (page, hz, atLeast, opts = SHOWS_UP) =>
  page.waitForFunction(([f, n]) => window.__tones.filter((t) => t.hz === f).length >= n, [hz, atLeast], opts);

/** A fresh person (own browser context and cookie) with the tone recorder. */
async function person(browser, viewport = { width: 1440, height: 900 }) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript(recordTones);
  const page = await context.newPage();
  page.errors = watchPageErrors(page);
  return page;
}

/** The command frames a page sends on its feed. */
function sentCommands(page) {
  const frames = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => {
      try {
        const msg = JSON.parse(String(f.payload));
        if (msg.type === 'command') frames.push(msg);
      } catch {
        // not JSON: not ours
      }
    });
  });
  return frames;
}

/** Ends an incident as a false alarm from its panel, and waits for its row to go. */
async function falseAlarm(page, deviceId) {
  await row(page, deviceId).click();
  await page.locator('#detail [data-action="false_alarm"]').click();
  await page.locator('#detail-form textarea[name="reason"]').fill('测试');
  await page.locator('#detail-form button[type="submit"]').click();
  await row(page, deviceId).waitFor({ state: 'detached', ...SHOWS_UP });
}

async function shoot(page, name) {
  await mkdir(screenshotsDir, { recursive: true });
  await page.screenshot({ path: join(screenshotsDir, name) });
}

function guard(daemonRef, pages) {
  return async (name, fn) => {
    try {
      await fn();
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      for (const [i, p] of pages.entries()) await p.screenshot({ path: join(resultsDir, `failed-alarm-${name}-${i}.png`) }).catch(() => {});
      err.message += `\n(daemon log: ${daemonRef()?.logPath}; last lines:\n${daemonRef()?.tail()})`;
      throw err;
    }
  };
}

describe('the engine alarm on a console that loads late, with reminders every 3 s', () => {
  let daemon;
  let browser;
  const pages = [];
  const step = guard(() => daemon, pages);

  before(async () => {
    daemon = await spawnDaemon({ env: { ...FAST, ANXIN_DISPATCH__REMINDER_INTERVAL_S: '3' } });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('flags and sounds what already needs a person at sign-in; critical wins; a reminder sounds again', { timeout: 120_000 }, () =>
    step('late', async () => {
      // Presses before any console is open: an SOS whose ladder runs out, a service request.
      await publishEvent(daemon.mqttUrl, 'xs-d0001');
      await publishEvent(daemon.mqttUrl, 'xs-d0002', { type: 'service' });

      // A first dispatcher watches it reach "nobody is going" (the ladder takes ~8 s).
      const first = await person(browser);
      pages.push(first);
      await signIn(first, daemon.consoleUrl, { user: 'dispatcher' });
      await row(first, 'xs-d0001').and(first.locator('[data-alarm="critical"]')).waitFor(ESCALATES);

      // A second dispatcher signs in now: both are flagged from the snapshot, and sound.
      const late = await person(browser);
      pages.push(late);
      await signIn(late, daemon.consoleUrl, { user: 'dispatcher2' });
      await row(late, 'xs-d0001').and(late.locator('tr.alarm[data-alarm="critical"][data-alarm-need="nobody_going"]')).waitFor(SHOWS_UP);
      await row(late, 'xs-d0002').and(late.locator('tr.alarm[data-alarm="routine"][data-alarm-need="service_request"]')).waitFor(SHOWS_UP);
      assert.equal(await late.locator('#count-alarm').textContent(), '2');
      assert.match(await row(late, 'xs-d0001').locator('[data-field="alarm"]').textContent(), /无人前往/);
      // The loudest level present wins: the critical siren, not the routine chime.
      await waitTones(late, CRITICAL_HZ, 1);
      assert.equal(await tones(late, ROUTINE_HZ), 0, 'the routine chime is not played while a critical alarm is up');
      await shoot(late, 'alarm-after-late-signin-1440-zh.png');

      // A reload (no gesture yet) still flags them; the first click lets them be heard.
      await late.reload();
      await row(late, 'xs-d0001').and(late.locator('tr.alarm[data-alarm="critical"]')).waitFor(SHOWS_UP);
      assert.equal(await late.locator('#count-alarm').textContent(), '2');
      await late.locator('#clock').click();
      await waitTones(late, CRITICAL_HZ, 1);

      // The SOS is dealt with (a false alarm); the routine service request is left. Its chime
      // repeats only once a minute, so every further chime here is a reminder (every 3 s).
      await falseAlarm(late, 'xs-d0001');
      await late.waitForFunction(() => document.querySelector('#count-alarm').textContent === '1', null, SHOWS_UP);
      const before = await tones(late, ROUTINE_HZ);
      await waitTones(late, ROUTINE_HZ, before + 2, { timeout: 20_000 });
      assert.equal(await row(late, 'xs-d0002').getAttribute('data-alarm'), 'routine');
      for (const p of pages) assert.deepEqual(p.errors, [], 'the page logged errors');
    }));
});

describe('acknowledge, bulk acknowledge, a frozen server, presence and claims', () => {
  let daemon;
  let browser;
  const pages = [];
  const step = guard(() => daemon, pages);

  before(async () => {
    daemon = await spawnDaemon({
      env: { ...FAST, ANXIN_DISPATCH__REMINDER_INTERVAL_S: '600', ANXIN_DISPATCH__CLAIM_OFFLINE_RELEASE_S: '6' },
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('an early acknowledge names its alarm and does not silence the later escalation', { timeout: 90_000 }, () =>
    step('early-ack', async () => {
      const page = await person(browser);
      pages.push(page);
      const commands = sentCommands(page);
      await signIn(page, daemon.consoleUrl);
      await publishEvent(daemon.mqttUrl, 'xs-d0003');
      const r = row(page, 'xs-d0003');
      await r.and(page.locator('tr.alarm[data-alarm="urgent"][data-alarm-need="new_emergency"]')).waitFor(SHOWS_UP);
      await waitTones(page, URGENT_HZ, 1);
      // Acknowledged while it is still being offered.
      await r.click();
      await page.locator('#detail [data-action="acknowledge"]').click();
      const ack = commands.find((c) => c.action === 'acknowledge');
      assert.equal(typeof ack?.alarm, 'number', `the acknowledge names the alarm shown: ${JSON.stringify(ack)}`);
      // The toast says what was done, without the shortcut key.
      await page.locator('.toast-ok', { hasText: '已完成：已确认' }).waitFor(SHOWS_UP);
      assert.doesNotMatch(await page.locator('.toast-ok').last().textContent(), /\(a\)/);
      // When nobody goes, it is flagged and sounds again: critical now.
      const critical = await tones(page, CRITICAL_HZ);
      await r.and(page.locator('tr.alarm[data-alarm="critical"][data-alarm-need="nobody_going"]')).waitFor(ESCALATES);
      await waitTones(page, CRITICAL_HZ, critical + 1);
      assert.equal(await page.locator('#count-alarm').textContent(), '1');
      // A note's toast carries no key hint either ("已完成：备注", not "备注 (n)").
      await page.locator('#detail [data-action="note"]').click();
      await page.locator('#detail-form textarea[name="text"]').fill('已电话联系');
      await page.locator('#detail-form button[type="submit"]').click();
      const noteToast = page.locator('.toast-ok', { hasText: '已完成：备注' });
      await noteToast.waitFor(SHOWS_UP);
      assert.equal((await noteToast.last().textContent()).trim(), '已完成：备注');
      await shoot(page, 'alarm-critical-after-early-ack-1440-zh.png');
      // Clean up: a false alarm, so the next tests start empty.
      await falseAlarm(page, 'xs-d0003');
      await page.close();
      assert.deepEqual(page.errors, []);
    }));

  it('bulk acknowledge confirms how many of which needs, then acknowledges them all', { timeout: 90_000 }, () =>
    step('bulk', async () => {
      const page = await person(browser, { width: 1366, height: 768 });
      pages.push(page);
      await signIn(page, daemon.consoleUrl);
      await publishEvent(daemon.mqttUrl, 'xs-d0004');
      await publishEvent(daemon.mqttUrl, 'xs-d0005');
      for (const d of ['xs-d0004', 'xs-d0005']) await row(page, d).and(page.locator('tr[data-alarm="critical"]')).waitFor(ESCALATES);
      await publishEvent(daemon.mqttUrl, 'xs-d0006', { type: 'service' });
      await publishEvent(daemon.mqttUrl, 'xs-d0007', { type: 'service' });
      for (const d of ['xs-d0006', 'xs-d0007']) await row(page, d).and(page.locator('tr[data-alarm="routine"]')).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#count-alarm').textContent(), '4');

      await page.locator('[data-action="bulk-ack"]').click();
      const dialog = page.locator('#bulk-ack[open]');
      await dialog.waitFor(SHOWS_UP);
      const summary = await dialog.locator('[data-field="bulk-summary"]').textContent();
      assert.match(summary, /4 个事件/);
      assert.match(summary, /无人前往 2 个/);
      assert.match(summary, /服务请求 2 个/);
      await shoot(page, 'alarm-bulk-confirm-1366-zh.png');
      // Nothing was sent before the confirmation: all four are still flagged.
      assert.equal(await page.locator('#incidents tr.alarm').count(), 4);
      // Only the critical ones first.
      await dialog.locator('[data-field="bulk-scope"]').selectOption('level:critical');
      assert.match(await dialog.locator('[data-field="bulk-summary"]').textContent(), /2 个事件/);
      await dialog.locator('[data-action="bulk-confirm"]').click();
      await page.locator('.toast-ok', { hasText: '已确认 2 个警报' }).waitFor(SHOWS_UP);
      await page.waitForFunction(() => document.querySelector('#count-alarm').textContent === '2', null, SHOWS_UP);
      assert.equal(await row(page, 'xs-d0004').getAttribute('data-alarm'), null);
      // Then the rest.
      await page.locator('[data-action="bulk-ack"]').click();
      await dialog.locator('[data-action="bulk-confirm"]').click();
      await page.locator('.toast-ok', { hasText: '已确认 2 个警报' }).nth(1).waitFor(SHOWS_UP);
      await page.waitForFunction(() => document.querySelector('#count-alarm').textContent === '0', null, SHOWS_UP);
      assert.equal(await page.locator('#incidents tr.alarm').count(), 0);
      assert.equal(await page.locator('[data-action="bulk-ack"]').isDisabled(), true);
      // Clean up.
      for (const d of ['xs-d0004', 'xs-d0005', 'xs-d0006', 'xs-d0007']) await falseAlarm(page, d);
      await page.close();
      assert.deepEqual(page.errors, []);
    }));

  it('a frozen server is noticed as stalled within seconds of 12 s, and caught up after', { timeout: 120_000 }, () =>
    step('stall', async () => {
      const page = await person(browser);
      pages.push(page);
      await signIn(page, daemon.consoleUrl);
      const conn = page.locator('#conn-status');
      process.kill(daemon.pid, 'SIGSTOP');
      let pressed;
      try {
        const stoppedAt = Date.now();
        await page.locator('#conn-status[data-state="stalled"]').waitFor({ timeout: 25_000 });
        const noticedAfter = Date.now() - stoppedAt;
        assert.ok(noticedAfter >= 10_000, `stalled only after a silence (${noticedAfter} ms)`);
        assert.notEqual((await conn.textContent()).trim(), '已连接');
        assert.match(await conn.textContent(), /连接停滞/);
        assert.equal(await page.locator('#stale-banner').isVisible(), true);
        await shoot(page, 'alarm-connection-stalled-1440-zh.png');
        // A press while the server is frozen: the device keeps trying until it is heard.
        pressed = publishEvent(daemon.mqttUrl, 'xs-d0008', { attempts: 10 });
        await new Promise((res) => setTimeout(res, 20_000 - (Date.now() - stoppedAt)));
      } finally {
        process.kill(daemon.pid, 'SIGCONT');
      }
      await pressed;
      await page.locator('#conn-status[data-state="connected"]').waitFor({ timeout: 40_000 });
      await row(page, 'xs-d0008').and(page.locator('tr.alarm')).waitFor({ timeout: 40_000 });
      assert.equal((await conn.textContent()).trim(), '已连接');
      await falseAlarm(page, 'xs-d0008');
      await page.close();
      assert.deepEqual(page.errors, []);
    }));

  it('shows who is online; a claimant who goes offline or signs out loses the claim, and another can act', { timeout: 120_000 }, () =>
    step('claims', async () => {
      const one = await person(browser);
      const two = await person(browser);
      pages.push(one, two);
      await signIn(one, daemon.consoleUrl, { user: 'dispatcher' });
      await signIn(two, daemon.consoleUrl, { user: 'dispatcher2' });
      const nameOne = (await one.locator('#me').textContent()).split(' · ')[0];
      await two.locator('#presence [data-staff-id="dispatcher"]', { hasText: nameOne }).waitFor(SHOWS_UP);
      await one.locator('#presence [data-staff-id="dispatcher2"]').waitFor(SHOWS_UP);

      // Offline: dispatcher 1 claims, then their console goes away without signing out.
      await publishEvent(daemon.mqttUrl, 'xs-d0011');
      await row(one, 'xs-d0011').and(one.locator('tr[data-alarm="critical"]')).waitFor(ESCALATES);
      await row(one, 'xs-d0011').click();
      await one.locator('#detail [data-action="claim"]').click();
      await one.locator('#detail-claim[data-claimed="me"]').waitFor(SHOWS_UP);
      await row(two, 'xs-d0011').click();
      await two.locator('#detail-claim[data-claimed="other"]').waitFor(SHOWS_UP);
      // While it is claimed, dispatcher 2's close is refused in Chinese, naming the holder.
      await two.locator('#detail [data-action="close"]').click();
      await two.locator('#detail-form input[name="text"]').fill('测试');
      await two.locator('#detail-form select[name="code"]').selectOption('other');
      await two.locator('#detail-form button[type="submit"]').click();
      const refusal = two.locator('#detail-form .form-error');
      await refusal.filter({ hasText: nameOne }).waitFor(SHOWS_UP);
      assert.match(await refusal.textContent(), /已由 .* 认领/);
      assert.doesNotMatch(await refusal.textContent(), /claimed by/);
      await two.keyboard.press('Escape');
      await one.context().close();
      await two.locator('#detail-claim [data-field="claimant-offline"]').waitFor(SHOWS_UP);
      assert.equal(await two.locator('#presence [data-staff-id="dispatcher"]').count(), 0);
      await shoot(two, 'alarm-claimant-offline-1440-zh.png');
      // After claim_offline_release_s the claim ends, and it alarms again: nobody holds it.
      await two.locator('#detail-claim[data-claimed="none"]').waitFor(SHOWS_UP);
      await row(two, 'xs-d0011').and(two.locator('tr.alarm[data-alarm-need="claimant_gone"]')).waitFor(SHOWS_UP);

      // Signed out: dispatcher 1 comes back, claims another, and signs out.
      const back = await person(browser);
      pages.push(back);
      await signIn(back, daemon.consoleUrl, { user: 'dispatcher' });
      await publishEvent(daemon.mqttUrl, 'xs-d0012');
      await row(back, 'xs-d0012').and(back.locator('tr[data-alarm="critical"]')).waitFor(ESCALATES);
      await row(back, 'xs-d0012').click();
      await back.locator('#detail [data-action="claim"]').click();
      await back.locator('#detail-claim[data-claimed="me"]').waitFor(SHOWS_UP);
      await row(two, 'xs-d0012').click();
      await two.locator('#detail-claim[data-claimed="other"]').waitFor(SHOWS_UP);
      await back.locator('#signout').click();
      await back.locator('#signin-form').waitFor(SHOWS_UP);
      // The claim ends at once; the incident still needs a person, so it alarms.
      await two.locator('#detail-claim[data-claimed="none"]').waitFor(SHOWS_UP);
      await row(two, 'xs-d0012').and(two.locator('tr.alarm[data-alarm="urgent"][data-alarm-need="claimant_gone"]')).waitFor(SHOWS_UP);
      // Dispatcher 2 acknowledges, claims, resolves and closes it.
      await two.locator('#detail [data-action="acknowledge"]').click();
      await two.waitForFunction(() => !document.querySelector('tr[data-device-id="xs-d0012"]').classList.contains('alarm'), null, SHOWS_UP);
      await two.locator('#detail [data-action="claim"]').click();
      await two.locator('#detail-claim[data-claimed="me"]').waitFor(SHOWS_UP);
      await two.locator('#detail [data-action="resolve"]').click();
      await two.locator('#detail-form select[name="code"]').selectOption('helped_at_home');
      await two.locator('#detail-form button[type="submit"]').click();
      await row(two, 'xs-d0012').and(two.locator('tr[data-state="resolved"]')).waitFor(SHOWS_UP);
      await two.locator('#detail [data-action="close"]').click();
      await two.locator('#detail-form select[name="code"]').selectOption('helped_at_home');
      await two.locator('#detail-form button[type="submit"]').click();
      await row(two, 'xs-d0012').waitFor({ state: 'detached', ...SHOWS_UP });
      for (const p of [two, back]) assert.deepEqual(p.errors, [], 'the page logged errors');
    }));
});
