//! The administration pages (issue 12), for the `admin` role only: the consortium's
//! organisations, the organisation's teams, accounts, tablets and enrolment codes
//! (`coord::administration`, which calls the same hub functions as `repere-server admin`).
//! Same layout, CSRF tokens and headers as the coordinators' pages; a coordinator gets
//! 403, another organisation's id 404.
//!
//! Routes: `/administration` (teams; POST `/administration/equipes`),
//! `/administration/organisations` (list; POST: create one with its first administrator;
//! POST `/administration/organisations/renommer`: rename one's own),
//! `/administration/comptes` (list; POST: create), `/administration/comptes/{id}` and its
//! POST actions `/role`, `/desactiver`, `/reactiver`, `/mot-de-passe`, `/sessions`,
//! `/double-authentification`, `/administration/tablettes` (POST
//! `/administration/tablettes/{id}/revoquer`; a wipe order only from the confirmation page
//! `/administration/tablettes/{id}/effacer`), `/administration/codes` (POST: issue).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Duration;
use maud::{Markup, html};
use uuid::Uuid;

use super::pages::{self, Nav, enc, layout, qr_svg};
use super::{WebState, blocking, failure, nav, page, param, redirect, require, require_post};
use crate::admin::OrganisationOverview;
use crate::admin::{DEFAULT_CODE_TTL, IssuedCode, MAX_CODE_TTL};
use crate::coord::administration::{Account, NewAccount, NewOrganisation};
use crate::coord::auth::CurrentSession;
use crate::coord::{Coordinator, labels, short_id};
use crate::hub::HubError;
use crate::storage::{Device, Role, Team, TeamCounts, WipeOrder};

/// The routes of the administration pages (merged into the pages' router).
pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/administration", get(overview))
        .route("/administration/equipes", post(create_team))
        .route(
            "/administration/organisations",
            get(organisations).post(create_organisation),
        )
        .route(
            "/administration/organisations/renommer",
            post(rename_organisation),
        )
        .route(
            "/administration/comptes",
            get(accounts).post(create_account),
        )
        .route("/administration/comptes/{id}", get(account))
        .route(
            "/administration/comptes/{id}/{action}",
            post(account_action),
        )
        .route("/administration/tablettes", get(devices))
        .route(
            "/administration/tablettes/{id}/revoquer",
            post(revoke_device),
        )
        .route("/administration/tablettes/{id}/effacer", get(wipe_confirm))
        .route("/administration/codes", get(codes).post(issue_code))
}

/// The enrolment link a tablet reads from the QR code (sync-server/README.md).
pub fn enrolment_uri(server: &str, code: &str) -> String {
    format!("repere://enrol?server={}&code={}", enc(server), enc(code))
}

/// The server's address that tablets use (`--public-url`), put into the enrolment link:
/// `http(s)://host[:port][/path]` as the apps' link parser accepts it (no user info, query
/// nor fragment), kept without a final `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicUrlError {
    #[error("it must start with https:// (or http://)")]
    Scheme,
    #[error("it has no host after the scheme")]
    NoHost,
    #[error(
        "its host may have letters, digits, dots and hyphens (or be an [IPv6] address), \
         with an optional :port from 1 to 65535"
    )]
    Host,
    #[error(
        "it may have a path after the host, but no user info, query, fragment, space or \
         other character than A-Z a-z 0-9 - . _ ~ / % : , ; = + ! $ & ' ( ) *"
    )]
    Path,
    #[error("it is longer than {MAX_PUBLIC_URL_CHARS} characters")]
    TooLong,
}

