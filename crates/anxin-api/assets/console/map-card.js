// The console's things on the map: incidents, responders and stations as markers, a
// line from each job to its responder, and the card a responder, a station or a click on
// the map opens (the point's WGS-84 coordinates, whatever the tiles' datum).

import { h } from '../common/dom.js';
import { formatClock, readableId } from '../common/format.js';
import { formatDistance, formatList, has, t } from '../common/i18n.js';
import { openIncident } from './detail.js';
import { callerName, isUnassigned, isWelfare, kindLabel, modeLabel, priorityOf, stateLabel } from './incident.js';
import { createMap, serviceRadiusM } from './map.js';
import { kv, phoneWithCopy } from './parts.js';
import { dom, state } from './state.js';

/** The console's map, made when the console first shows (it needs its element's size). */
export let map = null;

export function ensureMap() {
  if (!map) map = createMap(dom.map, { onPick: pickOnMap, onPoint: (p) => showMapCard('point', `${p.lat.toFixed(6)},${p.lon.toFixed(6)}`), label: (k) => t(k) });
}

// An incident's marker says whether it still needs somebody sent (red) or somebody is
// offered or on the way (violet); the selected one is ringed (map.js).
function incidentClasses(view, id) {
  const need = isUnassigned(view) ? ' unassigned needs-person' : ' open';
  return `prio-${Math.min(priorityOf(view), 3)} state-${view.state}${state.alarms.has(id) ? ' alarm' : ''}${need}`;
}

// A welfare check is not on the map: it needs a phone call, not somebody sent, and a power
// cut's hundreds of them would bury the emergencies' markers. Nor is an incident placed
// nowhere (a caller nobody knows): its (0, 0) is no place.
export function mapIncident(view) {
  if (!map) return;
  const id = String(view.id);
  if (!state.incidents.has(id) || isWelfare(view) || view.location?.source === 'unknown') {
    map.removeMarker('incident', id);
    map.setLink(id, null, null);
    return;
  }
  const at = view.location && view.location.at;
  map.setMarker('incident', id, at, {
    classes: incidentClasses(view, id),
    title: `#${readableId(id)} ${kindLabel(view.kind)} · ${stateLabel(view.state)} · ${callerName(view)}`,
  });
  const holder = view.responder && state.responders.get(String(view.responder.id));
  map.setLink(id, at, holder ? holder.position : null);
}

export function mapResponder(r) {
  if (!map) return;
  // Home-care workers are ringed apart: the ladder never offers them an emergency.
  const worker = Boolean(r.provider_id);
  map.setMarker('responder', r.id, r.position, {
    classes: `st-${r.status}${worker ? ' worker' : ''}`,
    title: `${r.name} · ${worker ? `${t('r_worker')} · ` : ''}${has(`rstatus_${r.status}`) ? t(`rstatus_${r.status}`) : r.status}`,
  });
  if (r.incident_id !== null && r.incident_id !== undefined) {
    const view = state.incidents.get(String(r.incident_id));
    if (view) mapIncident(view);
  }
}

function mapStation(s) {
  if (!map) return;
  map.setMarker('station', s.id, s.position, { classes: 'station', title: s.name });
  map.setCircle(s.id, s.position, s.service_circle_min);
}

export function remapAll() {
  if (!map) return;
  for (const s of state.stations.values()) mapStation(s);
  for (const r of state.responders.values()) mapResponder(r);
  for (const v of state.incidents.values()) mapIncident(v);
}

function pickOnMap(kind, id) {
  if (kind === 'incident') openIncident(id);
  else showMapCard(kind, id);
}

export function showMapCard(kind, id) {
  const card = dom.mapCard;
  card.replaceChildren();
  card.dataset.kind = kind;
  card.dataset.id = id;
  const closeBtn = h('button', { class: 'btn btn-quiet card-close', type: 'button', title: t('close'), onclick: hideMapCard }, '✕');
  if (kind === 'responder') {
    const r = state.responders.get(String(id));
    if (!r) return;
    const station = state.stations.get(String(r.station_id));
    const status = has(`rstatus_${r.status}`) ? t(`rstatus_${r.status}`) : r.status;
    const job = r.incident_id !== null && r.incident_id !== undefined
      ? h('button', { class: 'btn', type: 'button', 'data-action': 'open-job', onclick: () => openIncident(String(r.incident_id)) }, t('r_open_job', { id: readableId(r.incident_id) }))
      : null;
    card.append(
      closeBtn,
      h('h3', null, h('i', { class: `lg-resp st-${r.status}` }), ' ', r.name, ' ', h('span', { class: `rstatus st-${r.status}`, 'data-field': 'responder-status' }, status)),
      h(
        'dl',
        { class: 'kv' },
        kv(t('f_phone'), r.phone ? phoneWithCopy(r.phone) : null),
        kv(t('r_station'), station ? station.name : r.station_id),
        kv(t('r_mode'), modeLabel(r.mode)),
        kv(t('r_skills'), formatList(r.skills) || t('none')),
        kv(t('r_duty'), r.on_duty ? t('yes') : t('no')),
        kv(t('r_position_at'), r.position_at ? formatClock(r.position_at) : null),
        r.provider_id ? kv(t('r_worker'), t('r_worker_note')) : null,
      ),
      job,
    );
  } else if (kind === 'point') {
    const [lat, lon] = String(id).split(',');
    const text = `${lat}, ${lon}`;
    card.append(
      closeBtn,
      h('h3', null, t('map_point_title')),
      h(
        'p',
        { class: 'map-point' },
        h('span', { 'data-field': 'map-point', 'data-lat': lat, 'data-lon': lon }, text),
        ' ',
        h('button', { class: 'btn btn-small', type: 'button', onclick: () => navigator.clipboard?.writeText(text).catch(() => {}) }, t('map_point_copy')),
      ),
      h('p', { class: 'sub' }, t('map_point_note')),
    );
  } else if (kind === 'station') {
    const s = state.stations.get(String(id));
    if (!s) return;
    const min = Number(s.service_circle_min);
    card.append(
      closeBtn,
      h('h3', null, h('i', { class: 'lg-station' }), ' ', s.name),
      h(
        'dl',
        { class: 'kv' },
        kv(t('f_phone'), s.phone ? phoneWithCopy(s.phone) : null),
        kv(t('s_circle'), min > 0 ? t('s_circle_value', { min, d: formatDistance(serviceRadiusM(min)) }) : t('none')),
      ),
    );
  }
  card.hidden = false;
  if (map) map.select(kind, id);
}

export function hideMapCard() {
  dom.mapCard.hidden = true;
  if (map) map.select(state.openId ? 'incident' : null, state.openId);
}

