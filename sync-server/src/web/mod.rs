//! The coordinators' pages over HTTP (same process and port as the sync API).
//!
//! Routes (French paths): `/connexion` (GET form, POST sign-in), `/deconnexion` (POST),
//! `/visites`, `/visites/{id}` and its review actions (POST `/approuver`, `/question`,
//! `/signaler`), POST `/questions/{id}/cloturer`, `/jeunes`, `/jeunes/{id}`,
//! `/tableau-de-bord`, `/tableau-de-bord/consortium` (every organisation's totals for an
//! administrator), `/exports`, `/exports/indicateurs.csv`, `/exports/jeunes.csv`
//! (GET: pseudonymised, without profile flags; POST: the form's boxes, profile flags and
//! names, the names only for a session confirmed with a second factor), `/journal`,
//! `/transferts` (a young person's transfers to another team: GET the list, POST a request
//! from `/jeunes/{id}/transfert`, POST `/accepter`, `/refuser`, `/annuler`),
//! `/connexion/code` (the second factor at sign-in), `/compte` (the user's own account:
//! second factor, password, sessions; `account`) and `/administration/…` (the
//! administrators' pages; `admin`).
//!
//! Security: a session cookie `__Host-repere_session` (HttpOnly, SameSite=Strict, Path=/,
//! Secure) and HSTS, as served behind TLS (plain `repere_session` and no HSTS only with
//! `--insecure-http`), a CSRF token in every POST form
//! (the sign-in forms' is a double-submit cookie), a strict Content-Security-Policy (no
//! script at all; the one stylesheet by hash), `no-store` caching, and no framing. The
//! client address (for the sign-in throttle) is the connection's, or the last
//! `X-Forwarded-For` entry when the connection comes from the `--trusted-proxy`.

mod account;
pub mod admin;
mod break_glass;
pub mod chart;
pub mod pages;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use maud::Markup;
use repere_core::records::YouthStatus;
use uuid::Uuid;

use crate::coord::access::AccessFormat;
use crate::coord::auth::{CurrentSession, SessionPolicy, tokens_match};
use crate::coord::conflicts::{ConflictPage, Resolution};
use crate::coord::reports::{
    DashboardQuery, Export, YouthExport, granularity_id, parse_dimension, parse_granularity,
};
use crate::coord::view::{VisitQuery, YouthQuery};
use crate::coord::{LoginError, Workspace, parse_day, short_id};
use crate::hub::ErasureReason;
use crate::hub::HubError;
use crate::secret;
use crate::storage::VisitState;
use chrono::NaiveDate;
use pages::Nav;

pub const SESSION_COOKIE: &str = "repere_session";
/// The sign-in form's double-submit token (no session exists yet).
pub const LOGIN_COOKIE: &str = "repere_login";
/// The sign-in waiting for its second factor (set once the password is accepted).
pub const CHALLENGE_COOKIE: &str = "repere_challenge";
/// Form bodies are small: a question, a reason.
const FORM_BODY_LIMIT: usize = 64 * 1024;

/// The pages' settings (serve flags), carried by `HttpConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagesConfig {
    /// The reverse proxy whose `X-Forwarded-For` gives the client address
    /// (`--trusted-proxy`); from any other peer the header is ignored.
    pub trusted_proxy: Option<IpAddr>,
    /// Session lifetimes (`--session-idle-minutes`, `--session-max-hours`).
    pub sessions: SessionPolicy,
    /// The address put into enrolment links (`--public-url`); `None`: the one the
    /// administrator's browser reached.
    pub public_url: Option<admin::PublicUrl>,
}

struct WebState {
    ws: Arc<Workspace>,
    cookies: Cookies,
    trusted_proxy: Option<IpAddr>,
    public_url: Option<admin::PublicUrl>,
}

/// The pages' routes, with their own state and body limit, to merge into the server's
/// router (settings: see [`PagesConfig`]).
pub fn router(ws: Arc<Workspace>, insecure_http: bool, config: &PagesConfig) -> Router {
    let state = Arc::new(WebState {
        ws,
        cookies: Cookies {
            tls: !insecure_http,
        },
        trusted_proxy: config.trusted_proxy.map(|ip| ip.to_canonical()),
        public_url: config.public_url.clone(),
    });
    Router::new()
        .route("/", get(root))
        .route("/connexion", get(login_form).post(login_submit))
        .route("/connexion/code", get(code_form).post(code_submit))
        .route("/deconnexion", post(logout))
        .route(
            "/compte/double-authentification",
            get(totp_setup).post(totp_start),
        )
        .route(
            "/compte/double-authentification/confirmer",
            post(totp_confirm),
        )
        .route("/visites", get(visits))
        .route("/visites/{id}", get(visit))
        .route("/visites/{id}/approuver", post(approve))
        .route("/visites/{id}/question", post(ask))
        .route("/visites/{id}/signaler", post(flag))
        .route("/questions/{id}/cloturer", post(close_task))
        .route("/fiches/{id}/conflit", post(resolve_conflict))
        .route("/jeunes", get(youth_list))
        .route("/jeunes/{id}", get(youth))
        .route("/jeunes/{id}/acces", get(access_page))
        .route("/jeunes/{id}/acces.json", get(access_json))
        .route("/tableau-de-bord", get(dashboard))
        .route("/tableau-de-bord/consortium", get(consortium))
        .route("/exports", get(exports))
        .route("/exports/indicateurs.csv", get(export_indicators))
        .route(
            "/exports/jeunes.csv",
            get(export_youth_get).post(export_youth_post),
        )
        .route("/conservation", get(retention))
        .route("/effacements", get(erasure_list).post(erasure_request))
        .route("/effacements/{id}", get(erasure_receipt))
        .route("/effacements/{id}/approuver", post(erasure_approve))
        .route("/effacements/{id}/refuser", post(erasure_refuse))
        .route("/jeunes/{id}/transfert", get(transfer_form))
        .route("/transferts", get(transfer_list).post(transfer_request))
        .route("/transferts/{id}/accepter", post(transfer_accept))
        .route("/transferts/{id}/refuser", post(transfer_refuse))
        .route("/transferts/{id}/annuler", post(transfer_cancel))
        .route("/journal", get(journal))
        .merge(account::routes())
        .merge(break_glass::routes())
        .merge(admin::routes())
        // Unknown addresses get the French page, not an empty 404.
        .fallback(|| async { not_found() })
        .layer(middleware::map_response(move |response| async move {
            security_headers(response, !insecure_http)
        }))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .with_state(state)
}

