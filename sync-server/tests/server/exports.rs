//! The young people's export over real loopback sockets: the pseudonymised file does not
//! re-identify (no profile flag unless asked for and journaled, the first contact by month,
//! small communes generalised to their intercommunality, 64-bit pseudonyms under the server
//! key), the named one keeps what it needs, and both files say what they are.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{Datelike, Duration, NaiveDate, Utc};
use repere_core::records::{AgeBand, ProfileFlag, Youth};
use repere_server::coord::Workspace;
use repere_server::coord::reports::{self, PSEUDONYM_KEY};
use repere_server::storage::AuditEntry;
use repere_server::{Hub, HubError};
use uuid::Uuid;

use crate::accounts::enable_second_factor;
use crate::common::{Env, Tablet, TestClock, env, server_key};
use crate::coord::{Browser, PASSWORD, coordinator, parse_csv, server};

const LOGIN: &str = "camille@ml.test";
const FLAG_IDS: [&str; 4] = [
    "care_leaver",
    "school_dropout",
    "disability",
    "justice_measure",
];

/// A young person living in `commune`, first met on `first_contact` (the day of their one
/// visit too), with these flags; synced later.
fn youth_in(
    tablet: &mut Tablet,
    commune: &str,
    first_contact: NaiveDate,
    flags: &[ProfileFlag],
) -> Uuid {
    let mut youth: Youth = tablet.demo.youth();
    youth.home_commune = Some(commune.to_string());
    youth.profile_flags = flags.iter().copied().collect();
    // Aged 20 on the day, whatever the demo drew.
    youth.first_contact_date = first_contact;
    youth.referral_date = Some(first_contact);
    youth.notice_given_on = Some(first_contact);
    youth.birth_date = youth
        .birth_date
        .map(|_| first_contact - Duration::days(20 * 365 + 30));
    youth.birth_year = youth.birth_year.map(|_| first_contact.year() - 20);
    youth.age_band = youth.age_band.map(|_| AgeBand::From18To21);
    let id = tablet.store.create(&youth).expect("youth");
    let mut contact = tablet.demo.contact(&[id]);
    contact.occurred_at = first_contact
        .and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_utc()
        .fixed_offset();
    contact.next_step_due = None;
    tablet.store.create(&contact).expect("contact");
    id
}

/// The rows of a CSV export by column name, keyed by pseudonym.
fn by_pseudonym(body: &str) -> (Vec<String>, HashMap<String, HashMap<String, String>>) {
    let rows = parse_csv(body);
    let header = rows[0].clone();
    assert!(rows.iter().all(|r| r.len() == header.len()), "{body}");
    let lines = rows[1..]
        .iter()
        .map(|r| {
            let line: HashMap<String, String> =
                header.iter().cloned().zip(r.iter().cloned()).collect();
            (line["pseudonym"].clone(), line)
        })
        .collect();
    (header, lines)
}

/// The organisation's journal, oldest first.
fn journal(env: &Env) -> Vec<AuditEntry> {
    let (mut entries, _) = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.audit_entries(env.org.id, None, 0, 100_000)?))
        .expect("journal");
    entries.reverse();
    entries
}

fn stored_pseudonym_key(env: &Env) -> Option<Vec<u8>> {
    env.hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.server_secret(PSEUDONYM_KEY)?))
        .expect("secret")
}

