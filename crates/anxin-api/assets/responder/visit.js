// A carer's visits on the phone page: check in at an elder's home with the phone's position,
// say "still here", check out, and the carer's own help button. Shown only when the server's
// `hello` carries a `carer` part (a responder whose skills include `carer`); what it shows is
// that part, so a reload lands on the visit the engine holds.

import { formatClock } from '../common/format.js';
import { h } from '../common/dom.js';
import { has, t } from '../common/i18n.js';
import { currentPosition } from './location.js';

// A help press asks once more; the confirmation goes away after this long untouched.
const CONFIRM_MS = 8000;

/**
 * The carer's panel. `request(frame)` sends a `visit` frame and resolves with its `result`
 * (or a failure); `lastFix()` is the location watch's last fix ({lat, lon, at}) or null;
 * `changed()` asks the page to render again.
 */
export function createVisits({ request, lastFix, changed }) {
  const v = {
    /** the server's `carer` part, or null for a responder who is no carer */
    carer: null,
    /** an action in flight: its name, or null */
    pending: null,
    /** the last refusal or failure, as [key, vars]; or null */
    error: null,
    /** the last action the server took, for a short confirmation */
    done: null,
    confirmHelpUntil: 0,
    root: null,
  };

  function setCarer(carer) {
    v.carer = carer && typeof carer === 'object' ? carer : null;
  }

  async function act(action, fields = {}) {
    if (v.pending) return;
    v.pending = action;
    v.error = null;
    v.done = null;
    changed();
    const at = await currentPosition(lastFix);
    if (at.failure) {
      v.pending = null;
      v.error = [at.failure];
      changed();
      return;
    }
    const result = await request({ type: 'visit', action, lat: at.lat, lon: at.lon, ...fields });
    v.pending = null;
    if (result.ok) {
      v.done = action;
    } else if (result.failure) {
      v.error = [`visit_failure_${result.failure}`];
    } else {
      const key = `visit_err_${result.code}`;
      v.error = has(key) ? [key, result.args || {}] : ['visit_refused', { reason: result.error || '?' }];
    }
    changed();
  }

  function build(root) {
    v.root = root;
    root.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = root.querySelector('[name="elder_id"]');
      const elder = input.value.trim();
      if (!elder) {
        v.error = ['visit_elder_required'];
        changed();
        input.focus();
        return;
      }
      act('check_in', { elder_id: elder });
    });
    root.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-visit]');
      if (!b || b.disabled) return;
      const action = b.dataset.visit;
      if (action === 'help') {
        if (Date.now() < v.confirmHelpUntil) {
          v.confirmHelpUntil = 0;
          act('help');
        } else {
          v.confirmHelpUntil = Date.now() + CONFIRM_MS;
          changed();
          setTimeout(changed, CONFIRM_MS + 50);
        }
        return;
      }
      if (action === 'help_cancel') {
        v.confirmHelpUntil = 0;
        changed();
        return;
      }
      act(action);
    });
  }

  /** Fills the panel in; `connected` says whether actions can go. */
  function render(connected) {
    const root = v.root;
    const c = v.carer;
    root.hidden = !c;
    if (!c) return;
    const visit = c.visit && typeof c.visit === 'object' ? c.visit : null;
    root.dataset.visit = visit ? (visit.overdue ? 'overdue' : 'open') : 'none';
    const busy = Boolean(v.pending) || !connected;
    const checkin = root.querySelector('[data-part="checkin"]');
    const onVisit = root.querySelector('[data-part="on-visit"]');
    checkin.hidden = Boolean(visit);
    onVisit.hidden = !visit;
    root.querySelector('[data-part="radius"]').textContent = t('visit_radius', { radius: c.checkin_radius_m ?? '?' });
    checkin.querySelector('button').disabled = busy;
    checkin.querySelector('button').textContent = v.pending === 'check_in' ? t('visit_locating') : t('visit_check_in');
    if (visit) {
      onVisit.querySelector('[data-part="elder"]').replaceChildren(
        h('strong', {}, visit.elder_name || visit.elder_id),
        visit.address ? h('span', { class: 'visit-address' }, visit.address) : '',
      );
      onVisit.querySelector('[data-part="times"]').textContent = t('visit_times', {
        since: formatClock(visit.checked_in_at),
        due: formatClock(visit.due_at),
      });
      const overdue = onVisit.querySelector('[data-part="overdue"]');
      overdue.hidden = !visit.overdue;
      for (const b of onVisit.querySelectorAll('button[data-visit]')) b.disabled = busy;
    }
    const help = root.querySelector('[data-part="help"]');
    const confirming = Date.now() < v.confirmHelpUntil;
    help.dataset.state = c.help != null ? 'sent' : confirming ? 'confirm' : 'ready';
    const helpButton = help.querySelector('[data-visit="help"]');
    helpButton.disabled = busy || c.help != null;
    helpButton.textContent = c.help != null ? t('visit_help_sent') : confirming ? t('visit_help_confirm') : t('visit_help');
    help.querySelector('[data-visit="help_cancel"]').hidden = !confirming || c.help != null;
    const error = root.querySelector('[data-part="error"]');
    error.hidden = !v.error;
    error.textContent = v.error ? t(v.error[0], v.error[1] || {}) : '';
    const done = root.querySelector('[data-part="done"]');
    done.hidden = !v.done;
    done.textContent = v.done ? t(`visit_done_${v.done}`) : '';
  }

  function reset() {
    v.carer = null;
    v.pending = null;
    v.error = null;
    v.done = null;
    v.confirmHelpUntil = 0;
  }

  return { build, render, setCarer, reset, state: v };
}
