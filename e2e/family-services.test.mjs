// Home care on the family page (issue 23) against a real anxind: a daughter opens the link a
// dispatcher issued, sees what a cleaning would cost her mother (more than the allowance
// left, so she must agree to the self-paid part before she can book it), books it; the
// provider's worker accepts it, sets off, checks in at the door and out (over the worker's
// socket, as their phone does), and each step shows on the daughter's page; she confirms it
// with four stars and a comment and it leaves the list. A second booking is cancelled with a
// reason. Phone-sized screenshots in Chinese and English.
//
// Run from the repository root after `cargo build -p anxind`:
//   ANXIND_BIN=$PWD/target/debug/anxind node --test e2e/family-services.test.mjs

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openPhone, screenshot } from './responder-support.mjs';
import { launchChromium, signIn, spawnDistrict, stepsOf, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 20_000 };
const EARTH_RADIUS_M = 6_371_008.8;
const DEG = Math.PI / 180;
const sha256 = (s) => createHash('sha256').update(s).digest('hex');

function offset(p, north, east) {
  return { lat: p.lat + north / EARTH_RADIUS_M / DEG, lon: p.lon + east / (EARTH_RADIUS_M * Math.cos(p.lat * DEG)) / DEG };
}

// A district of the test's own: one elder (need level 3: 100 yuan a month) with a daughter,
// one station, one cleaning provider at 150 yuan with one worker.
const HOME = { lat: 24.85, lon: 102.55 };
const WORKER_TOKEN = 'fs-token-w1';

function registry() {
  const a = offset(HOME, -3000, -3000);
  const b = offset(HOME, 3000, 3000);
  return {
    elders: [
      {
        id: 'fs-e1',
        name: '钱秀兰',
        address: '昆明市西山区碧鸡街道 12 号 3 单元 201 室',
        home: HOME,
        phone: '13800007777',
        notes: '',
        profile: {
          birth_year: 1938,
          lives_alone: true,
          conditions: [],
          medications: [],
          mobility: '',
          language: '',
          door_notes: '',
          contacts: [{ id: 'c1', name: '王丽', relation: '女儿', phone: '13800008888' }],
          need_level: 3,
        },
      },
    ],
    devices: [],
    stations: [{ id: 'fs-s1', name: '碧鸡街道社区居家养老服务中心', position: offset(HOME, -200, -200), phone: '0871-68007777', service_circle_min: 20 }],
    responders: [
      {
        id: 'fs-w1',
        name: '李阿姨',
        station_id: 'fs-s1',
        phone: '13900007777',
        position: offset(HOME, -200, -200),
        on_duty: true,
        mode: 'ebike',
        skills: [],
        position_at: null,
        token_sha256: sha256(WORKER_TOKEN),
        provider_id: 'fs-p1',
      },
    ],
    staff: [],
    providers: [
      {
        id: 'fs-p1',
        name: '好邻居家政',
        phone: '0871-68001111',
        offers: [{ category: 'cleaning', price_fen: 15_000, daily_capacity: 5 }],
        area: { type: 'Polygon', coordinates: [[[a.lon, a.lat], [b.lon, a.lat], [b.lon, b.lat], [a.lon, b.lat], [a.lon, a.lat]]] },
      },
    ],
  };
}

/** yyyy-mm-dd of the day `days` from today, and ms of `time` on it, in the page's time zone. */
function pageDay(page, days, time = '00:00') {
  return page.evaluate(
    ([n, hhmm]) => {
      const d = new Date();
      d.setDate(d.getDate() + n);
      const date = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
      return { date, at: new Date(`${date}T${hhmm}`).getTime() };
    },
    [days, time],
  );
}

/**
 * Opens a socket at `path` from `page` (its cookie goes along), waits for its first frame,
 * sends each of `frames` in turn and answers their `result`s.
 */
