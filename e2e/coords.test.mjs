// WGS-84 <-> GCJ-02 (crates/anxin-api/assets/common/coords.js) against pairs published by
// others, and the inverse against the forward shift. No browser, no daemon: node:test alone.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inChina, toGcj02, toWgs84 } from '../crates/anxin-api/assets/common/coords.js';

// Metres between two nearby points (equirectangular: exact enough over a few kilometres).
function metres(a, b) {
  const rad = Math.PI / 180;
  const dy = (a.lat - b.lat) * rad * 6_371_008.8;
  const dx = (a.lon - b.lon) * rad * 6_371_008.8 * Math.cos(((a.lat + b.lat) / 2) * rad);
  return Math.hypot(dx, dy);
}

// Amap (高德) Web Service API, 坐标转换 (coordinate conversion), coordsys=gps → Amap's own
// (GCJ-02): the example request in https://lbs.amap.com/api/webservice/guide/api/convert
// (locations=116.481499,39.990475|116.481499,39.990375), whose answer the same API reference
// shows as "116.487585177952,39.991754014757;116.487585177952,39.991653917101" (as published
// in Amap's API documentation on apifox: https://apifox.com/apidoc/docs-site/759159/api-14671355).
// Amap's service is the official algorithm, of which the published formula is a close
// reconstruction: the two agree to about 4 cm here, far below a map's pixel.
const AMAP = [
  { wgs: { lat: 39.990475, lon: 116.481499 }, gcj: { lat: 39.991754014757, lon: 116.487585177952 }, within_m: 0.1 },
  { wgs: { lat: 39.990375, lon: 116.481499 }, gcj: { lat: 39.991653917101, lon: 116.487585177952 }, within_m: 0.1 },
];

// The test set of googollee/eviltransform (the best-known open implementation, in a dozen
// languages, each run against these): Shanghai, Shenzhen and Beijing, WGS-84 → GCJ-02.
// https://github.com/googollee/eviltransform (its tests, e.g. python/test.py, TESTS). They
// were computed with the published formula, so they must agree to a millimetre.
const EVILTRANSFORM = [
  { wgs: { lat: 31.1774276, lon: 121.5272106 }, gcj: { lat: 31.17530398364597, lon: 121.531541859215 }, within_m: 0.001 },
  { wgs: { lat: 22.543847, lon: 113.912316 }, gcj: { lat: 22.540796131694766, lon: 113.9171764808363 }, within_m: 0.001 },
  { wgs: { lat: 39.911954, lon: 116.377817 }, gcj: { lat: 39.91334545536069, lon: 116.38404722455657 }, within_m: 0.001 },
];

const REFERENCE = [...AMAP, ...EVILTRANSFORM];

describe('WGS-84 to GCJ-02', () => {
  it('agrees with Amap (to 10 cm) and the eviltransform test set (to 1 mm)', () => {
    for (const { wgs, gcj, within_m } of REFERENCE) {
      const got = toGcj02(wgs);
      assert.ok(metres(got, gcj) < within_m, `${JSON.stringify(wgs)}: ${JSON.stringify(got)}, published ${JSON.stringify(gcj)} (${metres(got, gcj)} m)`);
    }
  });

  it('moves a point in China by hundreds of metres', () => {
    // Kunming, where the demo district is: the shift is real and large enough to see on a map.
    const kunming = { lat: 25.0335, lon: 102.7005 };
    const d = metres(kunming, toGcj02(kunming));
    assert.ok(d > 100 && d < 1000, `${d} m`);
  });

  it('leaves points outside China where they are', () => {
    for (const [name, lat, lon] of [
      ['Seoul', 37.5665, 126.978],
      ['Pyongyang', 39.0392, 125.7625],
      ['Tokyo', 35.6762, 139.6503],
      ['Ulaanbaatar', 47.8864, 106.9057],
      ['Choibalsan', 48.0667, 114.5],
      ['Hanoi', 21.0278, 105.8342],
      ['Kathmandu', 27.7172, 85.324],
      ['Almaty', 43.222, 76.8512],
      ['Vladivostok', 43.1155, 131.8855],
      ['London', 51.5074, -0.1278],
      ['Sydney', -33.8688, 151.2093],
    ]) {
      assert.equal(inChina(lat, lon), false, name);
      assert.deepEqual(toGcj02({ lat, lon }), { lat, lon }, name);
      assert.deepEqual(toWgs84({ lat, lon }), { lat, lon }, name);
    }
  });

  it('shifts every provincial capital and the SARs', () => {
    for (const [name, lat, lon] of [
      ['Beijing', 39.9042, 116.4074],
      ['Kunming', 25.0389, 102.7183],
      ['Shanghai', 31.2304, 121.4737],
      ['Guangzhou', 23.1291, 113.2644],
      ['Haikou', 20.044, 110.1999],
      ['Harbin', 45.8038, 126.535],
      ['Hohhot', 40.8426, 111.7492],
      ['Urumqi', 43.8256, 87.6168],
      ['Lhasa', 29.65, 91.1],
      ['Xining', 36.6171, 101.7782],
      ['Shenyang', 41.8057, 123.4315],
      ['Changchun', 43.8171, 125.3235],
      ['Hong Kong', 22.3193, 114.1694],
      ['Macau', 22.1987, 113.5439],
      ['Taipei', 25.033, 121.5654],
    ]) {
      assert.equal(inChina(lat, lon), true, name);
      assert.ok(metres({ lat, lon }, toGcj02({ lat, lon })) > 50, name);
    }
  });
});

describe('GCJ-02 back to WGS-84', () => {
  it('recovers the published WGS-84 points (Amap to 10 cm, the others to 1 mm)', () => {
    for (const { wgs, gcj, within_m } of REFERENCE) {
      const got = toWgs84(gcj);
      assert.ok(metres(got, wgs) < within_m, `${JSON.stringify(gcj)}: ${JSON.stringify(got)}, published ${JSON.stringify(wgs)} (${metres(got, wgs)} m)`);
    }
  });

  it('inverts the shift across China, not just at the published points', () => {
    // A grid over the boxes, deterministic; each point there and back again.
    let worst = 0;
    for (let lat = 18.5; lat < 53.5; lat += 0.37) {
      for (let lon = 74; lon < 134.5; lon += 0.53) {
        if (!inChina(lat, lon)) continue;
        const g = toGcj02({ lat, lon });
        if (!inChina(g.lat, g.lon)) continue;
        worst = Math.max(worst, metres(toWgs84(g), { lat, lon }));
      }
    }
    assert.ok(worst < 0.001, `worst round trip ${worst} m`);
  });

  it('is not the naive one-step inverse, which is off by metres', () => {
    // g - (shift at g) is the shortcut many use; the iteration must do better than it.
    const { wgs, gcj } = EVILTRANSFORM[0];
    const once = toGcj02(gcj);
    const naive = { lat: 2 * gcj.lat - once.lat, lon: 2 * gcj.lon - once.lon };
    assert.ok(metres(naive, wgs) > 0.1, `naive is ${metres(naive, wgs)} m off`);
    assert.ok(metres(toWgs84(gcj), wgs) < 0.001);
  });
});
