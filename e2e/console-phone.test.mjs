// The console's softphone with real SIP: anxind (demo district) with a telephony token and
// the SIP server's WebSocket, Kamailio and rtpengine from deploy/sip/start-local, SIPp as an
// elder's phone dialling the hotline, and headless Chromium with fake media devices as two
// dispatchers. Each console registers over WebSocket with the credentials anxind signs; the
// elder's call rings both at once with the caller named; one dispatcher answers in the
// panel and the other console stops ringing; audio flows both ways through rtpengine (WebRTC
// on the console's side, plain RTP on the elder's); the dispatcher who answered holds the
// incident; mute, then hold and resume (re-INVITEs the elder's phone answers); the elder
// hangs up; the timeline says who answered. Then a dispatcher calls an elder's contact from
// the incident: the call goes out on the trunk, where SIPp answers as the contact's phone.
//
// Without Kamailio, rtpengine and SIPp the test is skipped, except under CI=true, where
// .ci/run installs them (deploy/sip/start-local --install) and a missing one fails.
// rtpengine's ports are fixed by deploy/sip/, so this must not run beside another SIP test.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, publishEvent, repoRoot, resultsDir, serverSnapshot, shoot, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SIP = join(repoRoot, 'deploy', 'sip');
const TOKEN = 'e2e-softphone-telephony-token';
const HOTLINE = '96110';
// 长者 xs-e0001 of the demo district: her own phone, and her device.
const ELDER_PHONE = '13800000001';
const ELDER_DEVICE = 'xs-d0001';
const DISPATCHER = { id: 'dispatcher', name: '值班调度员 王芳' };
const OTHER = { id: 'dispatcher2' };
// 长者 xs-e0002's device, and her first contact's phone.
const SECOND_DEVICE = 'xs-d0002';
const CONTACT_PHONE = '13700000002';
const SECOND_DEVICE_SIM = '13500000002';
// 长者 xs-e0003: her own phone, her device, her station's duty line.
const THIRD_PHONE = '13800000003';
const THIRD_DEVICE = 'xs-d0003';
// 长者 xs-e0004: her own phone and her device (an attended transfer).
const FOURTH_PHONE = '13800000004';
const FOURTH_DEVICE = 'xs-d0004';
const SHOWS_UP = { timeout: 20_000 };

const programs = ['kamailio', 'rtpengine', 'rtpengine-ctl', 'sipp', 'turnserver'];
const missing = programs.filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0);
if (missing.length > 0 && process.env.CI === 'true') {
  throw new Error(`${missing.join(', ')} must be installed when CI=true (deploy/sip/start-local --install)`);
}
const skip = missing.length > 0 ? `no ${missing.join(', ')} (deploy/sip/start-local --install installs them)` : false;

/** A port nobody holds on loopback now, for UDP or TCP. */
async function freePort(kind) {
  if (kind === 'udp') {
    const socket = createSocket('udp4');
    await new Promise((res) => socket.bind(0, '127.0.0.1', res));
    const { port } = socket.address();
    await new Promise((res) => socket.close(res));
    return port;
  }
  const server = createServer();
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address();
  await new Promise((res) => server.close(res));
  return port;
}

/** Whether `port` can be bound on loopback now, for UDP and for TCP. */
async function bindable(port) {
  const udp = createSocket('udp4');
  const udpOk = await new Promise((res) => {
    udp.once('error', () => res(false));
    udp.bind(port, '127.0.0.1', () => res(true));
  });
  if (udpOk) await new Promise((res) => udp.close(res));
  if (!udpOk) return false;
  const tcp = createServer();
  const tcpOk = await new Promise((res) => {
    tcp.once('error', () => res(false));
    tcp.listen(port, '127.0.0.1', () => res(true));
  });
  if (tcpOk) await new Promise((res) => tcp.close(res));
  return tcpOk;
}

/**
 * `n` ports free on loopback for both UDP and TCP, each with the next port free too and no
 * two within one of each other: Kamailio takes SIP_PORT on UDP and TCP, and coturn takes
 * TURN_PORT and TURN_PORT + 1 (its alternative port) on both.
 */
async function freePortPairs(n) {
  const ports = [];
  while (ports.length < n) {
    const port = await freePort('tcp');
    if (port >= 49150 && port <= 49210) continue; // coturn's relay ports (turnserver.conf)
    if (ports.some((p) => Math.abs(p - port) <= 1)) continue;
    if ((await bindable(port)) && (await bindable(port + 1))) ports.push(port);
  }
  return ports;
}

