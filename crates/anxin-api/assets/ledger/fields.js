// A form's fields: each drawn from its kind's description (kinds.js) with the entry's value,
// read back into the entry, and marked with the problem the server found in it. Every
// field's wrapper carries its path (`data-path`), the name a 422 gives it.

import { h } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { fieldProblem } from './api.js';
import { getPath, setPath } from './kinds.js';
import { ledger } from './state.js';

const CHANNELS = ['sms', 'voice', 'push'];

function options(select, list, value) {
  for (const [v, label] of list) select.append(h('option', { value: v }, t(label)));
  select.value = value ?? '';
  return select;
}

function wrap(path, label, control, wide) {
  return h('div', { class: `lf${wide ? ' lf-wide' : ''}`, 'data-path': path },
    h('label', { class: 'field' }, h('span', null, label), control),
    h('p', { class: 'field-error', hidden: true }));
}

function textInput(name, value, attrs = {}) {
  const input = h('input', { name, autocomplete: 'off', spellcheck: 'false', ...attrs });
  input.value = value ?? '';
  return input;
}

function stationOptions(required) {
  const list = required ? [] : [['', 'filter_any']];
  const select = h('select');
  for (const [v, label] of list) select.append(h('option', { value: v }, t(label)));
  for (const [id, name] of ledger.stations) select.append(h('option', { value: id }, `${name} (${id})`));
  return select;
}

/** The field `f` of an entry, with the entry's value; `creating` shows what only a new entry has. */
export function renderField(f, entry, { creating, readOnly }) {
  const value = f.type === 'contacts' ? null : getPath(entry, f.path);
  const label = t(!creating && f.labelOnEdit ? f.labelOnEdit : f.label);
  const disabled = readOnly || (f.fixed && !creating);
  let control;
  switch (f.type) {
    case 'textarea':
      control = h('textarea', { name: f.path, rows: 3, disabled });
      control.value = value ?? '';
      break;
    case 'int':
      control = textInput(f.path, value ?? '', { inputmode: 'numeric', disabled });
      break;
    case 'coords': {
      const lat = textInput(`${f.path}.lat`, value && value.lat ? value.lat : '', { inputmode: 'decimal', 'aria-label': t('f_lat'), placeholder: t('f_lat'), disabled });
      const lon = textInput(`${f.path}.lon`, value && value.lon ? value.lon : '', { inputmode: 'decimal', 'aria-label': t('f_lon'), placeholder: t('f_lon'), disabled });
      control = h('span', { class: 'lf-pair' }, lat, lon);
      break;
    }
    case 'select':
      control = options(h('select', { name: f.path, disabled }), f.options, value);
      break;
    case 'bool3':
      control = options(h('select', { name: f.path, disabled }), [['', 'unknown'], ['true', 'yes'], ['false', 'no']], value === true ? 'true' : value === false ? 'false' : '');
      break;
    case 'station': {
      control = stationOptions(f.required);
      control.name = f.path;
      control.disabled = disabled;
      if (value && !ledger.stations.has(value)) control.append(h('option', { value }, value));
      control.value = value ?? '';
      break;
    }
    case 'csv':
      control = textInput(f.path, (value || []).join(', '), { disabled });
      break;
    case 'lines':
      control = h('textarea', { name: f.path, rows: 2, disabled });
      control.value = (value || []).join('\n');
      break;
    case 'contacts':
      return renderContacts(f, getPath(entry, f.path) || [], readOnly);
    default:
      if (f.createOnly && !creating) return null;
      control = textInput(f.path, value ?? '', { disabled, type: f.secret ? 'password' : 'text', autocomplete: f.secret ? 'new-password' : 'off' });
  }
  return wrap(f.path, label, control, f.wide);
}

function contactRow(c, i, readOnly) {
  const at = `profile.contacts[${i}]`;
  const cell = (key, label, control) => h('div', { class: 'lf', 'data-path': `${at}.${key}` },
    h('label', { class: 'field' }, h('span', null, t(label)), control),
    h('p', { class: 'field-error', hidden: true }));
  const language = c.language === 'en' ? 'en' : 'zh-CN';
  return h('div', { class: 'contact-row', 'data-index': i, 'data-path': at },
    cell('name', 'f_name', textInput(`${at}.name`, c.name, { disabled: readOnly })),
    cell('relation', 'f_relation', textInput(`${at}.relation`, c.relation, { disabled: readOnly })),
    cell('phone', 'f_phone', textInput(`${at}.phone`, c.phone, { disabled: readOnly, inputmode: 'tel' })),
    cell('channel', 'f_channel', options(h('select', { name: `${at}.channel`, disabled: readOnly }), CHANNELS.map((ch) => [ch, `channel_${ch}`]), c.channel || 'sms')),
    cell('language', 'f_contact_language', options(h('select', { name: `${at}.language`, disabled: readOnly }), [['zh-CN', 'lang_zh_cn'], ['en', 'lang_en']], language)),
    readOnly ? null : h('button', { class: 'btn btn-small contact-remove', type: 'button', 'data-action': 'remove-contact' }, t('contact_remove')),
    h('p', { class: 'field-error', hidden: true }));
}

