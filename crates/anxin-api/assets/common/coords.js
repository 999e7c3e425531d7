// WGS-84 and GCJ-02, the two datums the console's maps come in.
//
// Everything Anxin stores (devices' fixes, elders' homes, stations, phones' GPS) is WGS-84.
// Map tiles published in mainland China under the 2002 rules of the State Bureau of
// Surveying and Mapping (Amap/高德, Tencent, Google's China tiles) are drawn in GCJ-02 ("Mars
// coordinates"): WGS-84 moved by a smooth, deliberately irregular offset of a few hundred
// metres. Tianditu (天地图) is CGCS2000, which agrees with WGS-84 to centimetres, so it needs
// no shift. To put a WGS-84 point on GCJ-02 tiles it is shifted first (toGcj02), and a point
// read off such a map (a click) is shifted back (toWgs84).
//
// The forward shift is the published formula (Krasovsky 1940 ellipsoid, polynomial and sine
// terms in the distance from 105°E, 35°N); it has no closed inverse, so toWgs84 solves
// toGcj02(w) = g by fixed-point iteration: the offset changes by less than a thousandth of
// a metre per metre, so each step gains about three digits and a few steps reach a
// millimetre. e2e/coords.test.mjs checks both against published reference pairs.
//
// Outside China no shift applies: maps there are WGS-84. Where China ends is approximated by
// a few rectangles (CHINA): exact to a few tens of kilometres along land borders, which is
// far from any city a deployment serves, and leaving Seoul, Tokyo, Hanoi, Ulaanbaatar and
// the rest of the world unshifted.

// Krasovsky 1940: the semi-major axis (m) and the square of the eccentricity.
const A = 6378245.0;
const EE = 0.00669342162296594323;
const RAD = Math.PI / 180;

// [south, west, north, east] in degrees; a point in any of them is in China.
const CHINA = [
  [18.0, 108.5, 21.5, 111.4], // Hainan and the Leizhou peninsula
  [21.5, 97.5, 41.5, 124.3], // from Yunnan to Liaoning, Taiwan, Hong Kong and Macau
  [41.5, 105.0, 42.5, 124.3], // Inner Mongolia's and Hebei's north, Jilin's west
  [42.5, 111.5, 44.5, 126.0], // Xilingol, Chifeng, Jilin's west
  [44.5, 116.0, 50.3, 126.0], // Hulunbuir, Heilongjiang's west (Qiqihar)
  [50.3, 119.5, 53.6, 126.0], // the Greater Khingan up to Mohe
  [42.5, 126.0, 48.5, 131.3], // Jilin's east and Heilongjiang (Harbin, Mudanjiang)
  [45.0, 131.3, 48.5, 134.8], // Heilongjiang's east, to Fuyuan
  [36.0, 73.5, 41.5, 97.5], // southern Xinjiang, Qinghai, Gansu's west
  [41.5, 80.0, 45.0, 97.5], // Xinjiang: Urumqi, Turpan, Hami
  [45.0, 82.5, 49.2, 90.5], // Xinjiang's north: Karamay, Altay
  [28.0, 78.5, 36.0, 97.5], // Tibet and Qinghai's south
];

/** Whether the shift applies at this WGS-84 (or GCJ-02) point. */
export function inChina(lat, lon) {
  return CHINA.some(([s, w, n, e]) => lat >= s && lat <= n && lon >= w && lon <= e);
}

// The offset in metres-like units before scaling, as functions of the distance in degrees
// east (x) and north (y) of 105°E, 35°N.
function offsetNorth(x, y) {
  let v = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  v += ((20 * Math.sin(6 * Math.PI * x) + 20 * Math.sin(2 * Math.PI * x)) * 2) / 3;
  v += ((20 * Math.sin(Math.PI * y) + 40 * Math.sin((Math.PI * y) / 3)) * 2) / 3;
  v += ((160 * Math.sin((Math.PI * y) / 12) + 320 * Math.sin((Math.PI * y) / 30)) * 2) / 3;
  return v;
}

function offsetEast(x, y) {
  let v = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  v += ((20 * Math.sin(6 * Math.PI * x) + 20 * Math.sin(2 * Math.PI * x)) * 2) / 3;
  v += ((20 * Math.sin(Math.PI * x) + 40 * Math.sin((Math.PI * x) / 3)) * 2) / 3;
  v += ((150 * Math.sin((Math.PI * x) / 12) + 300 * Math.sin((Math.PI * x) / 30)) * 2) / 3;
  return v;
}

// The shift in degrees at a WGS-84 point (no check of where it is).
function shift(lat, lon) {
  const x = lon - 105;
  const y = lat - 35;
  const phi = lat * RAD;
  const w = 1 - EE * Math.sin(phi) ** 2;
  // Metres per degree along the meridian and along the parallel, on Krasovsky's ellipsoid.
  const mPerDegNorth = ((A * (1 - EE)) / (w * Math.sqrt(w))) * RAD;
  const mPerDegEast = (A / Math.sqrt(w)) * Math.cos(phi) * RAD;
  return { dLat: offsetNorth(x, y) / mPerDegNorth, dLon: offsetEast(x, y) / mPerDegEast };
}

/** A WGS-84 {lat, lon} as GCJ-02 (unchanged outside China). */
export function toGcj02(p) {
  if (!inChina(p.lat, p.lon)) return { lat: p.lat, lon: p.lon };
  const { dLat, dLon } = shift(p.lat, p.lon);
  return { lat: p.lat + dLat, lon: p.lon + dLon };
}

// A step below this (degrees, about a tenth of a millimetre) ends the iteration.
const INVERSE_TOLERANCE = 1e-9;
const INVERSE_STEPS = 30;

/** A GCJ-02 {lat, lon} as WGS-84 (unchanged outside China): the w with toGcj02(w) = p. */
export function toWgs84(p) {
  if (!inChina(p.lat, p.lon)) return { lat: p.lat, lon: p.lon };
  // Start one shift back, then correct by how far forward lands from p.
  let lat = p.lat;
  let lon = p.lon;
  for (let i = 0; i < INVERSE_STEPS; i += 1) {
    const { dLat, dLon } = shift(lat, lon);
    const errLat = lat + dLat - p.lat;
    const errLon = lon + dLon - p.lon;
    lat -= errLat;
    lon -= errLon;
    if (Math.abs(errLat) < INVERSE_TOLERANCE && Math.abs(errLon) < INVERSE_TOLERANCE) break;
  }
  return { lat, lon };
}

/** The map's datum: `from` WGS-84 to the map, and back. */
export function datum(crs) {
  return crs === 'gcj02' ? { toMap: toGcj02, fromMap: toWgs84 } : { toMap: (p) => ({ lat: p.lat, lon: p.lon }), fromMap: (p) => ({ lat: p.lat, lon: p.lon }) };
}
