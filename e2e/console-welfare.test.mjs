// Welfare checks as a dispatcher meets them (issue 21), on a live anxind whose devices must
// be heard every 20 s ([health] heartbeat_s = 10, factor = 2.0, grace_s = 0): a device that
// keeps its heartbeat is never listed; a silent one is, in the "关怀回访" list beside the
// emergency queue, never in it, and nothing sounds or flashes for it; a low battery opens a
// check that charging closes; a silent device heard again leaves the list; switching off
// opens one; a dispatcher claims one and ends it with what the call found; and an SOS from a
// device with a low battery is an emergency as ever, beside its welfare check.
//
// The demo heartbeats its devices itself every heartbeat_s (a few flat, switched off or
// silent: demo.rs, demo_health), so the window is twice that (with factor 1.0 a heartbeat a
// moment late on a busy machine would take a healthy device offline), and the test speaks
// only for the devices the demo leaves silent (every 50th from xs-d0032).
//
// Sound is observed as in console-alarm: an init script records every oscillator the page
// starts (the urgent alarm's top tone is 1175 Hz).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, recordTones, resultsDir, shoot, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 30_000 };
const HEALTH = {
  ANXIN_HEALTH__HEARTBEAT_S: '10',
  ANXIN_HEALTH__FACTOR: '2.0',
  ANXIN_HEALTH__GRACE_S: '0',
};
const URGENT_HZ = 1175;
// Devices the demo never speaks for (demo_health: Silent), each with a part to play here.
const STEADY = 'xs-d0032';
const SILENT = 'xs-d0082';
const BATTERY = 'xs-d0132';
const SWITCHING = 'xs-d0182';
const TO_CLOSE = 'xs-d0232';

/** The badge and the rows, read in one go (the list may change between two reads). */
const badgeAndRows = (page) =>
  page.evaluate(() => [Number(document.querySelector('#tab-count-welfare').textContent), document.querySelectorAll('#welfare tbody tr').length]);

const emergencyRow = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);
const welfareRow = (page, deviceId) => page.locator(`#welfare tbody tr[data-device-id="${deviceId}"]`);

/**
 * A device of the test's own: every message goes out one after the other on its own MQTT
 * session (two sessions under one client id would knock each other off), and `every(ms)`
 * heartbeats with whatever `status` says of its battery until `stop()`.
 */
function device(mqttUrl, id) {
  let chain = Promise.resolve();
  let timer = null;
  const d = {
    id,
    status: { battery_pct: 80, rssi: -70 },
    sent: 0,
    send(type, fields = {}) {
      const next = chain.then(() => publishEvent(mqttUrl, id, { type, fields }));
      chain = next.catch(() => {});
      d.sent += 1;
      return next;
    },
    beat() {
      return d.send('heartbeat', d.status);
    },
    every(ms) {
      d.stop();
      timer = setInterval(() => d.beat().catch(() => {}), ms);
      return d.beat();
    },
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
  };
  return d;
}