/** The contacts, in the order they are told, with add and remove. */
function renderContacts(f, contacts, readOnly) {
  const list = h('div', { class: 'contact-list' });
  const box = h('fieldset', { class: 'lf lf-wide contacts', 'data-path': f.path },
    h('legend', null, t(f.label)), list,
    readOnly ? null : h('button', { class: 'btn', type: 'button', 'data-action': 'add-contact' }, t('contact_add')),
    h('p', { class: 'field-error', hidden: true }));
  box.contacts = contacts.map((c) => ({ ...c }));
  const draw = () => {
    list.replaceChildren(...(box.contacts.length
      ? box.contacts.map((c, i) => contactRow(c, i, readOnly))
      : [h('p', { class: 'muted' }, t('contact_none'))]));
  };
  box.addEventListener('click', (ev) => {
    const button = ev.target instanceof Element ? ev.target.closest('button[data-action]') : null;
    if (!button) return;
    box.contacts = readContacts(box);
    if (button.dataset.action === 'add-contact') box.contacts.push({ id: '', name: '', relation: '', phone: '', channel: 'sms' });
    else box.contacts.splice(Number(button.closest('.contact-row').dataset.index), 1);
    draw();
  });
  draw();
  return box;
}

function readContacts(box) {
  return [...box.querySelectorAll('.contact-row')].map((row) => {
    const i = Number(row.dataset.index);
    const was = box.contacts[i] || {};
    const at = `profile.contacts[${i}]`;
    const v = (key) => row.querySelector(`[name="${at}.${key}"]`).value;
    const lang = v('language');
    return {
      ...was,
      name: v('name').trim(),
      relation: v('relation').trim(),
      phone: v('phone').trim(),
      channel: v('channel'),
      language: lang === 'en' ? 'en' : was.language === 'zh-CN' ? 'zh-CN' : '',
    };
  });
}

/**
 * The entry as the form now says, over `entry` (what the form does not show stays), and the
 * problems found before asking the server (a number that is not one).
 */
export function readForm(form, fields, entry) {
  const out = structuredClone(entry);
  const problems = [];
  const at = (name) => form.querySelector(`[name="${name}"]`);
  const number = (path, text, whole) => {
    const s = String(text).trim();
    if (s === '') return null;
    const n = whole ? Number.parseInt(s, 10) : Number(s);
    if (!Number.isFinite(n) || (whole && String(n) !== s)) {
      problems.push({ field: path, code: 'not_a_number', message: '' });
      return null;
    }
    return n;
  };
  for (const f of fields) {
    if (f.type === 'contacts') {
      const box = form.querySelector(`fieldset[data-path="${f.path}"]`);
      if (box) setPath(out, f.path, readContacts(box));
      continue;
    }
    if (f.type === 'coords') {
      const lat = number(f.path, at(`${f.path}.lat`).value) ?? 0;
      const lon = number(f.path, at(`${f.path}.lon`).value) ?? 0;
      setPath(out, f.path, { lat, lon });
      continue;
    }
    const input = at(f.path);
    if (!input) continue;
    const raw = input.value;
    let value;
    switch (f.type) {
      case 'optional':
        value = raw.trim() === '' ? null : raw.trim();
        break;
      case 'int':
        value = number(f.path, raw, true);
        break;
      case 'bool3':
        value = raw === '' ? null : raw === 'true';
        break;
      case 'station':
        value = raw === '' && !f.required ? null : raw;
        break;
      case 'csv':
        value = raw.split(/[,，、]/).map((s) => s.trim()).filter(Boolean);
        break;
      case 'lines':
        value = raw.split('\n').map((s) => s.trim()).filter(Boolean);
        break;
      case 'textarea':
        value = raw;
        break;
      default:
        value = raw.trim();
    }
    setPath(out, f.path, value);
  }
  return { entry: out, problems };
}

/** Marks each problem beside its field; returns those that have no field on the form. */
export function showProblems(form, problems) {
  for (const p of form.querySelectorAll('.field-error')) {
    p.hidden = true;
    p.textContent = '';
  }
  for (const node of form.querySelectorAll('.lf.invalid, .contact-row.invalid')) node.classList.remove('invalid');
  const loose = [];
  for (const f of problems) {
    const box = form.querySelector(`[data-path="${CSS.escape(f.field)}"]`);
    const slot = box ? [...box.children].find((c) => c.classList.contains('field-error')) : null;
    if (!slot) {
      loose.push(f);
      continue;
    }
    box.classList.add('invalid');
    slot.hidden = false;
    slot.textContent = slot.textContent ? `${slot.textContent}; ${fieldProblem(f)}` : fieldProblem(f);
  }
  return loose;
}
