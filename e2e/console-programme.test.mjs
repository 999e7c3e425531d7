// The welfare programme and abnormal inactivity on the console (issue 21 points 2 and 3), as a
// dispatcher meets them after the centre restarts.
//
// Both need days of clock, and anxind runs on the wall clock, so the test plays the state a
// centre is in after a restart: anxind runs once on a SQLite file of the test's own (it
// creates the store with the demo's ledger, in which the third elder of each street is on
// the programme, and its demo devices heartbeat), stops, and the test writes what the engine
// would have snapshotted over the days before (welfare_programme, elder_activity: the tables
// the engine reads back at start) with the sqlite3 CLI; then anxind starts again on the same
// file. Nothing else is faked: the tasks and the inactivity check open as the engine starts,
// and the dispatcher's outcomes go through the engine as ever.
//
// - xs-e0003, xs-e0043 and xs-e0083 were last phoned eight days ago on a weekly schedule: due
//   a day ago, overdue (programme.overdue_after_h = 12 here). xs-e0163 was phoned seven days
//   and an hour ago: due an hour ago, not overdue.
// - xs-e0002 lives alone; her watch last saw her move six hours ago, and the centre heard the
//   watch until it stopped: six quiet waking hours (every hour is a waking hour here, so that
//   the test does not depend on the time of day), more than the four that open a check.
//
// The dispatcher records `no_answer` on one call (tried again a minute later:
// programme.retry_after_min = 1, its least), `needs_help` on another (an emergency opens) and
// `well` on the third.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineTook, launchChromium, publishEvent, recordTones, resultsDir, shoot, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 30_000 };
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const UTC_OFFSET_MIN = 480;
const ENV = {
  ANXIN_DISPATCH__UTC_OFFSET_MIN: String(UTC_OFFSET_MIN),
  ANXIN_PROGRAMME__OVERDUE_AFTER_H: '12',
  ANXIN_PROGRAMME__RETRY_AFTER_MIN: '1',
  ANXIN_ACTIVITY__DAY_START: '00:00',
  ANXIN_ACTIVITY__DAY_END: '24:00',
  ANXIN_ACTIVITY__QUIET_HOURS: '4',
};
const SQLITE = process.env.SQLITE3_BIN ?? '/usr/bin/sqlite3';

// Whose device is whose: xs-eNNNN wears xs-dNNNN.
const QUIET = 'xs-d0002';
const NO_ANSWER = 'xs-d0003';
const NEEDS_HELP = 'xs-d0043';
const WELL = 'xs-d0083';
const NOT_YET_OVERDUE = 'xs-d0163';
const elderOf = (device) => device.replace('-d', '-e');

/** What the engine would have snapshotted over the last days, written as it writes it. */
function seedSql(now) {
  const programme = (device, callDone) =>
    `INSERT OR REPLACE INTO welfare_programme (elder_id, call_done, visit_done, call_tries, call_retry_at, visit_retry_at, saved_at)
     VALUES ('${elderOf(device)}', ${callDone}, ${now - DAY}, 0, NULL, NULL, ${now});`;
  const today = Math.floor((now + UTC_OFFSET_MIN * 60_000) / DAY);
  const noDays = Array(28).fill(0).join(',');
  return [
    programme(NO_ANSWER, now - 8 * DAY),
    programme(NEEDS_HELP, now - 8 * DAY),
    programme(WELL, now - 8 * DAY),
    programme(NOT_YET_OVERDUE, now - 7 * DAY - HOUR),
    `INSERT OR REPLACE INTO elder_activity (elder_id, device_id, last_active, first_day, last_day, days, saved_at)
     VALUES ('${elderOf(QUIET)}', '${QUIET}', ${now - 6 * HOUR}, ${today}, ${today}, '${noDays}', ${now - 6 * HOUR});`,
  ].join('\n');
}

const sqlite = (db, sql) => execFileSync(SQLITE, [db], { input: sql, encoding: 'utf8' });

const welfareRow = (page, deviceId) => page.locator(`#welfare tbody tr[data-device-id="${deviceId}"]`);
const emergencyRow = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);
const text = async (locator) => (await locator.textContent()).trim();

