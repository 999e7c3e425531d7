// The ledger page's state: who is signed in, which list is shown with what query, the open
// entry, and the stations' names (for filters, selects and the tables' station column).

export const LANG_KEY = 'anxin.console.lang';
/** Entries a page of a table holds. */
export const PAGE_SIZE = 50;
/** Quiet time after the last key in a search box before the server is asked. */
export const SEARCH_DEBOUNCE_MS = 300;

export const ledger = {
  /** {id, name, role} */
  me: null,
  /** a supervisor reads; only an admin changes */
  canWrite: false,
  /** the list shown: elders, devices, stations, responders or staff */
  plural: 'elders',
  /** each list's query, kept while another tab is shown */
  queries: {},
  /** live stations by id: their names */
  stations: new Map(),
};

/** The page's fixed elements, found once at start (see ledger.js). */
export const dom = {};
