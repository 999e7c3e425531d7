// The family page against a real `anxind demo`: a contact opens the link the demo issued,
// a press of their elder's device reaches the page within moments, their answers ("I am
// going", "I called: she is fine") reach the console, the second as the family_says_fine
// alarm; a link a dispatcher issues in the console signs a contact in, and revoking it
// signs the open page out. Both languages, phone-sized screenshots.
//
// Run from the repository root after `cargo build -p anxind`:
//   cd e2e && npm ci && cd .. && ANXIND_BIN=$PWD/target/debug/anxind node --test e2e/family.test.mjs
// UPDATE_SCREENSHOTS=1 also writes docs/screenshots/family-*.png.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { demoLinks, launchChromium, publishEvent, resultsDir, signIn, spawnDaemon, watchPageErrors } from './support.mjs';
import { eventually, openPhone, screenshot } from './responder-support.mjs';

const SHOWS_UP = { timeout: 15_000 };

const row = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);

async function step(name, pages, daemon, fn) {
  try {
    await fn();
  } catch (err) {
    await mkdir(resultsDir, { recursive: true });
    for (const [i, page] of pages.entries()) {
      await page?.screenshot({ path: join(resultsDir, `failed-family-${name}-${i}.png`) }).catch(() => {});
    }
    if (daemon) err.message += `\n(daemon log: ${daemon.logPath}; last lines:\n${daemon.tail()})`;
    throw err;
  }
}

