// Helpers for the end-to-end tests: a real anxind on port 0, MQTT presses as a device sends
// them, and Debian's headless Chromium driven by playwright-core.

import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { chromium } from 'playwright-core';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const assetsDir = join(repoRoot, 'crates', 'anxin-api', 'assets');
export const resultsDir = join(repoRoot, 'e2e', 'test-results');
// Screenshots go to test-results on every run; UPDATE_SCREENSHOTS=1 writes the ones in docs/.
export const screenshotsDir = process.env.UPDATE_SCREENSHOTS === '1'
  ? join(repoRoot, 'docs', 'screenshots')
  : join(resultsDir, 'screenshots');

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const READY = /anxind ready console=(http:\/\/\S+) mqtt=(mqtt:\/\/\S+)/;

/**
 * Launches Debian's Chromium; playwright never downloads a browser of its own here. `args`
 * are added to the usual flags (the softphone's test adds fake media devices).
 */
export async function launchChromium({ args = [] } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium fonts-noto-cjk`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...args,
    ],
  });
}

/** Collects uncaught page errors and console errors, so a test can insist there were none. */
export function watchPageErrors(page) {
  const errors = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A 401 is how the session endpoint says "not signed in", and a 429 how it says "wait
    // before trying that password again": the page expects both and shows them itself. A
    // 404 for the softphone's credentials is how a centre without one says so.
    const expected =
      /status of (401 \(Unauthorized\)|429 \(Too Many Requests\))/.test(msg.text()) ||
      (/status of 404/.test(msg.text()) && (msg.location()?.url ?? '').endsWith('/api/v1/telephony/credentials'));
    if (msg.type() === 'error' && !expected) {
      errors.push(`console.error: ${msg.text()}`);
    }
  });
  return errors;
}

/** The daemon's binary: ANXIND_BIN, else the debug build's. */
export function anxindBin() {
  const bin = process.env.ANXIND_BIN ? resolve(process.env.ANXIND_BIN) : join(repoRoot, 'target', 'debug', 'anxind');
  if (!existsSync(bin)) {
    throw new Error(`no daemon binary at ${bin}: run \`cargo build -p anxind\` first, or set ANXIND_BIN`);
  }
  return bin;
}

/**
 * Starts `anxind demo` on ephemeral ports with a fresh SQLite database and waits for its
 * ready line. Its output goes to e2e/test-results/anxind.log. `env` adds to its environment
 * (e.g. ANXIN_DISPATCH__OFFER_TIMEOUT_S for a fast ladder). `dbPath` names a SQLite file of
 * the caller's instead, which is kept when the daemon stops (to start it again on what it
 * left, as a centre restarts). `args` is a whole command line of the caller's instead of the
 * demo's (a node of a cluster, its store and broker in `env`); its output is added to
 * e2e/test-results/`log`.
 */
