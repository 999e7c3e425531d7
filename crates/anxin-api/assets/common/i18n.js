// Words in the page's language: string tables, lookup with {placeholders}, and the
// formatting that needs words or units (distances, lists). Chinese is the default and the
// fallback for a key a table lacks; English is the other language. One page, one language
// at a time, so this module holds it.

import { COMMON_WORDS } from './words.js';
import { recall, remember } from './storage.js';

export const LANGUAGES = ['zh', 'en'];

const tables = { zh: { ...COMMON_WORDS.zh }, en: { ...COMMON_WORDS.en } };
let current = 'zh';

/** Adds a page's tables ({zh: {...}, en: {...}}); a later table's words win. */
export function defineStrings(table) {
  for (const lang of LANGUAGES) Object.assign(tables[lang], table[lang] || {});
}

/** The page's language: 'zh' or 'en'. */
export const language = () => current;

/** Sets the page's language; anything but 'en' is Chinese. */
export function setLanguage(lang) {
  current = lang === 'en' ? 'en' : 'zh';
}

/** The value for `<html lang>` and for a button offering the other language. */
export const htmlLang = (lang = current) => (lang === 'en' ? 'en' : 'zh-CN');
export const otherLanguage = () => (current === 'zh' ? 'en' : 'zh');

/** The language remembered under `key`, or null if none was chosen on this browser. */
export function rememberedLanguage(key) {
  const saved = recall(key);
  return LANGUAGES.includes(saved) ? saved : null;
}

/** Sets the language and remembers it under `key` as the person's own choice. */
export function chooseLanguage(lang, key) {
  setLanguage(lang);
  remember(key, current);
}

/** The text for `key` with each {name} replaced by vars[name]; the key itself if unknown. */
export function t(key, vars) {
  const table = tables[current];
  let s = key in table ? table[key] : tables.zh[key] ?? key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v ?? ''));
  }
  return s;
}

/** Whether any table knows `key` (to show a server's unknown code as sent). */
export const has = (key) => key in tables.zh;

/** A message kept as [key, vars] so it follows a change of language; '' for none. */
export const message = (m) => (m ? t(m[0], m[1]) : '');

/** 850 m, 1.2 km, 12 km; `none` for something that is not a distance. */
export function formatDistance(m, none = '') {
  if (typeof m !== 'number' || !Number.isFinite(m)) return none;
  if (m < 1000) return t('distance_m', { n: Math.round(m) });
  return t('distance_km', { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
}

/** Items joined as the language lists them; null for no items. */
export function formatList(items) {
  if (!Array.isArray(items) || items.length === 0) return null;
  return items.join(current === 'zh' ? '、' : ', ');
}

/** "label: text" with the language's colon. */
export const withColon = (label, text) => `${label}${current === 'zh' ? '：' : ': '}${text}`;