fn csp() -> HeaderValue {
    static CSP: OnceLock<HeaderValue> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash =
            base64::engine::general_purpose::STANDARD.encode(secret::sha256(pages::CSS.as_bytes()));
        HeaderValue::from_str(&format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    })
    .clone()
}

fn security_headers(mut response: Response, tls: bool) -> Response {
    let h = response.headers_mut();
    if tls {
        // Browsers keep to HTTPS for a year once they have seen this over TLS.
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(header::CONTENT_SECURITY_POLICY, csp());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/visites")),
        )],
    )
        .into_response()
}

/// The answer to an address that does not exist, as the pages' fallback gives it (same
/// page, same headers): for routes that must not reveal themselves to whoever may not use
/// them (`/metrics`).
pub(crate) fn not_found_response(tls: bool) -> Response {
    security_headers(not_found(), tls)
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message_page(
            None,
            "Page introuvable",
            "Cette page n'existe pas, ou vous n'y avez pas accès.",
            "not-found",
        ),
    )
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::message_page(
            None,
            "Action refusée",
            "Le formulaire a expiré ou ne vient pas de cette page. Rechargez la page et recommencez.",
            "csrf-rejected",
        ),
    )
}

fn failure(e: HubError) -> Response {
    match e {
        HubError::NotFound { .. } => not_found(),
        HubError::BadInput(message) => page(
            StatusCode::BAD_REQUEST,
            pages::message_page(None, "Demande incorrecte", &message, "bad-request"),
        ),
        e => {
            tracing::error!(error = %e, "page failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message_page(
                    None,
                    "Erreur du serveur",
                    "Le serveur a rencontré une erreur. Réessayez dans un moment.",
                    "server-error",
                ),
            )
        }
    }
}

/// Runs workspace work on the blocking pool (SQLite, Automerge and Argon2 are synchronous).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, HubError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HubError::Internal(format!("request worker failed: {e}")))?
}

/// A cookie's value from the request headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// How the pages' cookies are named and flagged. Behind TLS (the default) they are
/// `Secure` and `__Host-` prefixed: a browser then never sends them over plain HTTP and
/// no other host or path can plant one; `--insecure-http` drops both for local use.
#[derive(Debug, Clone, Copy)]
struct Cookies {
    tls: bool,
}

