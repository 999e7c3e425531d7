// Calls to the hotline as a dispatcher meets them (issue 22), on a live anxind with telephony
// on (ANXIN_TELEPHONY__TOKEN), the test posting what the SIP server would post to
// /api/v1/telephony/calls.
//
// An elder rings from their own phone (the demo ledger gives each elder one: elder n, with
// device xs-d000n, has 138 0000 000n; the test takes the elder whose family link the demo
// printed): a `call` incident opens on their device; its row says it rings, with the number,
// and the alarm in words; a caller card pops up with the elder's name and profile. The
// signed-in dispatcher's SIP user answers: they hold the incident and the ringing stops. The
// call ends after a few seconds: the panel's Calls section and the timeline say who answered
// and for how long, and the family's page names the incident. A number nobody knows rings
// and hangs up unanswered: its
// incident is titled with the number, has no position (and no marker, no "show on map"),
// and asks for a call back. The elder rings again, in English, and nobody answers; last, a
// caller who withholds the number.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, openPhone } from './responder-support.mjs';
import { demoLinks, launchChromium, resultsDir, serverSnapshot, shoot, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 20_000 };
const TOKEN = 'e2e-telephony-token-0123456789';
// A number the demo ledger does not have.
const STRANGER = '13912345678';
const STRANGER_SHOWN = '139 1234 5678';

const rowOf = (page, id) => page.locator(`#incidents tbody tr[data-incident-id="${id}"]`);
const text = async (locator) => (await locator.textContent()).trim();
const pad2 = (n) => String(n).padStart(2, '0');
const mmss = (ms) => `${pad2(Math.floor(Math.floor(ms / 1000) / 60))}:${pad2(Math.floor(ms / 1000) % 60)}`;

