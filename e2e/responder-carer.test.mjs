// Issue 21 point 4 on the carer's phone, against a real anxind (the demo district) and real
// Chromium at 390×844: a demo carer (the fifth responder of each station, skills `carer`)
// signs in on /responder; a check-in from too far from the elder's home is refused in words
// with the distance and the radius; from the elder's door it is taken and the page shows the
// visit; "still here" and check-out go through; the help button asks twice and then opens an
// SOS for the carer, which the page says. The phone's position is Chromium's (set per step).
//
// Run from the repository root after `cargo build -p anxind`:
//   ANXIND_BIN=$PWD/target/debug/anxind node --test e2e/responder-carer.test.mjs
// Screenshots go to e2e/test-results/screenshots (and docs/screenshots with UPDATE_SCREENSHOTS=1).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, resultsDir, spawnDaemon, watchPageErrors } from './support.mjs';
import { demoRegistry, eventually, openPhone, recordFrames, screenshot } from './responder-support.mjs';

const SHOWS_UP = { timeout: 15_000 };
const visits = (page) => page.locator('#visits');
const part = (page, name) => page.locator(`#visits [data-part="${name}"]`);

/** A point `m` metres north of `at`. */
const north = (at, m) => ({ lat: at.lat + m / 111_195, lon: at.lon });

describe('a carer on the responder page', () => {
  let daemon;
  let browser;
  let registry;

  before(async () => {
    registry = demoRegistry();
    daemon = await spawnDaemon();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('checks in only within the radius, checks out, and calls for help', async () => {
    const carer = registry.responders.find((r) => (r.skills ?? []).includes('carer'));
    assert.ok(carer, 'the demo district has carers');
    const elder = registry.elders[0];
    // Two phones of the same carer: one 450 m from the home, one at the door (each browser
    // context has its own position, so nothing waits on a position to change).
    await onPhone(carer, north(elder.home, 450), 'far', async (page, frames) => {
      assert.match(await part(page, 'radius').textContent(), /200 米/);
      await page.locator('#visit-elder').fill(elder.id);
      await page.locator('#visits [data-visit-submit]').click();
      await part(page, 'error').waitFor({ state: 'visible', ...SHOWS_UP });
      const refusal = await part(page, 'error').textContent();
      assert.match(refusal, /约 45\d 米/, refusal);
      assert.match(refusal, /200 米以内/, refusal);
      assert.equal(await visits(page).getAttribute('data-visit'), 'none');
      const sent = frames.sent.find((f) => f.type === 'visit' && f.action === 'check_in');
      assert.equal(sent.elder_id, elder.id);
      assert.ok(Math.abs(sent.lat - north(elder.home, 450).lat) < 1e-5, 'the phone’s own position is sent');
      await screenshot(page, 'responder-carer-refused-zh');
    });
    await onPhone(carer, north(elder.home, 30), 'door', async (page, frames) => {
      await page.locator('#visit-elder').fill(elder.id);
      await page.locator('#visits [data-visit-submit]').click();
      await page.locator('#visits[data-visit="open"]').waitFor(SHOWS_UP);
      assert.match(await part(page, 'elder').textContent(), new RegExp(elder.name));
      assert.equal(await part(page, 'error').isHidden(), true);
      assert.match(await part(page, 'times').textContent(), /签到/);
      await screenshot(page, 'responder-carer-visit-zh');

      // Still here, then check out.
      await page.locator('[data-visit="still_here"]').click();
      await eventually(async () => (await part(page, 'done').textContent()).includes('计时重新开始'), 'still here');
      await page.locator('[data-visit="check_out"]').click();
      await page.locator('#visits[data-visit="none"]').waitFor(SHOWS_UP);
      assert.equal(await part(page, 'done').textContent(), '已签退。');

      // Help asks twice, then opens an incident for the carer.
      const help = page.locator('[data-visit="help"]');
      await help.click();
      assert.equal(await part(page, 'help').getAttribute('data-state'), 'confirm');
      assert.equal(frames.sent.filter((f) => f.action === 'help').length, 0, 'one tap sends nothing');
      await help.click();
      await page.locator('#visits [data-part="help"][data-state="sent"]').waitFor(SHOWS_UP);
      const hello = await eventually(
        () => frames.received.findLast((f) => f.type === 'hello' && f.responder?.carer?.help != null),
        'the help in a hello',
      );
      assert.ok(Number.isInteger(hello.responder.carer.help));
      await screenshot(page, 'responder-carer-help-zh');
    });
  });

  /** Signs `carer` in on a phone at `position` and runs `fn(page, frames)` on it. */
  async function onPhone(carer, position, name, fn) {
    const { context, page } = await openPhone(browser, { position });
    const errors = watchPageErrors(page);
    const frames = recordFrames(page);
    try {
      await page.goto(new URL('/responder', daemon.consoleUrl).toString());
      await page.locator('#token').fill(`demo-${carer.id}`);
      await page.locator('[data-action="sign-in"]').click();
      await page.locator('#conn-status[data-state="connected"]').waitFor(SHOWS_UP);
      await visits(page).waitFor({ state: 'visible', ...SHOWS_UP });
      // The location watch has a fix (the page shares it while on duty).
      await page.locator('#geo-status[data-state="sharing"]').waitFor(SHOWS_UP);
      await fn(page, frames);
      assert.deepEqual(errors, []);
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await page.screenshot({ path: join(resultsDir, `failed-responder-carer-${name}.png`) }).catch(() => {});
      err.message += `\n(frames sent: ${JSON.stringify(frames.sent.filter((f) => f.type !== 'location'))})`;
      err.message += `\n(daemon log: ${daemon.logPath}; last lines:\n${daemon.tail()})`;
      throw err;
    } finally {
      await context.close();
    }
  }
});
