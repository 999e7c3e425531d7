// The supervisors' report (/console/report) on a real anxind: two alarms pressed, one
// accepted from the responder's phone API, show in today's report in Chinese and English; the
// CSV link downloads the same day with a BOM; a third alarm, in a second zone (a station of
// the test's own in zone 1, added to the demo district), gives the report by zone a row for
// each zone; a dispatcher is refused. Screenshots on screen and as printed.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, serverSnapshot, shoot, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 20_000 };

// Zone 1: one station west of the demo district's, one elder enrolled there with a device.
// The demo's own stations are all zone 0's.
const ZONE_1 = {
  elders: [{
    id: 'rz-e1',
    name: '杨桂兰',
    address: '昆明市西山区团结街道 8 号',
    home: { lat: 24.99, lon: 102.55 },
    phone: '13800006601',
    notes: '',
    profile: { station_id: 'rz-s1', lives_alone: true, conditions: [], medications: [], mobility: '', language: '', door_notes: '', contacts: [] },
  }],
  devices: [{ id: 'rz-d1', elder_id: 'rz-e1', sim: null }],
  stations: [{ id: 'rz-s1', name: '团结街道社区居家养老服务中心', position: { lat: 24.99, lon: 102.56 }, phone: null, service_circle_min: null, zone: 1 }],
  responders: [],
  staff: [],
  providers: [],
};