/** Relayed RTP packets rtpengine has counted since it started. */
function relayedPackets() {
  const out = spawnSync('rtpengine-ctl', ['-ip', '127.0.0.1', '-port', '22223', 'list', 'totals'], { encoding: 'utf8' });
  const line = out.stdout.split('\n').find((l) => l.trim().startsWith('Total relayed packets') && !l.includes('errors'));
  assert.ok(line, `rtpengine-ctl list totals: ${out.stdout}${out.stderr}`);
  return Number(line.split(':').pop().trim());
}

/** Every RTCPeerConnection the page makes, kept in window.__pcs: add as an init script. */
function recordPeerConnections() {
  window.__pcs = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function RecordedPeerConnection(...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Native);
}

/** Audio RTP packets received and sent so far over the page's peer connections. */
function audioPackets(page) {
  return page.evaluate(async () => {
    let received = 0;
    let sent = 0;
    for (const pc of window.__pcs) {
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.kind !== 'audio') return;
        if (s.type === 'inbound-rtp') received += s.packetsReceived || 0;
        if (s.type === 'outbound-rtp') sent += s.packetsSent || 0;
      });
    }
    return { received, sent };
  });
}

/**
 * SIPp as the elder's phone: dials the hotline from her number and talks, accepts being put
 * on hold and taken off it (deploy/sip/sipp/elder-call-hold.xml), stays 3 s more, hangs up.
 */
