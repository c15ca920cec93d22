//! The administration pages (issue 12) and « Mon compte » over loopback: each page and
//! action for an administrator, the refusals (a coordinator gets 403, another
//! organisation's ids 404, a missing or wrong CSRF token 403) with nothing changed, and
//! the journal line of each action (its object's id; never a password, code or name).

use repere_core::sync::protocol::{DeviceReport, EnrolRequest};
use repere_server::HubError;
use repere_server::coord::{Workspace, audit};
use repere_server::storage::{AuditEntry, Role, WipeOrder};
use uuid::Uuid;

use crate::accounts::enable_second_factor;
use crate::common::{Env, env};
use crate::coord::{Browser, PASSWORD, coordinator, csrf, other_organisation, server};
use crate::http::start;
use repere_server::http::HttpConfig;
use repere_server::web::PagesConfig;
use repere_server::web::admin::PublicUrl;

const ADMIN: &str = "alex@ml.test";
const COORDINATOR: &str = "camille@ml.test";

fn administrator(env: &Env, login: &str) -> Uuid {
    let user = env
        .hub
        .create_user_with_login(env.org.id, "Alex Admin", Role::Admin, Some(login))
        .expect("admin");
    env.hub
        .set_password(user.id, PASSWORD, None)
        .expect("password");
    user.id
}

/// Every journal line of an organisation, oldest first.
fn journal(env: &Env, org: Uuid) -> Vec<AuditEntry> {
    let (mut entries, _) = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.audit_entries(org, None, 0, 100_000)?))
        .expect("journal");
    entries.reverse();
    entries
}

/// The last line of this action, which must exist.
fn last(env: &Env, action: &str) -> AuditEntry {
    journal(env, env.org.id)
        .into_iter()
        .rev()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} in the journal"))
}

