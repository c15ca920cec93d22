//! The offline lock (issue 10, point 9): a tablet that has not reached its server for a
//! while (30 days unless the app sets otherwise) may be lost; its records are locked —
//! no record is read, listed, searched or written — until a sync reaches the server again.
//! The time counts from the enrolment or the last answered sync; a store never enrolled is
//! never locked. Sync itself always runs.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::store::Store;

/// Days without reaching the server before the records lock, unless the app sets it.
pub const DEFAULT_OFFLINE_LOCK_DAYS: u32 = 30;
const LAST_CONTACT_KEY: &str = "last_server_contact";
const LOCK_DAYS_KEY: &str = "offline_lock_days";
/// Stored for "never lock".
const NEVER: u32 = 0;

fn meta_u32(conn: &Connection, key: &str) -> Result<Option<u32>> {
    Ok(crate::storage::meta_get(conn, key)?.and_then(|b| {
        <[u8; 4]>::try_from(b.as_slice())
            .ok()
            .map(u32::from_be_bytes)
    }))
}

/// Notes that the server answered (an enrolment, a sync), inside the caller's transaction.
pub(crate) fn reached_server(conn: &Connection, at: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![
            LAST_CONTACT_KEY,
            at.timestamp().to_be_bytes().as_slice()
        ])?;
    Ok(())
}

impl Store {
    /// How many days without reaching the server lock the records (`None`: never).
    pub fn offline_lock_days(&self) -> Result<Option<u32>> {
        Ok(match meta_u32(&self.conn, LOCK_DAYS_KEY)? {
            None => Some(DEFAULT_OFFLINE_LOCK_DAYS),
            Some(NEVER) => None,
            Some(days) => Some(days),
        })
    }

    /// Sets the lock period (`None`: never lock; 0 is refused, it would lock at once).
    pub fn set_offline_lock_days(&mut self, days: Option<u32>) -> Result<()> {
        if days == Some(0) {
            return Err(Error::InvalidSetting(
                "the offline lock needs at least one day".into(),
            ));
        }
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
            .execute(params![
                LOCK_DAYS_KEY,
                days.unwrap_or(NEVER).to_be_bytes().as_slice()
            ])?;
        Ok(())
    }

    /// When the tablet last reached its server (enrolment or an answered sync).
    pub fn last_server_contact(&self) -> Result<Option<DateTime<Utc>>> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([LAST_CONTACT_KEY], |r| r.get(0))
            .optional()?;
        Ok(bytes
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .and_then(|b| DateTime::from_timestamp(i64::from_be_bytes(b), 0)))
    }

    /// Whether the records are locked: the server was last reached longer ago than the
    /// lock period.
    pub fn is_locked(&self) -> Result<bool> {
        let (Some(days), Some(last)) = (self.offline_lock_days()?, self.last_server_contact()?)
        else {
            return Ok(false);
        };
        Ok(self.now() - last > Duration::days(i64::from(days)))
    }

    /// Refuses with `Locked` while the records are locked.
    pub(crate) fn unlocked(&self) -> Result<()> {
        if self.is_locked()? {
            return Err(Error::Locked {
                days: self
                    .offline_lock_days()?
                    .unwrap_or(DEFAULT_OFFLINE_LOCK_DAYS),
            });
        }
        Ok(())
    }
}