#[test]
fn small_communes_are_generalised_to_their_intercommunality_in_the_pseudonymised_export() {
    let env = env();
    coordinator(&env, LOGIN);
    let mut tablet = env.tablet(&env.team_a, "communes");
    let day = Utc::now().date_naive() - Duration::days(30);
    let mut placed: Vec<(Uuid, &str)> = Vec::new();
    // Stenay: 5, shown. Verdun 3 and Belleville-sur-Meuse 2: both CA du Grand Verdun, 5
    // together. Charleville-Mézières 5, shown; Sedan 1, in the same agglomeration (6 in
    // all) but alone once generalised: no place at all.
    for (commune, n) in [
        ("55502", 5),
        ("55545", 3),
        ("55043", 2),
        ("08105", 5),
        ("08409", 1),
    ] {
        for _ in 0..n {
            placed.push((youth_in(&mut tablet, commune, day, &[]), commune));
        }
    }
    tablet.sync_ok();
    let ws = Workspace::new(env.hub.clone());
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(LOGIN, PASSWORD);

    let export = browser.get("/exports/jeunes.csv");
    assert_eq!(export.status, 200);
    let (_, lines) = by_pseudonym(&export.body);
    assert_eq!(lines.len(), placed.len());
    for (id, commune) in &placed {
        let line = &lines[&ws.pseudonym_of(*id).expect("pseudonym")];
        let shown = |c: &str| line[c].as_str();
        let expected: [&str; 4] = match *commune {
            "55502" => [
                "55502",
                "Stenay",
                "200066132",
                "CC du Pays de Stenay et du Val Dunois",
            ],
            "08105" => [
                "08105",
                "Charleville-Mézières",
                "200041630",
                "CA Ardenne Métropole",
            ],
            "55545" | "55043" => ["", "", "200049187", "CA du Grand Verdun"],
            _ => ["", "", "", ""],
        };
        assert_eq!(
            [
                shown("commune"),
                shown("commune_name"),
                shown("epci"),
                shown("epci_name")
            ],
            expected,
            "{commune}"
        );
    }
    // No small commune anywhere in the file, not even by name.
    for hidden in ["55545", ",Verdun,", "55043", "Belleville", "08409", "Sedan"] {
        assert!(!export.body.contains(hidden), "{hidden} in the export");
    }
    // Every shown commune and every intercommunality standing alone holds 5 or more.
    let mut cells: HashMap<(String, String), usize> = HashMap::new();
    for line in lines.values() {
        *cells
            .entry((line["commune"].clone(), line["epci"].clone()))
            .or_default() += 1;
    }
    for ((commune, epci), n) in &cells {
        if !(commune.is_empty() && epci.is_empty()) {
            assert!(*n >= reports::MIN_CELL, "{commune}/{epci}: {n}");
        }
    }

    // The named export keeps every commune.
    enable_second_factor(&env, &mut browser, &token);
    let named = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(named.status, 200);
    let (_, lines) = by_pseudonym(&named.body);
    for (id, commune) in &placed {
        let line = &lines[&ws.pseudonym_of(*id).expect("pseudonym")];
        assert_eq!(line["id"], id.to_string());
        assert_eq!(&line["commune"], commune);
        assert!(!line["epci"].is_empty());
    }
}

