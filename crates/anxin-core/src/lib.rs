//! Anxin's domain and dispatch state machine.
//!
//! No I/O and no clock: every input carries the current time, every output is data for the
//! shell to store, send or show. See `docs/architecture.md`.

pub mod activity;
pub mod border;
pub mod carer;
mod dedup;
pub mod dispatch;
pub mod engine;
pub mod family;
pub mod geo;
pub mod health;
pub mod ids;
pub mod incident;
pub mod ledger;
pub mod matcher;
pub mod outbox;
pub mod policy;
pub mod programme;
pub mod registry;
pub mod report;
pub mod service;
pub mod standards;
pub mod telephony;
#[doc(hidden)]
pub mod testkit;
pub mod zone;

pub use activity::{ActivityPolicy, ActivityRow, ElderActivity, WakingHours};
pub use border::{Across, BorderMessage, BorderOutcome, Hold, Neighbour};
pub use carer::{CarerPolicy, CarerView, Visit, VisitAction, VisitError, VisitView};
pub use dispatch::{CommandError, DispatcherAction, DispatcherRef, ResponderAction, Search};
pub use engine::{AppliedRequest, Counters, Engine, LadderPolicy, Matching, Outbox, Outcome, Policy, Refusal, Resume};
pub use family::{Channel, Delivery, FamilyAnswer, Notice, NoticePriority, Notification, QuietHours};
pub use geo::Coordinates;
pub use health::{DeviceHealth, HealthModel, HealthPolicy, HealthRow, HealthSnapshot};
pub use ids::*;
pub use incident::*;
pub use ledger::{
    Amend, Amended, Amendment, DeviceSecret, Entry, FieldError, LedgerAction, LedgerError, LedgerKind, LedgerRecord,
};
pub use outbox::{OutboxCounts, OutboxEntry, OutboxStatus, OutboxTry, PushSubscription};
pub use programme::{ElderProgramme, ProgrammePolicy, ProgrammeRow, TaskOutcome};
pub use registry::*;
pub use report::{
    CallFacts, CallMilestones, Grouping, IncidentFacts, Milestones, ProgrammeFigures, Report, ReportBuilder,
    ReportQuery, ReportRow, ServiceFigures, Shifts, ShiftsError, Spread,
};
pub use service::{
    OrderAction, OrderChange, OrderError, OrderEvent, OrderId, OrderRequest, OrderSource, OrderState, Provider,
    ServiceArea, ServiceOrder, ServicePolicy, WorkerAction, WorkerView,
};
pub use standards::{DayFigures, DayTally, DispatcherFigures, Rating, Standard, StandardFigures, StandardLimits};
pub use telephony::{CallEvent, CallOutcome};
pub use zone::{Zone, ZoneError};