describe('the welfare programme and an inactive elder, after a restart', () => {
  let dir;
  let daemon;
  let browser;
  let page;

  before(async () => {
    if (!existsSync(SQLITE)) throw new Error(`${SQLITE} is missing: apt-get install -y sqlite3`);
    dir = await mkdtemp(join(tmpdir(), 'anxin-e2e-programme-'));
    const db = join(dir, 'anxin.db');
    // The centre runs: the store is made, the demo's devices heartbeat, and xs-e0002's watch
    // beats (without saying she moved); the health is saved as it stops.
    const first = await spawnDaemon({ env: ENV, dbPath: db });
    await publishEvent(first.mqttUrl, QUIET, { type: 'heartbeat', fields: { battery_pct: 80, rssi: -70 } });
    // The broker's PUBACK is not the engine's: stopping before the engine took the beat would
    // lose it with the embedded broker (CI once saw no row for it).
    await engineTook(first.consoleUrl, 'heartbeat');
    await first.stop();
    // The centre heard xs-e0002's watch until it stopped (its heartbeat, saved then).
    const heard = sqlite(db, `SELECT last_seen FROM device_health WHERE device_id = '${QUIET}';`).trim();
    assert.ok(Number(heard) > Date.now() - 5 * 60_000, `the centre heard ${QUIET} before it stopped: ${heard}`);
    sqlite(db, seedSql(Date.now()));
    daemon = await spawnDaemon({ env: ENV, dbPath: db });
    browser = await launchChromium();
  });

  after(async () => {
    if (page) await page.screenshot({ path: join(resultsDir, 'programme-last.png') }).catch(() => {});
    await browser?.close();
    await daemon?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists the inactive elder and the calls due, marks the overdue, and records what the calls found', { timeout: 240_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript(recordTones);
    page = await context.newPage();
    page.errors = watchPageErrors(page);
    await signIn(page, daemon.consoleUrl);
    await page.locator('#tab-welfare').click();

    // The inactivity check: in the welfare list with its reason, never in the emergency queue.
    const quiet = welfareRow(page, QUIET);
    await quiet.waitFor(SHOWS_UP);
    assert.equal(await quiet.getAttribute('data-welfare'), 'inactive');
    assert.equal(await text(quiet.locator('[data-field="reason"]')), '长时间无活动');
    assert.equal(await quiet.locator('[data-field="overdue"]').count(), 0, 'only programme work is overdue');
    assert.equal(await emergencyRow(page, QUIET).count(), 0);

    // The programme's calls, from when they fell due; three of them overdue.
    const rows = Object.fromEntries([NO_ANSWER, NEEDS_HELP, WELL, NOT_YET_OVERDUE].map((d) => [d, welfareRow(page, d)]));
    for (const row of Object.values(rows)) await row.waitFor(SHOWS_UP);
    for (const d of [NO_ANSWER, NEEDS_HELP, WELL]) {
      const row = rows[d];
      assert.equal(await row.getAttribute('data-welfare'), 'scheduled_call');
      assert.equal(await text(row.locator('[data-field="reason"]')), '定期电话回访');
      assert.equal(await row.getAttribute('data-overdue'), 'true', `${d} fell due a day ago`);
      assert.equal(await text(row.locator('[data-field="overdue"]')), '逾期');
      assert.match(await text(row.locator('[data-field="ago"]')), /^1 天 0 小时前$/);
      assert.match(await text(row.locator('.c-since .sub')), /^\d\d:\d\d 到期$/);
    }
    const fresh = rows[NOT_YET_OVERDUE];
    assert.equal(await fresh.getAttribute('data-overdue'), 'false', 'due an hour ago is not overdue after 12 h');
    assert.equal(await fresh.locator('[data-field="overdue"]').count(), 0);
    assert.match(await text(fresh.locator('[data-field="ago"]')), /^1 小时 0 分钟前$/);
    // Counted where the dispatcher looks: the tab, and the list's tools.
    assert.equal(await text(page.locator('#tab-overdue-welfare')), '逾期 3');
    assert.equal(await text(page.locator('#welfare-tools [data-field="overdue-count"]')), '3 项回访逾期');
    const [badge, listed] = await page.evaluate(() => [
      Number(document.querySelector('#tab-count-welfare').textContent),
      document.querySelectorAll('#welfare tbody tr').length,
    ]);
    assert.equal(badge, listed, 'the badge counts the rows');

    // None of it is an emergency, and nothing sounded.
    assert.equal(await page.locator('#incidents tbody tr').count(), 0, 'the welfare work is not in the emergency queue');
    assert.equal(await text(page.locator('#count-alarm')), '0');
    assert.equal(await page.evaluate(() => window.__tones.length), 0, 'no alarm sounded');

    // The inactivity check's panel: what it is, and the engine's note in words.
    await quiet.click();
    const detail = page.locator('#detail');
    await detail.locator('[data-field="welfare-reason"]', { hasText: '长时间无活动' }).waitFor(SHOWS_UP);
    assert.match(await detail.locator('[data-field="welfare-explain"]').textContent(), /独居老人/);
    const note = page.locator('#timeline li', { hasText: '已有 4 小时（只计平时活动的时段）没有任何活动' });
    await note.waitFor(SHOWS_UP);
    assert.match(await note.textContent(), /平时活动的时段 00-24（观察满 7 天前按中心统一时段）。最后一次活动 (昨天 )?\d\d:\d\d.*，来自设备 xs-d0002。/);
    const body = await detail.textContent();
    for (const raw of ['No activity', 'waking hours', 'inactive', 'undefined']) {
      assert.ok(!body.includes(raw), `the panel shows no raw words (${raw})`);
    }
    await shoot(page, 'console-programme-inactive-zh.png');
    await page.locator('#detail-close').click();

    // An overdue call's panel says when it fell due, and that it is overdue.
    await rows[WELL].click();
    const due = detail.locator('[data-field="welfare-due"]');
    await due.waitFor(SHOWS_UP);
    assert.match(await due.textContent(), /\d\d:\d\d/);
    assert.equal(await text(due.locator('[data-field="detail-overdue"]')), '逾期');
    assert.match(await detail.locator('[data-field="welfare-todo"]').textContent(), /无人接听（稍后自动重拨/);
    await shoot(page, 'console-programme-zh.png');
    // What the call finds may be a home-care need: the order form opens with the elder and
    // this call as its source.
    const task = await rows[WELL].getAttribute('data-incident-id');
    const [form] = await Promise.all([context.waitForEvent('page'), detail.locator('[data-action="service_order"]').click()]);
    await form.waitForLoadState();
    const url = new URL(form.url());
    assert.equal(url.pathname, '/console/services');
    assert.equal(url.searchParams.get('welfare'), task);
    await form.locator('#new-source:not([hidden])').waitFor(SHOWS_UP);
    assert.equal(await form.locator('#new-source').textContent(), `来自关怀回访：事件 #${task}`);
    assert.equal(await form.locator('#new-elder').inputValue(), url.searchParams.get('elder'));
    await form.close();
    await page.locator('#detail-close').click();
    await rows[NOT_YET_OVERDUE].click();
    await detail.locator('[data-field="welfare-due"]').waitFor(SHOWS_UP);
    assert.equal(await detail.locator('[data-field="detail-overdue"]').count(), 0, 'due an hour ago: not overdue');
    await page.locator('#detail-close').click();

    // In English: the reasons, the overdue marks and counts, and the note.
    await page.locator('#lang-toggle').click();
    assert.equal(await text(quiet.locator('[data-field="reason"]')), 'No activity');
    assert.equal(await text(rows[WELL].locator('[data-field="reason"]')), 'Scheduled call');
    assert.equal(await text(rows[WELL].locator('[data-field="overdue"]')), 'Overdue');
    assert.match(await text(rows[WELL].locator('.c-since .sub')), /^due \d\d:\d\d$/);
    assert.equal(await text(page.locator('#tab-overdue-welfare')), '3 overdue');
    assert.equal(await text(page.locator('#welfare-tools [data-field="overdue-count"]')), '3 overdue');
    await quiet.click();
    await page.locator('#timeline li', { hasText: 'No activity for 4 waking hours' }).waitFor(SHOWS_UP);
    await shoot(page, 'console-programme-en.png');
    await page.locator('#detail-close').click();
    await page.locator('#lang-toggle').click();
    await page.locator('#tab-welfare', { hasText: '关怀回访' }).waitFor(SHOWS_UP);

    /** Claims the task on `device`'s row and ends it with `code`; returns its incident id. */
    const record = async (device, code) => {
      const row = welfareRow(page, device);
      const id = await row.getAttribute('data-incident-id');
      await row.click();
      await page.locator('#detail-claim [data-action="claim"]').click();
      await page.locator('#detail-claim[data-claimed="me"]').waitFor(SHOWS_UP);
      await detail.locator('[data-action="close"]').click();
      const codes = await page.locator('#detail-form select[name="code"] option').evaluateAll((os) => os.map((o) => o.value));
      assert.deepEqual(codes, ['well', 'needs_service', 'needs_help', 'no_answer', 'other']);
      await page.locator('#detail-form select[name="code"]').selectOption(code);
      await page.locator('#detail-form button[type="submit"]').click();
      await page.locator(`#welfare tbody tr[data-incident-id="${id}"]`).waitFor({ state: 'detached', ...SHOWS_UP });
      return id;
    };

    // Nobody answers: the call ends as such, and is tried again a minute later, not overdue.
    const unanswered = await record(NO_ANSWER, 'no_answer');
    await detail.locator('[data-field="ended-outcome"]', { hasText: '无人接听' }).waitFor(SHOWS_UP);
    await page.locator('#timeline li', { hasText: '无人接听' }).first().waitFor(SHOWS_UP);
    await page.locator('#detail-close').click();
    await page.locator('#tab-overdue-welfare', { hasText: '逾期 2' }).waitFor(SHOWS_UP);
    const retry = page.locator(`#welfare tbody tr[data-device-id="${NO_ANSWER}"]:not([data-incident-id="${unanswered}"])`);
    await retry.waitFor({ timeout: 100_000 });
    assert.equal(await retry.getAttribute('data-welfare'), 'scheduled_call');
    assert.equal(await retry.getAttribute('data-overdue'), 'false', 'the retry is due now, not a day ago');

    // She needs help now: an emergency opens for her in the emergency queue, and sounds.
    await record(NEEDS_HELP, 'needs_help');
    await page.locator('#detail-close').click();
    await page.locator('#tab-emergency[data-alarm="true"]').waitFor(SHOWS_UP);
    await page.locator('#tab-emergency').click();
    const emergency = emergencyRow(page, NEEDS_HELP);
    await emergency.waitFor(SHOWS_UP);
    assert.equal(await emergency.getAttribute('data-kind'), 'sos');
    assert.equal(await page.locator('#incidents tbody tr').count(), 1, 'only that emergency is in the queue');
    assert.equal(await text(emergency.locator('[data-field="problem"]')), '注意：定期电话回访时发现：需要帮助');
    await emergency.click();
    await detail.locator('.kv-flag', { hasText: '定期电话回访时发现：需要帮助' }).waitFor(SHOWS_UP);
    await page.locator('#detail-close').click();

    // Well: done, nothing follows; no overdue work is left.
    await page.locator('#tab-welfare').click();
    await record(WELL, 'well');
    await detail.locator('[data-field="ended-outcome"]', { hasText: '安好' }).waitFor(SHOWS_UP);
    await page.locator('#detail-close').click();
    await page.locator('#tab-overdue-welfare').waitFor({ state: 'hidden', ...SHOWS_UP });
    assert.equal(await page.locator('#welfare tbody tr[data-overdue="true"]').count(), 0);
    assert.equal(await welfareRow(page, WELL).count(), 0);

    // The supervisors' report for today counts the programme's tasks where they opened: the
    // three overdue calls done late, with what each found; the retry, the call not yet
    // overdue and any of the demo's own first rounds due today still open.
    const boss = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await signIn(boss, daemon.consoleUrl, { user: 'supervisor' });
    await boss.goto(new URL('/console/report?by=none&lang=zh-CN', daemon.consoleUrl).toString());
    await boss.locator('body[data-loaded="true"]').waitFor(SHOWS_UP);
    const heads = await boss.locator('#programme thead th').evaluateAll((ths) => ths.map((th) => th.textContent));
    assert.deepEqual(heads.slice(1, 5), ['电话到期', '探访到期', '按时完成', '逾期完成']);
    const [, callsDue, visitsDue, onTime, late, open, , well, needsService, needsHelp, noAnswer] =
      await boss.locator('#programme tr.total td').evaluateAll((tds) => tds.map((td) => Number(td.textContent)));
    assert.ok(callsDue >= 5, `the four seeded calls and the retry at least: ${callsDue}`);
    assert.deepEqual({ onTime, late, well, needsService, needsHelp, noAnswer },
      { onTime: 0, late: 3, well: 1, needsService: 0, needsHelp: 1, noAnswer: 1 });
    assert.equal(open, callsDue + visitsDue - 3, 'every task not ended is open');
    assert.equal(await boss.locator('#services').count(), 0, 'no orders today: no orders table');
    assert.equal(await boss.locator('#times tr.total td').nth(1).textContent(), '0 / 0',
      'a welfare check is no press: the day a call waited to open is in no press-to time');
    await shoot(boss, 'report-programme-zh.png');
    await boss.close();

    assert.deepEqual(page.errors, [], 'the page logged errors');
  });
});
