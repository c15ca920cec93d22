//! A conflict resolved on the coordinators' pages, end to end: two tablets make it through
//! the real server process, a coordinator resolves it over HTTP (sign-in, CSRF, form), and
//! a tablet's next sync brings the chosen value with no conflict left, its unsent edit of
//! another field kept.

use repere_core::SyncState;
use repere_core::records::Youth;
use repere_tests::browser::{PASSWORD, Pages};
use repere_tests::{Device, TestServer};
use uuid::Uuid;

#[test]
fn a_conflict_resolved_on_the_pages_reaches_the_tablets() {
    let server = TestServer::start_with(&["--insecure-http"]);
    let org = server.admin(&["create-org", "--name", "Organisation de test"]);
    let team = Uuid::parse_str(&server.admin(&["create-team", "--org", &org, "--name", "Binôme"]))
        .expect("team id");
    let coordinator = server.coordinator(&org, "camille@ml.test", PASSWORD);
    let mut a = Device::enrolled(&server, team, 1);
    let mut b = Device::enrolled(&server, team, 2);
    let youth = a.demo.youth();
    let id = a.store.create(&youth).expect("youth");
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");

    // The same field edited offline on both tablets.
    a.store
        .edit::<Youth>(id, |y| y.alias = Some("Kéké".into()))
        .expect("edit");
    b.store
        .edit::<Youth>(id, |y| y.alias = Some("Kiki".into()))
        .expect("edit");
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");
    assert_eq!(b.store.conflicts(id).expect("conflicts").len(), 1);

    // Tablet A edits another field and does not sync yet.
    a.store
        .edit::<Youth>(id, |y| y.referral_detail = Some("Vu au city stade".into()))
        .expect("edit");

    let (mut pages, token) = Pages::sign_in(server.port, "camille@ml.test");
    let page = pages.request("GET", &format!("/jeunes/{id}"), None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"data-field="alias""#));
    assert!(page.body.contains("Kéké") && page.body.contains("Kiki"));
    let done = pages.request(
        "POST",
        &format!("/fiches/{id}/conflit"),
        Some(&[("csrf", &token), ("champ", "alias"), ("choix", "\"Kiki\"")]),
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/jeunes/{id}?ok=conflit").as_str())
    );

    // Tablet A's next sync: the chosen value, no conflict, its own edit kept and pushed.
    a.sync(&server).expect("sync");
    assert!(a.store.conflicts(id).expect("conflicts").is_empty());
    let y = a.store.youth(id).expect("reads");
    assert_eq!(y.alias.as_deref(), Some("Kiki"));
    assert_eq!(y.referral_detail.as_deref(), Some("Vu au city stade"));
    assert_eq!(a.store.sync_state(id).expect("state"), SyncState::Synced);
    // The resolution is the coordinator's change (nil device, the user's id).
    let by_coordinator = a.store.history(id).expect("history").into_iter().any(|h| {
        h.author
            .is_some_and(|w| w.device_id.is_nil() && w.member_id == coordinator)
            && h.fields == vec!["alias".to_string()]
    });
    assert!(by_coordinator);
    b.sync(&server).expect("sync");
    assert!(b.store.conflicts(id).expect("conflicts").is_empty());
    assert_eq!(
        b.store.youth(id).expect("reads").referral_detail.as_deref(),
        Some("Vu au city stade")
    );
}
