// What the services board and a worker's phone say alike about home-care orders: the
// categories and states in words, money in yuan, windows and appointments in local time, why
// no provider could take an order, and the codes the service lane refuses with.
//
// The engine names categories by id (`[services] categories`; the 16 defaults are
// anxin-core's DEFAULT_CATEGORIES) and explains an empty match in English
// (`PassedOver::explain`); the pages translate both and show anything they do not know as
// sent, so a district's own category still shows by its id.

import { defineStrings, has, language, t } from './i18n.js';
import { pad2 } from './format.js';

defineStrings({
  zh: {
    cat_meals: '助餐',
    cat_meal_delivery: '送餐',
    cat_cleaning: '保洁',
    cat_bathing: '助浴',
    cat_haircut: '理发',
    cat_shopping: '代购',
    cat_goods_delivery: '生活用品配送',
    cat_escort: '陪同外出',
    cat_medical_help: '助医',
    cat_rehabilitation: '康复护理',
    cat_health_advice: '健康咨询',
    cat_housekeeping: '家政',
    cat_repair: '水电家具维修',
    cat_drain_clearing: '管道疏通',
    cat_counselling: '谈心与心理疏导',
    cat_legal_advice: '法律咨询',
    ostate_offered: '待服务商接单',
    ostate_unmatched: '无服务商接单',
    ostate_accepted: '已接单',
    ostate_en_route: '在途',
    ostate_on_site: '已上门',
    ostate_done: '已完成，待确认',
    ostate_confirmed: '已确认',
    ostate_disputed: '有异议',
    ostate_settled: '异议已处理',
    ostate_cancelled: '已取消',
    day_today: '今天',
    day_tomorrow: '明天',
    day_yesterday: '昨天',
    day_date: '{m}月{d}日',
    why_none_fits: '没有合适的服务商：{parts}',
    why_category: '{n} 家不提供此项服务',
    why_area: '{n} 家不服务老人住址',
    why_hours: '{n} 家在所需时间不营业',
    why_full: '{n} 家当天已约满',
    why_tried: '{n} 家已派过此单',
    why_no_provider: '台账中没有服务商',
    why_elder_left: '老人已不在台账中',
    oerr_unknown_order: '工单不存在或已结束',
    oerr_unknown_elder: '台账中没有这位老人',
    oerr_unknown_category: '不提供这项服务（或所选服务商不提供）',
    oerr_bad_window: '时间段无效：结束时间须晚于开始时间',
    oerr_not_a_worker: '此账号不是服务人员',
    oerr_not_offered: '此单未派给您所在的服务商',
    oerr_not_yours: '此单不是您的',
    oerr_wrong_state: '工单现为“{state}”，不能这样操作',
    oerr_missing: '请填写必填项',
    oerr_appointment_outside_window: '预约时间须在老人要求的时间段内',
    oerr_self_paid_not_agreed: '超出补贴 {self_paid}，须老人同意自付后才能下单',
    oerr_out_of_radius: '您距老人住址约 {distance_m} 米，签到须在 {radius_m} 米以内',
    oerr_bad_rating: '评分须为 1 到 5 星',
    oerr_worker_busy: '服务人员正在另一单上',
    oerr_no_session: '登录已失效，请重新登录',
    oerr_forbidden: '无此权限',
    oerr_not_allowed: '无此权限',
    oerr_bad_json: '请求格式不正确',
    oerr_store_unavailable: '服务器暂时无法保存，请稍后重试',
    oerr_stopping: '服务器正在停止，请稍后重试',
    oerr_no_answer_in_time: '服务器未及时应答，请刷新后核对',
    oerr_network: '连接不上服务器，请稍后重试',
    oerr_other: '未成功：{reason}',
  },
  en: {
    cat_meals: 'Meals',
    cat_meal_delivery: 'Meal delivery',
    cat_cleaning: 'Cleaning',
    cat_bathing: 'Bathing',
    cat_haircut: 'Haircut',
    cat_shopping: 'Shopping',
    cat_goods_delivery: 'Daily goods delivery',
    cat_escort: 'Escort outside',
    cat_medical_help: 'Medical help',
    cat_rehabilitation: 'Rehabilitation',
    cat_health_advice: 'Health advice',
    cat_housekeeping: 'Housekeeping',
    cat_repair: 'Repairs',
    cat_drain_clearing: 'Drain clearing',
    cat_counselling: 'Conversation & counselling',
    cat_legal_advice: 'Legal advice',
    ostate_offered: 'Offered to a provider',
    ostate_unmatched: 'No provider',
    ostate_accepted: 'Accepted',
    ostate_en_route: 'On the way',
    ostate_on_site: 'At the door',
    ostate_done: 'Done, to confirm',
    ostate_confirmed: 'Confirmed',
    ostate_disputed: 'Disputed',
    ostate_settled: 'Settled',
    ostate_cancelled: 'Cancelled',
    day_today: 'Today',
    day_tomorrow: 'Tomorrow',
    day_yesterday: 'Yesterday',
    day_date: '{d} {mon}',
    why_none_fits: 'No provider fits: {parts}',
    why_category: '{n} do not offer it',
    why_area: '{n} do not serve the elder’s home',
    why_hours: '{n} are closed at that time',
    why_full: '{n} are full that day',
    why_tried: '{n} were offered it already',
    why_no_provider: 'There is no provider in the ledger',
    why_elder_left: 'The elder has left the ledger',
    oerr_unknown_order: 'No such order, or it is over',
    oerr_unknown_elder: 'No such elder in the ledger',
    oerr_unknown_category: 'That service is not offered (or not by that provider)',
    oerr_bad_window: 'The window must end after it starts',
    oerr_not_a_worker: 'This account is not a service worker',
    oerr_not_offered: 'This order is not offered to your provider',
    oerr_not_yours: 'This order is not yours',
    oerr_wrong_state: 'The order is “{state}”: that cannot be done now',
    oerr_missing: 'Fill in what is required',
    oerr_appointment_outside_window: 'The appointment must fall inside the wanted window',
    oerr_self_paid_not_agreed: '{self_paid} over the allowance: the elder must agree to pay it first',
    oerr_out_of_radius: 'You are about {distance_m} m from the elder’s home; check in within {radius_m} m',
    oerr_bad_rating: 'A rating is 1 to 5 stars',
    oerr_worker_busy: 'The worker is out on another order',
    oerr_no_session: 'Your session has ended: sign in again',
    oerr_forbidden: 'Not allowed',
    oerr_not_allowed: 'Not allowed',
    oerr_bad_json: 'The request was malformed',
    oerr_store_unavailable: 'The server cannot save right now; try again shortly',
    oerr_stopping: 'The server is stopping; try again shortly',
    oerr_no_answer_in_time: 'The server did not answer in time; reload and check',
    oerr_network: 'Cannot reach the server; try again shortly',
    oerr_other: 'Not done: {reason}',
  },
});

