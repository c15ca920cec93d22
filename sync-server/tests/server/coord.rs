//! The coordinators' pages over real loopback sockets: sign-in, sessions, CSRF, the
//! organisation's scope, the review loop with a device store, exports and the dashboard.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, NaiveDate, Utc};
use repere_core::document::RecordDoc;
use repere_core::indicators::{self, Granularity, IndicatorInput, IndicatorQuery};
use repere_core::records::{ReviewTask, ReviewTaskStatus, Youth};
use repere_core::{Author, RecordKind};
use repere_server::HubError;
use repere_server::coord::Workspace;
use repere_server::coord::short_id;
use repere_server::coord::throttle::MAX_ATTEMPTS_PER_ACCOUNT;
use repere_server::http::HttpConfig;
use repere_server::storage::{Role, Team, VisitState};
use repere_server::web::pages::enc;
use uuid::Uuid;

use crate::common::{Env, Tablet, env};
use crate::http::{Server, start};

pub(crate) const PASSWORD: &str = "un mot de passe assez long";

/// A browser without JavaScript: keeps cookies, follows no redirect.
pub(crate) struct Browser {
    client: reqwest::blocking::Client,
    base: String,
    pub(crate) cookies: HashMap<String, String>,
    /// Sent as `X-Forwarded-For` when set (a client behind a reverse proxy).
    pub(crate) forwarded_for: Option<String>,
    /// Sent as `Host` when set (a forged one).
    pub(crate) host: Option<String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) content_type: String,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Browser {
    pub(crate) fn new(server: &Server) -> Browser {
        Browser {
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: server.base.clone(),
            cookies: HashMap::new(),
            forwarded_for: None,
            host: None,
        }
    }

    fn with_forwarded(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        let request = match &self.forwarded_for {
            Some(addr) => request.header("x-forwarded-for", addr),
            None => request,
        };
        match &self.host {
            Some(host) => request.header(reqwest::header::HOST, host),
            None => request,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn finish(&mut self, resp: reqwest::blocking::Response) -> Page {
        for value in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().expect("ascii cookie");
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header(reqwest::header::LOCATION);
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let status = resp.status().as_u16();
        Page {
            status,
            location,
            content_type,
            headers: resp.headers().clone(),
            body: resp.text().expect("body"),
        }
    }

    pub(crate) fn get(&mut self, path: &str) -> Page {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header());
        let resp = self.with_forwarded(request).send().expect("GET");
        self.finish(resp)
    }

    pub(crate) fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let resp = self.with_forwarded(request).send().expect("POST");
        self.finish(resp)
    }

    /// Loads the sign-in page and posts the form.
    pub(crate) fn login(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/connexion");
        assert_eq!(form.status, 200);
        let token = csrf(&form.body);
        self.post(
            "/connexion",
            &[("csrf", &token), ("login", login), ("password", password)],
        )
    }

    /// Signs in, and returns the session's CSRF token (from a page's forms).
    pub(crate) fn signed_in(&mut self, login: &str, password: &str) -> String {
        let page = self.login(login, password);
        assert_eq!(page.status, 303, "signed in: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/visites"));
        let visits = self.get("/visites");
        assert_eq!(visits.status, 200);
        csrf(&visits.body)
    }
}

/// The value of the first hidden `csrf` field.
pub(crate) fn csrf(html: &str) -> String {
    let start =
        html.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().expect("token").to_string()
}

