// One incident's place on a small map: Leaflet over a plain grid, with the server's tiles
// behind when it names a provider (as the console's map), and one marker. Positions are
// WGS-84; on GCJ-02 tiles they are shifted before drawing (../common/coords.js).

import { datum } from '../common/coords.js';
import * as L from '../vendor/leaflet/leaflet-src.esm.js';

const ZOOM = 16;

const GridLayer = L.GridLayer.extend({
  createTile() {
    const tile = document.createElement('div');
    tile.className = 'map-grid-tile';
    return tile;
  },
});

/** Draws `place` ({lat, lon, accuracy_m}) in `root` with `settings` (the welcome's `map`). */
export function placeMap(root, place, settings, label) {
  const view = datum(settings?.crs || 'wgs84');
  const at = view.toMap({ lat: place.lat, lon: place.lon });
  const map = L.map(root, {
    center: [at.lat, at.lon],
    zoom: ZOOM,
    zoomControl: false,
    attributionControl: Boolean(settings?.attribution),
    dragging: true,
    scrollWheelZoom: false,
    keyboard: false,
  });
  root.setAttribute('aria-label', label);
  new GridLayer({ tileSize: 256, className: 'map-grid' }).addTo(map);
  for (const url of settings?.tiles || []) {
    L.tileLayer(url, {
      subdomains: settings.subdomains || 'abc',
      maxZoom: settings.max_zoom || 19,
      attribution: settings.attribution || '',
    }).addTo(map);
  }
  const circle = L.circle([at.lat, at.lon], { radius: 1, weight: 1, color: '#c4141b', fillOpacity: 0.08 });
  const icon = L.divIcon({ className: 'place-marker', html: '<span></span>', iconSize: [28, 28], iconAnchor: [14, 14] });
  const marker = L.marker([at.lat, at.lon], { icon, keyboard: false, interactive: false }).addTo(map);
  function move(next) {
    const p = view.toMap({ lat: next.lat, lon: next.lon });
    marker.setLatLng([p.lat, p.lon]);
    circle.setLatLng([p.lat, p.lon]);
    if (Number.isFinite(next.accuracy_m) && next.accuracy_m > 0) {
      circle.setRadius(next.accuracy_m);
      circle.addTo(map);
    } else {
      circle.remove();
    }
    map.setView([p.lat, p.lon], map.getZoom(), { animate: false });
  }
  move(place);
  return {
    move,
    resize: () => map.invalidateSize(),
    remove: () => map.remove(),
  };
}