const MAX_PUBLIC_URL_CHARS: usize = 255;

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<PublicUrl, PublicUrlError> {
        let raw = raw.trim();
        if raw.len() > MAX_PUBLIC_URL_CHARS {
            return Err(PublicUrlError::TooLong);
        }
        let (scheme, rest) = raw.split_once("://").ok_or(PublicUrlError::Scheme)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(PublicUrlError::Scheme);
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(PublicUrlError::NoHost);
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (address, port) = v6.split_once(']').ok_or(PublicUrlError::Host)?;
                address
                    .parse::<std::net::Ipv6Addr>()
                    .map_err(|_| PublicUrlError::Host)?;
                (&authority[..address.len() + 2], port)
            }
            None => {
                let at = authority.find(':').unwrap_or(authority.len());
                let host = &authority[..at];
                let name_ok = !host.is_empty()
                    && host.split('.').all(|label| {
                        !label.is_empty()
                            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !name_ok {
                    return Err(PublicUrlError::Host);
                }
                (host, &authority[at..])
            }
        };
        if !port.is_empty() {
            let number = port.strip_prefix(':').ok_or(PublicUrlError::Host)?;
            if number.is_empty()
                || !number.chars().all(|c| c.is_ascii_digit())
                || !matches!(number.parse::<u16>(), Ok(1..))
            {
                return Err(PublicUrlError::Host);
            }
        }
        let path_ok = path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~/%:,;=+!$&'()*".contains(c));
        if !path_ok {
            return Err(PublicUrlError::Path);
        }
        Ok(PublicUrl(format!(
            "{scheme}://{}{port}{}",
            host.to_ascii_lowercase(),
            path.trim_end_matches('/')
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = PublicUrlError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        PublicUrl::parse(raw)
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The address the enrolment link gives tablets: `--public-url` if set; otherwise the one
/// the browser reached (scheme from how cookies are served, host from the `Host` header),
/// which a forged `Host` can point elsewhere (sync-server/README.md, "Enrolment link").
fn server_address(state: &WebState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.as_str().to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let scheme = if state.cookies.tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Coordinator => "Coordination",
        Role::Admin => "Administration",
        Role::Field => "Terrain (sans accès aux pages)",
    }
}

fn parse_role(raw: &str) -> Option<Role> {
    Role::parse(raw.trim())
}

fn flash(code: &str) -> Option<&'static str> {
    match code {
        "equipe" => Some("Équipe créée."),
        "organisation-renommee" => Some("Organisation renommée."),
        "role" => Some("Rôle modifié ; les sessions du compte sont fermées."),
        "desactive" => Some("Compte désactivé ; ses sessions sont fermées."),
        "reactive" => Some("Compte réactivé : il peut se connecter à nouveau."),
        "sessions" => Some("Toutes les sessions du compte sont fermées."),
        "double-authentification" => Some(
            "Double authentification supprimée ; le titulaire la réactive depuis « Mon compte ».",
        ),
        "revoquee" => Some("Tablette révoquée : ses fiches non envoyées restent sur la tablette."),
        "effacement" => Some(
            "Tablette révoquée avec ordre d'effacement : elle supprimera ses données à son prochain contact.",
        ),
        _ => None,
    }
}

/// The answer to a refused action: 403 for a non-administrator, 404 for an id outside
/// the organisation, the French message otherwise.
fn refused(session: &CurrentSession, e: HubError) -> Response {
    match e {
        HubError::Unauthorized => {
            tracing::warn!(user = %session.coordinator.user.id, "administration page refused: not an administrator");
            page(
                StatusCode::FORBIDDEN,
                pages::message_page(
                    Some(&nav(session, "")),
                    "Accès réservé",
                    "Ces pages sont réservées aux administrateurs de l'organisation.",
                    "admin-only",
                ),
            )
        }
        e => failure(e),
    }
}

fn messages(notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(notice) = notice {
            p.notice.ok role="status" data-testid="admin-message" { (notice) }
        }
        @if let Some(error) = error {
            p.notice.error role="alert" data-testid="admin-error" { (error) }
        }
    }
}

fn admin_nav() -> Markup {
    html! {
        p.muted {
            a href="/administration" data-testid="admin-nav-teams" { "Équipes" } " · "
            a href="/administration/organisations" data-testid="admin-nav-organisations" { "Organisations" } " · "
            a href="/administration/comptes" data-testid="admin-nav-accounts" { "Comptes" } " · "
            a href="/administration/tablettes" data-testid="admin-nav-devices" { "Tablettes" } " · "
            a href="/administration/codes" data-testid="admin-nav-codes" { "Codes d'enrôlement" }
        }
    }
}

fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

// ---- teams ----------------------------------------------------------------------------

fn overview_page(
    nav: &Nav<'_>,
    teams: &[(Team, TeamCounts)],
    notice: Option<&str>,
    error: Option<&str>,
    typed: &str,
) -> Markup {
    layout(
        "Administration",
        Some(nav),
        html! {
            h1 { "Administration — " (nav.who.organisation.name) }
            (admin_nav())
            (messages(notice, error))
            h2 { "Équipes" }
            div.table-wrap {
                table data-testid="teams-table" {
                    thead { tr { th { "Équipe" } th.num { "Fiches" } th.num { "Tablettes actives" } th { "" } } }
                    tbody {
                        @for (team, counts) in teams {
                            tr data-testid="team-row" data-team-id=(team.id) {
                                td { (team.name) }
                                td.num { (counts.documents) }
                                td.num { (counts.active_devices) }
                                td { a href={ "/administration/tablettes#equipe-" (team.id) } { "Tablettes" } " · "
                                     a href={ "/administration/codes?equipe=" (team.id) } { "Enrôler une tablette" } }
                            }
                        }
                    }
                }
            }
            @if teams.is_empty() { p.muted data-testid="teams-empty" { "Aucune équipe pour l'instant." } }
            form.filters method="post" action="/administration/equipes" data-testid="team-create-form" {
                input type="hidden" name="csrf" value=(nav.csrf);
                label for="nom" { "Nouvelle équipe (binôme)"
                    input #nom type="text" name="nom" required maxlength="200" value=(typed) data-testid="team-name";
                }
                button type="submit" data-testid="team-create" { "Créer l'équipe" }
            }
            p.muted { "Une nouvelle organisation du consortium se crée depuis "
                a href="/administration/organisations" { "« Organisations »" } "." }
        },
    )
}

async fn overview(
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
    match blocking(move || ws.admin_teams(&who)).await {
        Ok(teams) => page(
            StatusCode::OK,
            overview_page(
                &nav(&session, "/administration"),
                &teams,
                flash(&param(&q, "ok")),
                None,
                "",
            ),
        ),
        Err(e) => refused(&session, e),
    }
}

async fn create_team(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let name = form.get("nom").cloned().unwrap_or_default();
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let typed = name.clone();
    let done = blocking(move || {
        let created = ws.admin_create_team(&who, &name);
        let teams = ws.admin_teams(&who)?;
        Ok((created, teams))
    })
    .await;
    match done {
        Ok((Ok(_), _)) => {
            // The new team is in scope from the next request on (the scope is per request).
            redirect("/administration?ok=equipe")
        }
        Ok((Err(HubError::BadInput(message)), teams)) => page(
            StatusCode::BAD_REQUEST,
            overview_page(
                &nav(&session, "/administration"),
                &teams,
                None,
                Some(&message),
                &typed,
            ),
        ),
        Ok((Err(e), _)) | Err(e) => refused(&session, e),
    }
}

// ---- organisations --------------------------------------------------------------------

/// What was typed in the creation form, given back with its error.
#[derive(Default)]
struct TypedOrganisation {
    name: String,
    admin_name: String,
    login: String,
}

fn organisations_page(
    nav: &Nav<'_>,
    organisations: &[OrganisationOverview],
    notice: Option<&str>,
    error: Option<&str>,
    typed: &TypedOrganisation,
    typed_rename: Option<&str>,
) -> Markup {
    let own = nav.who.organisation.id;
    layout(
        "Organisations",
        Some(nav),
        html! {
            h1 { "Organisations du consortium" }
            (admin_nav())
            (messages(notice, error))
            p.muted { "Le consortium, ce sont toutes les organisations de ce serveur. Chacune est administrée par ses "
                "propres administrateurs : vous ne voyez ici que leur nom et leur taille, et vous ne gérez que la vôtre." }
            div.table-wrap {
                table data-testid="organisations-table" {
                    thead { tr { th { "Organisation" } th { "Créée le" } th.num { "Équipes" } th.num { "Comptes" } } }
                    tbody {
                        @for o in organisations {
                            tr data-testid="organisation-row" data-organisation-id=(o.organisation.id) data-own=(if o.organisation.id == own { "yes" } else { "no" }) {
                                td data-testid="organisation-name" { (o.organisation.name)
                                    @if o.organisation.id == own { " " span.badge { "la vôtre" } } }
                                td { (labels::server_time(o.organisation.created_at)) }
                                td.num { (o.teams.len()) }
                                td.num { (o.users) }
                            }
                        }
                    }
                }
            }
            h2 { "Renommer votre organisation" }
            form.filters method="post" action="/administration/organisations/renommer" data-testid="organisation-rename-form" {
                input type="hidden" name="csrf" value=(nav.csrf);
                label for="renommer" { "Nouveau nom"
                    input #renommer type="text" name="nom" required maxlength="200"
                        value=(typed_rename.unwrap_or(&nav.who.organisation.name)) data-testid="organisation-rename-name";
                }
                button type="submit" data-testid="organisation-rename" { "Renommer" }
            }
            h2 { "Créer une organisation" }
            form.filters method="post" action="/administration/organisations" data-testid="organisation-create-form" {
                input type="hidden" name="csrf" value=(nav.csrf);
                label for="organisation" { "Nom de l'organisation"
                    input #organisation type="text" name="nom" required maxlength="200" value=(typed.name) data-testid="organisation-create-name";
                }
                label for="admin-nom" { "Son premier administrateur : nom"
                    input #admin-nom type="text" name="admin_nom" required maxlength="200" value=(typed.admin_name) data-testid="organisation-admin-name";
                }
                label for="admin-identifiant" { "Identifiant (par exemple l'adresse e-mail)"
                    input #admin-identifiant type="text" name="identifiant" required maxlength="200" autocomplete="off"
                        value=(typed.login) data-testid="organisation-admin-login";
                }
                button type="submit" data-testid="organisation-create" { "Créer l'organisation" }
            }
            p.muted { "Un mot de passe est généré pour le premier administrateur et affiché une seule fois. "
                "Il se connecte, le change depuis « Mon compte », puis crée les équipes et les comptes de son organisation." }
        },
    )
}

fn organisation_created_page(nav: &Nav<'_>, created: &NewOrganisation) -> Markup {
    layout(
        "Organisation créée",
        Some(nav),
        html! {
            h1 { "Organisation créée" }
            (admin_nav())
            section.card data-testid="organisation-created" data-organisation-id=(created.organisation.id) data-user-id=(created.admin.id) {
                p { strong { (created.organisation.name) } }
                dl {
                    dt { "Premier administrateur" } dd { (created.admin.name) }
                    dt { "Identifiant" } dd data-testid="organisation-admin-login" { (created.login) }
                }
                (password_shown(&created.password))
                p.muted { "Cette organisation est gérée par ses propres administrateurs : ses équipes, comptes et tablettes "
                    "ne se voient pas depuis la vôtre." }
                p { a href="/administration/organisations" { "Retour aux organisations" } }
            }
        },
    )
}

async fn organisations(
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
    match blocking(move || ws.admin_organisations(&who)).await {
        Ok(list) => page(
            StatusCode::OK,
            organisations_page(
                &nav(&session, "/administration"),
                &list,
                flash(&param(&q, "ok")),
                None,
                &TypedOrganisation::default(),
                None,
            ),
        ),
        Err(e) => refused(&session, e),
    }
}

async fn create_organisation(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let typed = TypedOrganisation {
        name: form.get("nom").cloned().unwrap_or_default(),
        admin_name: form.get("admin_nom").cloned().unwrap_or_default(),
        login: form.get("identifiant").cloned().unwrap_or_default(),
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let (n, a, l) = (
        typed.name.clone(),
        typed.admin_name.clone(),
        typed.login.clone(),
    );
    let done = blocking(move || {
        let created = ws.admin_create_organisation(&who, &n, &a, &l);
        let list = ws.admin_organisations(&who)?;
        Ok((created, list))
    })
    .await;
    let nav = nav(&session, "/administration");
    match done {
        Ok((Ok(created), _)) => page(StatusCode::OK, organisation_created_page(&nav, &created)),
        Ok((Err(HubError::BadInput(message)), list)) => page(
            StatusCode::BAD_REQUEST,
            organisations_page(&nav, &list, None, Some(&message), &typed, None),
        ),
        Ok((Err(e), _)) | Err(e) => refused(&session, e),
    }
}

async fn rename_organisation(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let name = form.get("nom").cloned().unwrap_or_default();
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let typed = name.clone();
    let done = blocking(move || {
        let renamed = ws.admin_rename_organisation(&who, &name);
        let list = ws.admin_organisations(&who)?;
        Ok((renamed, list))
    })
    .await;
    match done {
        // The header shows the new name from the next request on (the scope is per request).
        Ok((Ok(_), _)) => redirect("/administration/organisations?ok=organisation-renommee"),
        Ok((Err(HubError::BadInput(message)), list)) => page(
            StatusCode::BAD_REQUEST,
            organisations_page(
                &nav(&session, "/administration"),
                &list,
                None,
                Some(&message),
                &TypedOrganisation::default(),
                Some(&typed),
            ),
        ),
        Ok((Err(e), _)) | Err(e) => refused(&session, e),
    }
}

// ---- accounts -------------------------------------------------------------------------

fn account_state(a: &Account) -> (&'static str, &'static str) {
    if a.disabled_at.is_some() {
        ("disabled", "Désactivé")
    } else if a.user.role == Role::Field {
        ("field", "Sans accès aux pages")
    } else if !a.has_password {
        ("no-password", "Sans mot de passe")
    } else {
        ("active", "Actif")
    }
}

struct Typed<'a> {
    name: &'a str,
    login: &'a str,
    role: Option<Role>,
}

fn role_options(selected: Option<Role>) -> Markup {
    html! {
        @for role in [Role::Coordinator, Role::Admin, Role::Field] {
            option value=(role.as_str()) selected[selected == Some(role)] { (role_label(role)) }
        }
    }
}

fn accounts_page(
    nav: &Nav<'_>,
    accounts: &[Account],
    error: Option<&str>,
    typed: &Typed<'_>,
) -> Markup {
    layout(
        "Comptes",
        Some(nav),
        html! {
            h1 { "Comptes — " (nav.who.organisation.name) }
            (admin_nav())
            (messages(None, error))
            div.table-wrap {
                table data-testid="accounts-table" {
                    thead { tr { th { "Nom" } th { "Identifiant" } th { "Rôle" } th { "État" } th { "Double authentification" } th { "" } } }
                    tbody {
                        @for a in accounts {
                            @let (state, label) = account_state(a);
                            tr data-testid="account-row" data-user-id=(a.user.id) data-state=(state) data-role=(a.user.role.as_str()) {
                                td { (a.user.name) }
                                td { (a.login.as_deref().unwrap_or("—")) }
                                td { (role_label(a.user.role)) }
                                td { span.badge { (label) } }
                                td { @if a.second_factor { "activée" } @else { "non" } }
                                td { a href={ "/administration/comptes/" (a.user.id) } data-testid="account-link" { "Gérer" } }
                            }
                        }
                    }
                }
            }
            h2 { "Créer un compte" }
            form.filters method="post" action="/administration/comptes" data-testid="account-create-form" {
                input type="hidden" name="csrf" value=(nav.csrf);
                label for="nom" { "Nom"
                    input #nom type="text" name="nom" required maxlength="200" value=(typed.name) data-testid="account-name";
                }
                label for="identifiant" { "Identifiant (par exemple l'adresse e-mail)"
                    input #identifiant type="text" name="identifiant" maxlength="200" autocomplete="off"
                        value=(typed.login) data-testid="account-login";
                }
                label for="role" { "Rôle"
                    select #role name="role" data-testid="account-role" { (role_options(typed.role.or(Some(Role::Coordinator)))) }
                }
                button type="submit" data-testid="account-create" { "Créer le compte" }
            }
            p.muted { "Un mot de passe est généré et affiché une seule fois : transmettez-le à la personne, "
                "qui le change depuis « Mon compte »." }
        },
    )
}

/// A generated password, shown once.
fn password_shown(password: &str) -> Markup {
    html! {
        p { strong { "Mot de passe (affiché une seule fois) :" } }
        code.secret data-testid="new-password" { (password) }
        p.muted { "Transmettez-le par un autre canal que l'identifiant ; la personne le change depuis « Mon compte »." }
    }
}

fn created_page(nav: &Nav<'_>, created: &NewAccount) -> Markup {
    layout(
        "Compte créé",
        Some(nav),
        html! {
            h1 { "Compte créé" }
            (admin_nav())
            section.card data-testid="account-created" data-user-id=(created.user.id) {
                p { (created.user.name) " — " (role_label(created.user.role)) }
                @match &created.password {
                    Some(password) => { (password_shown(password)) }
                    None => { p.muted { "Un compte de terrain ne se connecte pas aux pages : pas de mot de passe." } }
                }
                p { a href={ "/administration/comptes/" (created.user.id) } { "Gérer ce compte" } " · "
                    a href="/administration/comptes" { "Retour aux comptes" } }
            }
        },
    )
}

async fn accounts(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.admin_accounts(&who)).await {
        Ok(list) => page(
            StatusCode::OK,
            accounts_page(
                &nav(&session, "/administration"),
                &list,
                None,
                &Typed {
                    name: "",
                    login: "",
                    role: None,
                },
            ),
        ),
        Err(e) => refused(&session, e),
    }
}

