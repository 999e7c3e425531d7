// The console's map, drawn with Leaflet (vendored in ../vendor/leaflet/, so the console
// needs no network): incidents, responders coloured by status, stations with their service
// circles, and a line from each job to its responder, over a plain gridded background, with
// raster tiles behind them only when `[consoles.map]` names a provider (a tile that fails to
// load is left out and not asked for again), and their attribution in the corner.
//
// Every position given to the map is WGS-84, as stored. On GCJ-02 tiles (Amap) the map
// shifts each one before drawing it and shifts a clicked point back (../common/coords.js),
// so callers never see the map's datum.
//
// map-card.js makes the map with createMap(element, options) and feeds it changes. Markers
// are keyed by kind and id, so a change moves or restyles one marker. Each marker is an
// element with data-marker="<kind>" and data-id="<id>", which is what tests and styles use.

import { datum } from '../common/coords.js';
import * as L from '../vendor/leaflet/leaflet-src.esm.js';

const MIN_ZOOM = 3;
const MAX_ZOOM = 19;
// Fitting never zooms in further than this: a single incident still shows its streets.
const FIT_MAX_ZOOM = 16;
// Showing one incident: close enough to read the street names and see the buildings.
const STREET_ZOOM = 17;
// Where the console opens before anything is on it: Kunming.
const START = { lat: 25.04, lon: 102.6, zoom: 12 };
// What a service circle means on the ground: minutes at e-bike speed, less the detour
// streets make compared with a straight line. The legend says the same in words.
const EBIKE_M_PER_S = 4;
const DETOUR = 1.3;
// Pixel size of each kind of marker (the element users click).
const MARKER_PX = { incident: 26, responder: 18, station: 14 };
// Later panes draw above earlier ones: incidents above responders above stations.
const PANES = { station: 610, responder: 620, incident: 630 };

/** Metres a station's service circle reaches in a straight line. */
export function serviceRadiusM(minutes) {
  return (Number(minutes) * EBIKE_M_PER_S * 60) / DETOUR;
}

function validPoint(p) {
  return Boolean(p) && Number.isFinite(p.lat) && Number.isFinite(p.lon) && !(p.lat === 0 && p.lon === 0);
}


// The plain background: grid lines that move with the map, so a map with no tiles still
// shows that it pans and zooms.
const GridLayer = L.GridLayer.extend({
  createTile() {
    const tile = document.createElement('div');
    tile.className = 'map-grid-tile';
    return tile;
  },
});

// Tiles from the configured server; one that fails is removed and never asked for again
// (an unreachable tile server then costs one request a tile, not one a redraw).
const Tiles = L.TileLayer.extend({
  initialize(url, options) {
    L.TileLayer.prototype.initialize.call(this, url, options);
    this.failed = new Set();
    this.on('tileerror', ({ tile, coords }) => {
      this.failed.add(this.tileKey(coords));
      tile.remove();
    });
  },
  tileKey(coords) {
    const n = 2 ** coords.z;
    return `${coords.z}/${((coords.x % n) + n) % n}/${coords.y}`;
  },
  createTile(coords, done) {
    if (this.failed.has(this.tileKey(coords))) {
      const blank = document.createElement('div');
      setTimeout(() => done(null, blank), 0);
      return blank;
    }
    return L.TileLayer.prototype.createTile.call(this, coords, done);
  },
});

/**
 * Builds a map inside `root`. Options: onPick(kind, id) when a marker is clicked, onPoint({lat,
 * lon}) when the map is clicked elsewhere (WGS-84), and label(key) for the few words the map
 * itself shows (its buttons and its name).
 */