/// The number inside the element with this `data-testid`.
fn testid_number(html: &str, testid: &str) -> u32 {
    let marker = format!(r#"data-testid="{testid}">"#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {testid}")) + marker.len();
    html[start..]
        .split('<')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{testid} is not a number"))
}

/// The `data-total` of the element with this `data-testid`.
fn testid_number_attr(html: &str, testid: &str) -> u32 {
    let marker = format!(r#"data-testid="{testid}" data-total=""#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {testid}")) + marker.len();
    html[start..]
        .split('"')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{testid} has no number"))
}

/// RFC 4180 records, read with the server's own reader.
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<String>> {
    repere_server::coord::csv::parse(text)
}

/// A coordinator of the environment's organisation who can sign in.
pub(crate) fn coordinator(env: &Env, login: &str) -> Uuid {
    let user = env
        .hub
        .create_user_with_login(
            env.org.id,
            "Camille Coordination",
            Role::Coordinator,
            Some(login),
        )
        .expect("user");
    env.hub
        .set_password(user.id, PASSWORD, None)
        .expect("password");
    user.id
}

/// A second organisation with one team and its coordinator.
pub(crate) fn other_organisation(env: &Env) -> (Team, String) {
    let org = env
        .hub
        .create_organisation("Autre association")
        .expect("org");
    let team = env
        .hub
        .create_team(org.id, "Binôme ailleurs")
        .expect("team");
    let user = env
        .hub
        .create_user_with_login(
            org.id,
            "Dominique",
            Role::Coordinator,
            Some("dominique@ailleurs"),
        )
        .expect("user");
    env.hub
        .set_password(user.id, PASSWORD, None)
        .expect("password");
    (team, "dominique@ailleurs".to_string())
}

/// A young person and a visit, made on a tablet and synced.
pub(crate) fn visit(tablet: &mut Tablet) -> (Uuid, Uuid) {
    let youth = tablet.demo.youth();
    let youth_id = tablet.store.create(&youth).expect("youth");
    let contact = tablet.demo.contact(&[youth_id]);
    let contact_id = tablet.store.create(&contact).expect("contact");
    tablet.sync_ok();
    (youth_id, contact_id)
}

pub(crate) fn server(env: &Env) -> Server {
    start(env.hub.clone(), HttpConfig::default())
}

#[test]
fn plain_http_only_when_asked_and_then_without_secure_cookies_or_hsts() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let server = start(
        env.hub.clone(),
        HttpConfig {
            insecure_http: true,
            ..HttpConfig::default()
        },
    );
    let mut browser = Browser::new(&server);
    let good = browser.login("camille@ml.test", PASSWORD);
    assert_eq!(good.status, 303);
    assert!(browser.cookies.contains_key("repere_session"));
    assert!(!browser.cookies.contains_key("__Host-repere_session"));
    assert!(
        good.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap_or_default().contains("Secure"))
    );
    assert!(
        good.headers
            .get(reqwest::header::STRICT_TRANSPORT_SECURITY)
            .is_none()
    );
    assert_eq!(browser.get("/visites").status, 200);
}

