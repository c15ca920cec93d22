//! The tablet's indicators come from its derived tables; the server's from its documents
//! (`IndicatorInput::add`, as the server's youth summaries do). Over the same records
//! both must give the same facts, hence the same figures, whatever the records hold.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone};
use proptest::prelude::*;
use repere_core::Store;
use repere_core::indicators::{
    self, Dimension, Granularity, IndicatorInput, IndicatorQuery, IndicatorReport, Reached, Targets,
};
use repere_core::records::{
    Action, ActionKind, ActionStatus, AgeBand, Contact, ContactKind, IdentityLevel, Outcome,
    OutcomeKind, ProfileFlag, RecordKind, ReferralSource, Service, Sex, Situation, Youth,
    YouthStatus,
};
use uuid::Uuid;

use common::{KEY, open_at, open_store, team};

const COMMUNES: [&str; 5] = ["55502", "55545", "55004", "08105", "55029"];
const ACTION_KINDS: [ActionKind; 6] = [
    ActionKind::Chantier5Days,
    ActionKind::ChantierMonth,
    ActionKind::Sport,
    ActionKind::Culture,
    ActionKind::Appointment,
    ActionKind::Other,
];
const STATUSES: [ActionStatus; 4] = [
    ActionStatus::Planned,
    ActionStatus::Done,
    ActionStatus::NoShow,
    ActionStatus::Cancelled,
];
const OUTCOMES: [OutcomeKind; 9] = [
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
const FLAGS: [ProfileFlag; 4] = [
    ProfileFlag::CareLeaver,
    ProfileFlag::SchoolDropout,
    ProfileFlag::Disability,
    ProfileFlag::JusticeMeasure,
];
const DIMENSIONS: [Dimension; 7] = [
    Dimension::Team,
    Dimension::Commune,
    Dimension::Epci,
    Dimension::ReferralSource,
    Dimension::AgeBand,
    Dimension::Sex,
    Dimension::ProfileFlag,
];

fn day(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

/// A day of 2025 or 2026 before the test clock's (2026-11-20).
fn nth_day(n: u16) -> NaiveDate {
    day("2025-01-01") + Duration::days(i64::from(n % 680))
}

/// A valid young person from a handful of choices.
fn youth(team_id: Uuid, c: [u8; 10]) -> Youth {
    let first_contact_date = nth_day(u16::from(c[0]) * 3);
    let age = 16 + i32::from(c[1] % 14);
    let (birth_date, birth_year, age_band) = match c[2] % 4 {
        0 => (
            Some(first_contact_date - Duration::days(i64::from(age) * 366 + 10)),
            None,
            None,
        ),
        1 => (None, Some(first_contact_date.year() - age), None),
        // 30 in the year of the first contact: 29 before the birthday.
        2 => (None, Some(first_contact_date.year() - 30), None),
        _ => (None, None, AgeBand::of_age(age)),
    };
    Youth {
        team_id,
        identity_level: IdentityLevel::AliasOnly,
        alias: Some("Kéké".into()),
        first_name: None,
        last_name: None,
        birth_date,
        birth_year,
        age_band,
        sex: [None, Some(Sex::Female), Some(Sex::Male), Some(Sex::Other)][usize::from(c[3] % 4)],
        phone: None,
        email: None,
        other_contact: None,
        home_commune: (!c[4].is_multiple_of(3))
            .then(|| COMMUNES[usize::from(c[4]) % 5].to_string()),
        referral_source: [
            ReferralSource::TownHall,
            ReferralSource::Shop,
            ReferralSource::Peer,
            ReferralSource::Outreach,
        ][usize::from(c[5] % 4)],
        referral_detail: None,
        referral_date: None,
        profile_flags: FLAGS
            .into_iter()
            .enumerate()
            .filter(|(i, _)| c[6] & (1 << i) != 0)
            .map(|(_, f)| f)
            .collect(),
        situation: [
            Situation::Neet,
            Situation::Neet,
            Situation::InTraining,
            Situation::Unknown,
            Situation::InEmployment,
        ][usize::from(c[7] % 5)],
        followed_by: c[8].is_multiple_of(4).then_some(Service::FranceTravail),
        first_contact_date,
        notice_given_on: None,
        status: YouthStatus::Identified,
    }
}

/// A visit at `minute` of the day in one of several offsets, some late enough to be on
/// another day in UTC, with a fraction of a second.
fn contact(team_id: Uuid, youth_ids: &[Uuid], n: u16, minute: u16, offset: u8) -> Contact {
    let offset_hours = [-10, -5, 0, 1, 2, 12, 14][usize::from(offset % 7)];
    let tz = FixedOffset::east_opt(offset_hours * 3600).expect("offset");
    let local = nth_day(n)
        .and_hms_nano_opt(
            u32::from(minute % 1440) / 60,
            u32::from(minute % 60),
            u32::from(n % 60),
            u32::from(minute) * 15_259 % 1_000_000_000,
        )
        .expect("time");
    let occurred_at: DateTime<FixedOffset> =
        tz.from_local_datetime(&local).single().expect("instant");
    Contact {
        team_id,
        youth_ids: youth_ids.iter().copied().collect(),
        tour_id: None,
        member_ids: [Uuid::from_u128(11)].into(),
        occurred_at,
        commune: COMMUNES[usize::from(minute) % 5].into(),
        kind: ContactKind::Street,
        notes: String::new(),
        needs: BTreeSet::new(),
        next_step: None,
        next_step_due: None,
    }
}

/// The server's way: every record read whole from its document.
fn from_documents(store: &Store) -> IndicatorInput {
    let mut input = IndicatorInput::default();
    for (_, id) in store.ids().expect("ids") {
        input.add(id, store.record(id).expect("record"));
    }
    input
}

/// In one order, lists included, to compare two sides.
fn sorted(mut reached: Vec<Reached>) -> Vec<Reached> {
    reached.sort_by_key(|f| f.youth.id);
    for f in &mut reached {
        f.chantiers.sort();
        f.outcomes.sort_by_key(|(d, k)| (*d, format!("{k:?}")));
    }
    reached
}

fn queries() -> Vec<IndicatorQuery> {
    let mut out = Vec::new();
    for granularity in [Granularity::Month, Granularity::Quarter, Granularity::Whole] {
        for dimension in std::iter::once(None).chain(DIMENSIONS.map(Some)) {
            for teams in [None, Some([team()].into()), Some(BTreeSet::new())] {
                out.push(IndicatorQuery {
                    from: day("2024-12-15"),
                    to: day("2026-11-20"),
                    granularity,
                    teams,
                    dimension,
                });
            }
        }
    }
    out
}

fn reports(reached: &[Reached]) -> Vec<IndicatorReport> {
    queries()
        .iter()
        .map(|q| indicators::count(reached, q).expect("valid query"))
        .collect()
}

/// The tablet's figures equal the documents' figures, query by query, and its facts too.
fn assert_same_as_documents(store: &Store) {
    let tablet = store.indicator_facts().expect("tablet facts");
    let input = from_documents(store);
    let documents = indicators::reached(&input);
    assert_eq!(sorted(tablet.clone()), sorted(documents.clone()));
    assert_eq!(reports(&tablet), reports(&documents));
    // The server's entry point, from the documents, gives the same figures.
    let server: Vec<IndicatorReport> = queries()
        .iter()
        .map(|q| indicators::compute(&input, q).expect("valid query"))
        .collect();
    assert_eq!(reports(&tablet), server);
    let targets = Targets {
        identified: Some(40),
        mobilised: Some(20),
        from: day("2025-01-01"),
        to: day("2026-12-31"),
    };
    assert_eq!(
        indicators::progress_of(&tablet, None, &targets, day("2026-06-30")),
        indicators::progress(&input, None, &targets, day("2026-06-30"))
    );
}

#[derive(Debug, Clone)]
struct Dataset {
    youth: Vec<[u8; 10]>,
    /// (youth picks, day, minute, offset); a pick past the young people is an erased one.
    contacts: Vec<(Vec<u8>, u16, u16, u8)>,
    actions: Vec<(u8, u8, u8, u16)>,
    outcomes: Vec<(u8, u8, u16)>,
}

fn dataset() -> impl Strategy<Value = Dataset> {
    (
        prop::collection::vec(any::<[u8; 10]>(), 1..10),
        prop::collection::vec(
            (
                prop::collection::vec(any::<u8>(), 1..4),
                any::<u16>(),
                any::<u16>(),
                any::<u8>(),
            ),
            0..16,
        ),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>()), 0..10),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u16>()), 0..8),
    )
        .prop_map(|(youth, contacts, actions, outcomes)| Dataset {
            youth,
            contacts,
            actions,
            outcomes,
        })
}

