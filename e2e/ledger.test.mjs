// The ledger page (/ledger) against a real anxind (the demo district: 320 elders, 8 stations,
// 40 responders and 3 home-care workers), in headless Chromium: an administrator is sent there on signing in and keeps
// the ledger (search, paging, filters, forms with If-Match, retiring, history); a supervisor
// reads it; a dispatcher has no way in.
//
// Run from the repository root after `cargo build -p anxind`:
//   ANXIND_BIN=target/debug/anxind node --test e2e/ledger.test.mjs

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, resultsDir, screenshotsDir, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 15_000 };
const ELDER = 'e2e-elder-1';
const DEVICE = 'e2e-d1';

const status = (page) => page.locator('#ledger-status');
const loaded = (page) => page.locator('#ledger-table[data-loaded="true"]').waitFor(SHOWS_UP);
const field = (page, name) => page.locator(`#entry-form [name="${name}"]`);
const problem = (page, path) => page.locator(`#entry-form [data-path="${path}"] > .field-error`);

/** The API as another administrator's browser would call it, with this page's cookie. */
function api(page, method, path, { body, ifMatch } = {}) {
  return page.evaluate(
    async ({ method, path, body, ifMatch }) => {
      const headers = { 'Content-Type': 'application/json' };
      if (ifMatch) headers['If-Match'] = ifMatch;
      const res = await fetch(`/api/v1/admin/${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
      return { status: res.status, etag: res.headers.get('ETag'), body: await res.json().catch(() => null) };
    },
    { method, path, body, ifMatch },
  );
}

/** A screenshot for the docs, without the toasts of earlier steps. */
async function shot(page, name) {
  await page.evaluate(() => document.getElementById('toasts').replaceChildren());
  await page.screenshot({ path: join(screenshotsDir, name) });
}

/** Signs in on the console's form as `user` and waits for where it leads. */
async function signInAs(page, consoleUrl, user) {
  await page.goto(consoleUrl);
  await page.locator('#signin-user').fill(user);
  await page.locator('#signin-password').fill('anxin-demo');
  await page.locator('#signin-submit').click();
}

/** Opens an entry of the list shown by searching for its id and clicking its row. */
async function openById(page, id) {
  await page.locator('#ledger-search').fill(id);
  await page.locator(`#ledger-rows tr[data-id="${id}"]`).click(SHOWS_UP);
  await page.locator(`#entry[data-id="${id}"][data-loaded="true"]`).waitFor(SHOWS_UP);
}

describe('the ledger page on a live anxind', () => {
  let daemon;
  let browser;
  let page;
  let errors;
  const sockets = [];

  async function step(name, fn) {
    try {
      await fn();
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await page?.screenshot({ path: join(resultsDir, `failed-ledger-${name}.png`) }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; last lines:\n${daemon?.tail()})`;
      throw err;
    }
  }

  before(async () => {
    daemon = await spawnDaemon();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    errors = watchPageErrors(page);
    page.on('websocket', (ws) => sockets.push(ws.url()));
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('sends an administrator to the ledger, never to the incident feed', { timeout: 60_000 }, () =>
    step('admin-signin', async () => {
      await signInAs(page, daemon.consoleUrl, 'admin');
      await page.waitForURL(/\/ledger#elders$/, SHOWS_UP);
      await loaded(page);
      assert.equal(await page.locator('#me').textContent(), '台账管理员 孙丽 · 管理员');
      assert.equal(await page.locator('#readonly').isHidden(), true);
      assert.equal(await page.locator('#console-link').isHidden(), true);
      assert.equal(await status(page).textContent(), '第 1–50 条，共 320 条');
      assert.equal(await page.locator('#ledger-rows tr').count(), 50);
      assert.deepEqual(sockets, [], 'an administrator opens no incident feed');
      // Back at /console, the session sends them here again.
      await page.goto(daemon.consoleUrl);
      await page.waitForURL(/\/ledger/, SHOWS_UP);
      await loaded(page);
      assert.deepEqual(sockets, []);
    }));

  it('pages, searches and filters on the server', { timeout: 60_000 }, () =>
    step('search', async () => {
      await page.locator('#page-next').click();
      await status(page).filter({ hasText: '第 51–100 条，共 320 条' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#ledger-rows tr').first().getAttribute('data-id'), 'xs-e0051');
      await page.locator('#page-prev').click();
      await status(page).filter({ hasText: '第 1–50 条' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#page-prev').isDisabled(), true);
      // The search waits for typing to stop, then asks the server once.
      await page.locator('#ledger-search').fill('e0007');
      await status(page).filter({ hasText: '共 1 条' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#ledger-rows tr').getAttribute('data-id'), 'xs-e0007');
      await page.locator('#ledger-search').fill('no such elder at all');
      await status(page).filter({ hasText: '没有符合条件的记录' }).waitFor(SHOWS_UP);
      await page.locator('#ledger-search').fill('');
      await status(page).filter({ hasText: '共 320 条' }).waitFor(SHOWS_UP);
      await shot(page, 'ledger-elders-zh.png');
      // Responders by station.
      await page.locator('[data-tab="responders"]').click();
      await page.waitForURL(/#responders$/);
      await status(page).filter({ hasText: '共 43 条' }).waitFor(SHOWS_UP);
      await page.locator('[data-filter="station"]').selectOption('xs-s02');
      await status(page).filter({ hasNotText: '共 43 条' }).filter({ hasText: '共' }).waitFor(SHOWS_UP);
      const ids = await page.locator('#ledger-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
      assert.ok(ids.length > 0 && ids.every((id) => id.startsWith('xs-r02')), ids.join(' '));
      // Stations say their zone (the demo district is one zone, 0).
      await page.locator('[data-tab="stations"]').click();
      await page.waitForURL(/#stations$/);
      await status(page).filter({ hasText: '共 8 条' }).waitFor(SHOWS_UP);
      const heads = await page.locator('#ledger-table thead th').allTextContents();
      const zone = heads.indexOf('分区');
      assert.ok(zone >= 0, heads.join(' | '));
      const zones = await page.locator(`#ledger-rows tr td:nth-child(${zone + 1})`).allTextContents();
      assert.deepEqual([...new Set(zones)], ['0']);
      await shot(page, 'ledger-stations-zh.png');
    }));

  it('creates an elder and a device, whose password is shown once', { timeout: 60_000 }, () =>
    step('create', async () => {
      await page.locator('[data-tab="elders"]').click();
      await loaded(page);
      await page.locator('#ledger-new').click();
      await field(page, 'id').fill(ELDER);
      await field(page, 'name').fill('测试 李桂兰');
      await field(page, 'address').fill('西山区 马街街道 测试路 1 号');
      await field(page, 'home.lat').fill('25.0301');
      await field(page, 'home.lon').fill('102.6402');
      await field(page, 'phone').fill('13800009999');
      await field(page, 'profile.station_id').selectOption('xs-s01');
      await field(page, 'profile.birth_year').fill('1941');
      await field(page, 'profile.lives_alone').selectOption('true');
      await field(page, 'profile.conditions').fill('高血压，糖尿病');
      await page.locator('[data-action="add-contact"]').click();
      await field(page, 'profile.contacts[0].name').fill('李明');
      await field(page, 'profile.contacts[0].relation').fill('儿子');
      await field(page, 'profile.contacts[0].phone').fill('13900001111');
      await field(page, 'profile.contacts[0].channel').selectOption('voice');
      // A second contact, added and removed again, leaves the first as typed.
      await page.locator('[data-action="add-contact"]').click();
      await field(page, 'profile.contacts[1].name').fill('王芳');
      await page.locator('.contact-row[data-index="1"] [data-action="remove-contact"]').click();
      assert.equal(await page.locator('.contact-row').count(), 1);
      assert.equal(await field(page, 'profile.contacts[0].phone').inputValue(), '13900001111');
      await page.locator('#entry-save').click();
      await page.locator(`#entry[data-id="${ELDER}"][data-loaded="true"]`).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#entry-title').textContent(), '测试 李桂兰');
      const stored = await api(page, 'GET', `elders/${ELDER}`);
      assert.equal(stored.status, 200);
      assert.deepEqual(stored.body.entry.profile.conditions, ['高血压', '糖尿病']);
      assert.equal(stored.body.entry.profile.contacts[0].channel, 'voice');
      assert.equal(stored.body.entry.profile.station_id, 'xs-s01');
      assert.equal(stored.body.entry.home.lat, 25.0301);
      await status(page).filter({ hasText: '共 321 条' }).waitFor(SHOWS_UP);

      await page.locator('[data-tab="devices"]').click();
      await loaded(page);
      await page.locator('#ledger-new').click();
      await field(page, 'id').fill(DEVICE);
      await field(page, 'elder_id').fill(ELDER);
      // A SIM another device has is refused beside its field; a new one is stored.
      const taken = (await api(page, 'GET', 'devices/xs-d0001')).body.entry.sim;
      assert.match(taken, /^\d{11}$/, "the demo's devices have SIMs");
      await field(page, 'sim').fill(taken);
      await page.locator('#entry-save').click();
      await problem(page, 'sim').filter({ hasText: '此 SIM 卡号已属于另一台设备' }).waitFor(SHOWS_UP);
      await field(page, 'sim').fill('139 1234 5678');
      await page.locator('#entry-save').click();
      const password = page.locator('#device-password');
      await password.waitFor(SHOWS_UP);
      assert.match(await password.textContent(), /^[2-9a-zA-Z]{24}$/);
      await page.locator('.once-warning', { hasText: '只显示这一次' }).waitFor(SHOWS_UP);
      await shot(page, 'ledger-device-password-zh.png');
      // Opened again, the device shows no password.
      await page.locator('#entry-close').click();
      await openById(page, DEVICE);
      assert.equal(await page.locator('#device-password').count(), 0);
      assert.equal(await field(page, 'sim').inputValue(), '139 1234 5678');
      assert.equal((await api(page, 'GET', `devices/${DEVICE}`)).body.entry.sim, '139 1234 5678');
      // Its elder's devices, from the elder's panel.
      await page.locator('[data-tab="elders"]').click();
      await openById(page, ELDER);
      await page.locator('#elder-devices').click();
      await page.waitForURL(/#devices$/);
      await status(page).filter({ hasText: '共 1 条' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('[data-filter="elder"]').inputValue(), ELDER);
    }));

  it('saves with the tag it read, says when another changed the entry, and shows field errors', { timeout: 60_000 }, () =>
    step('edit', async () => {
      await page.locator('[data-tab="elders"]').click();
      await openById(page, ELDER);
      await field(page, 'profile.mobility').fill('使用拐杖');
      await page.locator('#entry-save').click();
      await page.locator('.toast', { hasText: `老人 ${ELDER} 已保存` }).waitFor(SHOWS_UP);
      assert.equal((await api(page, 'GET', `elders/${ELDER}`)).body.entry.profile.mobility, '使用拐杖');

      // Somebody else changes the entry with the tag this page holds too.
      await page.locator(`#entry[data-id="${ELDER}"][data-loaded="true"]`).waitFor(SHOWS_UP);
      const now = await api(page, 'GET', `elders/${ELDER}`);
      const theirs = { ...now.body.entry, notes: '另一位管理员的备注' };
      delete theirs.kind;
      const changed = await api(page, 'PUT', `elders/${ELDER}`, { body: theirs, ifMatch: now.etag });
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      // Saving over it is refused, and the form says so and offers to reload.
      await field(page, 'name').fill('测试 李桂兰（改）');
      await page.locator('#entry-save').click();
      await page.locator('[data-notice="stale"]').waitFor(SHOWS_UP);
      assert.equal(await field(page, 'name').inputValue(), '测试 李桂兰（改）', 'what was typed stays');
      await shot(page, 'ledger-stale-zh.png');
      await page.locator('#entry-reload').click();
      await page.locator('[data-notice="stale"]').waitFor({ state: 'detached', ...SHOWS_UP });
      assert.equal(await field(page, 'notes').inputValue(), '另一位管理员的备注');
      await field(page, 'name').fill('测试 李桂兰（改）');
      await page.locator('#entry-save').click();
      await page.locator('.toast', { hasText: `老人 ${ELDER} 已保存` }).last().waitFor(SHOWS_UP);
      await page.locator('#entry-title', { hasText: '测试 李桂兰（改）' }).waitFor(SHOWS_UP);

      // The server's problems go beside their fields.
      await field(page, 'phone').fill('not a phone');
      await field(page, 'profile.contacts[0].phone').fill('x');
      await field(page, 'address').fill('');
      await page.locator('#entry-save').click();
      await problem(page, 'phone').filter({ hasText: '不是有效的电话号码' }).waitFor(SHOWS_UP);
      assert.equal(await problem(page, 'profile.contacts[0].phone').textContent(), '不是有效的电话号码');
      assert.equal(await problem(page, 'address').textContent(), '必填');
      await page.locator('[data-notice="invalid"]', { hasText: '请修正标出的字段' }).waitFor(SHOWS_UP);
      await page.locator('#entry').evaluate((n) => { n.scrollTop = 0; });
      await shot(page, 'ledger-form-errors-zh.png');
      const kept = await api(page, 'GET', `elders/${ELDER}`);
      assert.equal(kept.body.entry.phone, '13800009999', 'nothing was saved');
      // Without If-Match the API refuses outright.
      assert.equal((await api(page, 'PUT', `elders/${ELDER}`, { body: theirs })).status, 428);
    }));

  it('retires after a confirmation, says why it cannot, and shows the history', { timeout: 90_000 }, () =>
    step('retire', async () => {
      await page.locator('[data-tab="elders"]').click();
      await openById(page, ELDER);
      await page.locator('#entry-retire').click();
      await page.locator('#confirm-yes').click();
      await page.locator('[data-notice="refused"]', { hasText: '老人仍有设备' }).waitFor(SHOWS_UP);

      await page.locator('[data-tab="devices"]').click();
      await openById(page, DEVICE);
      await page.locator('#entry-retire').click();
      await page.locator('[data-confirm="retire"]', { hasText: `确定注销设备 ${DEVICE}` }).waitFor(SHOWS_UP);
      await page.locator('#confirm-yes').click();
      await page.locator('#entry [data-field="retired"]').waitFor(SHOWS_UP);
      assert.equal(await page.locator('#entry-save').count(), 0, 'a retired entry is read-only');
      await status(page).filter({ hasText: '没有符合条件的记录' }).waitFor(SHOWS_UP);
      await page.locator('[data-filter="retired"]').check();
      await page.locator(`#ledger-rows tr.retired[data-id="${DEVICE}"]`).waitFor(SHOWS_UP);
      await page.locator('.ledger-subtab[data-view="history"]').click();
      const changes = page.locator('[data-history="changes"] tbody tr');
      await changes.first().waitFor(SHOWS_UP);
      assert.deepEqual(await changes.evaluateAll((rows) => rows.map((r) => r.dataset.action)), ['retired', 'created']);
      assert.match(await changes.first().textContent(), /admin/);
      await page.locator('[data-filter="retired"]').uncheck();

      // A demo device's incident shows in its history and its elder's.
      await publishEvent(daemon.mqttUrl, 'xs-d0003', { type: 'sos' });
      await page.locator('[data-filter="elder"]').fill('');
      await page.locator('[data-filter="elder"]').press('Enter');
      await openById(page, 'xs-d0003');
      await page.locator('.ledger-subtab[data-view="history"]').click();
      await page.locator('[data-history="incidents"] tbody tr', { hasText: '紧急呼叫' }).waitFor(SHOWS_UP);
      await shot(page, 'ledger-device-history-zh.png');

      await page.locator('[data-tab="elders"]').click();
      await openById(page, ELDER);
      await page.locator('.ledger-subtab[data-view="history"]').click();
      await changes.first().waitFor(SHOWS_UP);
      assert.deepEqual(
        await changes.evaluateAll((rows) => rows.map((r) => r.dataset.action)),
        ['updated', 'updated', 'updated', 'created'],
      );
      assert.match(await changes.first().textContent(), /姓名/, 'the last change names the field it changed');
      await page.locator('[data-section="incidents"]').waitFor(SHOWS_UP);
      await shot(page, 'ledger-history-zh.png');
    }));

  it('edits a responder and adds a member of staff', { timeout: 60_000 }, () =>
    step('responder-staff', async () => {
      await page.locator('[data-tab="responders"]').click();
      await page.locator('[data-filter="station"]').selectOption('');
      await openById(page, 'xs-r011');
      const before = await api(page, 'GET', 'responders/xs-r011');
      await field(page, 'skills').fill('first_aid, cpr');
      await field(page, 'mode').selectOption('ebike');
      await page.locator('#entry-save').click();
      await page.locator('.toast', { hasText: '响应人 xs-r011 已保存' }).waitFor(SHOWS_UP);
      const after = await api(page, 'GET', 'responders/xs-r011');
      assert.deepEqual(after.body.entry.skills, ['first_aid', 'cpr']);
      assert.equal(after.body.entry.mode, 'ebike');
      // What the form does not show stays as it was.
      assert.equal(after.body.entry.token_sha256, before.body.entry.token_sha256);
      assert.equal(after.body.entry.on_duty, before.body.entry.on_duty);

      await page.locator('[data-tab="staff"]').click();
      await loaded(page);
      await page.locator('#ledger-new').click();
      await field(page, 'id').fill('e2e-dispatcher');
      await field(page, 'name').fill('测试调度员');
      await field(page, 'password').fill('short');
      await page.locator('#entry-save').click();
      await problem(page, 'password').filter({ hasText: '密码至少 10 位' }).waitFor(SHOWS_UP);
      await field(page, 'password').fill('a-long-enough-password');
      await page.locator('#entry-save').click();
      await page.locator('#entry[data-id="e2e-dispatcher"][data-loaded="true"]').waitFor(SHOWS_UP);
      assert.equal(await field(page, 'role').inputValue(), 'dispatcher');
      assert.equal(await field(page, 'password').inputValue(), '', 'a password is never shown');
      // Nobody retires their own account.
      await page.locator('#entry-close').click();
      await openById(page, 'admin');
      await page.locator('#entry-retire').click();
      await page.locator('#confirm-yes').click();
      await page.locator('[data-notice="refused"]', { hasText: '不能注销自己的账号' }).waitFor(SHOWS_UP);
      await page.locator('[data-tab="elders"]').click();
      await openById(page, ELDER);
      await page.locator('.ledger-subtab[data-view="history"]').click();
    }));

  it('speaks English', { timeout: 60_000 }, () =>
    step('english', async () => {
      await page.locator('#lang-toggle').click();
      await page.locator('[data-tab="elders"]', { hasText: 'Elders' }).waitFor(SHOWS_UP);
      await page.locator('.ledger-subtab[data-view="history"]', { hasText: 'History' }).waitFor(SHOWS_UP);
      await page.locator('[data-history="changes"] th', { hasText: 'When' }).waitFor(SHOWS_UP);
      await shot(page, 'ledger-history-en.png');
      await page.locator('.ledger-subtab[data-view="details"]').click();
      await page.locator('#entry-form label', { hasText: 'Year of birth' }).waitFor(SHOWS_UP);
      await page.locator('#ledger-search').fill('');
      await status(page).filter({ hasText: '1–50 of 321' }).waitFor(SHOWS_UP);
      await shot(page, 'ledger-elder-en.png');
      await field(page, 'phone').fill('no');
      await page.locator('#entry-save').click();
      await problem(page, 'phone').filter({ hasText: 'Not a phone number' }).waitFor(SHOWS_UP);
      await page.locator('#lang-toggle').click();
      await page.locator('[data-tab="elders"]', { hasText: '老人' }).waitFor(SHOWS_UP);
      // The refusals the test asked for are answers the page shows, not errors.
      assert.deepEqual(errors.filter((e) => !/status of (409|412|422|428) /.test(e)), []);
    }));

  it('lets a supervisor read the ledger and change nothing', { timeout: 60_000 }, () =>
    step('supervisor', async () => {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const sup = await context.newPage();
      const supErrors = watchPageErrors(sup);
      try {
        await signIn(sup, daemon.consoleUrl, { user: 'supervisor' });
        const link = sup.locator('#ledger-link');
        assert.equal(await link.isVisible(), true);
        await link.click();
        await sup.waitForURL(/\/ledger/, SHOWS_UP);
        await loaded(sup);
        assert.equal(await sup.locator('#readonly').isVisible(), true);
        assert.equal(await sup.locator('#console-link').isVisible(), true);
        assert.equal(await sup.locator('#ledger-new').count(), 0);
        await openById(sup, ELDER);
        assert.equal(await sup.locator('#entry-save').count(), 0);
        assert.equal(await sup.locator('#entry-retire').count(), 0);
        assert.equal(await field(sup, 'name').isDisabled(), true);
        const read = await api(sup, 'GET', `elders/${ELDER}`);
        assert.equal(read.status, 200);
        const body = { ...read.body.entry };
        delete body.kind;
        assert.equal((await api(sup, 'PUT', `elders/${ELDER}`, { body, ifMatch: read.etag })).status, 403);
        await shot(sup, 'ledger-supervisor-zh.png');
        assert.deepEqual(supErrors.filter((e) => !/403/.test(e)), []);
      } finally {
        await context.close();
      }
    }));

  it('shows a dispatcher no ledger', { timeout: 60_000 }, () =>
    step('dispatcher', async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const disp = await context.newPage();
      try {
        await signIn(disp, daemon.consoleUrl, { user: 'dispatcher' });
        assert.equal(await disp.locator('#ledger-link').isHidden(), true);
        await disp.goto(daemon.consoleUrl.replace(/\/console$/, '/ledger'));
        await disp.locator('#denied').waitFor(SHOWS_UP);
        assert.equal(await disp.locator('#app').isHidden(), true);
        const answer = await api(disp, 'GET', 'elders');
        assert.equal(answer.status, 403);
      } finally {
        await context.close();
      }
    }));
});
