//! Families: who is told what about an elder's incident, on which channel, and what they
//! answer.
//!
//! The engine decides (in `engine/family.rs`); this module holds the words. A
//! [`Notification`] is data: the shell stores it in the same commit as the change that
//! caused it, and a delivery worker sends it afterwards, retrying under the same key.

use crate::ids::{ElderId, IncidentId, Timestamp};
use crate::incident::{IncidentKind, IncidentState, WelfareReason};
use serde::{Deserialize, Serialize};

/// How a contact is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A text message through the operator's gateway.
    #[default]
    Sms,
    /// A voice call through the operator's gateway, reading the text aloud.
    Voice,
    /// Web Push to the family page on the contact's phone (the text through the gateway
    /// when the contact has not subscribed).
    Push,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Channel::Sms, Channel::Voice, Channel::Push].into_iter().find(|c| c.as_str() == s)
    }
}

/// A daily window, in the centre's local time, when a contact takes no low-priority news.
/// Never applied to emergencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// `"HH:MM"`, local time: the window starts.
    #[serde(with = "hhmm")]
    pub from: u16,
    /// `"HH:MM"`, local time: the window ends (the next day when earlier than `from`).
    #[serde(with = "hhmm")]
    pub to: u16,
}

impl QuietHours {
    /// When low-priority news may go at the earliest, if it is ready at `now`: `now` outside
    /// the window, else the window's end. `utc_offset_min` is the centre's offset from UTC.
    pub fn release(&self, now: Timestamp, utc_offset_min: i32) -> Timestamp {
        const DAY: i64 = 24 * 60;
        let local_ms = now.millis() + i64::from(utc_offset_min) * 60_000;
        let minute = local_ms.div_euclid(60_000).rem_euclid(DAY) as u16;
        let (from, to) = (self.from, self.to);
        let inside = if from <= to { minute >= from && minute < to } else { minute >= from || minute < to };
        if !inside || from == to {
            return now;
        }
        let wait = (i64::from(to) - i64::from(minute)).rem_euclid(DAY);
        // To the start of the window's last minute boundary: `to:00.000` local.
        let into_minute = local_ms.rem_euclid(60_000);
        now.plus_millis(wait * 60_000 - into_minute)
    }
}

mod hhmm {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(minutes: &u16, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", minutes / 60, minutes % 60))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a time of day HH:MM")))
    }

    pub fn parse(text: &str) -> Option<u16> {
        let (h, m) = text.split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && text.len() == 5).then_some(h * 60 + m)
    }
}

/// How urgent a notification is: emergencies go at once, whatever the hour; the rest wait
/// out quiet hours and can be turned off per contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticePriority {
    Emergency,
    Low,
}

/// What a contact is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// An emergency opened (or a request became one); the centre is finding somebody.
    Emergency { kind: IncidentKind },
    /// A responder took the job, with how far off they are.
    ResponderComing { responder: String, eta_min: u32 },
    /// The responder is with the elder.
    OnScene { responder: String },
    /// Nobody from the community could go: the centre is calling the emergency number.
    NobodyGoing { number: Option<String> },
    /// A dispatcher called the emergency services.
    EmergencyCalled { number: String },
    /// The incident ended: resolved, closed, cancelled or a false alarm.
    Ended { state: IncidentState, outcome: Option<String> },
    /// A non-emergency request (meals, a repair) reached the centre.
    ServiceRequest,
    /// The elder's device cannot call (silent, switched off) or is running flat.
    DeviceNews { reason: WelfareReason },
    /// The device the contact was told of is back (heard again, or charged).
    DeviceBack { reason: WelfareReason },
}

impl Notice {
    pub fn priority(&self) -> NoticePriority {
        match self {
            Notice::ServiceRequest | Notice::DeviceNews { .. } | Notice::DeviceBack { .. } => NoticePriority::Low,
            _ => NoticePriority::Emergency,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Notice::Emergency { .. } => "emergency",
            Notice::ResponderComing { .. } => "responder_coming",
            Notice::OnScene { .. } => "on_scene",
            Notice::NobodyGoing { .. } => "nobody_going",
            Notice::EmergencyCalled { .. } => "emergency_called",
            Notice::Ended { .. } => "ended",
            Notice::ServiceRequest => "service_request",
            Notice::DeviceNews { .. } => "device_news",
            Notice::DeviceBack { .. } => "device_back",
        }
    }

