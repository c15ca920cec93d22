//! Funder indicators, computed the same way on the tablet and on the server.
//! Definitions: docs/indicators.md.
//!
//! Pure functions of the facts given: no SQL, no I/O, no clock (the caller passes `today`).
//! Both sides build those facts from their records with the same `*Facts::of` functions:
//! the server from its documents ([`IndicatorInput::add`]), the tablet from its derived
//! tables, which its records' `write_derived` fill from the same fields (no document is
//! parsed to count). The device and the server therefore agree whenever they hold the same
//! records.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::communes::Communes;
use crate::records::{
    Action, ActionStatus, AgeBand, AnyRecord, Contact, Outcome, OutcomeKind, ProfileFlag,
    ReferralSource, Sex, Youth, youth_age_on,
};

/// What counting reads of the records, one entry per record. Erased records are simply
/// absent; tours and review tasks are not needed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndicatorInput {
    pub youth: Vec<YouthFacts>,
    pub contacts: Vec<ContactFacts>,
    pub actions: Vec<ActionFacts>,
    pub outcomes: Vec<OutcomeFacts>,
}

impl IndicatorInput {
    /// Adds a record's facts; kinds that do not count (tours, review tasks) are ignored.
    pub fn add(&mut self, id: Uuid, record: AnyRecord) {
        match record {
            AnyRecord::Youth(y) => self.youth.push(YouthFacts::of(id, &y)),
            AnyRecord::Contact(c) => self.contacts.push(ContactFacts::of(id, c)),
            AnyRecord::Action(a) => self.actions.push(ActionFacts::of(&a)),
            AnyRecord::Outcome(o) => self.outcomes.push(OutcomeFacts::of(&o)),
            AnyRecord::Tour(_) | AnyRecord::ReviewTask(_) => {}
        }
    }
}

/// What counting reads of a young person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YouthFacts {
    pub id: Uuid,
    /// The current team: every figure of the young person counts for it.
    pub team_id: Uuid,
    pub first_contact_date: NaiveDate,
    /// `Youth::is_invisible()`.
    pub invisible: bool,
    /// Trimmed; `None` when absent or blank.
    pub home_commune: Option<String>,
    pub age: AgeBasis,
    pub sex: Option<Sex>,
    pub referral_source: ReferralSource,
    pub profile_flags: BTreeSet<ProfileFlag>,
}

impl YouthFacts {
    pub fn of(id: Uuid, y: &Youth) -> YouthFacts {
        YouthFacts {
            id,
            team_id: y.team_id,
            first_contact_date: y.first_contact_date,
            invisible: y.is_invisible(),
            home_commune: home_commune(y.home_commune.as_deref()),
            age: AgeBasis::of(y),
            sex: y.sex,
            referral_source: y.referral_source,
            profile_flags: y.profile_flags.clone(),
        }
    }
}

/// A home commune as counted: trimmed, and absent when blank.
pub fn home_commune(commune: Option<&str>) -> Option<String> {
    commune
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
}

/// What gives a young person's age band: the first present of the birth date, the birth
/// year and the recorded band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgeBasis {
    BirthDate(NaiveDate),
    BirthYear(i32),
    Band(AgeBand),
    Unknown,
}

impl AgeBasis {
    pub fn of(y: &Youth) -> AgeBasis {
        AgeBasis::from_fields(y.birth_date, y.birth_year, y.age_band)
    }

    pub fn from_fields(
        birth_date: Option<NaiveDate>,
        birth_year: Option<i32>,
        band: Option<AgeBand>,
    ) -> AgeBasis {
        match (birth_date, birth_year, band) {
            (Some(d), _, _) => AgeBasis::BirthDate(d),
            (None, Some(y), _) => AgeBasis::BirthYear(y),
            (None, None, Some(b)) => AgeBasis::Band(b),
            (None, None, None) => AgeBasis::Unknown,
        }
    }

    /// The age band on `day`.
    pub fn band_on(self, day: NaiveDate) -> Option<AgeBand> {
        match self {
            AgeBasis::BirthDate(birth) => AgeBand::of_age(youth_age_on(birth, day)),
            AgeBasis::BirthYear(year) => {
                // The age reached during that calendar year; validation accepts a
                // difference of 30 (29 before the birthday), so 30 reads as 29.
                let reached = day.year().checked_sub(year)?;
                AgeBand::of_age(reached).or_else(|| AgeBand::of_age(reached.checked_sub(1)?))
            }
            AgeBasis::Band(b) => Some(b),
            AgeBasis::Unknown => None,
        }
    }
}

/// What counting reads of a visit.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactFacts {
    pub id: Uuid,
    /// `occurred_at`'s date as entered on the device, in its own UTC offset.
    pub day: NaiveDate,
    /// The instant, to order two visits of one day.
    pub at: DateTime<Utc>,
    pub commune: String,
    /// Sorted.
    pub youth_ids: Vec<Uuid>,
}

impl ContactFacts {
    pub fn of(id: Uuid, c: Contact) -> ContactFacts {
        ContactFacts {
            id,
            day: c.occurred_at.date_naive(),
            at: c.occurred_at.to_utc(),
            commune: c.commune,
            youth_ids: c.youth_ids.into_iter().collect(),
        }
    }
}

/// What counting reads of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActionFacts {
    pub youth_id: Uuid,
    pub start_date: NaiveDate,
    /// Status `Done`: only those count.
    pub done: bool,
    pub chantier: bool,
}

impl ActionFacts {
    pub fn of(a: &Action) -> ActionFacts {
        ActionFacts {
            youth_id: a.youth_id,
            start_date: a.start_date,
            done: a.status == ActionStatus::Done,
            chantier: a.kind.is_chantier(),
        }
    }
}

/// What counting reads of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeFacts {
    pub youth_id: Uuid,
    pub kind: OutcomeKind,
    pub date: NaiveDate,
}

impl OutcomeFacts {
    pub fn of(o: &Outcome) -> OutcomeFacts {
        OutcomeFacts {
            youth_id: o.youth_id,
            kind: o.kind,
            date: o.date,
        }
    }
}

/// How the query's date range is cut into periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Month,
    Quarter,
    /// The whole range as one period.
    Whole,
}

/// What the rows of a period are broken down by, besides the total row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Team,
    Commune,
    /// Intercommunality, by SIREN.
    Epci,
    ReferralSource,
    AgeBand,
    Sex,
    /// Multi-valued: a young person counts once in each of their flags' rows.
    ProfileFlag,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Team => "team",
            Dimension::Commune => "commune",
            Dimension::Epci => "epci",
            Dimension::ReferralSource => "referral_source",
            Dimension::AgeBand => "age_band",
            Dimension::Sex => "sex",
            Dimension::ProfileFlag => "profile_flag",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorQuery {
    /// First day counted.
    pub from: NaiveDate,
    /// Last day counted (inclusive).
    pub to: NaiveDate,
    pub granularity: Granularity,
    /// Only young people whose current team is one of these; `None`: every team in the input.
    #[serde(default)]
    pub teams: Option<BTreeSet<Uuid>>,
    /// `None`: total rows only.
    #[serde(default)]
    pub dimension: Option<Dimension>,
}

/// A century of months: beyond that a query is a mistake, not a report.
pub const MAX_PERIODS: usize = 1200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the range ends ({to}) before it starts ({from})")]
    EndBeforeStart { from: NaiveDate, to: NaiveDate },
    #[error("the range holds more than {max} periods")]
    TooManyPeriods { max: usize },
}

