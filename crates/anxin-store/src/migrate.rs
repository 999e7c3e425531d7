//! Schema migrations, embedded in the binary and applied in order at start.

/// A migration: its version and its SQL.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../../migrations/sqlite/0001_init.sql") },
    Migration {
        version: 2,
        name: "staff_and_profiles",
        sql: include_str!("../../../migrations/sqlite/0002_staff_and_profiles.sql"),
    },
    Migration {
        version: 3,
        name: "event_bodies",
        sql: include_str!("../../../migrations/sqlite/0003_event_bodies.sql"),
    },
    Migration {
        version: 4,
        name: "elder_history",
        sql: include_str!("../../../migrations/sqlite/0004_elder_history.sql"),
    },
    Migration { version: 5, name: "family", sql: include_str!("../../../migrations/sqlite/0005_family.sql") },
    Migration { version: 6, name: "live_ledger", sql: include_str!("../../../migrations/sqlite/0006_live_ledger.sql") },
    Migration {
        version: 7,
        name: "device_health",
        sql: include_str!("../../../migrations/sqlite/0007_device_health.sql"),
    },
    Migration {
        version: 8,
        name: "elder_activity",
        sql: include_str!("../../../migrations/sqlite/0008_elder_activity.sql"),
    },
    Migration {
        version: 9,
        name: "welfare_programme",
        sql: include_str!("../../../migrations/sqlite/0009_welfare_programme.sql"),
    },
    Migration {
        version: 10,
        name: "carer_visits",
        sql: include_str!("../../../migrations/sqlite/0010_carer_visits.sql"),
    },
    Migration { version: 11, name: "device_sim", sql: include_str!("../../../migrations/sqlite/0011_device_sim.sql") },
    Migration {
        version: 12,
        name: "events_by_time",
        sql: include_str!("../../../migrations/sqlite/0012_events_by_time.sql"),
    },
    Migration { version: 13, name: "reports", sql: include_str!("../../../migrations/sqlite/0013_reports.sql") },
    Migration {
        version: 14,
        name: "reports_calls",
        sql: include_str!("../../../migrations/sqlite/0014_reports_calls.sql"),
    },
    Migration { version: 15, name: "services", sql: include_str!("../../../migrations/sqlite/0015_services.sql") },
    Migration { version: 16, name: "leases", sql: include_str!("../../../migrations/sqlite/0016_leases.sql") },
    Migration { version: 18, name: "zones", sql: include_str!("../../../migrations/sqlite/0018_zones.sql") },
    Migration { version: 19, name: "inbox", sql: include_str!("../../../migrations/sqlite/0019_inbox.sql") },
    Migration {
        version: 20,
        name: "staff_sessions",
        sql: include_str!("../../../migrations/sqlite/0020_staff_sessions.sql"),
    },
    Migration {
        version: 21,
        name: "applied_requests",
        sql: include_str!("../../../migrations/sqlite/0021_applied_requests.sql"),
    },
    Migration {
        version: 22,
        name: "incident_milestones",
        sql: include_str!("../../../migrations/sqlite/0022_incident_milestones.sql"),
    },
    Migration {
        version: 23,
        name: "incident_milestones_filled",
        sql: include_str!("../../../migrations/sqlite/0023_incident_milestones_filled.sql"),
    },
    Migration {
        version: 24,
        name: "call_milestones",
        sql: include_str!("../../../migrations/sqlite/0024_call_milestones.sql"),
    },
    Migration {
        version: 25,
        name: "programme_milestones",
        sql: include_str!("../../../migrations/sqlite/0025_programme_milestones.sql"),
    },
    Migration {
        version: 27,
        name: "responder_holds",
        sql: include_str!("../../../migrations/sqlite/0027_responder_holds.sql"),
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../../migrations/postgres/0001_init.sql") },
    Migration {
        version: 2,
        name: "staff_and_profiles",
        sql: include_str!("../../../migrations/postgres/0002_staff_and_profiles.sql"),
    },
    Migration {
        version: 3,
        name: "event_bodies",
        sql: include_str!("../../../migrations/postgres/0003_event_bodies.sql"),
    },
    Migration {
        version: 4,
        name: "elder_history",
        sql: include_str!("../../../migrations/postgres/0004_elder_history.sql"),
    },
    Migration { version: 5, name: "family", sql: include_str!("../../../migrations/postgres/0005_family.sql") },
    Migration {
        version: 6,
        name: "live_ledger",
        sql: include_str!("../../../migrations/postgres/0006_live_ledger.sql"),
    },
    Migration {
        version: 7,
        name: "device_health",
        sql: include_str!("../../../migrations/postgres/0007_device_health.sql"),
    },
    Migration {
        version: 8,
        name: "elder_activity",
        sql: include_str!("../../../migrations/postgres/0008_elder_activity.sql"),
    },
    Migration {
        version: 9,
        name: "welfare_programme",
        sql: include_str!("../../../migrations/postgres/0009_welfare_programme.sql"),
    },
    Migration {
        version: 10,
        name: "carer_visits",
        sql: include_str!("../../../migrations/postgres/0010_carer_visits.sql"),
    },
    Migration {
        version: 11,
        name: "device_sim",
        sql: include_str!("../../../migrations/postgres/0011_device_sim.sql"),
    },
    Migration {
        version: 12,
        name: "events_by_time",
        sql: include_str!("../../../migrations/postgres/0012_events_by_time.sql"),
    },
    Migration { version: 13, name: "reports", sql: include_str!("../../../migrations/postgres/0013_reports.sql") },
    Migration {
        version: 14,
        name: "reports_calls",
        sql: include_str!("../../../migrations/postgres/0014_reports_calls.sql"),
    },
    Migration { version: 15, name: "services", sql: include_str!("../../../migrations/postgres/0015_services.sql") },
    Migration { version: 16, name: "leases", sql: include_str!("../../../migrations/postgres/0016_leases.sql") },
    Migration { version: 18, name: "zones", sql: include_str!("../../../migrations/postgres/0018_zones.sql") },
    Migration { version: 19, name: "inbox", sql: include_str!("../../../migrations/postgres/0019_inbox.sql") },
    Migration {
        version: 20,
        name: "staff_sessions",
        sql: include_str!("../../../migrations/postgres/0020_staff_sessions.sql"),
    },
    Migration {
        version: 21,
        name: "applied_requests",
        sql: include_str!("../../../migrations/postgres/0021_applied_requests.sql"),
    },
    Migration {
        version: 22,
        name: "incident_milestones",
        sql: include_str!("../../../migrations/postgres/0022_incident_milestones.sql"),
    },
    Migration {
        version: 23,
        name: "incident_milestones_filled",
        sql: include_str!("../../../migrations/postgres/0023_incident_milestones_filled.sql"),
    },
    Migration {
        version: 24,
        name: "call_milestones",
        sql: include_str!("../../../migrations/postgres/0024_call_milestones.sql"),
    },
    Migration {
        version: 25,
        name: "programme_milestones",
        sql: include_str!("../../../migrations/postgres/0025_programme_milestones.sql"),
    },
    Migration { version: 26, name: "fence", sql: include_str!("../../../migrations/postgres/0026_fence.sql") },
    Migration {
        version: 27,
        name: "responder_holds",
        sql: include_str!("../../../migrations/postgres/0027_responder_holds.sql"),
    },
];

pub(crate) const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS anxin_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in a dialect's `migrations/` folder is embedded, in order and under its own
    /// version and name: a file added without a line above would never run.
    #[test]
    fn every_migration_file_is_registered() {
        for (dialect, registered) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(dialect);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|f| f.ends_with(".sql"))
                .collect();
            files.sort();
            let named: Vec<String> = registered.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
            assert_eq!(named, files, "{dialect}");
            for (m, file) in registered.iter().zip(&files) {
                assert_eq!(m.sql, std::fs::read_to_string(dir.join(file)).unwrap(), "{dialect} {file}");
            }
        }
    }
}