    /// The text a contact is sent, in their language (`en`, else Chinese), naming the elder.
    pub fn text(&self, elder: &str, language: &str) -> String {
        if language.starts_with("en") {
            self.text_en(elder)
        } else {
            self.text_zh(elder)
        }
    }

    fn text_zh(&self, elder: &str) -> String {
        let kind_zh = |k: &IncidentKind| match k {
            IncidentKind::Fall => "跌倒报警",
            IncidentKind::Sos => "一键呼救",
            IncidentKind::Fire => "烟雾/燃气报警",
            IncidentKind::Intrusion => "入侵报警",
            IncidentKind::Unreadable => "无法识别的报警",
            IncidentKind::Service => "服务请求",
            IncidentKind::Welfare => "关怀回访",
            IncidentKind::LoneWorker => "护理员超时未签退",
            IncidentKind::Call => "热线来电",
        };
        match self {
            Notice::Emergency { kind } => {
                format!("【安心】{elder}发出{}，呼叫中心正在安排人员上门。请回复1表示已收到。", kind_zh(kind))
            }
            Notice::ResponderComing { responder, eta_min } => {
                format!("【安心】{responder}已接单，正赶往{elder}处，预计{eta_min}分钟到达。")
            }
            Notice::OnScene { responder } => format!("【安心】{responder}已到达{elder}身边。"),
            Notice::NobodyGoing { number } => match number {
                Some(n) => format!("【安心】附近暂无人员可前往{elder}处，调度员正在联系{n}。"),
                None => format!("【安心】附近暂无人员可前往{elder}处，调度员正在处理。"),
            },
            Notice::EmergencyCalled { number } => format!("【安心】调度员已为{elder}拨打{number}。"),
            Notice::Ended { state, outcome } => {
                let how = match state {
                    IncidentState::FalseAlarm => "已确认为误报",
                    IncidentState::Cancelled => "已取消",
                    _ => "已处理完毕",
                };
                match outcome {
                    Some(o) if !o.is_empty() => format!("【安心】{elder}的报警{how}：{o}"),
                    _ => format!("【安心】{elder}的报警{how}。"),
                }
            }
            Notice::ServiceRequest => format!("【安心】{elder}通过呼叫器提出了服务请求，调度员会回电安排。"),
            Notice::DeviceNews { reason: WelfareReason::DeviceOffline } => {
                format!("【安心】{elder}的呼叫器已离线，暂时无法呼救。请帮忙检查电量或网络。")
            }
            Notice::DeviceNews { reason: WelfareReason::PowerOff } => {
                format!("【安心】{elder}的呼叫器已关机，暂时无法呼救。请帮忙开机。")
            }
            Notice::DeviceNews { reason: WelfareReason::LowBattery } => {
                format!("【安心】{elder}的呼叫器电量不足，请帮忙充电。")
            }
            Notice::DeviceNews { reason: WelfareReason::Inactive } => {
                format!("【安心】{elder}已有几个小时没有活动迹象，调度员会打电话确认。方便的话请联系一下。")
            }
            Notice::DeviceBack { reason: WelfareReason::LowBattery } => format!("【安心】{elder}的呼叫器已充上电。"),
            Notice::DeviceBack { reason: WelfareReason::Inactive } => format!("【安心】{elder}又有活动了。"),
            // The programme's calls and visits are not news (`notice_for` tells nobody).
            Notice::DeviceNews { reason: WelfareReason::ScheduledCall | WelfareReason::ScheduledVisit }
            | Notice::DeviceBack { reason: WelfareReason::ScheduledCall | WelfareReason::ScheduledVisit } => {
                format!("【安心】{elder}的定期关怀回访。")
            }
            Notice::DeviceBack { .. } => format!("【安心】{elder}的呼叫器已恢复在线。"),
        }
    }