/// One month, quarter or the whole range, clipped to the query's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// "2025-01", "2025-Q1", or "2025-01-01..2025-12-31" for the whole range.
    pub label: String,
    pub start: NaiveDate,
    /// Inclusive.
    pub end: NaiveDate,
}

/// Outcome records by kind; field names are `OutcomeKind`'s serde names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub mission_locale_registration: u32,
    pub france_travail_registration: u32,
    pub cap_emploi_registration: u32,
    pub job: u32,
    pub training: u32,
    pub return_to_school: u32,
    pub housing: u32,
    pub health_care: u32,
    pub other: u32,
}

impl OutcomeCounts {
    pub fn get_mut(&mut self, kind: OutcomeKind) -> &mut u32 {
        match kind {
            OutcomeKind::MissionLocaleRegistration => &mut self.mission_locale_registration,
            OutcomeKind::FranceTravailRegistration => &mut self.france_travail_registration,
            OutcomeKind::CapEmploiRegistration => &mut self.cap_emploi_registration,
            OutcomeKind::Job => &mut self.job,
            OutcomeKind::Training => &mut self.training,
            OutcomeKind::ReturnToSchool => &mut self.return_to_school,
            OutcomeKind::Housing => &mut self.housing,
            OutcomeKind::HealthCare => &mut self.health_care,
            // A kind added by a newer version counts as "other" until this one knows it.
            OutcomeKind::Other | OutcomeKind::FromNewerVersion => &mut self.other,
        }
    }

    pub fn get(&self, kind: OutcomeKind) -> u32 {
        let mut copy = *self;
        *copy.get_mut(kind)
    }

    /// Outcome records of every kind (saturating, like every count here).
    pub fn total(&self) -> u32 {
        self.by_kind()
            .into_iter()
            .fold(0u32, |sum, (_, n)| sum.saturating_add(n))
    }

