// The console's map against a real anxind with `[consoles.map]` set to a tile server on
// 127.0.0.1 (this file's own, serving PNGs), in headless Chromium: tiles are fetched and
// shown with their attribution; markers sit where the tiles have their WGS-84 position, or
// on GCJ-02 tiles where GCJ-02 has it, and a click is read back as WGS-84; "show on map"
// centres the incident at street level; each kind of marker has its own colour; the
// suggestions say each responder's travel mode and why they are in that order; a responder
// retired through the ledger's API leaves the map at once.
//
// A small district of its own (a registry file added to the demo's, 20 km from it) makes the
// distances exact: a responder on foot 960 m from an elder and one on an e-bike 2.7 km away.
//
// Run from the repository root after `cargo build -p anxind`:
//   ANXIND_BIN=$PWD/target/debug/anxind node --test e2e/console-map.test.mjs

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import { toGcj02 } from '../crates/anxin-api/assets/common/coords.js';
import { launchChromium, publishEvent, resultsDir, screenshotsDir, signIn, spawnDaemon, watchPageErrors } from './support.mjs';

const SHOWS_UP = { timeout: 15_000 };
const EARTH_RADIUS_M = 6_371_008.8;
const DEG = Math.PI / 180;

// ---- a tile server -------------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A 256 px map-like tile: paper, a street grid, a darker edge; `odd` tints it a little. */
function tilePng(odd) {
  const size = 256;
  const rows = [];
  for (let y = 0; y < size; y += 1) {
    const row = Buffer.alloc(1 + size * 3);
    for (let x = 0; x < size; x += 1) {
      const street = x % 64 < 5 || y % 64 < 5;
      const edge = x === 0 || y === 0;
      const rgb = edge ? [170, 170, 160] : street ? [255, 255, 255] : odd ? [228, 232, 214] : [236, 230, 216];
      rgb.forEach((v, i) => {
        row[1 + x * 3 + i] = v;
      });
    }
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Serves /tiles/{z}/{x}/{y}.png on 127.0.0.1 and remembers what was asked for. */
async function startTileServer() {
  const tiles = [tilePng(false), tilePng(true)];
  const requests = [];
  const server = createServer((req, res) => {
    const m = /^\/tiles\/(\d+)\/(\d+)\/(\d+)\.png$/.exec(req.url);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const [z, x, y] = m.slice(1).map(Number);
    requests.push({ z, x, y });
    res.writeHead(200, { 'content-type': 'image/png', 'access-control-allow-origin': '*' });
    res.end(tiles[(x + y) % 2]);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/tiles/{z}/{x}/{y}.png`, requests, close: () => new Promise((ok) => server.close(ok)) };
}

// ---- a district of our own -----------------------------------------------------------------

/** The point `north` and `east` metres from `p` (on a sphere; exact enough for a few km). */
function offset(p, north, east) {
  return {
    lat: p.lat + north / EARTH_RADIUS_M / DEG,
    lon: p.lon + east / (EARTH_RADIUS_M * Math.cos(p.lat * DEG)) / DEG,
  };
}

// Cluster A: elders who press "service" (a dispatcher sends somebody), with a responder on
// foot 960 m north and one on an e-bike 2.7 km south of the first. C and D lie over 5 km
// (the offer distance) east of them, each with a responder of its own, for an offer and a job.
const HOME_A = { lat: 25.2, lon: 102.9 };
const HOME_B = offset(HOME_A, 800, 900);
const HOME_C = offset(HOME_A, -500, 5200);
const HOME_D = offset(HOME_C, -800, 0);
const TOKEN = (id) => `map-token-${id}`;
const sha256 = (s) => createHash('sha256').update(s).digest('hex');

function registry() {
  const elder = (id, name, home) => ({
    id,
    name,
    address: `昆明市官渡区测试路 ${id} 号`,
    home,
    phone: '13800009999',
    notes: '',
    profile: { birth_year: 1940, lives_alone: true, conditions: [], medications: [], mobility: '', language: '', door_notes: '', contacts: [] },
  });
  const responder = (id, name, mode, position, onDuty = true) => ({
    id,
    name,
    station_id: 'map-s1',
    phone: '13900009999',
    position,
    on_duty: onDuty,
    mode,
    skills: ['first_aid'],
    position_at: null,
    token_sha256: sha256(TOKEN(id)),
  });
  return {
    elders: [elder('map-ea', '甲老人', HOME_A), elder('map-eb', '乙老人', HOME_B), elder('map-ec', '丙老人', HOME_C), elder('map-ed', '丁老人', HOME_D)],
    devices: ['a', 'b', 'c', 'd'].map((k) => ({ id: `map-d${k}`, elder_id: `map-e${k}` })),
    stations: [{ id: 'map-s1', name: '测试路社区居家养老服务中心', position: offset(HOME_A, -300, -300), phone: '0871-68009999', service_circle_min: 30 }],
    responders: [
      responder('map-rf', '步行员', 'foot', offset(HOME_A, 960, 0)),
      responder('map-re', '骑车员', 'ebike', offset(HOME_A, -2700, 0)),
      responder('map-ro', '休息员', 'foot', offset(HOME_A, 0, 500), false),
      responder('map-rc', '丙站员', 'foot', offset(HOME_C, 200, 0)),
      responder('map-rd', '丁站员', 'foot', offset(HOME_D, 200, 0)),
    ],
    staff: [],
  };
}

// ---- where a marker is, read off the tiles under it -----------------------------------------

/** The centre of an element on the page, in CSS pixels. */
async function centre(locator) {
  const box = await locator.boundingBox();
  assert.ok(box, 'the element is laid out');
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/**
 * The latitude and longitude the tiles show at page pixel `at`: the tile image under it
 * names its z/x/y, and Web Mercator does the rest. Also how many metres a pixel is there.
 */
async function tilePointAt(page, at) {
  const tile = await page.evaluate(({ x, y }) => {
    for (const img of document.querySelectorAll('#map .layer-tiles img')) {
      const r = img.getBoundingClientRect();
      if (img.complete && img.naturalWidth > 0 && x >= r.left && x < r.right && y >= r.top && y < r.bottom) {
        return { src: img.src, left: r.left, top: r.top, width: r.width, height: r.height };
      }
    }
    return null;
  }, at);
  assert.ok(tile, `a loaded tile under ${JSON.stringify(at)}`);
  const [z, x, y] = /\/tiles\/(\d+)\/(\d+)\/(\d+)\.png$/.exec(tile.src).slice(1).map(Number);
  const n = 2 ** z;
  const fx = x + (at.x - tile.left) / tile.width;
  const fy = y + (at.y - tile.top) / tile.height;
  const lat = Math.atan(Math.sinh(Math.PI * (1 - (2 * fy) / n))) / DEG;
  const lon = (fx / n) * 360 - 180;
  const mPerPx = ((2 * Math.PI * EARTH_RADIUS_M * Math.cos(lat * DEG)) / n) / tile.width;
  return { lat, lon, z, mPerPx };
}

function metres(a, b) {
  const dy = (a.lat - b.lat) * DEG * EARTH_RADIUS_M;
  const dx = (a.lon - b.lon) * DEG * EARTH_RADIUS_M * Math.cos(((a.lat + b.lat) / 2) * DEG);
  return Math.hypot(dx, dy);
}

// ---- the daemon and the page ----------------------------------------------------------------

async function startConsole({ crs }) {
  const tiles = await startTileServer();
  const dir = await mkdtemp(join(tmpdir(), 'anxin-map-'));
  const config = join(dir, 'anxin.toml');
  const registryFile = join(dir, 'registry.json');
  await writeFile(
    config,
    [
      '[dispatch]',
      // Offers stay put for the length of the test, whatever the machine's speed.
      'offer_timeout_s = 900',
      '[consoles.map]',
      'provider = "custom"',
      `url = "${tiles.url}"`,
      `crs = "${crs}"`,
      'attribution = "© Test tiles 127.0.0.1"',
      'max_zoom = 18',
      '',
    ].join('\n'),
  );
  await writeFile(registryFile, JSON.stringify(registry()));
  let daemon;
  let browser;
  const stop = async () => {
    await browser?.close();
    await daemon?.stop();
    await tiles.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    daemon = await spawnDaemon({ extraArgs: ['--config', config, '--registry', registryFile] });
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai', reducedMotion: 'reduce' });
    const page = await context.newPage();
    const errors = watchPageErrors(page);
    await signIn(page, daemon.consoleUrl);
    return { tiles, daemon, browser, page, errors, stop };
  } catch (err) {
    // A start that fails lets go of what it started, or the open tile server keeps this file
    // (and CI) waiting until the runner's timeout.
    await stop().catch(() => {});
    throw err;
  }
}

const row = (page, deviceId) => page.locator(`#incidents tbody tr[data-device-id="${deviceId}"]`);
const marker = (page, kind, id) => page.locator(`#map [data-marker="${kind}"][data-id="${id}"]`);

/** Presses `type` on a device and returns the incident's id once its row is on the page. */
async function press(c, deviceId, type) {
  await publishEvent(c.daemon.mqttUrl, deviceId, { type });
  await row(c.page, deviceId).waitFor(SHOWS_UP);
  return row(c.page, deviceId).getAttribute('data-incident-id');
}

/** Opens the incident's panel and uses 在地图上显示; waits for street-level tiles. */
async function showOnMap(page, deviceId, id) {
  await row(page, deviceId).click();
  await page.locator('#detail [data-action="show-on-map"]').click();
  await page.locator('#detail').waitFor({ state: 'hidden', ...SHOWS_UP });
  await page.waitForFunction(
    (z) => [...document.querySelectorAll('#map .layer-tiles img')].some((img) => img.complete && img.naturalWidth > 0 && img.src.includes(`/tiles/${z}/`)),
    17,
    SHOWS_UP,
  );
  await marker(page, 'incident', id).waitFor(SHOWS_UP);
}

async function failing(c, name, fn) {
  try {
    await fn();
  } catch (err) {
    await mkdir(resultsDir, { recursive: true });
    await c?.page?.screenshot({ path: join(resultsDir, `failed-map-${name}.png`) }).catch(() => {});
    err.message += `\n(daemon log: ${c?.daemon?.logPath})`;
    throw err;
  }
}

describe('the map on WGS-84 tiles', () => {
  let c;
  let incidentA;

  before(async () => {
    c = await startConsole({ crs: 'wgs84' });
  });

  after(async () => {
    await c?.stop();
  });

  it('fetches the configured tiles, shows them and says whose they are', () =>
    failing(c, 'tiles', async () => {
      await c.page.waitForFunction(() => [...document.querySelectorAll('#map .layer-tiles img')].filter((i) => i.complete && i.naturalWidth === 256).length >= 4, null, SHOWS_UP);
      assert.ok(c.tiles.requests.length >= 4, `tile requests: ${JSON.stringify(c.tiles.requests)}`);
      // The tiles asked for are the ones the page shows: its zoom and the district.
      const shown = await c.page.locator('#map .layer-tiles img').evaluateAll((imgs) => imgs.map((i) => i.src));
      for (const src of shown) {
        const [z, x, y] = /\/tiles\/(\d+)\/(\d+)\/(\d+)\.png$/.exec(src).slice(1).map(Number);
        assert.ok(c.tiles.requests.some((r) => r.z === z && r.x === x && r.y === y), src);
      }
      const attribution = c.page.locator('#map [data-field="map-attribution"]');
      assert.ok(await attribution.isVisible());
      assert.equal((await attribution.textContent()).trim(), '© Test tiles 127.0.0.1');
      assert.deepEqual(c.errors, []);
    }));

  it('centres an incident at street level when 在地图上显示 is used, where the tiles have its home', () =>
    failing(c, 'show-on-map', async () => {
      incidentA = await press(c, 'map-da', 'service');
      await showOnMap(c.page, 'map-da', incidentA);
      const at = await centre(marker(c.page, 'incident', incidentA));
      const mapBox = await c.page.locator('#map').boundingBox();
      const middle = { x: mapBox.x + mapBox.width / 2, y: mapBox.y + mapBox.height / 2 };
      assert.ok(Math.hypot(at.x - middle.x, at.y - middle.y) <= 2, `marker at ${JSON.stringify(at)}, map centre ${JSON.stringify(middle)}`);
      const shown = await tilePointAt(c.page, at);
      assert.ok(shown.z >= 17, `zoom ${shown.z}`);
      const off = metres(shown, HOME_A);
      assert.ok(off <= 3 * shown.mPerPx, `WGS-84 tiles: the marker is ${off.toFixed(1)} m from the home (${shown.mPerPx.toFixed(2)} m a pixel)`);
      await c.page.screenshot({ path: join(screenshotsDir, 'console-map-show-on-map.png') });
    }));

  it('gives each kind of incident and responder its own colour, with a legend', () =>
    failing(c, 'colours', async () => {
      const { page } = c;
      // Another incident that needs a person, one offered (C) and one accepted (D).
      await press(c, 'map-db', 'service');
      await press(c, 'map-dc', 'sos');
      const incidentD = await press(c, 'map-dd', 'sos');
      await marker(page, 'responder', 'map-rc').and(page.locator('.st-offered')).waitFor(SHOWS_UP);
      await marker(page, 'responder', 'map-rd').and(page.locator('.st-offered')).waitFor(SHOWS_UP);
      const accepted = await fetch(new URL('/api/v1/responder/actions', c.daemon.consoleUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN('map-rd')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'accept', incident_id: Number(incidentD) }),
      });
      assert.equal(accepted.status, 200, await accepted.text());
      await marker(page, 'responder', 'map-rd').and(page.locator('.st-busy')).waitFor(SHOWS_UP);
      // A selected, from 在地图上显示; then far enough out to see all of them.
      await showOnMap(page, 'map-da', incidentA);
      await marker(page, 'incident', incidentA).and(page.locator('.selected')).waitFor(SHOWS_UP);
      for (let i = 0; i < 4; i += 1) await page.locator('#map [data-map-control="zoom-out"]').click();
      const box = await page.locator('#map').boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width / 2 - 150, box.y + box.height / 2 - 60, { steps: 5 });
      await page.mouse.up();

      const ids = {
        'incident needing a person': ['incident', await row(page, 'map-db').getAttribute('data-incident-id')],
        'incident with somebody offered': ['incident', await row(page, 'map-dc').getAttribute('data-incident-id')],
        'selected incident': ['incident', incidentA],
        'responder available': ['responder', 'map-rf'],
        'responder offered': ['responder', 'map-rc'],
        'responder on a job': ['responder', 'map-rd'],
        'responder off duty': ['responder', 'map-ro'],
      };
      const looks = {};
      for (const [what, [kind, id]] of Object.entries(ids)) {
        looks[what] = await marker(page, kind, id).evaluate((node) => {
          const dot = getComputedStyle(node.querySelector('.mk-dot'));
          const ring = node.querySelector('.mk-ring');
          const r = ring ? getComputedStyle(ring) : null;
          return [dot.backgroundColor, dot.borderTopColor, dot.borderTopWidth, r ? `${r.borderTopColor} ${r.borderTopWidth}` : ''].join(' / ');
        });
      }
      const distinct = new Set(Object.values(looks));
      assert.equal(distinct.size, 7, `markers look alike:\n${JSON.stringify(looks, null, 2)}`);
      // No two fills alike among the incidents' and the responders' states (the selected one
      // keeps its state's fill and gains a ring).
      const fill = (what) => looks[what].split(' / ')[0];
      const fills = ['incident needing a person', 'incident with somebody offered', 'responder available', 'responder offered', 'responder on a job'].map(fill);
      assert.equal(new Set(fills).size, fills.length, `fills alike: ${fills.join(', ')}`);
      assert.notEqual(looks['selected incident'].split(' / ')[3], looks['incident needing a person'].split(' / ')[3], 'the selected incident is ringed');
      for (const entry of ['needs-person', 'open', 'selected']) assert.ok(await page.locator(`#map-legend [data-legend="${entry}"]`).isVisible(), entry);
      await page.screenshot({ path: join(screenshotsDir, 'console-map-colours.png') });
    }));

  it('shows each suggestion\'s travel mode and ETA, and why the nearer one on foot ranks lower', () =>
    failing(c, 'suggestions', async () => {
      const { page } = c;
      await row(page, 'map-da').click();
      await page.locator('#detail [data-action="assign"]').click();
      await page.locator('#detail-form .suggestion').nth(1).waitFor(SHOWS_UP);
      const rows = await page.locator('#detail-form .suggestion').evaluateAll((items) =>
        items.map((li) => ({
          id: li.dataset.responderId,
          mode: li.querySelector('[data-field="mode"]')?.textContent,
          eta: li.querySelector('[data-field="eta"]')?.textContent,
          distance: li.querySelector('[data-field="distance"]')?.textContent,
        })),
      );
      const bike = rows.findIndex((r) => r.id === 'map-re');
      const foot = rows.findIndex((r) => r.id === 'map-rf');
      assert.ok(bike >= 0 && foot > bike, `the e-bike 2.7 km away first, then the walker 960 m away: ${JSON.stringify(rows)}`);
      assert.deepEqual(rows[bike], { id: 'map-re', mode: '电动车', eta: '约 15 分钟', distance: '2.7 公里' });
      assert.deepEqual(rows[foot], { id: 'map-rf', mode: '步行', eta: '约 18 分钟', distance: '960 米' });
      const why = page.locator('#detail-form [data-field="suggest-why"]');
      assert.match(await why.textContent(), /按谁最先到达排序.*步行 1\.2 米\/秒.*电动车 4 米\/秒/);
      assert.equal(
        await why.locator('[data-field="suggest-why-example"]').textContent(),
        ' 所以 骑车员（电动车 2.7 公里，约 15 分钟）排在更近的 步行员（步行 960 米，约 18 分钟）之前。',
      );
      await page.locator('#detail-form').screenshot({ path: join(screenshotsDir, 'console-suggestions-why-zh.png') });
      // And in English.
      await page.locator('#lang-toggle').click();
      await page.locator('#detail-form [data-field="suggest-why"]').filter({ hasText: 'Ranked by who gets there first' }).waitFor(SHOWS_UP);
      assert.equal(await page.locator('#detail-form .suggestion[data-responder-id="map-rf"] [data-field="mode"]').textContent(), 'on foot');
      assert.equal(await page.locator('#detail-form .suggestion[data-responder-id="map-re"] [data-field="mode"]').textContent(), 'e-bike');
      await page.locator('#detail-form').screenshot({ path: join(screenshotsDir, 'console-suggestions-why-en.png') });
      await page.locator('#lang-toggle').click();
      assert.deepEqual(c.errors, []);
    }));

  it('takes a responder the ledger retires off every console\'s map at once, card and all', () =>
    failing(c, 'retired', async () => {
      const { page } = c;
      // Out of the assign form and the incident's panel, back to the map.
      for (let i = 0; i < 3 && (await page.locator('#detail').isVisible()); i += 1) await page.keyboard.press('Escape');
      await page.locator('#detail').waitFor({ state: 'hidden', ...SHOWS_UP });
      const resting = marker(page, 'responder', 'map-ro');
      await resting.click();
      const card = page.locator('#map-card');
      await card.filter({ hasText: '休息员' }).waitFor(SHOWS_UP);
      // The demo's admin retires them through the ledger's API, with the entry's tag.
      const base = c.daemon.consoleUrl;
      const session = await fetch(new URL('/api/v1/session', base), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'admin', password: 'anxin-demo' }),
      });
      assert.equal(session.status, 200, await session.text());
      const cookie = session.headers.get('set-cookie').split(';')[0];
      const entry = new URL('/api/v1/admin/responders/map-ro', base);
      const read = await fetch(entry, { headers: { cookie } });
      assert.equal(read.status, 200, await read.text());
      const retired = await fetch(entry, { method: 'DELETE', headers: { cookie, 'if-match': read.headers.get('etag') } });
      assert.equal(retired.status, 200, await retired.text());
      // Gone from the open console without a reload; the card that showed them closes.
      await resting.waitFor({ state: 'detached', ...SHOWS_UP });
      await card.waitFor({ state: 'hidden', ...SHOWS_UP });
      assert.equal(await marker(page, 'responder', 'map-rf').count(), 1, 'the others stay');
      // Nor does a reload bring them back.
      await page.reload();
      await marker(page, 'responder', 'map-rf').waitFor({ state: 'attached', ...SHOWS_UP });
      assert.equal(await resting.count(), 0);
      assert.deepEqual(c.errors, []);
    }));
});