describe('family page on a live anxind', () => {
  let daemon;
  let browser;
  let links;

  before(async () => {
    daemon = await spawnDaemon();
    links = await eventually(() => {
      const found = demoLinks(daemon.tail());
      return found.length >= 2 ? found : null;
    }, 'the demo to print its family links');
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('a press reaches the family page and the answers reach the console', { timeout: 90_000 }, async () => {
    const [link] = links;
    const consoleCtx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const desk = await consoleCtx.newPage();
    const deskErrors = watchPageErrors(desk);
    const { context, page } = await openPhone(browser);
    const errors = watchPageErrors(page);
    await step('press', [page, desk], daemon, async () => {
      await signIn(desk, daemon.consoleUrl);
      await page.goto(link.url);
      await page.locator('#none').waitFor(SHOWS_UP);
      assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address');
      assert.match(await page.locator('[data-field="greeting"]').textContent(), /您好/);
      assert.match(await page.locator('#none').textContent(), new RegExp(`${link.elder}目前没有求助`));
      await page.locator('[data-field="push-state"][data-state="not_configured"]').waitFor(SHOWS_UP);
      await page.locator('#conn-status[data-state="open"]').waitFor(SHOWS_UP);
      await screenshot(page, 'family-none-zh');

      const pressed = Date.now();
      await publishEvent(daemon.mqttUrl, link.device, { type: 'fall' });
      const card = page.locator('[data-incident]');
      await card.waitFor(SHOWS_UP);
      const tookMs = Date.now() - pressed;
      // The figure the issue asks for (within 2 s on this machine) is printed for the record
      // and published in docs/benchmarks.md; a test does not fail on a slow machine's clock.
      console.log(`press to family page: ${tookMs} ms`);
      assert.equal(await card.locator('[data-field="kind"]').textContent(), '跌倒报警');
      await page.locator('.leaflet-marker-icon.place-marker').waitFor(SHOWS_UP);
      // The contact is the first told.
      await card.locator('[data-contact="c1"]').waitFor(SHOWS_UP);

      // "I am going", in about 15 minutes.
      await card.locator('[data-answer="going"]').click();
      await page.locator('[data-field="eta-form"] input').fill('15');
      await page.locator('[data-action="eta-send"]').click();
      await page.locator('[data-field="answer-note"].ok').waitFor(SHOWS_UP);
      await card.locator('[data-answer="going"][aria-pressed="true"]').waitFor(SHOWS_UP);
      await row(desk, link.device).click();
      const family = desk.locator('#detail [data-section="family"]');
      await family.locator('[data-contact="c1"] [data-answer="going"]').waitFor(SHOWS_UP);
      assert.match(await family.locator('[data-contact="c1"] [data-field="family-answer"]').textContent(), /15 分钟/);
      await page.evaluate(() => window.scrollTo(0, 0));
      await screenshot(page, 'family-incident-zh');

      // "I called: she is fine" alarms every console.
      await card.locator('[data-answer="fine"]').click();
      await card.locator('[data-answer="fine"][aria-pressed="true"]').waitFor(SHOWS_UP);
      await row(desk, link.device)
        .and(desk.locator('tr.alarm[data-alarm="urgent"][data-alarm-need="family_says_fine"]'))
        .waitFor(SHOWS_UP);
      await family.locator('[data-contact="c1"] [data-answer="fine"]').waitFor(SHOWS_UP);
      await desk.locator('#timeline').getByText('家属').first().waitFor(SHOWS_UP);
      await page.locator('.answers').scrollIntoViewIfNeeded();
      await screenshot(page, 'family-answered-zh');
      await desk.locator('#detail').screenshot({ path: join(resultsDir, 'screenshots', 'family-console.png') });
      await page.locator('.history').scrollIntoViewIfNeeded();
      await page.locator('[data-past]').first().waitFor(SHOWS_UP);
      await screenshot(page, 'family-history-zh');
    });
    assert.deepEqual(errors, []);
    assert.deepEqual(deskErrors, []);
    await context.close();
    await consoleCtx.close();
  });

  it('a link issued in the console signs in, in English, and revoking it signs the page out', { timeout: 90_000 }, async () => {
    const link = links[1];
    const consoleCtx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const desk = await consoleCtx.newPage();
    const { context, page } = await openPhone(browser, { lang: 'en' });
    const errors = watchPageErrors(page);
    await step('issue-revoke', [page, desk], daemon, async () => {
      await signIn(desk, daemon.consoleUrl);
      await publishEvent(daemon.mqttUrl, link.device, { type: 'sos' });
      await row(desk, link.device).click();
      const family = desk.locator('#detail [data-section="family"]');
      const first = family.locator('[data-contact="c1"]');
      // The demo's link is listed; re-issuing replaces it.
      await first.locator('[data-field="family-link"]').filter({ hasText: 'demo' }).waitFor(SHOWS_UP);
      await first.locator('[data-action="family-link-issue"]').click();
      const url = await family.locator('[data-field="family-url"]').inputValue();
      assert.match(url, /\/family#t=[0-9a-f]{64}$/);
      await first.locator('[data-field="family-link"]').filter({ hasText: 'dispatcher' }).waitFor(SHOWS_UP);

      // The demo's old link no longer signs in.
      const old = await openPhone(browser);
      await old.page.goto(link.url);
      await old.page.locator('#revoked').waitFor(SHOWS_UP);
      await old.context.close();

      await page.goto(url);
      const card = page.locator('[data-incident]');
      await card.waitFor(SHOWS_UP);
      assert.equal(await card.locator('[data-field="kind"]').textContent(), 'SOS call');
      assert.match(await page.locator('[data-field="greeting"]').textContent(), /^Hello, /);
      await page.locator('.leaflet-marker-icon.place-marker').waitFor(SHOWS_UP);
      await screenshot(page, 'family-incident-en');

      await first.locator('[data-action="family-link-revoke"]').click();
      await page.locator('#revoked').waitFor(SHOWS_UP);
      assert.match(await page.locator('#revoked').textContent(), /no longer works/);
      await screenshot(page, 'family-revoked-en');
      await page.reload();
      await page.locator('#revoked').waitFor(SHOWS_UP);
    });
    assert.deepEqual(errors.filter((e) => !/401/.test(e)), []);
    await context.close();
    await consoleCtx.close();
  });

  it('without a link the page says how to get in, in either language', { timeout: 30_000 }, async () => {
    const { context, page } = await openPhone(browser);
    await step('signed-out', [page], daemon, async () => {
      await page.goto(new URL('/family', daemon.consoleUrl).toString());
      await page.locator('#signed-out').waitFor(SHOWS_UP);
      await screenshot(page, 'family-signed-out-zh');
      await page.locator('#lang-toggle').click();
      await page.locator('#signed-out h1').filter({ hasText: 'open the link' }).waitFor(SHOWS_UP);
      await page.goto(new URL('/family#t=0123', daemon.consoleUrl).toString());
      await page.locator('#signed-out').filter({ hasText: 'not recognised' }).waitFor(SHOWS_UP);
    });
    await context.close();
  });

  it('a connection that stalls is said, and comes back by itself', { timeout: 60_000 }, async () => {
    const link = links[2];
    const { context, page } = await openPhone(browser);
    await step('stalled', [page], daemon, async () => {
      await page.goto(link.url);
      await page.locator('#conn-status[data-state="open"]').waitFor(SHOWS_UP);
      // A frozen server: the socket stays open and brings nothing.
      process.kill(daemon.pid, 'SIGSTOP');
      try {
        await page.locator('#stale-banner').waitFor({ timeout: 25_000 });
        await page.locator('#conn-status[data-state="lost"]').waitFor(SHOWS_UP);
        await screenshot(page, 'family-lost-zh');
      } finally {
        process.kill(daemon.pid, 'SIGCONT');
      }
      await page.locator('#conn-status[data-state="open"]').waitFor({ timeout: 30_000 });
      assert.ok(await page.locator('#stale-banner').isHidden());
    });
    await context.close();
  });
});

describe('family page with Web Push configured', () => {
  let daemon;
  let browser;

  before(async () => {
    // A VAPID key pair for this test alone (`anxind vapid-keys`): nothing is pushed here, the
    // page only offers push with the public half of the key anxind signs with.
    daemon = await spawnDaemon({
      env: {
        ANXIN_NOTIFY__VAPID_PRIVATE_KEY: 'o2UCROW09HmKMI1vuThYP2Qt-mqljhJncrsxjROu6v8',
        ANXIN_NOTIFY__VAPID_SUBJECT: 'mailto:ops@anxin.example',
      },
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('offers notifications and registers its service worker at the root', { timeout: 60_000 }, async () => {
    const [link] = await eventually(() => {
      const found = demoLinks(daemon.tail());
      return found.length ? found : null;
    }, 'the demo to print its family links');
    const { context, page } = await openPhone(browser, { lang: 'en' });
    const errors = watchPageErrors(page);
    await step('push', [page], daemon, async () => {
      await page.goto(link.url);
      await page.locator('[data-field="push-state"][data-state="off"]').waitFor(SHOWS_UP);
      const { public_key } = await page.evaluate(async () => (await fetch('/api/v1/family/push-key')).json());
      assert.equal(
        public_key,
        'BC56ToW0tyrGESvmF1JY-hQgDIMA3VOkUVRDXnLQei5yNt6Tg9mMdJLayx-1Jr9q4_FRdnDChg-RQMyizKQY8oo',
        'the public half of notify.vapid_private_key',
      );
      await page.locator('[data-action="push"]').waitFor(SHOWS_UP);
      const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
      assert.equal(new URL(scope).pathname, '/', 'the worker at /family-sw.js covers /family');
    });
    assert.deepEqual(errors, []);
    await context.close();
  });
});