impl Cookies {
    fn name(self, base: &str) -> String {
        if self.tls {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    fn read(self, headers: &HeaderMap, base: &str) -> Option<String> {
        cookie(headers, &self.name(base))
    }

    /// `__Host-` requires `Path=/`, so every cookie is site-wide; they are HttpOnly and
    /// SameSite=Strict, and the sign-in ones short-lived.
    fn set(self, base: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut c = format!(
            "{}={value}; HttpOnly; SameSite=Strict; Path=/",
            self.name(base)
        );
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.tls {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// The last address of the `X-Forwarded-For` headers (the one the proxy itself added; the
/// ones before it are the client's to choose).
pub(crate) fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())?;
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The client's address: the connection's, or what the trusted proxy forwarded.
fn client_ip(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted_proxy: Option<IpAddr>,
) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
            c.0.ip().to_canonical()
        });
    if trusted_proxy == Some(peer) {
        forwarded_for(headers).map_or(peer, |ip| ip.to_canonical())
    } else {
        peer
    }
}

/// The signed-in session, or the answer to give instead (back to the sign-in page).
async fn require(
    state: &WebState,
    headers: &HeaderMap,
) -> Result<(CurrentSession, String), Response> {
    let Some(token) = state
        .cookies
        .read(headers, SESSION_COOKIE)
        .filter(|t| !t.is_empty())
    else {
        return Err(redirect("/connexion"));
    };
    let ws = state.ws.clone();
    let lookup = token.clone();
    match blocking(move || ws.session(&lookup)).await {
        Ok(Some(session)) => Ok((session, token)),
        // Over (expired, revoked, disabled): the browser forgets the cookie too.
        Ok(None) => {
            let mut response = redirect("/connexion");
            response.headers_mut().append(
                header::SET_COOKIE,
                state.cookies.set(SESSION_COOKIE, "", Some(0)),
            );
            Err(response)
        }
        Err(e) => Err(failure(e)),
    }
}

/// A signed-in POST: the session and a matching CSRF token in the form.
async fn require_post(
    state: &WebState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(CurrentSession, String), Response> {
    let (session, token) = require(state, headers).await?;
    let given = form.get("csrf").map_or("", String::as_str);
    if !tokens_match(&session.csrf, given) {
        tracing::warn!(user = %session.coordinator.user.id, "form refused: CSRF token missing or wrong");
        return Err(forbidden());
    }
    Ok((session, token))
}

fn nav<'a>(session: &'a CurrentSession, active: &'static str) -> Nav<'a> {
    Nav {
        who: &session.coordinator,
        csrf: &session.csrf,
        active,
    }
}

fn param(q: &HashMap<String, String>, name: &str) -> String {
    q.get(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// A page's filters read from its query string (or form), with what was wrong with them:
/// an invalid value is said on the page in French (400, the form as typed) rather than
/// silently ignored. Empty values mean "no filter".
#[derive(Default)]
struct Filters(Vec<String>);

impl Filters {
    fn refuse(&mut self, message: &str) {
        self.0.push(message.to_string());
    }

    /// A `du`/`au` date as the date inputs send it (`AAAA-MM-JJ`).
    fn day(&mut self, raw: &str, label: &str) -> Option<NaiveDate> {
        if raw.is_empty() {
            return None;
        }
        let day = parse_day(raw);
        if day.is_none() {
            self.0.push(format!(
                "La date « {label} » n'est pas une date valide : choisissez-la dans le calendrier (AAAA-MM-JJ)."
            ));
        }
        day
    }

    /// Refuses an end before the start.
    fn period(&mut self, from: Option<NaiveDate>, to: Option<NaiveDate>) {
        if from.zip(to).is_some_and(|(f, t)| t < f) {
            self.refuse("La date de fin précède la date de début.");
        }
    }

    /// A team id. A well-formed id that is not one of the coordinator's teams is kept: it
    /// matches nothing, exactly like an unknown one (`Coordinator::scope`).
    fn team(&mut self, raw: &str) -> Option<Uuid> {
        if raw.is_empty() {
            return None;
        }
        let team = Uuid::parse_str(raw).ok();
        if team.is_none() {
            self.refuse("L'équipe demandée n'existe pas : choisissez-en une dans la liste.");
        }
        team
    }

    /// One of a list's values (`parsed` is `raw` read, `None` when unknown).
    fn choice<T>(&mut self, raw: &str, parsed: Option<T>, message: &str) -> Option<T> {
        if !raw.is_empty() && parsed.is_none() {
            self.refuse(message);
        }
        parsed
    }

    /// The 1-based page number (at most `u32::MAX`, so offsets never overflow).
    fn page(&mut self, raw: &str) -> usize {
        if raw.is_empty() {
            return 1;
        }
        match raw.parse::<u32>() {
            Ok(n) if n >= 1 => n as usize,
            _ => {
                self.refuse("Le numéro de page doit être un nombre entier, 1 ou plus.");
                1
            }
        }
    }

    /// The French message for the page, if anything was wrong.
    fn problem(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.join(" "))
    }
}

/// A list page whose page number is past its last page says so (404, with a link to it).
fn list_status<T>(list: &crate::coord::Paged<T>) -> StatusCode {
    if list.page > list.pages {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    }
}

async fn root() -> Response {
    redirect("/visites")
}

async fn login_form(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if require(&state, &headers).await.is_ok() {
        return redirect("/visites");
    }
    login_page(&state, StatusCode::OK, None)
}

/// The sign-in page with a fresh double-submit token.
fn login_page(state: &WebState, status: StatusCode, error: Option<&str>) -> Response {
    with_login_token(state, status, |token| pages::login_page(token, error))
}

/// A sign-in form page (password or code) with a fresh double-submit token in its cookie.
fn with_login_token(
    state: &WebState,
    status: StatusCode,
    render: impl FnOnce(&str) -> Markup,
) -> Response {
    let Ok(token) = secret::new_token() else {
        return failure(HubError::Internal("random source failed".into()));
    };
    let mut response = page(status, render(&token));
    response.headers_mut().append(
        header::SET_COOKIE,
        state.cookies.set(LOGIN_COOKIE, &token, Some(3600)),
    );
    response
}

/// Whether a sign-in form carries the token of its double-submit cookie.
fn login_token_ok(state: &WebState, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let expected = state
        .cookies
        .read(headers, LOGIN_COOKIE)
        .unwrap_or_default();
    let given = form.get("csrf").map_or("", String::as_str);
    !expected.is_empty() && tokens_match(&expected, given)
}

fn rate_limited() -> Response {
    let mut response = page(StatusCode::TOO_MANY_REQUESTS, pages::rate_limited_page());
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("900"));
    response
}

/// Signed in: the session cookie, the sign-in cookies cleared, on to the visits.
fn signed_in(state: &WebState, token: &str) -> Response {
    let mut response = redirect("/visites");
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        state.cookies.set(SESSION_COOKIE, token, None),
    );
    for name in [LOGIN_COOKIE, CHALLENGE_COOKIE] {
        h.append(header::SET_COOKIE, state.cookies.set(name, "", Some(0)));
    }
    response
}

const EXPIRED_FORM: &str = "La page de connexion a expiré. Saisissez à nouveau vos identifiants.";
const EXPIRED_CHALLENGE: &str =
    "La connexion a expiré (5 minutes pour saisir le code). Saisissez à nouveau vos identifiants.";

async fn login_submit(
    State(state): State<Arc<WebState>>,
    extensions: Extensions,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !login_token_ok(&state, &headers, &form) {
        return login_page(&state, StatusCode::FORBIDDEN, Some(EXPIRED_FORM));
    }
    let ip = client_ip(&extensions, &headers, state.trusted_proxy);
    let login = form.get("login").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let ws = state.ws.clone();
    let result = tokio::task::spawn_blocking(move || ws.login(ip, &login, &password)).await;
    match result {
        Ok(Ok(signed)) => signed_in(&state, &signed.token),
        Ok(Err(LoginError::NeedsSecondFactor(challenge))) => {
            let mut response = redirect("/connexion/code");
            response.headers_mut().append(
                header::SET_COOKIE,
                state.cookies.set(
                    CHALLENGE_COOKIE,
                    &challenge.token,
                    Some(crate::coord::auth::CHALLENGE_TTL.num_seconds()),
                ),
            );
            response
        }
        Ok(Err(LoginError::Invalid)) => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Identifiant ou mot de passe incorrect."),
        ),
        Ok(Err(LoginError::Expired)) => {
            login_page(&state, StatusCode::UNAUTHORIZED, Some(EXPIRED_CHALLENGE))
        }
        Ok(Err(LoginError::RateLimited)) => rate_limited(),
        Ok(Err(LoginError::Failed(e))) => failure(e),
        Err(e) => failure(HubError::Internal(format!("request worker failed: {e}"))),
    }
}

