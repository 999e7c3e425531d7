// What each kind of entry looks like on the page: its table's columns, its filters, and its
// form's fields. A field names its path in the entry (`home`, `profile.station_id`), which is
// also the path a 422 names, so a problem lands beside the field it is about.

import { formatList, t } from '../common/i18n.js';
import { ledger } from './state.js';

const stationName = (id) => (id ? ledger.stations.get(id) || id : '');
const modeLabel = (m) => t(`mode_${m || 'foot'}`);
const where = (p) => (p && typeof p.lat === 'number' ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : '');

/**
 * Field types: text (required text), optional (empty is null), textarea, int (an optional
 * whole number), coords ({lat, lon}), select (options: [value, word key]), bool3 (yes, no,
 * unknown), csv and lines (lists of text), station (a live station), contacts (the list).
 */
export const KINDS = {
  elders: {
    kind: 'elder',
    filters: ['station'],
    columns: [
      ['col_id', (e) => e.id],
      ['col_name', (e) => e.name],
      ['col_address', (e) => e.address],
      ['col_phone', (e) => e.phone || ''],
      ['col_station', (e) => stationName(e.profile?.station_id)],
    ],
    title: (e) => e.name,
    fields: [
      { path: 'id', type: 'text', label: 'f_id', fixed: true },
      { path: 'name', type: 'text', label: 'f_name' },
      { path: 'address', type: 'text', label: 'f_address', wide: true },
      { path: 'home', type: 'coords', label: 'f_home' },
      { path: 'phone', type: 'optional', label: 'f_phone' },
      { path: 'profile.station_id', type: 'station', label: 'f_station' },
      { path: 'profile.id_number', type: 'optional', label: 'f_id_number' },
      { path: 'profile.birth_year', type: 'int', label: 'f_birth_year' },
      { path: 'profile.lives_alone', type: 'bool3', label: 'f_lives_alone' },
      { path: 'profile.mobility', type: 'text', label: 'f_mobility' },
      { path: 'profile.language', type: 'text', label: 'f_language' },
      { path: 'profile.conditions', type: 'csv', label: 'f_conditions', wide: true },
      { path: 'profile.medications', type: 'lines', label: 'f_medications', wide: true },
      { path: 'profile.door_notes', type: 'text', label: 'f_door_notes', wide: true },
      { path: 'notes', type: 'textarea', label: 'f_notes', wide: true },
      { path: 'profile.contacts', type: 'contacts', label: 'f_contacts', wide: true },
    ],
    blank: () => ({ id: '', name: '', address: '', home: { lat: 0, lon: 0 }, phone: null, notes: '', profile: { contacts: [] } }),
  },
  devices: {
    kind: 'device',
    filters: ['elder'],
    columns: [
      ['col_id', (d) => d.id],
      ['col_elder', (d) => d.elder_id],
      ['col_sim', (d) => d.sim || ''],
    ],
    title: (d) => d.id,
    fields: [
      { path: 'id', type: 'text', label: 'f_id', fixed: true },
      { path: 'elder_id', type: 'text', label: 'f_elder_id' },
      { path: 'sim', type: 'optional', label: 'f_sim' },
      { path: 'password', type: 'optional', label: 'f_device_password', createOnly: true, secret: true },
    ],
    blank: () => ({ id: '', elder_id: '' }),
  },
  stations: {
    kind: 'station',
    filters: [],
    columns: [
      ['col_id', (s) => s.id],
      ['col_station_name', (s) => s.name],
      ['col_phone', (s) => s.phone || ''],
      ['col_circle', (s) => (s.service_circle_min ? t('circle_min', { min: s.service_circle_min }) : '')],
      ['col_zone', (s) => String(s.zone ?? 0)],
      ['col_position', (s) => where(s.position)],
    ],
    title: (s) => s.name,
    fields: [
      { path: 'id', type: 'text', label: 'f_id', fixed: true },
      { path: 'name', type: 'text', label: 'f_station_name' },
      { path: 'position', type: 'coords', label: 'f_position' },
      { path: 'phone', type: 'optional', label: 'f_phone' },
      { path: 'service_circle_min', type: 'int', label: 'f_circle' },
      { path: 'zone', type: 'int', label: 'f_zone' },
    ],
    blank: () => ({ id: '', name: '', position: { lat: 0, lon: 0 }, phone: null, service_circle_min: null, zone: 0 }),
  },
  responders: {
    kind: 'responder',
    filters: ['station'],
    columns: [
      ['col_id', (r) => r.id],
      ['col_name', (r) => r.name],
      ['col_station', (r) => stationName(r.station_id)],
      ['col_phone', (r) => r.phone || ''],
      ['col_mode', (r) => modeLabel(r.mode)],
      ['col_skills', (r) => formatList(r.skills || []) || ''],
    ],
    title: (r) => r.name,
    fields: [
      { path: 'id', type: 'text', label: 'f_id', fixed: true },
      { path: 'name', type: 'text', label: 'f_name' },
      { path: 'station_id', type: 'station', label: 'f_station', required: true },
      { path: 'phone', type: 'optional', label: 'f_phone' },
      { path: 'position', type: 'coords', label: 'f_position' },
      { path: 'mode', type: 'select', label: 'f_mode', options: [['foot', 'mode_foot'], ['ebike', 'mode_ebike'], ['car', 'mode_car']] },
      { path: 'skills', type: 'csv', label: 'f_skills', wide: true },
    ],
    blank: () => ({ id: '', name: '', station_id: '', phone: null, position: { lat: 0, lon: 0 }, on_duty: false, mode: 'foot', skills: [] }),
  },
  staff: {
    kind: 'staff',
    filters: [],
    columns: [
      ['col_id', (s) => s.id],
      ['col_name', (s) => s.name],
      ['col_role', (s) => t(`role_${s.role}`)],
    ],
    title: (s) => s.name,
    fields: [
      { path: 'id', type: 'text', label: 'f_id', fixed: true },
      { path: 'name', type: 'text', label: 'f_name' },
      { path: 'role', type: 'select', label: 'f_role', options: [['dispatcher', 'role_dispatcher'], ['supervisor', 'role_supervisor'], ['admin', 'role_admin']] },
      { path: 'password', type: 'optional', label: 'f_password', labelOnEdit: 'f_password_keep', secret: true },
    ],
    blank: () => ({ id: '', name: '', role: 'dispatcher' }),
  },
};

export const PLURALS = Object.keys(KINDS);

/** The value at a dotted path (`profile.station_id`). */
export function getPath(obj, path) {
  return path.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

/** Sets the value at a dotted path, making the objects on the way. */
export function setPath(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (o[k] === null || typeof o[k] !== 'object') o[k] = {};
    o = o[k];
  }
  o[keys[keys.length - 1]] = value;
}

/**
 * What is sent for an entry: the entry as read (so what the form does not show, such as a
 * responder's duty or a contact's quiet hours, stays as it was) with the form's values over
 * it; staff and devices are sent as the API takes them (a password, never a hash).
 */
export function bodyFor(plural, entry) {
  const { kind: _kind, ...rest } = entry;
  if (plural === 'staff') {
    const body = { id: rest.id, name: rest.name, role: rest.role };
    if (rest.password) body.password = rest.password;
    return body;
  }
  if (plural === 'devices') {
    // The model, which the form does not show, goes back as read; the SIM as the form has it.
    const body = { id: rest.id, elder_id: rest.elder_id };
    if (rest.model) body.model = rest.model;
    if (rest.sim) body.sim = rest.sim;
    if (rest.password) body.password = rest.password;
    return body;
  }
  return rest;
}
