//! The team roster against the real server process: members added, renamed and deactivated
//! with the admin commands reach their team's tablets only, the names never sit readable in
//! the server's files, and a tablet that changes team gets the new team's roster alone.

use repere_tests::pages;
use repere_tests::{Device, TestServer};
use uuid::Uuid;

fn names(device: &Device) -> Vec<(String, bool)> {
    device
        .store
        .roster()
        .expect("roster")
        .into_iter()
        .map(|m| (m.name, m.active))
        .collect()
}

#[test]
fn admin_managed_members_reach_their_team_tablets_only() {
    let server = TestServer::start();
    let teams = server.setup(2);
    let (a, b) = (teams[0].to_string(), teams[1].to_string());
    let add = |team: &str, name: &str| {
        Uuid::parse_str(&server.admin(&["add-member", "--team", team, "--name", name]))
            .expect("the command prints the member's id")
    };
    let amina = add(&a, "Amina-Orchidee");
    let julien = add(&a, "Julien");
    add(&b, "Zoé");
    let mut one = Device::enrolled(&server, teams[0], 51);
    let mut other = Device::enrolled(&server, teams[1], 52);
    one.sync(&server).expect("sync");
    other.sync(&server).expect("sync");
    assert_eq!(
        names(&one),
        vec![("Amina-Orchidee".into(), true), ("Julien".into(), true)]
    );
    assert_eq!(names(&other), vec![("Zoé".into(), true)]);

    server.admin(&["deactivate-member", "--member", &julien.to_string()]);
    server.admin(&[
        "rename-member",
        "--member",
        &amina.to_string(),
        "--name",
        "Amina B.",
    ]);
    assert!(
        server
            .try_admin(&[
                "rename-member",
                "--member",
                &Uuid::now_v7().to_string(),
                "--name",
                "X"
            ])
            .is_err()
    );
    let listed = server.admin(&["list-members", "--team", &a]);
    assert!(
        listed.contains(&format!("{julien}\tinactive\tJulien")),
        "{listed}"
    );
    one.sync(&server).expect("sync");
    assert_eq!(
        names(&one),
        vec![("Amina B.".into(), true), ("Julien".into(), false)]
    );
    assert_eq!(
        one.store.member_name(julien).expect("read").as_deref(),
        Some("Julien")
    );

    // Display names are personal data: the server's files hold them encrypted only.
    for entry in std::fs::read_dir(server.data.path()).expect("dir") {
        let path = entry.expect("entry").path();
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !pages::contains(&bytes, "Amina-Orchidee") && !pages::contains(&bytes, "Amina B."),
                "{} holds a member's name in clear",
                path.display()
            );
        }
    }

    // Into the other team: its roster only.
    one.enrol(&server.url(), &server.code(teams[1]))
        .expect("re-enrol");
    one.sync(&server).expect("sync");
    assert_eq!(names(&one), vec![("Zoé".into(), true)]);
    assert_eq!(one.store.member_name(julien).expect("read"), None);
}
