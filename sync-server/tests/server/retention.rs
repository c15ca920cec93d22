//! Retention with a controllable clock: a young person's file is purged the given number
//! of months after the last contact (visits, actions and outcomes count), with its cascade,
//! and not a day before; a later contact extends it; an organisation's own rule applies.

use chrono::{Duration, Months, NaiveDate, Utc};
use repere_core::RecordKind;
use repere_server::retention::CNIL_DEFAULT_MONTHS;

use crate::common::env;

fn today(env: &crate::common::Env) -> NaiveDate {
    repere_server::coord::paris(env.hub.now()).date_naive()
}

#[test]
fn files_are_purged_after_the_last_contact_and_listed_30_days_ahead() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let start = Utc::now().date_naive();
    // Met 100 days ago, nothing since: due first.
    let mut old = tablet.demo.youth();
    old.first_contact_date = start - Duration::days(100);
    old.referral_date = None;
    old.notice_given_on = None;
    let old = tablet.store.create(&old).expect("youth");
    let mut visit = tablet.demo.contact(&[old]);
    visit.occurred_at = (start - Duration::days(100))
        .and_hms_opt(10, 0, 0)
        .expect("time")
        .and_utc()
        .fixed_offset();
    visit.tour_id = None;
    let visit = tablet.store.create(&visit).expect("visit");
    // Met 100 days ago too, but an action started 5 days ago: it counts as a contact.
    let mut followed = tablet.demo.youth();
    followed.first_contact_date = start - Duration::days(100);
    followed.referral_date = None;
    followed.notice_given_on = None;
    let followed = tablet.store.create(&followed).expect("youth");
    let mut action = tablet.demo.action(followed);
    action.start_date = start - Duration::days(5);
    action.end_date = None;
    tablet.store.create(&action).expect("action");
    tablet.sync_ok();
    assert_eq!(
        env.hub.retention_plan(today(&env), 30).expect("plan"),
        vec![]
    );

    // 24 months after the first one's last contact, less 10 days: listed, not purged.
    let purge_day = (start - Duration::days(100))
        .checked_add_months(Months::new(CNIL_DEFAULT_MONTHS))
        .expect("date");
    let advance = |to: NaiveDate| {
        let by = to - today(&env);
        env.clock.advance(by);
    };
    advance(purge_day - Duration::days(10));
    let plan = env.hub.retention_plan(today(&env), 30).expect("plan");
    assert_eq!(plan.len(), 1);
    assert_eq!((plan[0].kind, plan[0].id), (RecordKind::Youth, old));
    assert_eq!(plan[0].purge_on, purge_day);
    assert_eq!(plan[0].last_contact, start - Duration::days(100));
    assert_eq!(
        env.hub.apply_retention().expect("apply"),
        vec![],
        "not a day before"
    );

    // On the day: erased with their visit; the followed young person stays.
    advance(purge_day);
    let done = env.hub.apply_retention().expect("apply");
    assert_eq!(done.iter().map(|d| d.id).collect::<Vec<_>>(), vec![old]);
    tablet.sync_ok();
    let ids: Vec<_> = tablet
        .store
        .ids()
        .expect("ids")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(
        !ids.contains(&old) && !ids.contains(&visit),
        "the file went with its visit"
    );
    assert!(ids.contains(&followed));
    let (entries, _) = env
        .hub
        .storage()
        .read_with(|tx| tx.audit_entries(env.org.id, Some(old), 0, 10))
        .expect("journal");
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .detail
            .contains("fin de la durée de conservation"),
        "{}",
        entries[0].detail
    );

    // The organisation keeps files 36 months: the followed one is no longer due soon.
    let followed_purge = (start - Duration::days(5))
        .checked_add_months(Months::new(CNIL_DEFAULT_MONTHS))
        .expect("date");
    advance(followed_purge - Duration::days(1));
    assert_eq!(
        env.hub.retention_plan(today(&env), 0).expect("plan").len(),
        0
    );
    assert_eq!(
        env.hub.retention_plan(today(&env), 30).expect("plan").len(),
        1
    );
    env.hub.set_retention_months(env.org.id, 36).expect("rule");
    assert_eq!(env.hub.retention_months(env.org.id).expect("rule"), 36);
    assert_eq!(
        env.hub.retention_plan(today(&env), 30).expect("plan"),
        vec![]
    );
    assert!(env.hub.set_retention_months(env.org.id, 0).is_err());
    assert!(env.hub.set_retention_months(env.org.id, 121).is_err());
}