describe('supervisors’ report', () => {
  let daemon, browser, dir;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'anxin-report-'));
    const registry = join(dir, 'zone-1.json');
    await writeFile(registry, JSON.stringify(ZONE_1));
    daemon = await spawnDaemon({ dbPath: join(dir, 'anxin.db'), extraArgs: ['--registry', registry] });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows today’s alarms against the standards, in Chinese and English, and prints', { timeout: 120_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = watchPageErrors(page);
    await page.addInitScript(() => localStorage.setItem('anxin.console.lang', 'zh-CN'));
    await signIn(page, daemon.consoleUrl, { user: 'supervisor' });
    await page.goto(new URL('/console', daemon.consoleUrl).toString());
    await publishEvent(daemon.mqttUrl, 'xs-d0001', { type: 'sos' });
    await publishEvent(daemon.mqttUrl, 'xs-d0002', { type: 'fall' });
    await page.waitForFunction(() => true);
    let snap;
    for (;;) {
      snap = await serverSnapshot(page);
      if (snap.incidents.filter((v) => v.device_id === 'xs-d0001' || v.device_id === 'xs-d0002').length === 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const first = snap.incidents.find((v) => v.device_id === 'xs-d0001');
    const responder = first.offers[0].responder.id;
    const accepted = await fetch(new URL('/api/v1/responder/actions', daemon.consoleUrl), {
      method: 'POST',
      headers: { authorization: `Bearer demo-${responder}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'accept', incident_id: first.id }),
    });
    assert.equal(accepted.status, 200);

    await page.goto(new URL('/console/report?by=station', daemon.consoleUrl).toString());
    await page.locator('body[data-loaded="true"]').waitFor(SHOWS_UP);
    assert.equal(await page.locator('h1').textContent(), '安心 · 服务报表');
    const total = page.locator('#counts tr.total td');
    assert.equal(await total.nth(0).textContent(), '合计');
    assert.equal(await total.nth(1).textContent(), '2', 'two incidents');
    assert.equal(await total.nth(2).textContent(), '2', 'both alarms');
    const tsa = page.locator('#standards tr[data-standard="tsa_60"]');
    assert.equal(await tsa.locator('[data-figure="met"]').textContent(), '1', 'the accepted one was answered at once');
    assert.match(await page.locator('#times tr.total td').nth(3).textContent(), /^\d+ \/ \d+$/, 'press → accepted has a median and p90');
    await shoot(page, 'report-zh.png');
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.locator('#ask').isVisible(), false, 'the form is not printed');
    await shoot(page, 'report-zh-print.png');
    await page.emulateMedia({ media: 'screen' });

    await page.locator('#lang').click();
    assert.equal(await page.locator('h1').textContent(), 'Anxin · service report');
    assert.equal(await page.locator('#counts tr.total td').nth(0).textContent(), 'Total');
    assert.equal(await page.locator('#standards tr[data-standard="nena"] td').first().textContent(), 'NENA calls answered in 15 s');
    await shoot(page, 'report-en.png');

    // By shift: the day's two alarms in the shift they were pressed in, keyed by when it
    // started (the default shifts change at 08:00 and 20:00).
    await page.locator('body').evaluate((b) => { delete b.dataset.loaded; });
    await page.locator('#by').selectOption('shift');
    assert.equal(await page.locator('#by option:checked').textContent(), 'Shift');
    await page.locator('#go').click();
    await page.locator('body[data-loaded="true"]').waitFor(SHOWS_UP);
    const shifts = await page.locator('#counts tbody tr:not(.total)').evaluateAll((rows) =>
      rows.map((r) => ({ key: r.dataset.key, incidents: Number(r.cells[1].textContent) })));
    assert.ok(shifts.length >= 1, 'a row per shift with incidents');
    for (const s of shifts) assert.match(s.key, /^\d{4}-\d{2}-\d{2} (08|20):00$/, 'a shift is keyed by its start');
    assert.equal(shifts.reduce((n, s) => n + s.incidents, 0), 2, 'the two alarms, each in one shift');
    assert.match(page.url(), /by=shift/, 'the address keeps the grouping, to share or reload');
    await shoot(page, 'report-en-shift.png');

    // The CSV link: the same day, with a BOM for Excel.
    const href = await page.locator('#csv').getAttribute('href');
    const csv = await page.evaluate(async (h) => {
      const r = await fetch(h);
      return { status: r.status, bytes: Array.from(new Uint8Array(await r.arrayBuffer()).slice(0, 3)), };
    }, href);
    assert.deepEqual(csv, { status: 200, bytes: [0xef, 0xbb, 0xbf] });

    // By zone: a third alarm, in zone 1 (its number is zone 1's: 1⋅1), gives each zone a row,
    // labelled as people say it, keyed by the zone's number.
    await publishEvent(daemon.mqttUrl, 'rz-d1', { type: 'sos' });
    for (;;) {
      snap = await serverSnapshot(page);
      if (snap.incidents.some((v) => v.device_id === 'rz-d1')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(Math.floor(snap.incidents.find((v) => v.device_id === 'rz-d1').id / 2 ** 40), 1, 'the alarm is zone 1’s');
    await page.locator('body').evaluate((b) => { delete b.dataset.loaded; });
    await page.locator('#by').selectOption('zone');
    assert.equal(await page.locator('#by option:checked').textContent(), 'Zone');
    await page.locator('#go').click();
    await page.locator('body[data-loaded="true"]').waitFor(SHOWS_UP);
    const zoneRows = (table) => page.locator(`#${table} tbody tr:not(.total)`).evaluateAll((rows) =>
      rows.map((r) => ({ key: r.dataset.key, label: r.cells[0].textContent, incidents: Number(r.cells[1].textContent) })));
    assert.deepEqual(await zoneRows('counts'), [
      { key: '0', label: 'Zone 0', incidents: 2 },
      { key: '1', label: 'Zone 1', incidents: 1 },
    ], 'one row per zone: the demo district’s two alarms, and zone 1’s one');
    assert.deepEqual((await zoneRows('times')).map((r) => r.label), ['Zone 0', 'Zone 1']);
    assert.equal(await page.locator('#counts tr.total td').nth(1).textContent(), '3');
    assert.match(page.url(), /by=zone/);
    await shoot(page, 'report-en-zone.png');
    const zoneCsv = await page.evaluate(async (h) => (await (await fetch(h)).text()).split('\r\n').map((l) => l.split(',').slice(0, 2).join(',')),
      await page.locator('#csv').getAttribute('href'));
    assert.deepEqual(zoneCsv.slice(1, 4), ['zone 0,2', 'zone 1,1', 'all,3'], 'the CSV has the same rows');

    await page.locator('#lang').click();
    assert.equal(await page.locator('#by option:checked').textContent(), '按分区');
    assert.deepEqual((await zoneRows('counts')).map((r) => r.label), ['分区 0', '分区 1']);
    await shoot(page, 'report-zh-zone.png');
    assert.deepEqual(errors, []);

    // A dispatcher is told no.
    const other = await browser.newPage();
    await signIn(other, daemon.consoleUrl, { user: 'dispatcher' });
    await other.goto(new URL('/console/report', daemon.consoleUrl).toString());
    await other.locator('body[data-loaded="true"]').waitFor(SHOWS_UP);
    assert.equal(await other.locator('#error').isVisible(), true);
    assert.match(await other.locator('#error').textContent(), /supervisors/);
  });
});
