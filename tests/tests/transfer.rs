//! A young person transferred to another team, end to end: the real server process, one
//! tablet of each team, the coordinator over HTTP (sign-in, CSRF, forms). The old team's
//! tablet drops the young person and their path at its next sync (told apart from an
//! erasure), the new team's receives them at its next pull, and the figures count them
//! once, for their new team, on the dashboard and on the tablets.

use chrono::NaiveDate;
use repere_core::Store;
use repere_core::indicators::{Granularity, IndicatorQuery};
use repere_core::records::{Action, Contact, Outcome, Youth};
use repere_tests::browser::{PASSWORD, Pages};
use repere_tests::{Device, TestServer};
use uuid::Uuid;

fn range() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(2100, 12, 31).expect("date"),
    )
}

/// Young people reached (identified or helped) on a tablet, over the whole range.
fn reached(store: &Store) -> u32 {
    let (from, to) = range();
    let report = store
        .indicators(&IndicatorQuery {
            from,
            to,
            granularity: Granularity::Whole,
            teams: None,
            dimension: None,
        })
        .expect("indicators");
    report.rows[0].figures.identified + report.rows[0].figures.helped
}

/// The number in the dashboard's element with this `data-testid`.
fn figure(html: &str, testid: &str) -> u32 {
    let marker = format!(r#"data-testid="{testid}">"#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {testid}")) + marker.len();
    html[start..]
        .split('<')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{testid} is not a number"))
}

/// Young people reached for `team` on the dashboard.
fn reached_on_dashboard(pages: &mut Pages, team: Uuid) -> u32 {
    let page = pages.request(
        "GET",
        &format!("/tableau-de-bord?du=2000-01-01&au=2100-12-31&granularite=whole&equipe={team}"),
        None,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    figure(&page.body, "total-identified") + figure(&page.body, "total-helped")
}

fn gone<R: repere_core::Record>(store: &Store, id: Uuid) -> bool {
    matches!(
        store.get::<R>(id),
        Err(repere_core::Error::NotFound { .. } | repere_core::Error::NoRecord { .. })
    )
}

#[test]
fn a_transferred_young_person_leaves_the_old_teams_tablet_reaches_the_new_one_and_counts_once() {
    let server = TestServer::start_with(&["--insecure-http"]);
    let org = server.admin(&["create-org", "--name", "Organisation de test"]);
    let team = |name: &str| {
        Uuid::parse_str(&server.admin(&["create-team", "--org", &org, "--name", name]))
            .expect("team id")
    };
    let (stenay, sedan) = (team("Binôme Stenay"), team("Binôme Sedan"));
    server.coordinator(&org, "camille@ml.test", PASSWORD);
    let mut a = Device::enrolled(&server, stenay, 11);
    let mut b = Device::enrolled(&server, sedan, 12);

    let mut youth = a.demo.youth();
    youth.first_name = Some("Zéphyrine".into());
    let youth = a.store.create(&youth).expect("youth");
    let visit = a.store.create(&a.demo.contact(&[youth])).expect("visit");
    let action = a.store.create(&a.demo.action(youth)).expect("action");
    let outcome = a.store.create(&a.demo.outcome(youth)).expect("outcome");
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");
    assert_eq!(reached(&a.store), 1);
    assert_eq!(reached(&b.store), 0);

    // Asked from the young person's file, accepted from the list (CSRF in every form).
    let (mut pages, token) = Pages::sign_in(server.port, "camille@ml.test");
    assert_eq!(reached_on_dashboard(&mut pages, stenay), 1);
    let form = pages.request("GET", &format!("/jeunes/{youth}/transfert"), None);
    assert_eq!(form.status, 200);
    assert!(form.body.contains(&sedan.to_string()));
    let (youth_s, sedan_s) = (youth.to_string(), sedan.to_string());
    let forged = pages.request(
        "POST",
        "/transferts",
        Some(&[("fiche", &youth_s), ("equipe", &sedan_s)]),
    );
    assert_eq!(forged.status, 403);
    let asked = pages.request(
        "POST",
        "/transferts",
        Some(&[("csrf", &token), ("fiche", &youth_s), ("equipe", &sedan_s)]),
    );
    assert_eq!(asked.status, 303, "{}", asked.body);
    let list = pages.request("GET", "/transferts", None);
    let marker = r#"data-testid="transfer-row" data-id=""#;
    let start = list.body.find(marker).expect("the transfer is listed") + marker.len();
    let id = list.body[start..]
        .split('"')
        .next()
        .expect("id")
        .to_string();
    let accepted = pages.request(
        "POST",
        &format!("/transferts/{id}/accepter"),
        Some(&[("csrf", &token)]),
    );
    assert_eq!(accepted.status, 303, "{}", accepted.body);

    // The old team's tablet: the young person and their path leave, not as an erasure;
    // its visit stays.
    let report = a.sync(&server).expect("sync");
    assert_eq!(report.transferred, 3, "{report:?}");
    assert_eq!(report.erased, 0);
    assert!(gone::<Youth>(&a.store, youth));
    assert!(gone::<Action>(&a.store, action));
    assert!(gone::<Outcome>(&a.store, outcome));
    assert!(a.store.get::<Contact>(visit).is_ok());
    // The new team's tablet: they arrive, in its team.
    b.sync(&server).expect("sync");
    assert_eq!(b.store.get::<Youth>(youth).expect("youth").team_id, sedan);
    assert_eq!(
        b.store.get::<Action>(action).expect("action").team_id,
        sedan
    );
    assert!(b.store.get::<Outcome>(outcome).is_ok());

    // Once, for the new team: the dashboard at once; the old tablet no more; the new
    // tablet once its own first visit is there (the old team's visit stays with it).
    assert_eq!(reached_on_dashboard(&mut pages, stenay), 0);
    assert_eq!(reached_on_dashboard(&mut pages, sedan), 1);
    assert_eq!(reached(&a.store), 0);
    b.store
        .create(&b.demo.contact(&[youth]))
        .expect("the new team meets them");
    b.sync(&server).expect("sync");
    assert_eq!(reached(&b.store), 1);
    assert_eq!(reached_on_dashboard(&mut pages, sedan), 1);
    assert_eq!(reached_on_dashboard(&mut pages, stenay), 0);
    a.sync(&server).expect("sync");
    assert_eq!(reached(&a.store), 0);
}
