// Frames for the console tests that script the feed: a small district around Kunming's
// Xishan, with responders in every status, stations with service circles, and incidents
// shaped like the server's views.

export const STATIONS = [
  ['xs-s01', '金碧街道社区居家养老服务中心', 25.0335, 102.7005],
  ['xs-s02', '永昌街道社区居家养老服务中心', 25.0225, 102.69],
  ['xs-s03', '前卫街道社区居家养老服务中心', 25.005, 102.6905],
  ['xs-s05', '棕树营街道社区居家养老服务中心', 25.048, 102.68],
  ['xs-s06', '西苑街道社区居家养老服务中心', 25.04, 102.665],
].map(([id, name, lat, lon], i) => ({
  id,
  name,
  phone: `0871-6800000${i + 1}`,
  position: { lat, lon },
  service_circle_min: 15,
}));

export const RESPONDERS = [
  ['xs-r011', '王伟', 'xs-s01', 'foot', 25.0312, 102.7096, 'available'],
  ['xs-r012', '杨敏', 'xs-s01', 'foot', 25.0293, 102.6938, 'offered'],
  ['xs-r013', '黄静', 'xs-s01', 'ebike', 25.0202, 102.7015, 'busy'],
  ['xs-r014', '赵磊', 'xs-s01', 'ebike', 25.0419, 102.6815, 'available'],
  ['xs-r021', '刘伟', 'xs-s02', 'foot', 25.0274, 102.686, 'available'],
  ['xs-r022', '赵敏', 'xs-s02', 'foot', 25.0252, 102.6786, 'off_duty'],
  ['xs-r031', '黄伟', 'xs-s03', 'foot', 25.0197, 102.6908, 'available'],
  ['xs-r051', '孙洋', 'xs-s05', 'ebike', 25.046, 102.676, 'available'],
  ['xs-r061', '周芳', 'xs-s06', 'car', 25.038, 102.661, 'busy'],
].map(([id, name, station_id, mode, lat, lon, status], i) => ({
  id,
  name,
  station_id,
  phone: `139000000${String(i + 1).padStart(2, '0')}`,
  mode,
  skills: i % 3 === 2 ? [] : ['first_aid'],
  on_duty: status !== 'off_duty',
  status,
  incident_id: status === 'busy' ? (i === 2 ? 2 : 5) : status === 'offered' ? 1 : null,
  position: { lat, lon },
  position_at: Date.now() - 90_000,
}));

export const ME = { id: 'dispatcher', name: '值班调度员', role: 'dispatcher' };
export const OTHER = { id: 'dispatcher2', name: '调度员二', role: 'dispatcher' };

export function welcome({ user = ME, language = 'zh-CN', tileUrl = '' } = {}) {
  return {
    type: 'welcome',
    user,
    staff: [ME, OTHER, { id: 'supervisor', name: '值班主管', role: 'supervisor' }],
    server_time: Date.now(),
    console: {
      language,
      accept_target_s: 60,
      on_scene_target_min: 15,
      programme_overdue_after_h: 24,
      map: { provider: tileUrl ? 'custom' : 'none', tiles: tileUrl ? [tileUrl] : [], subdomains: '', crs: 'wgs84', attribution: tileUrl ? '© Test tiles' : '', max_zoom: 19 },
    },
  };
}

export function roster() {
  return { type: 'roster', responders: RESPONDERS, stations: STATIONS };
}

const party = (r, distance_m) => ({ id: r.id, name: r.name, phone: r.phone, distance_m });

/** An incident view as the server sends it; `overrides` replace top-level fields. */
export function view(id, overrides = {}) {
  const now = Date.now();
  return {
    id,
    seq: 1,
    kind: 'sos',
    priority: 1,
    state: 'offered',
    device_id: `xs-d${String(id).padStart(4, '0')}`,
    elder: {
      id: `xs-e${id}`,
      name: `老人${id}`,
      address: `昆明市西山区金碧街道 ${id} 号 2 单元`,
      phone: `1380000${String(id).padStart(4, '0')}`,
      notes: '',
      age: 82,
      lives_alone: true,
      conditions: ['高血压', '糖尿病'],
      medications: ['氨氯地平 5mg 每日一次'],
      mobility: '使用助行器',
      language: '昆明话',
      door_notes: '钥匙在隔壁 302 李阿姨处',
      contacts: [
        { name: '张丽', relation: '女儿', phone: '13911112222' },
        { name: '张强', relation: '儿子', phone: '13933334444' },
      ],
    },
    location: { at: { lat: 25.03 - id * 0.002, lon: 102.69 + (id % 5) * 0.004 }, accuracy_m: 15, source: 'device', fix_rejected: null },
    responder: null,
    station: { id: 'xs-s01', name: STATIONS[0].name, phone: STATIONS[0].phone, distance_m: 800.1 },
    press_count: 1,
    cancel_requested: false,
    dispatcher_needed: null,
    problem: null,
    offers: [{ responder: party(RESPONDERS[1], 412.5), deadline: now + 40_000 }],
    ladder: { rung: 'responders', offers_made: 1, tried: [], emergency_number: null, off_ladder: false, reminders: 0, on_scene_by: null },
    claimed_by: null,
    outcome: null,
    pressed_at: now - 20_000,
    opened_at: now - 20_000,
    updated_at: now - 20_000,
    ...overrides,
  };
}