    fn text_en(&self, elder: &str) -> String {
        let kind_en = |k: &IncidentKind| match k {
            IncidentKind::Fall => "a fall alarm",
            IncidentKind::Sos => "an SOS call",
            IncidentKind::Fire => "a smoke or gas alarm",
            IncidentKind::Intrusion => "an intrusion alarm",
            IncidentKind::Unreadable => "an alarm we could not read",
            IncidentKind::Service => "a service request",
            IncidentKind::Welfare => "a welfare check",
            IncidentKind::LoneWorker => "a carer overdue on a visit",
            IncidentKind::Call => "a call to the hotline",
        };
        match self {
            Notice::Emergency { kind } => format!(
                "[Anxin] {elder} raised {}. The call centre is sending somebody. Reply 1 to say you have seen this.",
                kind_en(kind)
            ),
            Notice::ResponderComing { responder, eta_min } => {
                format!("[Anxin] {responder} has taken the job and is on the way to {elder}, about {eta_min} min.")
            }
            Notice::OnScene { responder } => format!("[Anxin] {responder} is with {elder} now."),
            Notice::NobodyGoing { number } => match number {
                Some(n) => format!("[Anxin] Nobody nearby can go to {elder}; the dispatcher is calling {n}."),
                None => format!("[Anxin] Nobody nearby can go to {elder}; a dispatcher is handling it."),
            },
            Notice::EmergencyCalled { number } => format!("[Anxin] The dispatcher called {number} for {elder}."),
            Notice::Ended { state, outcome } => {
                let how = match state {
                    IncidentState::FalseAlarm => "was a false alarm",
                    IncidentState::Cancelled => "was cancelled",
                    _ => "has been dealt with",
                };
                match outcome {
                    Some(o) if !o.is_empty() => format!("[Anxin] {elder}'s alarm {how}: {o}"),
                    _ => format!("[Anxin] {elder}'s alarm {how}."),
                }
            }
            Notice::ServiceRequest => {
                format!("[Anxin] {elder} asked for a service with the call button; a dispatcher will call back.")
            }
            Notice::DeviceNews { reason: WelfareReason::DeviceOffline } => format!(
                "[Anxin] {elder}'s call button has gone offline and cannot call for help. Please check its battery or signal."
            ),
            Notice::DeviceNews { reason: WelfareReason::PowerOff } => {
                format!("[Anxin] {elder}'s call button was switched off and cannot call for help. Please switch it on.")
            }
            Notice::DeviceNews { reason: WelfareReason::LowBattery } => {
                format!("[Anxin] {elder}'s call button is low on battery. Please charge it.")
            }
            Notice::DeviceNews { reason: WelfareReason::Inactive } => format!(
                "[Anxin] Nothing has shown {elder} up and about for some hours; a dispatcher will phone to check. Please get in touch if you can."
            ),
            Notice::DeviceBack { reason: WelfareReason::LowBattery } => {
                format!("[Anxin] {elder}'s call button is charged again.")
            }
            Notice::DeviceBack { reason: WelfareReason::Inactive } => format!("[Anxin] {elder} is up and about again."),
            Notice::DeviceNews { reason: WelfareReason::ScheduledCall | WelfareReason::ScheduledVisit }
            | Notice::DeviceBack { reason: WelfareReason::ScheduledCall | WelfareReason::ScheduledVisit } => {
                format!("[Anxin] {elder}'s scheduled welfare call.")
            }
            Notice::DeviceBack { .. } => format!("[Anxin] {elder}'s call button is back online."),
        }
    }
}

/// A contact's answer from the family page or a reply by text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FamilyAnswer {
    /// They have seen the news.
    Seen,
    /// They are going themselves, arriving in about `eta_min` minutes.
    Going { eta_min: u32 },
    /// They called the elder and all is well: a dispatcher should check and may stand down.
    Fine,
    /// They cannot help: the next contact is told at once.
    CannotHelp,
}

