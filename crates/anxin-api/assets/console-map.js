// Anxin dispatcher console: the map. Drawn here in SVG with a web-mercator projection, so the
// console needs no map library and no network: incidents, responders coloured by status, and
// stations with their service circles, on a plain background, with raster tiles behind them
// only when a tile URL is configured (a tile that fails to load is simply left out).
//
// Plain JavaScript, no build step; the daemon embeds it and serves /assets/console-map.js.
// console.js creates the map with AnxinMap.create(element, options) and feeds it changes;
// markers are keyed, so a change moves or restyles one element, and redraws are batched to
// one per animation frame.
'use strict';

(() => {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const TILE_PX = 256;
  const MIN_ZOOM = 3;
  const MAX_ZOOM = 19;
  // What a service circle means on the ground: minutes at e-bike speed, less the detour
  // streets make compared with a straight line. The legend says the same in words.
  const EBIKE_M_PER_S = 4;
  const DETOUR = 1.3;
  const EARTH_M = 40075016.686;

  /** Metres a station's service circle reaches in a straight line. */
  function serviceRadiusM(minutes) {
    return (Number(minutes) * EBIKE_M_PER_S * 60) / DETOUR;
  }

  // Web mercator as fractions of the world square: x, y in [0, 1].
  function toWorld(lat, lon) {
    const clamped = Math.max(-85.05, Math.min(85.05, lat));
    const phi = (clamped * Math.PI) / 180;
    return {
      x: (lon + 180) / 360,
      y: (1 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / Math.PI) / 2,
    };
  }

  function validPoint(p) {
    return p && Number.isFinite(p.lat) && Number.isFinite(p.lon) && !(p.lat === 0 && p.lon === 0);
  }

  function el(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  /**
   * Builds a map inside `root`. Options: onPick(kind, id) when a marker is clicked, and
   * label(key) for the few words the map itself shows (zoom buttons, scale).
   */
  function create(root, options = {}) {
    const onPick = options.onPick || (() => {});
    const label = options.label || ((k) => k);

    const svg = el('svg', { class: 'map-svg', role: 'application' });
    const defs = el('defs');
    const grid = el('pattern', { id: 'map-grid', width: 48, height: 48, patternUnits: 'userSpaceOnUse' });
    grid.append(el('path', { d: 'M 48 0 L 0 0 0 48', class: 'map-grid-line' }));
    defs.append(grid);
    const background = el('rect', { class: 'map-bg', x: 0, y: 0, width: '100%', height: '100%' });
    const gridRect = el('rect', { x: 0, y: 0, width: '100%', height: '100%', fill: 'url(#map-grid)' });
    const layers = {
      tiles: el('g', { class: 'layer-tiles' }),
      circles: el('g', { class: 'layer-circles' }),
      links: el('g', { class: 'layer-links' }),
      stations: el('g', { class: 'layer-stations' }),
      responders: el('g', { class: 'layer-responders' }),
      incidents: el('g', { class: 'layer-incidents' }),
    };
    svg.append(defs, background, gridRect, ...Object.values(layers));
    root.append(svg);

    const scale = document.createElement('div');
    scale.className = 'map-scale';
    const scaleBar = document.createElement('span');
    scaleBar.className = 'map-scale-bar';
    const scaleText = document.createElement('span');
    scale.append(scaleBar, scaleText);
    const controls = document.createElement('div');
    controls.className = 'map-controls';
    const button = (text, key, fn) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = text;
      b.dataset.mapControl = key;
      b.addEventListener('click', fn);
      controls.append(b);
      return b;
    };
    const zoomInButton = button('+', 'zoom-in', () => zoomAt(size.w / 2, size.h / 2, 1));
    const zoomOutButton = button('−', 'zoom-out', () => zoomAt(size.w / 2, size.h / 2, -1));
    const fitButton = button('⤢', 'fit', () => {
      userMoved = false;
      fit();
    });
    root.append(scale, controls);

    // The view: the world point at the centre of the element, and a fractional zoom.
    const view = { x: 0.785, y: 0.442, z: 12 };
    const size = { w: 0, h: 0 };
    let userMoved = false;
    let fitted = false;
    let tileUrl = '';
    const failedTiles = new Set();
    const tiles = new Map();

    /** Keyed markers: kind -> id -> { node, world, data } */
    const markers = { incident: new Map(), responder: new Map(), station: new Map() };
    const circles = new Map();
    const links = new Map();
    let selected = { kind: null, id: null };

    let viewDirty = true;
    const dirtyMarkers = new Set();
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

    const worldPx = () => TILE_PX * 2 ** view.z;

    function project(world) {
      const s = worldPx();
      return { x: (world.x - view.x) * s + size.w / 2, y: (world.y - view.y) * s + size.h / 2 };
    }

    function metresPerPixel() {
      const lat = Math.atan(Math.sinh(Math.PI * (1 - 2 * view.y)));
      return (EARTH_M * Math.cos(lat)) / worldPx();
    }

    function place(entry) {
      const p = project(entry.world);
      entry.node.setAttribute('transform', `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`);
    }

    function placeCircle(entry) {
      const p = project(entry.world);
      entry.node.setAttribute('cx', p.x.toFixed(1));
      entry.node.setAttribute('cy', p.y.toFixed(1));
      entry.node.setAttribute('r', Math.max(0, entry.radiusM / entry.mPerPx / 1).toFixed(1));
    }

    function placeLink(entry) {
      const a = project(entry.from);
      const b = project(entry.to);
      entry.node.setAttribute('x1', a.x.toFixed(1));
      entry.node.setAttribute('y1', a.y.toFixed(1));
      entry.node.setAttribute('x2', b.x.toFixed(1));
      entry.node.setAttribute('y2', b.y.toFixed(1));
    }

    function flush() {
      if (!size.w || !size.h) measure();
      if (!fitted && !userMoved) fitted = fit(true);
      if (viewDirty) {
        viewDirty = false;
        const mpp = metresPerPixel();
        for (const kind of Object.keys(markers)) for (const entry of markers[kind].values()) place(entry);
        for (const entry of circles.values()) {
          entry.mPerPx = mpp;
          placeCircle(entry);
        }
        for (const entry of links.values()) placeLink(entry);
        drawTiles();
        drawScale(mpp);
        dirtyMarkers.clear();
      } else {
        for (const entry of dirtyMarkers) {
          if (entry.node.isConnected) {
            if (entry.kind === 'circle') {
              entry.mPerPx = metresPerPixel();
              placeCircle(entry);
            } else if (entry.kind === 'link') placeLink(entry);
            else place(entry);
          }
        }
        dirtyMarkers.clear();
      }
      zoomInButton.disabled = view.z >= MAX_ZOOM;
      zoomOutButton.disabled = view.z <= MIN_ZOOM;
    }

    function drawScale(mpp) {
      // A round distance about 100 px long.
      const target = mpp * 100;
      const magnitude = 10 ** Math.floor(Math.log10(target));
      const step = [1, 2, 5, 10].map((f) => f * magnitude).find((d) => d >= target * 0.6) || magnitude * 10;
      scaleBar.style.width = `${Math.round(step / mpp)}px`;
      scaleText.textContent = step >= 1000 ? `${step / 1000} km` : `${step} m`;
    }

    function drawTiles() {
      if (!tileUrl) {
        if (tiles.size) {
          layers.tiles.replaceChildren();
          tiles.clear();
        }
        return;
      }
      const tz = Math.max(0, Math.min(MAX_ZOOM, Math.round(view.z)));
      const n = 2 ** tz;
      const tilePx = TILE_PX * 2 ** (view.z - tz);
      const left = view.x * n - size.w / 2 / tilePx;
      const top = view.y * n - size.h / 2 / tilePx;
      const x0 = Math.floor(left);
      const y0 = Math.floor(top);
      const x1 = Math.floor(left + size.w / tilePx);
      const y1 = Math.floor(top + size.h / tilePx);
      const wanted = new Set();
      for (let ty = Math.max(0, y0); ty <= Math.min(n - 1, y1); ty += 1) {
        for (let tx = x0; tx <= x1; tx += 1) {
          const wx = ((tx % n) + n) % n;
          const key = `${tz}/${wx}/${ty}`;
          if (failedTiles.has(key)) continue;
          const id = `${key}@${tx}`;
          wanted.add(id);
          let img = tiles.get(id);
          if (!img) {
            img = el('image', { preserveAspectRatio: 'none' });
            img.addEventListener('error', () => {
              // Unreachable tiles leave the plain background; never ask for that one again.
              failedTiles.add(key);
              img.remove();
              tiles.delete(id);
            });
            img.setAttribute('href', tileUrl.replace('{z}', tz).replace('{x}', wx).replace('{y}', ty));
            tiles.set(id, img);
            layers.tiles.append(img);
          }
          img.setAttribute('x', ((tx - left) * tilePx).toFixed(1));
          img.setAttribute('y', ((ty - top) * tilePx).toFixed(1));
          img.setAttribute('width', (tilePx + 0.5).toFixed(1));
          img.setAttribute('height', (tilePx + 0.5).toFixed(1));
        }
      }
      for (const [id, img] of tiles) {
        if (!wanted.has(id)) {
          img.remove();
          tiles.delete(id);
        }
      }
    }

    function measure() {
      const r = root.getBoundingClientRect();
      size.w = Math.max(1, Math.round(r.width));
      size.h = Math.max(1, Math.round(r.height));
      svg.setAttribute('viewBox', `0 0 ${size.w} ${size.h}`);
      svg.setAttribute('width', size.w);
      svg.setAttribute('height', size.h);
    }

    /** Frames every station, responder and incident; returns whether there was anything. */
    function fit(quiet) {
      let minX = Infinity;
      let minY = Infinity;
      let maxX = -Infinity;
      let maxY = -Infinity;
      for (const kind of Object.keys(markers)) {
        for (const entry of markers[kind].values()) {
          minX = Math.min(minX, entry.world.x);
          maxX = Math.max(maxX, entry.world.x);
          minY = Math.min(minY, entry.world.y);
          maxY = Math.max(maxY, entry.world.y);
        }
      }
      if (!Number.isFinite(minX)) return false;
      if (!size.w) measure();
      view.x = (minX + maxX) / 2;
      view.y = (minY + maxY) / 2;
      const spanX = Math.max(maxX - minX, 1e-6);
      const spanY = Math.max(maxY - minY, 1e-6);
      const z = Math.log2(Math.min((size.w * 0.85) / (spanX * TILE_PX), (size.h * 0.85) / (spanY * TILE_PX)));
      view.z = Math.max(MIN_ZOOM, Math.min(16, z));
      viewDirty = true;
      if (!quiet) schedule();
      return true;
    }

    function zoomAt(px, py, delta) {
      const before = { x: view.x + (px - size.w / 2) / worldPx(), y: view.y + (py - size.h / 2) / worldPx() };
      view.z = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, view.z + delta));
      // Keep the point under the cursor where it was.
      view.x = before.x - (px - size.w / 2) / worldPx();
      view.y = before.y - (py - size.h / 2) / worldPx();
      userMoved = true;
      viewDirty = true;
      schedule();
    }

    // Dragging pans; a press that barely moves is a click on whatever is under it.
    let drag = null;
    svg.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, moved: false, id: ev.pointerId };
    });
    svg.addEventListener('pointermove', (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        svg.setPointerCapture(ev.pointerId);
        svg.classList.add('dragging');
      }
      view.x = drag.vx - dx / worldPx();
      view.y = drag.vy - dy / worldPx();
      userMoved = true;
      viewDirty = true;
      schedule();
    });
    const endDrag = (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const moved = drag.moved;
      drag = null;
      svg.classList.remove('dragging');
      if (moved) return;
      const target = ev.target instanceof Element ? ev.target.closest('[data-marker]') : null;
      if (target) onPick(target.dataset.marker, target.dataset.id);
    };
    svg.addEventListener('pointerup', endDrag);
    svg.addEventListener('pointercancel', () => {
      drag = null;
      svg.classList.remove('dragging');
    });
    svg.addEventListener(
      'wheel',
      (ev) => {
        ev.preventDefault();
        const r = svg.getBoundingClientRect();
        const step = Math.max(-1, Math.min(1, -ev.deltaY / 200));
        zoomAt(ev.clientX - r.left, ev.clientY - r.top, step);
      },
      { passive: false },
    );

    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => {
        measure();
        viewDirty = true;
        schedule();
      }).observe(root);
    }

    function markerNode(kind, id) {
      const g = el('g', { class: `mk mk-${kind}`, 'data-marker': kind, 'data-id': id });
      const title = el('title');
      g.append(title);
      if (kind === 'incident') {
        g.append(el('circle', { class: 'mk-ring', r: 13 }), el('circle', { class: 'mk-dot', r: 7 }));
      } else if (kind === 'responder') {
        g.append(el('circle', { class: 'mk-hit', r: 9 }), el('circle', { class: 'mk-dot', r: 5 }));
      } else {
        g.append(el('rect', { class: 'mk-dot', x: -6, y: -6, width: 12, height: 12, rx: 2 }));
      }
      return g;
    }

    /** Adds, moves or restyles one marker; `at` is {lat, lon}; null at removes it. */
    function setMarker(kind, id, at, { classes = '', title = '' } = {}) {
      const key = String(id);
      const map = markers[kind];
      let entry = map.get(key);
      if (!validPoint(at)) {
        if (entry) {
          entry.node.remove();
          map.delete(key);
        }
        return;
      }
      if (!entry) {
        entry = { kind, node: markerNode(kind, key), world: null };
        map.set(key, entry);
        layers[`${kind}s`].append(entry.node);
      }
      entry.world = toWorld(at.lat, at.lon);
      const isSelected = selected.kind === kind && selected.id === key;
      const cls = `mk mk-${kind} ${classes}${isSelected ? ' selected' : ''}`;
      if (entry.node.getAttribute('class') !== cls) entry.node.setAttribute('class', cls);
      if (entry.node.firstChild.textContent !== title) entry.node.firstChild.textContent = title;
      dirtyMarkers.add(entry);
      schedule();
    }

    function removeMarker(kind, id) {
      setMarker(kind, id, null);
    }

    /** A station's service circle, `minutes` at e-bike speed; null minutes removes it. */
    function setCircle(id, at, minutes) {
      const key = String(id);
      let entry = circles.get(key);
      if (!validPoint(at) || !Number.isFinite(Number(minutes)) || Number(minutes) <= 0) {
        if (entry) {
          entry.node.remove();
          circles.delete(key);
        }
        return;
      }
      if (!entry) {
        entry = { kind: 'circle', node: el('circle', { class: 'service-circle', 'data-station-id': key }), mPerPx: 1 };
        circles.set(key, entry);
        layers.circles.append(entry.node);
      }
      entry.world = toWorld(at.lat, at.lon);
      entry.radiusM = serviceRadiusM(minutes);
      dirtyMarkers.add(entry);
      schedule();
    }

    /** A line from an incident to the responder on it; null `to` removes it. */
    function setLink(id, from, to) {
      const key = String(id);
      let entry = links.get(key);
      if (!validPoint(from) || !validPoint(to)) {
        if (entry) {
          entry.node.remove();
          links.delete(key);
        }
        return;
      }
      if (!entry) {
        entry = { kind: 'link', node: el('line', { class: 'job-link' }) };
        links.set(key, entry);
        layers.links.append(entry.node);
      }
      entry.from = toWorld(from.lat, from.lon);
      entry.to = toWorld(to.lat, to.lon);
      dirtyMarkers.add(entry);
      schedule();
    }

    function select(kind, id) {
      const prev = selected.kind ? markers[selected.kind]?.get(selected.id) : null;
      if (prev) prev.node.classList.remove('selected');
      selected = { kind, id: id === null || id === undefined ? null : String(id) };
      const next = kind ? markers[kind]?.get(selected.id) : null;
      if (next) {
        next.node.classList.add('selected');
        // Bring it to the top of its layer so the highlight is not hidden.
        next.node.parentNode.append(next.node);
      }
    }

    /** Pans so the marker is in view (keeping the zoom), if it is off screen. */
    function reveal(kind, id) {
      const entry = markers[kind]?.get(String(id));
      if (!entry) return;
      const p = project(entry.world);
      if (p.x < 20 || p.y < 20 || p.x > size.w - 20 || p.y > size.h - 20) {
        view.x = entry.world.x;
        view.y = entry.world.y;
        userMoved = true;
        viewDirty = true;
        schedule();
      }
    }

    function setTiles(url) {
      const next = typeof url === 'string' && /\{z\}/.test(url) && /\{x\}/.test(url) && /\{y\}/.test(url) ? url : '';
      if (next === tileUrl) return;
      tileUrl = next;
      failedTiles.clear();
      layers.tiles.replaceChildren();
      tiles.clear();
      root.classList.toggle('has-tiles', Boolean(tileUrl));
      viewDirty = true;
      schedule();
    }

    function clear() {
      for (const kind of Object.keys(markers)) {
        for (const entry of markers[kind].values()) entry.node.remove();
        markers[kind].clear();
      }
      for (const entry of circles.values()) entry.node.remove();
      circles.clear();
      for (const entry of links.values()) entry.node.remove();
      links.clear();
      fitted = false;
      userMoved = false;
    }

    function relabel() {
      zoomInButton.title = label('map_zoom_in');
      zoomOutButton.title = label('map_zoom_out');
      fitButton.title = label('map_fit');
      svg.setAttribute('aria-label', label('map_title'));
    }
    relabel();
    measure();
    schedule();

    return {
      setMarker,
      removeMarker,
      setCircle,
      setLink,
      select,
      reveal,
      setTiles,
      clear,
      relabel,
      fit: () => {
        userMoved = false;
        fit();
      },
      /** Where a marker is drawn, in page pixels (for tests and keyboard users). */
      markerCount: (kind) => markers[kind].size,
    };
  }

  window.AnxinMap = { create, serviceRadiusM, EBIKE_M_PER_S, DETOUR };
})();