async fn create_account(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let name = form.get("nom").cloned().unwrap_or_default();
    let login = form.get("identifiant").cloned().unwrap_or_default();
    let role = parse_role(&param(&form, "role"));
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let (n, l) = (name.clone(), login.clone());
    let done = blocking(move || {
        let created = match role {
            Some(role) => ws.admin_create_account(&who, &n, role, &l),
            None => Err(HubError::BadInput("Choisissez un rôle de la liste.".into())),
        };
        let list = ws.admin_accounts(&who)?;
        Ok((created, list))
    })
    .await;
    let nav = nav(&session, "/administration");
    match done {
        Ok((Ok(created), _)) => page(StatusCode::OK, created_page(&nav, &created)),
        Ok((Err(HubError::BadInput(message)), list)) => page(
            StatusCode::BAD_REQUEST,
            accounts_page(
                &nav,
                &list,
                Some(&message),
                &Typed {
                    name: &name,
                    login: &login,
                    role,
                },
            ),
        ),
        Ok((Err(e), _)) | Err(e) => refused(&session, e),
    }
}

fn account_page(
    nav: &Nav<'_>,
    a: &Account,
    notice: Option<&str>,
    error: Option<&str>,
    password: Option<&str>,
) -> Markup {
    let base = format!("/administration/comptes/{}", a.user.id);
    let own = a.user.id == nav.who.user.id;
    let (state, label) = account_state(a);
    let action = |name: &str, testid: &str, text: &str, danger: bool| {
        html! {
            form method="post" action={ (base) "/" (name) } data-testid={ (testid) "-form" } {
                input type="hidden" name="csrf" value=(nav.csrf);
                @if danger {
                    button.danger type="submit" data-testid=(testid) { (text) }
                } @else {
                    button.secondary type="submit" data-testid=(testid) { (text) }
                }
            }
        }
    };
    layout(
        "Compte",
        Some(nav),
        html! {
            h1 { (a.user.name) }
            (admin_nav())
            (messages(notice, error))
            @if let Some(password) = password {
                section.card data-testid="password-reset" { (password_shown(password)) }
            }
            section.card data-testid="account-detail" data-user-id=(a.user.id) data-state=(state) data-role=(a.user.role.as_str()) {
                dl {
                    dt { "Identifiant" } dd data-testid="account-login" { (a.login.as_deref().unwrap_or("—")) }
                    dt { "Rôle" } dd data-testid="account-role" { (role_label(a.user.role)) }
                    dt { "État" } dd data-testid="account-state" { (label)
                        @if let Some(at) = a.disabled_at { " depuis le " (labels::server_time(at)) } }
                    dt { "Double authentification" } dd data-testid="account-second-factor" { @if a.second_factor { "activée" } @else { "non activée" } }
                    dt { "Sessions ouvertes" } dd data-testid="account-sessions" { (a.sessions) }
                    dt { "Créé le" } dd { (labels::server_time(a.user.created_at)) }
                }
            }
            @if own {
                p.muted data-testid="account-own" { "C'est votre compte : son rôle et sa désactivation se changent par un autre administrateur. Votre mot de passe et vos sessions se gèrent depuis « Mon compte »." }
            }
            div.actions {
                @if !own {
                    form method="post" action={ (base) "/role" } data-testid="role-form" {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        label for="role" { "Rôle"
                            select #role name="role" data-testid="role-select" { (role_options(Some(a.user.role))) }
                        }
                        button type="submit" data-testid="role-submit" { "Changer le rôle" }
                    }
                    @if a.disabled_at.is_some() {
                        (action("reactiver", "enable-button", "Réactiver le compte", false))
                    } @else {
                        (action("desactiver", "disable-button", "Désactiver le compte", true))
                    }
                }
                @if a.login.is_some() {
                    (action("mot-de-passe", "reset-password-button", "Générer un nouveau mot de passe", false))
                }
                (action("sessions", "revoke-sessions-button", "Fermer toutes ses sessions", false))
                @if a.second_factor {
                    (action("double-authentification", "reset-second-factor-button", "Supprimer la double authentification (téléphone perdu)", true))
                }
            }
            p { a href="/administration/comptes" { "Retour aux comptes" } }
        },
    )
}

