// The console's screens against a scripted feed: sign-in, the queue with its timers and
// claims, the map, the incident panel with its timeline, every action's frame, keyboard
// shortcuts and the alarm for a new emergency. Playwright stands in for the server, so the
// page's side of the protocol is checked exactly, without a daemon.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { launchChromium, resultsDir, serveAssets, watchPageErrors } from './support.mjs';
import { ME, OTHER, TIMELINE, mixedIncidents, roster, view, welcome } from './console-fixtures.mjs';

const ORIGIN = 'http://console.test';
const WAIT = { timeout: 10_000 };

/** A scripted /ws that records what the page sends and answers queries on request. */
function scriptedFeed(page) {
  const sockets = [];
  const sent = [];
  const waiters = [];
  const ready = page.routeWebSocket(/\/ws(\?.*)?$/, (ws) => {
    sockets.push(ws);
    ws.onMessage((text) => {
      sent.push(JSON.parse(String(text)));
      for (const w of waiters.splice(0)) w();
    });
    for (const w of waiters.splice(0)) w();
  });
  async function until(check, what) {
    const deadline = Date.now() + WAIT.timeout;
    for (;;) {
      const found = check();
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; sent: ${JSON.stringify(sent)}`);
      await new Promise((res) => {
        waiters.push(res);
        setTimeout(res, 100);
      });
    }
  }
  return {
    ready,
    sockets,
    sent,
    connection: (n) => until(() => sockets[n - 1], `connection #${n}`),
    /** The next frame the page sends that matches, after `from` frames already seen. */
    frame: (match, from = 0) =>
      until(() => sent.slice(from).find((f) => Object.entries(match).every(([k, v]) => f[k] === v)), JSON.stringify(match)),
  };
}

const send = (ws, msg) => ws.send(JSON.stringify(msg));

// Counts every oscillator the page starts: the alarm is Web Audio beeps, no audio files.
const COUNT_BEEPS = () => {
  window.__beeps = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function counted(...args) {
    window.__beeps += 1;
    return start.apply(this, args);
  };
};

describe('console screens against a scripted feed', () => {
  let browser;
  let page;
  let feed;
  let errors;
  let session;

  before(async () => {
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    errors = watchPageErrors(page);
    await page.addInitScript(COUNT_BEEPS);
    session = await serveAssets(page, ORIGIN, { user: null });
    feed = scriptedFeed(page);
    await feed.ready;
  });

  afterEach(async () => {
    await page.close();
    assert.deepEqual(errors, [], 'the page logged errors');
  });

  async function signIn(user = 'dispatcher') {
    await page.goto(`${ORIGIN}/console`);
    await page.locator('#signin-user').fill(user);
    await page.locator('#signin-password').fill('anxin-demo');
    await page.locator('#signin-submit').click();
    const ws = await feed.connection(1);
    send(ws, welcome({ user: user === 'dispatcher' ? ME : OTHER }));
    send(ws, roster());
    return ws;
  }

  it('shows nothing but the sign-in form until signed in, and refuses a wrong password', async () => {
    await page.goto(`${ORIGIN}/console`);
    await page.locator('#signin-form').waitFor(WAIT);
    assert.equal(await page.locator('#app').isHidden(), true);
    assert.equal(await page.locator('#incidents').isVisible(), false);
    assert.equal(feed.sockets.length, 0, 'no feed before sign-in');

    await page.locator('#signin-user').fill('dispatcher');
    await page.locator('#signin-password').fill('wrong');
    await page.locator('#signin-submit').click();
    await page.locator('#signin-error', { hasText: '用户名或密码不正确' }).waitFor(WAIT);
    assert.equal(await page.locator('#app').isHidden(), true);
    assert.equal(feed.sockets.length, 0);

    await page.locator('#signin-password').fill('anxin-demo');
    await page.locator('#signin-submit').click();
    const ws = await feed.connection(1);
    send(ws, welcome());
    send(ws, roster());
    send(ws, { type: 'snapshot', seq: 5, server_time: Date.now(), incidents: [view(1)] });
    await page.locator('[data-incident-id="1"]').waitFor(WAIT);
    assert.match(await page.locator('#me').textContent(), /值班调度员/);

    // Signing out goes back to the form and closes the feed.
    await page.locator('#signout').click();
    await page.locator('#signin-form').waitFor(WAIT);
    assert.equal(await page.locator('#app').isHidden(), true);
    assert.equal(session.user, null);
  });

  it('goes back to sign-in when the server closes the feed with 4401', async () => {
    session.user = ME;
    await page.goto(`${ORIGIN}/console`);
    const ws = await feed.connection(1);
    send(ws, welcome());
    await page.locator('#conn-status[data-state="connected"]').waitFor(WAIT);
    await ws.close({ code: 4401, reason: 'sign in first' });
    await page.locator('#signin-error', { hasText: '登录已失效' }).waitFor(WAIT);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(feed.sockets.length, 1, 'no reconnect without a session');
  });

  it('renders the queue with targets, claims and the map with every marker', async () => {
    const ws = await signIn();
    send(ws, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: mixedIncidents() });
    await page.locator('#incidents[data-loaded="true"]').waitFor(WAIT);
    const ids = await page.locator('#incidents tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.incidentId));
    // Priority first (1: SOS, fall, fire), then the oldest press.
    assert.deepEqual(ids, ['2', '7', '3', '4', '1', '6', '5']);

    const age = (id) => page.locator(`[data-incident-id="${id}"] [data-field="since"]`).getAttribute('data-age');
    // Each clock is coloured by its own rung's target, not by the time since the press.
    assert.equal(await age('1'), 'warn', "8 s left of the offer's own deadline is amber");
    assert.match(await page.locator('[data-incident-id="1"] [data-field="target"]').textContent(), /^派单 1\/3 · 还剩 0:0\d$/);
    assert.equal(await age('4'), 'late', 'nobody going: the target is missed, red');
    assert.equal(await page.locator('[data-incident-id="4"] [data-field="target"]').getAttribute('data-rung'), 'dispatcher');
    assert.equal(await age('2'), 'ok', '10 of 30 minutes left to be on scene is still calm');
    assert.match(await page.locator('[data-incident-id="2"] [data-field="target"]').textContent(), /^\d\d:\d\d 前到场 · 还剩 (19|20):\d\d$/);
    assert.equal(await age('7'), 'done');
    assert.equal(await age('5'), 'late', 'past its on-scene deadline and not on scene');
    assert.match(await page.locator('[data-incident-id="5"] [data-field="target"]').textContent(), /超时 1:0\d/);
    assert.equal(await age('6'), 'done', 'an unreadable message with no reminder due has no clock running');

    assert.equal(await page.locator('[data-incident-id="2"] [data-field="claimed-by"]').textContent(), '我');
    assert.equal(await page.locator('[data-incident-id="3"] [data-field="claimed-by"]').textContent(), OTHER.name);
    assert.match(await page.locator('[data-incident-id="7"] [data-field="cancel"]').textContent(), /请求取消/);
    assert.match(await page.locator('[data-incident-id="4"] [data-field="kind"]').textContent(), /烟感/);
    assert.match(await page.locator('[data-incident-id="3"] [data-field="emergency-number"]').textContent(), /120/);

    await page.waitForFunction(() => document.querySelectorAll('[data-marker="incident"]').length === 7, null, WAIT);
    assert.equal(await page.locator('[data-marker="responder"]').count(), 9);
    assert.equal(await page.locator('[data-marker="station"]').count(), 5);
    assert.equal(await page.locator('.service-circle').count(), 5);
    assert.equal(await page.locator('[data-marker="responder"].st-off_duty').count(), 1);
    assert.match(await page.locator('#legend-circle').textContent(), /15 分钟 × 电动车 4 米\/秒 ÷ 绕行 1\.3/);

    // A station's circle is 15 × 240 / 1.3 ≈ 2.77 km; at the drawn scale the radius matches.
    const radius = (await page.locator('.service-circle').first().boundingBox()).width / 2;
    assert.ok(radius > 10, `circle radius ${radius}px`);

    await mkdir(join(resultsDir, 'screenshots'), { recursive: true });
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.screenshot({ path: join(resultsDir, 'screenshots', 'ui-queue.png') });
  });

  it('opens an incident with the elder profile, contacts to copy and the full timeline', async () => {
    const ws = await signIn();
    send(ws, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: mixedIncidents() });
    await page.locator('[data-incident-id="3"]').click();
    const panel = page.locator('#detail');
    await panel.waitFor({ state: 'visible', ...WAIT });
    assert.equal(await panel.getAttribute('data-incident-id'), '3');
    for (const [fieldName, text] of [
      ['age', '82'],
      ['lives-alone', '是'],
      ['conditions', '高血压、糖尿病'],
      ['medications', '氨氯地平'],
      ['mobility', '助行器'],
      ['language', '昆明话'],
      ['door-notes', '302'],
    ]) {
      assert.match(await panel.locator(`[data-field="${fieldName}"]`).textContent(), new RegExp(text), fieldName);
    }
    assert.equal(await panel.locator('[data-field="contact"]').count(), 2);
    assert.match(await panel.locator('[data-field="contact"]').first().textContent(), /张丽.*女儿.*13911112222/);
    assert.match(await panel.locator('[data-section="location"]').textContent(), /登记住址[\s\S]*离家过远/);
    assert.match(await panel.locator('[data-section="press"] [data-field="press-count"]').textContent(), /3/);
    assert.match(await panel.locator('[data-field="claim-status"]').textContent(), /调度员二 正在处理/);

    // Copy puts the number on the clipboard.
    await panel.locator('[data-field="contact"]').first().locator('[data-copy]').click();
    await page.locator('.toast', { hasText: '13911112222' }).waitFor(WAIT);

    const query = await feed.frame({ type: 'timeline', incident_id: 3 });
    send(ws, { type: 'result', request_id: query.request_id, ok: true, events: TIMELINE(3) });
    const timeline = page.locator('#timeline li.tl');
    await page.waitForFunction(() => document.querySelectorAll('#timeline li.tl').length === 10, null, WAIT);
    const texts = await timeline.allTextContents();
    assert.match(texts[0], /设备 xs-d0003.*立案：紧急呼叫，设备定位/);
    assert.match(texts[2], /派单给 杨敏/);
    assert.match(texts[5], /调度员 调度员二.*由 调度员二 认领/);
    assert.match(texts[6], /通话：联系人 张丽\(女儿\) 13911112222，已接通: 女儿 20 分钟后到/);
    assert.match(texts[7], /转报 120，编号 KM-2024-0012/);
    assert.match(texts[8], /备注：老人意识清醒/);
    assert.match(texts[9], /something_new \(detail: 42\)/);

    // A change to the incident asks for the timeline again.
    const before = feed.sent.length;
    send(ws, { type: 'incident', seq: 30, incident: view(3, { ...mixedIncidents()[2], seq: 30, press_count: 4 }) });
    await feed.frame({ type: 'timeline', incident_id: 3 }, before);

    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.screenshot({ path: join(resultsDir, 'screenshots', 'ui-detail.png') });

    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden', ...WAIT });
  });

  it('sends every action as the protocol says', async () => {
    const ws = await signIn();
    send(ws, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: mixedIncidents() });
    await page.locator('[data-incident-id="1"]').click();
    await page.locator('#detail[data-incident-id="1"]').waitFor(WAIT);
    const answer = async (match, extra = {}) => {
      const f = await feed.frame(match, answer.seen);
      answer.seen = feed.sent.indexOf(f) + 1;
      send(ws, { type: 'result', request_id: f.request_id, ok: true, ...extra });
      return f;
    };
    answer.seen = 0;

    await page.locator('#detail [data-action="claim"]').click();
    await answer({ type: 'command', action: 'claim', incident_id: 1 });

    await page.locator('#detail [data-action="note"]').click();
    await page.locator('#detail-form textarea[name="text"]').fill('已联系家属');
    await page.locator('#detail-form button[type="submit"]').click();
    const note = await answer({ type: 'command', action: 'note' });
    assert.equal(note.text, '已联系家属');
    await page.locator('#detail-form').waitFor({ state: 'hidden', ...WAIT });

    await page.locator('#detail [data-action="call"]').click();
    await page.locator('#detail-form select[name="who"]').selectOption({ label: '联系人 张丽 (女儿)' });
    assert.equal(await page.locator('#detail-form input[name="number"]').inputValue(), '13911112222');
    await page.locator('#detail-form select[name="outcome"]').selectOption('no_answer');
    await page.locator('#detail-form button[type="submit"]').click();
    const call = await answer({ type: 'command', action: 'call' });
    assert.deepEqual([call.who, call.number, call.outcome], ['contact:张丽(女儿)', '13911112222', 'no_answer']);

    await page.locator('#detail [data-action="escalate"]').click();
    await page.locator('#detail-form select[name="number"]').selectOption('110');
    await page.locator('#detail-form input[name="reference"]').fill('JJ-77');
    await page.locator('#detail-form button[type="submit"]').click();
    const escalate = await answer({ type: 'command', action: 'escalate' });
    assert.deepEqual([escalate.number, escalate.reference], ['110', 'JJ-77']);

    // A reason is required for a false alarm.
    await page.locator('#detail [data-action="false_alarm"]').click();
    await page.locator('#detail-form button[type="submit"]').click();
    await page.locator('#detail-form .form-error', { hasText: '请填写原因' }).waitFor(WAIT);
    await page.locator('#detail-form textarea[name="reason"]').fill('老人误按');
    await page.locator('#detail-form button[type="submit"]').click();
    const falseAlarm = await answer({ type: 'command', action: 'false_alarm' });
    assert.equal(falseAlarm.reason, '老人误按');

    await page.locator('#detail [data-action="resolve"]').click();
    await page.locator('#detail-form select[name="code"]').selectOption('taken_to_hospital');
    await page.locator('#detail-form input[name="text"]').fill('云大医院');
    await page.locator('#detail-form button[type="submit"]').click();
    const resolve = await answer({ type: 'command', action: 'resolve' });
    assert.equal(resolve.outcome, 'taken_to_hospital: 云大医院');

    // Suggestions, ranked, with ETA; assign the second.
    await page.locator('#detail [data-action="assign"]').click();
    await answer({ type: 'suggest', incident_id: 1 }, {
      suggestions: [
        { responder: { id: 'xs-r011', name: '王伟', phone: '1', mode: 'foot', station_id: 'xs-s01' }, distance_m: 350, eta_min: 5, within_circle: true, has_skill: true },
        { responder: { id: 'xs-r014', name: '赵磊', phone: '2', mode: 'ebike', station_id: 'xs-s01' }, distance_m: 1900, eta_min: 10, within_circle: true, has_skill: false },
      ],
    });
    await page.locator('#detail-form .suggestion').nth(1).waitFor(WAIT);
    assert.match(await page.locator('#detail-form .suggestion').first().textContent(), /王伟.*约 5 分钟/);
    await page.locator('#detail-form .suggestion').nth(1).locator('[data-action="assign-to"]').click();
    const assign = await answer({ type: 'command', action: 'assign' });
    assert.equal(assign.responder_id, 'xs-r014');

    // A refusal is worded from its code and args in the page's language, with names for ids.
    await page.locator('#detail [data-action="cancel"]').click();
    await page.locator('#detail-form textarea[name="reason"]').fill('家属已到');
    await page.locator('#detail-form button[type="submit"]').click();
    const cancel = await feed.frame({ type: 'command', action: 'cancel' });
    send(ws, {
      type: 'result',
      request_id: cancel.request_id,
      ok: false,
      error: 'incident 1 is claimed by dispatcher2',
      code: 'claimed_by_other',
      args: { incident: '1', by: 'dispatcher2' },
    });
    await page.locator('#detail-form .form-error', { hasText: '事件 #1 已由 调度员二 认领' }).waitFor(WAIT);
    // A code this page does not know falls back to the server's English.
    const sent = feed.sent.length;
    await page.locator('#detail-form button[type="submit"]').click();
    const again = await feed.frame({ type: 'command', action: 'cancel' }, sent);
    send(ws, { type: 'result', request_id: again.request_id, ok: false, error: 'the moon is in the way', code: 'lunar_eclipse', args: {} });
    await page.locator('#detail-form .form-error', { hasText: 'the moon is in the way' }).waitFor(WAIT);
  });

  it('sounds and flashes what the engine alarms until it is silenced, and keys work', async () => {
    const ws = await signIn();
    send(ws, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: [view(5, { kind: 'service', priority: 3, offers: [], alarm: null })] });
    await page.locator('[data-incident-id="5"]').waitFor(WAIT);
    assert.equal(await page.evaluate(() => window.__beeps), 0, 'a snapshot with no alarm does not sound');

    const alarm = (need, level, raised) => ({ need, level, raised_seq: raised, raised_at: Date.now(), reminders: 0 });
    send(ws, { type: 'incident', seq: 21, incident: view(8, { seq: 21, alarm: alarm('new_emergency', 'urgent', 21) }) });
    const row = page.locator('[data-incident-id="8"]');
    await row.waitFor(WAIT);
    assert.match(await row.getAttribute('class'), /\balarm\b/);
    assert.equal(await row.getAttribute('data-alarm'), 'urgent');
    await page.waitForFunction(() => window.__beeps >= 3, null, WAIT);
    assert.equal(await page.locator('#count-alarm').textContent(), '1');
    assert.match(await page.locator('[data-marker="incident"][data-id="8"]').getAttribute('class'), /alarm/);

    // An arrival the engine does not alarm is quiet.
    const beeps = await page.evaluate(() => window.__beeps);
    send(ws, { type: 'incident', seq: 22, incident: view(9, { seq: 22, kind: 'service', priority: 3, alarm: null }) });
    await page.locator('[data-incident-id="9"]').waitFor(WAIT);
    assert.doesNotMatch(await page.locator('[data-incident-id="9"]').getAttribute('class'), /\balarm\b/);
    assert.equal(await page.evaluate(() => window.__beeps), beeps, 'the service request did not sound');

    // Keys: j moves to the first row (the SOS), a acknowledges the alarm shown (by raised_seq);
    // typing in a field is not a key.
    await page.keyboard.press('j');
    assert.equal(await page.locator('tr.selected').getAttribute('data-incident-id'), '8');
    await page.keyboard.press('a');
    const ack = await feed.frame({ type: 'command', action: 'acknowledge', incident_id: 8 });
    assert.equal(ack.alarm, 21, 'the acknowledge names the alarm shown');
    // Meanwhile the engine raised a newer alarm: the acknowledge is refused, the console says
    // so, and the row stays flagged with the new one.
    send(ws, { type: 'incident', seq: 23, incident: view(8, { seq: 23, state: 'awaiting_dispatcher', alarm: alarm('nobody_going', 'critical', 23) }) });
    send(ws, { type: 'result', request_id: ack.request_id, ok: false, error: 'incident 8 has a newer alarm', code: 'alarm_changed', args: { incident: '8' } });
    await page.locator('.toast-error', { hasText: '事件 #8 出现了新警报（无人前往）' }).waitFor(WAIT);
    // The toast is shown at once; rows are drawn on the next frame.
    await page.locator('[data-incident-id="8"][data-alarm="critical"]').waitFor(WAIT);
    assert.match(await row.getAttribute('class'), /\balarm\b/);
    const sent = feed.sent.length;
    await page.keyboard.press('a');
    const ack2 = await feed.frame({ type: 'command', action: 'acknowledge', incident_id: 8 }, sent);
    assert.equal(ack2.alarm, 23);
    send(ws, { type: 'result', request_id: ack2.request_id, ok: true });
    assert.match(await row.getAttribute('class'), /\balarm\b/, 'still flashing until the engine says it is silenced');
    send(ws, { type: 'incident', seq: 24, incident: view(8, { seq: 24, state: 'awaiting_dispatcher', alarm: null }) });
    await page.waitForFunction(() => !document.querySelector('[data-incident-id="8"]').classList.contains('alarm'), null, WAIT);
    assert.equal(await page.locator('#count-alarm').textContent(), '0');

    await page.keyboard.press('Enter');
    await page.locator('#detail[data-incident-id="8"]').waitFor(WAIT);
    await page.keyboard.press('n');
    await page.locator('#detail-form textarea[name="text"]').waitFor(WAIT);
    await page.keyboard.type('cans');
    assert.equal(await page.locator('#detail-form textarea[name="text"]').inputValue(), 'cans');
    assert.equal(feed.sent.filter((f) => f.action === 'claim').length, 0, 'typing "c" did not claim');
    await page.keyboard.press('Escape');
    await page.locator('#detail-form').waitFor({ state: 'hidden', ...WAIT });
    await page.keyboard.press('c');
    await feed.frame({ type: 'command', action: 'claim', incident_id: 8 });
    await page.keyboard.press('?');
    await page.locator('#shortcuts[open]').waitFor(WAIT);
    assert.match(await page.locator('#shortcuts').textContent(), /认领/);
    await page.keyboard.press('Escape');

    // Somebody else claiming a new emergency silences it (the engine's next view has no alarm).
    send(ws, { type: 'incident', seq: 25, incident: view(10, { seq: 25, alarm: alarm('new_emergency', 'urgent', 25) }) });
    await page.locator('[data-incident-id="10"].alarm').waitFor(WAIT);
    send(ws, { type: 'incident', seq: 26, incident: view(10, { seq: 26, claimed_by: { id: OTHER.id, name: OTHER.name }, alarm: null }) });
    await page.waitForFunction(() => !document.querySelector('[data-incident-id="10"]').classList.contains('alarm'), null, WAIT);
  });

  it('opens an incident or a responder from the map', async () => {
    const ws = await signIn();
    send(ws, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: mixedIncidents() });
    await page.waitForFunction(() => document.querySelectorAll('[data-marker="incident"]').length === 7, null, WAIT);
    await page.locator('[data-marker="responder"][data-id="xs-r013"]').click();
    const card = page.locator('#map-card');
    await card.waitFor({ state: 'visible', ...WAIT });
    assert.match(await card.textContent(), /黄静[\s\S]*执行任务/);
    await card.locator('[data-action="open-job"]').click();
    await page.locator('#detail[data-incident-id="2"]').waitFor(WAIT);
    await page.keyboard.press('Escape');

    // A live change moves the responder.
    // Where a marker is drawn, in page pixels (Leaflet places markers with CSS).
    const place = (el) => {
      const r = el.getBoundingClientRect();
      return `${r.x},${r.y}`;
    };
    const before = await page.locator('[data-marker="responder"][data-id="xs-r011"]').evaluate(place);
    send(ws, { type: 'responder', responder: { ...roster().responders[0], status: 'offered', position: { lat: 25.035, lon: 102.7 } } });
    await page.waitForFunction(
      (b) => {
        const el = document.querySelector('[data-marker="responder"][data-id="xs-r011"]');
        const r = el.getBoundingClientRect();
        return `${r.x},${r.y}` !== b && el.classList.contains('st-offered');
      },
      before,
      WAIT,
    );

    await page.locator('[data-marker="incident"][data-id="4"]').click({ force: true });
    await page.locator('#detail[data-incident-id="4"]').waitFor(WAIT);

    // Pan and zoom move the markers; tiles that fail to load leave the plain map working.
    await page.keyboard.press('Escape');
    const map = page.locator('#map');
    const box = await map.boundingBox();
    const station = page.locator('[data-marker="station"][data-id="xs-s01"]');
    const t0 = await station.evaluate(place);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -400);
    await page.waitForFunction(
      (t) => {
        const r = document.querySelector('[data-marker="station"][data-id="xs-s01"]').getBoundingClientRect();
        return `${r.x},${r.y}` !== t;
      },
      t0,
      WAIT,
    );
    const t1 = await station.evaluate(place);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 80, box.y + box.height / 2 + 30, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(
      (t) => {
        const r = document.querySelector('[data-marker="station"][data-id="xs-s01"]').getBoundingClientRect();
        return `${r.x},${r.y}` !== t;
      },
      t1,
      WAIT,
    );
    assert.equal(await page.locator('#detail').isHidden(), true, 'a drag is not a click');
  });

  it('draws tiles when a tile URL is set, and carries on without the ones that fail', async () => {
    let asked = 0;
    let refused = 0;
    await page.route('http://tiles.test/**', (route) => {
      asked += 1;
      const m = /\/(\d+)\/(\d+)\/(\d+)\.png$/.exec(route.request().url());
      // Every other tile is unreachable.
      if (m && (Number(m[2]) + Number(m[3])) % 2 === 0) {
        refused += 1;
        return route.abort();
      }
      const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkaGCoBwAChQGAMqO2RAAAAABJRU5ErkJggg==', 'base64');
      return route.fulfill({ status: 200, contentType: 'image/png', body: png });
    });
    const ws = await signIn();
    send(ws, welcome({ tileUrl: 'http://tiles.test/{z}/{x}/{y}.png' }));
    send(ws, roster());
    send(ws, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: mixedIncidents() });
    await page.waitForFunction(() => document.querySelectorAll('.layer-tiles img').length > 0, null, WAIT);
    const deadline = Date.now() + WAIT.timeout;
    while ((await page.locator('.layer-tiles img').count()) !== asked - refused || refused === 0) {
      assert.ok(Date.now() < deadline, `tiles: ${asked} asked, ${refused} refused`);
      await new Promise((res) => setTimeout(res, 100));
    }
    // The refused tiles are the page's expected network errors, not the page's own.
    errors.splice(0, errors.length, ...errors.filter((e) => !/ERR_FAILED/.test(e)));
    await page.locator('[data-marker="incident"][data-id="1"]').click({ force: true });
    await page.locator('#detail[data-incident-id="1"]').waitFor(WAIT);
  });

  it('takes its language from the welcome unless the dispatcher chose one', async () => {
    const ws = await signIn();
    send(ws, welcome({ language: 'en' }));
    send(ws, { type: 'snapshot', seq: 20, server_time: Date.now(), incidents: mixedIncidents() });
    await page.locator('#incidents thead th').nth(2).filter({ hasText: 'Elder' }).waitFor(WAIT);
    await page.locator('[data-incident-id="3"]').click();
    await page.locator('#detail [data-field="claim-status"]', { hasText: 'is handling this' }).waitFor(WAIT);
    const labels = await page.evaluate(() =>
      [...document.querySelectorAll('[data-i18n], #conn-text, [data-field="kind"], [data-field="state"], #detail h3, #detail dt, #detail .btn, .map-legend')]
        .map((n) => n.textContent),
    );
    for (const label of labels) {
      if (label === '中文') continue;
      assert.doesNotMatch(label, /[\u4e00-\u9fff]/, `untranslated label: ${label}`);
    }
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.screenshot({ path: join(resultsDir, 'screenshots', 'ui-detail-en.png') });

    // The dispatcher's own choice wins over the server's default from then on.
    await page.locator('#lang-toggle').click();
    await page.locator('#incidents thead th').nth(2).filter({ hasText: '老人' }).waitFor(WAIT);
    send(ws, welcome({ language: 'en' }));
    await new Promise((res) => setTimeout(res, 200));
    assert.match(await page.locator('#incidents thead th').nth(2).textContent(), /老人/);
  });
});
