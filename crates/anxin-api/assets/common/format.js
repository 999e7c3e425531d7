// Formatting that needs no words: clock times, durations, phone numbers, the numbers of
// incidents, orders and visits. Words and units (distances, lists) are in i18n.js.

export const pad2 = (n) => String(n).padStart(2, '0');

/** hh:mm:ss in the browser's time zone; '—' for something that is not a time. */
export function formatClock(epochMs) {
  const d = new Date(Number(epochMs));
  if (Number.isNaN(d.getTime())) return '—';
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** mm:ss of time gone by (minutes go past 59); never negative. */
export function formatElapsed(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  return `${pad2(Math.floor(total / 60))}:${pad2(total % 60)}`;
}

/** m:ss of time left, rounded up so 0:00 means the time is really up; never negative. */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(total / 60)}:${pad2(total % 60)}`;
}

/** 13800000000 → 138 0000 0000, easier to read back; other numbers as sent. */
export function formatPhone(phone) {
  const digits = String(phone).replace(/\s+/g, '');
  return /^1\d{10}$/.test(digits) ? `${digits.slice(0, 3)} ${digits.slice(3, 7)} ${digits.slice(7)}` : String(phone);
}

// Incidents, service orders, carers' visits and events are numbered `zone · 2⁴⁰ + n`
// (docs/architecture.md, "Numbers carry the zone"), so zone 1's first incident is
// 1099511627777: thirteen digits nobody can read out on the phone. People are shown the
// zone and the number within it instead, joined by a raised dot: 1⋅17 is zone 1's 17th (read
// out "zone 1, number 17", "1区17号"). A hyphen would read as a date (the console shows
// 12-06 07:00), a range or a subtraction, and Chromium breaks a line after it; a slash reads
// as a date or a fraction, a colon as a time, a full stop as a decimal. The dot is U+22C5,
// not the Latin middle dot U+00B7: the CJK fonts the pages ask for first (Noto Sans CJK,
// Source Han Sans) draw U+00B7 full width, so 1·17 would look like "1 · 17", the pages' own
// separator; they and the Latin fonts draw U+22C5 narrow, and no line breaks at it (it is
// the mathematicians' product dot, but no page shows a product). Zone 0's numbers, the
// 1, 2, 3... of a district never split, stay as they are. Only what people read changes: the
// API, the WebSocket frames, CSV files and data-* attributes carry the raw number.
const ZONE_SPAN = 2 ** 40;
// Zones are numbered below this (2⁵³ / 2⁴⁰), as `Zone::LIMIT` in anxin-core.
const ZONES = 2 ** 13;
const ZONE_DOT = '\u22C5';

/** 17 → '17'; 1099511627793 (zone 1's 17th) → '1⋅17'; anything not such a number as sent. */
export function readableId(id) {
  const n = typeof id === 'string' && /^\d+$/.test(id) ? Number(id) : id;
  if (!Number.isSafeInteger(n) || n < 0) return String(id ?? '');
  if (n < ZONE_SPAN) return String(n);
  // Exact: below 2⁵³ a Number is an integer, and so are its quotient's floor and remainder.
  return `${Math.floor(n / ZONE_SPAN)}${ZONE_DOT}${n % ZONE_SPAN}`;
}

/**
 * The number a person typed, in either form, with or without '#': '17' → 17, '1⋅17' → zone
 * 1's 17th, and the raw 1099511627793 too. Between the zone and the number any dot (⋅ · ・ ∙
 * • ‧ .), a hyphen, an underscore or a space, as a keyboard or an IME has one (a Chinese IME
 * types · for the key left of 1); full-width digits too. Null for anything else, or a zone
 * or a number out of range.
 */
export function parseReadableId(text) {
  const typed = String(text ?? '')
    .trim()
    .replace(/[\uFF10-\uFF19\uFF03]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
    .replace(/^#\s*/, '');
  if (/^\d+$/.test(typed)) {
    const n = Number(typed);
    return Number.isSafeInteger(n) ? n : null;
  }
  const parts = /^(\d+)\s*[\u22C5\u00B7\u30FB\u2219\u2022\u2027.\-_\s]\s*(\d+)$/.exec(typed);
  if (!parts) return null;
  const zone = Number(parts[1]);
  const within = Number(parts[2]);
  if (zone >= ZONES || within < 1 || within >= ZONE_SPAN) return null;
  return zone * ZONE_SPAN + within;
}
