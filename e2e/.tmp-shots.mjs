import { launchChromium } from './support.mjs';
import { openPhone, scriptServer, serveResponderAssets } from './responder-support.mjs';
const ORIGIN = 'http://127.0.0.1:61234';
const HELLO = { type: 'hello', responder: { id: 'xs-r011', name: '王伟', station_id: 'xs-s01', on_duty: true } };
const now = Date.now();
const job = (over = {}) => ({ incident_id: 12, state: 'offered', offer_deadline: now + 47_000, kind: 'sos',
  elder: { name: '朱秀英', address: '昆明市西山区金碧街道 106 号 2 单元 668 室', phone: '13800000001', notes: '高血压；行动不便，使用助行器；听力较弱，请大声说话' },
  location: { at: { lat: 25.03, lon: 102.7 }, accuracy_m: null, source: 'home', fix_rejected: null }, distance_m: 994.2, eta_min: 5,
  pressed_at: now - 13_000, server_time: now, ...over });
const browser = await launchChromium();
async function shot(name, frames, lang, extra) {
  const { context, page } = await openPhone(browser, { position: { lat: 25.03, lon: 102.7 } });
  await serveResponderAssets(page, ORIGIN);
  await scriptServer(page, (s) => { for (const f of frames) s.send(f); });
  await page.goto(ORIGIN + '/responder');
  if (lang) await page.evaluate((l) => localStorage.setItem('anxin.responder.lang', l), lang);
  if (frames) await page.evaluate(() => localStorage.setItem('anxin.responder.token', 'demo-xs-r011'));
  await page.reload();
  await page.waitForTimeout(800);
  if (extra) await extra(page);
  await page.screenshot({ path: `/tmp/rshots/${name}.png` });
  await context.close();
}
await shot('signin', null);
await shot('signin-err', null, 'en', async (p) => { await p.locator('[data-action="sign-in"]').click(); });
await shot('idle', [HELLO, { type: 'job', job: null }]);
await shot('idle-off', [{ ...HELLO, responder: { ...HELLO.responder, on_duty: false } }, { type: 'job', job: null }], 'en');
await shot('offer-zh', [HELLO, { type: 'job', job: job() }]);
await shot('offer-en', [HELLO, { type: 'job', job: job() }], 'en');
await shot('accepted', [HELLO, { type: 'job', job: job({ state: 'accepted', offer_deadline: null }) }]);
await shot('onscene', [HELLO, { type: 'job', job: job({ state: 'on_scene', kind: 'fall', offer_deadline: null }) }], 'en');
await shot('urgent', [HELLO, { type: 'job', job: job({ offer_deadline: now + 9000, kind: 'service' }) }]);
await browser.close();