describe('the map on GCJ-02 tiles', () => {
  let c;

  before(async () => {
    c = await startConsole({ crs: 'gcj02' });
  });

  after(async () => {
    await c?.stop();
  });

  it('draws a WGS-84 position where GCJ-02 tiles have it, and reads a click back as WGS-84', () =>
    failing(c, 'gcj02', async () => {
      const id = await press(c, 'map-da', 'service');
      await showOnMap(c.page, 'map-da', id);
      const at = await centre(marker(c.page, 'incident', id));
      const shown = await tilePointAt(c.page, at);
      const gcj = toGcj02(HOME_A);
      const shift = metres(gcj, HOME_A);
      assert.ok(shift > 100, `the shift here is ${shift} m`);
      const offGcj = metres(shown, gcj);
      const offWgs = metres(shown, HOME_A);
      assert.ok(offGcj <= 3 * shown.mPerPx, `the marker is ${offGcj.toFixed(1)} m from the GCJ-02 point (${shown.mPerPx.toFixed(2)} m a pixel)`);
      assert.ok(offWgs > shift - 5, `and ${offWgs.toFixed(1)} m from where WGS-84 tiles would have it`);
      await c.page.screenshot({ path: join(screenshotsDir, 'console-map-gcj02.png') });

      // Click the map exactly where the marker is drawn (markers let the click through for
      // this): the point read back is the elder's home in WGS-84, not its GCJ-02 twin.
      await c.page.addStyleTag({ content: '#map .leaflet-marker-icon { pointer-events: none !important; }' });
      await c.page.mouse.click(at.x, at.y);
      const point = c.page.locator('#map-card [data-field="map-point"]');
      await point.waitFor(SHOWS_UP);
      const read = { lat: Number(await point.getAttribute('data-lat')), lon: Number(await point.getAttribute('data-lon')) };
      assert.ok(metres(read, HOME_A) <= 3 * shown.mPerPx, `read back ${JSON.stringify(read)}, ${metres(read, HOME_A).toFixed(1)} m from the home`);
      assert.deepEqual(c.errors, []);
    }));
});
