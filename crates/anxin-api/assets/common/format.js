// Formatting that needs no words: clock times, durations, phone numbers. Words and units
// (distances, lists) are in i18n.js.

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