/// The second-factor form, for a browser whose password was just accepted.
async fn code_form(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if state
        .cookies
        .read(&headers, CHALLENGE_COOKIE)
        .is_none_or(|c| c.is_empty())
    {
        return redirect("/connexion");
    }
    with_login_token(&state, StatusCode::OK, |token| {
        pages::second_factor_page(token, None)
    })
}

async fn code_submit(
    State(state): State<Arc<WebState>>,
    extensions: Extensions,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(challenge) = state
        .cookies
        .read(&headers, CHALLENGE_COOKIE)
        .filter(|c| !c.is_empty())
    else {
        return login_page(&state, StatusCode::UNAUTHORIZED, Some(EXPIRED_CHALLENGE));
    };
    if !login_token_ok(&state, &headers, &form) {
        return with_login_token(&state, StatusCode::FORBIDDEN, |token| {
            pages::second_factor_page(
                token,
                Some("La page a expiré. Saisissez à nouveau le code."),
            )
        });
    }
    let ip = client_ip(&extensions, &headers, state.trusted_proxy);
    let code = form.get("code").cloned().unwrap_or_default();
    let ws = state.ws.clone();
    let result =
        tokio::task::spawn_blocking(move || ws.login_second_factor(ip, &challenge, &code)).await;
    match result {
        Ok(Ok(signed)) => signed_in(&state, &signed.token),
        Ok(Err(LoginError::Invalid)) => {
            with_login_token(&state, StatusCode::UNAUTHORIZED, |token| {
                pages::second_factor_page(
                    token,
                    Some(
                        "Code incorrect, ou déjà utilisé. Saisissez le code affiché par l'application, ou un code de secours.",
                    ),
                )
            })
        }
        Ok(Err(LoginError::RateLimited)) => rate_limited(),
        Ok(Err(LoginError::Expired | LoginError::NeedsSecondFactor(_))) => {
            let mut response =
                login_page(&state, StatusCode::UNAUTHORIZED, Some(EXPIRED_CHALLENGE));
            response.headers_mut().append(
                header::SET_COOKIE,
                state.cookies.set(CHALLENGE_COOKIE, "", Some(0)),
            );
            response
        }
        Ok(Err(LoginError::Failed(e))) => failure(e),
        Err(e) => failure(HubError::Internal(format!("request worker failed: {e}"))),
    }
}

async fn logout(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (_, token) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    if let Err(e) = blocking(move || ws.logout(&token)).await {
        return failure(e);
    }
    let mut response = redirect("/connexion");
    response.headers_mut().append(
        header::SET_COOKIE,
        state.cookies.set(SESSION_COOKIE, "", Some(0)),
    );
    response
}

async fn visits(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = pages::VisitForm {
        equipe: param(&q, "equipe"),
        du: param(&q, "du"),
        au: param(&q, "au"),
        commune: param(&q, "commune"),
        etat: param(&q, "etat"),
    };
    let mut filters = Filters::default();
    let query = VisitQuery {
        team: filters.team(&form.equipe),
        from: filters.day(&form.du, "Du"),
        to: filters.day(&form.au, "Au"),
        commune: Some(form.commune.clone()).filter(|c| !c.is_empty()),
        state: filters.choice(
            &form.etat,
            VisitState::parse(&form.etat),
            "L'état de revue demandé n'existe pas : choisissez-en un dans la liste.",
        ),
        page: filters.page(&param(&q, "page")),
    };
    filters.period(query.from, query.to);
    if let Some(problem) = filters.problem() {
        return page(
            StatusCode::BAD_REQUEST,
            pages::visits_page(&nav(&session, "/visites"), &form, Err(&problem)),
        );
    }
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.visits(&who, &query)).await {
        Ok(list) => page(
            list_status(&list),
            pages::visits_page(&nav(&session, "/visites"), &form, Ok(&list)),
        ),
        Err(e) => failure(e),
    }
}

fn flash(code: &str) -> Option<&'static str> {
    match code {
        "approuvee" => Some("Visite approuvée."),
        "question" => Some(
            "Question envoyée : elle arrivera sur les tablettes de l'équipe à leur prochaine synchronisation.",
        ),
        "signalee" => Some("Visite signalée."),
        "cloturee" => Some("Question close."),
        "conflit" => Some(
            "Conflit résolu : la valeur arrivera sur les tablettes de l'équipe à leur prochaine synchronisation.",
        ),
        _ => None,
    }
}

