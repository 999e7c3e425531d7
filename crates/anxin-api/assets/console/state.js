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
export const CALL_OUTCOMES = ['reached', 'no_answer', 'busy', 'wrong_number', 'voicemail', 'other'];
export const EMERGENCY_NUMBERS = ['120', '110', '119'];

// A command the server has not answered by then is reported as unanswered (the server
// itself gives up after 15 s and says so).
export const COMMAND_TIMEOUT_MS = 20000;
// The alarm sound repeats this often while a new emergency waits to be acknowledged.
export const ALARM_REPEAT_MS = 15000;
export const ALARM_MIN_GAP_MS = 1500;
// The server closes an unauthenticated console socket with this code.
export const CLOSE_UNAUTHENTICATED = 4401;

export const state = {
  /** whether the dispatcher picked the language (then the server's default is ignored) */
  langChosen: false,
  /** the signed-in user {id, name, role}, or null */
  me: null,
  staff: new Map(),
  targets: { accept_s: 60, on_scene_min: 15 },
  /** @type {Map<string, object>} incident views by id */
  incidents: new Map(),
  responders: new Map(),
  stations: new Map(),
  lastSeq: null,
  history: null,
  loaded: false,
  lastUpdate: null,
  conn: 'reconnecting',
  everConnected: false,
  /** the feed's tries since its last healthy connection */
  attempt: 0,
  renderPending: false,
  /** every row is to be rebuilt at the next render (a new snapshot, a new language) */
  rebuildAll: false,
  /** the open incident's panel is to be rendered again at the next render */
  panelDirty: false,
  fresh: new Set(),
  /** ids of new emergencies nobody has acknowledged: they flash and sound */
  alarms: new Set(),
  /** ids in queue order, as last rendered */
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
