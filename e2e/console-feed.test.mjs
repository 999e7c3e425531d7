// The console page against a scripted feed: playwright stands in for the server's /ws, so
// the page's handling of the protocol (snapshot replaces, stale deltas ignored, unknown
// types ignored, reconnect with ?since=) is checked without a daemon.

import assert from 'node:assert/strict';
import { after, before, beforeEach, afterEach, describe, it } from 'node:test';
import { launchChromium, serveAssets, watchPageErrors } from './support.mjs';

const ORIGIN = 'http://console.test';
const WAIT = { timeout: 10_000 };

function view(id, overrides = {}) {
  const now = Date.now();
  return {
    id,
    seq: 1,
    kind: 'sos',
    priority: 1,
    state: 'offered',
    device_id: `xs-d${String(id).padStart(4, '0')}`,
    elder: { id: `xs-e${id}`, name: `老人${id}`, address: `西山区 ${id} 号`, phone: null, notes: '' },
    location: { at: { lat: 25.0, lon: 102.6 }, accuracy_m: 15.0, source: 'device', fix_rejected: null },
    responder: { id: 'xs-r001', name: '李伟', phone: null, distance_m: 412.5 },
    station: { id: 'xs-s01', name: '前卫社区居家养老服务中心', phone: '0871-0000000', distance_m: 800.1 },
    press_count: 1,
    cancel_requested: false,
    problem: null,
    pressed_at: now - 60_000,
    opened_at: now - 60_000,
    updated_at: now - 60_000,
    ...overrides,
  };
}

/** A scripted /ws: records each connection so a test can talk to the latest one. */
function scriptedFeed(page) {
  const sockets = [];
  const waiters = [];
  const ready = page.routeWebSocket(/\/ws(\?.*)?$/, (ws) => {
    sockets.push(ws);
    for (const w of waiters.splice(0)) w();
  });
  return {
    ready,
    sockets,
    /** Resolves with the nth connection (1-based), waiting for it if needed. */
    async connection(n) {
      const deadline = Date.now() + WAIT.timeout;
      while (sockets.length < n) {
        if (Date.now() > deadline) throw new Error(`no connection #${n} to /ws`);
        await new Promise((res) => {
          waiters.push(res);
          setTimeout(res, 250);
        });
      }
      return sockets[n - 1];
    },
  };
}

const send = (ws, msg) => ws.send(JSON.stringify(msg));