async fn visit(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.visit(&who, id)).await {
        Ok(Some(detail)) => {
            let error = (param(&q, "erreur") == "saisie")
                .then_some("Le texte est vide ou trop long : rien n'a été enregistré.");
            page(
                StatusCode::OK,
                pages::visit_page(
                    &nav(&session, "/visites"),
                    &detail,
                    flash(&param(&q, "ok")),
                    error,
                    None,
                ),
            )
        }
        Ok(None) => not_found(),
        Err(e) => failure(e),
    }
}

/// The shared path of the review actions: session, CSRF, the id, then the work; back to
/// the visit with a message.
async fn review_action(
    state: Arc<WebState>,
    headers: HeaderMap,
    id: String,
    form: HashMap<String, String>,
    ok: &'static str,
    work: impl FnOnce(
        &Workspace,
        &crate::coord::Coordinator,
        Uuid,
        &HashMap<String, String>,
    ) -> Result<Uuid, HubError>
    + Send
    + 'static,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || work(&ws, &who, id, &form)).await {
        Ok(visit) => redirect(&format!("/visites/{visit}?ok={ok}")),
        Err(HubError::BadInput(_)) => redirect(&format!("/visites/{id}?erreur=saisie")),
        Err(e) => failure(e),
    }
}

async fn approve(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    review_action(state, headers, id, form, "approuvee", |ws, who, id, _| {
        ws.approve(who, id).map(|()| id)
    })
    .await
}

async fn ask(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    review_action(state, headers, id, form, "question", |ws, who, id, form| {
        ws.ask(who, id, form.get("question").map_or("", String::as_str))
            .map(|_| id)
    })
    .await
}

async fn flag(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    review_action(state, headers, id, form, "signalee", |ws, who, id, form| {
        ws.flag(who, id, form.get("motif").map_or("", String::as_str))
            .map(|()| id)
    })
    .await
}

async fn close_task(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    review_action(state, headers, id, form, "cloturee", |ws, who, id, _| {
        ws.close_task(who, id)
    })
    .await
}

async fn youth_list(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = pages::YouthForm {
        equipe: param(&q, "equipe"),
        statut: param(&q, "statut"),
        q: param(&q, "q"),
    };
    let mut filters = Filters::default();
    let query = YouthQuery {
        team: filters.team(&form.equipe),
        // Only the statuses this version knows (serde's catch-all would otherwise read an
        // unknown one as « from a newer version »).
        status: filters.choice(
            &form.statut,
            serde_json::from_value(serde_json::Value::String(form.statut.clone()))
                .ok()
                .filter(|s| *s != YouthStatus::FromNewerVersion),
            "Le statut demandé n'existe pas : choisissez-en un dans la liste.",
        ),
        search: Some(form.q.clone()).filter(|s| !s.is_empty()),
        page: filters.page(&param(&q, "page")),
    };
    if let Some(problem) = filters.problem() {
        return page(
            StatusCode::BAD_REQUEST,
            pages::youth_list_page(&nav(&session, "/jeunes"), &form, Err(&problem)),
        );
    }
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.youth_list(&who, &query)).await {
        Ok(list) => page(
            list_status(&list),
            pages::youth_list_page(&nav(&session, "/jeunes"), &form, Ok(&list)),
        ),
        Err(e) => failure(e),
    }
}

async fn youth(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.youth(&who, id)).await {
        Ok(Some(detail)) => page(
            StatusCode::OK,
            pages::youth_page(
                &nav(&session, "/jeunes"),
                &detail,
                flash(&param(&q, "ok")),
                None,
            ),
        ),
        Ok(None) => not_found(),
        Err(e) => failure(e),
    }
}

/// Resolves a conflict of a visit, a young person's file or one of their actions or
/// outcomes (keep a value, or type another), then back to the page that shows it; a
/// refused value shows that page again with the error and what was typed, nothing else
/// changed.
async fn resolve_conflict(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let field = form.get("champ").cloned().unwrap_or_default();
    let typed = form.get("valeur").cloned().unwrap_or_default();
    let resolution = match form.get("choix").map(String::as_str) {
        Some("autre") | None => Resolution::Other(typed.clone()),
        Some(json) => Resolution::Keep(json.to_string()),
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let work_field = field.clone();
    let done = blocking(move || ws.resolve_conflict(&who, id, &work_field, &resolution)).await;
    let message = match done {
        Ok(ConflictPage::Youth(youth)) => return redirect(&format!("/jeunes/{youth}?ok=conflit")),
        Ok(ConflictPage::Visit(visit)) => return redirect(&format!("/visites/{visit}?ok=conflit")),
        Err(HubError::BadInput(message)) => message,
        Err(e) => return failure(e),
    };
    let echo = pages::ConflictEcho {
        record: id,
        field: &field,
        typed: &typed,
        error: &message,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let shown = blocking(move || {
        Ok(match ws.conflict_page(&who, id)? {
            Some(ConflictPage::Visit(visit)) => ws.visit(&who, visit)?.map(Ok),
            Some(ConflictPage::Youth(youth)) => ws.youth(&who, youth)?.map(Err),
            None => None,
        })
    })
    .await;
    match shown {
        Ok(Some(Ok(visit))) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::visit_page(&nav(&session, "/visites"), &visit, None, None, Some(&echo)),
        ),
        Ok(Some(Err(youth))) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::youth_page(&nav(&session, "/jeunes"), &youth, None, Some(&echo)),
        ),
        Ok(None) => not_found(),
        Err(e) => failure(e),
    }
}