#[test]
fn login_accepts_the_right_password_refuses_others_and_rate_limits() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let field = env
        .hub
        .create_user_with_login(env.org.id, "Terrain", Role::Field, Some("terrain@ml.test"))
        .expect("field user");
    env.hub
        .set_password(field.id, PASSWORD, None)
        .expect("field password");
    let server = server(&env);
    let mut browser = Browser::new(&server);

    let anonymous = browser.get("/visites");
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.location.as_deref(), Some("/connexion"));

    // The sign-in form's own token is required.
    let no_token = browser.post(
        "/connexion",
        &[("login", "camille@ml.test"), ("password", PASSWORD)],
    );
    assert_eq!(no_token.status, 403);

    let bad = browser.login("camille@ml.test", "pas le bon mot de passe");
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("Identifiant ou mot de passe incorrect"));
    assert!(!browser.cookies.contains_key("__Host-repere_session"));

    let field_user = browser.login("terrain@ml.test", PASSWORD);
    assert_eq!(field_user.status, 401, "field users cannot sign in");

    let good = browser.login("  Camille@ML.test ", PASSWORD);
    assert_eq!(good.status, 303);
    assert_eq!(good.location.as_deref(), Some("/visites"));
    assert!(browser.cookies.contains_key("__Host-repere_session"));
    // Behind TLS by default: the session cookie never travels in clear, HSTS is sent.
    let session_cookie = good
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-repere_session="))
        .expect("session cookie set")
        .to_string();
    assert!(session_cookie.ends_with("; Secure"), "{session_cookie}");
    assert_eq!(
        good.headers
            .get(reqwest::header::STRICT_TRANSPORT_SECURITY)
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    let visits = browser.get("/visites");
    assert_eq!(visits.status, 200);
    assert!(visits.body.contains(r#"data-testid="visits-total""#));
    assert!(visits.content_type.starts_with("text/html"));

    // The limit of failures for one login (the success above forgot the first one from
    // this address): the next attempt, even with the right password, gets 429 and a
    // French page.
    let mut other = Browser::new(&server);
    for _ in 0..MAX_ATTEMPTS_PER_ACCOUNT {
        assert_eq!(
            other.login("camille@ml.test", "encore raté encore").status,
            401
        );
    }
    let limited = other.login("camille@ml.test", PASSWORD);
    assert_eq!(limited.status, 429);
    assert!(limited.body.contains("Trop de tentatives"));
    assert!(limited.body.contains(r#"data-testid="login-rate-limited""#));
    // Fifteen minutes later it works again.
    env.clock.advance(Duration::minutes(16));
    assert_eq!(other.login("camille@ml.test", PASSWORD).status, 303);

    // Successes and failures are in the organisation's journal, without the passwords.
    let journal = other.get("/journal");
    assert_eq!(journal.status, 200);
    assert!(journal.body.contains(r#"data-action="login_success""#));
    assert!(journal.body.contains(r#"data-action="login_failure""#));
    assert!(journal.body.contains(r#"data-action="login_rate_limited""#));
    assert!(!journal.body.contains("encore raté"));
}

#[test]
fn forms_without_the_session_csrf_token_are_refused() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut tablet = env.tablet(&env.team_a, "csrf");
    let (_, contact_id) = visit(&mut tablet);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);
    let path = format!("/visites/{contact_id}/approuver");

    let missing = browser.post(&path, &[]);
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains(r#"data-testid="csrf-rejected""#));
    let wrong = browser.post(
        &path,
        &[("csrf", "0000000000000000000000000000000000000000000")],
    );
    assert_eq!(wrong.status, 403);
    let page = browser.get(&format!("/visites/{contact_id}"));
    assert!(
        page.body.contains(r#"data-state="to_review""#),
        "nothing changed"
    );
    // Another session's token does not work either.
    let mut second = Browser::new(&server);
    let other_token = second.signed_in("camille@ml.test", PASSWORD);
    assert_ne!(other_token, token);
    assert_eq!(browser.post(&path, &[("csrf", &other_token)]).status, 403);
    // Logging out needs it too.
    assert_eq!(browser.post("/deconnexion", &[]).status, 403);

    let ok = browser.post(&path, &[("csrf", &token)]);
    assert_eq!(ok.status, 303);
    assert_eq!(
        ok.location.as_deref(),
        Some(format!("/visites/{contact_id}?ok=approuvee").as_str())
    );
    let page = browser.get(ok.location.as_deref().expect("back to the visit"));
    assert!(page.body.contains(r#"data-state="approved""#));
    assert!(page.body.contains(r#"data-testid="review-message""#));
}

#[test]
fn sessions_end_after_two_idle_hours_or_twelve_hours_in_all_and_at_logout() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let server = server(&env);
    let mut browser = Browser::new(&server);
    browser.signed_in("camille@ml.test", PASSWORD);

    // Used every 110 minutes, it stays open…
    for _ in 0..6 {
        env.clock.advance(Duration::minutes(110));
        assert_eq!(browser.get("/visites").status, 200);
    }
    // …until 12 hours after sign-in, however busy (11 hours so far).
    env.clock.advance(Duration::minutes(59));
    assert_eq!(browser.get("/visites").status, 200, "11 h 59 after sign-in");
    env.clock.advance(Duration::minutes(1));
    let over = browser.get("/visites");
    assert_eq!(over.status, 303, "12 h after sign-in");
    assert_eq!(over.location.as_deref(), Some("/connexion"));

    // Two idle hours: over.
    browser.signed_in("camille@ml.test", PASSWORD);
    env.clock.advance(Duration::hours(2) - Duration::seconds(1));
    assert_eq!(browser.get("/visites").status, 200);
    env.clock.advance(Duration::hours(2) + Duration::seconds(1));
    let expired = browser.get("/visites");
    assert_eq!(expired.status, 303);
    assert_eq!(expired.location.as_deref(), Some("/connexion"));

    // Logout ends the session on the server, not only in the browser.
    let token = browser.signed_in("camille@ml.test", PASSWORD);
    let cookie = browser
        .cookies
        .get("__Host-repere_session")
        .cloned()
        .expect("cookie");
    let out = browser.post("/deconnexion", &[("csrf", &token)]);
    assert_eq!(out.status, 303);
    assert!(!browser.cookies.contains_key("__Host-repere_session"));
    browser
        .cookies
        .insert("__Host-repere_session".into(), cookie);
    assert_eq!(
        browser.get("/visites").status,
        303,
        "the old cookie is dead"
    );
}

#[test]
fn another_organisations_records_are_not_found_by_url() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let (other_team, other_login) = other_organisation(&env);
    let mut tablet = env.tablet(&env.team_a, "scope");
    let (youth_id, contact_id) = visit(&mut tablet);
    let mut elsewhere = env.tablet(&other_team, "ailleurs");
    let (_, their_contact) = visit(&mut elsewhere);

    let server = server(&env);
    let mut ours = Browser::new(&server);
    let our_token = ours.signed_in("camille@ml.test", PASSWORD);
    assert_eq!(ours.get(&format!("/visites/{contact_id}")).status, 200);
    let question = ours.post(
        &format!("/visites/{contact_id}/question"),
        &[("csrf", &our_token), ("question", "Quel est son projet ?")],
    );
    assert_eq!(question.status, 303);
    let task_id = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.view_by_ref(RecordKind::ReviewTask, contact_id)?))
        .expect("tasks")[0]
        .id;

    let mut theirs = Browser::new(&server);
    let token = theirs.signed_in(&other_login, PASSWORD);
    let unknown = theirs.get(&format!("/visites/{}", Uuid::now_v7()));
    let foreign = theirs.get(&format!("/visites/{contact_id}"));
    assert_eq!(unknown.status, 404);
    assert_eq!(foreign.status, 404);
    assert_eq!(
        foreign.body, unknown.body,
        "out of scope looks like unknown"
    );
    assert_eq!(theirs.get(&format!("/jeunes/{youth_id}")).status, 404);
    assert_eq!(theirs.get("/visites/pas-un-id").status, 404);
    for action in ["approuver", "signaler", "question"] {
        let page = theirs.post(
            &format!("/visites/{contact_id}/{action}"),
            &[("csrf", &token), ("motif", "x"), ("question", "x")],
        );
        assert_eq!(page.status, 404, "{action}");
    }
    assert_eq!(
        theirs
            .post(
                &format!("/questions/{task_id}/cloturer"),
                &[("csrf", &token)]
            )
            .status,
        404
    );
    // Lists and figures hold only their own records, whatever the filter says.
    let list = theirs.get("/visites");
    assert!(!list.body.contains(&contact_id.to_string()));
    assert!(list.body.contains(&their_contact.to_string()));
    let filtered = theirs.get(&format!("/visites?equipe={}", env.team_a.id));
    assert!(filtered.body.contains(r#"data-testid="visits-empty""#));
    let youth = theirs.get(&format!("/jeunes?equipe={}", env.team_a.id));
    assert!(!youth.body.contains(&youth_id.to_string()));
    let csv = theirs.get("/exports/jeunes.csv");
    assert_eq!(
        parse_csv(&csv.body).len(),
        2,
        "header and their one young person"
    );
    // Our visit is untouched.
    let page = ours.get(&format!("/visites/{contact_id}"));
    assert!(page.body.contains(r#"data-state="question""#));
    // Their journal says nothing about our records, ours nothing about theirs.
    let their_journal = theirs.get("/journal").body;
    assert!(!their_journal.contains(&short_id(contact_id)));
    assert!(ours.get("/journal").body.contains(&short_id(contact_id)));
}

#[test]
fn a_question_reaches_the_tablet_and_its_answer_comes_back_to_the_visit_page() {
    let env = env();
    let coordinator_id = coordinator(&env, "camille@ml.test");
    let mut tablet = env.tablet(&env.team_a, "binome-a");
    let (_, contact_id) = visit(&mut tablet);
    let mut other_team = env.tablet(&env.team_b, "binome-b");
    other_team.sync_ok();

    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);
    let question = "Pouvez-vous préciser son projet de formation ?";
    let asked = browser.post(
        &format!("/visites/{contact_id}/question"),
        &[("csrf", &token), ("question", question)],
    );
    assert_eq!(asked.status, 303);
    let page = browser.get(&format!("/visites/{contact_id}"));
    assert!(page.body.contains(question));
    assert!(page.body.contains(r#"data-state="question""#));
    assert!(page.body.contains(r#"data-status="open""#));

    // The team's tablet pulls the question at its next sync…
    tablet.sync_ok();
    let tasks = tablet.store.review_tasks(true).expect("tasks");
    assert_eq!(tasks.len(), 1);
    let (task_id, task) = &tasks[0];
    assert_eq!(task.question, question);
    assert_eq!(task.contact_id, contact_id);
    assert_eq!(task.team_id, env.team_a.id);
    assert_eq!(task.asked_by, "Camille Coordination");
    // …written by the coordinator: nil device, the user's id as member.
    let stored = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.document(*task_id)?))
        .expect("read")
        .expect("stored like any record");
    let mut doc = RecordDoc::load(
        RecordKind::ReviewTask,
        *task_id,
        &stored.doc,
        Author {
            device_id: Uuid::nil(),
            member_id: Uuid::nil(),
        },
    )
    .expect("document");
    let author = doc.history()[0].author.expect("author");
    assert_eq!(author.device_id, Uuid::nil());
    assert_eq!(author.member_id, coordinator_id);
    // Another team's tablet never sees it.
    other_team.sync_ok();
    assert!(
        other_team
            .store
            .review_tasks(false)
            .expect("tasks")
            .is_empty()
    );

    // The tablet answers; after its sync the answer is on the visit page.
    let answer = "Il vise un CAP de mécanique, rendez-vous pris lundi";
    tablet
        .store
        .answer_review_task(*task_id, answer)
        .expect("answer");
    tablet.sync_ok();
    let page = browser.get(&format!("/visites/{contact_id}"));
    assert!(page.body.contains(answer), "the answer is shown");
    assert!(page.body.contains(r#"data-status="answered""#));
    assert!(page.body.contains(r#"data-testid="review-task-answer""#));
    let list = browser.get("/visites?etat=question");
    assert!(list.body.contains(r#"data-testid="visit-answered""#));

    // Closing it is an edit that syncs back to the tablet, answer kept.
    let closed = browser.post(
        &format!("/questions/{task_id}/cloturer"),
        &[("csrf", &token)],
    );
    assert_eq!(closed.status, 303);
    assert_eq!(
        closed.location.as_deref(),
        Some(format!("/visites/{contact_id}?ok=cloturee").as_str())
    );
    tablet.sync_ok();
    let task: ReviewTask = tablet.store.get(*task_id).expect("task");
    assert_eq!(task.status, ReviewTaskStatus::Closed);
    assert_eq!(task.answer, answer);
    let page = browser.get(&format!("/visites/{contact_id}"));
    assert!(page.body.contains(r#"data-status="closed""#));
    assert!(!page.body.contains(r#"data-testid="close-task-button""#));
    // A closed question stays on the page with its answer, and in the review's history.
    assert!(page.body.contains(question) && page.body.contains(answer));
    assert!(page.body.contains("Question posée au binôme") && page.body.contains("Question close"));

    // Flag with a reason: shown on the page, never in the journal.
    let reason = "Notes à compléter : Kévin Martin";
    let flagged = browser.post(
        &format!("/visites/{contact_id}/signaler"),
        &[("csrf", &token), ("motif", reason)],
    );
    assert_eq!(flagged.status, 303);
    let page = browser.get(&format!("/visites/{contact_id}"));
    assert!(page.body.contains(r#"data-state="flagged""#));
    assert!(page.body.contains("Kévin Martin"));
    let empty = browser.post(
        &format!("/visites/{contact_id}/question"),
        &[("csrf", &token), ("question", "   ")],
    );
    assert_eq!(
        empty.location.as_deref(),
        Some(format!("/visites/{contact_id}?erreur=saisie").as_str())
    );
    let journal = browser.get("/journal");
    for action in [
        "ask_question",
        "close_question",
        "flag_visit",
        "view_visit",
        "login_success",
    ] {
        assert!(
            journal.body.contains(&format!(r#"data-action="{action}""#)),
            "{action} audited"
        );
    }
    assert!(!journal.body.contains("Kévin"));
    assert!(!journal.body.contains("projet de formation"));

    // Erasing the visit erases the questions that quote it.
    env.hub.erase(contact_id).expect("erase");
    let gone = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.document(*task_id)?))
        .expect("read");
    assert!(gone.is_none(), "the question went with the visit");
}

/// Youth with names nobody could mistake for anything else on the page.
pub(crate) fn named_youth(tablet: &mut Tablet, n: usize) -> Vec<(Uuid, Youth)> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut youth = tablet.demo.youth();
        youth.first_name = Some(format!("Zéphyrine{i}"));
        youth.last_name = Some(format!("Quenouillard{i}"));
        youth.alias = Some(format!("Bidulon{i}"));
        let id = tablet.store.create(&youth).expect("youth");
        let contact = tablet.demo.contact(&[id]);
        tablet.store.create(&contact).expect("contact");
        if i % 2 == 0 {
            let action = tablet.demo.action(id);
            tablet.store.create(&action).expect("action");
        }
        if i % 3 == 0 {
            let outcome = tablet.demo.outcome(id);
            tablet.store.create(&outcome).expect("outcome");
        }
        out.push((id, youth));
    }
    tablet.sync_ok();
    out
}

#[test]
fn csv_exports_parse_and_carry_names_only_when_asked() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut tablet = env.tablet(&env.team_a, "export");
    let youth = named_youth(&mut tablet, 12);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);

    let today = Utc::now().date_naive();
    let from = today - Duration::days(800);
    let indicators = browser.get(&format!(
        "/exports/indicateurs.csv?du={from}&au={today}&granularite=quarter&dimension=commune"
    ));
    assert_eq!(indicators.status, 200);
    assert!(indicators.content_type.starts_with("text/csv"));
    let rows = parse_csv(&indicators.body);
    assert_eq!(rows[0], indicators::csv_columns());
    assert!(rows.len() > 2);
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    assert!(rows.iter().any(|r| r[3] == "total"));
    assert!(rows.iter().any(|r| r[3] == "commune"));

    let pseudonymised = browser.get("/exports/jeunes.csv");
    assert_eq!(pseudonymised.status, 200);
    assert!(
        pseudonymised
            .body
            .starts_with("pseudonym,team,status,age_band,sex,commune,")
    );
    let rows = parse_csv(&pseudonymised.body);
    assert_eq!(rows.len(), 1 + youth.len());
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    for row in &rows[1..] {
        assert!(row[0].starts_with("J-") && row[0].len() == 18, "{}", row[0]);
        assert!(row[0][2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(row[1], "Binôme A");
    }
    for (id, y) in &youth {
        for name in [&y.first_name, &y.last_name, &y.alias] {
            assert!(!pseudonymised.body.contains(name.as_deref().expect("name")));
        }
        assert!(
            !pseudonymised.body.contains(&id.to_string()),
            "no record id"
        );
    }
    let contacts = rows[0]
        .iter()
        .position(|c| c == "contacts")
        .expect("column");
    assert!(rows[1..].iter().all(|r| r[contacts] == "1"));
    // The same pseudonyms every time.
    assert_eq!(browser.get("/exports/jeunes.csv").body, pseudonymised.body);
    // The list shows them all when no status is chosen; an unknown one is refused.
    let list = browser.get("/jeunes?statut=");
    let shown = testid_number_attr(&list.body, "youth-total");
    assert_eq!(shown, youth.len() as u32);
    for statut in ["pas-un-statut", "_unknown"] {
        let list = browser.get(&format!("/jeunes?statut={statut}"));
        assert_eq!(list.status, 400, "statut={statut}");
        assert!(list.body.contains(r#"data-testid="filter-error""#));
    }

    // Names only when the box is ticked, through the form (CSRF required).
    assert_eq!(
        browser
            .post("/exports/jeunes.csv", &[("avec_noms", "oui")])
            .status,
        403
    );
    let unticked = browser.post("/exports/jeunes.csv", &[("csrf", &token)]);
    assert_eq!(unticked.body, pseudonymised.body);
    // Not without a second factor (the page says how to get one)…
    let refused = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .body
            .contains(r#"data-testid="second-factor-required""#)
    );
    assert!(!refused.body.contains("Zéphyrine"));
    // …but once it is set up in this session.
    crate::accounts::enable_second_factor(&env, &mut browser, &token);
    let named = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(named.status, 200);
    let rows = parse_csv(&named.body);
    assert_eq!(
        &rows[0][..5],
        ["pseudonym", "id", "first_name", "last_name", "alias"]
    );
    for (id, y) in &youth {
        let row = rows
            .iter()
            .find(|r| r[1] == id.to_string())
            .expect("a row per young person");
        assert_eq!(Some(row[2].as_str()), y.first_name.as_deref());
        assert_eq!(Some(row[3].as_str()), y.last_name.as_deref());
    }
    // Each export is in the journal, named ones apart, with no name.
    let journal = browser.get("/journal");
    for action in [
        "export_indicators",
        "export_youth_pseudonymised",
        "export_youth_named_refused",
        "second_factor_enabled",
        "export_youth_named",
    ] {
        assert!(journal.body.contains(&format!(r#"data-action="{action}""#)));
    }
    assert!(!journal.body.contains("Zéphyrine"));
}

fn input_from_documents(env: &Env, teams: &[Uuid]) -> IndicatorInput {
    let mut input = IndicatorInput::default();
    for team in teams {
        let docs = env
            .hub
            .storage()
            .read_with(|tx| Ok::<_, HubError>(tx.documents_after(*team, 0, 100_000)?))
            .expect("documents");
        for d in docs {
            let doc = RecordDoc::load(
                d.kind,
                d.id,
                &d.doc,
                Author {
                    device_id: Uuid::nil(),
                    member_id: Uuid::nil(),
                },
            )
            .expect("load");
            input.add(d.id, doc.read_record().expect("record"));
        }
    }
    input
}

#[test]
fn dashboard_figures_equal_core_indicators_on_the_same_records() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut a = env.tablet(&env.team_a, "dash-a");
    let mut b = env.tablet(&env.team_b, "dash-b");
    named_youth(&mut a, 15);
    named_youth(&mut b, 9);
    // Another organisation's records count nowhere here.
    let (other_team, _) = other_organisation(&env);
    let mut elsewhere = env.tablet(&other_team, "dash-c");
    named_youth(&mut elsewhere, 5);

    let server = server(&env);
    let mut browser = Browser::new(&server);
    browser.signed_in("camille@ml.test", PASSWORD);
    let input = input_from_documents(&env, &[env.team_a.id, env.team_b.id]);
    let today = Utc::now().date_naive();
    let from = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");

    for team in [None, Some(env.team_a.id), Some(env.team_b.id)] {
        let teams: BTreeSet<Uuid> = match team {
            Some(t) => [t].into(),
            None => [env.team_a.id, env.team_b.id].into(),
        };
        let expected = indicators::compute(
            &input,
            &IndicatorQuery {
                from,
                to: today,
                granularity: Granularity::Whole,
                teams: Some(teams),
                dimension: None,
            },
        )
        .expect("compute");
        let total = expected.rows[0].figures;
        assert!(total.identified + total.helped > 0);
        let equipe = team.map(|t| t.to_string()).unwrap_or_default();
        let page = browser.get(&format!(
            "/tableau-de-bord?du={from}&au={today}&granularite=quarter&equipe={equipe}&dimension=sex"
        ));
        assert_eq!(page.status, 200);
        assert_eq!(
            testid_number(&page.body, "total-identified"),
            total.identified
        );
        assert_eq!(testid_number(&page.body, "total-helped"), total.helped);
        assert_eq!(
            testid_number(&page.body, "total-mobilised"),
            total.mobilised
        );
        assert_eq!(
            testid_number(&page.body, "total-chantier_participants"),
            total.chantier_participants
        );
        assert_eq!(
            testid_number(&page.body, "total-youth_with_outcome"),
            total.youth_with_outcome
        );
        for (kind, n) in total.outcomes.by_kind() {
            assert_eq!(
                testid_number(&page.body, &format!("total-outcome-{kind}")),
                n
            );
        }
        assert!(page.body.contains(r#"data-testid="chart-periods""#));
        assert!(page.body.contains(r#"data-testid="chart-dimension""#));
    }

    // The workspace's report is core's, row for row (per quarter, by sex).
    let ws = Workspace::new(env.hub.clone());
    let who = ws
        .login([127, 0, 0, 1].into(), "camille@ml.test", PASSWORD)
        .expect("login")
        .coordinator;
    let query = repere_server::coord::reports::DashboardQuery {
        from,
        to: today,
        granularity: Granularity::Quarter,
        dimension: Some(indicators::Dimension::Sex),
        team: None,
    };
    let dashboard = ws.dashboard(&who, &query).expect("dashboard");
    let expected = indicators::compute(
        &input,
        &IndicatorQuery {
            from,
            to: today,
            granularity: Granularity::Quarter,
            teams: Some([env.team_a.id, env.team_b.id].into()),
            dimension: Some(indicators::Dimension::Sex),
        },
    )
    .expect("compute");
    assert_eq!(dashboard.report.rows, expected.rows);
    let csv = browser.get(&format!(
        "/exports/indicateurs.csv?du={from}&au={today}&granularite=quarter&dimension=sex"
    ));
    assert_eq!(csv.body, indicators::to_csv(&expected));

    // Targets and progress.
    env.hub
        .set_targets(
            env.org.id,
            &indicators::Targets {
                identified: Some(250),
                mobilised: Some(125),
                from,
                to: today + Duration::days(365),
            },
        )
        .expect("targets");
    let progress = indicators::progress(
        &input,
        Some(&[env.team_a.id, env.team_b.id].into()),
        &indicators::Targets {
            identified: Some(250),
            mobilised: Some(125),
            from,
            to: today + Duration::days(365),
        },
        ws.today(),
    );
    let page = browser.get("/tableau-de-bord");
    assert_eq!(
        testid_number(&page.body, "progress-identified-achieved"),
        progress.identified.expect("identified").achieved
    );
    assert_eq!(testid_number(&page.body, "progress-identified-target"), 250);
    assert_eq!(testid_number(&page.body, "progress-mobilised-target"), 125);
    let bad = browser.get(&format!("/tableau-de-bord?du={today}&au={from}"));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains(r#"data-testid="dashboard-error""#));
}

/// Issue 11: the tablet counts from its derived tables, the server from its documents;
/// for a team's tablet and the dashboard of that team the figures are the same, row for
/// row, whatever the period and the breakdown.
#[test]
fn a_tablet_counts_what_the_dashboard_counts_for_its_team() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut a = env.tablet(&env.team_a, "count-a");
    let mut b = env.tablet(&env.team_b, "count-b");
    let met = named_youth(&mut a, 14);
    named_youth(&mut b, 8);
    // A group visit entered late at night in another offset (the next day in UTC), and an
    // action that did not take place.
    let mut visit = a.demo.contact(&[met[0].0, met[1].0]);
    visit.occurred_at = "2025-02-28T23:30:00-05:00".parse().expect("instant");
    a.store.create(&visit).expect("group visit");
    let mut planned = a.demo.action(met[2].0);
    planned.status = repere_core::records::ActionStatus::NoShow;
    a.store.create(&planned).expect("action");
    a.sync_ok();

    let ws = Workspace::new(env.hub.clone());
    let who = ws
        .login([127, 0, 0, 1].into(), "camille@ml.test", PASSWORD)
        .expect("login")
        .coordinator;
    let from = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let to = Utc::now().date_naive();
    for (tablet, team) in [(&a, env.team_a.id), (&b, env.team_b.id)] {
        for granularity in [Granularity::Month, Granularity::Quarter, Granularity::Whole] {
            // Team rows are labelled by name on the server: every other breakdown.
            for dimension in std::iter::once(None).chain(
                repere_server::coord::reports::DIMENSIONS
                    .into_iter()
                    .filter(|d| *d != indicators::Dimension::Team)
                    .map(Some),
            ) {
                let dashboard = ws
                    .dashboard(
                        &who,
                        &repere_server::coord::reports::DashboardQuery {
                            from,
                            to,
                            granularity,
                            dimension,
                            team: Some(team),
                        },
                    )
                    .expect("dashboard");
                let own = tablet
                    .store
                    .indicators(&IndicatorQuery {
                        from,
                        to,
                        granularity,
                        teams: None,
                        dimension,
                    })
                    .expect("tablet indicators");
                assert_eq!(
                    own.rows, dashboard.report.rows,
                    "{granularity:?} {dimension:?}"
                );
            }
        }
    }
}

#[test]
fn visits_filter_by_team_period_commune_and_state() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut a = env.tablet(&env.team_a, "filtre-a");
    let mut b = env.tablet(&env.team_b, "filtre-b");
    let (_, visit_a) = visit(&mut a);
    let (_, visit_b) = visit(&mut b);
    let ws = Workspace::new(env.hub.clone());
    let who = ws
        .login([127, 0, 0, 1].into(), "camille@ml.test", PASSWORD)
        .expect("login")
        .coordinator;
    let all = ws.visits(&who, &Default::default()).expect("visits");
    assert_eq!(all.total, 2);
    let only_a = ws
        .visits(
            &who,
            &repere_server::coord::VisitQuery {
                team: Some(env.team_a.id),
                ..Default::default()
            },
        )
        .expect("visits");
    assert_eq!(only_a.items.len(), 1);
    assert_eq!(only_a.items[0].id, visit_a);
    let commune = only_a.items[0].contact.commune.clone();
    let by_code = ws
        .visits(
            &who,
            &repere_server::coord::VisitQuery {
                commune: Some(commune.clone()),
                ..Default::default()
            },
        )
        .expect("visits");
    assert!(by_code.items.iter().all(|v| v.contact.commune == commune));
    let name = repere_server::coord::view::commune_name(&commune).to_uppercase();
    let by_name = ws
        .visits(
            &who,
            &repere_server::coord::VisitQuery {
                commune: Some(name),
                ..Default::default()
            },
        )
        .expect("visits");
    assert_eq!(by_name.total, by_code.total);
    let day = only_a.items[0].contact.occurred_at.date_naive();
    let by_day = ws
        .visits(
            &who,
            &repere_server::coord::VisitQuery {
                from: Some(day),
                to: Some(day),
                team: Some(env.team_a.id),
                ..Default::default()
            },
        )
        .expect("visits");
    assert_eq!(by_day.total, 1);
    ws.approve(&who, visit_b).expect("approve");
    let state = |s| {
        ws.visits(
            &who,
            &repere_server::coord::VisitQuery {
                state: Some(s),
                ..Default::default()
            },
        )
        .expect("visits")
        .items
        .iter()
        .map(|v| v.id)
        .collect::<Vec<_>>()
    };
    assert_eq!(state(VisitState::Approved), vec![visit_b]);
    assert_eq!(state(VisitState::ToReview), vec![visit_a]);
    assert!(state(VisitState::Flagged).is_empty());
    // An erased visit leaves the lists and its review with it.
    env.hub.erase(visit_b).expect("erase");
    assert!(state(VisitState::Approved).is_empty());
    assert!(ws.visit(&who, visit_b).expect("visit").is_none());
}

/// Issue 13: the youth list, the export and the dashboard read each young person's derived
/// summary; it follows new visits, a visit that moves to another young person, and an
/// erasure (whose name leaves the summary at once).
#[test]
fn youth_summaries_follow_visits_and_erasures() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut tablet = env.tablet(&env.team_a, "summaries");
    let youth = named_youth(&mut tablet, 3);
    let ws = Workspace::new(env.hub.clone());
    let who = ws
        .login([127, 0, 0, 1].into(), "camille@ml.test", PASSWORD)
        .expect("login")
        .coordinator;
    let list = |search: Option<&str>| {
        ws.youth_list(
            &who,
            &repere_server::coord::YouthQuery {
                team: None,
                status: None,
                search: search.map(str::to_string),
                page: 1,
            },
        )
        .expect("list")
    };
    let visits_of = |id: Uuid| {
        list(None)
            .items
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.contacts)
    };
    assert_eq!(list(None).total, 3);
    let found = list(Some("zephyrine1 QUENOUILLARD1"));
    assert_eq!(
        found.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![youth[1].0]
    );

    // A group visit of the first two, then the first is taken off it.
    let visit = tablet.demo.contact(&[youth[0].0, youth[1].0]);
    let visit_id = tablet.store.create(&visit).expect("visit");
    tablet.sync_ok();
    assert_eq!(visits_of(youth[0].0), Some(2));
    assert_eq!(visits_of(youth[1].0), Some(2));
    tablet
        .store
        .edit(visit_id, |record: &mut repere_core::records::Contact| {
            record.youth_ids = [youth[1].0].into();
        })
        .expect("edit");
    tablet.sync_ok();
    assert_eq!(visits_of(youth[0].0), Some(1));
    assert_eq!(visits_of(youth[1].0), Some(2));

    let identified = |ws: &Workspace| {
        let today = Utc::now().date_naive();
        ws.dashboard(
            &who,
            &repere_server::coord::reports::DashboardQuery {
                from: today - Duration::days(3650),
                to: today,
                granularity: Granularity::Whole,
                dimension: None,
                team: None,
            },
        )
        .expect("dashboard")
        .totals
    };
    let before = identified(&ws);
    env.hub.erase(youth[2].0).expect("erase");
    assert_eq!(list(None).total, 2);
    assert!(list(Some("zephyrine2")).items.is_empty());
    let after = identified(&ws);
    assert_eq!(
        after.identified + after.helped + 1,
        before.identified + before.helped,
        "the erased young person is no longer counted"
    );
    let export = ws
        .youth_csv(&who, &repere_server::coord::reports::YouthExport::default())
        .expect("export");
    assert_eq!(export.rows, 2);
}