describe('welfare checks on the console, with a 20 s heartbeat window', () => {
  let daemon;
  let browser;
  let page;
  const devices = [];

  before(async () => {
    daemon = await spawnDaemon({ env: HEALTH });
    browser = await launchChromium();
  });

  after(async () => {
    for (const d of devices) d.stop();
    if (page) await page.screenshot({ path: join(resultsDir, 'welfare-last.png') }).catch(() => {});
    await browser?.close();
    await daemon?.stop();
  });

  it('lists silent, switched-off and flat devices apart from the emergencies, silently; they leave when the device is back', { timeout: 180_000 }, async () => {
    const startedAt = Date.now();
    // Three devices keep their heartbeat from the start; SILENT and TO_CLOSE say nothing.
    const steady = device(daemon.mqttUrl, STEADY);
    const battery = device(daemon.mqttUrl, BATTERY);
    const switching = device(daemon.mqttUrl, SWITCHING);
    devices.push(steady, battery, switching);
    await Promise.all([steady.every(3_000), battery.every(3_000), switching.every(3_000)]);

    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript(recordTones);
    page = await context.newPage();
    page.errors = watchPageErrors(page);
    await signIn(page, daemon.consoleUrl);
    // The emergency queue is what a dispatcher sees first.
    assert.equal(await page.locator('#tab-emergency').getAttribute('aria-selected'), 'true');
    assert.equal(await page.locator('#welfare-panel').isVisible(), false);

    // A silent device's check opens once its window has passed; the badge counts the checks.
    await page.locator('#tab-welfare').click();
    assert.equal(await page.locator('#tab-welfare').getAttribute('aria-selected'), 'true');
    const silent = welfareRow(page, SILENT);
    await silent.waitFor(SHOWS_UP);
    console.log(`# the silent device listed ${Date.now() - startedAt} ms after the daemon was ready`);
    assert.equal(await silent.getAttribute('data-welfare'), 'device_offline');
    assert.equal((await silent.locator('[data-field="reason"]').textContent()).trim(), '设备离线');
    assert.match(await silent.locator('[data-field="ago"]').textContent(), /刚刚|分钟前/);
    assert.match(await silent.locator('[data-field="elder-name"]').textContent(), /\S/);
    assert.match(await silent.locator('[data-field="station"]').textContent(), /服务中心|站/);
    assert.equal((await silent.locator('[data-field="claimed-by"]').textContent()).trim(), '—');
    assert.equal(await silent.getAttribute('data-unseen'), 'true');

    await welfareRow(page, TO_CLOSE).waitFor(SHOWS_UP);
    // The devices that kept their heartbeat are not listed, though the silent ones' windows,
    // which began with theirs, have passed.
    for (const id of [STEADY, BATTERY, SWITCHING]) {
      assert.equal(await welfareRow(page, id).count(), 0, `${id} keeps its heartbeat: not a welfare check`);
    }
    const [listed, rowCount] = await badgeAndRows(page);
    assert.ok(listed > 0);
    assert.equal(rowCount, listed, 'the badge counts the rows');
    console.log(`# ${listed} welfare checks listed`);

    // None of it is an emergency: not in the queue, not counted, no alarm, no sound.
    assert.equal(await page.locator('#incidents tbody tr').count(), 0, 'welfare checks are not in the emergency queue');
    assert.equal(await emergencyRow(page, SILENT).count(), 0);
    assert.equal(await page.locator('#count-open').textContent(), '0');
    assert.equal(await page.locator('#count-unassigned').textContent(), '0');
    assert.equal(await page.locator('#count-alarm').textContent(), '0');
    assert.equal(await page.locator('tr.alarm').count(), 0, 'no row is flagged as an alarm');
    assert.equal(await page.locator('#tab-alarm').isVisible(), false);
    assert.equal(await page.locator('[data-action="bulk-ack"]').isDisabled(), true);
    assert.equal(await page.evaluate(() => window.__tones.length), 0, 'no alarm sounded for welfare checks');
    // Nor are they on the map among the incidents.
    assert.equal(await page.locator('[data-marker="incident"]').count(), 0);

    // A low battery opens a check of its own; charging closes it and its row leaves.
    battery.status = { battery_pct: 12, rssi: -70 };
    await battery.beat();
    const flat = welfareRow(page, BATTERY);
    await flat.waitFor(SHOWS_UP);
    assert.equal(await flat.getAttribute('data-welfare'), 'low_battery');
    assert.equal((await flat.locator('[data-field="reason"]').textContent()).trim(), '电量低');
    battery.status = { battery_pct: 12, rssi: -70, charging: true };
    await battery.beat();
    await flat.waitFor({ state: 'detached', ...SHOWS_UP });
    assert.equal(await emergencyRow(page, BATTERY).count(), 0);

    // Switched off: a check at once, with that reason.
    switching.stop();
    await switching.send('power_off');
    const off = welfareRow(page, SWITCHING);
    await off.waitFor(SHOWS_UP);
    assert.equal(await off.getAttribute('data-welfare'), 'power_off');
    assert.equal((await off.locator('[data-field="reason"]').textContent()).trim(), '设备已关机');

    // A silent device heard again: its check closes by itself and the row leaves; its panel,
    // open meanwhile, says how it ended, and whom the family notices went to, by name.
    await silent.click();
    const contact = (await page.locator('#detail [data-section="contacts"] .contact-name').first().textContent()).trim();
    const back = device(daemon.mqttUrl, SILENT);
    devices.push(back);
    await back.every(3_000);
    await silent.waitFor({ state: 'detached', ...SHOWS_UP });
    await page.locator('#detail [data-field="ended-summary"]', { hasText: '设备已恢复在线' }).waitFor(SHOWS_UP);
    await page.locator('#timeline li', { hasText: `通知家属 ${contact}` }).filter({ hasText: '设备已恢复在线' }).waitFor(SHOWS_UP);
    await page.locator('#detail-close').click();
    const [badge, rowsNow] = await badgeAndRows(page);
    assert.equal(rowsNow, badge, 'the badge counts the rows');

    // A row opens its incident's panel: the reason in words, what to do, the actions that fit a
    // phone call (no responder to send, no false alarm), and the timeline in words.
    const other = welfareRow(page, TO_CLOSE);
    await other.click();
    const detail = page.locator('#detail');
    await detail.locator('[data-field="welfare-reason"]', { hasText: '设备离线' }).waitFor(SHOWS_UP);
    assert.match(await page.locator('#detail-title').textContent(), /关怀回访/);
    assert.match(await detail.locator('[data-field="welfare-explain"]').textContent(), /无法用它呼救/);
    const actions = await detail.locator('#detail-actions [data-action]').evaluateAll((bs) => bs.map((b) => b.dataset.action));
    assert.deepEqual(actions, ['call', 'note', 'escalate', 'close']);
    const timeline = detail.locator('#timeline');
    await timeline.locator('li', { hasText: '立案：关怀回访（设备离线）' }).waitFor(SHOWS_UP);
    await timeline.locator('li', { hasText: '设备提醒：设备离线' }).waitFor(SHOWS_UP);
    const body = await detail.textContent();
    for (const raw of ['welfare_check', 'device_offline', 'device_news', 'kind_welfare', 'undefined']) {
      assert.ok(!body.includes(raw), `the panel shows no raw key (${raw})`);
    }
    // The dispatcher claims it, phones, and closes it with what the call found.
    await page.locator('#detail-claim [data-action="claim"]').click();
    await page.locator('#detail-claim[data-claimed="me"]').waitFor(SHOWS_UP);
    await other.locator('[data-field="claimed-by"]', { hasText: '我' }).waitFor(SHOWS_UP);
    await detail.locator('[data-action="close"]').click();
    const codes = await page.locator('#detail-form select[name="code"] option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(codes, ['elder_well', 'family_sees_to_device', 'device_back', 'visit_arranged', 'other']);
    await page.locator('#detail-form select[name="code"]').selectOption('family_sees_to_device');
    await page.locator('#detail-form button[type="submit"]').click();
    await other.waitFor({ state: 'detached', ...SHOWS_UP });
    await page.locator('#detail [data-field="ended-outcome"]', { hasText: '家属会处理设备' }).waitFor(SHOWS_UP);
    await page.locator('#detail-close').click();

    // Still nothing sounded.
    assert.equal(await page.evaluate(() => window.__tones.length), 0, 'no alarm sounded for welfare checks');

    // A low battery again, then an SOS from that device: an emergency as ever, in the queue
    // and sounding, while its welfare check stays in its list.
    battery.status = { battery_pct: 9, rssi: -70, charging: false };
    await battery.beat();
    await flat.waitFor(SHOWS_UP);
    await battery.send('sos');
    await page.locator('#tab-emergency[data-alarm="true"]').waitFor(SHOWS_UP);
    assert.equal((await page.locator('#tab-alarm').textContent()).trim(), '⚠ 1', 'the queue tab shows the emergency alarm from the welfare list');
    await page.waitForFunction((hz) => window.__tones.some((t) => t.hz === hz), URGENT_HZ, SHOWS_UP);
    assert.equal(await flat.getAttribute('data-welfare'), 'low_battery', 'the welfare check stays beside the emergency');
    assert.equal(await page.locator('#count-alarm').textContent(), '1');
    assert.equal(await welfareRow(page, BATTERY).count(), 1, 'the SOS is not in the welfare list');
    // The reasons' counts, in the filter above the list, count the rows of each.
    const byReason = await page.evaluate(() =>
      ['device_offline', 'power_off', 'low_battery'].map((r) => [
        Number(document.querySelector(`#welfare-tools [data-count="${r}"]`).textContent),
        document.querySelectorAll(`#welfare tbody tr[data-welfare="${r}"]`).length,
      ]),
    );
    for (const [count, rowsOfReason] of byReason) assert.equal(count, rowsOfReason, `the reason counts: ${JSON.stringify(byReason)}`);
    console.log(`# by reason (offline, switched off, low battery): ${byReason.map(([n]) => n).join(', ')}`);
    // The toasts of the close above have gone before the picture is taken.
    await page.locator('#toasts .toast').first().waitFor({ state: 'detached', ...SHOWS_UP });
    await shoot(page, 'console-welfare-zh.png');

    await page.locator('#tab-emergency').click();
    const sos = emergencyRow(page, BATTERY);
    await sos.waitFor(SHOWS_UP);
    assert.equal(await sos.getAttribute('data-kind'), 'sos');
    assert.equal(await sos.getAttribute('data-alarm'), 'urgent');
    assert.equal(await page.locator('#incidents tbody tr').count(), 1, 'only the SOS is in the emergency queue');

    // In English: the words, the reason filter, and a check's panel.
    await page.locator('#lang-toggle').click();
    await page.locator('#tab-welfare').click();
    assert.match(await page.locator('#tab-welfare').textContent(), /Welfare checks/);
    await page.locator('#welfare-tools [data-reason-filter="low_battery"]').click();
    await page.waitForFunction(() => {
      const shown = [...document.querySelectorAll('#welfare tbody tr')].filter((r) => !r.hidden);
      return shown.length > 0 && shown.every((r) => r.dataset.welfare === 'low_battery');
    }, null, SHOWS_UP);
    assert.equal(await flat.isVisible(), true);
    assert.equal(await off.isVisible(), false, 'the filter hides the other reasons');
    assert.equal((await flat.locator('[data-field="reason"]').textContent()).trim(), 'Low battery');
    await flat.click();
    await detail.locator('[data-field="welfare-reason"]', { hasText: 'Low battery' }).waitFor(SHOWS_UP);
    assert.match(await page.locator('#detail-title').textContent(), /Welfare check/);
    await timeline.locator('li', { hasText: 'Opened: welfare check (Low battery)' }).waitFor(SHOWS_UP);
    await shoot(page, 'console-welfare-en.png');
    await page.locator('#welfare-tools [data-reason-filter="all"]').click();

    assert.deepEqual(page.errors, [], 'the page logged errors');
  });
});