async function rowIds(page) {
  return page.locator('#incidents tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.incidentId));
}

describe('console page against a scripted feed', () => {
  let browser;
  let page;
  let feed;
  let errors;

  before(async () => {
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    errors = watchPageErrors(page);
    await serveAssets(page, ORIGIN);
    feed = scriptedFeed(page);
    await feed.ready;
  });

  afterEach(async () => {
    await page.close();
    assert.deepEqual(errors, [], 'the page logged errors');
  });

  it('replaces the table on a snapshot and orders rows by priority, then oldest press', async () => {
    await page.goto(`${ORIGIN}/console`);
    const ws = await feed.connection(1);
    assert.equal(new URL(ws.url()).search, '', 'the first connection asks for no since');
    await page.locator('#conn-status[data-state="connected"]').waitFor(WAIT);

    const now = Date.now();
    send(ws, {
      type: 'snapshot',
      seq: 10,
      server_time: now,
      incidents: [
        view(1, { kind: 'service', priority: 3, pressed_at: now - 900_000 }),
        view(2, { pressed_at: now - 30_000 }),
        view(3, { pressed_at: now - 90_000 }),
        view(4, { kind: 'unreadable', priority: 2, pressed_at: now - 10_000 }),
      ],
    });
    await page.locator('#incidents[data-loaded="true"]').waitFor(WAIT);
    assert.deepEqual(await rowIds(page), ['3', '2', '4', '1']);

    send(ws, { type: 'snapshot', seq: 11, server_time: now, incidents: [view(5)] });
    await page.waitForFunction(() => document.querySelectorAll('#incidents tbody tr').length === 1, null, WAIT);
    assert.deepEqual(await rowIds(page), ['5']);
    assert.equal(await page.locator('#empty').isHidden(), true);

    send(ws, { type: 'snapshot', seq: 12, server_time: now, incidents: [] });
    await page.locator('#empty').waitFor({ state: 'visible', ...WAIT });
    assert.deepEqual(await rowIds(page), []);
  });

  it('upserts deltas, ignores stale sequence numbers and unknown message types', async () => {
    await page.goto(`${ORIGIN}/console`);
    const ws = await feed.connection(1);
    const now = Date.now();
    send(ws, { type: 'snapshot', seq: 40, server_time: now, incidents: [view(1, { seq: 40 })] });
    await page.locator('[data-incident-id="1"]').waitFor(WAIT);

    // Newer: applied, with a gap in the numbering.
    send(ws, { type: 'incident', seq: 47, incident: view(1, { seq: 47, press_count: 3 }) });
    await page.locator('[data-incident-id="1"] [data-field="press-count"]').waitFor(WAIT);
    // Older or equal: ignored.
    send(ws, { type: 'incident', seq: 47, incident: view(1, { seq: 47, press_count: 9 }) });
    send(ws, { type: 'incident', seq: 45, incident: view(2, { seq: 45 }) });
    // Unknown types and garbage: ignored.
    send(ws, { type: 'presence', seq: 99, dispatchers: 3 });
    ws.send('not json');
    // A new incident: a new row.
    send(ws, { type: 'incident', seq: 50, incident: view(3, { seq: 50, device_id: 'xs-d0333' }) });
    await page.locator('[data-device-id="xs-d0333"]').waitFor(WAIT);

    assert.deepEqual(await rowIds(page), ['1', '3']);
    assert.match(await page.locator('[data-incident-id="1"] [data-field="press-count"]').textContent(), /3/);
    assert.equal(await page.locator('#incidents').getAttribute('data-seq'), '50');
  });

  it('makes a row with nobody in range stand out and names the station', async () => {
    await page.goto(`${ORIGIN}/console`);
    const ws = await feed.connection(1);
    send(ws, {
      type: 'snapshot',
      seq: 3,
      server_time: Date.now(),
      incidents: [
        view(7, {
          state: 'awaiting_dispatcher',
          responder: null,
          location: { at: { lat: 25, lon: 102.6 }, accuracy_m: null, source: 'home', fix_rejected: 'too_far_from_home' },
          problem: 'device fix 180 km from home',
        }),
      ],
    });
    const row = page.locator('[data-incident-id="7"]');
    await row.waitFor(WAIT);
    assert.match(await row.getAttribute('class'), /\bunassigned\b/);
    assert.equal(await row.locator('[data-field="nobody"]').textContent(), '无人在范围内');
    assert.match(await row.locator('[data-field="station"]').textContent(), /前卫社区居家养老服务中心/);
    assert.equal(await row.locator('[data-field="location"]').getAttribute('data-source'), 'home');
    assert.match(await row.locator('[data-field="location-source"]').textContent(), /登记住址/);
    assert.match(await row.locator('[data-field="fix-rejected"]').textContent(), /离家过远/);
    assert.match(await row.locator('[data-field="problem"]').textContent(), /180 km/);
    assert.equal(await page.locator('#count-unassigned').textContent(), '1');

    // A service request goes to a dispatcher first by design: it needs one, but nobody was
    // out of range, so the row must not say so.
    send(ws, {
      type: 'incident',
      seq: 4,
      incident: view(8, { seq: 4, kind: 'service', priority: 3, state: 'awaiting_dispatcher', responder: null }),
    });
    const service = page.locator('[data-incident-id="8"]');
    await service.waitFor(WAIT);
    assert.equal(await service.locator('[data-field="nobody"]').count(), 0);
    assert.equal(await service.locator('[data-field="dispatcher-first"]').textContent(), '待调度员派单');
    assert.match(await service.locator('[data-field="station"]').textContent(), /前卫社区居家养老服务中心/);
    assert.equal(await page.locator('#count-unassigned').textContent(), '2');
  });

  it('counts time since press on the server clock', async () => {
    await page.goto(`${ORIGIN}/console`);
    const ws = await feed.connection(1);
    // The server's clock is an hour ahead of the browser's; the press was 125 s ago by it.
    const serverTime = Date.now() + 3_600_000;
    send(ws, {
      type: 'snapshot',
      seq: 1,
      server_time: serverTime,
      incidents: [view(1, { pressed_at: serverTime - 125_000, opened_at: serverTime - 125_000 })],
    });
    const timer = page.locator('[data-incident-id="1"] [data-field="since"]');
    await timer.waitFor(WAIT);
    const first = await timer.textContent();
    assert.match(first, /^02:0[5-7]$/);
    await page.waitForFunction((before) => {
      const el = document.querySelector('[data-incident-id="1"] [data-field="since"]');
      return el && el.textContent !== before;
    }, first, { timeout: 3_000 });
  });

  it('reconnects with ?since= the last applied seq and takes the new snapshot', async () => {
    await page.goto(`${ORIGIN}/console`);
    const first = await feed.connection(1);
    send(first, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: [view(1), view(2)] });
    send(first, { type: 'incident', seq: 26, incident: view(2, { seq: 26, press_count: 2 }) });
    await page.locator('[data-incident-id="2"] [data-field="press-count"]').waitFor(WAIT);

    await first.close({ code: 1011, reason: 'restart' });
    await page.locator('#conn-status[data-state="reconnecting"]').waitFor(WAIT);
    await page.locator('#stale-banner').waitFor({ state: 'visible', ...WAIT });

    const second = await feed.connection(2);
    assert.equal(new URL(second.url()).searchParams.get('since'), '26');
    await page.locator('#conn-status[data-state="connected"]').waitFor(WAIT);
    send(second, { type: 'snapshot', seq: 30, server_time: Date.now(), incidents: [view(2, { seq: 30 })] });
    await page.waitForFunction(() => !document.querySelector('[data-incident-id="1"]'), null, WAIT);
    assert.deepEqual(await rowIds(page), ['2']);
    await page.locator('#stale-banner').waitFor({ state: 'hidden', ...WAIT });
  });

  it('catches up when a heartbeat is ahead of what it applied and no delta fills the gap', async () => {
    await page.goto(`${ORIGIN}/console`);
    const first = await feed.connection(1);
    send(first, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: [view(1)] });
    send(first, { type: 'incident', seq: 26, incident: view(1, { seq: 26, press_count: 2 }) });
    await page.locator('[data-incident-id="1"] [data-field="press-count"]').waitFor(WAIT);
    // A heartbeat at the seq already applied changes nothing; one ahead, never filled, makes
    // the console connect again and ask for what it missed.
    send(first, { type: 'heartbeat', seq: 26, server_time: Date.now() });
    send(first, { type: 'heartbeat', seq: 31, server_time: Date.now() });
    const second = await feed.connection(2);
    assert.equal(new URL(second.url()).searchParams.get('since'), '26');
    send(second, { type: 'incident', seq: 31, incident: view(1, { seq: 31, press_count: 3 }) });
    await page.locator('[data-incident-id="1"] [data-field="press-count"]', { hasText: '3' }).waitFor(WAIT);
    await page.locator('#conn-status[data-state="connected"]').waitFor(WAIT);
    assert.equal(feed.sockets.length, 2);
  });

  it('switches every label between Chinese and English and remembers the choice', async () => {
    await page.goto(`${ORIGIN}/console`);
    const ws = await feed.connection(1);
    send(ws, { type: 'snapshot', seq: 1, server_time: Date.now(), incidents: [view(1, { responder: null })] });
    await page.locator('[data-incident-id="1"]').waitFor(WAIT);

    const header = page.locator('#incidents thead th').nth(2);
    assert.equal(await header.textContent(), '老人 / 位置');
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
    await page.locator('#lang-toggle').click();
    assert.equal(await header.textContent(), 'Elder / location');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    await page.locator('[data-incident-id="1"] [data-field="nobody"]', { hasText: 'Nobody in range' }).waitFor(WAIT);
    assert.equal(await page.locator('#conn-text').textContent(), 'Connected');

    // No Chinese left in the page's own labels (elder, station and notes are data).
    const labels = await page.evaluate(() =>
      [...document.querySelectorAll('[data-i18n], #conn-text, #lang-toggle, [data-field="kind"], [data-field="state"], [data-field="location-source"], [data-field="nobody"]')]
        .map((n) => n.textContent),
    );
    for (const label of labels) {
      if (label === '中文') continue;
      assert.doesNotMatch(label, /[\u4e00-\u9fff]/, `untranslated label: ${label}`);
    }

    await page.reload();
    const ws2 = await feed.connection(2);
    send(ws2, { type: 'snapshot', seq: 1, server_time: Date.now(), incidents: [] });
    await page.locator('#incidents[data-loaded="true"]').waitFor(WAIT);
    assert.equal(await header.textContent(), 'Elder / location');
  });
});