describe('calls to the hotline on the console', () => {
  let daemon;
  let browser;
  let page;
  // The elder whose family link the demo printed: their device, and their own phone as a
  // network may give it (demo.rs: elder n has device xs-dNNNN and phone 1380000NNNN).
  let link;
  let elderDevice;
  let elderPhone;
  let elderPhoneShown;

  /** Posts one event of a call as the SIP server does; returns the answer's body. */
  async function sip(event) {
    const origin = new URL(daemon.consoleUrl).origin;
    const res = await fetch(`${origin}/api/v1/telephony/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(event),
    });
    assert.equal(res.status, 200, `${event.event} ${event.call_id}: ${res.status}`);
    return res.json();
  }

  /** The server's own view of an incident, from a fresh snapshot. */
  async function serverView(id) {
    const snap = await serverSnapshot(page);
    const view = snap.incidents.find((v) => v.id === id);
    assert.ok(view, `incident ${id} is open on the server`);
    return view;
  }

  before(async () => {
    daemon = await spawnDaemon({ env: { ANXIN_TELEPHONY__TOKEN: TOKEN } });
    [link] = await eventually(() => {
      const found = demoLinks(daemon.tail());
      return found.length ? found : null;
    }, 'the demo to print its family links');
    elderDevice = link.device;
    const n = /^xs-d(\d{4})$/.exec(elderDevice)[1];
    elderPhone = `+86 138-0000-${n}`;
    elderPhoneShown = `138 0000 ${n}`;
    browser = await launchChromium();
  });

  after(async () => {
    if (page) await page.screenshot({ path: join(resultsDir, 'calls-last.png') }).catch(() => {});
    await browser?.close();
    await daemon?.stop();
  });

  it('rings with the caller on screen, is taken by who answers, and keeps each call on the incident', { timeout: 120_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    page = await context.newPage();
    page.errors = watchPageErrors(page);
    await signIn(page, daemon.consoleUrl);
    const me = (await text(page.locator('#me'))).split(' · ')[0];
    assert.match(me, /\S/);

    // ---- An elder rings from their own phone. ----
    const opened = await sip({ event: 'ringing', call_id: 'e2e-call-1', from: elderPhone, to: '96110' });
    assert.equal(opened.outcome, 'opened');
    const known = opened.incident_id;
    const row = rowOf(page, known);
    await row.waitFor(SHOWS_UP);
    assert.equal(await row.getAttribute('data-device-id'), elderDevice);
    assert.equal(await row.getAttribute('data-kind'), 'call');
    assert.equal(await row.getAttribute('data-ringing'), 'true');
    assert.equal(await row.getAttribute('data-alarm-need'), 'incoming_call');
    assert.equal(await text(row.locator('[data-field="kind"]')), '热线来电');
    assert.equal(await text(row.locator('[data-field="alarm"]')), '来电 — 请接听');
    const badge = row.locator('[data-field="ringing"]');
    assert.match(await text(badge), new RegExp(`来电中\\s*${elderPhoneShown}`));
    assert.match(await text(row.locator('[data-field="target"]')), /待接听/);
    assert.equal(await text(row.locator('[data-field="dispatcher-first"]')), '请接听来电');
    const elder = (await serverView(known)).elder;
    assert.equal(elder.name, link.elder, 'the elder whose phone it is');
    assert.equal(await text(row.locator('[data-field="elder-name"]')), elder.name);
    assert.equal(await text(row.locator('[data-field="location-source"]')), '登记住址');

    // The ringing badge moves, unless the dispatcher asked for less motion.
    assert.notEqual(await badge.evaluate((b) => getComputedStyle(b).animationName), 'none');
    await page.emulateMedia({ reducedMotion: 'reduce' });
    assert.equal(await badge.evaluate((b) => getComputedStyle(b).animationName), 'none');
    await page.emulateMedia({ reducedMotion: 'no-preference' });

    // The caller card: who is calling, before anybody picks up.
    const card = page.locator('#call-pop .call-pop-card[data-call-id="e2e-call-1"]');
    await card.waitFor(SHOWS_UP);
    assert.equal(await text(card.locator('[data-field="caller-name"]')), elder.name);
    assert.equal(await text(card.locator('[data-field="caller-number"]')), elderPhoneShown);
    assert.equal(await text(card.locator('[data-field="caller-match"]')), '长者电话');
    assert.match(await text(card.locator('[data-field="cp-address"]')), new RegExp(elder.address.slice(0, 8)));
    assert.match(await text(card.locator('[data-field="ringing-for"]')), /已响铃 \d\d:\d\d/);
    const rowText = await row.textContent();
    for (const raw of ['incoming_call', 'elder_phone', 'undefined', 'null', 'call:']) {
      assert.ok(!rowText.includes(raw), `the row shows no raw code (${raw}): ${rowText}`);
    }
    await shoot(page, 'console-calls-ringing-zh.png');

    // ---- The signed-in dispatcher's phone picks up: they hold it, and it no longer rings. ----
    assert.equal((await sip({ event: 'answered', call_id: 'e2e-call-1', by: 'dispatcher' })).outcome, 'recorded');
    await row.locator('[data-field="claimed-by"]', { hasText: '我' }).waitFor(SHOWS_UP);
    await badge.waitFor({ state: 'detached', ...SHOWS_UP });
    assert.equal(await row.getAttribute('data-ringing'), null);
    assert.match(await text(row.locator('[data-field="call-live"]')), new RegExp(`通话中 · ${me}`));
    await card.waitFor({ state: 'detached', ...SHOWS_UP });
    assert.equal(await page.locator('#call-pop').isVisible(), false, 'no call rings: no card');
    assert.equal(await row.locator('[data-field="alarm"]').count(), 0, 'answering silenced the alarm');

    await row.click();
    const detail = page.locator('#detail');
    const call = detail.locator('[data-section="calls"] li[data-call-id="e2e-call-1"]');
    await call.locator('[data-field="call-state"][data-state="talking"]').waitFor(SHOWS_UP);
    assert.equal(await text(call.locator('[data-field="call-answered-by"]')), `${me} 接听`);
    assert.equal(await page.locator('#detail-claim').getAttribute('data-claimed'), 'me');

    // ---- A few seconds' talk, then both hang up. ----
    await page.waitForTimeout(2_200);
    assert.equal((await sip({ event: 'ended', call_id: 'e2e-call-1', reason: 'bye' })).outcome, 'recorded');
    await detail.locator('[data-section="calls"] li[data-call-id="e2e-call-1"][data-call-state="ended"]').waitFor(SHOWS_UP);
    const ended = (await serverView(known)).calls.find((c) => c.call_id === 'e2e-call-1');
    const talk = mmss(ended.ended_at - ended.answered_at);
    assert.ok(ended.ended_at - ended.answered_at >= 2_000, 'the call lasted the seconds waited');
    assert.equal(await text(call.locator('[data-field="call-talk"]')), `通话 ${talk}`);
    assert.match(await text(call.locator('[data-field="call-from"]')), new RegExp(elderPhoneShown));
    assert.equal(await text(call.locator('[data-field="call-caller"]')), '长者电话');
    assert.equal(await call.locator('[data-field="call-end"]').count(), 0, 'hung up after talking: nothing more to say');
    assert.equal(await row.locator('[data-field="call-live"]').count(), 0);
    // The three rows of the call on the timeline, in words.
    const timeline = detail.locator('#timeline');
    await timeline.locator('li[data-change="call_ended"]').waitFor(SHOWS_UP);
    assert.equal(await text(timeline.locator('li[data-change="call_rang"] .tl-text')), `来电 ${elderPhoneShown}（长者电话）`);
    assert.equal(await text(timeline.locator('li[data-change="call_rang"] .tl-actor')), '来电人');
    assert.equal(await text(timeline.locator('li[data-change="call_answered"] .tl-text')), `接听：${me}`);
    assert.equal(await text(timeline.locator('li[data-change="call_ended"] .tl-text')), `通话结束：已挂断，通话 ${talk}`);
    assert.match(await text(timeline.locator('li[data-change="opened"] .tl-text')), /^立案：热线来电，登记住址$/);
    const panelText = await detail.textContent();
    for (const raw of ['call_rang', 'call_answered', 'call_ended', 'elder_phone', 'bye', 'undefined', 'ev_']) {
      assert.ok(!panelText.includes(raw), `the panel shows no raw code (${raw})`);
    }
    await detail.locator('[data-section="calls"]').scrollIntoViewIfNeeded();
    await shoot(page, 'console-calls-answered-zh.png');
    await page.locator('#detail-close').click();

    // The family's page names the incident in words.
    const phone = await openPhone(browser);
    phone.page.errors = watchPageErrors(phone.page);
    await phone.page.goto(link.url);
    const familyCard = phone.page.locator(`[data-incident="${known}"]`);
    await familyCard.waitFor(SHOWS_UP);
    assert.equal(await text(familyCard.locator('[data-field="kind"]')), '拨打了服务热线');
    assert.match(await text(familyCard.locator('[data-field="pressed"]')), /^\d{1,2}:\d{2}.* 来电，已过 /, 'a call, not a press');
    assert.deepEqual(phone.page.errors, [], 'the family page logged errors');
    await phone.context.close();

    // ---- A number nobody knows rings, and hangs up before anybody answers. ----
    const stranger = await sip({ event: 'ringing', call_id: 'e2e-call-2', from: STRANGER, to: '96110' });
    assert.equal(stranger.outcome, 'opened');
    const unknown = rowOf(page, stranger.incident_id);
    await unknown.waitFor(SHOWS_UP);
    assert.equal(await unknown.getAttribute('data-device-id'), `call:${STRANGER}`);
    assert.equal(await text(unknown.locator('[data-field="elder-name"]')), `未知来电 ${STRANGER_SHOWN}`);
    assert.equal(await text(unknown.locator('[data-field="location-source"]')), '位置不明');
    assert.match(await text(unknown.locator('[data-field="ringing"]')), new RegExp(`来电中\\s*${STRANGER_SHOWN}`));
    const strangerCard = page.locator('#call-pop .call-pop-card[data-call-id="e2e-call-2"]');
    await strangerCard.waitFor(SHOWS_UP);
    assert.equal(await text(strangerCard.locator('[data-field="caller-name"]')), `未知来电 ${STRANGER_SHOWN}`);
    assert.equal(await text(strangerCard.locator('[data-field="caller-match"]')), '未知号码');
    assert.match(await text(strangerCard.locator('[data-field="caller-hint"]')), /台账中没有这个号码/);
    // Nowhere known: no marker at (0, 0), while the elder's call is on the map at home.
    await page.locator(`[data-marker="incident"][data-id="${known}"]`).waitFor(SHOWS_UP);
    assert.equal(await page.locator(`[data-marker="incident"][data-id="${stranger.incident_id}"]`).count(), 0, 'no marker for a caller nobody can place');

    assert.equal((await sip({ event: 'ended', call_id: 'e2e-call-2', reason: 'cancel' })).outcome, 'recorded');
    await unknown.locator('[data-field="alarm"]', { hasText: '未接来电 — 请回拨' }).waitFor(SHOWS_UP);
    assert.equal(await unknown.getAttribute('data-alarm-need'), 'missed_call');
    assert.equal(await unknown.locator('[data-field="ringing"]').count(), 0);
    await strangerCard.waitFor({ state: 'detached', ...SHOWS_UP });
    assert.match(await text(unknown.locator('[data-field="target"]')), /待回拨/);
    assert.equal(await text(unknown.locator('[data-field="dispatcher-first"]')), '未接来电，请回拨');

    await unknown.click();
    await page.locator('#detail-title [data-field="detail-elder"]', { hasText: `未知来电 ${STRANGER_SHOWN}` }).waitFor(SHOWS_UP);
    assert.match(await text(page.locator('#detail-title')), /^热线来电\s+未知来电 139 1234 5678$/);
    assert.equal(await text(detail.locator('[data-section="location"] [data-field="location-source"] dd')), '位置不明');
    assert.equal(await detail.locator('[data-action="show-on-map"]').count(), 0, 'nothing to show on the map');
    assert.match(await text(detail.locator('[data-section="caller"] [data-field="caller-number"] dd')), new RegExp(STRANGER_SHOWN));
    const missed = detail.locator('[data-section="calls"] li[data-call-id="e2e-call-2"]');
    assert.equal(await missed.getAttribute('data-call-state'), 'missed');
    assert.equal(await text(missed.locator('[data-field="call-end"]')), '对方挂断（未接）');
    assert.equal(await text(missed.locator('[data-field="call-caller"]')), '未知号码');
    assert.equal(await missed.locator('[data-field="call-talk"]').count(), 0);
    await timeline.locator('li[data-change="call_ended"]').waitFor(SHOWS_UP);
    assert.equal(await text(timeline.locator('li[data-change="call_rang"] .tl-text')), `来电 ${STRANGER_SHOWN}（未知号码）`);
    assert.equal(await text(timeline.locator('li[data-change="call_ended"] .tl-text')), '通话结束：对方挂断（未接）');
    assert.equal(await text(timeline.locator('li[data-change="opened"] .tl-text')), '立案：热线来电，位置不明');
    assert.equal(await text(timeline.locator('li[data-change="opened"] .tl-actor')), '来电人');
    const strangerPanel = await detail.textContent();
    for (const raw of ['call:', 'unknown', 'cancel', 'missed_call', 'undefined', 'null']) {
      assert.ok(!strangerPanel.includes(raw), `the panel shows no raw code (${raw})`);
    }
    await shoot(page, 'console-calls-missed-zh.png');

    // ---- In English: the same words, and the elder ringing again with nobody answering. ----
    await page.locator('#lang-toggle').click();
    await page.locator('#detail-title [data-field="detail-elder"]', { hasText: `${STRANGER_SHOWN} (unknown caller)` }).waitFor(SHOWS_UP);
    assert.equal(await text(unknown.locator('[data-field="alarm"]')), 'Missed call — call back');
    assert.equal(await text(unknown.locator('[data-field="kind"]')), 'Hotline call');
    assert.equal(await text(unknown.locator('[data-field="location-source"]')), 'Location unknown');
    assert.equal(await text(missed.locator('[data-field="call-end"]')), 'caller hung up (unanswered)');
    await timeline.locator('li[data-change="call_rang"]', { hasText: `Call from ${STRANGER_SHOWN} (unknown number)` }).waitFor(SHOWS_UP);
    await shoot(page, 'console-calls-missed-en.png');
    await page.locator('#detail-close').click();

    const again = await sip({ event: 'ringing', call_id: 'e2e-call-3', from: elderPhone, to: '96110' });
    assert.deepEqual(again, { outcome: 'joined', incident_id: known }, 'a second call joins the incident the device has open');
    const againCard = page.locator('#call-pop .call-pop-card[data-call-id="e2e-call-3"]');
    await againCard.waitFor(SHOWS_UP);
    assert.equal(await text(againCard.locator('[data-field="caller-name"]')), elder.name);
    assert.equal(await text(againCard.locator('[data-field="caller-match"]')), "elder's phone");
    assert.match(await text(row.locator('[data-field="ringing"]')), new RegExp(`Ringing\\s*${elderPhoneShown}`));
    // It rings on an incident the dispatcher holds already: still a call to pick up.
    assert.equal(await text(row.locator('[data-field="dispatcher-first"]')), 'Answer the call');
    await shoot(page, 'console-calls-ringing-en.png');
    assert.equal((await sip({ event: 'ended', call_id: 'e2e-call-3', reason: 'no_answer' })).outcome, 'recorded');
    await row.locator('[data-field="alarm"]', { hasText: 'Missed call — call back' }).waitFor(SHOWS_UP);
    await againCard.waitFor({ state: 'detached', ...SHOWS_UP });
    await row.click();
    const second = detail.locator('[data-section="calls"] li[data-call-id="e2e-call-3"]');
    await second.waitFor(SHOWS_UP);
    assert.equal(await second.getAttribute('data-call-state'), 'missed');
    assert.equal(await text(second.locator('[data-field="call-end"]')), 'no answer');
    // The first call keeps its answer and talk time beside it.
    assert.equal(await text(call.locator('[data-field="call-talk"]')), `talked ${talk}`);
    assert.equal(await text(call.locator('[data-field="call-answered-by"]')), `answered by ${me}`);
    await timeline.locator('li[data-change="call_ended"]', { hasText: 'Call ended: no answer' }).waitFor(SHOWS_UP);
    await page.locator('#detail-close').click();

    // ---- A caller who withholds the number: nobody to call back, no stranger's history. ----
    const withheld = await sip({ event: 'ringing', call_id: 'e2e-call-4', from: 'anonymous', to: '96110' });
    assert.equal(withheld.outcome, 'opened');
    const anon = rowOf(page, withheld.incident_id);
    await anon.waitFor(SHOWS_UP);
    assert.equal(await text(anon.locator('[data-field="elder-name"]')), 'Caller with number withheld');
    const anonCard = page.locator('#call-pop .call-pop-card[data-call-id="e2e-call-4"]');
    await anonCard.waitFor(SHOWS_UP);
    assert.equal(await text(anonCard.locator('[data-field="caller-number"]')), 'number withheld');
    assert.match(await text(anonCard.locator('[data-field="caller-hint"]')), /cannot be called back/);
    await anon.click();
    await detail.locator('[data-section="calls"] li[data-call-id="e2e-call-4"][data-call-state="ringing"]').waitFor(SHOWS_UP);
    assert.equal(await text(detail.locator('[data-section="caller"] [data-field="caller-number"] dd')), 'number withheld');
    assert.equal(await detail.locator('[data-section="caller"] a.phone').count(), 0, 'no number to dial');
    assert.equal(await detail.locator('[data-section="history"]').count(), 0, 'every withheld caller shares one stand-in: no history');
    await anonCard.waitFor({ state: 'detached', ...SHOWS_UP });
    assert.match(await text(detail.locator('#detail-sub [data-field="ringing"]')), /Ringing\s*number withheld/);
    const anonPanel = await detail.textContent();
    for (const raw of ['call:', 'withheld_', 'anonymous', 'undefined']) {
      assert.ok(!anonPanel.includes(raw), `the panel shows no raw code (${raw})`);
    }

    assert.deepEqual(page.errors, [], 'the page logged errors');
  });
});