/**
 * The categories a district takes orders for unless its configuration says otherwise:
 * anxin-core's DEFAULT_CATEGORIES, in its order. For a page that may not read the staff's
 * catalogue (the family page); each has its words above.
 */
export const DEFAULT_CATEGORIES = [
  'meals',
  'meal_delivery',
  'cleaning',
  'bathing',
  'haircut',
  'shopping',
  'goods_delivery',
  'escort',
  'medical_help',
  'rehabilitation',
  'health_advice',
  'housekeeping',
  'repair',
  'drain_clearing',
  'counselling',
  'legal_advice',
];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A category's name; its id for one the pages do not know. */
export const categoryLabel = (id) => (has(`cat_${id}`) ? t(`cat_${id}`) : String(id ?? ''));

/** An order state's name. */
export const orderStateLabel = (s) => (has(`ostate_${s}`) ? t(`ostate_${s}`) : String(s ?? ''));

/** ¥150, ¥12.50: fen in yuan. */
export function yuan(fen) {
  const n = Number(fen);
  if (!Number.isFinite(n)) return '—';
  return n % 100 === 0 ? `¥${n / 100}` : `¥${(n / 100).toFixed(2)}`;
}

const startOfDay = (ms) => {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
};

/** Today, tomorrow, yesterday or the date of `ms`, in local time, as seen at `now`. */
export function dayLabel(ms, now) {
  const days = Math.round((startOfDay(ms) - startOfDay(now)) / 86_400_000);
  if (days === 0) return t('day_today');
  if (days === 1) return t('day_tomorrow');
  if (days === -1) return t('day_yesterday');
  const d = new Date(ms);
  return t('day_date', { m: d.getMonth() + 1, d: d.getDate(), mon: MONTHS[d.getMonth()] });
}

/** hh:mm, local time. */
export function hhmm(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** "Today 09:00–13:00", or both days when the window spans midnight. */
export function windowLabel(from, to, now) {
  const sameDay = startOfDay(from) === startOfDay(to);
  return sameDay
    ? `${dayLabel(from, now)} ${hhmm(from)}–${hhmm(to)}`
    : `${dayLabel(from, now)} ${hhmm(from)} – ${dayLabel(to, now)} ${hhmm(to)}`;
}

/** "Today 10:30". */
export const momentLabel = (ms, now) => `${dayLabel(ms, now)} ${hhmm(ms)}`;

/** yyyy-mm-dd and hh:mm of `ms` in local time, for date and time inputs. */
export function toInputs(ms) {
  const d = new Date(ms);
  return { date: `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`, time: hhmm(ms) };
}

/** Local date (yyyy-mm-dd) and time (hh:mm) as ms since the epoch; NaN if either is empty. */
export function fromInputs(date, time) {
  if (!date || !time) return Number.NaN;
  return new Date(`${date}T${time}`).getTime();
}

const WHY_PARTS = [
  ['do not offer the category', 'why_category'],
  ["do not serve the elder's home", 'why_area'],
  ['are closed at the wanted time', 'why_hours'],
  ['are full that day', 'why_full'],
  ['were offered it already', 'why_tried'],
];

/**
 * Why no provider could take an order, in the page's language, from the engine's English
 * (`no provider fits: 2 are full that day, 1 …`); text it does not recognise, as sent.
 */
export function whyNoProvider(text) {
  const s = String(text ?? '').trim();
  if (!s) return '';
  if (s === 'no provider in the ledger') return t('why_no_provider');
  if (s === 'the elder has left the ledger') return t('why_elder_left');
  const m = /^no provider fits: (.*)$/.exec(s);
  if (!m) return s;
  const parts = [];
  for (const piece of m[1].split(', ')) {
    const p = /^(\d+) (.*)$/.exec(piece);
    const known = p && WHY_PARTS.find(([en]) => en === p[2]);
    if (!known) return s;
    parts.push(t(known[1], { n: p[1] }));
  }
  return t('why_none_fits', { parts: parts.join(language() === 'zh' ? '；' : '; ') });
}

/**
 * A refusal from the service lane in words: `{code, error, args}` from REST or a socket's
 * `result`. Money and states in its args are shown as the page shows them.
 */
export function orderRefusal(body) {
  const code = body && typeof body.code === 'string' ? body.code : '';
  const args = { ...(body?.args || {}) };
  if (args.state) args.state = orderStateLabel(args.state);
  if (args.self_paid_fen !== undefined) args.self_paid = yuan(args.self_paid_fen);
  if (code && has(`oerr_${code}`)) return t(`oerr_${code}`, args);
  return t('oerr_other', { reason: body?.error || code || '?' });
}
