//! The tablet's side of the review loop and its own indicators.

use chrono::{Local, NaiveDate};
use rusqlite::Row;
use rusqlite::params;
use rusqlite::types::FromSqlError;
use serde::de::DeserializeOwned;
use serde::de::value::StrDeserializer;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::indicators::{self, AgeBasis, IndicatorQuery, IndicatorReport, Reached, YouthFacts};
use crate::records::{ReviewTask, ReviewTaskStatus};
use crate::store::Store;

impl Store {
    /// Coordinators' questions, oldest first; only those waiting for an answer if `open_only`.
    pub fn review_tasks(&self, open_only: bool) -> Result<Vec<(Uuid, ReviewTask)>> {
        self.unlocked()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM review_task_index WHERE (?1 = 0 OR status = 'open') ORDER BY asked_at, id",
        )?;
        let ids = stmt.query_map(params![i64::from(open_only)], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for id in ids {
            if let Ok(id) = Uuid::from_slice(&id?) {
                out.push((id, self.get(id)?));
            }
        }
        Ok(out)
    }

    /// Answers a coordinator's question as the current member; the answer syncs back.
    pub fn answer_review_task(&mut self, id: Uuid, answer: &str) -> Result<ReviewTask> {
        let member = self.member_id();
        let now = self.now();
        self.edit::<ReviewTask>(id, |t| {
            t.answer = answer.to_string();
            t.answered_by = Some(member);
            // In the tablet's own time zone, as the question carries the coordinator's.
            t.answered_at = Some(now.with_timezone(&Local).fixed_offset());
            t.status = ReviewTaskStatus::Answered;
        })
    }

    /// What the indicators count, one row per young person with a visit: their facts and
    /// their records' already joined in their index row (`records/reach.rs`), so no
    /// document is parsed and no visit, action or outcome row is read
    /// (docs/indicators.md, "On the tablet").
    pub fn indicator_facts(&self) -> Result<Vec<Reached>> {
        self.unlocked()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, team_id, first_contact_date, invisible, home_commune, birth_date,
                birth_year, age_band, sex, referral_source, profile_flags, first_visit_day,
                first_visit_commune, first_done, chantier_days, outcomes
             FROM youth_index WHERE first_visit_day IS NOT NULL",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Reached {
                youth: YouthFacts {
                    id: uuid(r, 0)?,
                    team_id: uuid(r, 1)?,
                    first_contact_date: date(r, 2)?,
                    invisible: r.get(3)?,
                    home_commune: indicators::home_commune(text(r, 4)?),
                    age: AgeBasis::from_fields(
                        text(r, 5)?.map(parse_date).transpose()?,
                        r.get(6)?,
                        text(r, 7)?.map(parse_enum).transpose()?,
                    ),
                    sex: text(r, 8)?.map(parse_enum).transpose()?,
                    referral_source: parse_enum(required(text(r, 9)?)?)?,
                    profile_flags: required(text(r, 10)?)?
                        .split_whitespace()
                        .map(parse_enum)
                        .collect::<Result<_>>()?,
                },
                first_visit_day: date(r, 11)?,
                first_visit_commune: required(text(r, 12)?)?.to_string(),
                first_done: text(r, 13)?.map(parse_date).transpose()?,
                chantiers: required(text(r, 14)?)?
                    .split_whitespace()
                    .map(parse_date)
                    .collect::<Result<_>>()?,
                outcomes: required(text(r, 15)?)?
                    .split_whitespace()
                    .map(|o| {
                        let (kind, day) = o
                            .split_once('@')
                            .ok_or(Error::CorruptStore("malformed outcome in an index"))?;
                        Ok((parse_date(day)?, parse_enum(kind)?))
                    })
                    .collect::<Result<_>>()?,
            });
        }
        Ok(out)
    }

    /// The funder figures over the records on this tablet (its own team's caseload),
    /// computed by the same code as the server's dashboard. Holds the store (and so the
    /// FFI's lock) only while the rows are read.
    pub fn indicators(&self, query: &IndicatorQuery) -> Result<IndicatorReport> {
        Ok(indicators::count(&self.indicator_facts()?, query)?)
    }
}

fn corrupt(_: FromSqlError) -> Error {
    Error::CorruptStore("unexpected value type in an index")
}

fn uuid(r: &Row<'_>, i: usize) -> Result<Uuid> {
    Uuid::from_slice(r.get_ref(i)?.as_blob().map_err(corrupt)?)
        .map_err(|_| Error::CorruptStore("malformed id in an index"))
}

fn text<'r>(r: &'r Row<'_>, i: usize) -> Result<Option<&'r str>> {
    r.get_ref(i)?.as_str_or_null().map_err(corrupt)
}

fn required(v: Option<&str>) -> Result<&str> {
    v.ok_or(Error::CorruptStore("missing value in an index"))
}

fn date(r: &Row<'_>, i: usize) -> Result<NaiveDate> {
    parse_date(required(text(r, i)?)?)
}

/// `NaiveDate`'s own text: `YYYY-MM-DD` read by hand (chrono's general parser is most of
/// the time of reading the rows), any other form (a year past 9999) by chrono.
fn parse_date(s: &str) -> Result<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r).and_then(|d| {
            d.iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        })
    };
    let quick = match (b.len(), b.get(4), b.get(7)) {
        (10, Some(b'-'), Some(b'-')) => match (digits(0..4), digits(5..7), digits(8..10)) {
            (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y as i32, m, d),
            _ => None,
        },
        _ => None,
    };
    quick
        .or_else(|| s.parse().ok())
        .ok_or(Error::CorruptStore("malformed date in an index"))
}

/// An enum from the serde id `enum_str` wrote (a newer version's value reads back as such).
fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T> {
    T::deserialize(StrDeserializer::<serde::de::value::Error>::new(s))
        .map_err(|_| Error::CorruptStore("malformed value in an index"))
}
