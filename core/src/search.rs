//! Offline lists and search over the derived tables: what a worker in the field needs
//! to find a young person already met, and to avoid recording the same one twice.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Row;
use uuid::Uuid;

use crate::communes::Communes;
use crate::error::Result;
use crate::records::AgeBand;
use crate::records::youth_age_on;
use crate::store::Store;
use crate::text::{fold, phonetic, words};

/// A young person as shown in a list.
#[derive(Debug, Clone, PartialEq)]
pub struct YouthSummary {
    pub id: Uuid,
    pub display_name: String,
    /// Exact from a birth date, approximate from a birth year or an age band.
    pub age: Option<i32>,
    pub age_is_approximate: bool,
    pub home_commune: Option<String>,
    pub home_commune_name: Option<String>,
    pub status: String,
    pub contact_count: u32,
}

/// A contact as shown in the list of visits.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSummary {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub commune: String,
    pub commune_name: String,
    pub kind: String,
    pub youth_names: Vec<String>,
}

/// What is known when about to create a young person.
#[derive(Debug, Clone, Default)]
pub struct DuplicateProbe {
    pub first_name: Option<String>,
    pub alias: Option<String>,
    pub last_name: Option<String>,
    pub birth_year: Option<i32>,
    pub home_commune: Option<String>,
}

/// A possible duplicate, with why it was proposed.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarYouth {
    pub youth: YouthSummary,
    /// 0 to 1; 1 is the same name, year and commune.
    pub score: f64,
    pub same_commune: bool,
    pub birth_year_close: bool,
}

impl SimilarYouth {
    /// "Kévin, ~19 ans, Stenay — vu 3 fois"
    pub fn describe(&self) -> String {
        let y = &self.youth;
        let mut s = y.display_name.clone();
        if let Some(age) = y.age {
            s.push_str(&format!(
                ", {}{age} ans",
                if y.age_is_approximate { "~" } else { "" }
            ));
        }
        if let Some(c) = &y.home_commune_name {
            s.push_str(&format!(", {c}"));
        }
        match y.contact_count {
            0 => s.push_str(" — jamais rencontré"),
            1 => s.push_str(" — vu 1 fois"),
            n => s.push_str(&format!(" — vu {n} fois")),
        }
        s
    }
}

pub(crate) const YOUTH_COLUMNS: &str =
    "y.id, y.display_name, y.birth_date, y.birth_year, y.age_band, y.home_commune, y.status";

pub(crate) fn youth_row(row: &Row<'_>, today: NaiveDate) -> rusqlite::Result<YouthSummary> {
    let id = Uuid::from_slice(&row.get::<_, Vec<u8>>(0)?).unwrap_or_default();
    let birth_date: Option<NaiveDate> = row
        .get::<_, Option<String>>(2)?
        .and_then(|s| s.parse().ok());
    let birth_year: Option<i32> = row.get(3)?;
    let band: Option<AgeBand> = row
        .get::<_, Option<String>>(4)?
        .and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok());
    let (age, approx) = match (birth_date, birth_year, band) {
        (Some(b), _, _) => (Some(youth_age_on(b, today)), false),
        (None, Some(y), _) => (Some(chrono::Datelike::year(&today) - y), true),
        (None, None, Some(b)) => (b.midpoint(), true),
        _ => (None, true),
    };
    let home_commune: Option<String> = row.get(5)?;
    Ok(YouthSummary {
        id,
        display_name: row.get(1)?,
        age,
        age_is_approximate: approx,
        home_commune_name: home_commune
            .as_deref()
            .and_then(|c| Communes::global().get(c))
            .map(|c| c.name.to_string()),
        home_commune,
        status: row.get(6)?,
        contact_count: 0,
    })
}