/** A few incidents in different states, for screenshots and rendering checks. */
export function mixedIncidents() {
  const now = Date.now();
  return [
    // The offer's own deadline is close: 8 s left.
    view(1, {
      pressed_at: now - 50_000,
      opened_at: now - 50_000,
      offers: [{ responder: party(RESPONDERS[1], 412.5), deadline: now + 8_000 }],
      offers_planned: 3,
      ladder: { rung: 'responders', offers_made: 1, tried: [], offer_deadline: now + 8_000 },
    }),
    view(2, {
      kind: 'fall',
      state: 'en_route',
      offers: [],
      responder: party(RESPONDERS[2], 1240),
      claimed_by: { id: ME.id, name: ME.name },
      pressed_at: now - 10 * 60_000,
      opened_at: now - 10 * 60_000,
      ladder: { rung: 'responders', emergency_number: null, on_scene_by: now + 20 * 60_000 },
    }),
    view(3, {
      state: 'awaiting_dispatcher',
      dispatcher_needed: 'nobody_going',
      offers: [],
      press_count: 3,
      location: { at: { lat: 25.01, lon: 102.66 }, accuracy_m: null, source: 'home', fix_rejected: 'too_far_from_home' },
      ladder: { rung: 'dispatcher', emergency_number: '120', reminders: 2 },
      claimed_by: { id: OTHER.id, name: OTHER.name },
      pressed_at: now - 4 * 60_000,
      opened_at: now - 4 * 60_000,
    }),
    view(4, { kind: 'fire', offers: [], state: 'awaiting_dispatcher', dispatcher_needed: 'nobody_going', ladder: { rung: 'dispatcher', emergency_number: '119' }, pressed_at: now - 75_000, opened_at: now - 75_000 }),
    view(5, {
      kind: 'service',
      priority: 3,
      state: 'accepted',
      offers: [],
      responder: party(RESPONDERS[8], 2300),
      pressed_at: now - 16 * 60_000,
      opened_at: now - 16 * 60_000,
      // Accepted a minute after the press with 15 minutes to get there: a minute late.
      ladder: { rung: 'responders', on_scene_by: now - 60_000 },
    }),
    view(6, { kind: 'unreadable', priority: 2, state: 'awaiting_dispatcher', dispatcher_needed: 'unreadable_message', offers: [], pressed_at: now - 30_000, opened_at: now - 30_000 }),
    view(7, { cancel_requested: true, state: 'on_scene', offers: [], responder: party(RESPONDERS[0], 300), pressed_at: now - 9 * 60_000, opened_at: now - 9 * 60_000 }),
  ];
}

export const TIMELINE = (id) => {
  const t0 = Date.now() - 5 * 60_000;
  return [
    { seq: 10, at: t0, actor: { type: 'device', id: `xs-d000${id}` }, change: { type: 'opened', kind: 'sos', msg_id: 'm1', location: { source: 'device' }, pressed_at: t0 } },
    { seq: 11, at: t0 + 10, actor: { type: 'engine' }, change: { type: 'nearest_station', station_id: 'xs-s01', distance_m: 800 } },
    { seq: 12, at: t0 + 20, actor: { type: 'engine' }, change: { type: 'offered', responder_id: 'xs-r012', distance_m: 412, deadline: t0 + 60_000 } },
    { seq: 13, at: t0 + 30_000, actor: { type: 'device', id: `xs-d000${id}` }, change: { type: 'press_joined', msg_id: 'm2', event: 'sos', press_count: 2 } },
    { seq: 14, at: t0 + 60_000, actor: { type: 'engine' }, change: { type: 'offer_timed_out', responder_id: 'xs-r012' } },
    { seq: 15, at: t0 + 61_000, actor: { type: 'dispatcher', id: 'dispatcher2' }, change: { type: 'claimed', by: 'dispatcher2', from: null } },
    { seq: 16, at: t0 + 70_000, actor: { type: 'dispatcher', id: 'dispatcher2' }, change: { type: 'call_logged', who: 'contact:张丽(女儿)', number: '13911112222', outcome: 'reached: 女儿 20 分钟后到' } },
    { seq: 17, at: t0 + 90_000, actor: { type: 'dispatcher', id: 'dispatcher2' }, change: { type: 'emergency_called', number: '120', reference: 'KM-2024-0012' } },
    { seq: 18, at: t0 + 95_000, actor: { type: 'dispatcher', id: 'dispatcher2' }, change: { type: 'note', text: '老人意识清醒，诉头晕' } },
    { seq: 19, at: t0 + 99_000, actor: { type: 'engine' }, change: { type: 'something_new', detail: 42 } },
  ];
};
