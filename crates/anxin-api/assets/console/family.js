// The incident panel's Family section: each of the elder's contacts, whether and when they
// were told and on which channel, what became of the notification, their answer, when the
// next contact is told; and each contact's family-page link, which a dispatcher issues,
// re-issues or revokes here. A link just issued is shown once, with a copy button.

import { h } from '../common/dom.js';
import { formatClock } from '../common/format.js';
import { t } from '../common/i18n.js';
import { request } from './feed.js';
import { copyText, toast } from './parts.js';

// The live links of the elder last asked about (never tokens): which contacts have one.
let links = { elderId: null, list: null, loading: false, error: null };
// A link just issued, until the dispatcher closes it or opens another elder.
let issued = null;
// The contact whose link request is in flight.
let busy = null;

function askLinks(elderId, rerender, force = false) {
  if (!force && links.elderId === elderId && (links.loading || links.list)) return;
  const mine = { elderId, list: links.elderId === elderId ? links.list : null, loading: true, error: null };
  links = mine;
  request({ type: 'family_links', elder_id: elderId }).then((result) => {
    if (links !== mine) return;
    mine.loading = false;
    if (result.ok && Array.isArray(result.links)) mine.list = result.links;
    else mine.error = result.error || result.failure || '?';
    rerender();
  });
}

async function linkAction(elderId, contact, action, rerender) {
  busy = contact.id;
  rerender();
  const result = await request({ type: 'family_link', elder_id: elderId, contact_id: contact.id, action });
  busy = null;
  if (result.ok) {
    if (action === 'issue' && result.link) {
      issued = { elderId, contactId: contact.id, name: contact.name, url: new URL(result.link.path, location.origin).toString() };
    } else if (issued?.contactId === contact.id) {
      issued = null;
    }
    toast(t(action === 'issue' ? 'family_link_issued' : 'family_link_revoked', { name: contact.name }), 'ok');
  } else {
    toast(t('family_link_failed', { error: result.error || result.failure || '?' }), 'error');
  }
  askLinks(elderId, rerender, true);
  rerender();
}

const channelLabel = (c) => t(`family_channel_${c || 'sms'}`);

function answerText(a) {
  if (!a) return null;
  return a.type === 'going' ? t('family_answer_going', { eta: a.eta_min }) : t(`family_answer_${a.type}`);
}

function contactRow(view, contact, told, link, rerender) {
  const elderId = view.elder.id;
  const status = told
    ? [
        t('family_told', { time: formatClock(told.told_at), channel: channelLabel(told.channel) }),
        told.told > 1 ? t('family_told_times', { n: told.told }) : null,
        told.delivery ? t(`family_delivery_${told.delivery}`) : told.told_at ? t('family_delivery_pending') : null,
      ].filter(Boolean).join(' · ')
    : t('family_not_told');
  const answer = answerText(told?.answer);
  const linkLine = link
    ? t('family_link_live', { time: formatClock(link.issued_at), by: link.issued_by })
    : links.list
      ? t('family_link_none')
      : '';
  const wait = busy === contact.id;
  return h(
    'li',
    { class: `fam-contact${told?.delivery === 'dead' ? ' fam-dead' : ''}`, 'data-contact': contact.id },
    h('div', { class: 'fam-who' }, h('strong', null, contact.name || '—'), contact.relation ? ` (${contact.relation})` : ''),
    h('div', { class: 'fam-status muted', 'data-field': 'family-status', 'data-delivery': told?.delivery || '' }, status),
    answer
      ? h(
          'div',
          { class: `fam-answer fam-answer-${told.answer.type}`, 'data-field': 'family-answer', 'data-answer': told.answer.type },
          t('family_answered', { answer, time: formatClock(told.answered_at) }),
        )
      : null,
    h(
      'div',
      { class: 'fam-link' },
      h('span', { class: 'muted', 'data-field': 'family-link' }, linkLine),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-small',
          'data-action': 'family-link-issue',
          disabled: wait,
          onclick: () => linkAction(elderId, contact, 'issue', rerender),
        },
        link ? t('family_link_reissue') : t('family_link_issue'),
      ),
      link
        ? h(
            'button',
            {
              type: 'button',
              class: 'btn btn-small btn-revoke',
              'data-action': 'family-link-revoke',
              disabled: wait,
              onclick: () => linkAction(elderId, contact, 'revoke', rerender),
            },
            t('family_link_revoke'),
          )
        : null,
    ),
  );
}

function issuedBox(rerender) {
  return h(
    'div',
    { class: 'fam-issued', 'data-field': 'family-issued', role: 'status' },
    h('p', null, t('family_link_once', { name: issued.name })),
    h('input', { class: 'fam-url', type: 'text', readonly: true, value: issued.url, 'data-field': 'family-url', onfocus: (ev) => ev.target.select() }),
    h(
      'div',
      { class: 'fam-issued-actions' },
      h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'family-copy', onclick: () => copyText(issued.url, t('family_link_copied')) }, t('copy')),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-small',
          'data-action': 'family-issued-close',
          onclick: () => {
            issued = null;
            rerender();
          },
        },
        t('close'),
      ),
    ),
  );
}

/** The Family section of an open incident's panel; `rerender` draws the panel again. */
export function familySection(view, rerender) {
  const elderId = view.elder?.id;
  if (issued && issued.elderId !== elderId) issued = null;
  if (elderId) askLinks(elderId, rerender);
  const contacts = Array.isArray(view.elder?.contacts) ? view.elder.contacts : [];
  const fam = view.family || {};
  const told = new Map((fam.contacts || []).map((c) => [c.contact_id, c]));
  const live = new Map((links.elderId === elderId && links.list ? links.list : []).map((l) => [l.contact_id, l]));
  const lines = [];
  if (fam.next_at) lines.push(h('p', { class: 'fam-next', 'data-field': 'family-next' }, t('family_next_at', { time: formatClock(fam.next_at) })));
  if (fam.exhausted) lines.push(h('p', { class: 'warn-line', 'data-field': 'family-exhausted' }, t('family_exhausted')));
  if (links.error && links.elderId === elderId) lines.push(h('p', { class: 'muted' }, t('family_links_failed', { error: links.error })));
  return h(
    'section',
    { class: 'dsec', 'data-section': 'family' },
    h('h3', null, t('sec_family')),
    contacts.length
      ? h('ul', { class: 'fam-contacts' }, contacts.map((c) => contactRow(view, c, told.get(c.id), live.get(c.id), rerender)))
      : h('p', { class: 'muted' }, t('none')),
    ...lines,
    issued ? issuedBox(rerender) : null,
  );
}