/// The dashboard's filters from the query string, over the defaults, and the form echo;
/// or what was wrong with them, and the form as typed.
fn dashboard_query(
    defaults: DashboardQuery,
    q: &HashMap<String, String>,
) -> (Result<DashboardQuery, String>, pages::DashboardForm) {
    let typed = pages::DashboardForm {
        du: param(q, "du"),
        au: param(q, "au"),
        granularite: param(q, "granularite"),
        dimension: param(q, "dimension"),
        equipe: param(q, "equipe"),
    };
    let mut filters = Filters::default();
    let from = filters.day(&typed.du, "Du");
    let to = filters.day(&typed.au, "Au");
    let granularity = filters.choice(
        &typed.granularite,
        parse_granularity(&typed.granularite),
        "Le découpage demandé (« Par ») n'existe pas : choisissez-en un dans la liste.",
    );
    let dimension = filters.choice(
        &typed.dimension,
        parse_dimension(&typed.dimension),
        "Le détail demandé n'existe pas : choisissez-en un dans la liste.",
    );
    let team = filters.team(&typed.equipe);
    if let Some(problem) = filters.problem() {
        return (Err(problem), typed);
    }
    let query = DashboardQuery {
        from: from.unwrap_or(defaults.from),
        to: to.unwrap_or(defaults.to),
        granularity: granularity.unwrap_or(defaults.granularity),
        dimension,
        team,
    };
    let form = pages::DashboardForm {
        du: query.from.to_string(),
        au: query.to.to_string(),
        granularite: granularity_id(query.granularity).to_string(),
        dimension: query
            .dimension
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        equipe: query.team.map(|t| t.to_string()).unwrap_or_default(),
    };
    (Ok(query), form)
}

/// The dashboard drawn with a refusal: its invalid filters, or a period it cannot count.
fn dashboard_refused(
    session: &CurrentSession,
    form: &pages::DashboardForm,
    message: &str,
) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        pages::dashboard_page(&nav(session, "/tableau-de-bord"), form, Err(message)),
    )
}

async fn dashboard(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let result = blocking(move || {
        let (query, form) = dashboard_query(ws.default_dashboard_query(&who)?, &q);
        let shown = match query {
            Ok(query) => match ws.dashboard(&who, &query) {
                Ok(d) => Ok(d),
                Err(HubError::BadInput(message)) => Err(message),
                Err(e) => return Err(e),
            },
            Err(problem) => Err(problem),
        };
        Ok((shown, form))
    })
    .await;
    match result {
        Ok((Ok(d), form)) => page(
            StatusCode::OK,
            pages::dashboard_page(&nav(&session, "/tableau-de-bord"), &form, Ok(&d)),
        ),
        Ok((Err(message), form)) => dashboard_refused(&session, &form, &message),
        Err(e) => failure(e),
    }
}

/// The consortium's figures, one row per organisation the user may see figures of
/// (`Workspace::consortium`), over the period of the form.
async fn consortium(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let result = blocking(move || {
        let typed = pages::ConsortiumForm {
            du: param(&q, "du"),
            au: param(&q, "au"),
        };
        let mut filters = Filters::default();
        let from = filters.day(&typed.du, "Du");
        let to = filters.day(&typed.au, "Au");
        filters.period(from, to);
        if let Some(problem) = filters.problem() {
            return Ok((Err(problem), typed));
        }
        let defaults = ws.default_dashboard_query(&who)?;
        let (from, to) = (from.unwrap_or(defaults.from), to.unwrap_or(defaults.to));
        let form = pages::ConsortiumForm {
            du: from.to_string(),
            au: to.to_string(),
        };
        match ws.consortium(&who, from, to) {
            Ok(figures) => Ok((Ok(figures), form)),
            Err(HubError::BadInput(message)) => Ok((Err(message), form)),
            Err(e) => Err(e),
        }
    })
    .await;
    let nav = nav(&session, "/tableau-de-bord");
    match result {
        Ok((Ok(figures), form)) => page(
            StatusCode::OK,
            pages::consortium_page(&nav, &form, Ok(&figures)),
        ),
        Ok((Err(message), form)) => page(
            StatusCode::BAD_REQUEST,
            pages::consortium_page(&nav, &form, Err(&message)),
        ),
        Err(e) => failure(e),
    }
}

async fn exports(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    match require(&state, &headers).await {
        Ok((session, _)) => page(
            StatusCode::OK,
            pages::exports_page(&nav(&session, "/exports"), None),
        ),
        Err(r) => r,
    }
}

/// The youth export's team, or why it is not one.
fn export_team(raw: &str) -> Result<Option<Uuid>, String> {
    let mut filters = Filters::default();
    let team = filters.team(raw.trim());
    filters.problem().map_or(Ok(team), Err)
}

/// The exports page saying why the export asked for was refused (400).
fn export_refused(session: &CurrentSession, problem: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        pages::exports_page(&nav(session, "/exports"), Some(problem)),
    )
}

fn csv(export: Export, filename: &str) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        export.csv,
    )
        .into_response()
}

async fn export_indicators(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    // Refused filters show the dashboard (where the link comes from) with the message.
    let result = blocking(move || {
        let (query, form) = dashboard_query(ws.default_dashboard_query(&who)?, &q);
        let file = match query {
            Ok(query) => match ws.indicators_csv(&who, &query) {
                Ok(export) => Ok((export, query)),
                Err(HubError::BadInput(message)) => Err(message),
                Err(e) => return Err(e),
            },
            Err(problem) => Err(problem),
        };
        Ok((file, form))
    })
    .await;
    match result {
        Ok((Ok((export, query)), _)) => csv(
            export,
            &format!("indicateurs-{}-{}.csv", query.from, query.to),
        ),
        Ok((Err(message), form)) => dashboard_refused(&session, &form, &message),
        Err(e) => failure(e),
    }
}