    /// Every kind with its count, in a fixed order (the CSV's).
    pub fn by_kind(&self) -> [(&'static str, u32); 9] {
        // Destructured without `..`: a new field will not compile until it is listed here.
        let Self {
            mission_locale_registration,
            france_travail_registration,
            cap_emploi_registration,
            job,
            training,
            return_to_school,
            housing,
            health_care,
            other,
        } = *self;
        [
            ("mission_locale_registration", mission_locale_registration),
            ("france_travail_registration", france_travail_registration),
            ("cap_emploi_registration", cap_emploi_registration),
            ("job", job),
            ("training", training),
            ("return_to_school", return_to_school),
            ("housing", housing),
            ("health_care", health_care),
            ("other", other),
        ]
    }
}

/// The figures of one period × dimension value. Definitions: docs/indicators.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Invisibles, in the period of their first contact.
    pub identified: u32,
    /// "Coups de main": young people not invisible at first contact, in that period.
    pub helped: u32,
    /// Identified invisibles, in the period of their first Done action.
    pub mobilised: u32,
    /// Distinct young people with a Done chantier starting in the period.
    pub chantier_participants: u32,
    /// Distinct young people with at least one outcome dated in the period.
    pub youth_with_outcome: u32,
    /// Outcome records dated in the period.
    pub outcomes: OutcomeCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorRow {
    pub period: Period,
    /// The dimension value (team id, INSEE code, EPCI SIREN, enum id, "unknown", "none");
    /// `None` for the period's total row.
    pub key: Option<String>,
    /// French label of the value ("Stenay", "Mairie", "Total").
    pub label: String,
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorReport {
    pub query: IndicatorQuery,
    /// By period, then total row first, then by key. Every period has a total row; a key
    /// has a row only in the periods where one of its figures is not zero.
    pub rows: Vec<IndicatorRow>,
}

/// The convention's targets over its own window (e.g. 250 identified, 125 mobilised in 2 years).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub identified: Option<u32>,
    pub mobilised: Option<u32>,
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetProgress {
    pub today: NaiveDate,
    /// Days in the targets' window, and those of them up to and including `today`.
    pub days_total: i64,
    pub days_elapsed: i64,
    pub identified: Option<FigureProgress>,
    pub mobilised: Option<FigureProgress>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FigureProgress {
    pub target: u32,
    /// Counted from the window's start to `today` (or its end, if earlier).
    pub achieved: u32,
    /// achieved / target, in percent, one decimal; a target of 0 is met (100).
    pub percent: f64,
    /// floor(target × days_elapsed / days_total): where a steady pace would be today.
    pub expected_by_now: u32,
    pub on_track: bool,
}

/// The figures of `query` over `input`.
pub fn compute(
    input: &IndicatorInput,
    query: &IndicatorQuery,
) -> Result<IndicatorReport, QueryError> {
    count(&reached(input), query)
}

/// The figures of `query` over young people whose facts are already joined.
pub fn count(reached: &[Reached], query: &IndicatorQuery) -> Result<IndicatorReport, QueryError> {
    let periods = periods(query.from, query.to, query.granularity)?;
    // Dimension values are numbered as first met (cheap cell keys), and sorted by key at
    // the end; the first label met for a key is its label.
    let mut cells: HashMap<(usize, Option<usize>), Figures> = (0..periods.len())
        .map(|p| ((p, None), Figures::default()))
        .collect();
    let mut numbers: HashMap<String, usize> = HashMap::new();
    let mut values: Vec<(String, String)> = Vec::new();
    let at = |day: NaiveDate| period_index(&periods, day);

    for f in in_teams(reached, query.teams.as_ref()) {
        let entry = f.entry();
        let mut keys = vec![None];
        for (key, label) in query
            .dimension
            .map(|d| dimension_keys(d, f, entry))
            .unwrap_or_default()
        {
            let n = match numbers.entry(key) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    values.push((e.key().clone(), label));
                    *e.insert(values.len() - 1)
                }
            };
            keys.push(Some(n));
        }
        let mut add = |period: Option<usize>, figure: &dyn Fn(&mut Figures) -> &mut u32| {
            if let Some(p) = period {
                for key in &keys {
                    bump(figure(cells.entry((p, *key)).or_default()));
                }
            }
        };
        let invisible = f.youth.invisible;
        if invisible {
            add(at(entry), &|c| &mut c.identified);
            add(f.first_done.and_then(at), &|c| &mut c.mobilised);
        } else {
            add(at(entry), &|c| &mut c.helped);
        }
        // Distinct young people per period: collect the periods first.
        let chantier_periods: BTreeSet<usize> = f.chantiers.iter().filter_map(|d| at(*d)).collect();
        for p in chantier_periods {
            add(Some(p), &|c| &mut c.chantier_participants);
        }
        let mut outcome_periods = BTreeSet::new();
        for (day, kind) in &f.outcomes {
            let p = at(*day);
            add(p, &|c| c.outcomes.get_mut(*kind));
            outcome_periods.extend(p);
        }
        for p in outcome_periods {
            add(Some(p), &|c| &mut c.youth_with_outcome);
        }
    }

    let value = |n: Option<usize>| n.and_then(|n| values.get(n));
    let mut cells: Vec<_> = cells.into_iter().collect();
    cells.sort_by(|((p, a), _), ((q, b), _)| {
        (p, value(*a).map(|v| &v.0)).cmp(&(q, value(*b).map(|v| &v.0)))
    });
    let rows = cells
        .into_iter()
        .filter_map(|((p, key), figures)| {
            let (key, label) = match value(key) {
                None => (None, "Total".to_string()),
                Some((k, label)) => (Some(k.clone()), label.clone()),
            };
            let period = periods.get(p)?.clone();
            Some(IndicatorRow {
                period,
                key,
                label,
                figures,
            })
        })
        .collect();
    Ok(IndicatorReport {
        query: query.clone(),
        rows,
    })
}

/// Progress towards `targets` on `today`, for the young people of `teams` (`None`: all).
pub fn progress(
    input: &IndicatorInput,
    teams: Option<&BTreeSet<Uuid>>,
    targets: &Targets,
    today: NaiveDate,
) -> TargetProgress {
    progress_of(&reached(input), teams, targets, today)
}

/// [`progress`] over young people whose facts are already joined.
pub fn progress_of(
    reached: &[Reached],
    teams: Option<&BTreeSet<Uuid>>,
    targets: &Targets,
    today: NaiveDate,
) -> TargetProgress {
    let days_total = (targets.to.signed_duration_since(targets.from).num_days() + 1).max(0);
    let days_elapsed =
        (today.signed_duration_since(targets.from).num_days() + 1).clamp(0, days_total);
    let last = today.min(targets.to);
    let in_window = |d: NaiveDate| targets.from <= d && d <= last;
    let (mut identified, mut mobilised) = (0u32, 0u32);
    for f in in_teams(reached, teams).filter(|f| f.youth.invisible) {
        if in_window(f.entry()) {
            bump(&mut identified);
        }
        if f.first_done.is_some_and(in_window) {
            bump(&mut mobilised);
        }
    }
    let figure = |target: u32, achieved: u32| {
        // i64 holds u32::MAX × 262_143 years of days with room to spare.
        let expected = match days_total {
            0 => 0,
            total => i64::from(target) * days_elapsed / total,
        };
        let expected_by_now = u32::try_from(expected).unwrap_or(target);
        let percent = match target {
            0 => 100.0,
            t => (f64::from(achieved) * 1000.0 / f64::from(t)).round() / 10.0,
        };
        FigureProgress {
            target,
            achieved,
            percent,
            expected_by_now,
            on_track: achieved >= expected_by_now,
        }
    };
    TargetProgress {
        today,
        days_total,
        days_elapsed,
        identified: targets.identified.map(|t| figure(t, identified)),
        mobilised: targets.mobilised.map(|t| figure(t, mobilised)),
    }
}

/// Column ids of [`to_csv`], in order.
pub fn csv_columns() -> Vec<String> {
    let fixed = [
        "period",
        "period_start",
        "period_end",
        "dimension",
        "key",
        "label",
        "identified",
        "helped",
        "mobilised",
        "chantier_participants",
        "youth_with_outcome",
    ];
    let outcomes = OutcomeCounts::default()
        .by_kind()
        .map(|(id, _)| format!("outcome_{id}"));
    fixed
        .into_iter()
        .map(String::from)
        .chain(outcomes)
        .collect()
}

/// The report as CSV (RFC 4180: comma-separated, CRLF line ends, UTF-8), one header row
/// of stable English ids, then one row per period × dimension value.
pub fn to_csv(report: &IndicatorReport) -> String {
    let mut out = String::new();
    push_csv_line(&mut out, &csv_columns());
    let dimension = report.query.dimension.map_or("", Dimension::as_str);
    for row in &report.rows {
        let f = &row.figures;
        let mut fields = vec![
            row.period.label.clone(),
            row.period.start.to_string(),
            row.period.end.to_string(),
            if row.key.is_some() {
                dimension
            } else {
                "total"
            }
            .to_string(),
            row.key.clone().unwrap_or_default(),
            row.label.clone(),
        ];
        fields.extend(
            [
                f.identified,
                f.helped,
                f.mobilised,
                f.chantier_participants,
                f.youth_with_outcome,
            ]
            .map(|n| n.to_string()),
        );
        fields.extend(f.outcomes.by_kind().map(|(_, n)| n.to_string()));
        push_csv_line(&mut out, &fields);
    }
    out
}

/// Appends one RFC 4180 line (quoted when needed, CRLF end).
pub fn push_csv_line(out: &mut String, fields: &[String]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

/// Counts never overflow into a panic, whatever the input.
fn bump(n: &mut u32) {
    *n = n.saturating_add(1);
}

/// What counting needs to know about one reached young person (one with a visit): their
/// own facts joined with those of their records. The server joins them from its
/// documents ([`reached`]); the tablet keeps them joined in each young person's index row
/// as records are written, and reads them back as they are; the server keeps them as JSON
/// in a derived row per young person (`youth_summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reached {
    pub youth: YouthFacts,
    /// The day of the earliest visit: by day as entered, then instant, then id.
    pub first_visit_day: NaiveDate,
    /// The commune of that visit.
    pub first_visit_commune: String,
    /// The earliest start of a Done action.
    pub first_done: Option<NaiveDate>,
    /// The starts of Done chantiers, in any order.
    pub chantiers: Vec<NaiveDate>,
    /// The outcomes' dates and kinds, in any order.
    pub outcomes: Vec<(NaiveDate, OutcomeKind)>,
}

impl Reached {
    /// The first contact day: the earliest of `first_contact_date` and the first visit.
    pub fn entry(&self) -> NaiveDate {
        self.first_visit_day.min(self.youth.first_contact_date)
    }
}

fn in_teams<'a>(
    reached: &'a [Reached],
    teams: Option<&'a BTreeSet<Uuid>>,
) -> impl Iterator<Item = &'a Reached> {
    reached
        .iter()
        .filter(move |f| teams.is_none_or(|t| t.contains(&f.youth.team_id)))
}

/// The young people with at least one visit, with what their records say.
pub fn reached(input: &IndicatorInput) -> Vec<Reached> {
    type FirstVisit<'a> = (NaiveDate, DateTime<Utc>, Uuid, &'a str);
    let mut index: HashMap<Uuid, usize> = HashMap::with_capacity(input.youth.len());
    let mut youth: Vec<(&YouthFacts, Option<FirstVisit<'_>>)> = Vec::new();
    for y in &input.youth {
        // Ids are unique in a store; should one repeat, the first record wins.
        if let Entry::Vacant(e) = index.entry(y.id) {
            e.insert(youth.len());
            youth.push((y, None));
        }
    }
    for c in &input.contacts {
        // The day as entered on the device (its own offset), then instant and id to break ties.
        let candidate = (c.day, c.at, c.id, c.commune.as_str());
        for youth_id in &c.youth_ids {
            if let Some((_, first)) = index.get(youth_id).and_then(|&i| youth.get_mut(i))
                && first.is_none_or(|current| candidate < current)
            {
                *first = Some(candidate);
            }
        }
    }
    let mut position: HashMap<Uuid, usize> = HashMap::with_capacity(youth.len());
    let mut reached: Vec<Reached> = Vec::with_capacity(youth.len());
    for (y, first) in youth {
        let Some((day, _, _, commune)) = first else {
            continue;
        };
        position.insert(y.id, reached.len());
        reached.push(Reached {
            youth: y.clone(),
            first_visit_day: day,
            first_visit_commune: commune.to_string(),
            first_done: None,
            chantiers: Vec::new(),
            outcomes: Vec::new(),
        });
    }
    for a in input.actions.iter().filter(|a| a.done) {
        let Some(f) = position.get(&a.youth_id).and_then(|&i| reached.get_mut(i)) else {
            continue;
        };
        f.first_done = Some(f.first_done.map_or(a.start_date, |d| d.min(a.start_date)));
        if a.chantier {
            f.chantiers.push(a.start_date);
        }
    }
    for o in &input.outcomes {
        if let Some(f) = position.get(&o.youth_id).and_then(|&i| reached.get_mut(i)) {
            f.outcomes.push((o.date, o.kind));
        }
    }
    reached
}