#[test]
fn profile_flags_leave_the_export_unless_asked_for_and_the_asking_is_journaled() {
    let env = env();
    coordinator(&env, LOGIN);
    let mut tablet = env.tablet(&env.team_a, "flags");
    let day = Utc::now().date_naive() - Duration::days(10);
    let flagged = youth_in(
        &mut tablet,
        "55502",
        day,
        &[ProfileFlag::Disability, ProfileFlag::JusticeMeasure],
    );
    let leaver = youth_in(&mut tablet, "55502", day, &[ProfileFlag::CareLeaver]);
    let plain = youth_in(&mut tablet, "55502", day, &[]);
    tablet.sync_ok();
    let ws = Workspace::new(env.hub.clone());
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(LOGIN, PASSWORD);

    let page = browser.get("/exports");
    assert!(page.body.contains(r#"data-testid="export-youth-flags""#));
    assert!(
        page.body
            .contains("Inclure les indicateurs de profil (données sensibles)")
    );
    assert!(
        page.body
            .contains("la colonne profile_flags n'apparaît que si")
    );

    let without_flags = |body: &str| {
        let (header, _) = by_pseudonym(body);
        assert!(!header.iter().any(|c| c == "profile_flags"), "{header:?}");
        for flag in FLAG_IDS {
            assert!(!body.contains(flag), "{flag} in {body}");
        }
    };
    let get = browser.get("/exports/jeunes.csv");
    without_flags(&get.body);
    // A link cannot ask for them: only the form.
    let linked = browser.get("/exports/jeunes.csv?indicateurs_profil=oui");
    assert_eq!(linked.body, get.body);
    let unticked = browser.post("/exports/jeunes.csv", &[("csrf", &token)]);
    assert_eq!(unticked.body, get.body);
    assert_eq!(
        browser
            .post("/exports/jeunes.csv", &[("indicateurs_profil", "oui")])
            .status,
        403,
        "not without the form's CSRF token"
    );

    let asked = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("indicateurs_profil", "oui")],
    );
    assert_eq!(asked.status, 200);
    let (header, lines) = by_pseudonym(&asked.body);
    let mut expected: Vec<String> = reports::YOUTH_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(header, expected, "every column, in order, when asked");
    let flags_of =
        |id: Uuid| lines[&ws.pseudonym_of(id).expect("pseudonym")]["profile_flags"].clone();
    assert_eq!(flags_of(flagged), "disability;justice_measure");
    assert_eq!(flags_of(leaver), "care_leaver");
    assert_eq!(flags_of(plain), "");
    // Otherwise the same columns, without that one.
    expected.retain(|c| c != "profile_flags");
    assert_eq!(by_pseudonym(&get.body).0, expected);

    // The named export follows the same rule.
    enable_second_factor(&env, &mut browser, &token);
    let named = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(named.status, 200);
    without_flags(&named.body);
    let named_flags = browser.post(
        "/exports/jeunes.csv",
        &[
            ("csrf", &token),
            ("avec_noms", "oui"),
            ("indicateurs_profil", "oui"),
        ],
    );
    let (header, lines) = by_pseudonym(&named_flags.body);
    assert!(header.iter().any(|c| c == "profile_flags"));
    let line = &lines[&ws.pseudonym_of(flagged).expect("pseudonym")];
    assert_eq!(line["profile_flags"], "disability;justice_measure");

    // The journal tells the exports with flags apart, and names no flag.
    let exports: Vec<(String, bool)> = journal(&env)
        .into_iter()
        .filter(|e| e.action.starts_with("export_youth"))
        .map(|e| {
            for flag in FLAG_IDS {
                assert!(!e.detail.contains(flag), "{}", e.detail);
            }
            (e.action, e.detail.contains("avec indicateurs de profil"))
        })
        .collect();
    let pseudonymised = "export_youth_pseudonymised".to_string();
    let named_action = "export_youth_named".to_string();
    assert_eq!(
        exports,
        [
            (pseudonymised.clone(), false),
            (pseudonymised.clone(), false),
            (pseudonymised.clone(), false),
            (pseudonymised, true),
            (named_action.clone(), false),
            (named_action, true),
        ]
    );
    let page = browser.get("/journal");
    assert!(
        page.body
            .contains("avec indicateurs de profil (données sensibles)")
    );
}

#[test]
fn the_first_contact_is_given_by_month_without_names_and_by_day_with_them() {
    let env = env();
    coordinator(&env, LOGIN);
    let mut tablet = env.tablet(&env.team_a, "dates");
    let today = Utc::now().date_naive();
    let days: Vec<NaiveDate> = [40, 100, 250, 400]
        .iter()
        .map(|d| today - Duration::days(*d))
        .collect();
    let ids: Vec<Uuid> = days
        .iter()
        .map(|d| youth_in(&mut tablet, "55502", *d, &[]))
        .collect();
    tablet.sync_ok();
    let ws = Workspace::new(env.hub.clone());
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(LOGIN, PASSWORD);

    let export = browser.get("/exports/jeunes.csv");
    let (_, lines) = by_pseudonym(&export.body);
    for (id, day) in ids.iter().zip(&days) {
        let line = &lines[&ws.pseudonym_of(*id).expect("pseudonym")];
        assert_eq!(line["first_contact_date"], day.format("%Y-%m").to_string());
        assert!(
            !export.body.contains(&day.to_string()),
            "no day in the file"
        );
        // The age band is still that of the day itself.
        assert_eq!(line["age_band"], "18-21");
    }
    enable_second_factor(&env, &mut browser, &token);
    let named = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    let (_, lines) = by_pseudonym(&named.body);
    for (id, day) in ids.iter().zip(&days) {
        let line = &lines[&ws.pseudonym_of(*id).expect("pseudonym")];
        assert_eq!(line["first_contact_date"], day.to_string());
    }
}