async fn youth_export(state: &WebState, session: CurrentSession, export: YouthExport) -> Response {
    let ws = state.ws.clone();
    let today = ws.today();
    let who = session.coordinator.clone();
    // The name says what the file is wherever it is copied: personal data, even pseudonymised.
    let kind = if export.names {
        "nominatives"
    } else {
        "pseudonymisees"
    };
    match blocking(move || ws.youth_csv(&who, &export)).await {
        Ok(file) => csv(
            file,
            &format!("donnees-personnelles-{kind}-jeunes-{today}.csv"),
        ),
        // No second factor in this session: the export with names is refused.
        Err(HubError::Unauthorized) => page(
            StatusCode::FORBIDDEN,
            pages::second_factor_required_page(&nav(&session, "/exports"), &pages::NAMED_EXPORT),
        ),
        Err(e) => failure(e),
    }
}

async fn export_youth_get(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match require(&state, &headers).await {
        // A link can be followed from anywhere: the sensitive parts need the form.
        Ok((session, _)) => {
            let team = match export_team(&param(&q, "equipe")) {
                Ok(team) => team,
                Err(problem) => return export_refused(&session, &problem),
            };
            let export = YouthExport {
                team,
                ..YouthExport::default()
            };
            youth_export(&state, session, export).await
        }
        Err(r) => r,
    }
}

async fn export_youth_post(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match require_post(&state, &headers, &form).await {
        Ok((session, _)) => {
            let team = match export_team(&param(&form, "equipe")) {
                Ok(team) => team,
                Err(problem) => return export_refused(&session, &problem),
            };
            let ticked = |name: &str| form.get(name).is_some_and(|v| v == "oui");
            let export = YouthExport {
                team,
                names: ticked("avec_noms"),
                profile_flags: ticked("indicateurs_profil"),
            };
            youth_export(&state, session, export).await
        }
        Err(r) => r,
    }
}

/// Starts the setup (a new secret), then shows it.
async fn totp_start(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.start_totp_setup(&who)).await {
        Ok(_) => redirect("/compte/double-authentification"),
        Err(HubError::BadInput(_)) => redirect("/compte?erreur=deja-active"),
        Err(e) => failure(e),
    }
}

/// The setup in progress: the secret as text and as an `otpauth://` URI, and the form
/// that confirms it with a code.
async fn totp_setup(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.pending_totp_setup(&who)).await {
        Ok(Some(setup)) => page(
            StatusCode::OK,
            pages::totp_setup_page(&nav(&session, "/compte"), &setup, None),
        ),
        Ok(None) => redirect("/compte"),
        Err(e) => failure(e),
    }
}

/// Confirms the setup with a code; shows the recovery codes, once.
async fn totp_confirm(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, token) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let code = form.get("code").cloned().unwrap_or_default();
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.confirm_totp_setup(&who, &token, &code)).await {
        Ok(codes) => {
            let mut confirmed = session.clone();
            confirmed.coordinator.second_factor = true;
            page(
                StatusCode::OK,
                pages::recovery_codes_page(&nav(&confirmed, "/compte"), &codes),
            )
        }
        Err(HubError::BadInput(message)) => {
            let ws = state.ws.clone();
            let who = session.coordinator.clone();
            match blocking(move || ws.pending_totp_setup(&who)).await {
                Ok(Some(setup)) => page(
                    StatusCode::BAD_REQUEST,
                    pages::totp_setup_page(&nav(&session, "/compte"), &setup, Some(&message)),
                ),
                Ok(None) => redirect("/compte"),
                Err(e) => failure(e),
            }
        }
        Err(e) => failure(e),
    }
}

async fn journal(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut filters = Filters::default();
    let n = filters.page(&param(&q, "page"));
    if let Some(problem) = filters.problem() {
        return page(
            StatusCode::BAD_REQUEST,
            pages::journal_page(&nav(&session, "/journal"), Err(&problem)),
        );
    }
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.journal(&who, n)).await {
        Ok(list) => page(
            list_status(&list),
            pages::journal_page(&nav(&session, "/journal"), Ok(&list)),
        ),
        Err(e) => failure(e),
    }
}

/// The right-of-access document of one young person, as a page or as JSON.
async fn access(
    state: Arc<WebState>,
    headers: HeaderMap,
    id: String,
    format: AccessFormat,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.access_file(&who, id, format)).await {
        Ok(Some(file)) => match format {
            AccessFormat::Page => page(
                StatusCode::OK,
                pages::access_page(&nav(&session, "/jeunes"), &file),
            ),
            AccessFormat::Json => (
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json; charset=utf-8"),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_str(&format!(
                            "attachment; filename=\"droit-acces-{}.json\"",
                            short_id(id)
                        ))
                        .unwrap_or(HeaderValue::from_static("attachment")),
                    ),
                ],
                serde_json::to_string_pretty(&file.to_json()).unwrap_or_default(),
            )
                .into_response(),
        },
        Ok(None) => not_found(),
        Err(HubError::Unauthorized) => page(
            StatusCode::FORBIDDEN,
            pages::second_factor_required_page(
                &nav(&session, "/jeunes"),
                &pages::SecondFactorFor {
                    what: "Le document du droit d'accès (tout ce qui est détenu sur un jeune)",
                    back_href: &format!("/jeunes/{id}"),
                    back_label: "Retour à la fiche",
                },
            ),
        ),
        Err(e) => failure(e),
    }
}

async fn access_page(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    access(state, headers, id, AccessFormat::Page).await
}