const UNKNOWN: (&str, &str) = ("unknown", "Non renseigné");

/// The (key, French label) pairs a young person counts under: one, or one per profile flag.
fn dimension_keys(dimension: Dimension, f: &Reached, entry: NaiveDate) -> Vec<(String, String)> {
    let pair = |(key, label): (&str, &str)| (key.to_string(), label.to_string());
    let communes = Communes::global();
    let commune = f
        .youth
        .home_commune
        .as_deref()
        .unwrap_or(&f.first_visit_commune);
    let one = match dimension {
        Dimension::Team => {
            let id = f.youth.team_id.to_string();
            (id.clone(), id)
        }
        Dimension::Commune if commune.is_empty() => pair(UNKNOWN),
        Dimension::Commune => {
            let name = communes.get(commune).map_or(commune, |c| c.name);
            (commune.to_string(), name.to_string())
        }
        Dimension::Epci => match communes.get(commune).and_then(|c| c.epci_code) {
            Some(code) => pair((code, communes.epci_name(code).unwrap_or(code))),
            None => pair(UNKNOWN),
        },
        Dimension::ReferralSource => pair(referral_id(f.youth.referral_source)),
        Dimension::AgeBand => pair(f.youth.age.band_on(entry).map_or(UNKNOWN, age_band_id)),
        Dimension::Sex => pair(f.youth.sex.map_or(UNKNOWN, sex_id)),
        Dimension::ProfileFlag if f.youth.profile_flags.is_empty() => pair(("none", "Aucun")),
        Dimension::ProfileFlag => {
            return f
                .youth
                .profile_flags
                .iter()
                .map(|&p| pair(flag_id(p)))
                .collect();
        }
    };
    vec![one]
}

/// Age band on `day`: from the birth date, else the birth year, else the recorded band.
pub fn age_band_at(y: &Youth, day: NaiveDate) -> Option<AgeBand> {
    AgeBasis::of(y).band_on(day)
}

fn referral_id(r: ReferralSource) -> (&'static str, &'static str) {
    match r {
        ReferralSource::TownHall => ("town_hall", "Mairie"),
        ReferralSource::Shop => ("shop", "Commerce"),
        ReferralSource::AssociationOrClub => ("association_or_club", "Association ou club"),
        ReferralSource::PartnerInstitution => ("partner_institution", "Institution partenaire"),
        ReferralSource::PhoneLine => ("phone_line", "Numéro unique"),
        ReferralSource::Website => ("website", "Site internet"),
        ReferralSource::SocialNetwork => ("social_network", "Réseaux sociaux"),
        ReferralSource::SelfReferral => ("self_referral", "Le jeune lui-même"),
        ReferralSource::Peer => ("peer", "Un pair"),
        ReferralSource::Outreach => ("outreach", "Aller-vers du binôme"),
        ReferralSource::Other => ("other", "Autre"),
        ReferralSource::FromNewerVersion => NEWER_VERSION,
    }
}

fn age_band_id(b: AgeBand) -> (&'static str, &'static str) {
    match b {
        AgeBand::From16To17 => ("16-17", "16-17 ans"),
        AgeBand::From18To21 => ("18-21", "18-21 ans"),
        AgeBand::From22To25 => ("22-25", "22-25 ans"),
        AgeBand::From26To29 => ("26-29", "26-29 ans"),
        AgeBand::FromNewerVersion => NEWER_VERSION,
    }
}

fn sex_id(s: Sex) -> (&'static str, &'static str) {
    match s {
        Sex::Female => ("female", "Femme"),
        Sex::Male => ("male", "Homme"),
        Sex::Other => ("other", "Autre"),
        Sex::FromNewerVersion => NEWER_VERSION,
    }
}

fn flag_id(p: ProfileFlag) -> (&'static str, &'static str) {
    match p {
        ProfileFlag::CareLeaver => ("care_leaver", "Sortant ASE / contrat jeune majeur"),
        ProfileFlag::SchoolDropout => ("school_dropout", "Décrocheur scolaire"),
        ProfileFlag::Disability => ("disability", "Handicap (MDPH / RQTH)"),
        ProfileFlag::JusticeMeasure => ("justice_measure", "Mesure de justice (PJJ / SPIP)"),
        ProfileFlag::FromNewerVersion => NEWER_VERSION,
    }
}

/// The breakdown line of a value set by a newer app version.
const NEWER_VERSION: (&str, &str) = ("newer_version", "Valeur d'une version plus récente");

/// Calendar months or quarters (or one period) covering `from..=to`, clipped to it.
fn periods(
    from: NaiveDate,
    to: NaiveDate,
    granularity: Granularity,
) -> Result<Vec<Period>, QueryError> {
    if to < from {
        return Err(QueryError::EndBeforeStart { from, to });
    }
    let mut out = Vec::new();
    let mut start = from;
    loop {
        if out.len() == MAX_PERIODS {
            return Err(QueryError::TooManyPeriods { max: MAX_PERIODS });
        }
        let (label, months) = match granularity {
            Granularity::Month => (format!("{}-{:02}", start.year(), start.month()), Some(1)),
            Granularity::Quarter => (
                format!("{}-Q{}", start.year(), start.month0() / 3 + 1),
                Some(3),
            ),
            Granularity::Whole => (format!("{from}..{to}"), None),
        };
        // The first day of the next month or quarter; None for Whole or past the calendar's end.
        let next = months.and_then(|m| {
            NaiveDate::from_ymd_opt(start.year(), start.month0() / m * m + 1, 1)?
                .checked_add_months(Months::new(m))
        });
        let end = next.and_then(|n| n.pred_opt()).map_or(to, |e| e.min(to));
        out.push(Period { label, start, end });
        match next {
            Some(n) if n <= to => start = n,
            _ => return Ok(out),
        }
    }
}

