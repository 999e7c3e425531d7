// The console's state: what the server said (incidents, responders, stations, staff), what
// the dispatcher has open, and the few constants the modules share. Modules read and change
// it directly; the queue renders from it once per frame.

export const LANG_KEY = 'anxin.console.lang';
export const CLOSED_STATES = new Set(['closed', 'cancelled', 'false_alarm']);
// Nobody has accepted yet: the accept target runs.
export const AWAITING_ACCEPT = new Set(['offered', 'awaiting_dispatcher', 'station_alerted']);
// Somebody accepted but is not there yet: the on-scene target runs.
export const AWAITING_SCENE = new Set(['accepted', 'en_route']);
export const OUTCOMES = ['helped_at_home', 'taken_to_hospital', 'family_attending', 'false_alarm', 'no_help_needed', 'other'];
// How a welfare check ends when a dispatcher ends it (the engine ends one by itself when the
// device is heard again or charged).
export const WELFARE_OUTCOMES = ['elder_well', 'family_sees_to_device', 'device_back', 'visit_arranged', 'other'];
// A scheduled call or visit of the welfare programme: the engine reads the code (a service
// request or an emergency opens for what the call found; an unanswered call is tried again).
export const PROGRAMME_OUTCOMES = ['well', 'needs_service', 'needs_help', 'no_answer', 'other'];
// Why a welfare check opened, the ones that leave the elder unable to call first.
// In the welfare list's order: an elder quiet for too long may have fallen; then devices that
// cannot call; then low batteries.
export const WELFARE_REASONS = ['inactive', 'device_offline', 'power_off', 'low_battery', 'scheduled_visit', 'scheduled_call'];
export const CALL_OUTCOMES = ['reached', 'no_answer', 'busy', 'wrong_number', 'voicemail', 'other'];
export const EMERGENCY_NUMBERS = ['120', '110', '119'];

// A command the server has not answered by then is reported as unanswered (the server
// itself gives up after 15 s and says so).
export const COMMAND_TIMEOUT_MS = 20000;
// Two alarm sounds at least this far apart, however many alarms come up at once.
export const ALARM_MIN_GAP_MS = 1500;
// A console that hears no frame for this long (the server sends a heartbeat every 5 s)
// says its connection has stalled, drops the socket and connects again.
export const STALL_AFTER_MS = 12000;
// A heartbeat ahead of what we applied, with no delta to fill the gap within this long:
// the feed is behind and the console asks for what it missed.
export const BEHIND_GRACE_MS = 3000;
// The server closes an unauthenticated console socket with this code.
export const CLOSE_UNAUTHENTICATED = 4401;

export const state = {
  /** whether the dispatcher picked the language (then the server's default is ignored) */
  langChosen: false,
  /** the signed-in user {id, name, role}, or null */
  me: null,
  staff: new Map(),
  // The welcome frame's targets; `programme_overdue_h`: a scheduled call or visit still open
  // this long past falling due is overdue (programme.overdue_after_h).
  targets: { accept_s: 60, on_scene_min: 15, programme_overdue_h: 24 },
  /** @type {Map<string, object>} incident views by id */
  incidents: new Map(),
  responders: new Map(),
  stations: new Map(),
  /** the highest sequence number applied, of any zone (shown under the queue) */
  lastSeq: null,
  /** @type {Map<number, number>} the last sequence number applied of each zone */
  seqs: new Map(),
  history: null,
  loaded: false,
  lastUpdate: null,
  conn: 'reconnecting',
  everConnected: false,
  /** the last socket went silent and was dropped; cleared when one opens */
  stalled: false,
  /** the feed's tries since its last healthy connection */
  attempt: 0,
  renderPending: false,
  /** every row is to be rebuilt at the next render (a new snapshot, a new language) */
  rebuildAll: false,
  /** the open incident's panel is to be rendered again at the next render */
  panelDirty: false,
  fresh: new Set(),
  /** the engine's alarm of every open incident that has one, by id ({need, level,
   * raised_seq, raised_at, reminders}): they flash and sound until a person acts */
  alarms: new Map(),
  /** staff ids with a console connected now (the `presence` frame), or null before one */
  online: null,
  /** when the last frame of any kind arrived (Date.now()), for the stall check */
  lastFrameAt: null,
  /** the list shown beside the map: 'emergency' (the queue) or 'welfare' (welfare checks) */
  tab: 'emergency',
  /** ids in the shown list's order, as last rendered */
  order: [],
  selectedId: null,
  openId: null,
  /** the action form open in the panel: {kind, incidentId} */
  form: null,
  timeline: { id: null, seq: null, events: null, error: null, loading: false },
  suggestions: { id: null, list: null, error: null, loading: false },
};

/** The page's fixed elements, found once at start (see console.js). */
export const dom = {};
