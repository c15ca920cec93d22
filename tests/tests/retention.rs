//! Retention against the real server process: `admin purge --dry-run` lists what the rules
//! erase (and what falls due within 30 days), `admin purge` erases what is due with its
//! cascade, the server applies the rules by itself when it starts (and then daily), and
//! the tablets drop what was purged.

use chrono::{Duration, Utc};
use repere_core::records::Youth;
use repere_tests::{Device, TestServer};
use uuid::Uuid;

fn met_days_ago(tablet: &mut Device, days: i64) -> Uuid {
    let mut youth: Youth = tablet.demo.youth();
    youth.first_contact_date = Utc::now().date_naive() - Duration::days(days);
    youth.referral_date = None;
    youth.notice_given_on = None;
    tablet.store.create(&youth).expect("youth")
}

fn listed(out: &str) -> Vec<(Uuid, bool)> {
    out.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            let id = Uuid::parse_str(fields.get(1)?).ok()?;
            Some((id, fields.last() == Some(&"due")))
        })
        .collect()
}

#[test]
fn the_rules_list_then_purge_what_is_due_and_the_server_applies_them_when_it_starts() {
    let mut server = TestServer::start();
    let team = server.setup(1)[0];
    let mut tablet = Device::enrolled(&server, team, 51);
    let expired = met_days_ago(&mut tablet, 800);
    let soon = met_days_ago(&mut tablet, 720);
    let recent = met_days_ago(&mut tablet, 30);
    let visit = tablet.demo.contact(&[expired]);
    let visit = tablet.store.create(&visit).expect("visit");
    // The visit itself is recent: move it back too, or it would keep the file.
    tablet
        .store
        .edit::<repere_core::records::Contact>(visit, |c| {
            c.occurred_at = (Utc::now() - Duration::days(800)).fixed_offset();
        })
        .expect("edit");
    tablet.sync(&server).expect("sync");

    let plan = listed(&server.admin(&["purge", "--dry-run"]));
    assert_eq!(
        plan,
        vec![(expired, true), (soon, false)],
        "soonest first; the recent one is not listed"
    );
    let later = listed(&server.admin(&["purge", "--dry-run", "--within-days", "0"]));
    assert_eq!(later, vec![(expired, true)]);

    let purged = server.admin(&["purge"]);
    assert!(purged.contains(&expired.to_string()), "{purged}");
    assert!(!purged.contains(&soon.to_string()));
    tablet.sync(&server).expect("sync");
    let ids: Vec<Uuid> = tablet
        .store
        .ids()
        .expect("ids")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(
        !ids.contains(&expired) && !ids.contains(&visit),
        "purged with its visit"
    );
    assert!(ids.contains(&soon) && ids.contains(&recent));

    // A file due while the server was down goes when it starts again.
    let stale = met_days_ago(&mut tablet, 900);
    tablet.sync(&server).expect("sync");
    server.kill();
    server.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        tablet.sync(&server).expect("sync");
        let gone = !tablet
            .store
            .ids()
            .expect("ids")
            .iter()
            .any(|(_, id)| *id == stale);
        if gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the start-up job purges it"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The organisation's own rule: kept 36 months, an 800-day-old file is not due.
    let rules = server.admin(&["retention"]);
    assert!(
        rules.contains("24 months after the last contact"),
        "{rules}"
    );
    let organisation = rules
        .split('\t')
        .next()
        .expect("an organisation")
        .to_string();
    server.admin(&[
        "retention",
        "--organisation",
        &organisation,
        "--months",
        "36",
    ]);
    assert!(server.admin(&["retention"]).contains("36 months"));
    met_days_ago(&mut tablet, 800);
    tablet.sync(&server).expect("sync");
    assert_eq!(listed(&server.admin(&["purge", "--dry-run"])), vec![]);
}