fn period_index(periods: &[Period], day: NaiveDate) -> Option<usize> {
    let i = periods.partition_point(|p| p.start <= day).checked_sub(1)?;
    periods.get(i).filter(|p| day <= p.end).map(|_| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ActionKind, ContactKind, IdentityLevel, Service, Situation, YouthStatus};

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("test date")
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    const TEAM_A: Uuid = Uuid::from_u128(0xA);
    const TEAM_B: Uuid = Uuid::from_u128(0xB);

    fn youth(team: Uuid, first_contact: &str) -> Youth {
        Youth {
            team_id: team,
            identity_level: IdentityLevel::AliasOnly,
            alias: Some("Kéké".into()),
            first_name: None,
            last_name: None,
            birth_date: None,
            birth_year: None,
            age_band: Some(AgeBand::From18To21),
            sex: None,
            phone: None,
            email: None,
            other_contact: None,
            home_commune: None,
            referral_source: ReferralSource::TownHall,
            referral_detail: None,
            referral_date: None,
            profile_flags: BTreeSet::new(),
            situation: Situation::Neet,
            followed_by: None,
            first_contact_date: day(first_contact),
            notice_given_on: None,
            status: YouthStatus::Identified,
        }
    }

    fn contact(team: Uuid, youth: &[Uuid], at: &str, commune: &str) -> Contact {
        Contact {
            team_id: team,
            youth_ids: youth.iter().copied().collect(),
            tour_id: None,
            member_ids: [id(0xFF)].into(),
            occurred_at: at.parse().expect("test instant"),
            commune: commune.into(),
            kind: ContactKind::Street,
            notes: String::new(),
            needs: BTreeSet::new(),
            next_step: None,
            next_step_due: None,
        }
    }

    fn action(youth: Uuid, kind: ActionKind, start: &str, status: ActionStatus) -> Action {
        Action {
            team_id: TEAM_A,
            youth_id: youth,
            kind,
            start_date: day(start),
            end_date: None,
            status,
            detail: None,
        }
    }

    fn outcome(youth: Uuid, kind: OutcomeKind, date: &str) -> Outcome {
        Outcome {
            team_id: TEAM_A,
            youth_id: youth,
            kind,
            date: day(date),
            organisation: None,
        }
    }

    /// Whole records, as a store or the server holds them.
    #[derive(Debug, Clone, Default)]
    struct Records {
        youth: Vec<(Uuid, Youth)>,
        contacts: Vec<(Uuid, Contact)>,
        actions: Vec<(Uuid, Action)>,
        outcomes: Vec<(Uuid, Outcome)>,
    }

    impl Records {
        fn input(&self) -> IndicatorInput {
            let mut input = IndicatorInput::default();
            for (id, y) in &self.youth {
                input.add(*id, y.clone().into());
            }
            for (id, c) in &self.contacts {
                input.add(*id, c.clone().into());
            }
            for (id, a) in &self.actions {
                input.add(*id, a.clone().into());
            }
            for (id, o) in &self.outcomes {
                input.add(*id, o.clone().into());
            }
            input
        }
    }

    /// One youth per entry, each with one contact on their first-contact day in Stenay.
    fn input_of(youth: Vec<(Uuid, Youth)>) -> Records {
        let contacts = youth
            .iter()
            .enumerate()
            .map(|(i, (yid, y))| {
                let at = format!("{}T10:00:00+01:00", y.first_contact_date);
                (
                    id(0xC000 + i as u128),
                    contact(y.team_id, &[*yid], &at, "55502"),
                )
            })
            .collect();
        Records {
            youth,
            contacts,
            ..Default::default()
        }
    }

    fn query(from: &str, to: &str, granularity: Granularity) -> IndicatorQuery {
        IndicatorQuery {
            from: day(from),
            to: day(to),
            granularity,
            teams: None,
            dimension: None,
        }
    }

    fn run(records: &Records, q: &IndicatorQuery) -> IndicatorReport {
        compute(&records.input(), q).expect("valid query")
    }

    fn cell(report: &IndicatorReport, period: &str, key: Option<&str>) -> Figures {
        report
            .rows
            .iter()
            .find(|r| r.period.label == period && r.key.as_deref() == key)
            .map(|r| r.figures)
            .unwrap_or_default()
    }

    fn totals(report: &IndicatorReport) -> Figures {
        let mut sum = Figures::default();
        for r in report.rows.iter().filter(|r| r.key.is_none()) {
            add_figures(&mut sum, &r.figures);
        }
        sum
    }

    fn add_figures(sum: &mut Figures, f: &Figures) {
        sum.identified += f.identified;
        sum.helped += f.helped;
        sum.mobilised += f.mobilised;
        sum.chantier_participants += f.chantier_participants;
        sum.youth_with_outcome += f.youth_with_outcome;
        for kind in ALL_OUTCOMES {
            *sum.outcomes.get_mut(kind) += f.outcomes.get(kind);
        }
    }

    const ALL_OUTCOMES: [OutcomeKind; 9] = [
        OutcomeKind::MissionLocaleRegistration,
        OutcomeKind::FranceTravailRegistration,
        OutcomeKind::CapEmploiRegistration,
        OutcomeKind::Job,
        OutcomeKind::Training,
        OutcomeKind::ReturnToSchool,
        OutcomeKind::Housing,
        OutcomeKind::HealthCare,
        OutcomeKind::Other,
    ];

    #[test]
    fn identified_in_one_period_mobilised_in_the_next() {
        let kevin = id(1);
        let mut input = input_of(vec![(kevin, youth(TEAM_A, "2025-01-20"))]);
        input.actions.push((
            id(10),
            action(kevin, ActionKind::Sport, "2025-02-03", ActionStatus::Done),
        ));
        let r = run(
            &input,
            &query("2025-01-01", "2025-03-31", Granularity::Month),
        );
        assert_eq!(cell(&r, "2025-01", None).identified, 1);
        assert_eq!(cell(&r, "2025-01", None).mobilised, 0);
        assert_eq!(cell(&r, "2025-02", None).identified, 0);
        assert_eq!(cell(&r, "2025-02", None).mobilised, 1);
        // Every period has its total row, empty or not.
        let labels: Vec<_> = r.rows.iter().map(|r| r.period.label.as_str()).collect();
        assert_eq!(labels, ["2025-01", "2025-02", "2025-03"]);
    }

    #[test]
    fn first_contact_is_the_earliest_of_the_field_and_the_contacts() {
        let y = id(1);
        let mut input = input_of(vec![(y, youth(TEAM_A, "2025-03-10"))]);
        // Entered on the device at 23:30 local time on Feb 28: the local day counts.
        input.contacts.push((
            id(0xC1),
            contact(TEAM_A, &[y], "2025-02-28T23:30:00-05:00", "55545"),
        ));
        let mut q = query("2025-01-01", "2025-03-31", Granularity::Month);
        q.dimension = Some(Dimension::Commune);
        let r = run(&input, &q);
        assert_eq!(cell(&r, "2025-02", None).identified, 1);
        // No home commune: the commune of the earliest contact.
        assert_eq!(cell(&r, "2025-02", Some("55545")).identified, 1);
        assert_eq!(totals(&r).identified, 1);
    }

    #[test]
    fn helped_is_counted_apart_from_identified() {
        let mut followed = youth(TEAM_A, "2025-01-05");
        followed.followed_by = Some(Service::MissionLocale);
        // Statuses are informational: counting reads the records, not this field.
        followed.status = YouthStatus::Mobilised;
        let mut in_training = youth(TEAM_A, "2025-01-06");
        in_training.situation = Situation::InTraining;
        let mut unknown = youth(TEAM_A, "2025-01-07");
        unknown.situation = Situation::Unknown;
        let mut input = input_of(vec![
            (id(1), youth(TEAM_A, "2025-01-04")),
            (id(2), followed),
            (id(3), in_training),
            (id(4), unknown),
        ]);
        // A helped young person's action is not a mobilisation, but a chantier still counts.
        input.actions.push((
            id(10),
            action(
                id(2),
                ActionKind::Chantier5Days,
                "2025-01-20",
                ActionStatus::Done,
            ),
        ));
        let f = cell(
            &run(
                &input,
                &query("2025-01-01", "2025-01-31", Granularity::Month),
            ),
            "2025-01",
            None,
        );
        assert_eq!(
            (f.identified, f.helped, f.mobilised, f.chantier_participants),
            (1, 3, 0, 1)
        );
    }

    #[test]
    fn youth_without_contact_and_erased_records_are_in_no_figure() {
        let y = id(1);
        let mut input = input_of(vec![(y, youth(TEAM_A, "2025-01-10"))]);
        input.actions.push((
            id(10),
            action(
                y,
                ActionKind::ChantierMonth,
                "2025-01-15",
                ActionStatus::Done,
            ),
        ));
        input
            .outcomes
            .push((id(20), outcome(y, OutcomeKind::Job, "2025-01-25")));
        let q = query("2025-01-01", "2025-12-31", Granularity::Whole);
        let all = totals(&run(&input, &q));
        assert_eq!(
            (
                all.identified,
                all.mobilised,
                all.chantier_participants,
                all.outcomes.job
            ),
            (1, 1, 1, 1)
        );

        let mut contact_erased = input.clone();
        contact_erased.contacts.clear();
        assert_eq!(totals(&run(&contact_erased, &q)), Figures::default());

        let mut youth_erased = input.clone();
        youth_erased.youth.clear();
        assert_eq!(totals(&run(&youth_erased, &q)), Figures::default());

        let mut outcome_erased = input;
        outcome_erased.outcomes.clear();
        let f = totals(&run(&outcome_erased, &q));
        assert_eq!(
            (f.identified, f.youth_with_outcome, f.outcomes.job),
            (1, 0, 0)
        );
    }

    #[test]
    fn moved_youth_counts_for_their_current_team() {
        let y = id(1);
        // Met and recorded by team A, then moved to team B's caseload.
        let mut input = input_of(vec![(y, youth(TEAM_B, "2025-01-10"))]);
        input.contacts[0].1.team_id = TEAM_A;
        input.actions.push((
            id(10),
            action(y, ActionKind::Sport, "2025-01-12", ActionStatus::Done),
        ));
        let mut q = query("2025-01-01", "2025-01-31", Granularity::Month);
        q.dimension = Some(Dimension::Team);
        let r = run(&input, &q);
        assert_eq!(cell(&r, "2025-01", Some(&TEAM_B.to_string())).mobilised, 1);
        assert!(
            r.rows
                .iter()
                .all(|row| row.key.as_deref() != Some(&*TEAM_A.to_string()))
        );
        q.teams = Some([TEAM_A].into());
        assert_eq!(totals(&run(&input, &q)), Figures::default());
    }

    #[test]
    fn team_filter_keeps_only_the_teams_asked() {
        let input = input_of(vec![
            (id(1), youth(TEAM_A, "2025-01-10")),
            (id(2), youth(TEAM_B, "2025-01-11")),
            (id(3), youth(TEAM_B, "2025-01-12")),
        ]);
        let mut q = query("2025-01-01", "2025-01-31", Granularity::Month);
        assert_eq!(totals(&run(&input, &q)).identified, 3);
        q.teams = Some([TEAM_B].into());
        assert_eq!(totals(&run(&input, &q)).identified, 2);
        q.teams = Some([TEAM_A, TEAM_B].into());
        assert_eq!(totals(&run(&input, &q)).identified, 3);
        q.teams = Some(BTreeSet::new());
        assert_eq!(totals(&run(&input, &q)).identified, 0);
    }

    #[test]
    fn several_done_actions_mobilise_once() {
        let y = id(1);
        let mut input = input_of(vec![(y, youth(TEAM_A, "2025-01-02"))]);
        input.actions.extend([
            (
                id(10),
                action(
                    y,
                    ActionKind::Appointment,
                    "2025-01-05",
                    ActionStatus::NoShow,
                ),
            ),
            (
                id(11),
                action(
                    y,
                    ActionKind::Appointment,
                    "2025-01-08",
                    ActionStatus::Planned,
                ),
            ),
            (
                id(12),
                action(
                    y,
                    ActionKind::Chantier5Days,
                    "2025-02-10",
                    ActionStatus::Done,
                ),
            ),
            (
                id(13),
                action(y, ActionKind::Appointment, "2025-01-20", ActionStatus::Done),
            ),
            (
                id(14),
                action(
                    y,
                    ActionKind::ChantierMonth,
                    "2025-02-20",
                    ActionStatus::Done,
                ),
            ),
            (
                id(15),
                action(
                    y,
                    ActionKind::Chantier5Days,
                    "2025-03-03",
                    ActionStatus::Cancelled,
                ),
            ),
        ]);
        let r = run(
            &input,
            &query("2025-01-01", "2025-03-31", Granularity::Month),
        );
        // The kept appointment of Jan 20 is the first mobilisation.
        assert_eq!(cell(&r, "2025-01", None).mobilised, 1);
        assert_eq!(totals(&r).mobilised, 1);
        // Two chantiers in February: one participant.
        assert_eq!(cell(&r, "2025-02", None).chantier_participants, 1);
        assert_eq!(cell(&r, "2025-03", None).chantier_participants, 0);
    }

    #[test]
    fn outcomes_count_records_by_kind_and_young_people_once() {
        let y = id(1);
        let mut input = input_of(vec![
            (y, youth(TEAM_A, "2025-01-02")),
            (id(2), youth(TEAM_A, "2025-01-03")),
        ]);
        input.outcomes.extend([
            (
                id(20),
                outcome(y, OutcomeKind::MissionLocaleRegistration, "2025-02-01"),
            ),
            (id(21), outcome(y, OutcomeKind::Training, "2025-02-15")),
            (id(22), outcome(id(2), OutcomeKind::Training, "2025-02-16")),
            (id(23), outcome(id(99), OutcomeKind::Job, "2025-02-16")), // its youth is absent
        ]);
        let f = cell(
            &run(
                &input,
                &query("2025-01-01", "2025-03-31", Granularity::Quarter),
            ),
            "2025-Q1",
            None,
        );
        assert_eq!(f.outcomes.mission_locale_registration, 1);
        assert_eq!(f.outcomes.training, 2);
        assert_eq!(f.outcomes.job, 0);
        assert_eq!(f.youth_with_outcome, 2);
    }

    #[test]
    fn age_band_from_birth_date_else_year_else_band() {
        let contact_day = day("2025-06-15");
        let mut y = youth(TEAM_A, "2025-06-15");
        y.age_band = Some(AgeBand::From26To29);
        y.birth_year = Some(2007); // 18 during 2025
        y.birth_date = Some(day("2007-06-16")); // 17 until tomorrow
        assert_eq!(age_band_at(&y, contact_day), Some(AgeBand::From16To17));
        y.birth_date = None;
        assert_eq!(age_band_at(&y, contact_day), Some(AgeBand::From18To21));
        y.birth_year = Some(1995); // 30 in 2025: 29 before the birthday
        assert_eq!(age_band_at(&y, contact_day), Some(AgeBand::From26To29));
        y.birth_year = None;
        assert_eq!(age_band_at(&y, contact_day), Some(AgeBand::From26To29));
        y.age_band = None;
        assert_eq!(age_band_at(&y, contact_day), None);
        y.birth_year = Some(i32::MIN);
        assert_eq!(age_band_at(&y, contact_day), None);

        let mut by_date = youth(TEAM_A, "2025-06-15");
        by_date.birth_date = Some(day("2000-01-01"));
        let mut q = query("2025-01-01", "2025-12-31", Granularity::Whole);
        q.dimension = Some(Dimension::AgeBand);
        let r = run(&input_of(vec![(id(1), by_date), (id(2), y)]), &q);
        let period = "2025-01-01..2025-12-31";
        assert_eq!(cell(&r, period, Some("22-25")).identified, 1);
        assert_eq!(cell(&r, period, Some("unknown")).identified, 1);
    }

    #[test]
    fn months_and_quarters_split_at_year_end() {
        let input = input_of(vec![
            (id(1), youth(TEAM_A, "2024-12-31")),
            (id(2), youth(TEAM_A, "2025-01-01")),
            (id(3), youth(TEAM_A, "2025-03-31")),
            (id(4), youth(TEAM_A, "2025-04-01")),
        ]);
        let r = run(
            &input,
            &query("2024-12-01", "2025-04-30", Granularity::Month),
        );
        assert_eq!(cell(&r, "2024-12", None).identified, 1);
        assert_eq!(cell(&r, "2025-01", None).identified, 1);
        assert_eq!(cell(&r, "2025-03", None).identified, 1);
        assert_eq!(cell(&r, "2025-04", None).identified, 1);

        // A range starting mid-quarter: the first quarter is clipped to it.
        let r = run(
            &input,
            &query("2024-11-15", "2025-04-01", Granularity::Quarter),
        );
        let periods: Vec<_> = r
            .rows
            .iter()
            .map(|r| {
                (
                    r.period.label.as_str(),
                    r.period.start.to_string(),
                    r.period.end.to_string(),
                )
            })
            .collect();
        assert_eq!(
            periods,
            [
                ("2024-Q4", "2024-11-15".into(), "2024-12-31".into()),
                ("2025-Q1", "2025-01-01".into(), "2025-03-31".into()),
                ("2025-Q2", "2025-04-01".into(), "2025-04-01".into()),
            ]
        );
        assert_eq!(cell(&r, "2024-Q4", None).identified, 1);
        assert_eq!(cell(&r, "2025-Q1", None).identified, 2);
        assert_eq!(cell(&r, "2025-Q2", None).identified, 1);

        // Outside the range: not counted.
        let r = run(
            &input,
            &query("2025-01-01", "2025-03-31", Granularity::Whole),
        );
        assert_eq!(totals(&r).identified, 2);
    }

    #[test]
    fn single_valued_breakdowns_sum_to_the_total() {
        let mut people = Vec::new();
        for n in 0..12u32 {
            let mut y = youth(
                if n % 3 == 0 { TEAM_B } else { TEAM_A },
                &format!("2025-{:02}-10", n % 6 + 1),
            );
            y.sex = [None, Some(Sex::Female), Some(Sex::Male)][n as usize % 3];
            y.home_commune = [None, Some("08105"), Some("55545"), Some("55004")][n as usize % 4]
                .map(String::from);
            y.referral_source = [ReferralSource::Shop, ReferralSource::Peer][n as usize % 2];
            y.birth_year = [None, Some(2008), Some(1999)][n as usize % 3];
            y.followed_by = (n % 5 == 0).then_some(Service::FranceTravail);
            if n % 4 == 1 {
                y.profile_flags = [ProfileFlag::CareLeaver, ProfileFlag::SchoolDropout].into();
            }
            people.push((id(u128::from(n) + 1), y));
        }
        let mut input = input_of(people);
        for n in 0..12u128 {
            input.actions.push((
                id(100 + n),
                action(
                    id(n + 1),
                    ActionKind::Chantier5Days,
                    "2025-05-20",
                    ActionStatus::Done,
                ),
            ));
            input.outcomes.push((
                id(200 + n),
                outcome(id(n + 1), ALL_OUTCOMES[n as usize % 9], "2025-06-01"),
            ));
        }
        for granularity in [Granularity::Month, Granularity::Quarter] {
            let mut q = query("2025-01-01", "2025-06-30", granularity);
            let total_rows: Vec<_> = run(&input, &q).rows;
            for dimension in [
                Dimension::Team,
                Dimension::Commune,
                Dimension::Epci,
                Dimension::ReferralSource,
                Dimension::AgeBand,
                Dimension::Sex,
            ] {
                q.dimension = Some(dimension);
                let r = run(&input, &q);
                for total in &total_rows {
                    let mut sum = Figures::default();
                    for row in r
                        .rows
                        .iter()
                        .filter(|x| x.period == total.period && x.key.is_some())
                    {
                        add_figures(&mut sum, &row.figures);
                    }
                    assert_eq!(sum, total.figures, "{dimension:?} {}", total.period.label);
                }
            }
        }
        // Profile flags: a young person with two flags counts in both rows.
        let mut q = query("2025-01-01", "2025-06-30", Granularity::Whole);
        q.dimension = Some(Dimension::ProfileFlag);
        let r = run(&input, &q);
        let p = "2025-01-01..2025-06-30";
        let reached = |f: Figures| f.identified + f.helped;
        assert_eq!(reached(cell(&r, p, None)), 12);
        assert_eq!(reached(cell(&r, p, Some("care_leaver"))), 3);
        assert_eq!(reached(cell(&r, p, Some("school_dropout"))), 3);
        assert_eq!(reached(cell(&r, p, Some("none"))), 9);
        // Aincreville (55004) and Stenay share their intercommunality.
        q.dimension = Some(Dimension::Epci);
        let r = run(&input, &q);
        let stenay = r
            .rows
            .iter()
            .find(|r| r.key.as_deref() == Some("200066132"))
            .expect("EPCI row");
        assert_eq!(stenay.label, "CC du Pays de Stenay et du Val Dunois");
        assert_eq!(reached(stenay.figures), 6);
    }

    #[test]
    fn rows_are_sorted_and_independent_of_input_order() {
        let mut people = Vec::new();
        for n in 0..6u32 {
            let mut y = youth(TEAM_A, &format!("2025-{:02}-0{}", n % 2 + 1, n + 1));
            y.home_commune = Some(["55545", "08105", "55502"][n as usize % 3].into());
            people.push((id(u128::from(n) + 1), y));
        }
        let input = input_of(people);
        let mut reversed = input.clone();
        reversed.youth.reverse();
        reversed.contacts.reverse();
        let mut q = query("2025-01-01", "2025-03-31", Granularity::Month);
        q.dimension = Some(Dimension::Commune);
        let r = run(&input, &q);
        assert_eq!(r, run(&reversed, &q));
        let order: Vec<_> = r
            .rows
            .iter()
            .map(|r| (r.period.start, r.key.clone()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
        assert_eq!(r.rows[0].label, "Total");
        assert_eq!(r.rows[1].label, "Charleville-Mézières");
    }

    #[test]
    fn targets_pace_over_two_years() {
        let mut people = Vec::new();
        for n in 0..40u32 {
            // 30 identified in 2025, 10 in 2026; half of those of 2025 mobilised.
            let first = if n < 30 {
                format!("2025-{:02}-15", n % 12 + 1)
            } else {
                "2026-02-01".into()
            };
            people.push((id(u128::from(n) + 1), youth(TEAM_A, &first)));
        }
        let mut input = input_of(people);
        for n in 0..15u128 {
            input.actions.push((
                id(100 + n),
                action(
                    id(n + 1),
                    ActionKind::Culture,
                    "2025-12-20",
                    ActionStatus::Done,
                ),
            ));
        }
        input.youth.push((id(999), youth(TEAM_B, "2025-03-01")));
        input.contacts.push((
            id(0xC999),
            contact(TEAM_B, &[id(999)], "2025-03-01T10:00:00+01:00", "55502"),
        ));
        let targets = Targets {
            identified: Some(250),
            mobilised: Some(125),
            from: day("2025-01-01"),
            to: day("2026-12-31"),
        };
        let teams = BTreeSet::from([TEAM_A]);
        // Day 365 of 730, before the 2026 contacts: half the targets expected.
        let p = progress(&input.input(), Some(&teams), &targets, day("2025-12-31"));
        assert_eq!((p.days_total, p.days_elapsed), (730, 365));
        let identified = p.identified.expect("target set");
        assert_eq!((identified.achieved, identified.expected_by_now), (30, 125));
        assert_eq!(identified.percent, 12.0);
        assert!(!identified.on_track);
        let mobilised = p.mobilised.expect("target set");
        assert_eq!((mobilised.achieved, mobilised.expected_by_now), (15, 62));

        // Before the window: nothing expected, nothing achieved. After it: everything.
        let before = progress(&input.input(), Some(&teams), &targets, day("2024-06-01"));
        assert_eq!(before.days_elapsed, 0);
        assert_eq!(
            before
                .identified
                .map(|f| (f.achieved, f.expected_by_now, f.on_track)),
            Some((0, 0, true))
        );
        let after = progress(&input.input(), None, &targets, day("2030-01-01"));
        assert_eq!(after.days_elapsed, 730);
        assert_eq!(
            after.identified.map(|f| (f.achieved, f.expected_by_now)),
            Some((41, 250))
        );
        assert_eq!(after.identified.map(|f| f.percent), Some(16.4));

        let odd = Targets {
            identified: Some(0),
            mobilised: None,
            from: day("2026-01-01"),
            to: day("2025-01-01"),
        };
        let p = progress(&input.input(), None, &odd, day("2025-06-01"));
        assert_eq!(p.days_total, 0);
        assert_eq!(p.identified.map(|f| f.percent), Some(100.0));
        assert!(p.mobilised.is_none());
    }

    #[test]
    fn bad_queries_are_errors_not_panics() {
        let input = input_of(vec![(id(1), youth(TEAM_A, "2025-01-10"))]);
        let backwards = query("2025-02-01", "2025-01-01", Granularity::Month);
        assert!(matches!(
            compute(&input.input(), &backwards),
            Err(QueryError::EndBeforeStart { .. })
        ));
        let huge = IndicatorQuery {
            from: NaiveDate::MIN,
            to: NaiveDate::MAX,
            ..backwards.clone()
        };
        assert_eq!(
            compute(&input.input(), &huge),
            Err(QueryError::TooManyPeriods { max: MAX_PERIODS })
        );
        // The last representable days, month by month: the calendar's end is not a panic.
        let edge = IndicatorQuery {
            from: NaiveDate::MAX,
            to: NaiveDate::MAX,
            ..backwards.clone()
        };
        assert_eq!(run(&input, &edge).rows.len(), 1);
        let all = IndicatorQuery {
            from: NaiveDate::MIN,
            to: NaiveDate::MAX,
            granularity: Granularity::Whole,
            ..backwards
        };
        assert_eq!(totals(&run(&input, &all)).identified, 1);
    }

    #[test]
    fn ids_are_the_serde_names() {
        let serde_name = |v: serde_json::Value| v.as_str().map(String::from);
        for kind in ALL_OUTCOMES {
            let mut counts = OutcomeCounts::default();
            *counts.get_mut(kind) = 7;
            let (id, _) = counts
                .by_kind()
                .into_iter()
                .find(|(_, n)| *n == 7)
                .expect("one slot");
            assert_eq!(serde_name(serde_json::json!(kind)).as_deref(), Some(id));
        }
        for d in [
            Dimension::Team,
            Dimension::Commune,
            Dimension::Epci,
            Dimension::ReferralSource,
            Dimension::AgeBand,
            Dimension::Sex,
            Dimension::ProfileFlag,
        ] {
            assert_eq!(
                serde_name(serde_json::json!(d)).as_deref(),
                Some(d.as_str())
            );
        }
        for r in [
            ReferralSource::TownHall,
            ReferralSource::Shop,
            ReferralSource::AssociationOrClub,
            ReferralSource::PartnerInstitution,
            ReferralSource::PhoneLine,
            ReferralSource::Website,
            ReferralSource::SocialNetwork,
            ReferralSource::SelfReferral,
            ReferralSource::Peer,
            ReferralSource::Outreach,
            ReferralSource::Other,
        ] {
            assert_eq!(
                serde_name(serde_json::json!(r)).as_deref(),
                Some(referral_id(r).0)
            );
        }
        for b in [
            AgeBand::From16To17,
            AgeBand::From18To21,
            AgeBand::From22To25,
            AgeBand::From26To29,
        ] {
            assert_eq!(
                serde_name(serde_json::json!(b)).as_deref(),
                Some(age_band_id(b).0)
            );
        }
        for s in [Sex::Female, Sex::Male, Sex::Other] {
            assert_eq!(
                serde_name(serde_json::json!(s)).as_deref(),
                Some(sex_id(s).0)
            );
        }
        for p in [
            ProfileFlag::CareLeaver,
            ProfileFlag::SchoolDropout,
            ProfileFlag::Disability,
            ProfileFlag::JusticeMeasure,
        ] {
            assert_eq!(
                serde_name(serde_json::json!(p)).as_deref(),
                Some(flag_id(p).0)
            );
        }
    }

    #[test]
    fn csv_parses_back() {
        let y = id(1);
        let mut input = input_of(vec![
            (y, youth(TEAM_A, "2025-01-10")),
            (id(2), youth(TEAM_A, "2025-02-10")),
        ]);
        input
            .outcomes
            .push((id(20), outcome(y, OutcomeKind::Housing, "2025-02-11")));
        let mut q = query("2025-01-01", "2025-02-28", Granularity::Month);
        q.dimension = Some(Dimension::Commune);
        let report = run(&input, &q);
        let csv = to_csv(&report);
        assert!(csv.ends_with("\r\n"));
        let lines: Vec<Vec<&str>> = csv
            .trim_end()
            .split("\r\n")
            .map(|l| l.split(',').collect())
            .collect();
        let header = &lines[0];
        assert_eq!(
            header.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            csv_columns()
        );
        assert_eq!(lines.len(), 1 + report.rows.len());
        assert!(lines.iter().all(|l| l.len() == header.len()));
        let column = |name: &str| header.iter().position(|h| *h == name).expect("column");
        let feb_stenay = lines
            .iter()
            .find(|l| l[column("period")] == "2025-02" && l[column("key")] == "55502")
            .expect("row");
        assert_eq!(feb_stenay[column("dimension")], "commune");
        assert_eq!(feb_stenay[column("label")], "Stenay");
        assert_eq!(feb_stenay[column("period_end")], "2025-02-28");
        assert_eq!(feb_stenay[column("identified")], "1");
        assert_eq!(feb_stenay[column("outcome_housing")], "1");
        let totals: Vec<_> = lines
            .iter()
            .filter(|l| l[column("dimension")] == "total")
            .collect();
        assert_eq!(totals.len(), 2);
        assert!(
            totals
                .iter()
                .all(|l| l[column("key")].is_empty() && l[column("label")] == "Total")
        );
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let mut out = String::new();
        let fields = [
            "CC de Vitry, Champagne et Der",
            "dit \"Kéké\"",
            "deux\nlignes",
            "simple",
        ];
        push_csv_line(&mut out, &fields.map(String::from));
        assert_eq!(
            out,
            "\"CC de Vitry, Champagne et Der\",\"dit \"\"Kéké\"\"\",\"deux\nlignes\",simple\r\n"
        );
    }
}