/// The text inside the first element with this `data-testid`.
fn testid_text(html: &str, testid: &str) -> String {
    let marker = format!(r#"data-testid="{testid}""#);
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {testid} in {html}"));
    let rest = &html[at..];
    let start = rest.find('>').expect("end of tag") + 1;
    rest[start..]
        .split('<')
        .next()
        .expect("text")
        .trim()
        .replace("&amp;", "&")
}

fn has(html: &str, testid: &str) -> bool {
    html.contains(&format!(r#"data-testid="{testid}""#))
}

#[test]
fn a_coordinator_gets_403_on_every_administration_page_and_changes_nothing() {
    let env = env();
    coordinator(&env, COORDINATOR);
    let admin = administrator(&env, ADMIN);
    let (device, _) = env.raw_device(&env.team_a);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(COORDINATOR, PASSWORD);
    let visits = browser.get("/visites");
    assert!(!has(&visits.body, "nav-administration"), "no link for them");
    for path in [
        "/administration",
        "/administration/organisations",
        "/administration/comptes",
        &format!("/administration/comptes/{admin}"),
        "/administration/tablettes",
        &format!("/administration/tablettes/{}/effacer", device.id),
        "/administration/codes",
    ] {
        let page = browser.get(path);
        assert_eq!(page.status, 403, "GET {path}");
        assert!(has(&page.body, "admin-only"), "GET {path}: {}", page.body);
    }
    let before = journal(&env, env.org.id).len();
    let team = env.team_a.id.to_string();
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/administration/equipes".into(),
            vec![("nom", "Binôme pirate")],
        ),
        (
            "/administration/organisations".into(),
            vec![
                ("nom", "Organisation pirate"),
                ("admin_nom", "X"),
                ("identifiant", "x@x"),
            ],
        ),
        (
            "/administration/organisations/renommer".into(),
            vec![("nom", "Nom pirate")],
        ),
        (
            "/administration/comptes".into(),
            vec![("nom", "X"), ("identifiant", "x@x"), ("role", "admin")],
        ),
        (
            format!("/administration/comptes/{admin}/desactiver"),
            vec![],
        ),
        (
            format!("/administration/comptes/{admin}/role"),
            vec![("role", "field")],
        ),
        (
            format!("/administration/comptes/{admin}/mot-de-passe"),
            vec![],
        ),
        (
            format!("/administration/tablettes/{}/revoquer", device.id),
            vec![("effacer", "oui"), ("confirmation", "oui")],
        ),
        (
            "/administration/codes".into(),
            vec![("equipe", &team), ("duree_heures", "24")],
        ),
    ];
    for (path, fields) in &posts {
        let mut form = vec![("csrf", token.as_str())];
        form.extend(fields.iter().copied());
        let page = browser.post(path, &form);
        assert_eq!(page.status, 403, "POST {path}");
        assert!(has(&page.body, "admin-only"), "POST {path}");
    }
    let overview = env.hub.overview().expect("overview");
    assert_eq!(overview.len(), 1, "no organisation made");
    assert_eq!(overview[0].organisation.name, "Mission Locale test");
    assert_eq!(overview[0].teams.len(), 2);
    assert!(!env.hub.is_disabled(admin).expect("state"));
    assert!(
        env.hub.devices(None).expect("devices")[0]
            .revoked_at
            .is_none()
    );
    assert_eq!(journal(&env, env.org.id).len(), before, "nothing journaled");
    // The administrator still signs in with the old password, as an administrator.
    let mut other = Browser::new(&server);
    other.signed_in(ADMIN, PASSWORD);
    assert!(has(&other.get("/visites").body, "nav-administration"));
}

#[test]
fn an_administrator_creates_a_team_and_accounts_and_manages_them() {
    let env = env();
    let admin = administrator(&env, ADMIN);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);

    let overview = browser.get("/administration");
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains(&env.team_a.id.to_string()));
    assert!(has(&overview.body, "team-create-form"));

    // A team.
    let empty = browser.post("/administration/equipes", &[("csrf", &token), ("nom", " ")]);
    assert_eq!(empty.status, 400);
    assert!(has(&empty.body, "admin-error"));
    let made = browser.post(
        "/administration/equipes",
        &[("csrf", &token), ("nom", "Binôme Montmédy")],
    );
    assert_eq!(made.status, 303, "{}", made.body);
    let teams = &env.hub.overview().expect("overview")[0].teams;
    let team = teams
        .iter()
        .find(|(t, _)| t.name == "Binôme Montmédy")
        .expect("team made")
        .0
        .clone();
    let line = last(&env, audit::TEAM_CREATED);
    assert_eq!((line.user_id, line.target_id), (Some(admin), Some(team.id)));
    assert!(
        !line.detail.contains("Montmédy"),
        "no name: {}",
        line.detail
    );
    let listed = browser.get("/administration");
    assert!(listed.body.contains("Binôme Montmédy"));

    // A coordinator account, with its password shown once.
    let created = browser.post(
        "/administration/comptes",
        &[
            ("csrf", &token),
            ("nom", "Sam Coordination"),
            ("identifiant", "Sam@ML.test"),
            ("role", "coordinator"),
        ],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let password = testid_text(&created.body, "new-password");
    assert!(password.len() >= 12);
    let sam = env.hub.find_user("sam@ml.test").expect("sam").user;
    assert_eq!(sam.role, Role::Coordinator);
    for action in [audit::USER_CREATED, audit::PASSWORD_SET] {
        let line = last(&env, action);
        assert_eq!((line.user_id, line.target_id), (Some(admin), Some(sam.id)));
        assert!(!line.detail.contains(&password) && !line.detail.contains("sam"));
    }
    assert!(
        !browser
            .get("/administration/comptes")
            .body
            .contains(&password),
        "shown once"
    );
    let mut sams = Browser::new(&server);
    sams.signed_in("sam@ml.test", &password);
    let taken = browser.post(
        "/administration/comptes",
        &[
            ("csrf", &token),
            ("nom", "Autre Sam"),
            ("identifiant", "sam@ml.test"),
            ("role", "coordinator"),
        ],
    );
    assert_eq!(taken.status, 400);
    assert!(testid_text(&taken.body, "admin-error").contains("déjà utilisé"));
    let no_role = browser.post(
        "/administration/comptes",
        &[
            ("csrf", &token),
            ("nom", "Y"),
            ("identifiant", "y@y"),
            ("role", "root"),
        ],
    );
    assert_eq!(no_role.status, 400);

    let base = format!("/administration/comptes/{}", sam.id);
    let page = browser.get(&base);
    assert_eq!(page.status, 200);
    assert!(has(&page.body, "disable-button") && has(&page.body, "role-form"));

    // Role: to administrator; their sessions end.
    let changed = browser.post(
        &format!("{base}/role"),
        &[("csrf", &token), ("role", "admin")],
    );
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(
        env.hub.find_user("sam@ml.test").expect("sam").user.role,
        Role::Admin
    );
    assert_eq!(sams.get("/visites").status, 303, "session ended");
    let line = last(&env, audit::ROLE_CHANGED);
    assert_eq!((line.user_id, line.target_id), (Some(admin), Some(sam.id)));
    assert!(
        line.detail.contains("coordinator → admin"),
        "{}",
        line.detail
    );

    // Disable, enable.
    sams.signed_in("sam@ml.test", &password);
    let disabled = browser.post(&format!("{base}/desactiver"), &[("csrf", &token)]);
    assert_eq!(disabled.status, 303);
    assert!(env.hub.is_disabled(sam.id).expect("state"));
    assert_eq!(sams.get("/visites").status, 303);
    assert_eq!(sams.login("sam@ml.test", &password).status, 401);
    assert_eq!(last(&env, audit::USER_DISABLED).user_id, Some(admin));
    let enabled = browser.post(&format!("{base}/reactiver"), &[("csrf", &token)]);
    assert_eq!(enabled.status, 303);
    assert!(!env.hub.is_disabled(sam.id).expect("state"));
    assert_eq!(last(&env, audit::USER_ENABLED).target_id, Some(sam.id));

    // Sessions ended.
    sams.signed_in("sam@ml.test", &password);
    assert_eq!(
        browser
            .post(&format!("{base}/sessions"), &[("csrf", &token)])
            .status,
        303
    );
    assert_eq!(sams.get("/visites").status, 303);
    assert_eq!(last(&env, audit::SESSIONS_REVOKED).user_id, Some(admin));

    // Second factor reset (a lost phone).
    let sam_token = sams.signed_in("sam@ml.test", &password);
    enable_second_factor(&env, &mut sams, &sam_token);
    assert!(has(&browser.get(&base).body, "reset-second-factor-button"));
    let reset = browser.post(
        &format!("{base}/double-authentification"),
        &[("csrf", &token)],
    );
    assert_eq!(reset.status, 303);
    assert_eq!(sams.get("/visites").status, 303);
    assert_eq!(last(&env, audit::SECOND_FACTOR_RESET).user_id, Some(admin));
    sams.signed_in("sam@ml.test", &password);

    // A new password, shown once; the old one no longer works.
    let renewed = browser.post(&format!("{base}/mot-de-passe"), &[("csrf", &token)]);
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let new_password = testid_text(&renewed.body, "new-password");
    assert_ne!(new_password, password);
    assert_eq!(sams.get("/visites").status, 303);
    assert_eq!(sams.login("sam@ml.test", &password).status, 401);
    sams.signed_in("sam@ml.test", &new_password);
    let line = last(&env, audit::PASSWORD_SET);
    assert_eq!((line.user_id, line.target_id), (Some(admin), Some(sam.id)));
    assert!(!line.detail.contains(&new_password));
    assert!(
        !browser.get(&base).body.contains(&new_password),
        "shown once"
    );

    // A field account has no password; one's own account cannot be disabled or demoted.
    let field = browser.post(
        "/administration/comptes",
        &[
            ("csrf", &token),
            ("nom", "Terrain"),
            ("identifiant", ""),
            ("role", "field"),
        ],
    );
    assert_eq!(field.status, 200);
    assert!(!has(&field.body, "new-password"));
    let own = browser.get(&format!("/administration/comptes/{admin}"));
    assert!(has(&own.body, "account-own") && !has(&own.body, "disable-button"));
    let myself = browser.post(
        &format!("/administration/comptes/{admin}/desactiver"),
        &[("csrf", &token)],
    );
    assert_eq!(myself.status, 400);
    assert!(!env.hub.is_disabled(admin).expect("state"));
    let demote = browser.post(
        &format!("/administration/comptes/{admin}/role"),
        &[("csrf", &token), ("role", "coordinator")],
    );
    assert_eq!(demote.status, 400);
    let accounts = browser.get("/administration/comptes");
    assert_eq!(
        accounts
            .body
            .matches(r#"data-testid="account-row""#)
            .count(),
        3
    );
}

#[test]
fn an_administrator_creates_an_organisation_with_its_first_administrator_and_renames_their_own() {
    let env = env();
    let admin = administrator(&env, ADMIN);
    let (_, other_login) = other_organisation(&env);
    let other = env.hub.find_user(&other_login).expect("other").user;
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);

    // Every organisation of the server, one's own marked.
    let list = browser.get("/administration/organisations");
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        list.body
            .matches(r#"data-testid="organisation-row""#)
            .count(),
        2
    );
    assert!(list.body.contains(&format!(
        r#"data-organisation-id="{}" data-own="yes""#,
        env.org.id
    )));
    assert!(list.body.contains(&format!(
        r#"data-organisation-id="{}" data-own="no""#,
        other.organisation_id
    )));
    assert!(list.body.contains("Autre association"));
    assert!(
        !list.body.contains(&other_login) && !list.body.contains("Dominique"),
        "no account of another organisation"
    );

    // Refusals, with nothing made.
    let before = env.hub.overview().expect("overview").len();
    for (fields, expected) in [
        (
            [
                ("nom", " "),
                ("admin_nom", "Lou"),
                ("identifiant", "lou@mlsud"),
            ],
            "organisation",
        ),
        (
            [
                ("nom", "ML Sud"),
                ("admin_nom", ""),
                ("identifiant", "lou@mlsud"),
            ],
            "administrateur",
        ),
        (
            [
                ("nom", "ML Sud"),
                ("admin_nom", "Lou"),
                ("identifiant", " "),
            ],
            "identifiant",
        ),
        (
            [
                ("nom", "ML Sud"),
                ("admin_nom", "Lou"),
                ("identifiant", ADMIN),
            ],
            "déjà utilisé",
        ),
        (
            [
                ("nom", "autre ASSOCIATION"),
                ("admin_nom", "Lou"),
                ("identifiant", "lou@mlsud"),
            ],
            "porte déjà ce nom",
        ),
    ] {
        let mut form = vec![("csrf", token.as_str())];
        form.extend(fields);
        let refused = browser.post("/administration/organisations", &form);
        assert_eq!(refused.status, 400, "{fields:?}");
        let message = testid_text(&refused.body, "admin-error");
        assert!(message.contains(expected), "{fields:?}: {message}");
    }
    assert_eq!(env.hub.overview().expect("overview").len(), before);
    assert!(env.hub.find_user("lou@mlsud").is_err());

    // The organisation and its administrator, the password shown once.
    let created = browser.post(
        "/administration/organisations",
        &[
            ("csrf", &token),
            ("nom", "Mission Locale du Sud Meusien"),
            ("admin_nom", "Lou Admin"),
            ("identifiant", "Lou@MLSud"),
        ],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let password = testid_text(&created.body, "new-password");
    assert_eq!(password.len(), 20);
    let lou = env.hub.find_user("lou@mlsud").expect("lou").user;
    assert_eq!(lou.role, Role::Admin);
    let sud = lou.organisation_id;
    assert!(
        created
            .body
            .contains(&format!(r#"data-organisation-id="{sud}""#))
    );
    let overview = env.hub.overview().expect("overview");
    let made = overview
        .iter()
        .find(|o| o.organisation.id == sud)
        .expect("made");
    assert_eq!(made.organisation.name, "Mission Locale du Sud Meusien");
    assert!(made.teams.is_empty());
    assert_eq!(made.users, 1);
    assert!(
        !browser
            .get("/administration/organisations")
            .body
            .contains(&password),
        "shown once"
    );

    // Journaled in both organisations, ids only.
    let mine: Vec<AuditEntry> = journal(&env, env.org.id)
        .into_iter()
        .filter(|e| e.action == audit::ORGANISATION_CREATED && e.target_id == Some(sud))
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].user_id, Some(admin));
    let theirs = journal(&env, sud);
    let actions: Vec<(&str, Option<Uuid>, Option<Uuid>)> = theirs
        .iter()
        .map(|e| (e.action.as_str(), e.user_id, e.target_id))
        .collect();
    assert_eq!(
        actions,
        [
            (audit::ORGANISATION_CREATED, Some(admin), Some(sud)),
            (audit::USER_CREATED, Some(admin), Some(lou.id)),
            (audit::PASSWORD_SET, Some(admin), Some(lou.id)),
        ]
    );
    for line in mine.iter().chain(&theirs) {
        for secret in [&password, "lou", "Lou", "Sud"] {
            assert!(!line.detail.contains(secret), "{}", line.detail);
        }
    }

    // Lou runs the new organisation; this administrator does not get into it.
    let mut lous = Browser::new(&server);
    lous.signed_in("lou@mlsud", &password);
    let hers = lous.get("/administration");
    assert_eq!(hers.status, 200);
    assert!(hers.body.contains("Mission Locale du Sud Meusien"));
    assert!(has(&hers.body, "teams-empty"));
    assert_eq!(
        browser
            .get(&format!("/administration/comptes/{}", lou.id))
            .status,
        404
    );

    // Renaming one's own organisation.
    let empty = browser.post(
        "/administration/organisations/renommer",
        &[("csrf", &token), ("nom", "")],
    );
    assert_eq!(empty.status, 400);
    let clash = browser.post(
        "/administration/organisations/renommer",
        &[("csrf", &token), ("nom", "Mission Locale du Sud Meusien")],
    );
    assert_eq!(clash.status, 400);
    assert!(testid_text(&clash.body, "admin-error").contains("porte déjà ce nom"));
    let renamed = browser.post(
        "/administration/organisations/renommer",
        &[("csrf", &token), ("nom", "Mission Locale du Nord Meusien")],
    );
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let names: Vec<String> = env
        .hub
        .overview()
        .expect("overview")
        .into_iter()
        .map(|o| o.organisation.name)
        .collect();
    assert_eq!(
        names,
        [
            "Mission Locale du Nord Meusien",
            "Autre association",
            "Mission Locale du Sud Meusien"
        ]
    );
    let line = last(&env, audit::ORGANISATION_RENAMED);
    assert_eq!(
        (line.user_id, line.target_id, line.detail.as_str()),
        (Some(admin), Some(env.org.id), "")
    );
    let after = browser.get("/administration/organisations?ok=organisation-renommee");
    assert!(has(&after.body, "admin-message"));
    assert!(after.body.contains("Mission Locale du Nord Meusien"));
    // Keeping one's own name (a different case) is not a clash.
    let same = browser.post(
        "/administration/organisations/renommer",
        &[("csrf", &token), ("nom", "MISSION LOCALE du Nord Meusien")],
    );
    assert_eq!(same.status, 303);
}

#[test]
fn tablets_are_listed_and_revoked_with_or_without_a_wipe_order() {
    let env = env();
    let admin = administrator(&env, ADMIN);
    let mut tablet = env.tablet(&env.team_a, "tablette-a");
    tablet.sync_ok();
    let (second, _) = env.raw_device(&env.team_a);
    let (third, _) = env.raw_device(&env.team_b);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);

    let list = browser.get("/administration/tablettes");
    assert_eq!(list.status, 200);
    assert_eq!(list.body.matches(r#"data-testid="device-row""#).count(), 3);
    assert!(list.body.contains(&format!(
        r#"data-device-id="{}" data-state="active""#,
        tablet.device_id
    )));
    assert!(list.body.contains("jamais"), "the raw devices never synced");
    assert!(has(&list.body, "devices-known"));

    let revoked = browser.post(
        &format!("/administration/tablettes/{}/revoquer", tablet.device_id),
        &[("csrf", &token)],
    );
    assert_eq!(revoked.status, 303, "{}", revoked.body);

    // A wipe order goes through a confirmation page that says what will happen; without
    // its box ticked, nothing is done.
    assert!(list.body.contains(&format!(
        r#"action="/administration/tablettes/{}/effacer""#,
        second.id
    )));
    assert!(!has(&list.body, "wipe-confirm"), "no wipe from the list");
    let confirm = browser.get(&format!("/administration/tablettes/{}/effacer", second.id));
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let consequences = &confirm.body[confirm
        .body
        .find(r#"data-testid="wipe-consequences""#)
        .expect("consequences")..];
    assert!(consequences.contains("envoie ce qu'elle n'a pas encore envoyé"));
    assert!(consequences.contains("supprime toutes ses données"));
    assert!(has(&confirm.body, "wipe-confirm") && has(&confirm.body, "wipe-urgent"));
    assert!(
        confirm
            .body
            .contains(r#"name="confirmation" value="oui" required"#)
    );
    for unconfirmed in [
        vec![("csrf", token.as_str()), ("effacer", "oui")],
        vec![("csrf", &token), ("effacer", "oui"), ("urgent", "oui")],
        vec![
            ("csrf", &token),
            ("effacer", "oui"),
            ("confirmation", "non"),
        ],
    ] {
        let refused = browser.post(
            &format!("/administration/tablettes/{}/revoquer", second.id),
            &unconfirmed,
        );
        assert_eq!(refused.status, 400, "{unconfirmed:?}");
        assert!(testid_text(&refused.body, "admin-error").contains("rien n'a été fait"));
        assert!(has(&refused.body, "wipe-confirm"), "the confirmation again");
    }
    let untouched = env.hub.devices(Some(env.team_a.id)).expect("devices");
    let untouched = untouched
        .iter()
        .find(|d| d.id == second.id)
        .expect("second");
    assert!(untouched.revoked_at.is_none() && untouched.wipe.is_none());
    let wiped = browser.post(
        &format!("/administration/tablettes/{}/revoquer", second.id),
        &[
            ("csrf", &token),
            ("effacer", "oui"),
            ("confirmation", "oui"),
        ],
    );
    assert_eq!(wiped.status, 303);
    let urgent = browser.post(
        &format!("/administration/tablettes/{}/revoquer", third.id),
        &[
            ("csrf", &token),
            ("effacer", "oui"),
            ("urgent", "oui"),
            ("confirmation", "oui"),
        ],
    );
    assert_eq!(urgent.status, 303);
    let again = browser.get(&format!("/administration/tablettes/{}/effacer", third.id));
    assert!(has(&again.body, "wipe-already-revoked") && !has(&again.body, "wipe-form"));
    let devices = env.hub.devices(None).expect("devices");
    let of = |id: Uuid| devices.iter().find(|d| d.id == id).expect("device");
    assert!(of(tablet.device_id).revoked_at.is_some() && of(tablet.device_id).wipe.is_none());
    assert_eq!(of(second.id).wipe, Some(WipeOrder::AfterPush));
    assert_eq!(of(third.id).wipe, Some(WipeOrder::Urgent));
    assert!(tablet.sync().is_err(), "a revoked tablet no longer syncs");
    let lines: Vec<AuditEntry> = journal(&env, env.org.id)
        .into_iter()
        .filter(|e| e.action == audit::DEVICE_REVOKED)
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|e| (e.user_id, e.target_id, e.detail.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (Some(admin), Some(tablet.device_id), "sans effacement"),
            (Some(admin), Some(second.id), "effacement après envoi"),
            (Some(admin), Some(third.id), "effacement urgent"),
        ]
    );
    let after = browser.get("/administration/tablettes");
    assert!(!has(&after.body, "revoke-button"), "nothing left to revoke");
    assert_eq!(
        after.body.matches(r#"data-state="wipe-ordered""#).count(),
        2
    );
}

/// The text of one device's cell on the tablets page.
fn device_cell(html: &str, device: Uuid, testid: &str) -> String {
    let row = &html[html
        .find(&format!(r#"data-device-id="{device}""#))
        .expect("device row")..];
    testid_text(row, testid)
}

#[test]
fn tablets_report_their_app_version_and_unsent_records_at_each_sync() {
    let env = env();
    administrator(&env, ADMIN);
    let mut tablet = env.tablet(&env.team_a, "tablette-a");
    assert!(tablet.store.set_app_version("Amina Benali").is_err());
    assert!(tablet.store.set_app_version(&"1".repeat(40)).is_err());
    tablet
        .store
        .set_app_version(" 2.3.1 (230) ")
        .expect("version");
    assert_eq!(tablet.store.app_version(), "2.3.1 (230)");
    tablet.store.create(&tablet.demo.youth()).expect("youth");
    tablet.store.create(&tablet.demo.youth()).expect("youth");
    assert_eq!(tablet.store.unsent_count().expect("count"), 2);
    tablet.sync_ok();
    assert_eq!(tablet.store.unsent_count().expect("count"), 0);

    // A tablet that had 5 records waiting and got 1 through still holds 4.
    let (raw, _) = env.raw_device(&env.team_a);
    let youth = tablet.demo.youth();
    let mut request = crate::common::request(0, vec![crate::common::push(Uuid::now_v7(), &youth)]);
    request.report = DeviceReport {
        app_version: "1.9.0".into(),
        unsent: 5,
    };
    let (answer, _) = env
        .hub
        .sync_with_stats(&raw, request.clone(), 7)
        .expect("sync");
    assert_eq!(answer.acks.len(), 1, "{:?}", answer.rejections);
    // What a hostile or broken tablet says that is not a version is not kept.
    let (other, _) = env.raw_device(&env.team_b);
    request.pushes.clear();
    request.report.app_version = "<b>Amina Benali</b>".into();
    env.hub
        .sync_with_stats(&other, request.clone(), 7)
        .expect("sync");
    // An app older than version 7 says nothing: what an earlier sync said is not kept
    // as if it were current.
    let (older, _) = env.raw_device(&env.team_b);
    env.hub
        .sync_with_stats(&older, request.clone(), 7)
        .expect("sync");
    env.hub.sync_with_stats(&older, request, 6).expect("sync");

    let devices = env.hub.devices(None).expect("devices");
    let of = |id: Uuid| devices.iter().find(|d| d.id == id).expect("device");
    assert_eq!(
        (
            of(tablet.device_id).app_version.as_deref(),
            of(tablet.device_id).unsent
        ),
        (Some("2.3.1 (230)"), Some(0))
    );
    assert_eq!(
        (of(raw.id).app_version.as_deref(), of(raw.id).unsent),
        (Some("1.9.0"), Some(4))
    );
    assert_eq!(
        (of(other.id).app_version.as_deref(), of(other.id).unsent),
        (None, Some(5))
    );
    assert_eq!(
        (of(older.id).app_version.as_deref(), of(older.id).unsent),
        (None, None)
    );

    let server = server(&env);
    let mut browser = Browser::new(&server);
    browser.signed_in(ADMIN, PASSWORD);
    let list = browser.get("/administration/tablettes");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Version de l'application"));
    assert!(
        list.body
            .contains("Saisies non envoyées (au dernier contact)")
    );
    let cells = |id| {
        (
            device_cell(&list.body, id, "device-app-version"),
            device_cell(&list.body, id, "device-unsent"),
        )
    };
    assert_eq!(cells(tablet.device_id), ("2.3.1 (230)".into(), "0".into()));
    assert_eq!(cells(raw.id), ("1.9.0".into(), "4".into()));
    assert_eq!(cells(other.id), ("inconnue".into(), "5".into()));
    assert_eq!(cells(older.id), ("inconnue".into(), "inconnu".into()));
    assert!(
        !list.body.contains("Amina"),
        "nothing but a version reaches the page"
    );
}

#[test]
fn an_enrolment_code_is_shown_once_with_its_qr_code_and_enrols_a_tablet() {
    let env = env();
    let admin = administrator(&env, ADMIN);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);
    let form = browser.get(&format!("/administration/codes?equipe={}", env.team_b.id));
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains(&format!(r#"<option value="{}" selected"#, env.team_b.id))
    );
    let team = env.team_b.id.to_string();
    let bad = browser.post(
        "/administration/codes",
        &[
            ("csrf", &token),
            ("equipe", &team),
            ("duree_heures", "99999"),
        ],
    );
    assert_eq!(bad.status, 400);
    assert!(has(&bad.body, "admin-error"));

    let issued = browser.post(
        "/administration/codes",
        &[("csrf", &token), ("equipe", &team), ("duree_heures", "24")],
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    let code = testid_text(&issued.body, "enrolment-code");
    let uri = testid_text(&issued.body, "enrolment-uri");
    let host = server.base.trim_start_matches("http://");
    assert_eq!(
        uri,
        format!(
            "repere://enrol?server=https%3A%2F%2F{}&code={code}",
            host.replace(':', "%3A")
        )
    );
    let qr = &issued.body[issued
        .body
        .find(r#"data-testid="enrolment-qr""#)
        .expect("qr")..];
    assert!(
        qr.contains("<svg") && qr.contains("<path"),
        "an inline SVG QR code"
    );
    let line = last(&env, audit::CODE_ISSUED);
    assert_eq!(
        (line.user_id, line.target_id),
        (Some(admin), Some(env.team_b.id))
    );
    assert!(!line.detail.contains(&code));
    let enrolled = env
        .hub
        .enrol(EnrolRequest {
            code: code.clone(),
            device_label: "tablette".into(),
            writer: None,
            previous_token: None,
        })
        .expect("the code enrols");
    assert_eq!(enrolled.team_id, env.team_b.id);
    let list = browser.get("/administration/tablettes");
    assert!(list.body.contains(&enrolled.device_id.to_string()));
    assert!(!list.body.contains(&code), "shown once");
}

/// The enrolment link of a code issued through `browser`.
fn issued_link(browser: &mut Browser, token: &str, team: Uuid) -> (String, String) {
    let team = team.to_string();
    let issued = browser.post(
        "/administration/codes",
        &[("csrf", token), ("equipe", &team), ("duree_heures", "24")],
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    (
        testid_text(&issued.body, "enrolment-server"),
        testid_text(&issued.body, "enrolment-uri"),
    )
}

#[test]
fn with_a_public_url_a_forged_host_header_does_not_reach_the_enrolment_link() {
    let env = env();
    administrator(&env, ADMIN);
    // Without --public-url: the Host header the browser sent, forged or not.
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);
    browser.host = Some("repere.attaquant.example".into());
    let (address, uri) = issued_link(&mut browser, &token, env.team_a.id);
    assert_eq!(address, "https://repere.attaquant.example");
    assert!(uri.starts_with("repere://enrol?server=https%3A%2F%2Frepere.attaquant.example&code="));
    drop(server);

    let public = PublicUrl::parse("https://repere.example.org/").expect("url");
    let server = start(
        env.hub.clone(),
        HttpConfig {
            pages: PagesConfig {
                public_url: Some(public),
                ..PagesConfig::default()
            },
            ..HttpConfig::default()
        },
    );
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);
    for host in [None, Some("repere.attaquant.example")] {
        browser.host = host.map(str::to_string);
        let (address, uri) = issued_link(&mut browser, &token, env.team_a.id);
        assert_eq!(address, "https://repere.example.org", "Host {host:?}");
        assert!(
            uri.starts_with("repere://enrol?server=https%3A%2F%2Frepere.example.org&code="),
            "{uri}"
        );
    }
}

#[test]
fn serve_refuses_a_public_url_that_is_not_http_or_https_at_startup() {
    let dir = tempfile::tempdir().expect("dir");
    let serve = |flag: Option<&str>, var: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_repere-server"));
        c.args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("REPERE_PUBLIC_URL")
            .env_remove("REPERE_KEY")
            .env_remove("REPERE_KEY_FILE");
        if let Some(flag) = flag {
            c.args(["--public-url", flag]);
        }
        if let Some(var) = var {
            c.env("REPERE_PUBLIC_URL", var);
        }
        c.output().expect("runs")
    };
    for (flag, var) in [
        (Some("ftp://repere.example.org"), None),
        (Some("repere.example.org"), None),
        (None, Some("https://repere.example.org/?retour=ailleurs")),
    ] {
        let out = serve(flag, var);
        assert_eq!(out.status.code(), Some(2), "{flag:?} {var:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--public-url"), "{stderr}");
        assert!(
            stderr.contains("https://") || stderr.contains("no user info, query"),
            "{stderr}"
        );
        assert!(
            !dir.path().join("data").exists(),
            "refused before anything starts"
        );
    }
}

#[test]
fn another_organisations_ids_are_404_and_nothing_changes() {
    let env = env();
    administrator(&env, ADMIN);
    let (other_team, other_login) = other_organisation(&env);
    let other_user = env.hub.find_user(&other_login).expect("other").user;
    let (other_device, _) = env.raw_device(&other_team);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);
    let before = journal(&env, other_user.organisation_id).len();
    let unknown = Uuid::now_v7();
    for id in [other_user.id, unknown] {
        let base = format!("/administration/comptes/{id}");
        assert_eq!(browser.get(&base).status, 404, "GET {base}");
        for action in [
            "desactiver",
            "reactiver",
            "sessions",
            "double-authentification",
            "mot-de-passe",
        ] {
            let page = browser.post(&format!("{base}/{action}"), &[("csrf", &token)]);
            assert_eq!(page.status, 404, "POST {base}/{action}");
            assert!(has(&page.body, "not-found"));
        }
        let page = browser.post(
            &format!("{base}/role"),
            &[("csrf", &token), ("role", "field")],
        );
        assert_eq!(page.status, 404);
        let page = browser.post(&format!("{base}/role"), &[("csrf", &token), ("role", "")]);
        assert_eq!(
            page.status, 404,
            "a bad role for a foreign id is still a 404"
        );
    }
    for id in [other_device.id, unknown] {
        for confirmation in ["oui", ""] {
            let page = browser.post(
                &format!("/administration/tablettes/{id}/revoquer"),
                &[
                    ("csrf", &token),
                    ("effacer", "oui"),
                    ("confirmation", confirmation),
                ],
            );
            assert_eq!(page.status, 404);
        }
        let page = browser.get(&format!("/administration/tablettes/{id}/effacer"));
        assert_eq!(page.status, 404);
        assert!(!page.body.contains(&other_device.id.to_string()));
    }
    let other = other_team.id.to_string();
    let page = browser.post(
        "/administration/codes",
        &[("csrf", &token), ("equipe", &other), ("duree_heures", "24")],
    );
    assert_eq!(page.status, 404);
    let mine = browser.get("/administration/comptes");
    assert!(!mine.body.contains(&other_user.id.to_string()));
    assert!(!mine.body.contains(&other_login));
    let devices = browser.get("/administration/tablettes");
    assert!(!devices.body.contains(&other_device.id.to_string()));
    assert!(
        !browser
            .get("/administration")
            .body
            .contains(&other.to_string())
    );

    assert!(!env.hub.is_disabled(other_user.id).expect("state"));
    assert_eq!(
        env.hub.find_user(&other_login).expect("other").user.role,
        Role::Coordinator
    );
    assert!(
        env.hub.devices(Some(other_team.id)).expect("devices")[0]
            .revoked_at
            .is_none()
    );
    assert_eq!(journal(&env, other_user.organisation_id).len(), before);
    let mut theirs = Browser::new(&server);
    theirs.signed_in(&other_login, PASSWORD);
}

#[test]
fn forms_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let env = env();
    administrator(&env, ADMIN);
    let sam = coordinator(&env, COORDINATOR);
    let (device, _) = env.raw_device(&env.team_a);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(ADMIN, PASSWORD);
    let last_char = if token.ends_with('A') { 'B' } else { 'A' };
    let wrong = format!("{}{last_char}", &token[..token.len() - 1]);
    let before = journal(&env, env.org.id).len();
    let team = env.team_a.id.to_string();
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/administration/equipes".into(), vec![("nom", "Binôme")]),
        (
            "/administration/organisations".into(),
            vec![
                ("nom", "Nouvelle organisation"),
                ("admin_nom", "X"),
                ("identifiant", "x@x"),
            ],
        ),
        (
            "/administration/organisations/renommer".into(),
            vec![("nom", "Autre nom")],
        ),
        (
            "/administration/comptes".into(),
            vec![("nom", "X"), ("identifiant", "x@x"), ("role", "admin")],
        ),
        (format!("/administration/comptes/{sam}/desactiver"), vec![]),
        (
            format!("/administration/comptes/{sam}/role"),
            vec![("role", "admin")],
        ),
        (
            format!("/administration/comptes/{sam}/mot-de-passe"),
            vec![],
        ),
        (format!("/administration/comptes/{sam}/sessions"), vec![]),
        (
            format!("/administration/tablettes/{}/revoquer", device.id),
            vec![("effacer", "oui"), ("confirmation", "oui")],
        ),
        (
            "/administration/codes".into(),
            vec![("equipe", &team), ("duree_heures", "24")],
        ),
        (
            "/compte/mot-de-passe".into(),
            vec![
                ("actuel", PASSWORD),
                ("nouveau", "un tout nouveau mot de passe"),
                ("confirmation", "un tout nouveau mot de passe"),
            ],
        ),
    ];
    for (path, fields) in &posts {
        for csrf in [None, Some(wrong.as_str())] {
            let mut form: Vec<(&str, &str)> = csrf.map(|c| ("csrf", c)).into_iter().collect();
            form.extend(fields.iter().copied());
            let page = browser.post(path, &form);
            assert_eq!(page.status, 403, "POST {path} with {csrf:?}");
            assert!(has(&page.body, "csrf-rejected"), "POST {path}");
        }
    }
    let overview = env.hub.overview().expect("overview");
    assert_eq!(overview.len(), 1, "no organisation made");
    assert_eq!(overview[0].organisation.name, "Mission Locale test");
    assert_eq!(overview[0].teams.len(), 2);
    assert!(env.hub.find_user("x@x").is_err());
    assert!(!env.hub.is_disabled(sam).expect("state"));
    assert!(
        env.hub.devices(None).expect("devices")[0]
            .revoked_at
            .is_none()
    );
    assert_eq!(journal(&env, env.org.id).len(), before, "nothing journaled");
    assert_eq!(
        browser.get("/administration").status,
        200,
        "still signed in"
    );
    Browser::new(&server).signed_in(COORDINATOR, PASSWORD);
}

#[test]
fn a_user_changes_their_own_password_and_ends_their_other_sessions() {
    let env = env();
    let sam = coordinator(&env, COORDINATOR);
    let server = server(&env);
    let mut here = Browser::new(&server);
    let token = here.signed_in(COORDINATOR, PASSWORD);
    let mut there = Browser::new(&server);
    there.signed_in(COORDINATOR, PASSWORD);
    let mut third = Browser::new(&server);
    third.signed_in(COORDINATOR, PASSWORD);

    let page = here.get("/compte");
    assert_eq!(page.status, 200);
    assert!(has(&page.body, "password-form") && has(&page.body, "second-factor-section"));
    assert_eq!(page.body.matches(r#"data-testid="session-row""#).count(), 3);
    assert_eq!(page.body.matches(r#"data-current="yes""#).count(), 1);

    // Ending one other session (by the id the page gives).
    let marker = r#"action="/compte/sessions/"#;
    let at = page.body.find(marker).expect("an end form") + marker.len();
    let id = page.body[at..].split('/').next().expect("id").to_string();
    assert_eq!(id.len(), 64);
    let ended = here.post(
        &format!("/compte/sessions/{id}/fermer"),
        &[("csrf", &token)],
    );
    assert_eq!(ended.status, 303);
    let still = [there.get("/visites").status, third.get("/visites").status];
    assert!(still.contains(&303) && still.contains(&200), "{still:?}");
    let line = last(&env, audit::SESSION_ENDED);
    assert_eq!((line.user_id, line.target_id), (Some(sam), Some(sam)));
    let again = here.post(
        &format!("/compte/sessions/{id}/fermer"),
        &[("csrf", &token)],
    );
    assert_eq!(again.status, 404, "already ended");
    let nobody = here.post(
        &format!("/compte/sessions/{}/fermer", "ab".repeat(32)),
        &[("csrf", &token)],
    );
    assert_eq!(nobody.status, 404);
    assert_eq!(here.get("/visites").status, 200);

    // Another user's session cannot be ended from here.
    administrator(&env, ADMIN);
    let mut admin = Browser::new(&server);
    admin.signed_in(ADMIN, PASSWORD);
    let admin_page = admin.get("/compte");
    let at = admin_page
        .body
        .find(r#"data-current="yes""#)
        .expect("current");
    assert!(at > 0);
    let admin_sessions = env
        .hub
        .storage()
        .read_with(|tx| {
            let user = tx.credentials_by_login(ADMIN)?.expect("admin").user;
            Ok::<_, HubError>(tx.user_sessions(user.id)?)
        })
        .expect("sessions");
    let admin_id: String = admin_sessions[0]
        .token_hash
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let foreign = here.post(
        &format!("/compte/sessions/{admin_id}/fermer"),
        &[("csrf", &token)],
    );
    assert_eq!(foreign.status, 404);
    assert_eq!(admin.get("/visites").status, 200);

    // The password: the current one is required, the two new ones must match.
    let new = "une phrase de passe toute neuve";
    let wrong = here.post(
        "/compte/mot-de-passe",
        &[
            ("csrf", &token),
            ("actuel", "pas le bon"),
            ("nouveau", new),
            ("confirmation", new),
        ],
    );
    assert_eq!(wrong.status, 400);
    assert!(testid_text(&wrong.body, "password-error").contains("incorrect"));
    let mismatch = here.post(
        "/compte/mot-de-passe",
        &[
            ("csrf", &token),
            ("actuel", PASSWORD),
            ("nouveau", new),
            ("confirmation", "autre"),
        ],
    );
    assert_eq!(mismatch.status, 400);
    let short = here.post(
        "/compte/mot-de-passe",
        &[
            ("csrf", &token),
            ("actuel", PASSWORD),
            ("nouveau", "court"),
            ("confirmation", "court"),
        ],
    );
    assert_eq!(short.status, 400);
    assert!(
        Browser::new(&server).login(COORDINATOR, PASSWORD).status == 303,
        "unchanged"
    );
    let done = here.post(
        "/compte/mot-de-passe",
        &[
            ("csrf", &token),
            ("actuel", PASSWORD),
            ("nouveau", new),
            ("confirmation", new),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/compte?ok=mot-de-passe"));
    assert_eq!(here.get("/visites").status, 200, "this session stays");
    assert_eq!(there.get("/visites").status, 303, "the others end");
    assert_eq!(third.get("/visites").status, 303);
    assert_eq!(
        Browser::new(&server).login(COORDINATOR, PASSWORD).status,
        401
    );
    Browser::new(&server).signed_in(COORDINATOR, new);
    let line = last(&env, audit::PASSWORD_CHANGED);
    assert_eq!((line.user_id, line.target_id), (Some(sam), Some(sam)));
    assert!(!line.detail.contains(new) && !line.detail.contains(PASSWORD));
    let shown = here.get("/compte?ok=mot-de-passe");
    assert!(has(&shown.body, "account-message"));
}

#[test]
fn guessing_the_current_password_from_an_open_session_is_throttled() {
    let env = env();
    coordinator(&env, COORDINATOR);
    let ws = Workspace::new(env.hub.clone());
    let signed = ws
        .login([192, 0, 2, 1].into(), COORDINATOR, PASSWORD)
        .expect("signed in");
    let ip = [192, 0, 2, 1].into();
    let new = "une phrase de passe toute neuve";
    let mut refusals = Vec::new();
    for _ in 0..12 {
        match ws.change_own_password(&signed.coordinator, &signed.token, ip, "devine", new) {
            Err(HubError::BadInput(m)) => refusals.push(m),
            other => panic!("{other:?}"),
        }
    }
    assert!(refusals[0].contains("incorrect"));
    assert!(refusals[11].contains("Trop de tentatives"), "{refusals:?}");
    // Throttled: even the right password is refused now.
    assert!(matches!(
        ws.change_own_password(&signed.coordinator, &signed.token, ip, PASSWORD, new),
        Err(HubError::BadInput(m)) if m.contains("Trop de tentatives")
    ));
}

#[test]
fn the_second_factor_setup_shows_the_otpauth_uri_as_a_qr_code() {
    let env = env();
    coordinator(&env, COORDINATOR);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(COORDINATOR, PASSWORD);
    let started = browser.post("/compte/double-authentification", &[("csrf", &token)]);
    assert_eq!(started.status, 303);
    let setup = browser.get("/compte/double-authentification");
    assert!(testid_text(&setup.body, "totp-uri").starts_with("otpauth://totp/"));
    let qr = &setup.body[setup.body.find(r#"data-testid="totp-qr""#).expect("qr")..];
    assert!(qr.contains("<svg"));
    assert_eq!(csrf(&setup.body), token);
}