async fn access_json(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    access(state, headers, id, AccessFormat::Json).await
}

async fn erasure_list(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.erasure_requests(&who)).await {
        Ok(items) => page(
            StatusCode::OK,
            pages::erasure_list_page(&nav(&session, "/effacements"), &items),
        ),
        Err(e) => failure(e),
    }
}

async fn erasure_request(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(record) = form.get("fiche").and_then(|f| Uuid::parse_str(f).ok()) else {
        return not_found();
    };
    let Some(reason) = form.get("motif").and_then(|m| ErasureReason::parse(m)) else {
        return failure(HubError::BadInput("Motif d'effacement inconnu.".into()));
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.request_erasure(&who, record, reason)).await {
        Ok(id) => redirect(&format!("/effacements/{id}")),
        Err(e) => failure(e),
    }
}

async fn erasure_receipt(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.erasure_receipt(&who, id)).await {
        Ok(Some(receipt)) => page(
            StatusCode::OK,
            pages::erasure_receipt_page(&nav(&session, "/effacements"), &receipt, None),
        ),
        Ok(None) => not_found(),
        Err(e) => failure(e),
    }
}

async fn erasure_decide(
    state: Arc<WebState>,
    headers: HeaderMap,
    id: String,
    form: HashMap<String, String>,
    approve: bool,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let decided = blocking(move || {
        let decided = ws.decide_erasure(&who, id, approve);
        let receipt = ws.erasure_receipt(&who, id)?;
        Ok((decided, receipt))
    })
    .await;
    match decided {
        Ok((Ok(()), _)) => redirect(&format!("/effacements/{id}")),
        Ok((Err(HubError::BadInput(message)), Some(receipt))) => page(
            StatusCode::FORBIDDEN,
            pages::erasure_receipt_page(&nav(&session, "/effacements"), &receipt, Some(&message)),
        ),
        Ok((Err(e), _)) => failure(e),
        Err(e) => failure(e),
    }
}

async fn erasure_approve(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    erasure_decide(state, headers, id, form, true).await
}

async fn erasure_refuse(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    erasure_decide(state, headers, id, form, false).await
}

async fn transfer_form(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.transfer_form(&who, id)).await {
        Ok(Some((name, destinations))) => page(
            StatusCode::OK,
            pages::transfer_request_page(&nav(&session, "/jeunes"), id, &name, &destinations),
        ),
        Ok(None) => not_found(),
        Err(e) => failure(e),
    }
}

async fn transfer_list(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.transfers(&who)).await {
        Ok(items) => page(
            StatusCode::OK,
            pages::transfer_list_page(&nav(&session, "/transferts"), &items, None),
        ),
        Err(e) => failure(e),
    }
}

async fn transfer_request(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(youth) = form.get("fiche").and_then(|f| Uuid::parse_str(f).ok()) else {
        return not_found();
    };
    let Some(team) = form.get("equipe").and_then(|t| Uuid::parse_str(t).ok()) else {
        return failure(HubError::BadInput(
            "L'équipe d'arrivée n'existe pas : choisissez-la dans la liste.".into(),
        ));
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.request_transfer(&who, youth, team)).await {
        Ok(_) => redirect("/transferts"),
        Err(e) => failure(e),
    }
}

#[derive(Clone, Copy)]
enum TransferStep {
    Accept,
    Refuse,
    Cancel,
}

async fn transfer_step(
    state: Arc<WebState>,
    headers: HeaderMap,
    id: String,
    form: HashMap<String, String>,
    step: TransferStep,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let done = blocking(move || {
        let done = match step {
            TransferStep::Accept => ws.accept_transfer(&who, id).map(|_| ()),
            TransferStep::Refuse => ws.refuse_transfer(&who, id),
            TransferStep::Cancel => ws.cancel_transfer(&who, id),
        };
        Ok((done, ws.transfers(&who)?))
    })
    .await;
    match done {
        Ok((Ok(()), _)) => redirect("/transferts"),
        Ok((Err(HubError::BadInput(message)), items)) => page(
            StatusCode::FORBIDDEN,
            pages::transfer_list_page(&nav(&session, "/transferts"), &items, Some(&message)),
        ),
        Ok((Err(e), _)) => failure(e),
        Err(e) => failure(e),
    }
}

async fn transfer_accept(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    transfer_step(state, headers, id, form, TransferStep::Accept).await
}

async fn transfer_refuse(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    transfer_step(state, headers, id, form, TransferStep::Refuse).await
}

async fn transfer_cancel(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    transfer_step(state, headers, id, form, TransferStep::Cancel).await
}

async fn retention(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.retention_due(&who)).await {
        Ok(view) => page(
            StatusCode::OK,
            pages::retention_page(&nav(&session, "/conservation"), &view),
        ),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; repere_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn cookies_are_host_prefixed_and_secure_unless_plain_http() {
        let tls = Cookies { tls: true };
        let c = tls.set(SESSION_COOKIE, "t", None);
        assert_eq!(
            c.to_str().expect("ascii"),
            "__Host-repere_session=t; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("repere_session=planted; __Host-repere_session=real"),
        );
        assert_eq!(tls.read(&headers, SESSION_COOKIE).as_deref(), Some("real"));
        let plain = Cookies { tls: false };
        let c = plain.set(LOGIN_COOKIE, "t", Some(60));
        assert_eq!(
            c.to_str().expect("ascii"),
            "repere_login=t; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        assert_eq!(
            plain.read(&headers, SESSION_COOKIE).as_deref(),
            Some("planted")
        );
    }
}