/// Quotes a folded word for an FTS5 prefix query; folded words hold only letters and digits.
fn fts_prefix_query(query: &str) -> Option<String> {
    let folded = fold(query);
    let terms: Vec<String> = words(&folded).map(|w| format!("\"{w}\"*")).collect();
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

impl Store {
    /// Young people whose first name, alias, last name or home commune starts with each
    /// word of `query`, ignoring accents and case ("kev sten" finds Kévin from Stenay).
    pub fn search_youth(&self, query: &str, limit: usize) -> Result<Vec<YouthSummary>> {
        self.unlocked()?;
        let Some(fts) = fts_prefix_query(query) else {
            return Ok(Vec::new());
        };
        let today = self.now().date_naive();
        // The newest matches first (FTS5 walks rowids in order and stops at the limit),
        // then sorted by name for display: no full sort of every match.
        let sql = format!(
            "SELECT {YOUTH_COLUMNS} FROM youth_index y WHERE y.rowid IN
               (SELECT rowid FROM youth_fts WHERE youth_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2)"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params![fts, limit as i64], |r| {
            youth_row(r, today)
        })?;
        let mut out: Vec<YouthSummary> = Vec::new();
        for r in rows {
            out.push(r?);
        }
        out.sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.id.cmp(&b.id)));
        self.fill_contact_counts(&mut out)?;
        Ok(out)
    }

    /// Young people who may be the one about to be created: similar name (spelling
    /// variants, typos), birth year within one year, same commune. Best first.
    pub fn find_similar_youth(
        &self,
        probe: &DuplicateProbe,
        limit: usize,
    ) -> Result<Vec<SimilarYouth>> {
        self.unlocked()?;
        let probe_names: Vec<String> = [&probe.first_name, &probe.alias, &probe.last_name]
            .into_iter()
            .flatten()
            .map(|s| fold(s))
            .filter(|s| !s.is_empty())
            .collect();
        if probe_names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = probe_names
            .iter()
            .filter_map(|n| words(n).next().map(phonetic))
            .collect();
        let mut candidates: HashMap<Uuid, Candidate> = HashMap::new();
        // Same-sounding names; with a known birth year, only those born within two years
        // of it (or of unknown year): the index range keeps common names cheap.
        let (low, high) = probe
            .birth_year
            .map_or((i32::MIN, i32::MAX), |y| (y - 2, y + 2));
        for column in ["phon_first", "phon_alias", "phon_last"] {
            let sql = format!(
                "SELECT {CANDIDATE_COLUMNS} FROM youth_index y
                 WHERE y.{column} = ?1 AND (y.birth_year BETWEEN ?2 AND ?3 OR y.birth_year IS NULL)
                 LIMIT 5000"
            );
            let mut stmt = self.conn().prepare_cached(&sql)?;
            for key in &keys {
                for c in stmt.query_map(rusqlite::params![key, low, high], candidate)? {
                    let c = c?;
                    candidates.insert(c.id, c);
                }
            }
        }
        // Typos the phonetic key misses: same commune and close birth year.
        if let (Some(commune), Some(year)) = (&probe.home_commune, probe.birth_year) {
            let sql = format!(
                "SELECT {CANDIDATE_COLUMNS} FROM youth_index y
                 WHERE y.home_commune = ?1 AND y.birth_year BETWEEN ?2 AND ?3 LIMIT 5000"
            );
            let mut stmt = self.conn().prepare_cached(&sql)?;
            for c in stmt.query_map(rusqlite::params![commune, year - 1, year + 1], candidate)? {
                let c = c?;
                candidates.insert(c.id, c);
            }
        }

        let mut scored: Vec<(Uuid, Score)> = candidates
            .into_values()
            .filter_map(|c| score(probe, &probe_names, &keys, &c).map(|s| (c.id, s)))
            .collect();
        scored.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
        scored.truncate(limit);

        let today = self.now().date_naive();
        let sql = format!("SELECT {YOUTH_COLUMNS} FROM youth_index y WHERE y.id = ?1");
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut out = Vec::with_capacity(scored.len());
        for (id, s) in scored {
            let row = stmt.query_row([id.as_bytes().as_slice()], |r| youth_row(r, today))?;
            out.push(SimilarYouth {
                youth: row,
                score: s.score,
                same_commune: s.same_commune,
                birth_year_close: s.birth_year_close,
            });
        }
        let mut summaries: Vec<YouthSummary> = out.iter().map(|s| s.youth.clone()).collect();
        self.fill_contact_counts(&mut summaries)?;
        for (s, filled) in out.iter_mut().zip(summaries) {
            s.youth = filled;
        }
        Ok(out)
    }

    pub(crate) fn fill_contact_counts(&self, youth: &mut [YouthSummary]) -> Result<()> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT count(*) FROM contact_youth WHERE youth_id = ?1")?;
        for y in youth {
            y.contact_count = stmt.query_row([y.id.as_bytes().as_slice()], |r| r.get(0))?;
        }
        Ok(())
    }

    /// Contacts, most recent first.
    pub fn list_contacts(&self, offset: usize, limit: usize) -> Result<Vec<ContactSummary>> {
        self.unlocked()?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.id, c.occurred_at, c.commune, c.kind,
                    (SELECT group_concat(y.display_name, char(31))
                       FROM (WITH RECURSIVE k(i) AS (
                                SELECT 1 UNION ALL
                                SELECT i + 16 FROM k WHERE i + 16 <= length(c.youth_ids))
                             SELECT y.display_name FROM k
                               JOIN youth_index y ON y.id = substr(c.youth_ids, k.i, 16)) y)
               FROM contact_index c
              ORDER BY c.occurred_at DESC, c.id
              LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt.query_map(rusqlite::params![limit as i64, offset as i64], |r| {
            let commune: String = r.get(2)?;
            Ok(ContactSummary {
                id: Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap_or_default(),
                occurred_at: r
                    .get::<_, String>(1)?
                    .parse()
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                commune_name: Communes::global()
                    .get(&commune)
                    .map(|c| c.name.to_string())
                    .unwrap_or_default(),
                commune,
                kind: r.get(3)?,
                youth_names: r
                    .get::<_, Option<String>>(4)?
                    .map(|s| s.split('\u{1f}').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The contacts of one young person, most recent first.
    pub fn contacts_of_youth(&self, youth_id: Uuid) -> Result<Vec<Uuid>> {
        self.unlocked()?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT contact_id FROM contact_youth WHERE youth_id = ?1 ORDER BY occurred_at DESC",
        )?;
        let rows = stmt.query_map([youth_id.as_bytes().as_slice()], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.extend(Uuid::from_slice(&r?).ok());
        }
        Ok(out)
    }
}

const CANDIDATE_COLUMNS: &str =
    "y.id, y.first_folded, y.alias_folded, y.last_folded, y.birth_year, y.home_commune";

/// Just what scoring needs, so thousands of candidates stay cheap.
struct Candidate {
    id: Uuid,
    names: Vec<String>,
    birth_year: Option<i32>,
    home_commune: Option<String>,
}

fn candidate(row: &Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        id: Uuid::from_slice(&row.get::<_, Vec<u8>>(0)?).unwrap_or_default(),
        names: (1..=3)
            .filter_map(|i| row.get::<_, Option<String>>(i).ok().flatten())
            .collect(),
        birth_year: row.get(4)?,
        home_commune: row.get(5)?,
    })
}

struct Score {
    score: f64,
    same_commune: bool,
    birth_year_close: bool,
}

fn score(
    probe: &DuplicateProbe,
    probe_names: &[String],
    keys: &[String],
    c: &Candidate,
) -> Option<Score> {
    let mut name = 0.0f64;
    for p in probe_names {
        for n in &c.names {
            let mut s = strsim::jaro_winkler(p, n);
            if keys
                .iter()
                .any(|k| words(n).next().map(phonetic).as_ref() == Some(k))
            {
                s = s.max(0.9);
            }
            name = name.max(s);
        }
    }
    let same_commune = probe.home_commune.is_some() && probe.home_commune == c.home_commune;
    let birth_year_close =
        matches!((probe.birth_year, c.birth_year), (Some(a), Some(b)) if (a - b).abs() <= 1);
    let plausible = name >= 0.85 || (name >= 0.7 && (same_commune || birth_year_close));
    if !plausible {
        return None;
    }
    let score = 0.6 * name
        + 0.2 * f64::from(u8::from(same_commune))
        + 0.2 * f64::from(u8::from(birth_year_close));
    Some(Score {
        score,
        same_commune,
        birth_year_close,
    })
}