impl FamilyAnswer {
    pub fn as_str(&self) -> &'static str {
        match self {
            FamilyAnswer::Seen => "seen",
            FamilyAnswer::Going { .. } => "going",
            FamilyAnswer::Fine => "fine",
            FamilyAnswer::CannotHelp => "cannot_help",
        }
    }
}

/// What became of a notification, as its delivery worker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The gateway (or push service) took it.
    Sent,
    /// The gateway reported it delivered to the phone.
    Delivered,
    /// Every try failed until the give-up time: nobody was told this way.
    Dead,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Delivered => "delivered",
            Delivery::Dead => "dead",
        }
    }
}

/// A message to a contact, to store with the change that caused it and send afterwards. Its
/// `key` is made from the logged event's sequence number, so a retry (or a batch committed
/// twice) carries the same key and a gateway can drop the repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The idempotency key: `n{seq}` of the `family_told` event.
    pub key: String,
    pub incident_id: IncidentId,
    pub elder_id: ElderId,
    pub contact_id: String,
    /// The contact's name and relation, for the console and the gateway's logs.
    pub contact_name: String,
    /// Where to: the contact's phone number.
    pub to: String,
    pub channel: Channel,
    pub priority: NoticePriority,
    /// The contact's language (`zh-CN`, `en`).
    pub language: String,
    pub notice: Notice,
    /// The text, in `language`.
    pub text: String,
    pub created_at: Timestamp,
    /// Not to be sent before this (the end of quiet hours, for low-priority news).
    pub not_before: Timestamp,
}

/// Parses `"HH:MM"` into minutes after midnight.
pub fn parse_hhmm(text: &str) -> Option<u16> {
    hhmm::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_hold_low_priority_news_until_they_end() {
        // 22:00-07:00 in UTC+8. 23:30 local = 15:30 UTC.
        let quiet = QuietHours { from: 22 * 60, to: 7 * 60 };
        let day0 = 20_000 * 86_400_000_i64; // a UTC midnight
        let at = |h: i64, m: i64| Timestamp(day0 + (h * 60 + m) * 60_000);
        assert_eq!(quiet.release(at(15, 30), 480), at(23, 0), "23:30 local waits until 07:00 local");
        assert_eq!(quiet.release(at(22, 59), 480), at(23, 0), "06:59 local waits a minute");
        assert_eq!(quiet.release(at(23, 0), 480), at(23, 0), "07:00 local goes");
        assert_eq!(quiet.release(at(4, 0), 480), at(4, 0), "12:00 local goes");
        assert_eq!(quiet.release(at(14, 0), 480), at(23, 0), "22:00 local is inside: it waits the night");
        assert_eq!(quiet.release(at(13, 59), 480), at(13, 59), "21:59 local goes");
        let day = QuietHours { from: 13 * 60, to: 14 * 60 };
        assert_eq!(day.release(at(5, 10), 480), at(6, 0), "13:10 local waits for 14:00 local");
    }

    #[test]
    fn quiet_hours_read_and_write_as_hh_mm() {
        let q: QuietHours = serde_json::from_str(r#"{"from":"22:00","to":"07:30"}"#).unwrap();
        assert_eq!((q.from, q.to), (22 * 60, 7 * 60 + 30));
        assert_eq!(serde_json::to_string(&q).unwrap(), r#"{"from":"22:00","to":"07:30"}"#);
        for bad in ["24:00", "7:30", "07:60", "x"] {
            let json = format!(r#"{{"from":"{bad}","to":"07:00"}}"#);
            assert!(serde_json::from_str::<QuietHours>(&json).is_err(), "{bad} refused");
        }
    }

    #[test]
    fn texts_name_the_elder_in_the_contacts_language() {
        let n = Notice::ResponderComing { responder: "王芳".into(), eta_min: 7 };
        assert!(n.text("李秀英", "zh-CN").contains("李秀英") && n.text("李秀英", "zh-CN").contains("7分钟"));
        assert!(n.text("Li Xiuying", "en").contains("about 7 min"));
        assert_eq!(Notice::ServiceRequest.priority(), NoticePriority::Low);
        assert_eq!(Notice::Emergency { kind: IncidentKind::Fall }.priority(), NoticePriority::Emergency);
    }
}