export async function spawnDaemon({ readyTimeoutMs = 60_000, extraArgs = [], env = {}, dbPath = null, args = null, log: logName = 'anxind.log' } = {}) {
  const bin = anxindBin();
  const ownStore = dbPath || args;
  const dir = ownStore ? null : await mkdtemp(join(tmpdir(), 'anxin-e2e-'));
  await mkdir(resultsDir, { recursive: true });
  const logPath = join(resultsDir, logName);
  const log = createWriteStream(logPath, { flags: ownStore ? 'a' : 'w' });
  const removeDir = () => (dir ? rm(dir, { recursive: true, force: true }) : Promise.resolve());

  const command = args ?? [
    'demo',
    '--http-listen', '127.0.0.1:0',
    '--mqtt-listen', '127.0.0.1:0',
    '--store-url', `sqlite://${dbPath ?? join(dir, 'anxin.db')}`,
    '--demo-devices', '0',
    ...extraArgs,
  ];
  // No simulated presses or calls: a test makes what it looks at (a test may ask for calls).
  const quiet = { ANXIN_DEMO__CALL_INTERVAL_S: '0' };
  const child = spawn(bin, command, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...quiet, ...env } });
  // If this process dies first, the daemon must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  let alive = true;
  exited.then(() => {
    alive = false;
    process.off('exit', killOnExit);
  });

  // Both pipes are drained for the daemon's whole life, or it would block on a full pipe.
  const tail = [];
  const keep = (prefix) => (line) => {
    log.write(`${prefix}${line}\n`);
    tail.push(line);
    if (tail.length > 60) tail.shift();
  };
  createInterface({ input: child.stderr }).on('line', keep('[err] '));
  const stdout = createInterface({ input: child.stdout });
  stdout.on('line', keep(''));

  const ready = await new Promise((res, rej) => {
    const timer = setTimeout(() => {
      rej(new Error(`anxind printed no ready line in ${readyTimeoutMs} ms; last output:\n${tail.join('\n')}`));
    }, readyTimeoutMs);
    stdout.on('line', (line) => {
      const m = READY.exec(line);
      if (m) {
        clearTimeout(timer);
        res({ consoleUrl: m[1], mqttUrl: m[2], line });
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`anxind exited (code ${code}, signal ${signal}) before it was ready:\n${tail.join('\n')}`));
    });
  }).catch(async (err) => {
    child.kill('SIGKILL');
    await exited;
    log.end();
    await removeDir();
    throw err;
  });

  // The ready line may name the server root or the page itself.
  const pageUrl = new URL(ready.consoleUrl);
  if (pageUrl.pathname === '/' || pageUrl.pathname === '') pageUrl.pathname = '/console';

  return {
    /** the daemon's process id (to stop and continue it, as a frozen server would be) */
    pid: child.pid,
    consoleUrl: pageUrl.toString(),
    mqttUrl: ready.mqttUrl,
    /** the ready line itself (a node of spread zones names the zones it runs) */
    readyLine: ready.line,
    logPath,
    tail: () => tail.join('\n'),
    /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
    async stop(graceMs = 5_000) {
      let result = { code: null, signal: null, killed: false };
      if (alive) {
        child.kill('SIGTERM');
        const timer = new Promise((res) => setTimeout(() => res(null), graceMs));
        const first = await Promise.race([exited, timer]);
        if (first === null) {
          child.kill('SIGKILL');
          result = { ...(await exited), killed: true };
        } else {
          result = { ...first, killed: false };
        }
      } else {
        result = { ...(await exited), killed: false };
      }
      log.end();
      await removeDir();
      return result;
    },
  };
}

/**
 * anxind on a district of the test's own: `registry` (the ledger's JSON) is written to a
 * folder of its own and loaded with `--registry`. `{daemon, cleanup}`; cleanup stops the
 * daemon and removes the folder.
 */
export async function spawnDistrict(registry) {
  const dir = await mkdtemp(join(tmpdir(), 'anxin-district-'));
  const file = join(dir, 'registry.json');
  await writeFile(file, JSON.stringify(registry));
  const daemon = await spawnDaemon({ extraArgs: ['--registry', file] });
  return {
    daemon,
    cleanup: async () => {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A test's steps, each run as `step(name, pages, fn)`: when `fn` throws, a picture of each
 * of `pages` is saved as failed-`prefix`-`name`-`i`.png and the daemon's last lines (from
 * `daemon()`) are added to the error.
 */
export function stepsOf(prefix, daemon) {
  return async (name, pages, fn) => {
    try {
      await fn();
    } catch (err) {
      await mkdir(resultsDir, { recursive: true });
      for (const [i, p] of pages.entries()) await p?.screenshot({ path: join(resultsDir, `failed-${prefix}-${name}-${i}.png`) }).catch(() => {});
      err.message += `\n(daemon log: ${daemon()?.logPath}; last lines:\n${daemon()?.tail()})`;
      throw err;
    }
  };
}

/** Saves a picture of `page` as `name` in the screenshots folder (docs/ with UPDATE_SCREENSHOTS=1). */
export async function shoot(page, name) {
  await mkdir(screenshotsDir, { recursive: true });
  await page.screenshot({ path: join(screenshotsDir, name) });
}

/** How many times a device helper had to send a press again (the connection dropped first). */
export const deviceResends = { count: 0 };

/**
 * Sends one device event the way a device does: its own MQTT session, QoS 1, and returns
 * once the broker has acknowledged it. Returns the msg_id. `fields` are added to the payload
 * (a heartbeat's `battery_pct`, `rssi`, `charging`).
 *
 * Like a real device, it sends the same press again (same msg_id) when the connection drops
 * or no PUBACK comes in time: a broker may reset a connection under load, and a press it had
 * already passed on is then stored once all the same. After `attempts` tries it throws, so a
 * test fails with the reason instead of hanging.
 */
export async function publishEvent(
  mqttUrl,
  deviceId,
  { type = 'sos', location, msgId, ts, fields = {}, attempts = 5, ackTimeoutMs = 15_000 } = {},
) {
  const id = msgId ?? `e2e-${randomUUID()}`;
  const payload = { ...fields, msg_id: id, type, ts: ts ?? Date.now() };
  if (location) payload.location = location;
  const topic = `anxin/v1/devices/${deviceId}/events`;
  let lastError;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      await publishOnce(mqttUrl, deviceId, topic, JSON.stringify(payload), ackTimeoutMs);
      return id;
    } catch (err) {
      lastError = err;
      if (attempt < attempts) {
        deviceResends.count += 1;
        await new Promise((res) => setTimeout(res, 100 * attempt));
      }
    }
  }
  throw new Error(`${deviceId}: press ${id} not acknowledged after ${attempts} attempts: ${lastError.message}`);
}

