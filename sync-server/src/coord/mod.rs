//! The coordinators' workspace, without HTTP: sign-in and sessions, the organisation's
//! scope, the visits to review and the review actions, young people's files, the funder
//! indicators, exports and the audit log. `web` renders it; tests drive it directly.
//!
//! **Scope.** Every read goes through a [`Coordinator`], which carries the teams of the
//! signed-in user's organisation, and every query is limited to them. A record of another
//! organisation is answered exactly like an unknown id (`None`, shown as 404).

pub mod access;
pub mod accounts;
pub mod administration;
pub mod audit;
pub mod auth;
pub mod break_glass;
pub mod conflicts;
pub mod csv;
pub mod erasure;
pub mod labels;
pub mod reports;
pub mod retention;
pub mod review;
pub mod throttle;
pub mod totp;
pub mod transfer;
pub mod view;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, TimeZone, Utc, Weekday};
use uuid::Uuid;

use crate::hub::{Hub, HubError};
use crate::storage::{Organisation, ReadTx, Team, User};

pub use auth::{LoginError, SessionPolicy, SignedIn};
pub use view::{Paged, VisitItem, VisitQuery, YouthItem, YouthQuery};

/// Rows per page in the lists.
pub const PAGE_SIZE: usize = 25;

/// The signed-in user and what they may see: the teams of their organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub user: User,
    pub organisation: Organisation,
    /// The organisation's teams, in creation order.
    pub teams: Vec<Team>,
    /// Whether this sign-in was confirmed with a second factor (TOTP or a recovery code),
    /// or the second factor was set up during it: required for the export with names.
    pub second_factor: bool,
}

impl Coordinator {
    pub fn team_ids(&self) -> Vec<Uuid> {
        self.teams.iter().map(|t| t.id).collect()
    }

    pub fn team_set(&self) -> BTreeSet<Uuid> {
        self.teams.iter().map(|t| t.id).collect()
    }

    pub fn in_scope(&self, team_id: Uuid) -> bool {
        self.teams.iter().any(|t| t.id == team_id)
    }

    pub fn team(&self, team_id: Uuid) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == team_id)
    }

    pub fn team_name(&self, team_id: Uuid) -> String {
        self.team(team_id)
            .map_or_else(|| "équipe inconnue".to_string(), |t| t.name.clone())
    }

    /// The teams a query covers: the chosen one if it is the organisation's (another
    /// organisation's team gives an empty scope, which matches nothing), else all of them.
    pub fn scope(&self, team: Option<Uuid>) -> Vec<Uuid> {
        match team {
            Some(t) if self.in_scope(t) => vec![t],
            Some(_) => Vec::new(),
            None => self.team_ids(),
        }
    }

    /// Loads a user's scope; `None` if the user or their organisation is gone.
    pub(crate) fn load(tx: &mut dyn ReadTx, user: User) -> Result<Option<Coordinator>, HubError> {
        let Some(organisation) = tx.organisation(user.organisation_id)? else {
            return Ok(None);
        };
        let teams = tx
            .teams()?
            .into_iter()
            .filter(|t| t.organisation_id == organisation.id)
            .collect();
        Ok(Some(Coordinator {
            user,
            organisation,
            teams,
            second_factor: false,
        }))
    }
}

/// The coordinators' workspace over a hub (the same storage as the sync API).
pub struct Workspace {
    hub: Arc<Hub>,
    sessions: SessionPolicy,
}

impl Workspace {
    /// A workspace with the default session lifetimes.
    pub fn new(hub: Arc<Hub>) -> Workspace {
        Workspace::with_sessions(hub, SessionPolicy::default())
    }

    pub fn with_sessions(hub: Arc<Hub>, sessions: SessionPolicy) -> Workspace {
        Workspace { hub, sessions }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Server time.
    pub fn now(&self) -> DateTime<Utc> {
        self.hub.now()
    }

    /// Today in metropolitan France (the day the figures are counted to).
    pub fn today(&self) -> NaiveDate {
        paris(self.now()).date_naive()
    }
}

/// A time in metropolitan France: UTC+1, or UTC+2 from the last Sunday of March to the
/// last Sunday of October at 01:00 UTC (the EU rule). Pages show server times this way.
pub fn paris(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    let last_sunday_1am = |month: u32| -> Option<DateTime<Utc>> {
        let first_next = if month == 12 {
            NaiveDate::from_ymd_opt(t.year() + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(t.year(), month + 1, 1)?
        };
        let mut day = first_next.pred_opt()?;
        while day.weekday() != Weekday::Sun {
            day = day.pred_opt()?;
        }
        Some(Utc.from_utc_datetime(&day.and_hms_opt(1, 0, 0)?))
    };
    let summer = match (last_sunday_1am(3), last_sunday_1am(10)) {
        (Some(start), Some(end)) => start <= t && t < end,
        _ => false,
    };
    let offset = if summer { 2 * 3600 } else { 3600 };
    let zone = FixedOffset::east_opt(offset).unwrap_or_else(|| Utc.fix());
    t.with_timezone(&zone)
}

/// The last 8 hex digits of an id: how pages name members, devices and records. (The
/// first ones of a UUID v7 are its creation time, shared by ids made the same minute.)
pub fn short_id(id: Uuid) -> String {
    id.simple().to_string()[24..].to_string()
}

/// Parses `YYYY-MM-DD`; empty or malformed gives `None`.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paris_time_follows_summer_time() {
        let winter = Utc.with_ymd_and_hms(2025, 1, 15, 12, 0, 0).unwrap();
        assert_eq!(paris(winter).offset().local_minus_utc(), 3600);
        let summer = Utc.with_ymd_and_hms(2025, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(paris(summer).offset().local_minus_utc(), 7200);
        // 2025: summer time from 30 March 01:00 UTC to 26 October 01:00 UTC.
        let before = Utc.with_ymd_and_hms(2025, 3, 30, 0, 59, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2025, 3, 30, 1, 0, 0).unwrap();
        assert_eq!(paris(before).offset().local_minus_utc(), 3600);
        assert_eq!(paris(after).offset().local_minus_utc(), 7200);
        let end = Utc.with_ymd_and_hms(2025, 10, 26, 1, 0, 0).unwrap();
        assert_eq!(paris(end).offset().local_minus_utc(), 3600);
    }
}