export function createMap(root, options = {}) {
  const onPick = options.onPick || (() => {});
  const onPoint = options.onPoint || (() => {});
  const label = options.label || ((k) => k);
  // The tiles' datum: what every WGS-84 position goes through on its way onto the map.
  let view = datum('wgs84');
  const toLatLng = (p) => {
    const q = view.toMap(p);
    return L.latLng(q.lat, q.lon);
  };
  const reduceMotion = Boolean(window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches);

  const map = L.map(root, {
    center: [START.lat, START.lon],
    zoom: START.zoom,
    minZoom: MIN_ZOOM,
    maxZoom: MAX_ZOOM,
    zoomSnap: 0,
    zoomDelta: 1,
    wheelPxPerZoomLevel: 120,
    zoomControl: false,
    attributionControl: false,
    // The console's own keys (j, k, arrows) move through the queue wherever the focus is.
    keyboard: false,
    boxZoom: false,
    zoomAnimation: !reduceMotion,
    fadeAnimation: !reduceMotion,
    markerZoomAnimation: !reduceMotion,
  });
  for (const [kind, z] of Object.entries(PANES)) map.createPane(`mk-${kind}s`).style.zIndex = String(z);
  new GridLayer({ tileSize: 256, zIndex: 0, className: 'map-grid' }).addTo(map);
  L.control.scale({ imperial: false, position: 'bottomleft', maxWidth: 120 }).addTo(map);

  // The view follows what is on it until the dispatcher moves it; the fit button hands it
  // back.
  let userMoved = false;
  let fitted = false;
  const moved = () => {
    userMoved = true;
  };
  map.on('dragstart', moved);
  root.addEventListener('wheel', moved, { passive: true, capture: true });
  root.addEventListener('dblclick', moved, { capture: true });

  const Buttons = L.Control.extend({
    onAdd() {
      const box = L.DomUtil.create('div', 'map-controls');
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    },
  });
  const buttons = new Buttons({ position: 'topright' }).addTo(map);
  const button = (text, key, fn) => {
    const b = L.DomUtil.create('button', '', buttons.getContainer());
    b.type = 'button';
    b.textContent = text;
    b.dataset.mapControl = key;
    b.addEventListener('click', fn);
    return b;
  };
  const zoomInButton = button('+', 'zoom-in', () => {
    moved();
    map.zoomIn(1);
  });
  const zoomOutButton = button('−', 'zoom-out', () => {
    moved();
    map.zoomOut(1);
  });
  const fitButton = button('⤢', 'fit', () => {
    userMoved = false;
    fit();
  });
  const updateButtons = () => {
    zoomInButton.disabled = map.getZoom() >= MAX_ZOOM;
    zoomOutButton.disabled = map.getZoom() <= MIN_ZOOM;
  };
  map.on('zoomend', updateButtons);
  updateButtons();

  // Whose tiles these are, as text (Leaflet's own control would take the setting as HTML).
  const Attribution = L.Control.extend({
    onAdd() {
      const box = L.DomUtil.create('div', 'map-attribution');
      box.dataset.field = 'map-attribution';
      box.hidden = true;
      return box;
    },
  });
  const attribution = new Attribution({ position: 'bottomright' }).addTo(map);

  // A click on the map itself (not a marker) reports where, in WGS-84.
  map.on('click', (e) => onPoint(view.fromMap({ lat: e.latlng.lat, lon: e.latlng.lng })));

  /** Keyed markers: kind -> id -> { marker, element } */
  const markers = { incident: new Map(), responder: new Map(), station: new Map() };
  const circles = new Map();
  const links = new Map();
  let selected = { kind: null, id: null };
  // The configured base: Leaflet layers are made for it after the first burst of markers.
  let base = { tiles: [], subdomains: '', maxZoom: MAX_ZOOM, key: '' };
  let tileLayers = null;

  // Changes come in bursts (a snapshot, a roster); the first fit and the tiles wait for the
  // end of the burst so the map does not load tiles for a view it is about to leave.
  let framePending = false;
  function schedule() {
    if (framePending) return;
    framePending = true;
    const run = () => {
      framePending = false;
      flush();
    };
    if (document.hidden) setTimeout(run, 250);
    else requestAnimationFrame(run);
  }

  function flush() {
    if (!fitted && !userMoved) fitted = fit();
    if (base.tiles.length > 0 && !tileLayers) {
      // Past the tiles' deepest level Leaflet enlarges that level's tiles.
      tileLayers = base.tiles.map((url, i) =>
        new Tiles(url, { className: 'layer-tiles', subdomains: base.subdomains || 'abc', maxZoom: MAX_ZOOM, maxNativeZoom: base.maxZoom, zIndex: 1 + i }).addTo(map),
      );
    }
  }

  /** Frames every station, responder and incident; returns whether there was anything. */
  function fit() {
    const bounds = L.latLngBounds([]);
    for (const kind of Object.keys(markers)) for (const entry of markers[kind].values()) bounds.extend(entry.marker.getLatLng());
    if (!bounds.isValid()) return false;
    const size = map.getSize();
    map.fitBounds(bounds, {
      padding: [Math.round(size.x * 0.075), Math.round(size.y * 0.075)],
      maxZoom: FIT_MAX_ZOOM,
      animate: false,
    });
    return true;
  }

  function markerElement(kind, id) {
    const node = document.createElement('div');
    node.dataset.marker = kind;
    node.dataset.id = id;
    if (kind === 'incident') node.append(L.DomUtil.create('span', 'mk-ring'), L.DomUtil.create('span', 'mk-dot'));
    else node.append(L.DomUtil.create('span', 'mk-dot'));
    return node;
  }

  /** Adds, moves or restyles one marker; `at` is {lat, lon}; null at removes it. */
  function setMarker(kind, id, at, { classes = '', title = '' } = {}) {
    const key = String(id);
    const byId = markers[kind];
    let entry = byId.get(key);
    if (!validPoint(at)) {
      if (entry) {
        entry.marker.remove();
        byId.delete(key);
      }
      return;
    }
    if (!entry) {
      const element = markerElement(kind, key);
      const px = MARKER_PX[kind];
      const marker = L.marker(toLatLng(at), {
        icon: L.divIcon({ className: 'mk-box', html: element, iconSize: [px, px] }),
        pane: `mk-${kind}s`,
        keyboard: false,
        bubblingMouseEvents: false,
      });
      marker.on('click', () => onPick(kind, key));
      marker.addTo(map);
      entry = { marker, element, at };
      byId.set(key, entry);
    } else {
      entry.at = at;
      entry.marker.setLatLng(toLatLng(at));
    }
    const isSelected = selected.kind === kind && selected.id === key;
    const cls = `mk mk-${kind} ${classes}${isSelected ? ' selected' : ''}`;
    if (entry.element.className !== cls) entry.element.className = cls;
    if (entry.element.title !== title) entry.element.title = title;
    if (!fitted) schedule();
  }

  function removeMarker(kind, id) {
    setMarker(kind, id, null);
  }

  /** A station's service circle, `minutes` at e-bike speed; null minutes removes it. */
  function setCircle(id, at, minutes) {
    const key = String(id);
    const existing = circles.get(key);
    if (!validPoint(at) || !Number.isFinite(Number(minutes)) || Number(minutes) <= 0) {
      if (existing) {
        existing.remove();
        circles.delete(key);
      }
      return;
    }
    if (existing) {
      existing.at = at;
      existing.setLatLng(toLatLng(at));
      existing.setRadius(serviceRadiusM(minutes));
      return;
    }
    const circle = L.circle(toLatLng(at), { radius: serviceRadiusM(minutes), className: 'service-circle', interactive: false });
    circle.at = at;
    circle.addTo(map);
    circle.getElement()?.setAttribute('data-station-id', key);
    circles.set(key, circle);
  }

  /** A line from an incident to the responder on it; null `to` removes it. */
  function setLink(id, from, to) {
    const key = String(id);
    const existing = links.get(key);
    if (!validPoint(from) || !validPoint(to)) {
      if (existing) {
        existing.remove();
        links.delete(key);
      }
      return;
    }
    const points = [toLatLng(from), toLatLng(to)];
    const line = existing ? existing.setLatLngs(points) : L.polyline(points, { className: 'job-link', interactive: false }).addTo(map);
    line.ends = [from, to];
    links.set(key, line);
  }

  // After a change of datum: everything drawn again where the new tiles have it.
  function replot() {
    for (const kind of Object.keys(markers)) for (const entry of markers[kind].values()) entry.marker.setLatLng(toLatLng(entry.at));
    for (const circle of circles.values()) circle.setLatLng(toLatLng(circle.at));
    for (const line of links.values()) line.setLatLngs(line.ends.map(toLatLng));
  }

  function select(kind, id) {
    const prev = selected.kind ? markers[selected.kind]?.get(selected.id) : null;
    if (prev) {
      prev.element.classList.remove('selected');
      prev.marker.setZIndexOffset(0);
    }
    selected = { kind, id: id === null || id === undefined ? null : String(id) };
    const next = kind ? markers[kind]?.get(selected.id) : null;
    if (next) {
      next.element.classList.add('selected');
      // On top of its pane, so the highlight is not hidden.
      next.marker.setZIndexOffset(1000);
    }
  }

  /** Pans so the marker is in view (keeping the zoom), if it is off screen. */
  function reveal(kind, id) {
    const entry = markers[kind]?.get(String(id));
    if (!entry) return;
    const p = map.latLngToContainerPoint(entry.marker.getLatLng());
    const size = map.getSize();
    if (p.x < 20 || p.y < 20 || p.x > size.x - 20 || p.y > size.y - 20) {
      userMoved = true;
      map.panTo(entry.marker.getLatLng(), { animate: !reduceMotion });
    }
  }

  /**
   * Centres the marker at street level (closer if the dispatcher already is): "show on map".
   * Returns whether there was such a marker.
   */
  function focus(kind, id) {
    const entry = markers[kind]?.get(String(id));
    if (!entry) return false;
    userMoved = true;
    // The panel that just closed may have resized the map; centre in the size it has now.
    map.invalidateSize({ pan: false });
    const zoom = Math.max(map.getZoom(), Math.min(STREET_ZOOM, MAX_ZOOM));
    map.setView(entry.marker.getLatLng(), zoom, { animate: !reduceMotion });
    return true;
  }

  /**
   * The base under the markers, as the welcome frame's `console.map` has it: tile URL
   * templates ({z}, {x}, {y}, perhaps {s}), their datum, attribution and deepest zoom. No
   * tiles (or no settings) is the plain grid.
   */
  function setBase(settings) {
    const s = settings && typeof settings === 'object' ? settings : {};
    const usable = (u) => typeof u === 'string' && /^https?:\/\//.test(u) && ['{z}', '{x}', '{y}'].every((p) => u.includes(p));
    const tiles = Array.isArray(s.tiles) ? s.tiles.filter(usable) : [];
    const maxZoom = Number.isInteger(s.max_zoom) && s.max_zoom > 0 ? Math.min(s.max_zoom, MAX_ZOOM) : MAX_ZOOM;
    const crs = tiles.length > 0 && s.crs === 'gcj02' ? 'gcj02' : 'wgs84';
    const next = { tiles, subdomains: typeof s.subdomains === 'string' ? s.subdomains : '', maxZoom, crs };
    const text = tiles.length > 0 && typeof s.attribution === 'string' ? s.attribution : '';
    const box = attribution.getContainer();
    box.textContent = text;
    box.hidden = !text;
    const key = JSON.stringify(next);
    if (key === base.key) return;
    const datumChanged = crs !== (base.crs || 'wgs84');
    base = { ...next, key };
    if (tileLayers) for (const layer of tileLayers) layer.remove();
    tileLayers = null;
    root.classList.toggle('has-tiles', tiles.length > 0);
    root.dataset.crs = crs;
    view = datum(crs);
    if (datumChanged) replot();
    schedule();
  }

  function clear() {
    for (const kind of Object.keys(markers)) {
      for (const entry of markers[kind].values()) entry.marker.remove();
      markers[kind].clear();
    }
    for (const circle of circles.values()) circle.remove();
    circles.clear();
    for (const line of links.values()) line.remove();
    links.clear();
    fitted = false;
    userMoved = false;
  }

  function relabel() {
    zoomInButton.title = label('map_zoom_in');
    zoomOutButton.title = label('map_zoom_out');
    fitButton.title = label('map_fit');
    root.setAttribute('aria-label', label('map_title'));
  }
  relabel();

  // The pane changes size with the window and the detail panel.
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => map.invalidateSize({ pan: false })).observe(root);
  }

  return {
    setMarker,
    removeMarker,
    setCircle,
    setLink,
    select,
    reveal,
    focus,
    setBase,
    clear,
    relabel,
    fit: () => {
      userMoved = false;
      fit();
    },
    markerCount: (kind) => markers[kind].size,
  };
}