/** One connection, one QoS 1 publish: resolves on PUBACK, rejects on close, error or timeout. */
function publishOnce(mqttUrl, deviceId, topic, body, ackTimeoutMs) {
  return new Promise((resolve, reject) => {
    // A device's session is named after the device.
    const client = mqtt.connect(mqttUrl, { clientId: deviceId, clean: true, reconnectPeriod: 0, connectTimeout: 10_000 });
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        client.end(true);
        reject(err);
      } else {
        client.end(false, {}, () => resolve());
      }
    };
    const timer = setTimeout(() => finish(new Error(`no PUBACK within ${ackTimeoutMs} ms`)), ackTimeoutMs);
    client.once('error', (err) => finish(err));
    client.once('close', () => finish(new Error('connection closed before PUBACK')));
    client.once('connect', () => {
      client.publish(topic, body, { qos: 1 }, (err) => finish(err ?? null));
    });
  });
}

/**
 * Waits until the engine has taken `count` device messages of `type` (its
 * `anxin_mqtt_messages_received_total`, counted as the engine acts on each). A device's PUBACK
 * from the embedded broker says only that the broker has it: a test that stops anxind right
 * after it would race the engine.
 */
export async function engineTook(consoleUrl, type, count = 1, timeoutMs = 15_000) {
  const url = new URL('/metrics', consoleUrl);
  const line = new RegExp(`^anxin_mqtt_messages_received_total\\{type="${type}"\\} (\\d+)`, 'm');
  const until = Date.now() + timeoutMs;
  let seen = 0;
  while (Date.now() < until) {
    const m = line.exec(await (await fetch(url)).text());
    seen = m ? Number(m[1]) : 0;
    if (seen >= count) return seen;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`the engine took ${seen} ${type} message(s) in ${timeoutMs} ms, not ${count}`);
}

/** The family links the demo printed at start (in `daemon.tail()`): [{elder, url, device}]. */
export function demoLinks(tail) {
  const links = [];
  const lines = tail.split('\n');
  lines.forEach((line, n) => {
    const m = /Family page of (\S+) for .*: (http:\/\/\S+\/family#t=[0-9a-f]{64})/.exec(line);
    const d = /press device (\S+) to see it live/.exec(lines[n + 1] || '');
    if (m && d) links.push({ elder: m[1], url: m[2], device: d[1] });
  });
  return links;
}

/** The demo's dispatcher, as the session endpoint describes them. */
export const DEMO_DISPATCHER = { id: 'dispatcher', name: '值班调度员', role: 'dispatcher' };

const ASSET_TYPES = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };

/**
 * What the daemon would answer for `path`, read from the working tree: one of `pages`
 * ({'/console': 'console.html'}), or any file under /assets/ (the pages' modules, the
 * shared ones, the vendored Leaflet). Null for anything else.
 */