/// Stores the dataset; a second team's young people share the tablet (after a move).
fn fill(store: &mut Store, d: &Dataset) {
    let other_team = Uuid::from_u128(0xB);
    let mut ids = Vec::new();
    for (i, c) in d.youth.iter().enumerate() {
        let t = if i % 4 == 3 { other_team } else { team() };
        ids.push(store.create(&youth(t, *c)).expect("youth"));
    }
    let erased = Uuid::from_u128(0xDEAD);
    let pick = |p: u8| {
        ids.get(usize::from(p) % (ids.len() + 1))
            .copied()
            .unwrap_or(erased)
    };
    for (picks, n, minute, offset) in &d.contacts {
        let who: Vec<Uuid> = picks.iter().map(|p| pick(*p)).collect();
        store
            .create(&contact(team(), &who, *n, *minute, *offset))
            .expect("contact");
    }
    for (p, kind, status, n) in &d.actions {
        store
            .create(&Action {
                team_id: team(),
                youth_id: pick(*p),
                kind: ACTION_KINDS[usize::from(*kind) % 6],
                start_date: nth_day(*n),
                end_date: None,
                status: STATUSES[usize::from(*status) % 4],
                detail: None,
            })
            .expect("action");
    }
    for (p, kind, n) in &d.outcomes {
        store
            .create(&Outcome {
                team_id: team(),
                youth_id: pick(*p),
                kind: OUTCOMES[usize::from(*kind) % 9],
                date: nth_day(*n),
                organisation: None,
            })
            .expect("outcome");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn tablet_figures_equal_the_documents_figures(d in dataset()) {
        let mut t = open_store(3);
        fill(&mut t.store, &d);
        assert_same_as_documents(&t.store);
    }

    /// The young people's joined facts follow edits that move a visit, an action or an
    /// outcome to someone else, change its day, kind or status, or re-index the person,
    /// and a rebuild gives the same.
    #[test]
    fn joined_facts_follow_every_edit_as_a_rebuild_would(
        d in dataset(),
        edits in prop::collection::vec((any::<u8>(), any::<u8>(), any::<[u8; 10]>()), 1..16),
    ) {
        let mut t = open_store(4);
        fill(&mut t.store, &d);
        let ids = t.store.ids().expect("ids");
        let of = |kind| ids.iter().filter(|(k, _)| *k == kind).map(|(_, id)| *id).collect::<Vec<_>>();
        let (people, visits, actions, outcomes) = (
            of(RecordKind::Youth),
            of(RecordKind::Contact),
            of(RecordKind::Action),
            of(RecordKind::Outcome),
        );
        let pick = |p: u8| people[usize::from(p) % people.len()];
        for (what, which, c) in edits {
            let nth = |list: &[Uuid]| list.get(usize::from(which) % list.len().max(1)).copied();
            let n = u16::from_le_bytes([c[1], c[2]]);
            match what % 4 {
                0 => if let Some(id) = nth(&visits) {
                    let who: Vec<Uuid> = c[3..3 + 1 + usize::from(c[0] % 3)].iter().map(|p| pick(*p)).collect();
                    let moved = contact(team(), &who, n, u16::from_le_bytes([c[7], c[8]]), c[9]);
                    t.store.edit::<Contact>(id, move |v| *v = moved).expect("visit");
                },
                1 => if let Some(id) = nth(&actions) {
                    t.store.edit::<Action>(id, |a| {
                        a.youth_id = pick(c[0]);
                        a.kind = ACTION_KINDS[usize::from(c[3]) % 6];
                        a.status = STATUSES[usize::from(c[4]) % 4];
                        a.start_date = nth_day(n);
                    }).expect("action");
                },
                2 => if let Some(id) = nth(&outcomes) {
                    t.store.edit::<Outcome>(id, |o| {
                        o.youth_id = pick(c[0]);
                        o.kind = OUTCOMES[usize::from(c[3]) % 9];
                        o.date = nth_day(n);
                    }).expect("outcome");
                },
                _ => if let Some(id) = nth(&people) {
                    let team_id = t.store.youth(id).expect("youth").team_id;
                    t.store.edit::<Youth>(id, |y| *y = youth(team_id, c)).expect("youth");
                },
            }
        }
        assert_same_as_documents(&t.store);
        let kept = sorted(t.store.indicator_facts().expect("facts"));
        t.store.rebuild_index().expect("rebuild");
        prop_assert_eq!(sorted(t.store.indicator_facts().expect("facts")), kept);
    }
}

/// Named cases, with the figures the definitions give.
#[test]
fn tablet_counts_the_edge_cases_as_defined() {
    let mut t = open_store(5);
    let s = &mut t.store;
    let base = |first: &str| {
        let mut y = youth(team(), [0; 10]);
        y.first_contact_date = day(first);
        y.birth_date = None;
        y.birth_year = None;
        y.age_band = Some(AgeBand::From18To21);
        y.situation = Situation::Neet;
        y.followed_by = None;
        y.home_commune = None;
        y
    };
    let at = |s: &str| -> DateTime<FixedOffset> { s.parse().expect("instant") };
    let visit = |youth: &[Uuid], when: &str, commune: &str| Contact {
        occurred_at: at(when),
        commune: commune.into(),
        ..contact(team(), youth, 0, 0, 0)
    };
    // Met at 23:30 in UTC−5 on 28 February (1 March in UTC), recorded as met in March.
    let late = s.create(&base("2025-03-10")).expect("youth");
    s.create(&visit(&[late], "2025-02-28T23:30:00-05:00", "55545"))
        .expect("contact");
    // A group visit: both count, in the visit's commune.
    let (a, b) = (
        s.create(&base("2025-04-02")).expect("youth"),
        s.create(&base("2025-04-02")).expect("youth"),
    );
    s.create(&visit(&[a, b], "2025-04-02T10:00:00+02:00", "55502"))
        .expect("contact");
    // Helped (followed by France Travail), on a chantier: not mobilised, still a participant.
    let mut followed = base("2025-04-03");
    followed.followed_by = Some(Service::FranceTravail);
    let helped = s.create(&followed).expect("youth");
    s.create(&visit(&[helped], "2025-04-03T10:00:00+02:00", "55502"))
        .expect("contact");
    // Erased young person: their visit, action and outcome count nowhere.
    let erased = Uuid::from_u128(0xDEAD);
    s.create(&visit(&[erased], "2025-04-04T10:00:00+02:00", "55502"))
        .expect("contact");
    let action = |youth_id, kind, start: &str, status| Action {
        team_id: team(),
        youth_id,
        kind,
        start_date: day(start),
        end_date: None,
        status,
        detail: None,
    };
    for a in [
        action(a, ActionKind::Sport, "2025-04-10", ActionStatus::Planned),
        action(a, ActionKind::Sport, "2025-04-11", ActionStatus::NoShow),
        action(
            b,
            ActionKind::Chantier5Days,
            "2025-05-05",
            ActionStatus::Done,
        ),
        action(
            b,
            ActionKind::ChantierMonth,
            "2025-05-20",
            ActionStatus::Done,
        ),
        action(
            helped,
            ActionKind::Chantier5Days,
            "2025-05-06",
            ActionStatus::Done,
        ),
        action(erased, ActionKind::Sport, "2025-05-07", ActionStatus::Done),
    ] {
        s.create(&a).expect("action");
    }
    let outcome = |youth_id, kind, date: &str| Outcome {
        team_id: team(),
        youth_id,
        kind,
        date: day(date),
        organisation: None,
    };
    for o in [
        outcome(b, OutcomeKind::Job, "2025-06-01"),
        outcome(b, OutcomeKind::Training, "2025-06-02"),
        outcome(erased, OutcomeKind::Job, "2025-06-03"),
    ] {
        s.create(&o).expect("outcome");
    }
    assert_same_as_documents(s);

    let q = |granularity, dimension| IndicatorQuery {
        from: day("2025-01-01"),
        to: day("2025-12-31"),
        granularity,
        teams: None,
        dimension,
    };
    let report = s.indicators(&q(Granularity::Month, None)).expect("report");
    let month = |label: &str| {
        report
            .rows
            .iter()
            .find(|r| r.period.label == label && r.key.is_none())
            .map(|r| r.figures)
            .expect("total row")
    };
    assert_eq!(month("2025-02").identified, 1);
    assert_eq!(month("2025-03").identified, 0);
    let april = month("2025-04");
    assert_eq!((april.identified, april.helped, april.mobilised), (2, 1, 0));
    let may = month("2025-05");
    assert_eq!((may.mobilised, may.chantier_participants), (1, 2));
    let june = month("2025-06");
    assert_eq!((june.youth_with_outcome, june.outcomes.total()), (1, 2));

    let by_commune = s
        .indicators(&q(Granularity::Whole, Some(Dimension::Commune)))
        .expect("report");
    let reached = |key: &str| {
        by_commune
            .rows
            .iter()
            .find(|r| r.key.as_deref() == Some(key))
            .map_or(0, |r| r.figures.identified + r.figures.helped)
    };
    assert_eq!((reached("55545"), reached("55502")), (1, 3));
}

/// An existing store opened by this version gains the indicator columns and is rebuilt
/// once, at opening, so its figures are whole from the first query.
#[test]
fn opening_a_store_from_before_the_indicator_columns_rebuilds_them() {
    let mut t = open_store(9);
    let d = Dataset {
        youth: (0..8u8)
            .map(|i| [i.wrapping_mul(37), i, i, i, i + 1, i, i * 5, i, i + 1, 0])
            .collect(),
        contacts: (0..12u16)
            .map(|i| (vec![i as u8, (i * 3) as u8], i * 41, i * 97, i as u8))
            .collect(),
        actions: (0..6u8).map(|i| (i, i, 1, u16::from(i) * 50)).collect(),
        outcomes: (0..4u8).map(|i| (i, i, u16::from(i) * 70)).collect(),
    };
    fill(&mut t.store, &d);
    let before = reports(&t.store.indicator_facts().expect("facts"));
    assert!(
        before
            .iter()
            .any(|r| r.rows.iter().any(|row| row.figures.identified > 0))
    );
    let unsynced = t.store.unsynced().expect("unsynced");
    let visits = t.store.recent_visits(0, 100).expect("visits");
    let todo = t.store.todo(0, 100).expect("todo");
    drop(t.store);

    // Back to schema 5, before the indicator columns (6), the visits' times (7), the
    // young people's joined facts (8), the visits by day (9), the lent files (10) and the
    // documents keyed by their write counter (11). The visits' tables are left empty: the
    // rebuild fills them.
    let conn = rusqlite::Connection::open(t.dir.path().join("store.db")).expect("raw");
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .expect("key");
    conn.execute_batch(
        "DROP TABLE lent_records;
         DROP TABLE lent_files;
         DROP TABLE access_requests;
         CREATE TABLE old_documents (
             id BLOB PRIMARY KEY, kind TEXT NOT NULL, team_id BLOB NOT NULL,
             doc BLOB NOT NULL, sync_state INTEGER NOT NULL, reject_reason TEXT,
             synced_heads BLOB, local_seq INTEGER NOT NULL, problems TEXT, conflicts TEXT,
             conflicts_at TEXT
         ) WITHOUT ROWID;
         INSERT INTO old_documents SELECT id, kind, team_id, doc, sync_state, reject_reason,
             synced_heads, local_seq * 3, problems, conflicts, conflicts_at FROM documents;
         DROP TABLE documents;
         ALTER TABLE old_documents RENAME TO documents;
         CREATE INDEX documents_unsynced ON documents(sync_state) WHERE sync_state <> 2;
         CREATE INDEX documents_by_seq ON documents(local_seq);
         CREATE INDEX documents_in_conflict ON documents(local_seq) WHERE conflicts IS NOT NULL;
         CREATE INDEX documents_with_problems ON documents(local_seq) WHERE problems IS NOT NULL;
         CREATE INDEX documents_rejected ON documents(local_seq) WHERE sync_state = 3;
         DROP TABLE contact_youth;
         DROP TABLE contact_index;
         CREATE TABLE contact_index (
             id BLOB PRIMARY KEY, team_id BLOB NOT NULL, occurred_at TEXT NOT NULL,
             commune TEXT NOT NULL, kind TEXT NOT NULL, tour_id BLOB
         ) WITHOUT ROWID;
         CREATE INDEX contact_by_time ON contact_index(occurred_at DESC, id);
         CREATE INDEX contact_by_tour ON contact_index(tour_id) WHERE tour_id IS NOT NULL;
         CREATE TABLE contact_youth (
             contact_id BLOB NOT NULL, youth_id BLOB NOT NULL,
             PRIMARY KEY (contact_id, youth_id)
         ) WITHOUT ROWID;
         CREATE INDEX contact_youth_by_youth ON contact_youth(youth_id);
         CREATE TABLE next_step_index (
             contact_id BLOB PRIMARY KEY, next_step TEXT NOT NULL, due TEXT NOT NULL,
             occurred_at TEXT NOT NULL, open_due TEXT
         ) WITHOUT ROWID;
         CREATE INDEX next_step_open ON next_step_index(open_due, contact_id)
             WHERE open_due IS NOT NULL;
         ALTER TABLE youth_index DROP COLUMN invisible;
         ALTER TABLE youth_index DROP COLUMN sex;
         ALTER TABLE youth_index DROP COLUMN referral_source;
         ALTER TABLE youth_index DROP COLUMN profile_flags;
         ALTER TABLE youth_index DROP COLUMN first_visit_day;
         ALTER TABLE youth_index DROP COLUMN first_visit_secs;
         ALTER TABLE youth_index DROP COLUMN first_visit_nanos;
         ALTER TABLE youth_index DROP COLUMN first_visit_id;
         ALTER TABLE youth_index DROP COLUMN first_visit_commune;
         ALTER TABLE youth_index DROP COLUMN first_done;
         ALTER TABLE youth_index DROP COLUMN chantier_days;
         ALTER TABLE youth_index DROP COLUMN outcomes;
         PRAGMA user_version = 5;",
    )
    .expect("older schema");
    drop(conn);

    let store = open_at(&t.dir, &KEY);
    assert_eq!(reports(&store.indicator_facts().expect("facts")), before);
    assert_same_as_documents(&store);
    assert_eq!(store.unsynced().expect("unsynced"), unsynced);
    assert_eq!(store.recent_visits(0, 100).expect("visits"), visits);
    assert_eq!(store.todo(0, 100).expect("todo"), todo);
    // Rebuilt once: the flag is gone, a second opening does not rebuild.
    drop(store);
    let conn = rusqlite::Connection::open(t.dir.path().join("store.db")).expect("raw");
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .expect("key");
    let pending: i64 = conn
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'reindex_pending'",
            [],
            |r| r.get(0),
        )
        .expect("meta");
    assert_eq!(pending, 0);
}
