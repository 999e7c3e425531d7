// Anxin dispatcher console: sign-in, the live queue, the map, an incident's detail and the
// dispatcher's actions, all over the /ws feed.
//
// Plain JavaScript with no build step; the daemon embeds this file and serves it at
// /assets/console.js (the map is console-map.js beside it). Until the server knows who is
// signed in (a session cookie from POST /api/v1/session) the page shows only the sign-in
// form. Then /ws sends `welcome` (who we are, the staff, targets and language), `roster`
// (responders and stations), a `snapshot` (the open set as of a sequence number), and then
// `incident` deltas and `responder` changes. On reconnect we ask for
// `?since=<last applied seq>&history=<id>` so the server sends only what we missed, or a
// fresh snapshot when it cannot. Commands and queries go up the same socket with a
// request_id and are answered by a `result`.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------
  // Words. Every visible label has both languages; server text (names, addresses, notes,
  // `problem`, errors) is shown as sent.
  // ---------------------------------------------------------------------------------------
  const STRINGS = {
    zh: {
      title: '安心 · 24 小时调度台',
      title_short: '安心调度台',
      signin_lead: '调度员与主管请登录。未登录时不显示任何事件。',
      signin_user: '用户名',
      signin_password: '密码',
      signin_submit: '登录',
      signin_busy: '正在登录…',
      signin_wrong: '用户名或密码不正确。',
      signin_failed: '登录失败（{status}），请稍后再试。',
      signin_wait: '密码错误次数过多，请 {seconds} 秒后再试。',
      signin_expired: '登录已失效，请重新登录。',
      signin_missing: '请输入用户名和密码。',
      signout: '退出',
      role_dispatcher: '调度员',
      role_supervisor: '主管',
      count_open: '进行中',
      count_unassigned: '待调度',
      count_alarm: '待确认',
      conn_connected: '已连接',
      conn_connecting: '正在连接…',
      conn_reconnecting: '连接中断 · 正在重连',
      conn_retry: '（第 {n} 次）',
      lang_toggle: 'English',
      stale: '连接已中断：下表可能不是最新状态，正在自动重连。',
      queue_title: '事件队列',
      map_title: '地图',
      map_zoom_in: '放大',
      map_zoom_out: '缩小',
      map_fit: '显示全部',
      col_since: '按键时长',
      col_kind: '类型 / 状态',
      col_elder: '老人 / 位置',
      col_responder: '响应人',
      col_claimed: '认领',
      empty: '当前没有进行中的事件。',
      waiting: '正在等待服务器数据…',
      legend: '排序：紧急程度优先，其次按键最早者在前。',
      foot_keys: '按 ? 查看快捷键',
      seq_info: '数据序号 {seq} · 更新于 {time}',
      pressed_at: '按键于 {time}',
      target_accept: '接单 ≤ {n} 秒',
      target_on_scene: '到场 ≤ {n} 分钟',
      target_done: '已到场',
      kind_sos: '紧急呼叫',
      kind_fall: '跌倒',
      kind_fire: '烟感/燃气',
      kind_intrusion: '入侵',
      kind_unreadable: '无法识别',
      kind_service: '服务请求',
      presses: '按了 {n} 次',
      state_offered: '已派单 · 待接单',
      state_awaiting_dispatcher: '待调度员处理',
      state_station_alerted: '已通知站点值班',
      state_accepted: '已接单',
      state_en_route: '在途',
      state_on_scene: '已到场',
      state_resolved: '已处置 · 待结案',
      state_closed: '已结案',
      state_cancelled: '已取消',
      state_false_alarm: '误报',
      loc_device: '设备定位',
      loc_home: '登记住址',
      accuracy: '精度 ±{d}',
      fix_null_island: '设备定位无效 (0,0)，已改用住址',
      fix_too_inaccurate: '设备定位精度不足，已改用住址',
      fix_too_far_from_home: '设备定位离家过远，已改用住址',
      fix_other: '设备定位未采用：{reason}',
      nobody: '无人在范围内',
      dispatcher_first: '待调度员派单',
      to_station: '→ 站点：{name}',
      no_station: '→ 附近没有站点',
      station_backup: '站点：{name}',
      offered_to: '已派给：',
      distance_m: '{n} 米',
      distance_km: '{n} 公里',
      phone: '电话 {phone}',
      cancel_requested: '老人请求取消，请核实',
      problem: '注意：{text}',
      unclaimed: '未认领',
      claimed_me: '我',
      alarm_row: '新警报 · 待确认 (a)',
      sound_off: '🔇 点击启用提示音',
      // Detail panel
      close_panel: '关闭 (Esc)',
      close: '关闭',
      detail_incident: '事件 #{id}',
      sec_elder: '老人',
      sec_contacts: '紧急联系人',
      sec_location: '位置',
      sec_job: '响应',
      sec_press: '按键',
      sec_timeline: '处置记录',
      f_name: '姓名',
      f_age: '年龄',
      f_age_value: '{n} 岁',
      f_lives_alone: '独居',
      f_address: '住址',
      f_phone: '电话',
      f_conditions: '健康状况',
      f_medications: '用药',
      f_mobility: '行动能力',
      f_language: '语言/方言',
      f_door_notes: '门禁/钥匙',
      f_notes: '备注',
      f_source: '来源',
      f_accuracy: '精度',
      f_coords: '坐标',
      f_device: '设备',
      f_press_count: '按键次数',
      f_pressed_at: '首次按键',
      f_opened_at: '立案时间',
      f_responder: '响应人',
      f_offers: '待接单',
      f_station: '站点',
      f_emergency_number: '应拨打',
      f_on_scene_by: '须到场时间',
      f_reminders: '提醒次数',
      f_outcome: '处置结果',
      yes: '是',
      no: '否',
      unknown: '不详',
      none: '无',
      copy: '复制',
      copied: '已复制 {text}',
      copy_failed: '无法复制，请手动抄写：{text}',
      show_on_map: '在地图上显示',
      offer_deadline: '{time} 前',
      timeline_loading: '正在读取处置记录…',
      timeline_empty: '暂无记录。',
      timeline_failed: '处置记录读取失败：{error}',
      // Claims and actions
      claim: '认领',
      claim_take_over: '接管',
      release: '放弃认领',
      claimed_by_me: '由我处理',
      claimed_by_other: '{name} 正在处理',
      not_claimed: '尚无人认领',
      act_acknowledge: '确认 (a)',
      act_assign: '派单 (s)',
      act_note: '备注 (n)',
      act_call: '记录通话',
      act_escalate: '转报 120/110/119',
      act_off_ladder: '停止自动派单',
      act_cancel: '取消事件',
      act_false_alarm: '标为误报',
      act_resolve: '已处置',
      act_close: '结案',
      submit: '提交',
      cancel_form: '返回',
      sending: '正在提交…',
      done_ok: '已完成：{what}',
      done_failed: '未完成：{error}',
      no_answer: '服务器未答复，请核对当前状态后再试。',
      not_connected: '未连接服务器，无法提交。',
      note_label: '备注内容',
      reason_label: '原因（必填）',
      reason_required: '请填写原因。',
      text_required: '请填写内容。',
      outcome_label: '处置结果',
      outcome_text: '补充说明',
      outcome_helped_at_home: '已上门处置',
      outcome_taken_to_hospital: '已送医',
      outcome_family_attending: '家属已到场',
      outcome_false_alarm: '误报',
      outcome_no_help_needed: '无需帮助',
      outcome_other: '其他',
      outcome_other_required: '选择“其他”时请补充说明。',
      call_who: '通话对象',
      call_number: '号码',
      call_outcome: '结果',
      call_elder: '老人本人',
      call_contact: '联系人 {name}',
      call_responder: '响应人 {name}',
      call_station: '站点 {name}',
      call_emergency: '急救/报警 {number}',
      call_other: '其他',
      call_other_who: '对象说明',
      call_reached: '已接通',
      call_no_answer: '无人接听',
      call_busy: '占线',
      call_wrong_number: '号码有误',
      call_voicemail: '已留言',
      escalate_number: '转报号码',
      escalate_reference: '接警编号（可选）',
      num_120: '120 急救',
      num_110: '110 报警',
      num_119: '119 火警',
      suggest_title: '推荐响应人（按预计到达排序）',
      suggest_loading: '正在计算推荐…',
      suggest_none: '附近没有空闲的响应人。',
      suggest_failed: '推荐读取失败：{error}',
      suggest_eta: '约 {n} 分钟',
      suggest_in_circle: '服务圈内',
      suggest_out_circle: '服务圈外',
      suggest_skill: '技能符合',
      suggest_no_skill: '缺少技能',
      assign_to: '派给 {name}',
      reassign_to: '改派 {name}',
      mode_foot: '步行',
      mode_ebike: '电动车',
      mode_car: '汽车',
      // Map and responders
      lg_incident_1: '紧急事件',
      lg_incident_other: '其他事件',
      lg_station: '站点',
      lg_circle: '服务圈：{min} 分钟 × 电动车 4 米/秒 ÷ 绕行 1.3',
      lg_circle_plain: '服务圈 = 分钟 × 电动车 4 米/秒 ÷ 绕行 1.3',
      rstatus_available: '空闲',
      rstatus_offered: '待接单',
      rstatus_busy: '执行任务',
      rstatus_off_duty: '下班',
      r_station: '所属站点',
      r_mode: '出行方式',
      r_skills: '技能',
      r_duty: '在岗',
      r_position_at: '位置更新',
      r_job: '当前事件',
      r_open_job: '打开事件 #{id}',
      s_circle: '服务圈',
      s_circle_value: '{min} 分钟 · 约 {d}',
      minutes_ago: '{n} 分钟前',
      // Timeline
      actor_device: '设备 {id}',
      actor_engine: '系统',
      actor_responder: '响应人 {name}',
      actor_dispatcher: '调度员 {name}',
      actor_station: '站点 {name}',
      ev_opened: '立案：{kind}，{source}',
      ev_press_joined: '再次按键（第 {n} 次）{event}',
      ev_kind_changed: '类型由 {from} 升级为 {to}',
      ev_offered: '派单给 {name}（{d}），{time} 前答复',
      ev_offer_declined: '{name} 拒绝',
      ev_offer_timed_out: '{name} 超时未答复',
      ev_offer_withdrawn: '撤回对 {name} 的派单',
      ev_station_alerted: '通知站点值班：{name}',
      ev_nobody_going: '无人前往，需调度员处理{number}',
      ev_nobody_going_number: '，应拨打 {number}',
      ev_reminder: '提醒调度员（第 {n} 次）',
      ev_accepted: '{name} 接单',
      ev_en_route: '响应人出发',
      ev_on_scene: '响应人到场',
      ev_on_scene_overdue: '{name} 超时未到场',
      ev_assigned: '人工派给 {name}',
      ev_taken_off_ladder: '停止自动派单',
      ev_acknowledged: '已确认',
      ev_resolved: '已处置：{outcome}',
      ev_closed: '结案：{outcome}',
      ev_cancelled: '取消：{reason}',
      ev_false_alarm: '误报：{reason}',
      ev_nobody_in_range: '{d} 内无空闲响应人',
      ev_nobody_qualified: '范围内 {in_range} 人均不符合：已试 {already_tried}，缺技能 {lacking_skill}，圈外 {outside_circle}',
      ev_nearest_station: '最近站点：{name}（{d}）',
      ev_cancel_requested: '老人长按请求取消',
      ev_claimed: '认领',
      ev_claimed_by: '由 {name} 认领',
      ev_taken_over_from: '（接管自 {name}）',
      ev_nobody_free_at_station: '本站点 {name} 无空闲响应人',
      ev_released: '放弃认领',
      ev_note: '备注：{text}',
      ev_call: '通话：{who}{number}，{outcome}',
      ev_escalated: '转报 {number}{reference}',
      ev_escalated_ref: '，编号 {reference}',
      ev_unknown: '{type}',
      // Shortcuts
      shortcuts_title: '快捷键',
      key_move: '在队列中上下移动',
      key_open: '打开所选事件',
      key_claim: '认领',
      key_ack: '确认（停止提示音与闪烁）',
      key_note: '添加备注',
      key_suggest: '推荐与派单',
      key_esc: '关闭表单 / 面板',
      key_help: '显示快捷键',
    },
    en: {
      title: 'Anxin · 24-hour dispatch',
      title_short: 'Anxin dispatch',
      signin_lead: 'Dispatchers and supervisors, please sign in. Nothing is shown until you do.',
      signin_user: 'User name',
      signin_password: 'Password',
      signin_submit: 'Sign in',
      signin_busy: 'Signing in…',
      signin_wrong: 'Wrong user name or password.',
      signin_failed: 'Sign-in failed ({status}); try again shortly.',
      signin_wait: 'Too many wrong passwords: try again in {seconds} s.',
      signin_expired: 'Your session has ended; please sign in again.',
      signin_missing: 'Enter your user name and password.',
      signout: 'Sign out',
      role_dispatcher: 'Dispatcher',
      role_supervisor: 'Supervisor',
      count_open: 'Open',
      count_unassigned: 'Needs dispatcher',
      count_alarm: 'To acknowledge',
      conn_connected: 'Connected',
      conn_connecting: 'Connecting…',
      conn_reconnecting: 'Connection lost · reconnecting',
      conn_retry: ' (attempt {n})',
      lang_toggle: '中文',
      stale: 'Connection lost: this table may be out of date. Reconnecting automatically.',
      queue_title: 'Incident queue',
      map_title: 'Map',
      map_zoom_in: 'Zoom in',
      map_zoom_out: 'Zoom out',
      map_fit: 'Show everything',
      col_since: 'Since press',
      col_kind: 'Kind / state',
      col_elder: 'Elder / location',
      col_responder: 'Responder',
      col_claimed: 'Claimed',
      empty: 'No open incidents.',
      waiting: 'Waiting for the server…',
      legend: 'Order: most urgent first, then the oldest press first.',
      foot_keys: 'Press ? for shortcuts',
      seq_info: 'seq {seq} · updated {time}',
      pressed_at: 'pressed {time}',
      target_accept: 'accept ≤ {n} s',
      target_on_scene: 'on scene ≤ {n} min',
      target_done: 'on scene',
      kind_sos: 'SOS',
      kind_fall: 'Fall',
      kind_fire: 'Smoke/gas',
      kind_intrusion: 'Break-in',
      kind_unreadable: 'Unreadable',
      kind_service: 'Service',
      presses: '{n} presses',
      state_offered: 'Offered · pending',
      state_awaiting_dispatcher: 'Needs a dispatcher',
      state_station_alerted: 'Station duty line alerted',
      state_accepted: 'Accepted',
      state_en_route: 'En route',
      state_on_scene: 'On scene',
      state_resolved: 'Resolved · to close',
      state_closed: 'Closed',
      state_cancelled: 'Cancelled',
      state_false_alarm: 'False alarm',
      loc_device: 'Device fix',
      loc_home: 'Home address',
      accuracy: '±{d}',
      fix_null_island: 'Device fix invalid (0,0); using home',
      fix_too_inaccurate: 'Device fix too inaccurate; using home',
      fix_too_far_from_home: 'Device fix too far from home; using home',
      fix_other: 'Device fix not used: {reason}',
      nobody: 'Nobody in range',
      dispatcher_first: 'Dispatcher to assign',
      to_station: '→ station: {name}',
      no_station: '→ no station nearby',
      station_backup: 'Station: {name}',
      offered_to: 'Offered to: ',
      distance_m: '{n} m',
      distance_km: '{n} km',
      phone: 'tel. {phone}',
      cancel_requested: 'Elder asked to cancel: verify',
      problem: 'Note: {text}',
      unclaimed: 'Unclaimed',
      claimed_me: 'Me',
      alarm_row: 'Acknowledge (a)',
      sound_off: '🔇 Click to enable sound',
      close_panel: 'Close (Esc)',
      close: 'Close',
      detail_incident: 'Incident #{id}',
      sec_elder: 'Elder',
      sec_contacts: 'Emergency contacts',
      sec_location: 'Location',
      sec_job: 'Response',
      sec_press: 'Presses',
      sec_timeline: 'Timeline',
      f_name: 'Name',
      f_age: 'Age',
      f_age_value: '{n}',
      f_lives_alone: 'Lives alone',
      f_address: 'Address',
      f_phone: 'Phone',
      f_conditions: 'Conditions',
      f_medications: 'Medications',
      f_mobility: 'Mobility',
      f_language: 'Language',
      f_door_notes: 'Door / keys',
      f_notes: 'Notes',
      f_source: 'Source',
      f_accuracy: 'Accuracy',
      f_coords: 'Coordinates',
      f_device: 'Device',
      f_press_count: 'Presses',
      f_pressed_at: 'First press',
      f_opened_at: 'Opened',
      f_responder: 'Responder',
      f_offers: 'Offered to',
      f_station: 'Station',
      f_emergency_number: 'Call',
      f_on_scene_by: 'On scene by',
      f_reminders: 'Reminders',
      f_outcome: 'Outcome',
      yes: 'Yes',
      no: 'No',
      unknown: 'Unknown',
      none: 'None',
      copy: 'Copy',
      copied: 'Copied {text}',
      copy_failed: 'Could not copy; write it down: {text}',
      show_on_map: 'Show on map',
      offer_deadline: 'until {time}',
      timeline_loading: 'Loading the timeline…',
      timeline_empty: 'Nothing recorded yet.',
      timeline_failed: 'Could not load the timeline: {error}',
      claim: 'Claim',
      claim_take_over: 'Take over',
      release: 'Release',
      claimed_by_me: 'Claimed by me',
      claimed_by_other: '{name} is handling this',
      not_claimed: 'Nobody has claimed this',
      act_acknowledge: 'Acknowledge (a)',
      act_assign: 'Assign (s)',
      act_note: 'Note (n)',
      act_call: 'Log a call',
      act_escalate: 'Escalate 120/110/119',
      act_off_ladder: 'Stop automatic offers',
      act_cancel: 'Cancel incident',
      act_false_alarm: 'False alarm',
      act_resolve: 'Resolve',
      act_close: 'Close',
      submit: 'Submit',
      cancel_form: 'Back',
      sending: 'Sending…',
      done_ok: 'Done: {what}',
      done_failed: 'Not done: {error}',
      no_answer: 'No answer from the server; check the current state before trying again.',
      not_connected: 'Not connected to the server; nothing was sent.',
      note_label: 'Note',
      reason_label: 'Reason (required)',
      reason_required: 'Give a reason.',
      text_required: 'Write something first.',
      outcome_label: 'Outcome',
      outcome_text: 'Details',
      outcome_helped_at_home: 'Helped at home',
      outcome_taken_to_hospital: 'Taken to hospital',
      outcome_family_attending: 'Family attending',
      outcome_false_alarm: 'False alarm',
      outcome_no_help_needed: 'No help needed',
      outcome_other: 'Other',
      outcome_other_required: 'Describe the outcome when choosing "Other".',
      call_who: 'Who',
      call_number: 'Number',
      call_outcome: 'Outcome',
      call_elder: 'The elder',
      call_contact: 'Contact {name}',
      call_responder: 'Responder {name}',
      call_station: 'Station {name}',
      call_emergency: 'Emergency {number}',
      call_other: 'Someone else',
      call_other_who: 'Who was it',
      call_reached: 'Reached',
      call_no_answer: 'No answer',
      call_busy: 'Busy',
      call_wrong_number: 'Wrong number',
      call_voicemail: 'Left a message',
      escalate_number: 'Number',
      escalate_reference: 'Reference (optional)',
      num_120: '120 ambulance',
      num_110: '110 police',
      num_119: '119 fire',
      suggest_title: 'Suggested responders (soonest first)',
      suggest_loading: 'Ranking responders…',
      suggest_none: 'No available responder nearby.',
      suggest_failed: 'Could not rank responders: {error}',
      suggest_eta: '~{n} min',
      suggest_in_circle: 'in service circle',
      suggest_out_circle: 'outside circle',
      suggest_skill: 'has the skill',
      suggest_no_skill: 'lacks the skill',
      assign_to: 'Assign {name}',
      reassign_to: 'Reassign to {name}',
      mode_foot: 'on foot',
      mode_ebike: 'e-bike',
      mode_car: 'car',
      lg_incident_1: 'Emergency',
      lg_incident_other: 'Other incident',
      lg_station: 'Station',
      lg_circle: 'Service circle: {min} min × e-bike 4 m/s ÷ detour 1.3',
      lg_circle_plain: 'Service circle = minutes × e-bike 4 m/s ÷ detour 1.3',
      rstatus_available: 'Available',
      rstatus_offered: 'Offered',
      rstatus_busy: 'On a job',
      rstatus_off_duty: 'Off duty',
      r_station: 'Station',
      r_mode: 'Travels',
      r_skills: 'Skills',
      r_duty: 'On duty',
      r_position_at: 'Position',
      r_job: 'Current incident',
      r_open_job: 'Open incident #{id}',
      s_circle: 'Service circle',
      s_circle_value: '{min} min · about {d}',
      minutes_ago: '{n} min ago',
      actor_device: 'device {id}',
      actor_engine: 'engine',
      actor_responder: 'responder {name}',
      actor_dispatcher: 'dispatcher {name}',
      actor_station: 'station {name}',
      ev_opened: 'Opened: {kind}, {source}',
      ev_press_joined: 'Pressed again (press {n}) {event}',
      ev_kind_changed: 'Upgraded from {from} to {to}',
      ev_offered: 'Offered to {name} ({d}), answer by {time}',
      ev_offer_declined: '{name} declined',
      ev_offer_timed_out: '{name} did not answer in time',
      ev_offer_withdrawn: 'Offer to {name} withdrawn',
      ev_station_alerted: 'Station duty line alerted: {name}',
      ev_nobody_going: 'Nobody going: a dispatcher must act{number}',
      ev_nobody_going_number: '; call {number}',
      ev_reminder: 'Dispatcher reminded (#{n})',
      ev_accepted: '{name} accepted',
      ev_en_route: 'Responder en route',
      ev_on_scene: 'Responder on scene',
      ev_on_scene_overdue: '{name} is late on scene',
      ev_assigned: 'Assigned by hand to {name}',
      ev_taken_off_ladder: 'Automatic offers stopped',
      ev_acknowledged: 'Acknowledged',
      ev_resolved: 'Resolved: {outcome}',
      ev_closed: 'Closed: {outcome}',
      ev_cancelled: 'Cancelled: {reason}',
      ev_false_alarm: 'False alarm: {reason}',
      ev_nobody_in_range: 'No available responder within {d}',
      ev_nobody_qualified: '{in_range} in range, none qualified: {already_tried} tried, {lacking_skill} lack the skill, {outside_circle} outside their circle',
      ev_nearest_station: 'Nearest station: {name} ({d})',
      ev_cancel_requested: 'Elder long-pressed cancel',
      ev_claimed: 'Claimed',
      ev_claimed_by: 'Claimed by {name}',
      ev_taken_over_from: ' (taken over from {name})',
      ev_nobody_free_at_station: 'Nobody free at the own station {name}',
      ev_released: 'Released',
      ev_note: 'Note: {text}',
      ev_call: 'Call: {who}{number}, {outcome}',
      ev_escalated: 'Escalated to {number}{reference}',
      ev_escalated_ref: ', reference {reference}',
      ev_unknown: '{type}',
      shortcuts_title: 'Keyboard shortcuts',
      key_move: 'Move through the queue',
      key_open: 'Open the selected incident',
      key_claim: 'Claim',
      key_ack: 'Acknowledge (stops sound and flashing)',
      key_note: 'Add a note',
      key_suggest: 'Suggestions and assign',
      key_esc: 'Close the form / panel',
      key_help: 'Show shortcuts',
    },
  };

  const LANG_KEY = 'anxin.console.lang';
  const CLOSED_STATES = new Set(['closed', 'cancelled', 'false_alarm']);
  // Nobody has accepted yet: the accept target runs.
  const AWAITING_ACCEPT = new Set(['offered', 'awaiting_dispatcher', 'station_alerted']);
  // Somebody accepted but is not there yet: the on-scene target runs.
  const AWAITING_SCENE = new Set(['accepted', 'en_route']);
  const OUTCOMES = ['helped_at_home', 'taken_to_hospital', 'family_attending', 'false_alarm', 'no_help_needed', 'other'];
  const CALL_OUTCOMES = ['reached', 'no_answer', 'busy', 'wrong_number', 'voicemail', 'other'];
  const EMERGENCY_NUMBERS = ['120', '110', '119'];

  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const CONNECT_TIMEOUT_MS = 10000;
  const HEALTHY_AFTER_MS = 10000;
  // A command the server has not answered by then is reported as unanswered (the server
  // itself gives up after 15 s and says so).
  const COMMAND_TIMEOUT_MS = 20000;
  // The alarm sound repeats this often while a new emergency waits to be acknowledged.
  const ALARM_REPEAT_MS = 15000;
  const ALARM_MIN_GAP_MS = 1500;
  // The server closes an unauthenticated console socket with this code.
  const CLOSE_UNAUTHENTICATED = 4401;

  const state = {
    lang: 'zh',
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
    clockOffsetMs: 0,
    lastUpdate: null,
    ws: null,
    conn: 'reconnecting',
    everConnected: false,
    attempt: 0,
    reconnectTimer: null,
    renderPending: false,
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
    pending: new Map(),
    nextRequest: 1,
  };

  const $ = (id) => document.getElementById(id);
  let dom = null;
  let map = null;

  function t(key, vars) {
    const table = STRINGS[state.lang] || STRINGS.zh;
    let s = key in table ? table[key] : STRINGS.zh[key] ?? key;
    if (vars) {
      for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v ?? ''));
    }
    return s;
  }
  const has = (key) => key in STRINGS.zh;

  function serverNow() {
    return Date.now() + state.clockOffsetMs;
  }

  // ---------------------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------------------
  const pad2 = (n) => String(n).padStart(2, '0');

  function formatElapsed(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    return `${pad2(Math.floor(total / 60))}:${pad2(total % 60)}`;
  }

  function formatClock(epochMs) {
    const d = new Date(Number(epochMs));
    if (Number.isNaN(d.getTime())) return '—';
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  function formatDistance(m) {
    if (typeof m !== 'number' || !Number.isFinite(m)) return '';
    if (m < 1000) return t('distance_m', { n: Math.round(m) });
    return t('distance_km', { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
  }

  function listText(items) {
    if (!Array.isArray(items) || items.length === 0) return null;
    return items.join(state.lang === 'zh' ? '、' : ', ');
  }

  function pressMoment(view) {
    const p = Number(view.pressed_at);
    const o = Number(view.opened_at);
    if (Number.isFinite(p) && Number.isFinite(o)) return Math.min(p, o);
    return Number.isFinite(p) ? p : o;
  }

  /** Which target runs for a view, and its length in ms. */
  function targetOf(view) {
    if (AWAITING_ACCEPT.has(view.state)) return { kind: 'accept', ms: state.targets.accept_s * 1000 };
    if (AWAITING_SCENE.has(view.state)) return { kind: 'on_scene', ms: state.targets.on_scene_min * 60000 };
    return { kind: 'done', ms: 0 };
  }

  // Amber from 75 % of the target, red past it; a clock with no target running is calm.
  function ageLevel(elapsed, target) {
    if (!target.ms) return 'done';
    if (elapsed >= target.ms) return 'late';
    if (elapsed >= target.ms * 0.75) return 'warn';
    return 'ok';
  }

  function isUnassigned(view) {
    const offered = Array.isArray(view.offers) && view.offers.length > 0;
    return (!view.responder && !offered) || view.state === 'awaiting_dispatcher';
  }

  function isEmergency(view) {
    return view.kind === 'sos' || view.kind === 'fall' || view.kind === 'fire' || view.kind === 'intrusion';
  }

  function isNobodyInRange(view) {
    if ('dispatcher_needed' in view) {
      return view.state === 'station_alerted' || view.dispatcher_needed === 'nobody_going';
    }
    return isEmergency(view);
  }

  function priorityOf(view) {
    return typeof view.priority === 'number' ? view.priority : 99;
  }

  function compareViews(a, b) {
    return (
      priorityOf(a) - priorityOf(b) ||
      pressMoment(a) - pressMoment(b) ||
      String(a.id).localeCompare(String(b.id), 'en', { numeric: true })
    );
  }

  function kindLabel(kind) {
    return has(`kind_${kind}`) ? t(`kind_${kind}`) : String(kind);
  }

  function stateLabel(st) {
    return has(`state_${st}`) ? t(`state_${st}`) : String(st);
  }

  function roleLabel(role) {
    return has(`role_${role}`) ? t(`role_${role}`) : String(role ?? '');
  }

  function modeLabel(mode) {
    return has(`mode_${mode}`) ? t(`mode_${mode}`) : String(mode ?? '');
  }

  function outcomeLabel(text) {
    const s = String(text ?? '');
    const m = /^([a-z_]+)(?::\s*(.*))?$/s.exec(s);
    if (m && OUTCOMES.includes(m[1])) {
      const label = t(`outcome_${m[1]}`);
      return m[2] ? `${label}${state.lang === 'zh' ? '：' : ': '}${m[2]}` : label;
    }
    return s;
  }

  function claimHolder(view) {
    const c = view.claimed_by;
    return c && typeof c === 'object' && (c.id || c.name) ? c : null;
  }

  const isMine = (party) => Boolean(party && state.me && String(party.id) === String(state.me.id));

  // ---------------------------------------------------------------------------------------
  // DOM building (server text only ever goes in through textContent)
  // ---------------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // ---------------------------------------------------------------------------------------
  // Queue rows
  // ---------------------------------------------------------------------------------------
  function sinceCell(view) {
    const from = pressMoment(view);
    const elapsed = serverNow() - from;
    const target = targetOf(view);
    const targetText = target.kind === 'accept'
      ? t('target_accept', { n: state.targets.accept_s })
      : target.kind === 'on_scene'
        ? t('target_on_scene', { n: state.targets.on_scene_min })
        : '';
    return h(
      'td',
      { class: 'c-since' },
      h(
        'span',
        {
          class: 'timer',
          'data-field': 'since',
          'data-from': from,
          'data-target-ms': target.ms,
          'data-target': target.kind,
          'data-age': ageLevel(elapsed, target),
        },
        formatElapsed(elapsed),
      ),
      h('span', { class: 'sub' }, t('pressed_at', { time: formatClock(from) })),
      targetText ? h('span', { class: 'sub target', 'data-field': 'target' }, targetText) : null,
    );
  }

  function kindCell(view) {
    const presses = Number(view.press_count) > 1
      ? h('div', { class: 'presses', 'data-field': 'press-count' }, t('presses', { n: view.press_count }))
      : null;
    return h(
      'td',
      { class: 'c-kind' },
      h('span', { class: `kind kind-${view.kind}`, 'data-field': 'kind' }, kindLabel(view.kind)),
      h('div', { class: `state state-${view.state}`, 'data-field': 'state' }, stateLabel(view.state)),
      presses,
      view.cancel_requested ? h('div', { class: 'warn-line', 'data-field': 'cancel' }, t('cancel_requested')) : null,
      view.problem ? h('div', { class: 'problem', 'data-field': 'problem' }, t('problem', { text: view.problem })) : null,
      state.alarms.has(String(view.id)) ? h('div', { class: 'alarm-line', 'data-field': 'alarm' }, t('alarm_row')) : null,
    );
  }

  function locationLine(view) {
    const loc = view.location || {};
    const source = loc.source === 'device' || loc.source === 'home' ? loc.source : String(loc.source ?? '');
    const label = source === 'device' ? t('loc_device') : source === 'home' ? t('loc_home') : source;
    const accuracy = source === 'device' && typeof loc.accuracy_m === 'number'
      ? h('span', { class: 'sub', 'data-field': 'accuracy' }, t('accuracy', { d: formatDistance(loc.accuracy_m) }))
      : null;
    let rejected = null;
    if (loc.fix_rejected) {
      const key = `fix_${loc.fix_rejected}`;
      rejected = h(
        'div',
        { class: 'warn-line', 'data-field': 'fix-rejected' },
        has(key) ? t(key) : t('fix_other', { reason: loc.fix_rejected }),
      );
    }
    return h(
      'div',
      { class: 'loc-line', 'data-field': 'location', 'data-source': source },
      h('span', { class: `source source-${source}`, 'data-field': 'location-source' }, label),
      accuracy ? ' ' : null,
      accuracy,
      rejected,
    );
  }

  function elderCell(view) {
    const e = view.elder || {};
    return h(
      'td',
      { class: 'c-elder' },
      h(
        'div',
        { class: 'elder-name-line' },
        h('span', { class: 'elder-name', 'data-field': 'elder-name' }, e.name || e.id || '—'),
        typeof e.age === 'number' ? h('span', { class: 'elder-age' }, ` ${t('f_age_value', { n: e.age })}`) : null,
        e.lives_alone === true ? h('span', { class: 'chip chip-alone' }, t('f_lives_alone')) : null,
      ),
      h('div', { class: 'elder-address', 'data-field': 'elder-address' }, e.address || ''),
      locationLine(view),
    );
  }

  function responderCell(view) {
    const station = view.station;
    const offers = Array.isArray(view.offers) ? view.offers : [];
    const r = view.responder || (offers.length ? offers[0].responder : null);
    const more = !view.responder && offers.length > 1 ? ` +${offers.length - 1}` : '';
    if (r) {
      return h(
        'td',
        { class: 'c-responder' },
        !view.responder ? h('div', { class: 'sub offered-to' }, t('offered_to')) : null,
        h(
          'div',
          { class: 'resp-line' },
          h('span', { class: 'resp-name', 'data-field': 'responder-name' }, r.name || r.id || '—'),
          ' ',
          h('span', { class: 'resp-distance', 'data-field': 'responder-distance' }, formatDistance(r.distance_m)),
          more ? h('span', { class: 'resp-more', 'data-field': 'offers-more' }, more) : null,
        ),
        station
          ? h('div', { class: 'sub clip' }, t('station_backup', { name: station.name || station.id }))
          : null,
      );
    }
    const target = station
      ? h(
          'div',
          { class: 'station-line', 'data-field': 'station' },
          t('to_station', { name: station.name || station.id }),
          station.distance_m !== null && station.distance_m !== undefined ? ` · ${formatDistance(station.distance_m)}` : '',
        )
      : h('div', { class: 'station-line', 'data-field': 'station' }, t('no_station'));
    return h(
      'td',
      { class: 'c-responder' },
      isNobodyInRange(view)
        ? h('span', { class: 'nobody', 'data-field': 'nobody' }, t('nobody'))
        : h('span', { class: 'nobody dispatcher-first', 'data-field': 'dispatcher-first' }, t('dispatcher_first')),
      target,
      view.ladder && view.ladder.emergency_number
        ? h('div', { class: 'emergency-number', 'data-field': 'emergency-number' }, `☎ ${view.ladder.emergency_number}`)
        : null,
    );
  }

  function claimedCell(view) {
    const c = claimHolder(view);
    if (!c) return h('td', { class: 'c-claimed' }, h('span', { class: 'unclaimed', 'data-field': 'claimed-by' }, '—'));
    const mine = isMine(c);
    return h(
      'td',
      { class: 'c-claimed' },
      h(
        'span',
        { class: `claimed ${mine ? 'claimed-mine' : 'claimed-other'}`, 'data-field': 'claimed-by', 'data-claimed-id': c.id, title: c.name || c.id },
        mine ? t('claimed_me') : c.name || c.id,
      ),
    );
  }

  function buildRow(view) {
    const id = String(view.id);
    const classes = ['row', `prio-${Math.min(priorityOf(view), 9)}`];
    if (isUnassigned(view)) classes.push(isEmergency(view) ? 'unassigned' : 'unassigned-calm');
    if (state.alarms.has(id)) classes.push('alarm');
    if (state.selectedId === id) classes.push('selected');
    if (state.openId === id) classes.push('open');
    return h(
      'tr',
      {
        class: classes.join(' '),
        'data-incident-id': view.id,
        'data-device-id': view.device_id,
        'data-kind': view.kind,
        'data-state': view.state,
        'data-seq': view.seq,
        'data-claimed': claimHolder(view) ? 'true' : 'false',
        tabindex: '-1',
      },
      sinceCell(view),
      kindCell(view),
      elderCell(view),
      responderCell(view),
      claimedCell(view),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Rendering: changes are batched to one render per frame; only changed rows are rebuilt.
  // ---------------------------------------------------------------------------------------
  const rows = new Map();
  const dirty = new Set();
  let rebuildAll = false;
  let panelDirty = false;

  function scheduleRender() {
    if (state.renderPending) return;
    state.renderPending = true;
    const run = () => {
      state.renderPending = false;
      render();
    };
    if (document.hidden) setTimeout(run, 200);
    else requestAnimationFrame(run);
  }

  function markDirty(id) {
    dirty.add(String(id));
    if (state.openId === String(id)) panelDirty = true;
    scheduleRender();
  }

  function render() {
    const tbody = dom.tbody;
    if (rebuildAll) {
      rows.clear();
      tbody.replaceChildren();
      dirty.clear();
      for (const id of state.incidents.keys()) dirty.add(id);
      rebuildAll = false;
    }
    for (const id of dirty) {
      const old = rows.get(id);
      const view = state.incidents.get(id);
      if (!view) {
        if (old) old.remove();
        rows.delete(id);
        continue;
      }
      const row = buildRow(view);
      // In a flood of arrivals the alarm says enough; a highlight on each would only cost.
      if (state.fresh.has(id) && state.fresh.size <= 20) row.classList.add('fresh');
      if (old) old.replaceWith(row);
      rows.set(id, row);
    }
    dirty.clear();
    state.fresh.clear();

    const ordered = [...state.incidents.values()].sort(compareViews);
    state.order = ordered.map((v) => String(v.id));
    let cursor = tbody.firstElementChild;
    for (const id of state.order) {
      const row = rows.get(id);
      if (row === cursor) cursor = cursor.nextElementSibling;
      else tbody.insertBefore(row, cursor);
    }
    if (state.selectedId && !state.incidents.has(state.selectedId)) state.selectedId = null;

    renderSummary();
    if (panelDirty) {
      panelDirty = false;
      renderPanel();
    }
  }

  function renderSummary() {
    let unassigned = 0;
    for (const v of state.incidents.values()) if (isUnassigned(v)) unassigned += 1;
    const open = state.incidents.size;
    dom.countOpen.textContent = String(open);
    dom.countUnassigned.textContent = String(unassigned);
    dom.countUnassigned.parentElement.dataset.active = unassigned > 0 ? 'true' : 'false';
    dom.countAlarm.textContent = String(state.alarms.size);
    dom.countAlarm.parentElement.dataset.active = state.alarms.size > 0 ? 'true' : 'false';
    dom.empty.hidden = open > 0;
    dom.empty.textContent = state.loaded ? t('empty') : t('waiting');
    dom.table.dataset.loaded = state.loaded ? 'true' : 'false';
    dom.table.dataset.seq = String(state.lastSeq ?? 0);
    dom.seqInfo.textContent = state.lastUpdate === null
      ? ''
      : t('seq_info', { seq: state.lastSeq ?? 0, time: formatClock(state.lastUpdate) });
    const flag = state.alarms.size > 0 ? '🔴 ' : unassigned > 0 ? '⚠ ' : '';
    document.title = `${flag}(${open}) ${t('title_short')}`;
  }

  function renderStatic() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll('[data-i18n-title]')) node.title = t(node.dataset.i18nTitle);
    for (const b of document.querySelectorAll('.lang-toggle')) {
      b.textContent = t('lang_toggle');
      b.lang = state.lang === 'zh' ? 'en' : 'zh-CN';
    }
    renderMe();
    renderLegend();
    renderShortcuts();
    if (map) map.relabel();
    renderConn();
    renderSound();
  }

  function renderMe() {
    if (!dom.me) return;
    dom.me.textContent = state.me ? `${state.me.name || state.me.id} · ${roleLabel(state.me.role)}` : '';
    dom.me.dataset.role = state.me?.role ?? '';
  }

  function renderLegend() {
    const mins = new Set();
    for (const s of state.stations.values()) if (Number(s.service_circle_min) > 0) mins.add(Number(s.service_circle_min));
    dom.legendCircle.textContent = mins.size === 1
      ? t('lg_circle', { min: [...mins][0] })
      : t('lg_circle_plain');
  }

  function renderConn() {
    dom.conn.dataset.state = state.conn;
    if (state.conn === 'connected') {
      dom.connText.textContent = t('conn_connected');
    } else if (!state.everConnected) {
      dom.connText.textContent = t('conn_connecting');
    } else {
      dom.connText.textContent = t('conn_reconnecting') + (state.attempt > 1 ? t('conn_retry', { n: state.attempt }) : '');
    }
    const stale = state.conn !== 'connected' && state.loaded;
    dom.staleBanner.hidden = !stale;
    document.body.classList.toggle('stale', stale);
  }

  // Every second, on the second: the wall clock, every press clock and its colour.
  function tick() {
    const now = serverNow();
    if (dom.app && !dom.app.hidden) {
      dom.clock.textContent = formatClock(now);
      dom.clock.dateTime = new Date(now).toISOString();
      for (const row of rows.values()) {
        const timer = row.firstElementChild.firstElementChild;
        const elapsed = now - Number(timer.dataset.from);
        const text = formatElapsed(elapsed);
        if (timer.textContent !== text) timer.textContent = text;
        const level = ageLevel(elapsed, { ms: Number(timer.dataset.targetMs) });
        if (timer.dataset.age !== level) timer.dataset.age = level;
      }
    }
    setTimeout(tick, 1000 - (now % 1000) + 5);
  }

  // ---------------------------------------------------------------------------------------
  // Alarm: a new emergency sounds and its row flashes until someone acknowledges or claims it
  // ---------------------------------------------------------------------------------------
  let audio = null;
  let lastBeep = 0;
  let alarmTimer = null;

  // Browsers allow sound only after a user gesture; the sign-in click is one, and any
  // click or key press after a reload with a live session is another.
  function unlockAudio() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      if (!audio) audio = new Ctx();
      if (audio.state === 'suspended') audio.resume().then(renderSound, () => {});
    } catch {
      audio = null;
    }
    renderSound();
  }

  function renderSound() {
    if (!dom || !dom.soundHint) return;
    const off = !audio || audio.state !== 'running';
    dom.soundHint.hidden = !off || !state.me;
    dom.soundHint.textContent = t('sound_off');
  }

  function beep() {
    const now = Date.now();
    if (now - lastBeep < ALARM_MIN_GAP_MS) return;
    lastBeep = now;
    if (!audio) return;
    try {
      if (audio.state === 'suspended') audio.resume().catch(() => {});
      const start = audio.currentTime + 0.02;
      // Three short rising tones: distinct from a phone ring, loud enough across a room.
      [880, 988, 1175].forEach((freq, i) => {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = 'square';
        osc.frequency.value = freq;
        const at = start + i * 0.22;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.18, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
        osc.connect(gain).connect(audio.destination);
        osc.start(at);
        osc.stop(at + 0.2);
      });
    } catch {
      // A broken audio device must not stop the console; the flashing row remains.
    }
  }

  function raiseAlarm(id) {
    if (state.alarms.has(id)) return;
    state.alarms.add(id);
    beep();
    armAlarmRepeat();
  }

  function clearAlarm(id) {
    if (!state.alarms.delete(id)) return;
    markDirty(id);
    if (state.alarms.size === 0 && alarmTimer !== null) {
      clearInterval(alarmTimer);
      alarmTimer = null;
    }
  }

  // Flashing: one class on the queue's body, toggled twice a second while any alarm is up.
  const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : null;
  setInterval(() => {
    if (!dom || !dom.tbody) return;
    const on = state.alarms.size > 0 && !(reducedMotion && reducedMotion.matches) && !dom.tbody.classList.contains('flash-on');
    dom.tbody.classList.toggle('flash-on', on);
  }, 500);

  function armAlarmRepeat() {
    if (alarmTimer !== null) return;
    alarmTimer = setInterval(() => {
      if (state.alarms.size === 0) {
        clearInterval(alarmTimer);
        alarmTimer = null;
        return;
      }
      beep();
    }, ALARM_REPEAT_MS);
  }

  // A view says it was acknowledged when the server sends so, or when a dispatcher holds it.
  function viewAcknowledged(view) {
    return Boolean(view.acknowledged || view.acknowledged_by || view.acknowledged_at || claimHolder(view));
  }

  // ---------------------------------------------------------------------------------------
  // Map
  // ---------------------------------------------------------------------------------------
  function mapIncident(view) {
    if (!map) return;
    const id = String(view.id);
    if (!state.incidents.has(id)) {
      map.removeMarker('incident', id);
      map.setLink(id, null, null);
      return;
    }
    const at = view.location && view.location.at;
    const classes = `prio-${Math.min(priorityOf(view), 3)} state-${view.state}${state.alarms.has(id) ? ' alarm' : ''}${isUnassigned(view) ? ' unassigned' : ''}`;
    const e = view.elder || {};
    map.setMarker('incident', id, at, {
      classes,
      title: `#${id} ${kindLabel(view.kind)} · ${stateLabel(view.state)} · ${e.name || ''}`,
    });
    const holder = view.responder && state.responders.get(String(view.responder.id));
    map.setLink(id, at, holder ? holder.position : null);
  }

  function mapResponder(r) {
    if (!map) return;
    map.setMarker('responder', r.id, r.position, {
      classes: `st-${r.status}`,
      title: `${r.name} · ${has(`rstatus_${r.status}`) ? t(`rstatus_${r.status}`) : r.status}`,
    });
    if (r.incident_id !== null && r.incident_id !== undefined) {
      const view = state.incidents.get(String(r.incident_id));
      if (view) mapIncident(view);
    }
  }

  function mapStation(s) {
    if (!map) return;
    map.setMarker('station', s.id, s.position, { classes: 'station', title: s.name });
    map.setCircle(s.id, s.position, s.service_circle_min);
  }

  function remapAll() {
    if (!map) return;
    for (const s of state.stations.values()) mapStation(s);
    for (const r of state.responders.values()) mapResponder(r);
    for (const v of state.incidents.values()) mapIncident(v);
  }

  function pickOnMap(kind, id) {
    if (kind === 'incident') openIncident(id);
    else showMapCard(kind, id);
  }

  function showMapCard(kind, id) {
    const card = dom.mapCard;
    card.replaceChildren();
    card.dataset.kind = kind;
    card.dataset.id = id;
    const closeBtn = h('button', { class: 'btn btn-quiet card-close', type: 'button', title: t('close'), onclick: hideMapCard }, '✕');
    if (kind === 'responder') {
      const r = state.responders.get(String(id));
      if (!r) return;
      const station = state.stations.get(String(r.station_id));
      const status = has(`rstatus_${r.status}`) ? t(`rstatus_${r.status}`) : r.status;
      const job = r.incident_id !== null && r.incident_id !== undefined
        ? h('button', { class: 'btn', type: 'button', 'data-action': 'open-job', onclick: () => openIncident(String(r.incident_id)) }, t('r_open_job', { id: r.incident_id }))
        : null;
      card.append(
        closeBtn,
        h('h3', null, h('i', { class: `lg-resp st-${r.status}` }), ' ', r.name, ' ', h('span', { class: `rstatus st-${r.status}`, 'data-field': 'responder-status' }, status)),
        h(
          'dl',
          { class: 'kv' },
          kv(t('f_phone'), r.phone ? phoneWithCopy(r.phone) : null),
          kv(t('r_station'), station ? station.name : r.station_id),
          kv(t('r_mode'), modeLabel(r.mode)),
          kv(t('r_skills'), listText(r.skills) || t('none')),
          kv(t('r_duty'), r.on_duty ? t('yes') : t('no')),
          kv(t('r_position_at'), r.position_at ? formatClock(r.position_at) : null),
        ),
        job,
      );
    } else if (kind === 'station') {
      const s = state.stations.get(String(id));
      if (!s) return;
      const min = Number(s.service_circle_min);
      card.append(
        closeBtn,
        h('h3', null, h('i', { class: 'lg-station' }), ' ', s.name),
        h(
          'dl',
          { class: 'kv' },
          kv(t('f_phone'), s.phone ? phoneWithCopy(s.phone) : null),
          kv(t('s_circle'), min > 0 ? t('s_circle_value', { min, d: formatDistance(window.AnxinMap.serviceRadiusM(min)) }) : t('none')),
        ),
      );
    }
    card.hidden = false;
    if (map) map.select(kind, id);
  }

  function hideMapCard() {
    dom.mapCard.hidden = true;
    if (map) map.select(state.openId ? 'incident' : null, state.openId);
  }

  // ---------------------------------------------------------------------------------------
  // The feed
  // ---------------------------------------------------------------------------------------
  function validView(v) {
    return v && typeof v === 'object' && (typeof v.id === 'number' || typeof v.id === 'string');
  }

  function upsert(view, { isNew }) {
    const id = String(view.id);
    const before = state.incidents.get(id);
    if (CLOSED_STATES.has(view.state)) {
      state.incidents.delete(id);
      clearAlarm(id);
      if (state.openId === id) panelDirty = true;
    } else {
      state.incidents.set(id, view);
      const becameUrgent = before && priorityOf(before) > 1 && priorityOf(view) === 1;
      if (viewAcknowledged(view)) clearAlarm(id);
      else if (priorityOf(view) === 1 && (isNew || becameUrgent)) raiseAlarm(id);
    }
    markDirty(id);
    mapIncident(view);
  }

  function applyWelcome(msg) {
    if (msg.user && typeof msg.user === 'object') state.me = msg.user;
    state.staff.clear();
    for (const s of Array.isArray(msg.staff) ? msg.staff : []) if (s && s.id) state.staff.set(String(s.id), s);
    if (typeof msg.server_time === 'number') state.clockOffsetMs = msg.server_time - Date.now();
    const c = msg.console || {};
    if (Number(c.accept_target_s) > 0) state.targets.accept_s = Number(c.accept_target_s);
    if (Number(c.on_scene_target_min) > 0) state.targets.on_scene_min = Number(c.on_scene_target_min);
    if (!state.langChosen) {
      const lang = String(c.language || '').toLowerCase().startsWith('en') ? 'en' : c.language ? 'zh' : state.lang;
      state.lang = lang;
    }
    if (map) map.setTiles(c.tile_url || '');
    renderStatic();
    rebuildAll = true;
    panelDirty = true;
    scheduleRender();
  }

  function applyRoster(msg) {
    // A reconnect sends the roster again: drop who is gone, keep the map where it is.
    if (map) {
      for (const id of state.responders.keys()) map.removeMarker('responder', id);
      for (const id of state.stations.keys()) {
        map.removeMarker('station', id);
        map.setCircle(id, null, null);
      }
    }
    state.responders.clear();
    state.stations.clear();
    for (const s of Array.isArray(msg.stations) ? msg.stations : []) if (s && s.id) state.stations.set(String(s.id), s);
    for (const r of Array.isArray(msg.responders) ? msg.responders : []) if (r && r.id) state.responders.set(String(r.id), r);
    remapAll();
    renderLegend();
    refreshMapCard();
  }

  function applyResponder(msg) {
    const r = msg.responder;
    if (!r || !r.id) return;
    state.responders.set(String(r.id), r);
    mapResponder(r);
    refreshMapCard();
  }

  function refreshMapCard() {
    if (!dom.mapCard.hidden && dom.mapCard.dataset.kind !== 'incident') {
      showMapCard(dom.mapCard.dataset.kind, dom.mapCard.dataset.id);
    }
  }

  function applySnapshot(msg) {
    if (!Array.isArray(msg.incidents) || typeof msg.seq !== 'number') return;
    if (typeof msg.server_time === 'number' && Number.isFinite(msg.server_time)) {
      state.clockOffsetMs = msg.server_time - Date.now();
    }
    const wasLoaded = state.loaded;
    const previous = new Set(state.incidents.keys());
    for (const id of previous) if (map) map.removeMarker('incident', id);
    state.incidents.clear();
    for (const view of msg.incidents) {
      if (!validView(view) || CLOSED_STATES.has(view.state)) continue;
      const id = String(view.id);
      state.incidents.set(id, view);
      // After a gap, anything urgent we had not seen is new to this dispatcher.
      if (wasLoaded && !previous.has(id) && priorityOf(view) === 1 && !viewAcknowledged(view)) raiseAlarm(id);
      if (viewAcknowledged(view)) state.alarms.delete(id);
      mapIncident(view);
    }
    for (const id of [...state.alarms]) if (!state.incidents.has(id)) state.alarms.delete(id);
    state.fresh.clear();
    rebuildAll = true;
    panelDirty = true;
    state.lastSeq = msg.seq;
    state.history = typeof msg.history === 'string' ? msg.history : null;
    state.loaded = true;
    state.lastUpdate = serverNow();
    renderConn();
    scheduleRender();
  }

  function applyDelta(msg) {
    if (typeof msg.seq !== 'number' || !validView(msg.incident)) return;
    if (state.lastSeq !== null && msg.seq <= state.lastSeq) return;
    const id = String(msg.incident.id);
    const isNew = state.loaded && !state.incidents.has(id);
    if (isNew) state.fresh.add(id);
    upsert(msg.incident, { isNew });
    state.lastSeq = msg.seq;
    state.lastUpdate = serverNow();
  }

  function applyResult(msg) {
    const entry = state.pending.get(String(msg.request_id));
    if (!entry) return;
    state.pending.delete(String(msg.request_id));
    clearTimeout(entry.timer);
    entry.resolve(msg);
  }

  function handleMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'welcome':
        applyWelcome(msg);
        break;
      case 'roster':
        applyRoster(msg);
        break;
      case 'responder':
        applyResponder(msg);
        break;
      case 'snapshot':
        applySnapshot(msg);
        break;
      case 'incident':
        applyDelta(msg);
        break;
      case 'result':
        applyResult(msg);
        break;
      default:
        break;
    }
  }

  function feedUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = state.lastSeq !== null
      ? `?since=${encodeURIComponent(state.lastSeq)}${state.history ? `&history=${encodeURIComponent(state.history)}` : ''}`
      : '';
    return `${scheme}//${location.host}/ws${since}`;
  }

  function setConn(value) {
    state.conn = value;
    renderConn();
  }

  function connect() {
    state.reconnectTimer = null;
    if (!state.me) return;
    let ws;
    try {
      ws = new WebSocket(feedUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    let openedAt = null;
    const giveUp = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.close();
    }, CONNECT_TIMEOUT_MS);

    ws.onopen = () => {
      clearTimeout(giveUp);
      openedAt = Date.now();
      state.everConnected = true;
      setConn('connected');
    };
    ws.onmessage = (ev) => {
      state.attempt = 0;
      if (typeof ev.data === 'string') handleMessage(ev.data);
    };
    ws.onclose = (ev) => {
      clearTimeout(giveUp);
      if (state.ws !== ws) return;
      state.ws = null;
      failPending();
      if (ev.code === CLOSE_UNAUTHENTICATED) {
        // The session is gone (expired, signed out elsewhere): back to the sign-in form.
        showSignin(t('signin_expired'));
        return;
      }
      if (openedAt !== null && Date.now() - openedAt >= HEALTHY_AFTER_MS) state.attempt = 0;
      scheduleReconnect();
    };
    ws.onerror = () => {};
  }

  function scheduleReconnect() {
    if (state.reconnectTimer !== null || !state.me) return;
    state.attempt += 1;
    setConn('reconnecting');
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (state.attempt - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (state.reconnectTimer === null) return;
    clearTimeout(state.reconnectTimer);
    connect();
  }

  function disconnect() {
    if (state.reconnectTimer !== null) clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000, 'signed out');
    failPending();
  }

  // ---------------------------------------------------------------------------------------
  // Commands and queries
  // ---------------------------------------------------------------------------------------
  /** Sends a frame with a fresh request_id; resolves with the `result` frame. */
  function request(frame) {
    return new Promise((resolve) => {
      const ws = state.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        resolve({ ok: false, error: t('not_connected') });
        return;
      }
      const requestId = `c${Date.now().toString(36)}-${state.nextRequest++}`;
      const timer = setTimeout(() => {
        state.pending.delete(requestId);
        resolve({ ok: false, error: t('no_answer') });
      }, COMMAND_TIMEOUT_MS);
      state.pending.set(requestId, { resolve, timer });
      ws.send(JSON.stringify({ ...frame, request_id: requestId }));
    });
  }

  function failPending() {
    for (const [id, entry] of state.pending) {
      clearTimeout(entry.timer);
      entry.resolve({ ok: false, error: t('no_answer') });
      state.pending.delete(id);
    }
  }

  /** A dispatcher command; says how it went in a toast. Resolves with whether it worked. */
  async function command(incidentId, action, fields, label) {
    const result = await request({ type: 'command', incident_id: Number(incidentId), action, ...fields });
    if (result.ok) {
      if (label) toast(t('done_ok', { what: label }), 'ok');
    } else {
      toast(t('done_failed', { error: result.error || '?' }), 'error');
    }
    return result;
  }

  function toast(text, kind = 'info') {
    const node = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
    dom.toasts.append(node);
    setTimeout(() => node.remove(), kind === 'error' ? 8000 : 4000);
    while (dom.toasts.childElementCount > 5) dom.toasts.firstElementChild.remove();
  }

  async function acknowledge(id) {
    if (!id) return;
    const result = await command(id, 'acknowledge', {}, t('ev_acknowledged'));
    if (result.ok) clearAlarm(String(id));
  }

  async function claim(id) {
    if (!id) return;
    const view = state.incidents.get(String(id));
    if (view && isMine(claimHolder(view))) return;
    const result = await command(id, 'claim', {}, t('ev_claimed'));
    if (result.ok) clearAlarm(String(id));
  }

  // ---------------------------------------------------------------------------------------
  // Detail panel
  // ---------------------------------------------------------------------------------------
  function kv(label, value, attrs) {
    if (value === null || value === undefined || value === '') return null;
    return h('div', { class: 'kv-row', ...(attrs || {}) }, h('dt', null, label), h('dd', null, value));
  }

  async function copyText(text) {
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        ok = true;
      }
    } catch {
      ok = false;
    }
    if (!ok) {
      const area = h('textarea', { class: 'copy-buffer', readonly: true });
      area.value = text;
      document.body.append(area);
      area.select();
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      area.remove();
    }
    toast(ok ? t('copied', { text }) : t('copy_failed', { text }), ok ? 'ok' : 'error');
  }

  function phoneWithCopy(phone) {
    return h(
      'span',
      { class: 'phone-copy' },
      h('a', { class: 'phone', href: `tel:${phone}`, 'data-field': 'phone' }, phone),
      ' ',
      h('button', { class: 'btn btn-small', type: 'button', 'data-copy': phone, onclick: () => copyText(phone) }, t('copy')),
    );
  }

  function openIncident(id) {
    const key = String(id);
    if (!state.incidents.has(key) && state.openId !== key) return;
    const previous = state.openId;
    state.openId = key;
    state.selectedId = key;
    if (previous !== key) {
      state.form = null;
      state.timeline = { id: key, seq: null, events: null, error: null, loading: false };
      state.suggestions = { id: null, list: null, error: null, loading: false };
      if (previous) markDirty(previous);
    }
    markDirty(key);
    dom.detail.hidden = false;
    dom.layout.classList.add('with-detail');
    dom.mapCard.hidden = true;
    if (map) {
      map.select('incident', key);
      map.reveal('incident', key);
    }
    panelDirty = true;
    renderPanel();
    renderForm();
    rows.get(key)?.scrollIntoView({ block: 'nearest' });
  }

  // The panel covers the map: close it and point at the incident there.
  function showOnMap(id) {
    const key = String(id);
    closePanel();
    state.selectedId = key;
    markDirty(key);
    if (map) {
      map.select('incident', key);
      map.reveal('incident', key);
    }
  }

  function closePanel() {
    const id = state.openId;
    state.openId = null;
    state.form = null;
    dom.detail.hidden = true;
    dom.layout.classList.remove('with-detail');
    if (map) map.select(null, null);
    if (id) markDirty(id);
    renderForm();
  }

  // One timeline query at a time; a newer seq seen meanwhile is fetched when it answers.
  function requestTimeline(id, seq) {
    const tl = state.timeline;
    if (tl.loading) {
      tl.wantSeq = seq;
      return;
    }
    tl.loading = true;
    tl.pendingSeq = seq;
    tl.wantSeq = undefined;
    request({ type: 'timeline', incident_id: Number(id) }).then((result) => {
      if (state.timeline !== tl) return;
      tl.loading = false;
      tl.seq = tl.pendingSeq;
      tl.pendingSeq = undefined;
      if (result.ok && Array.isArray(result.events)) {
        tl.events = result.events;
        tl.error = null;
      } else {
        tl.error = result.error || '?';
      }
      if (tl.wantSeq !== undefined && tl.wantSeq !== tl.seq) requestTimeline(id, tl.wantSeq);
      renderTimeline();
    });
  }

  function renderPanel() {
    if (!state.openId) return;
    const id = state.openId;
    const view = state.incidents.get(id);
    const panel = dom.detail;
    panel.dataset.incidentId = id;
    if (!view) {
      // Closed, cancelled or a false alarm since it was opened: say so, keep the timeline.
      panel.dataset.state = 'gone';
      dom.detailTitle.textContent = t('detail_incident', { id });
      dom.detailSub.textContent = '';
      dom.detailClaim.replaceChildren();
      dom.detailActions.replaceChildren();
      if (state.timeline.seq !== 'gone' && state.timeline.pendingSeq !== 'gone') requestTimeline(id, 'gone');
      renderTimeline();
      return;
    }
    panel.dataset.state = view.state;
    panel.dataset.seq = view.seq;
    const e = view.elder || {};
    dom.detailTitle.replaceChildren(
      h('span', { class: `kind kind-${view.kind}` }, kindLabel(view.kind)),
      ' ',
      h('span', { 'data-field': 'detail-elder' }, e.name || e.id || '—'),
    );
    dom.detailSub.replaceChildren(
      ...[
        t('detail_incident', { id }),
        ' · ',
        h('span', { class: `state state-${view.state}`, 'data-field': 'detail-state' }, stateLabel(view.state)),
        view.cancel_requested ? h('span', { class: 'warn-line inline', 'data-field': 'detail-cancel' }, ` · ${t('cancel_requested')}`) : null,
      ].filter(Boolean),
    );
    renderClaim(view);
    renderActions(view);
    renderBody(view);
    if (state.timeline.id !== id) state.timeline = { id, seq: null, events: null, error: null, loading: false };
    const tl = state.timeline;
    if (tl.seq !== view.seq && tl.pendingSeq !== view.seq) requestTimeline(id, view.seq);
  }

  function renderClaim(view) {
    const c = claimHolder(view);
    const supervisor = state.me && state.me.role === 'supervisor';
    let text;
    let buttons = [];
    if (!c) {
      text = h('span', { class: 'claim-none', 'data-field': 'claim-status' }, t('not_claimed'));
      buttons = [h('button', { class: 'btn btn-primary', type: 'button', 'data-action': 'claim', onclick: () => claim(view.id) }, `${t('claim')} (c)`)];
    } else if (isMine(c)) {
      text = h('span', { class: 'claim-mine', 'data-field': 'claim-status' }, t('claimed_by_me'));
      buttons = [h('button', { class: 'btn', type: 'button', 'data-action': 'release', onclick: () => command(view.id, 'release', {}, t('ev_released')) }, t('release'))];
    } else {
      text = h('span', { class: 'claim-other', 'data-field': 'claim-status' }, t('claimed_by_other', { name: c.name || c.id }));
      if (supervisor) {
        buttons = [h('button', { class: 'btn', type: 'button', 'data-action': 'claim', onclick: () => claim(view.id) }, t('claim_take_over'))];
      }
    }
    dom.detailClaim.dataset.claimed = c ? (isMine(c) ? 'me' : 'other') : 'none';
    dom.detailClaim.replaceChildren(text, ...buttons);
  }

  function renderActions(view) {
    const id = view.id;
    const resolved = view.state === 'resolved';
    const button = (action, label, onclick, extra = '') =>
      h('button', { class: `btn ${extra}`, type: 'button', 'data-action': action, onclick }, label);
    const list = [
      state.alarms.has(String(id)) ? button('acknowledge', t('act_acknowledge'), () => acknowledge(id), 'btn-alarm') : button('acknowledge', t('act_acknowledge'), () => acknowledge(id)),
      resolved ? null : button('assign', t('act_assign'), () => openForm('assign')),
      button('note', t('act_note'), () => openForm('note')),
      button('call', t('act_call'), () => openForm('call')),
      button('escalate', t('act_escalate'), () => openForm('escalate')),
      ['offered', 'station_alerted'].includes(view.state) && !(view.ladder && view.ladder.off_ladder)
        ? button('take_off_ladder', t('act_off_ladder'), () => command(id, 'take_off_ladder', {}, t('ev_taken_off_ladder')))
        : null,
      resolved ? null : button('resolve', t('act_resolve'), () => openForm('resolve'), 'btn-good'),
      button('close', t('act_close'), () => openForm('close'), resolved ? 'btn-good' : ''),
      button('cancel', t('act_cancel'), () => openForm('cancel'), 'btn-warn'),
      button('false_alarm', t('act_false_alarm'), () => openForm('false_alarm'), 'btn-warn'),
    ];
    dom.detailActions.replaceChildren(...list.filter(Boolean));
  }

  function section(title, ...content) {
    return h('section', { class: 'dsec' }, h('h3', null, title), ...content);
  }

  function renderBody(view) {
    const e = view.elder || {};
    const loc = view.location || {};
    const at = loc.at || {};
    const livesAlone = e.lives_alone === true ? t('yes') : e.lives_alone === false ? t('no') : t('unknown');
    const elder = section(
      t('sec_elder'),
      h(
        'dl',
        { class: 'kv', 'data-section': 'elder' },
        kv(t('f_name'), e.name || e.id, { 'data-field': 'elder-name' }),
        kv(t('f_age'), typeof e.age === 'number' ? t('f_age_value', { n: e.age }) : t('unknown'), { 'data-field': 'age' }),
        kv(t('f_lives_alone'), livesAlone, { 'data-field': 'lives-alone', class: e.lives_alone ? 'kv-row kv-flag' : 'kv-row' }),
        kv(t('f_address'), e.address, { 'data-field': 'address' }),
        kv(t('f_phone'), e.phone ? phoneWithCopy(e.phone) : null, { 'data-field': 'elder-phone' }),
        kv(t('f_conditions'), listText(e.conditions) || t('none'), { 'data-field': 'conditions' }),
        kv(t('f_medications'), listText(e.medications) || t('none'), { 'data-field': 'medications' }),
        kv(t('f_mobility'), e.mobility || t('unknown'), { 'data-field': 'mobility' }),
        kv(t('f_language'), e.language || t('unknown'), { 'data-field': 'language' }),
        kv(t('f_door_notes'), e.door_notes || t('none'), { 'data-field': 'door-notes' }),
        kv(t('f_notes'), e.notes, { 'data-field': 'notes' }),
      ),
    );
    const contacts = Array.isArray(e.contacts) ? e.contacts : [];
    const contactList = section(
      t('sec_contacts'),
      contacts.length
        ? h(
            'ul',
            { class: 'contacts', 'data-section': 'contacts' },
            contacts.map((c) =>
              h(
                'li',
                { class: 'contact', 'data-field': 'contact' },
                h('span', { class: 'contact-name' }, c.name || '—'),
                c.relation ? h('span', { class: 'contact-rel' }, ` (${c.relation})`) : null,
                c.phone ? h('span', { class: 'contact-phone' }, ' ', phoneWithCopy(c.phone)) : null,
              ),
            ),
          )
        : h('p', { class: 'muted', 'data-section': 'contacts' }, t('none')),
    );
    const source = loc.source === 'device' ? t('loc_device') : loc.source === 'home' ? t('loc_home') : String(loc.source ?? '');
    const fixKey = loc.fix_rejected ? `fix_${loc.fix_rejected}` : null;
    const location = section(
      t('sec_location'),
      h(
        'dl',
        { class: 'kv', 'data-section': 'location' },
        kv(t('f_source'), source, { 'data-field': 'location-source' }),
        kv(t('f_accuracy'), typeof loc.accuracy_m === 'number' ? `±${formatDistance(loc.accuracy_m)}` : '—', { 'data-field': 'accuracy' }),
        kv(
          t('f_coords'),
          Number.isFinite(at.lat) && Number.isFinite(at.lon)
            ? h('span', null, `${at.lat.toFixed(5)}, ${at.lon.toFixed(5)} `, h('button', { class: 'btn btn-small', type: 'button', 'data-action': 'show-on-map', onclick: () => showOnMap(view.id) }, t('show_on_map')))
            : null,
        ),
        fixKey ? kv('⚠', has(fixKey) ? t(fixKey) : t('fix_other', { reason: loc.fix_rejected }), { class: 'kv-row kv-flag' }) : null,
        view.problem ? kv('⚠', view.problem, { class: 'kv-row kv-flag' }) : null,
      ),
    );
    const offers = Array.isArray(view.offers) ? view.offers : [];
    const ladder = view.ladder || {};
    const job = section(
      t('sec_job'),
      h(
        'dl',
        { class: 'kv', 'data-section': 'job' },
        kv(
          t('f_responder'),
          view.responder
            ? h('span', null, `${view.responder.name || view.responder.id} ${formatDistance(view.responder.distance_m)} `, view.responder.phone ? phoneWithCopy(view.responder.phone) : null)
            : t('none'),
          { 'data-field': 'job-responder' },
        ),
        offers.length
          ? kv(
              t('f_offers'),
              h(
                'ul',
                { class: 'offers' },
                offers.map((o) => h('li', { 'data-field': 'offer' }, `${o.responder?.name || o.responder?.id} ${formatDistance(o.responder?.distance_m)} · ${t('offer_deadline', { time: formatClock(o.deadline) })}`)),
              ),
            )
          : null,
        view.station
          ? kv(t('f_station'), h('span', null, `${view.station.name || view.station.id} ${formatDistance(view.station.distance_m)} `, view.station.phone ? phoneWithCopy(view.station.phone) : null))
          : null,
        ladder.emergency_number ? kv(t('f_emergency_number'), h('strong', { class: 'emergency-number', 'data-field': 'emergency-number' }, ladder.emergency_number), { class: 'kv-row kv-flag' }) : null,
        ladder.on_scene_by ? kv(t('f_on_scene_by'), formatClock(ladder.on_scene_by)) : null,
        ladder.reminders ? kv(t('f_reminders'), String(ladder.reminders)) : null,
        view.outcome ? kv(t('f_outcome'), outcomeLabel(view.outcome)) : null,
      ),
    );
    const press = section(
      t('sec_press'),
      h(
        'dl',
        { class: 'kv', 'data-section': 'press' },
        kv(t('f_press_count'), String(view.press_count ?? 1), { 'data-field': 'press-count', class: Number(view.press_count) > 1 ? 'kv-row kv-flag' : 'kv-row' }),
        kv(t('f_pressed_at'), formatClock(pressMoment(view))),
        kv(t('f_opened_at'), formatClock(view.opened_at)),
        kv(t('f_device'), view.device_id),
      ),
    );
    const timeline = section(t('sec_timeline'), h('ol', { class: 'timeline', id: 'timeline', 'data-section': 'timeline' }));
    dom.detailBody.replaceChildren(elder, contactList, location, job, press, timeline);
    renderTimeline();
  }

  function actorText(actor) {
    if (!actor || typeof actor !== 'object') return '';
    const id = actor.id === undefined || actor.id === null ? '' : String(actor.id);
    switch (actor.type) {
      case 'device':
        return t('actor_device', { id });
      case 'engine':
        return t('actor_engine');
      case 'responder':
        return t('actor_responder', { name: state.responders.get(id)?.name || id });
      case 'dispatcher':
      case 'supervisor':
        return t('actor_dispatcher', { name: state.staff.get(id)?.name || id });
      case 'station':
        return t('actor_station', { name: state.stations.get(id)?.name || id });
      default:
        return [actor.type, id].filter(Boolean).join(' ');
    }
  }

  function staffName(who) {
    if (!who) return null;
    if (typeof who === 'object') return who.name || who.id || null;
    return state.staff.get(String(who))?.name || String(who);
  }

  const responderName = (id) => state.responders.get(String(id))?.name || String(id ?? '');

  function callWhoText(who) {
    const s = String(who ?? '');
    const [kind, ...rest] = s.split(':');
    const name = rest.join(':');
    switch (kind) {
      case 'elder':
        return t('call_elder');
      case 'contact':
        return t('call_contact', { name });
      case 'responder':
        return t('call_responder', { name: responderName(name) });
      case 'station':
        return t('call_station', { name: state.stations.get(name)?.name || name });
      case 'emergency':
        return t('call_emergency', { number: name });
      default:
        return s;
    }
  }

  function callOutcomeText(outcome) {
    const s = String(outcome ?? '');
    const m = /^([a-z_]+)(?::\s*(.*))?$/s.exec(s);
    if (m && CALL_OUTCOMES.includes(m[1])) {
      const label = m[1] === 'other' ? t('outcome_other') : t(`call_${m[1]}`);
      return m[2] ? `${label}: ${m[2]}` : label;
    }
    return s;
  }

  /** One audit event in words; unknown kinds of change are shown with their fields. */
  function changeText(change) {
    const c = change && typeof change === 'object' ? change : { type: String(change) };
    const d = (m) => formatDistance(Number(m));
    switch (c.type) {
      case 'opened': {
        const src = c.location?.source === 'device' ? t('loc_device') : c.location?.source === 'home' ? t('loc_home') : '';
        return t('ev_opened', { kind: kindLabel(c.kind), source: src });
      }
      case 'press_joined':
        return t('ev_press_joined', { n: c.press_count, event: c.event && c.event !== 'sos' ? `(${has(`kind_${c.event}`) ? kindLabel(c.event) : c.event})` : '' });
      case 'kind_changed':
        return t('ev_kind_changed', { from: kindLabel(c.from), to: kindLabel(c.to) });
      case 'offered':
        return t('ev_offered', { name: responderName(c.responder_id), d: d(c.distance_m), time: formatClock(c.deadline) });
      case 'offer_declined':
        return t('ev_offer_declined', { name: responderName(c.responder_id) });
      case 'offer_timed_out':
        return t('ev_offer_timed_out', { name: responderName(c.responder_id) });
      case 'offer_withdrawn':
        return t('ev_offer_withdrawn', { name: responderName(c.responder_id) });
      case 'station_alerted':
        return t('ev_station_alerted', { name: state.stations.get(String(c.station_id))?.name || c.station_id });
      case 'nobody_going':
        return t('ev_nobody_going', { number: c.emergency_number ? t('ev_nobody_going_number', { number: c.emergency_number }) : '' });
      case 'reminder':
        return t('ev_reminder', { n: c.count });
      case 'accepted':
        return t('ev_accepted', { name: responderName(c.responder_id) });
      case 'en_route':
        return t('ev_en_route');
      case 'on_scene':
        return t('ev_on_scene');
      case 'on_scene_overdue':
        return t('ev_on_scene_overdue', { name: responderName(c.responder_id) });
      case 'assigned':
        return t('ev_assigned', { name: responderName(c.responder_id) });
      case 'taken_off_ladder':
        return t('ev_taken_off_ladder');
      case 'acknowledged':
        return t('ev_acknowledged');
      case 'resolved':
        return t('ev_resolved', { outcome: outcomeLabel(c.outcome) });
      case 'closed':
        return t('ev_closed', { outcome: outcomeLabel(c.outcome) });
      case 'cancelled':
        return t('ev_cancelled', { reason: c.reason });
      case 'false_alarm':
        return t('ev_false_alarm', { reason: c.reason });
      case 'nobody_in_range':
        return t('ev_nobody_in_range', { d: d(c.max_distance_m) });
      case 'nobody_qualified':
        return t('ev_nobody_qualified', c);
      case 'nearest_station':
        return t('ev_nearest_station', { name: state.stations.get(String(c.station_id))?.name || c.station_id, d: d(c.distance_m) });
      case 'cancel_requested':
        return t('ev_cancel_requested');
      case 'nobody_free_at_station':
        return t('ev_nobody_free_at_station', { name: state.stations.get(String(c.station_id))?.name || c.station_id || '—' });
      case 'claimed':
      case 'claim': {
        const name = staffName(c.by || c.dispatcher || c.user);
        const from = staffName(c.from);
        const text = name ? t('ev_claimed_by', { name }) : t('ev_claimed');
        return from ? `${text}${t('ev_taken_over_from', { name: from })}` : text;
      }
      case 'released':
      case 'release':
      case 'unclaimed':
        return t('ev_released');
      case 'note':
      case 'noted':
      case 'note_added':
        return t('ev_note', { text: c.text ?? '' });
      case 'call':
      case 'called':
      case 'call_logged':
      case 'call_made':
        return t('ev_call', { who: callWhoText(c.who), number: c.number ? ` ${c.number}` : '', outcome: callOutcomeText(c.outcome) });
      case 'escalate':
      case 'escalated':
      case 'emergency_called':
        return t('ev_escalated', { number: c.number ?? '', reference: c.reference ? t('ev_escalated_ref', { reference: c.reference }) : '' });
      default: {
        const fields = Object.entries(c)
          .filter(([k]) => k !== 'type')
          .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
          .join(', ');
        return `${t('ev_unknown', { type: c.type ?? '?' })}${fields ? ` (${fields})` : ''}`;
      }
    }
  }

  function renderTimeline() {
    const list = document.getElementById('timeline');
    if (!list) return;
    const tl = state.timeline;
    if (tl.error && !tl.events) {
      list.replaceChildren(h('li', { class: 'muted' }, t('timeline_failed', { error: tl.error })));
      return;
    }
    if (!tl.events) {
      list.replaceChildren(h('li', { class: 'muted' }, t('timeline_loading')));
      return;
    }
    if (tl.events.length === 0) {
      list.replaceChildren(h('li', { class: 'muted' }, t('timeline_empty')));
      return;
    }
    list.dataset.count = String(tl.events.length);
    list.replaceChildren(
      ...tl.events.map((ev) =>
        h(
          'li',
          { class: `tl tl-${ev.change?.type ?? 'unknown'}`, 'data-seq': ev.seq, 'data-change': ev.change?.type ?? '' },
          h('time', { class: 'tl-time' }, formatClock(ev.at)),
          h('span', { class: 'tl-actor' }, actorText(ev.actor)),
          h('span', { class: 'tl-text' }, changeText(ev.change)),
        ),
      ),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Action forms, one at a time, in the panel; they survive live updates of the incident.
  // ---------------------------------------------------------------------------------------
  function openForm(kind) {
    if (!state.openId) return;
    state.form = { kind, incidentId: state.openId };
    if (kind === 'assign') {
      state.suggestions = { id: state.openId, list: null, error: null, loading: true };
      const id = state.openId;
      const s = state.suggestions;
      request({ type: 'suggest', incident_id: Number(id) }).then((result) => {
        if (state.suggestions !== s) return;
        s.loading = false;
        if (result.ok && Array.isArray(result.suggestions)) s.list = result.suggestions;
        else s.error = result.error || '?';
        if (state.form && state.form.kind === 'assign') renderForm();
      });
    }
    renderForm();
    const first = dom.detailForm.querySelector('textarea, input, select');
    if (first) first.focus();
  }

  function closeForm() {
    state.form = null;
    renderForm();
    dom.detail.focus({ preventScroll: true });
  }

  function formShell(title, fields, onSubmit) {
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, t('submit'));
    const form = h(
      'form',
      { class: 'action-form', 'data-form': state.form.kind, novalidate: true },
      h('h3', null, title),
      ...fields,
      error,
      h('div', { class: 'form-buttons' }, submit, h('button', { class: 'btn', type: 'button', onclick: closeForm }, t('cancel_form'))),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const problem = onSubmit.validate ? onSubmit.validate(form) : null;
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        return;
      }
      error.hidden = true;
      submit.disabled = true;
      submit.textContent = t('sending');
      const result = await onSubmit.send(form);
      submit.disabled = false;
      submit.textContent = t('submit');
      if (result.ok) closeForm();
      else {
        error.textContent = t('done_failed', { error: result.error || '?' });
        error.hidden = false;
      }
    });
    return form;
  }

  const field = (labelText, control) => h('label', { class: 'field' }, h('span', null, labelText), control);

  function outcomeFields() {
    return [
      field(t('outcome_label'), h('select', { name: 'code' }, OUTCOMES.map((c) => h('option', { value: c }, t(`outcome_${c}`))))),
      field(t('outcome_text'), h('input', { name: 'text', maxlength: 500 })),
    ];
  }

  function outcomeValue(form) {
    const code = form.elements.code.value;
    const text = form.elements.text.value.trim();
    return text ? `${code}: ${text}` : code;
  }

  function validateOutcome(form) {
    return form.elements.code.value === 'other' && !form.elements.text.value.trim() ? t('outcome_other_required') : null;
  }

  function callTargets(view) {
    const e = view.elder || {};
    const list = [];
    list.push({ who: 'elder', label: t('call_elder'), number: e.phone || '' });
    for (const c of Array.isArray(e.contacts) ? e.contacts : []) {
      list.push({ who: `contact:${c.name}${c.relation ? `(${c.relation})` : ''}`, label: t('call_contact', { name: `${c.name}${c.relation ? ` (${c.relation})` : ''}` }), number: c.phone || '' });
    }
    const r = view.responder || (view.offers && view.offers[0] && view.offers[0].responder);
    if (r) list.push({ who: `responder:${r.id}`, label: t('call_responder', { name: r.name || r.id }), number: r.phone || '' });
    if (view.station) list.push({ who: `station:${view.station.id}`, label: t('call_station', { name: view.station.name || view.station.id }), number: view.station.phone || '' });
    const number = view.ladder?.emergency_number || defaultEmergencyNumber(view);
    list.push({ who: `emergency:${number}`, label: t('call_emergency', { number }), number });
    list.push({ who: 'other', label: t('call_other'), number: '' });
    return list;
  }

  function defaultEmergencyNumber(view) {
    if (view.ladder?.emergency_number) return view.ladder.emergency_number;
    if (view.kind === 'fire') return '119';
    if (view.kind === 'intrusion') return '110';
    return '120';
  }

  function renderForm() {
    const box = dom.detailForm;
    const f = state.form;
    if (!f || f.incidentId !== state.openId) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    const view = state.incidents.get(f.incidentId);
    if (!view) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    const id = view.id;
    let form;
    switch (f.kind) {
      case 'note':
        form = formShell(t('act_note'), [field(t('note_label'), h('textarea', { name: 'text', rows: 3, maxlength: 2000, required: true }))], {
          validate: (fm) => (fm.elements.text.value.trim() ? null : t('text_required')),
          send: (fm) => command(id, 'note', { text: fm.elements.text.value.trim() }, t('act_note')),
        });
        break;
      case 'call': {
        const targets = callTargets(view);
        const who = h('select', { name: 'who' }, targets.map((c, i) => h('option', { value: String(i) }, c.label)));
        const number = h('input', { name: 'number', inputmode: 'tel', value: targets[0].number });
        const otherWho = h('input', { name: 'other_who', maxlength: 200 });
        const otherField = field(t('call_other_who'), otherWho);
        otherField.hidden = true;
        who.addEventListener('change', () => {
          const c = targets[Number(who.value)];
          number.value = c.number;
          otherField.hidden = c.who !== 'other';
        });
        form = formShell(
          t('act_call'),
          [
            field(t('call_who'), who),
            otherField,
            field(t('call_number'), number),
            field(t('call_outcome'), h('select', { name: 'outcome' }, CALL_OUTCOMES.map((c) => h('option', { value: c }, c === 'other' ? t('outcome_other') : t(`call_${c}`))))),
            field(t('outcome_text'), h('input', { name: 'text', maxlength: 500 })),
          ],
          {
            validate: (fm) => (targets[Number(fm.elements.who.value)].who === 'other' && !fm.elements.other_who.value.trim() ? t('text_required') : null),
            send: (fm) => {
              const c = targets[Number(fm.elements.who.value)];
              const whoValue = c.who === 'other' ? fm.elements.other_who.value.trim() : c.who;
              const text = fm.elements.text.value.trim();
              const fields = { who: whoValue, outcome: text ? `${fm.elements.outcome.value}: ${text}` : fm.elements.outcome.value };
              if (fm.elements.number.value.trim()) fields.number = fm.elements.number.value.trim();
              return command(id, 'call', fields, t('act_call'));
            },
          },
        );
        break;
      }
      case 'escalate': {
        const preset = defaultEmergencyNumber(view);
        form = formShell(
          t('act_escalate'),
          [
            field(t('escalate_number'), h('select', { name: 'number' }, EMERGENCY_NUMBERS.map((n) => h('option', { value: n, selected: n === preset }, t(`num_${n}`))))),
            field(t('escalate_reference'), h('input', { name: 'reference', maxlength: 200 })),
          ],
          {
            send: (fm) => {
              const fields = { number: fm.elements.number.value };
              if (fm.elements.reference.value.trim()) fields.reference = fm.elements.reference.value.trim();
              return command(id, 'escalate', fields, t('act_escalate'));
            },
          },
        );
        break;
      }
      case 'cancel':
      case 'false_alarm':
        form = formShell(t(f.kind === 'cancel' ? 'act_cancel' : 'act_false_alarm'), [field(t('reason_label'), h('textarea', { name: 'reason', rows: 2, maxlength: 500, required: true }))], {
          validate: (fm) => (fm.elements.reason.value.trim() ? null : t('reason_required')),
          send: (fm) => command(id, f.kind, { reason: fm.elements.reason.value.trim() }, t(f.kind === 'cancel' ? 'act_cancel' : 'act_false_alarm')),
        });
        break;
      case 'resolve':
      case 'close':
        form = formShell(t(f.kind === 'resolve' ? 'act_resolve' : 'act_close'), outcomeFields(), {
          validate: validateOutcome,
          send: (fm) => command(id, f.kind, { outcome: outcomeValue(fm) }, t(f.kind === 'resolve' ? 'act_resolve' : 'act_close')),
        });
        break;
      case 'assign':
        form = renderSuggestions(view);
        break;
      default:
        form = null;
    }
    box.replaceChildren(...(form ? [form] : []));
    box.hidden = !form;
  }

  function renderSuggestions(view) {
    const s = state.suggestions;
    const holder = view.responder;
    let body;
    if (s.loading) body = h('p', { class: 'muted' }, t('suggest_loading'));
    else if (s.error) body = h('p', { class: 'form-error' }, t('suggest_failed', { error: s.error }));
    else if (!s.list || s.list.length === 0) body = h('p', { class: 'muted', 'data-field': 'suggest-none' }, t('suggest_none'));
    else {
      body = h(
        'ol',
        { class: 'suggestions' },
        s.list.map((sg, i) => {
          const r = sg.responder || {};
          const name = r.name || r.id;
          const station = state.stations.get(String(r.station_id));
          return h(
            'li',
            { class: 'suggestion', 'data-responder-id': r.id },
            h(
              'div',
              { class: 'sg-main' },
              h('span', { class: 'sg-rank' }, `${i + 1}.`),
              h('strong', null, name),
              h('span', { class: 'sg-eta', 'data-field': 'eta' }, t('suggest_eta', { n: Math.max(1, Math.round(Number(sg.eta_min))) })),
              h('span', { class: 'sub' }, `${formatDistance(Number(sg.distance_m))} · ${modeLabel(r.mode)}`),
            ),
            h(
              'div',
              { class: 'sg-flags' },
              h('span', { class: `chip ${sg.within_circle ? 'chip-ok' : 'chip-warn'}` }, sg.within_circle ? t('suggest_in_circle') : t('suggest_out_circle')),
              h('span', { class: `chip ${sg.has_skill ? 'chip-ok' : 'chip-warn'}` }, sg.has_skill ? t('suggest_skill') : t('suggest_no_skill')),
              station ? h('span', { class: 'sub' }, station.name) : null,
            ),
            h(
              'button',
              {
                class: 'btn btn-primary btn-small',
                type: 'button',
                'data-action': 'assign-to',
                onclick: async (ev) => {
                  ev.currentTarget.disabled = true;
                  const result = await command(view.id, 'assign', { responder_id: r.id }, t(holder ? 'reassign_to' : 'assign_to', { name }));
                  if (result.ok) closeForm();
                  else ev.currentTarget.disabled = false;
                },
              },
              t(holder ? 'reassign_to' : 'assign_to', { name }),
            ),
          );
        }),
      );
    }
    return h(
      'div',
      { class: 'action-form', 'data-form': 'assign' },
      h('h3', null, t('suggest_title')),
      body,
      h('div', { class: 'form-buttons' }, h('button', { class: 'btn', type: 'button', onclick: closeForm }, t('cancel_form'))),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Keyboard
  // ---------------------------------------------------------------------------------------
  const SHORTCUTS = [
    ['j / ↓ · k / ↑', 'key_move'],
    ['Enter', 'key_open'],
    ['c', 'key_claim'],
    ['a', 'key_ack'],
    ['n', 'key_note'],
    ['s', 'key_suggest'],
    ['Esc', 'key_esc'],
    ['?', 'key_help'],
  ];

  function renderShortcuts() {
    dom.shortcutsList.replaceChildren(...SHORTCUTS.map(([k, label]) => h('div', { class: 'kv-row' }, h('dt', null, h('kbd', null, k)), h('dd', null, t(label)))));
  }

  function moveSelection(step) {
    if (state.order.length === 0) return;
    const at = state.selectedId ? state.order.indexOf(state.selectedId) : -1;
    const next = at < 0 ? (step > 0 ? 0 : state.order.length - 1) : Math.max(0, Math.min(state.order.length - 1, at + step));
    const previous = state.selectedId;
    state.selectedId = state.order[next];
    if (previous) rows.get(previous)?.classList.remove('selected');
    const row = rows.get(state.selectedId);
    if (row) {
      row.classList.add('selected');
      row.scrollIntoView({ block: 'nearest' });
    }
  }

  const target = () => state.openId || state.selectedId;

  function typing(ev) {
    const el = ev.target;
    if (!(el instanceof HTMLElement)) return false;
    return el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
  }

  function onKey(ev) {
    if (!state.me || dom.app.hidden) return;
    unlockAudio();
    if (ev.key === 'Escape') {
      if (dom.shortcuts.open) return; // the dialog closes itself
      if (state.form) closeForm();
      else if (!dom.mapCard.hidden) hideMapCard();
      else if (state.openId) closePanel();
      else return;
      ev.preventDefault();
      return;
    }
    if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    switch (ev.key) {
      case 'j':
      case 'ArrowDown':
        moveSelection(1);
        break;
      case 'k':
      case 'ArrowUp':
        moveSelection(-1);
        break;
      case 'Enter':
        if (ev.target instanceof HTMLButtonElement || ev.target instanceof HTMLAnchorElement) return;
        if (state.selectedId) openIncident(state.selectedId);
        break;
      case 'c':
        claim(target());
        break;
      case 'a':
        acknowledge(target());
        break;
      case 'n':
        if (!state.openId && state.selectedId) openIncident(state.selectedId);
        if (state.openId) openForm('note');
        break;
      case 's':
        if (!state.openId && state.selectedId) openIncident(state.selectedId);
        if (state.openId) openForm('assign');
        break;
      case '?':
        if (!dom.shortcuts.open) dom.shortcuts.showModal();
        break;
      default:
        return;
    }
    ev.preventDefault();
  }

  // ---------------------------------------------------------------------------------------
  // Sign-in
  // ---------------------------------------------------------------------------------------
  function showSignin(message) {
    disconnect();
    state.me = null;
    resetData();
    dom.app.hidden = true;
    dom.signin.hidden = false;
    document.body.dataset.view = 'signin';
    dom.signinError.hidden = !message;
    dom.signinError.textContent = message || '';
    dom.signinSubmit.disabled = false;
    dom.signinSubmit.textContent = t('signin_submit');
    document.title = t('title_short');
    dom.signinUser.focus();
  }

  function resetData() {
    state.incidents.clear();
    state.responders.clear();
    state.stations.clear();
    state.alarms.clear();
    state.lastSeq = null;
    state.history = null;
    state.loaded = false;
    state.everConnected = false;
    state.attempt = 0;
    state.openId = null;
    state.selectedId = null;
    state.form = null;
    rows.clear();
    dirty.clear();
    if (dom.tbody) dom.tbody.replaceChildren();
    if (dom.detail) dom.detail.hidden = true;
    if (map) map.clear();
    if (alarmTimer !== null) clearInterval(alarmTimer);
    alarmTimer = null;
  }

  function showApp(user) {
    state.me = user;
    dom.signin.hidden = true;
    dom.app.hidden = false;
    document.body.dataset.view = 'console';
    if (!map && window.AnxinMap) {
      map = window.AnxinMap.create(dom.map, { onPick: pickOnMap, label: (k) => t(k) });
    }
    renderStatic();
    renderSummary();
    setConn('reconnecting');
    connect();
  }

  async function checkSession() {
    try {
      const res = await fetch('/api/v1/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (res.ok) {
        const body = await res.json();
        if (body && body.user) {
          showApp(body.user);
          return;
        }
      }
    } catch {
      // Server unreachable: the sign-in form says so when used.
    }
    showSignin('');
  }

  async function signIn(ev) {
    ev.preventDefault();
    unlockAudio();
    const user = dom.signinUser.value.trim();
    const password = dom.signinPassword.value;
    if (!user || !password) {
      dom.signinError.textContent = t('signin_missing');
      dom.signinError.hidden = false;
      return;
    }
    dom.signinSubmit.disabled = true;
    dom.signinSubmit.textContent = t('signin_busy');
    let message;
    try {
      const res = await fetch('/api/v1/session', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ user, password }),
      });
      if (res.ok) {
        const body = await res.json();
        dom.signinPassword.value = '';
        dom.signinError.hidden = true;
        showApp(body.user || { id: user, name: user, role: 'dispatcher' });
        return;
      }
      if (res.status === 401) message = t('signin_wrong');
      else if (res.status === 429) message = t('signin_wait', { seconds: res.headers.get('Retry-After') || '?' });
      else message = t('signin_failed', { status: res.status });
    } catch {
      message = t('signin_failed', { status: '—' });
    }
    dom.signinSubmit.disabled = false;
    dom.signinSubmit.textContent = t('signin_submit');
    dom.signinError.textContent = message;
    dom.signinError.hidden = false;
    dom.signinPassword.select();
  }

  async function signOut() {
    disconnect();
    try {
      await fetch('/api/v1/session', { method: 'DELETE', credentials: 'same-origin' });
    } catch {
      // Signed out here either way; the cookie expires on its own.
    }
    showSignin('');
  }

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------
  function loadLang() {
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (saved === 'zh' || saved === 'en') {
        state.langChosen = true;
        return saved;
      }
    } catch {
      // Storage can be refused (private windows); the default will do.
    }
    return 'zh';
  }

  function toggleLang() {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    state.langChosen = true;
    try {
      localStorage.setItem(LANG_KEY, state.lang);
    } catch {
      // Not remembered across reloads.
    }
    renderStatic();
    if (!dom.signin.hidden) {
      dom.signinSubmit.textContent = t('signin_submit');
      dom.signinError.hidden = true;
    }
    rebuildAll = true;
    panelDirty = true;
    remapAll();
    renderForm();
    refreshMapCard();
    scheduleRender();
  }

  function start() {
    dom = {
      app: $('app'),
      signin: $('signin'),
      signinForm: $('signin-form'),
      signinUser: $('signin-user'),
      signinPassword: $('signin-password'),
      signinError: $('signin-error'),
      signinSubmit: $('signin-submit'),
      layout: document.querySelector('.layout'),
      table: $('incidents'),
      tbody: $('incident-rows'),
      empty: $('empty'),
      conn: $('conn-status'),
      connText: $('conn-text'),
      staleBanner: $('stale-banner'),
      countOpen: $('count-open'),
      countUnassigned: $('count-unassigned'),
      countAlarm: $('count-alarm'),
      clock: $('clock'),
      seqInfo: $('seq-info'),
      me: $('me'),
      map: $('map'),
      mapCard: $('map-card'),
      legendCircle: $('legend-circle'),
      detail: $('detail'),
      detailTitle: $('detail-title'),
      detailSub: $('detail-sub'),
      detailClaim: $('detail-claim'),
      detailActions: $('detail-actions'),
      detailForm: $('detail-form'),
      detailBody: $('detail-body'),
      shortcuts: $('shortcuts'),
      shortcutsList: $('shortcuts-list'),
      toasts: $('toasts'),
    };
    dom.soundHint = h('button', { id: 'sound-hint', class: 'btn btn-alarm sound-hint', type: 'button', hidden: true, onclick: unlockAudio });
    dom.conn.after(dom.soundHint);
    state.lang = loadLang();
    for (const b of document.querySelectorAll('.lang-toggle')) b.addEventListener('click', toggleLang);
    dom.signinForm.addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('help-button').addEventListener('click', () => dom.shortcuts.showModal());
    $('detail-close').addEventListener('click', closePanel);
    dom.tbody.addEventListener('click', (ev) => {
      const row = ev.target instanceof Element ? ev.target.closest('tr[data-incident-id]') : null;
      if (row && !(ev.target instanceof HTMLAnchorElement)) openIncident(row.dataset.incidentId);
    });
    document.addEventListener('keydown', onKey);
    document.addEventListener('pointerdown', unlockAudio, { capture: true });
    window.addEventListener('online', reconnectNow);
    renderStatic();
    tick();
    checkSession();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