function elderDials(runDir, sipPort, elderPort, { scenario = 'elder-call-hold.xml', from = ELDER_PHONE, name = 'elder' } = {}) {
  const log = createWriteStream(join(runDir, `${name}.log`));
  const child = spawn(
    'sipp',
    [
      '-sf', join(SIP, 'sipp', scenario),
      '-s', HOTLINE,
      '-key', 'caller', from,
      '-i', '127.0.0.1', '-p', String(elderPort),
      '-mi', '127.0.0.1', '-mp', '31000',
      '-m', '1', '-nostdin', '-timeout', '60s', '-timeout_error',
      '-trace_msg', '-message_file', join(runDir, `${name}-messages.log`),
      `127.0.0.1:${sipPort}`,
    ],
    { cwd: runDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise((res) => child.once('exit', (code) => res(code)));
  return { child, exited };
}

/**
 * SIPp as a telephone on the centre's trunk: rings 1 s, answers as `user`, talks, waits for
 * the BYE (deploy/sip/sipp/dispatcher-answer.xml); its messages go to trunk-messages.log.
 */
function trunkAnswers(runDir, port, user, name = 'trunk') {
  const log = createWriteStream(join(runDir, `${name}.log`));
  const child = spawn(
    'sipp',
    [
      '-sf', join(SIP, 'sipp', 'dispatcher-answer.xml'),
      '-key', 'console', user,
      '-i', '127.0.0.1', '-p', String(port),
      '-mi', '127.0.0.1', '-mp', '32000',
      '-m', '1', '-nostdin', '-timeout', '60s', '-timeout_error',
      '-trace_msg', '-message_file', join(runDir, `${name}-messages.log`),
    ],
    { cwd: runDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise((res) => child.once('exit', (code) => res(code)));
  return { child, exited };
}

describe('the softphone answers an elder\'s call through Kamailio', { skip }, () => {
  let daemon;
  let browser;
  let page;
  let runDir;
  let sipPort;
  let wsPort;
  let trunkPort;

  before(async () => {
    [sipPort, wsPort] = await freePortPairs(2);
    trunkPort = await freePort('udp');
    daemon = await spawnDaemon({
      env: {
        ANXIN_TELEPHONY__TOKEN: TOKEN,
        ANXIN_TELEPHONY__WS_URL: `ws://127.0.0.1:${wsPort}`,
      },
    });
    runDir = await mkdtemp(join(tmpdir(), 'anxin-e2e-sip-'));
    const started = spawnSync(join(SIP, 'start-local'), [runDir], {
      encoding: 'utf8',
      env: {
        ...process.env,
        ANXIN_URL: new URL(daemon.consoleUrl).origin,
        ANXIN_TELEPHONY_TOKEN: TOKEN,
        SIP_PORT: String(sipPort),
        WS_PORT: String(wsPort),
        TRUNK_HOST: `127.0.0.1:${trunkPort}`,
        // Nobody there: with a console registered the hotline never rings it.
        DISPATCH_URI: `sip:dispatch@127.0.0.1:${await freePort('udp')}`,
      },
    });
    assert.equal(started.status, 0, `start-local failed:\n${started.stdout}${started.stderr}`);
    browser = await launchChromium({ args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] });
  });

  after(async () => {
    await browser?.close();
    if (runDir) {
      // Even when start-local failed half-way: whatever it started is stopped (by pid file).
      spawnSync(join(SIP, 'stop-local'), [runDir], { stdio: 'inherit' });
      // Kamailio's and SIPp's logs are kept beside the other results.
      await mkdir(resultsDir, { recursive: true });
      for (const name of ['kamailio.log', 'rtpengine.log', 'elder.log', 'elder-messages.log', 'transferred.log', 'transferred-messages.log', 'attended.log', 'attended-messages.log', 'station.log', 'station-messages.log', 'trunk.log', 'trunk-messages.log', 'device.log', 'device-messages.log']) {
        const text = await readFile(join(runDir, name), 'utf8').catch(() => null);
        if (text !== null) await writeFile(join(resultsDir, `phone-${name}`), text);
      }
      await rm(runDir, { recursive: true, force: true });
    }
    await daemon?.stop();
  });

  /**
   * Signs a dispatcher in, has an elder dial the hotline with SIPp `scenario` from `from`,
   * answers on the console and opens her incident; returns the elder's SIPp and the
   * incident's station (with a duty line).
   */
  async function answerForTransfer(page, { scenario, from, name, device }) {
    await signIn(page, daemon.consoleUrl, { user: DISPATCHER.id });
    await page.locator('#phone-status[data-state="registered"]').waitFor(SHOWS_UP);
    const elder = elderDials(runDir, sipPort, await freePort('udp'), { scenario, from, name });
    const panel = page.locator('#phone');
    await panel.and(page.locator('[data-state="ringing"]')).waitFor(SHOWS_UP);
    await page.locator('#phone .phone-open').waitFor(SHOWS_UP);
    await page.locator('#phone [data-phone-action="answer"]').click();
    await panel.and(page.locator('[data-state="talking"]')).waitFor(SHOWS_UP);
    await page.locator('#phone .phone-open').click();
    const incidentId = await page.locator(`#incidents tbody tr[data-device-id="${device}"]`).getAttribute('data-incident-id');
    const snapshot = await serverSnapshot(page);
    const station = snapshot.incidents.find((i) => String(i.id) === incidentId)?.station;
    assert.ok(station?.phone, `her incident has a station with a duty line: ${JSON.stringify(station)}`);
    return { elder, station };
  }

  it('rings every console with the caller; one answers with audio both ways and holds the incident', { timeout: 120_000 }, async (t) => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const otherContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript(recordPeerConnections);
    page = await context.newPage();
    page.errors = watchPageErrors(page);
    const other = await otherContext.newPage();
    other.errors = watchPageErrors(other);
    let elder = null;
    try {
      // Signed in, each console fetches its SIP credentials and registers over WebSocket.
      await signIn(page, daemon.consoleUrl, { user: DISPATCHER.id });
      await signIn(other, daemon.consoleUrl, { user: OTHER.id });
      const line = page.locator('#phone-status');
      await line.and(page.locator('[data-state="registered"]')).waitFor(SHOWS_UP);
      await other.locator('#phone-status[data-state="registered"]').waitFor(SHOWS_UP);
      assert.equal(await line.getAttribute('title'), `sip:${DISPATCHER.id}@anxin`);
      assert.equal(await page.locator('#phone').isHidden(), true, 'no call, no panel');
      const packetsBefore = relayedPackets();

      // The elder dials the hotline: both consoles ring, naming her (the engine's incident).
      elder = elderDials(runDir, sipPort, await freePort('udp'));
      const panel = page.locator('#phone');
      await panel.and(page.locator('[data-state="ringing"]')).waitFor(SHOWS_UP);
      await other.locator('#phone[data-state="ringing"]').waitFor(SHOWS_UP);
      const row = page.locator(`#incidents tbody tr[data-device-id="${ELDER_DEVICE}"]`);
      await row.waitFor(SHOWS_UP);
      await page.locator('#phone .phone-open').waitFor(SHOWS_UP);
      const caller = await page.locator('#phone [data-field="phone-caller"]').textContent();
      assert.match(caller, /138 0000 0001/, caller);
      const snapshot = await serverSnapshot(page);
      const incident = snapshot.incidents.find((i) => i.device_id === ELDER_DEVICE);
      assert.ok(incident, `the call rings as an incident on her device: ${JSON.stringify(snapshot.incidents)}`);
      assert.equal(incident.kind, 'call');
      assert.ok(caller.startsWith(incident.elder.name), `the panel names her: ${caller} (${incident.elder.name})`);
      assert.equal(await panel.getAttribute('data-call-id'), incident.calls[0].call_id, 'the same call');
      await shoot(page, 'phone-ringing-1440-zh.png');

      // Answer: the call connects, and audio flows both ways (SIPp plays a recording; the
      // fake microphone sends a tone) through rtpengine.
      await page.locator('#phone [data-phone-action="answer"]').click();
      await panel.and(page.locator('[data-state="talking"]')).waitFor(SHOWS_UP);
      // While the elder talks: packets both ways on the console's connection.
      let packets = { received: 0, sent: 0 };
      for (const until = Date.now() + 5_000; Date.now() < until && !(packets.received > 20 && packets.sent > 20);) {
        await new Promise((res) => setTimeout(res, 200));
        packets = await audioPackets(page);
      }
      assert.ok(packets.received > 20 && packets.sent > 20, `audio flows both ways: ${JSON.stringify(packets)}`);
      t.diagnostic(`the console's audio: ${packets.received} packets received, ${packets.sent} sent`);
      assert.ok(relayedPackets() > packetsBefore + packets.received, `rtpengine relayed the media: ${JSON.stringify(packets)}`);
      assert.equal(await page.locator('#phone [data-phone-action="mute"]').count(), 1);
      assert.equal(await page.locator('#phone [data-phone-action="hold"]').count(), 1);

      // The dispatcher who answered holds the incident.
      await row.locator(`[data-field="claimed-by"][data-claimed-id="${DISPATCHER.id}"]`).waitFor(SHOWS_UP);
      await shoot(page, 'phone-talking-1440-zh.png');
      const claimed = (await serverSnapshot(page)).incidents.find((i) => i.device_id === ELDER_DEVICE);
      assert.equal(claimed.claimed_by?.id, DISPATCHER.id, `claimed by the dispatcher who answered: ${JSON.stringify(claimed)}`);

      // The other console stops ringing (the SIP server cancelled its branch).
      await other.locator('#phone[data-state="ended"]').waitFor(SHOWS_UP);
      assert.equal(await other.locator('#phone [data-phone-action]').count(), 0, 'nothing to press there');
      await other.locator('#phone').waitFor({ state: 'hidden', ...SHOWS_UP });

      // Mute is the console's own: the button says so, and again.
      const mute = page.locator('#phone [data-phone-action="mute"]');
      await mute.click();
      await page.locator('#phone [data-phone-action="mute"][aria-pressed="true"]').waitFor(SHOWS_UP);
      assert.equal(await mute.textContent(), '取消静音');
      await mute.click();
      await page.locator('#phone [data-phone-action="mute"][aria-pressed="false"]').waitFor(SHOWS_UP);

      // Hold and resume: a re-INVITE each way through Kamailio and rtpengine, which the
      // elder's phone answers (its scenario waits for both); the call carries on.
      await page.locator('#phone [data-phone-action="hold"]').click();
      await panel.and(page.locator('[data-state="held"]')).waitFor(SHOWS_UP);
      await shoot(page, 'phone-held-1440-zh.png');
      await page.locator('#phone [data-phone-action="hold"]').click();
      await panel.and(page.locator('[data-state="talking"]')).waitFor(SHOWS_UP);
      // The console is heard again: its packets go on, and rtpengine relays them to the elder.
      const resumed = { sent: (await audioPackets(page)).sent, relayed: relayedPackets() };
      let now = resumed;
      for (const until = Date.now() + 2_500; Date.now() < until && !(now.sent > resumed.sent + 20 && now.relayed > resumed.relayed + 20);) {
        await new Promise((res) => setTimeout(res, 200));
        now = { sent: (await audioPackets(page)).sent, relayed: relayedPackets() };
      }
      assert.ok(now.sent > resumed.sent + 20 && now.relayed > resumed.relayed + 20, `the call carries on: ${JSON.stringify({ resumed, now })}`);

      // The elder hangs up: the panel says the call ended, then goes.
      assert.equal(await elder.exited, 0, `the elder's call (SIPp) completed: ${await readFile(join(runDir, 'elder.log'), 'utf8')}`);
      await panel.and(page.locator('[data-state="ended"]')).waitFor(SHOWS_UP);
      await panel.waitFor({ state: 'hidden', ...SHOWS_UP });

      // The incident's timeline: the call rang, the dispatcher answered it, it ended.
      await row.click();
      const answered = page.locator('#timeline li[data-change="call_answered"]');
      await answered.waitFor(SHOWS_UP);
      assert.match(await answered.locator('.tl-actor').textContent(), new RegExp(DISPATCHER.name));
      await page.locator('#timeline li[data-change="call_ended"]').waitFor(SHOWS_UP);
      await answered.scrollIntoViewIfNeeded();
      await shoot(page, 'phone-timeline-1440-zh.png');
      // The line's state follows the page's language.
      await page.locator('#lang-toggle').click();
      await page.locator('#phone-status .phone-line-text', { hasText: 'Ready' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#phone-status .phone-line-label').textContent(), 'Phone');
      assert.deepEqual(page.errors, []);
      assert.deepEqual(other.errors, []);
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await page?.screenshot({ path: join(resultsDir, 'failed-phone.png') }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; SIP logs in ${resultsDir}/phone-*.log)`;
      throw err;
    } finally {
      elder?.child.kill();
      await context.close();
      await otherContext.close();
    }
  });
  it('calls an elder\'s contact from the incident, out on the trunk', { timeout: 120_000 }, async (t) => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript(recordPeerConnections);
    const caller = await context.newPage();
    caller.errors = watchPageErrors(caller);
    let contact = null;
    let device = null;
    try {
      // An SOS from 长者2; her dispatcher opens it and calls her first contact.
      await publishEvent(daemon.mqttUrl, SECOND_DEVICE);
      await signIn(caller, daemon.consoleUrl, { user: DISPATCHER.id });
      await caller.locator('#phone-status[data-state="registered"]').waitFor(SHOWS_UP);
      const row = caller.locator(`#incidents tbody tr[data-device-id="${SECOND_DEVICE}"]`);
      await row.click();
      const incidentId = await row.getAttribute('data-incident-id');
      const dial = caller.locator(`#detail [data-section="contacts"] button[data-dial="${CONTACT_PHONE}"]`);
      await dial.waitFor(SHOWS_UP);
      contact = trunkAnswers(runDir, trunkPort, 'contact-2');
      await new Promise((res) => setTimeout(res, 300)); // SIPp's socket is bound
      await dial.click();

      // Calling, then talking once the contact's phone (SIPp on the trunk) answers.
      const panel = caller.locator('#phone');
      await panel.and(caller.locator('[data-state="talking"]')).waitFor(SHOWS_UP);
      const who = await caller.locator('#phone [data-field="phone-caller"]').textContent();
      assert.match(who, /137 0000 0002/, who);
      assert.match(who, /（/, `the panel names the contact and relation: ${who}`);
      let packets = { received: 0, sent: 0 };
      for (const until = Date.now() + 5_000; Date.now() < until && !(packets.received > 20 && packets.sent > 20);) {
        await new Promise((res) => setTimeout(res, 200));
        packets = await audioPackets(caller);
      }
      assert.ok(packets.received > 20 && packets.sent > 20, `audio flows both ways: ${JSON.stringify(packets)}`);
      t.diagnostic(`the outbound call's audio: ${packets.received} packets received, ${packets.sent} sent`);
      await shoot(caller, 'phone-outbound-1440-zh.png');

      // The dispatcher hangs up; the contact's phone saw the BYE.
      await caller.locator('#phone [data-phone-action="hangup"]').click();
      await panel.and(caller.locator('[data-state="ended"]')).waitFor(SHOWS_UP);
      assert.equal(await contact.exited, 0, `the contact's phone (SIPp) completed: ${await readFile(join(runDir, 'trunk.log'), 'utf8')}`);

      // On the incident: the call out in its Calls section and on its timeline, by this
      // dispatcher (Kamailio told anxind: dialled, answered, ended).
      const callRow = caller.locator(`#detail [data-section="calls"] li[data-direction="out"][data-call-state="ended"]`);
      await callRow.waitFor(SHOWS_UP);
      assert.match(await callRow.locator('[data-field="call-from"]').textContent(), /137 0000 0002/);
      assert.match(await callRow.locator('[data-field="call-caller"]').textContent(), new RegExp(`${DISPATCHER.name} 呼出`));
      assert.match(await callRow.locator('[data-field="call-talk"]').textContent(), /已接通/);
      const dialled = caller.locator('#timeline li[data-change="call_dialled"]');
      await dialled.waitFor(SHOWS_UP);
      assert.match(await dialled.locator('.tl-text').textContent(), /拨出 137 0000 0002/);
      assert.match(await dialled.locator('.tl-actor').textContent(), new RegExp(DISPATCHER.name));
      await caller.locator('#timeline li[data-change="call_answered"]', { hasText: '对方已接听' }).waitFor(SHOWS_UP);
      await caller.locator('#timeline li[data-change="call_ended"]').waitFor(SHOWS_UP);
      // A call out rings nothing: no alarm, no ringing badge on the incident.
      assert.equal(await caller.locator(`#incidents tbody tr[data-device-id="${SECOND_DEVICE}"] [data-field="ringing"]`).count(), 0);
      await caller.locator('#timeline').scrollIntoViewIfNeeded();
      await shoot(caller, 'phone-outbound-timeline-1440-zh.png');

      // Out on the trunk to her number; the incident was named to Kamailio, not to the trunk.
      const trunkSaw = await readFile(join(runDir, 'trunk-messages.log'), 'utf8');
      assert.match(trunkSaw, new RegExp(`INVITE sip:${CONTACT_PHONE}@127\\.0\\.0\\.1:${trunkPort} SIP/2\\.0`));
      assert.doesNotMatch(trunkSaw, /X-Anxin-Incident/i);
      const kamailio = await readFile(join(runDir, 'kamailio.log'), 'utf8');
      assert.match(kamailio, new RegExp(`console ${DISPATCHER.id} dials ${CONTACT_PHONE} for incident ${incidentId} `));

      // Talk-back: the dispatcher calls the device itself on its SIM (it answers on its
      // speaker); the call is on the incident as the device's.
      const sim = caller.locator('#detail [data-field="device-sim"] button[data-dial]');
      assert.equal(await sim.getAttribute('data-dial'), SECOND_DEVICE_SIM);
      device = trunkAnswers(runDir, trunkPort, 'device-2', 'device');
      await new Promise((res) => setTimeout(res, 300));
      await sim.click();
      await panel.and(caller.locator('[data-state="talking"]')).waitFor(SHOWS_UP);
      assert.match(await caller.locator('#phone [data-field="phone-caller"]').textContent(), /的设备 · 135 0000 0002/);
      await caller.locator('#phone [data-phone-action="hangup"]').click();
      assert.equal(await device.exited, 0, `the device (SIPp) completed: ${await readFile(join(runDir, 'device.log'), 'utf8')}`);
      await caller.locator(`#detail [data-section="calls"] li[data-direction="out"][data-call-state="ended"]`).nth(1).waitFor(SHOWS_UP);
      assert.match(await caller.locator('#timeline li[data-change="call_dialled"]').nth(1).textContent(), /拨出 135 0000 0002/);
      assert.deepEqual(caller.errors, []);
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await caller.screenshot({ path: join(resultsDir, 'failed-phone-outbound.png') }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; SIP logs in ${resultsDir}/phone-*.log)`;
      throw err;
    } finally {
      contact?.child.kill();
      device?.child.kill();
      await context.close();
    }
  });
  it('transfers an elder\'s call to her station\'s duty line', { timeout: 120_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript(recordPeerConnections);
    const console_ = await context.newPage();
    console_.errors = watchPageErrors(console_);
    let elder = null;
    try {
      let station;
      ({ elder, station } = await answerForTransfer(console_, { scenario: 'elder-call-transfer.xml', from: THIRD_PHONE, name: 'transferred', device: THIRD_DEVICE }));
      const panel = console_.locator('#phone');
      const duty = station.phone.replace(/\D/g, '');

      // Transfer: the targets are her station's duty line and the emergency number.
      await console_.locator('#phone [data-phone-action="transfer"]').click();
      const targets = console_.locator('#phone [data-field="phone-transfer"]');
      await targets.waitFor(SHOWS_UP);
      assert.equal(await targets.locator('[data-transfer-to="120"]').count(), 1, 'the emergency number is offered');
      await shoot(console_, 'phone-transfer-1440-zh.png');
      await targets.locator(`[data-transfer-to="${duty}"]`).click();

      // The elder's side took the REFER, said the new call was answered, and the console left.
      await panel.and(console_.locator('[data-state="ended"]')).waitFor(SHOWS_UP);
      assert.match(await console_.locator('#phone [data-field="phone-state"]').textContent(), new RegExp(`已转接至 ${station.phone}`));
      assert.doesNotMatch(await panel.textContent(), /null|undefined/);
      assert.equal(await elder.exited, 0, `the elder's phone (SIPp) completed: ${await readFile(join(runDir, 'transferred.log'), 'utf8')}`);
      const elderSaw = await readFile(join(runDir, 'transferred-messages.log'), 'utf8');
      const refer = /REFER sip:[^\n]*SIP\/2\.0[\s\S]*?\r?\n\r?\n/.exec(elderSaw)?.[0] ?? '';
      assert.match(refer, new RegExp(`Refer-To: <sip:${duty}@127\\.0\\.0\\.1:${trunkPort}>`), `the REFER names the duty line on the trunk: ${refer}`);
      assert.match(refer, new RegExp(`Referred-By: <sip:${DISPATCHER.id}@anxin>`), refer);

      // On the incident: the call answered by this dispatcher and transferred, on the timeline.
      const call = console_.locator('#detail [data-section="calls"] [data-field="call-transferred"]');
      await call.waitFor(SHOWS_UP);
      assert.match(await call.textContent(), new RegExp(`已转接至 ${duty}`));
      const moved = console_.locator('#timeline li[data-change="call_transferred"]');
      await moved.waitFor(SHOWS_UP);
      assert.match(await moved.locator('.tl-text').textContent(), new RegExp(`转接至 ${duty}`));
      assert.match(await moved.locator('.tl-actor').textContent(), new RegExp(DISPATCHER.name));
      await console_.locator('#timeline li[data-change="call_ended"]').waitFor(SHOWS_UP);
      await console_.locator('#timeline').scrollIntoViewIfNeeded();
      await shoot(console_, 'phone-transferred-1440-zh.png');
      assert.deepEqual(console_.errors, []);
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await console_.screenshot({ path: join(resultsDir, 'failed-phone-transfer.png') }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; SIP logs in ${resultsDir}/phone-*.log)`;
      throw err;
    } finally {
      elder?.child.kill();
      await context.close();
    }
  });
  it('transfers an elder\'s call after talking to her station first (attended)', { timeout: 120_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript(recordPeerConnections);
    const console_ = await context.newPage();
    console_.errors = watchPageErrors(console_);
    let elder = null;
    let station = null;
    try {
      let stationView;
      ({ elder, station: stationView } = await answerForTransfer(console_, { scenario: 'elder-call-attended.xml', from: FOURTH_PHONE, name: 'attended', device: FOURTH_DEVICE }));
      const panel = console_.locator('#phone');
      const duty = stationView.phone.replace(/\D/g, '');

      // Talk first: the elder is held while the station's duty line (SIPp on the trunk) answers.
      station = trunkAnswers(runDir, trunkPort, 'station', 'station');
      await new Promise((res) => setTimeout(res, 300));
      await console_.locator('#phone [data-phone-action="transfer"]').click();
      await console_.locator('#phone [data-transfer-mode="consult"]').click();
      await console_.locator(`#phone [data-transfer-to="${duty}"]`).click();
      const consulting = console_.locator('#phone [data-field="phone-consult"][data-state="talking"]');
      await consulting.waitFor(SHOWS_UP);
      assert.match(await consulting.textContent(), /来电人保持中/);
      assert.equal(await panel.getAttribute('data-state'), 'held', 'the elder waits on hold');
      await shoot(console_, 'phone-consult-1440-zh.png');

      // Complete: the elder's side is asked to call the station in place of the consultation.
      await console_.locator('#phone [data-phone-action="complete-transfer"]').click();
      await panel.and(console_.locator('[data-state="ended"]')).waitFor(SHOWS_UP);
      assert.match(await console_.locator('#phone [data-field="phone-state"]').textContent(), new RegExp(`已转接至 ${stationView.phone}`));
      assert.equal(await elder.exited, 0, `the elder's phone (SIPp) completed: ${await readFile(join(runDir, 'attended.log'), 'utf8')}`);
      assert.equal(await station.exited, 0, `the station's phone (SIPp) completed: ${await readFile(join(runDir, 'station.log'), 'utf8')}`);
      const stationSaw = await readFile(join(runDir, 'station-messages.log'), 'utf8');
      const consultCallId = /^Call-ID:\s*(\S+)/im.exec(stationSaw)?.[1];
      assert.ok(consultCallId, `the consultation reached the station: ${stationSaw.slice(0, 400)}`);
      const elderSaw = await readFile(join(runDir, 'attended-messages.log'), 'utf8');
      const referTo = /^Refer-To:\s*(.*)$/im.exec(elderSaw)?.[1] ?? '';
      assert.ok(referTo.startsWith(`<sip:${duty}@127.0.0.1:${trunkPort}?Replaces=`), `Refer-To names the station and what to replace: ${referTo}`);
      assert.ok(referTo.includes(encodeURIComponent(consultCallId)), `it replaces the consultation ${consultCallId}: ${referTo}`);

      // On the incident: the consultation as a call out, and the transfer, by this dispatcher.
      const moved = console_.locator('#timeline li[data-change="call_transferred"]');
      await moved.waitFor(SHOWS_UP);
      assert.match(await moved.locator('.tl-text').textContent(), new RegExp(`转接至 ${duty}`));
      assert.match(await console_.locator('#timeline li[data-change="call_dialled"]').first().textContent(), new RegExp(`拨出 ${duty}`));
      assert.deepEqual(console_.errors, []);
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await console_.screenshot({ path: join(resultsDir, 'failed-phone-attended.png') }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; SIP logs in ${resultsDir}/phone-*.log)`;
      throw err;
    } finally {
      elder?.child.kill();
      station?.child.kill();
      await context.close();
    }
  });
});

// A console whose browser cannot reach the media relay directly: anxind names a TURN server
// (coturn, started by start-local with TURN_PORT) and says relay only; the console's SIP
// credentials are good there too (coturn's use-auth-secret, the telephony token).
describe('the softphone through a TURN server', { skip }, () => {
  let daemon;
  let browser;
  let runDir;
  let sipPort;
  let turnPort;

  before(async () => {
    let wsPort;
    [sipPort, turnPort, wsPort] = await freePortPairs(3);
    daemon = await spawnDaemon({
      env: {
        ANXIN_TELEPHONY__TOKEN: TOKEN,
        ANXIN_TELEPHONY__WS_URL: `ws://127.0.0.1:${wsPort}`,
        ANXIN_TELEPHONY__TURN_URLS: JSON.stringify([`turn:127.0.0.1:${turnPort}?transport=udp`]),
        ANXIN_TELEPHONY__ICE_RELAY_ONLY: 'true',
      },
    });
    runDir = await mkdtemp(join(tmpdir(), 'anxin-e2e-turn-'));
    const started = spawnSync(join(SIP, 'start-local'), [runDir], {
      encoding: 'utf8',
      env: {
        ...process.env,
        ANXIN_URL: new URL(daemon.consoleUrl).origin,
        ANXIN_TELEPHONY_TOKEN: TOKEN,
        SIP_PORT: String(sipPort),
        WS_PORT: String(wsPort),
        TURN_PORT: String(turnPort),
        DISPATCH_URI: `sip:dispatch@127.0.0.1:${await freePort('udp')}`,
      },
    });
    assert.equal(started.status, 0, `start-local failed:\n${started.stdout}${started.stderr}`);
    browser = await launchChromium({ args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] });
  });

  after(async () => {
    await browser?.close();
    if (runDir) {
      // Even when start-local failed half-way: whatever it started is stopped (by pid file).
      spawnSync(join(SIP, 'stop-local'), [runDir], { stdio: 'inherit' });
      await mkdir(resultsDir, { recursive: true });
      for (const name of ['kamailio.log', 'rtpengine.log', 'coturn.log', 'turn-elder.log']) {
        const text = await readFile(join(runDir, name), 'utf8').catch(() => null);
        if (text !== null) await writeFile(join(resultsDir, `phone-turn-${name}`), text);
      }
      await rm(runDir, { recursive: true, force: true });
    }
    await daemon?.stop();
  });

  it('answers a call with its audio relayed by TURN', { timeout: 120_000 }, async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript(recordPeerConnections);
    const page = await context.newPage();
    page.errors = watchPageErrors(page);
    let elder = null;
    try {
      await signIn(page, daemon.consoleUrl, { user: DISPATCHER.id });
      await page.locator('#phone-status[data-state="registered"]').waitFor(SHOWS_UP);
      elder = elderDials(runDir, sipPort, await freePort('udp'), { name: 'turn-elder' });
      const panel = page.locator('#phone');
      await panel.and(page.locator('[data-state="ringing"]')).waitFor(SHOWS_UP);
      await page.locator('#phone [data-phone-action="answer"]').click();
      await panel.and(page.locator('[data-state="talking"]')).waitFor(SHOWS_UP);
      let packets = { received: 0, sent: 0 };
      for (const until = Date.now() + 5_000; Date.now() < until && !(packets.received > 20 && packets.sent > 20);) {
        await new Promise((res) => setTimeout(res, 200));
        packets = await audioPackets(page);
      }
      assert.ok(packets.received > 20 && packets.sent > 20, `audio flows both ways: ${JSON.stringify(packets)}`);
      // The pair that carries it: the browser's side is a relayed candidate (TURN).
      const local = await page.evaluate(async () => {
        for (const pc of window.__pcs) {
          const stats = await pc.getStats();
          let pair = null;
          stats.forEach((s) => {
            if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
          });
          if (pair) {
            const c = stats.get(pair.localCandidateId);
            return c ? { type: c.candidateType, port: c.port } : null;
          }
        }
        return null;
      });
      // A relayed candidate on one of coturn's relay ports (turnserver.conf): coturn gave the
      // allocation, so it took the console's SIP credentials (relay only: no other way).
      assert.equal(local?.type, 'relay', `the media goes through the TURN server: ${JSON.stringify(local)}`);
      assert.ok(local.port >= 49160 && local.port <= 49200, `coturn's relay port: ${local.port}`);
      t.diagnostic(`through TURN: ${packets.received} packets received, ${packets.sent} sent, relay port ${local.port}`);
      await page.locator('#phone [data-phone-action="hangup"]').click();
      await panel.and(page.locator('[data-state="ended"]')).waitFor(SHOWS_UP);
      assert.deepEqual(page.errors, []);
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      await page.screenshot({ path: join(resultsDir, 'failed-phone-turn.png') }).catch(() => {});
      err.message += `\n(daemon log: ${daemon?.logPath}; SIP logs in ${resultsDir}/phone-turn-*.log)`;
      throw err;
    } finally {
      elder?.child.kill();
      await context.close();
    }
  });
});