function overSocket(page, path, frames) {
  return page.evaluate(
    ([p, fs]) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(new URL(p, location.href.replace(/^http/, 'ws')));
        const results = [];
        let sent = -1;
        const next = () => {
          sent += 1;
          if (sent === fs.length) {
            ws.close();
            resolve(results);
            return;
          }
          ws.send(JSON.stringify({ ...fs[sent], request_id: `r${sent}` }));
        };
        ws.onmessage = (ev) => {
          const frame = JSON.parse(ev.data);
          if (sent < 0) next();
          else if (frame.type === 'result' && frame.request_id === `r${sent}`) {
            results.push(frame);
            next();
          }
        };
        ws.onerror = () => reject(new Error(`socket ${p} failed`));
        setTimeout(() => reject(new Error(`socket ${p}: no answer`)), 15_000);
      }),
    [path, frames],
  );
}

const order = (page, id) => page.locator(`#care-orders li[data-order-id="${id}"]`);

describe('home care on the family page on a live anxind', () => {
  let daemon;
  let browser;
  let cleanup;
  const step = stepsOf('family-services', () => daemon);

  before(async () => {
    ({ daemon, cleanup } = await spawnDistrict(registry()));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await cleanup?.();
  });

  it('a daughter books a cleaning, follows it to the door and confirms it with a rating', { timeout: 180_000 }, async () => {
    const deskContext = await browser.newContext();
    const desk = await deskContext.newPage();
    const { context, page } = await openPhone(browser);
    const errors = watchPageErrors(page);
    let id;

    await step('link', [desk, page], async () => {
      await signIn(desk, daemon.consoleUrl);
      const [issued] = await overSocket(desk, '/ws', [{ type: 'family_link', elder_id: 'fs-e1', contact_id: 'c1', action: 'issue' }]);
      assert.equal(issued.ok, true, JSON.stringify(issued));
      await page.addInitScript(() => localStorage.setItem('anxin.family.lang', 'zh'));
      await page.goto(new URL(issued.link.path, daemon.consoleUrl).toString());
      await page.locator('#care-empty:not([hidden])').waitFor(SHOWS_UP);
      assert.equal(await page.locator('#care-empty').textContent(), '目前没有预约中的上门服务。');
    });

    await step('book', [page], async () => {
      await page.locator('#care-new summary').click();
      await page.locator('#care-category').selectOption('cleaning');
      assert.equal(await page.locator('#care-category option:checked').textContent(), '保洁');
      await page.locator('#care-date').fill((await pageDay(page, 1)).date);
      await page.locator('#care-from').fill('09:00');
      await page.locator('#care-to').fill('12:00');
      await page.locator('#care-notes').fill('厨房和卫生间');
      assert.ok(await page.locator('#care-place').isHidden(), 'no booking before the cost is seen');
      await page.locator('#care-quote-btn').click();
      await page.locator('#care-quote:not([hidden])').waitFor(SHOWS_UP);
      const quoted = (k) => page.locator(`#care-quote [data-quote="${k}"]`).textContent();
      assert.deepEqual([await quoted('price'), await quoted('left'), await quoted('subsidy'), await quoted('self')], ['¥150', '¥100', '¥100', '¥50']);
      assert.equal(await page.locator('#care-agree-text').textContent(), '同意由老人自付 ¥50');
      assert.equal(await page.locator('#care-place').isDisabled(), true, 'not before agreeing to pay');
      await page.locator('#care-agree').check();
      assert.equal(await page.locator('#care-place').isDisabled(), false);
      await page.locator('#care-quote').scrollIntoViewIfNeeded();
      await screenshot(page, 'family-care-quote-zh');
      // A change after the quote asks for it again.
      await page.locator('#care-to').fill('12:30');
      assert.ok(await page.locator('#care-place').isHidden());
      assert.equal(await page.locator('#care-form-note').textContent(), '内容改了，请重新查看费用。');
      await page.locator('#care-quote-btn').click();
      await page.locator('#care-quote:not([hidden])').waitFor(SHOWS_UP);
      await page.locator('#care-agree').check();
      await page.locator('#care-place').click();
      await page.locator('#care-form-note.ok').waitFor(SHOWS_UP);
      id = Number(/#(\d+)/.exec(await page.locator('#care-form-note').textContent())[1]);
      await order(page, id).waitFor(SHOWS_UP);
      assert.equal(await order(page, id).getAttribute('data-state'), 'offered');
      assert.equal(await order(page, id).locator('[data-field="category"]').textContent(), '保洁');
      assert.match(await order(page, id).locator('[data-field="when"]').textContent(), /^希望时间：明天 09:00–12:30$/);
      assert.equal(await order(page, id).locator('[data-field="money"]').count(), 0, 'no price before a provider accepts');
      assert.equal(await order(page, id).locator('[data-order-action="cancel"]').count(), 1);
    });

    await step('worker', [page], async () => {
      const tomorrow = (await pageDay(page, 1, '10:30')).at;
      const results = await overSocket(page, `/ws?token=${WORKER_TOKEN}`, [
        { type: 'order', order_id: id, action: 'accept', appointment_at: tomorrow },
        { type: 'order', order_id: id, action: 'en_route' },
      ]);
      assert.ok(results.every((r) => r.ok), JSON.stringify(results));
      // The page reads the list again when it becomes visible (or within 30 s).
      await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      await order(page, id).and(page.locator('[data-state="en_route"]')).waitFor(SHOWS_UP);
      assert.equal(await order(page, id).locator('[data-field="state"]').textContent(), '在途');
      assert.equal(await order(page, id).locator('[data-field="when"]').textContent(), '约定上门：明天 10:30');
      assert.equal(await order(page, id).locator('[data-field="provider"]').textContent(), '好邻居家政 · 李阿姨');
      assert.equal(await order(page, id).locator('[data-field="money"]').textContent(), '费用 ¥150，补贴 ¥100，自付 ¥50');

      const door = offset(HOME, 20, 0);
      const more = await overSocket(page, `/ws?token=${WORKER_TOKEN}`, [
        { type: 'order', order_id: id, action: 'check_in', at: door },
        { type: 'order', order_id: id, action: 'check_out', done: '打扫厨房和卫生间' },
      ]);
      assert.ok(more.every((r) => r.ok), JSON.stringify(more));
      await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      await order(page, id).and(page.locator('[data-state="done"]')).waitFor(SHOWS_UP);
      assert.equal(await order(page, id).locator('[data-field="done"]').textContent(), '服务内容：打扫厨房和卫生间');
      assert.equal(await order(page, id).locator('[data-order-action="cancel"]').count(), 0, 'too late to cancel');
    });

    await step('confirm', [page], async () => {
      await order(page, id).locator('[data-order-action="confirm"]').click();
      await order(page, id).locator('[data-action="care-send"]').click();
      assert.equal(await order(page, id).locator('[data-field="care-note"]').textContent(), '请先选择星级。');
      await order(page, id).locator('[data-rating="4"]').click();
      assert.equal(await order(page, id).locator('.star.on').count(), 4);
      await order(page, id).locator('textarea').fill('很干净，谢谢');
      await order(page, id).scrollIntoViewIfNeeded();
      await screenshot(page, 'family-care-confirm-zh');
      await page.locator('#lang-toggle').click();
      await page.locator('html[lang="en"]').waitFor(SHOWS_UP);
      assert.equal(await order(page, id).locator('[data-field="category"]').textContent(), 'Cleaning');
      assert.equal(await order(page, id).locator('[data-field="money"]').textContent(), 'Price ¥150, allowance ¥100, self-paid ¥50');
      assert.equal(await order(page, id).locator('textarea').inputValue(), '很干净，谢谢', 'what was typed survives');
      await screenshot(page, 'family-care-confirm-en');
      await page.locator('#lang-toggle').click();
      await page.locator('html[lang="zh-CN"]').waitFor(SHOWS_UP);
      await order(page, id).locator('[data-action="care-send"]').click();
      await order(page, id).and(page.locator('.gone')).waitFor(SHOWS_UP);
      assert.equal(await order(page, id).textContent(), `谢谢您的评价，服务 #${id} 已确认。`);
      // What the desk sees: rated four stars by the daughter.
      const open = await desk.evaluate(async () => (await fetch('/api/v1/services/orders')).json());
      assert.ok(open.orders.every((o) => o.id !== id), 'confirmed: no longer open');
    });

    await step('cancel', [page], async () => {
      await page.locator('#care-quote-btn').click();
      await page.locator('#care-quote:not([hidden])').waitFor(SHOWS_UP);
      await page.locator('#care-agree').check();
      await page.locator('#care-place').click();
      await page.locator('#care-form-note.ok').waitFor(SHOWS_UP);
      const second = Number(/#(\d+)/.exec(await page.locator('#care-form-note').textContent())[1]);
      assert.notEqual(second, id);
      await order(page, second).locator('[data-order-action="cancel"]').click();
      await order(page, second).locator('[data-action="care-send"]').click();
      assert.equal(await order(page, second).locator('[data-field="care-note"]').textContent(), '请写一下原因。');
      await order(page, second).locator('textarea').fill('那天家里有人');
      await order(page, second).locator('[data-action="care-send"]').click();
      await order(page, second).and(page.locator('.gone')).waitFor(SHOWS_UP);
      assert.equal(await order(page, second).textContent(), `服务 #${second} 已取消。`);
      await page.locator('#care-empty:not([hidden])').waitFor(SHOWS_UP);
      await page.locator('#care').scrollIntoViewIfNeeded();
      await screenshot(page, 'family-care-after-zh');
      await page.locator('#lang-toggle').click();
      await page.locator('html[lang="en"]').waitFor(SHOWS_UP);
      await screenshot(page, 'family-care-after-en');
      assert.deepEqual(errors, []);
    });
    await context.close();
    await deskContext.close();
  });

  it('the month’s statement shows the confirmed cleaning with its rating, and prints', { timeout: 60_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, timezoneId: 'Asia/Shanghai' });
    const errors = watchPageErrors(page);
    await step('statement', [page], async () => {
      await page.addInitScript(() => localStorage.setItem('anxin.console.lang', 'zh-CN'));
      await signIn(page, daemon.consoleUrl, { user: 'supervisor' });
      // The cleaning's appointment was tomorrow: the statement of that month has it.
      const month = (await pageDay(page, 1)).date.slice(0, 7);
      await page.goto(new URL(`/console/statement?month=${month}&by=elder`, daemon.consoleUrl).toString());
      await page.locator('body[data-loaded="true"]').waitFor(SHOWS_UP);
      assert.equal(await page.locator('h1').textContent(), '安心 · 居家服务月结单');
      const line = page.locator('[data-group="fs-e1"] tr[data-order-id="1"]');
      await line.waitFor(SHOWS_UP);
      assert.deepEqual(
        await Promise.all(['category', 'state', 'price', 'subsidy', 'self', 'rating'].map((f) => line.locator(`[data-field="${f}"]`).textContent())),
        ['保洁', '已确认', '¥150', '¥100', '¥50', '★★★★'],
      );
      assert.match(await page.locator('[data-group="fs-e1"] h2').textContent(), /钱秀兰/);
      assert.equal(await page.locator('#csv').getAttribute('href'), `/api/v1/services/statements?month=${month}&by=elder&format=csv&lang=zh-CN`);
      await screenshot(page, 'statement-elder-zh');
      await page.locator('#by').selectOption('provider');
      await page.locator('#go').click();
      await page.locator('[data-group="fs-p1"] tr[data-order-id="1"]').waitFor(SHOWS_UP);
      await page.locator('#lang').click();
      await page.locator('html[lang="en"]').waitFor(SHOWS_UP);
      assert.equal(await page.locator('[data-group="fs-p1"] tr[data-order-id="1"] [data-field="category"]').textContent(), 'Cleaning');
      assert.equal(await page.locator('#csv').getAttribute('href'), `/api/v1/services/statements?month=${month}&by=provider&format=csv&lang=en`);
      await page.emulateMedia({ media: 'print' });
      assert.ok(await page.locator('#ask').isHidden(), 'the form is not printed');
      await screenshot(page, 'statement-provider-en-print');
      assert.deepEqual(errors, []);
    });
    await page.close();
  });
});