export async function assetFile(path, pages) {
  let name;
  let type;
  if (pages[path]) {
    name = pages[path];
    type = 'text/html; charset=utf-8';
  } else if (path.startsWith('/assets/') && !path.includes('..')) {
    name = path.slice('/assets/'.length);
    type = ASSET_TYPES[name.slice(name.lastIndexOf('.'))];
  }
  if (!name || !type) return null;
  const body = await readFile(join(assetsDir, name)).catch(() => null);
  return body ? { type, body } : null;
}

/**
 * Serves the console assets from the working tree at a made-up origin, for mocked feeds,
 * with a stand-in for the session endpoints: `user` is who is signed in at first (null for
 * nobody); POST /api/v1/session accepts `password` for any user name.
 */
export async function serveAssets(page, origin, { user = DEMO_DISPATCHER, password = 'anxin-demo' } = {}) {
  const session = { user };
  await page.route(`${origin}/**`, async (route) => {
    const request = route.request();
    const path = new URL(request.url()).pathname;
    if (path === '/api/v1/session') {
      const json = (status, body) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
      if (request.method() === 'GET') return session.user ? json(200, { user: session.user }) : json(401, { error: 'not signed in' });
      if (request.method() === 'DELETE') {
        session.user = null;
        return route.fulfill({ status: 204 });
      }
      const body = JSON.parse(request.postData() || '{}');
      if (body.password !== password) return json(401, { error: 'wrong user or password' });
      session.user = { id: body.user, name: body.user, role: body.user.startsWith('supervisor') ? 'supervisor' : 'dispatcher' };
      return json(200, { user: session.user });
    }
    const file = await assetFile(path, { '/console': 'console.html' });
    if (!file) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({ status: 200, contentType: file.type, body: file.body });
  });
  return session;
}

/**
 * Signs in on the console page as a person does (the form, then the button) and waits for
 * the feed's first snapshot. The click also lets the page make sound.
 */
export async function signIn(page, consoleUrl, { user = 'dispatcher', password = 'anxin-demo', timeout = 15_000 } = {}) {
  await page.goto(consoleUrl);
  await page.locator('#signin-user').fill(user);
  await page.locator('#signin-password').fill(password);
  await page.locator('#signin-submit').click();
  await page.locator('#conn-status[data-state="connected"]').waitFor({ timeout });
  await page.locator('#incidents[data-loaded="true"]').waitFor({ timeout });
}

/** Counts the oscillators a page starts (its alarm is Web Audio beeps): add as an init script. */
export function countBeeps() {
  window.__beeps = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function counted(...args) {
    window.__beeps += 1;
    return start.apply(this, args);
  };
}

/** Records every oscillator a page starts, with its frequency and wave, in `window.__tones`
 * (its alarm is Web Audio tones): add as an init script. */
export function recordTones() {
  window.__tones = [];
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function recorded(...args) {
    window.__tones.push({ hz: this.frequency.value, wave: this.type });
    return start.apply(this, args);
  };
}

/**
 * Asks the server itself, over a second console socket from the page (it carries the page's
 * session cookie), for its current snapshot.
 */
export async function serverSnapshot(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
        const ws = new WebSocket(`${scheme}//${location.host}/ws`);
        const timer = setTimeout(() => {
          ws.close();
          reject(new Error('no snapshot on a fresh socket within 10 s'));
        }, 10_000);
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data);
          if (msg.type !== 'snapshot') return;
          clearTimeout(timer);
          ws.close();
          resolve(msg);
        };
      }),
  );
}

/** Publishes many presses, each from its own device session, a few at a time. */
export async function publishMany(mqttUrl, deviceIds, { concurrency = 16, event = {} } = {}) {
  let next = 0;
  const worker = async () => {
    while (next < deviceIds.length) {
      const id = deviceIds[next];
      next += 1;
      await publishEvent(mqttUrl, id, typeof event === 'function' ? event(id) : event);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, deviceIds.length) }, worker));
}

/** Runs `statement` with psql on the database at `url` and returns its unaligned output. */
export async function sql(url, statement) {
  const { stdout } = await promisify(execFile)('psql', [url, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', statement]);
  return stdout.trim();
}

/** The URL of database `name` on the PostgreSQL server `url` names. */
export function databaseUrl(url, name) {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