async fn account(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let found = blocking(move || {
        let account = ws.admin_account(&who, parse_id(&id).unwrap_or_default())?;
        Ok(account)
    })
    .await;
    match found {
        Ok(a) => page(
            StatusCode::OK,
            account_page(
                &nav(&session, "/administration"),
                &a,
                flash(&param(&q, "ok")),
                None,
                None,
            ),
        ),
        Err(e) => refused(&session, e),
    }
}

/// What an account's POST action did: where to go, or a password to show once.
enum Done {
    Flash(&'static str),
    Password(String),
}

async fn account_action(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = parse_id(&id).unwrap_or_default();
    let role = param(&form, "role");
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let done = blocking(move || {
        let done = match action.as_str() {
            "role" => match parse_role(&role) {
                Some(role) => ws
                    .admin_set_role(&who, id, role)
                    .map(|()| Done::Flash("role")),
                None => {
                    // Checked like the others: an unknown or foreign id stays a 404.
                    ws.admin_account(&who, id)?;
                    Err(HubError::BadInput("Choisissez un rôle de la liste.".into()))
                }
            },
            "desactiver" => ws.admin_disable(&who, id).map(|_| Done::Flash("desactive")),
            "reactiver" => ws.admin_enable(&who, id).map(|()| Done::Flash("reactive")),
            "sessions" => ws
                .admin_revoke_sessions(&who, id)
                .map(|_| Done::Flash("sessions")),
            "double-authentification" => ws
                .admin_reset_second_factor(&who, id)
                .map(|_| Done::Flash("double-authentification")),
            "mot-de-passe" => ws.admin_reset_password(&who, id).map(Done::Password),
            _ => Err(HubError::NotFound { what: "page", id }),
        };
        // The page drawn after: the account as it is now (a 404 for a foreign id).
        let account = ws.admin_account(&who, id);
        Ok((done, account))
    })
    .await;
    let nav = nav(&session, "/administration");
    match done {
        Ok((Ok(Done::Flash(code)), Ok(_))) => {
            redirect(&format!("/administration/comptes/{id}?ok={code}"))
        }
        Ok((Ok(Done::Password(password)), Ok(a))) => page(
            StatusCode::OK,
            account_page(&nav, &a, None, None, Some(&password)),
        ),
        Ok((Err(HubError::BadInput(message)), Ok(a))) => page(
            StatusCode::BAD_REQUEST,
            account_page(&nav, &a, None, Some(&message), None),
        ),
        Ok((Err(e), _) | (Ok(_), Err(e))) | Err(e) => refused(&session, e),
    }
}

// ---- tablets --------------------------------------------------------------------------

fn device_state(d: &Device) -> (&'static str, &'static str) {
    match (d.revoked_at, d.wipe, d.wipe_sent_at) {
        (None, _, _) => ("active", "Active"),
        (Some(_), None, _) => ("revoked", "Révoquée"),
        (Some(_), Some(_), Some(_)) => ("wiped", "Révoquée, données effacées"),
        (Some(_), Some(WipeOrder::Urgent), None) => {
            ("wipe-ordered", "Révoquée, effacement urgent ordonné")
        }
        (Some(_), Some(WipeOrder::AfterPush), None) => {
            ("wipe-ordered", "Révoquée, effacement ordonné")
        }
    }
}

fn devices_page(
    nav: &Nav<'_>,
    who: &Coordinator,
    devices: &[Device],
    notice: Option<&str>,
) -> Markup {
    layout(
        "Tablettes",
        Some(nav),
        html! {
            h1 { "Tablettes — " (who.organisation.name) }
            (admin_nav())
            (messages(notice, None))
            p.muted data-testid="devices-known" {
                "Pour chaque tablette le serveur connaît sa dernière synchronisation, la position du journal "
                "qu'elle a reçue, la version de l'application et le nombre de saisies non envoyées qu'elle avait "
                "à ce moment-là (fiches modifiées que le serveur n'avait pas encore reçues). Une application "
                "plus ancienne ne les dit pas : « inconnue ». Ce qu'elle a saisi depuis, hors connexion, ne se voit que sur la tablette."
            }
            @for team in &who.teams {
                @let rows: Vec<&Device> = devices.iter().filter(|d| d.team_id == team.id).collect();
                section.card id={ "equipe-" (team.id) } data-testid="devices-team" data-team-id=(team.id) {
                    h2 { (team.name) }
                    @if rows.is_empty() {
                        p.muted data-testid="devices-empty" { "Aucune tablette enrôlée. "
                            a href={ "/administration/codes?equipe=" (team.id) } { "Émettre un code d'enrôlement" } }
                    } @else {
                        div.table-wrap {
                            table {
                                thead { tr { th { "Tablette" } th { "Enrôlée le" } th { "Dernière synchronisation" } th.num { "Position reçue" } th { "Version de l'application" } th.num { "Saisies non envoyées (au dernier contact)" } th { "État" } th { "" } } }
                                tbody {
                                    @for d in rows {
                                        @let (state, label) = device_state(d);
                                        tr data-testid="device-row" data-device-id=(d.id) data-state=(state) {
                                            td { (d.label) br; span.muted { "n° " (short_id(d.id)) } }
                                            td { (labels::server_time(d.enrolled_at)) }
                                            td data-testid="device-last-sync" { @match d.last_sync_at { Some(t) => { (labels::server_time(t)) } None => { "jamais" } } }
                                            td.num { (d.applied_seq) }
                                            td data-testid="device-app-version" { @match &d.app_version { Some(v) => { (v) } None => { "inconnue" } } }
                                            td.num data-testid="device-unsent" { @match d.unsent { Some(n) => { (n) } None => { "inconnu" } } }
                                            td data-testid="device-state" { span.badge { (label) } }
                                            td {
                                                @if d.revoked_at.is_none() {
                                                    form method="post" action={ "/administration/tablettes/" (d.id) "/revoquer" } data-testid="revoke-form" {
                                                        input type="hidden" name="csrf" value=(nav.csrf);
                                                        button.secondary type="submit" data-testid="revoke-button" { "Révoquer" }
                                                    }
                                                    form method="get" action={ "/administration/tablettes/" (d.id) "/effacer" } data-testid="wipe-open-form" {
                                                        button.danger type="submit" data-testid="wipe-button" { "Révoquer et effacer…" }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.muted { "Révoquer : la tablette ne peut plus se synchroniser ; ses fiches non envoyées restent sur elle. "
                "Révoquer et effacer (après une page de confirmation) : à son prochain contact, elle envoie ses fiches non envoyées "
                "puis supprime ses données (urgent : elle les supprime sans rien envoyer)." }
        },
    )
}

/// The confirmation a wipe order needs: what will happen, said before it happens, with a
/// box to tick (the order cannot be taken back once the tablet has received it).
fn wipe_page(nav: &Nav<'_>, who: &Coordinator, d: &Device, error: Option<&str>) -> Markup {
    let team = who.team(d.team_id).map_or("", |t| t.name.as_str());
    let (state, label) = device_state(d);
    layout(
        "Révoquer et effacer une tablette",
        Some(nav),
        html! {
            h1 { "Révoquer et effacer une tablette" }
            (admin_nav())
            (messages(None, error))
            section.card data-testid="wipe-device" data-device-id=(d.id) data-state=(state) {
                dl {
                    dt { "Tablette" } dd { (d.label) " — n° " (short_id(d.id)) }
                    dt { "Équipe" } dd { (team) }
                    dt { "Dernière synchronisation" } dd { @match d.last_sync_at { Some(t) => { (labels::server_time(t)) } None => { "jamais" } } }
                    dt { "Saisies non envoyées (au dernier contact)" } dd { @match d.unsent { Some(n) => { (n) } None => { "inconnu" } } }
                    dt { "État" } dd { span.badge { (label) } }
                }
            }
            @if d.revoked_at.is_some() {
                p.notice.error role="alert" data-testid="wipe-already-revoked" { "Cette tablette est déjà révoquée." }
            } @else {
                section.card data-testid="wipe-consequences" {
                    h2 { "Ce qui va se passer" }
                    ul {
                        li { "La tablette est révoquée tout de suite : elle ne peut plus se synchroniser." }
                        li { "À son prochain contact avec le serveur, elle envoie ce qu'elle n'a pas encore envoyé, "
                            "puis supprime toutes ses données (jeunes, visites, actions) : sa base locale est effacée." }
                        li { strong { "Urgent" } " (tablette volée) : elle supprime ses données sans rien envoyer ; "
                            "ce qu'elle n'avait pas envoyé est perdu." }
                        li { "L'ordre ne s'annule pas. Pour l'utiliser à nouveau, la tablette devra être enrôlée avec un nouveau code." }
                    }
                    form method="post" action={ "/administration/tablettes/" (d.id) "/revoquer" } data-testid="wipe-form" {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        input type="hidden" name="effacer" value="oui";
                        label.check { input type="checkbox" name="urgent" value="oui" data-testid="wipe-urgent";
                            "urgent (tablette volée : ne rien recevoir de plus)" }
                        label.check { input type="checkbox" name="confirmation" value="oui" required data-testid="wipe-confirm";
                            "Je confirme : révoquer cette tablette et effacer ses données" }
                        button.danger type="submit" data-testid="wipe-submit" { "Révoquer et effacer" }
                    }
                }
            }
            p { a href={ "/administration/tablettes#equipe-" (d.team_id) } data-testid="wipe-cancel" { "Retour aux tablettes (rien n'est fait)" } }
        },
    )
}

async fn wipe_confirm(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (session, _) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let id = parse_id(&id).unwrap_or_default();
    match blocking(move || ws.admin_device(&who, id)).await {
        Ok(d) => page(
            StatusCode::OK,
            wipe_page(
                &nav(&session, "/administration"),
                &session.coordinator,
                &d,
                None,
            ),
        ),
        Err(e) => refused(&session, e),
    }
}

async fn devices(
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
    match blocking(move || ws.admin_devices(&who)).await {
        Ok(list) => page(
            StatusCode::OK,
            devices_page(
                &nav(&session, "/administration"),
                &session.coordinator,
                &list,
                flash(&param(&q, "ok")),
            ),
        ),
        Err(e) => refused(&session, e),
    }
}

async fn revoke_device(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = parse_id(&id).unwrap_or_default();
    let wipe = match (
        param(&form, "effacer") == "oui",
        param(&form, "urgent") == "oui",
    ) {
        (false, _) => None,
        (true, false) => Some(WipeOrder::AfterPush),
        (true, true) => Some(WipeOrder::Urgent),
    };
    // A wipe order only with the confirmation page's box ticked: one click on the list
    // cannot wipe a tablet, nor a form posted without it.
    let confirmed = wipe.is_none() || param(&form, "confirmation") == "oui";
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let done = blocking(move || {
        if confirmed {
            ws.admin_revoke_device(&who, id, wipe).map(|_| None)
        } else {
            ws.admin_device(&who, id).map(Some)
        }
    })
    .await;
    match done {
        Ok(Some(device)) => page(
            StatusCode::BAD_REQUEST,
            wipe_page(
                &nav(&session, "/administration"),
                &session.coordinator,
                &device,
                Some(
                    "Cochez la confirmation pour révoquer et effacer la tablette : rien n'a été fait.",
                ),
            ),
        ),
        Ok(None) => redirect(&format!(
            "/administration/tablettes?ok={}#equipe-{}",
            if wipe.is_some() {
                "effacement"
            } else {
                "revoquee"
            },
            id
        )),
        Err(e) => refused(&session, e),
    }
}

// ---- enrolment codes ------------------------------------------------------------------

/// The validity choices offered, in hours.
const CODE_TTLS: [(i64, &str); 5] = [
    (24, "1 jour"),
    (72, "3 jours"),
    (168, "7 jours"),
    (720, "30 jours"),
    (2160, "90 jours"),
];

fn codes_page(nav: &Nav<'_>, who: &Coordinator, team: Option<Uuid>, error: Option<&str>) -> Markup {
    let default_hours = DEFAULT_CODE_TTL.num_hours();
    layout(
        "Codes d'enrôlement",
        Some(nav),
        html! {
            h1 { "Enrôler une tablette" }
            (admin_nav())
            (messages(None, error))
            @if who.teams.is_empty() {
                p.muted { "Créez d'abord une équipe." }
            } @else {
                form.filters method="post" action="/administration/codes" data-testid="code-form" {
                    input type="hidden" name="csrf" value=(nav.csrf);
                    label for="equipe" { "Équipe"
                        select #equipe name="equipe" data-testid="code-team" {
                            @for t in &who.teams {
                                option value=(t.id) selected[team == Some(t.id)] { (t.name) }
                            }
                        }
                    }
                    label for="duree" { "Valable"
                        select #duree name="duree_heures" data-testid="code-ttl" {
                            @for (hours, label) in CODE_TTLS {
                                option value=(hours) selected[hours == default_hours] { (label) }
                            }
                        }
                    }
                    button type="submit" data-testid="code-issue" { "Émettre un code" }
                }
            }
            p.muted { "Chaque code ne sert qu'une fois, pour une tablette de l'équipe choisie. Il est affiché une seule fois "
                "(le serveur n'en garde qu'une empreinte)." }
        },
    )
}

fn code_issued_page(
    nav: &Nav<'_>,
    team: &Team,
    issued: &IssuedCode,
    server: &str,
    uri: &str,
) -> Markup {
    layout(
        "Code d'enrôlement",
        Some(nav),
        html! {
            h1 { "Code d'enrôlement — " (team.name) }
            (admin_nav())
            section.card data-testid="code-issued" data-team-id=(team.id) {
                p { strong { "Affiché une seule fois." } " Valable jusqu'au "
                    span data-testid="code-expires" { (labels::server_time(issued.stored.expires_at)) } ", pour une seule tablette." }
                div.grid {
                    div {
                        h2 { "Avec l'appareil photo de la tablette" }
                        figure data-testid="enrolment-qr" { (qr_svg(uri)) }
                    }
                    div {
                        h2 { "Ou à la main" }
                        dl {
                            dt { "Adresse du serveur" } dd data-testid="enrolment-server" { (server) }
                            dt { "Code" } dd { code.secret data-testid="enrolment-code" { (issued.code) } }
                        }
                        p.muted { "Lien du code QR :" }
                        code.secret data-testid="enrolment-uri" { (uri) }
                    }
                }
            }
            p { a href={ "/administration/codes?equipe=" (team.id) } { "Émettre un autre code" } " · "
                a href="/administration/tablettes" { "Voir les tablettes" } }
        },
    )
}

async fn codes(
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
    // The same check as every administration page (403 for a coordinator).
    if let Err(e) = blocking(move || ws.admin_teams(&who)).await {
        return refused(&session, e);
    }
    let team = parse_id(&param(&q, "equipe"));
    page(
        StatusCode::OK,
        codes_page(
            &nav(&session, "/administration"),
            &session.coordinator,
            team,
            None,
        ),
    )
}

async fn issue_code(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let team = parse_id(&param(&form, "equipe")).unwrap_or_default();
    let hours = param(&form, "duree_heures")
        .parse::<i64>()
        .ok()
        .filter(|h| *h > 0 && *h <= MAX_CODE_TTL.num_hours());
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let issued = blocking(move || match hours {
        Some(h) => ws.admin_issue_code(&who, team, Duration::hours(h)),
        None => {
            ws.admin_teams(&who)?;
            Err(HubError::BadInput(format!(
                "La durée de validité va de 1 heure à {} jours.",
                MAX_CODE_TTL.num_days()
            )))
        }
    })
    .await;
    let nav = nav(&session, "/administration");
    match issued {
        Ok(issued) => {
            let Some(team) = session.coordinator.team(issued.stored.team_id) else {
                return failure(HubError::Internal("issued code's team not in scope".into()));
            };
            let server = server_address(&state, &headers);
            let uri = enrolment_uri(&server, &issued.code);
            page(
                StatusCode::OK,
                code_issued_page(&nav, team, &issued, &server, &uri),
            )
        }
        Err(HubError::BadInput(message)) => page(
            StatusCode::BAD_REQUEST,
            codes_page(&nav, &session.coordinator, Some(team), Some(&message)),
        ),
        Err(e) => refused(&session, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_an_http_or_https_address_without_user_info_query_or_fragment() {
        for (raw, kept) in [
            ("https://repere.example.org", "https://repere.example.org"),
            ("HTTPS://Repere.Example.org/", "https://repere.example.org"),
            (
                "http://127.0.0.1:8080/repere/",
                "http://127.0.0.1:8080/repere",
            ),
            ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
            (" https://ml-nord.fr ", "https://ml-nord.fr"),
        ] {
            assert_eq!(
                PublicUrl::parse(raw).map(|u| u.to_string()),
                Ok(kept.to_string()),
                "{raw}"
            );
        }
        for (raw, error) in [
            ("repere.example.org", PublicUrlError::Scheme),
            ("ftp://repere.example.org", PublicUrlError::Scheme),
            ("javascript://alert(1)", PublicUrlError::Scheme),
            ("https://", PublicUrlError::NoHost),
            ("https:///chemin", PublicUrlError::NoHost),
            ("https://user:pw@repere.example.org", PublicUrlError::Host),
            ("https://repere..example.org", PublicUrlError::Host),
            ("https://repere.example.org:0", PublicUrlError::Host),
            ("https://repere.example.org:65536", PublicUrlError::Host),
            ("https://repere.example.org:", PublicUrlError::Host),
            ("https://[::1", PublicUrlError::Host),
            ("https://[zz]:80", PublicUrlError::Host),
            ("https://[::1]x", PublicUrlError::Host),
            ("https://repere.example.org?x=1", PublicUrlError::Host),
            ("https://repere.example.org/?x=1", PublicUrlError::Path),
            ("https://repere.example.org/#top", PublicUrlError::Path),
            ("https://repere.example.org/a b", PublicUrlError::Path),
            ("https://repere.example.org/@evil", PublicUrlError::Path),
        ] {
            assert_eq!(PublicUrl::parse(raw), Err(error), "{raw}");
        }
        let long = format!("https://{}.fr", "a".repeat(250));
        assert_eq!(PublicUrl::parse(&long), Err(PublicUrlError::TooLong));
    }

    #[test]
    fn the_enrolment_link_encodes_the_address_and_the_code() {
        assert_eq!(
            enrolment_uri("https://repere.example.fr:8443", "ABCD-EFGH-JK"),
            "repere://enrol?server=https%3A%2F%2Frepere.example.fr%3A8443&code=ABCD-EFGH-JK"
        );
    }
}