/// The test environment with the server key given, as `serve` runs.
fn keyed_env() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let (storage, database) = crate::common::test_storage(dir.path());
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let hub = Arc::new(Hub::with_clock(storage, clock.clone()).with_server_key(&server_key()));
    let org = hub.create_organisation("Mission Locale test").expect("org");
    let team_a = hub.create_team(org.id, "Binôme A").expect("team a");
    let team_b = hub.create_team(org.id, "Binôme B").expect("team b");
    Env {
        dir,
        hub,
        clock,
        org,
        team_a,
        team_b,
        database,
    }
}

#[test]
fn pseudonyms_are_64_bits_of_an_hmac_under_a_key_kept_apart_from_the_data() {
    let is_pseudonym = |p: &str| {
        p.len() == 18 && p.starts_with("J-") && p[2..].chars().all(|c| c.is_ascii_hexdigit())
    };
    let day = Utc::now().date_naive() - Duration::days(5);
    let mut pseudonyms: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (name, env) in [("keyed", keyed_env()), ("demo", env())] {
        coordinator(&env, LOGIN);
        let mut tablet = env.tablet(&env.team_a, "keys");
        let ids: Vec<Uuid> = (0..6)
            .map(|_| youth_in(&mut tablet, "55502", day, &[]))
            .collect();
        tablet.sync_ok();
        let server = server(&env);
        let mut browser = Browser::new(&server);
        browser.signed_in(LOGIN, PASSWORD);
        let (_, lines) = by_pseudonym(&browser.get("/exports/jeunes.csv").body);
        assert!(lines.keys().all(|p| is_pseudonym(p)), "{:?}", lines.keys());
        let stored = stored_pseudonym_key(&env);
        if name == "keyed" {
            // Derived from the key file: nothing in the database, and anyone with the key
            // (and only them) can recompute a pseudonym.
            assert!(stored.is_none(), "no pseudonym key in the database");
            let key = server_key().pseudonym_key();
            for id in &ids {
                assert!(lines.contains_key(&reports::pseudonym(&key, *id)));
            }
        } else {
            // Without a key (demo): made once and kept in the database.
            let key = stored.expect("the demo's key in the database");
            for id in &ids {
                assert!(lines.contains_key(&reports::pseudonym(&key, *id)));
            }
        }
        pseudonyms.insert(name, lines.into_keys().collect());
    }
    assert!(pseudonyms["keyed"].is_disjoint(&pseudonyms["demo"]));
}

#[test]
fn export_files_are_named_as_personal_data_and_the_page_says_how_to_keep_them() {
    let env = env();
    coordinator(&env, LOGIN);
    let mut tablet = env.tablet(&env.team_a, "names");
    youth_in(&mut tablet, "55502", Utc::now().date_naive(), &[]);
    tablet.sync_ok();
    let today = Workspace::new(env.hub.clone()).today();
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(LOGIN, PASSWORD);

    let page = browser.get("/exports");
    assert!(
        page.body
            .contains(r#"data-testid="export-youth-personal-data""#)
    );
    for sentence in [
        "Données personnelles",
        "même pseudonymisé, n'est pas anonyme",
        "Conservez-le dans un espace protégé",
        "supprimez-le après usage",
    ] {
        let escaped = sentence.replace('\'', "&#39;");
        assert!(
            page.body.contains(sentence) || page.body.contains(&escaped),
            "{sentence}"
        );
    }
    let disposition = |p: &crate::coord::Page| {
        p.headers
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .expect("a file name")
    };
    let plain = browser.get("/exports/jeunes.csv");
    assert_eq!(
        disposition(&plain),
        format!("attachment; filename=\"donnees-personnelles-pseudonymisees-jeunes-{today}.csv\"")
    );
    let form = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("indicateurs_profil", "oui")],
    );
    assert_eq!(
        disposition(&form),
        format!("attachment; filename=\"donnees-personnelles-pseudonymisees-jeunes-{today}.csv\"")
    );
    enable_second_factor(&env, &mut browser, &token);
    let named = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(
        disposition(&named),
        format!("attachment; filename=\"donnees-personnelles-nominatives-jeunes-{today}.csv\"")
    );
}
