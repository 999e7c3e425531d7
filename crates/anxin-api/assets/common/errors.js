// Refusals in the page's language. Every `result` with ok false carries `code` and `args`
// (an object of strings) besides the English `error`: the page words it from the code, and
// shows the server's English only for a code it does not know (a newer server).

import { readableId } from './format.js';
import { defineStrings, has, t } from './i18n.js';

defineStrings({
  zh: {
    err_incident_not_open: '事件 #{incident} 已结束',
    err_unknown_responder: '没有这位响应人：{responder}',
    err_not_yours: '事件 #{incident} 不是 {responder} 的任务',
    err_illegal_transition: '不能从“{from}”变为“{to}”',
    err_off_duty: '{responder} 不在岗',
    err_responder_busy: '{responder} 正在处理事件 #{incident}',
    err_responder_other_zone: '{responder} 属于{zone}区，由该区调派',
    err_reason_required: '请填写原因',
    err_claimed_by_other: '事件 #{incident} 已由 {by} 认领',
    err_field_required: '缺少必填项：{what}',
    err_alarm_changed: '事件 #{incident} 有新的警报，请先查看',
    err_malformed: '请求格式不正确',
    err_not_a_responder: '此账号不是响应人',
    err_not_a_dispatcher: '此账号不是调度员',
    err_bad_location: '位置无效',
    err_missing_responder: '请选择响应人',
    err_bad_elder_id: '老人编号无效',
    err_no_such_incident: '没有事件 #{incident}',
    err_store_unavailable: '服务器暂时无法保存，请稍后重试',
    err_stopping: '服务器正在停止，请稍后重试',
    err_fenced: '未完成：该区已由另一台服务器接管，请重试',
    err_no_answer_in_time: '服务器未及时应答，请确认后重试',
    err_not_allowed: '无此权限',
  },
  en: {
    err_incident_not_open: 'Incident #{incident} has ended',
    err_unknown_responder: 'No such responder: {responder}',
    err_not_yours: 'Incident #{incident} is not {responder}’s job',
    err_illegal_transition: 'Cannot go from “{from}” to “{to}”',
    err_off_duty: '{responder} is off duty',
    err_responder_busy: '{responder} is busy with incident #{incident}',
    err_responder_other_zone: '{responder} is zone {zone}’s: their zone sends them',
    err_reason_required: 'A reason is required',
    err_claimed_by_other: 'Incident #{incident} is claimed by {by}',
    err_field_required: 'Missing: {what}',
    err_alarm_changed: 'Incident #{incident} has a new alarm: look at it first',
    err_malformed: 'The request was malformed',
    err_not_a_responder: 'This account is not a responder',
    err_not_a_dispatcher: 'This account is not a dispatcher',
    err_bad_location: 'Invalid location',
    err_missing_responder: 'Choose a responder',
    err_bad_elder_id: 'Not a valid elder id',
    err_no_such_incident: 'No incident #{incident}',
    err_store_unavailable: 'The server cannot save right now; try again shortly',
    err_stopping: 'The server is stopping; try again shortly',
    err_fenced: 'Not done: another server took this zone over; try again',
    err_no_answer_in_time: 'The server did not answer in time; check, then try again',
    err_not_allowed: 'Not allowed',
  },
});

/**
 * The words for a refusal: from its `code` and `args`, each arg passed through
 * `name(arg, value)` first (so a page can show a person's name for an id, a state's label
 * for its code), an incident's number as people read it (1⋅17 for zone 1's 17th); the
 * server's `error` for an unknown code; '?' for nothing at all.
 */
export function refusalText(result, name = (_arg, value) => value) {
  if (!result) return '?';
  const code = typeof result.code === 'string' ? result.code : '';
  if (code && has(`err_${code}`)) {
    const args = {};
    for (const [k, v] of Object.entries(result.args && typeof result.args === 'object' ? result.args : {})) {
      args[k] = name(k, k === 'incident' ? readableId(String(v ?? '')) : String(v ?? ''));
    }
    return t(`err_${code}`, args);
  }
  return result.error || code || '?';
}
