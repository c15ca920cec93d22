//! « Mon compte » (`/compte`), for every signed-in user: the second factor (set up from
//! `/compte/double-authentification`, in `web/mod.rs`), changing one's own password
//! (POST `/compte/mot-de-passe`: the current one is required, the other sessions end) and
//! one's open sessions (POST `/compte/sessions/{id}/fermer` ends another one).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};

use super::pages::{self, Nav};
use super::{
    WebState, blocking, client_ip, failure, nav, page, param, redirect, require, require_post,
};
use crate::coord::accounts::{OwnSession, SecondFactorStatus};
use crate::coord::auth::{CurrentSession, PASSWORD_MIN_CHARS};
use crate::coord::labels;
use crate::hub::HubError;

pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/compte", get(account))
        .route("/compte/mot-de-passe", post(change_password))
        .route("/compte/sessions/{id}/fermer", post(end_session))
}

fn message(q: &HashMap<String, String>) -> Option<&'static str> {
    match param(q, "ok").as_str() {
        "mot-de-passe" => Some("Mot de passe changé ; vos autres sessions sont fermées."),
        "session" => Some("Session fermée."),
        _ => (param(q, "erreur") == "deja-active")
            .then_some("La double authentification est déjà activée sur ce compte."),
    }
}

fn self_service(nav: &Nav<'_>, sessions: &[OwnSession], password_error: Option<&str>) -> Markup {
    html! {
        section.card data-testid="password-section" {
            h2 { "Mot de passe" }
            @if let Some(error) = password_error {
                p.notice.error role="alert" data-testid="password-error" { (error) }
            }
            form.login method="post" action="/compte/mot-de-passe" data-testid="password-form" {
                input type="hidden" name="csrf" value=(nav.csrf);
                label for="actuel" { "Mot de passe actuel"
                    input #actuel type="password" name="actuel" required autocomplete="current-password" data-testid="password-current";
                }
                label for="nouveau" { "Nouveau mot de passe (" (PASSWORD_MIN_CHARS) " caractères au moins ; une phrase se retient mieux)"
                    input #nouveau type="password" name="nouveau" required minlength=(PASSWORD_MIN_CHARS) autocomplete="new-password" data-testid="password-new";
                }
                label for="confirmation" { "Nouveau mot de passe, à nouveau"
                    input #confirmation type="password" name="confirmation" required autocomplete="new-password" data-testid="password-again";
                }
                button type="submit" data-testid="password-submit" { "Changer le mot de passe" }
            }
            p.muted { "Vos autres sessions (autres navigateurs, autres appareils) seront fermées." }
        }
        section.card data-testid="sessions-section" {
            h2 { "Sessions ouvertes" }
            div.table-wrap {
                table data-testid="sessions-table" {
                    thead { tr { th { "Ouverte le" } th { "Dernière activité" } th { "" } } }
                    tbody {
                        @for s in sessions {
                            tr data-testid="session-row" data-current=(if s.current { "yes" } else { "no" }) {
                                td { (labels::server_time(s.created_at)) }
                                td { (labels::server_time(s.last_seen_at)) }
                                td {
                                    @if s.current {
                                        span.badge { "cette session" }
                                    } @else {
                                        form method="post" action={ "/compte/sessions/" (s.id) "/fermer" } data-testid="session-end-form" {
                                            input type="hidden" name="csrf" value=(nav.csrf);
                                            button.secondary type="submit" data-testid="session-end" { "Fermer cette session" }
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

/// The account page with its sections, drawn from the stored state.
async fn draw(
    state: &WebState,
    session: &CurrentSession,
    token: String,
    status: StatusCode,
    notice: Option<&str>,
    password_error: Option<&str>,
) -> Response {
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let loaded = blocking(
        move || -> Result<(SecondFactorStatus, Vec<OwnSession>), HubError> {
            Ok((
                ws.second_factor_status(&who)?,
                ws.own_sessions(&who, &token)?,
            ))
        },
    )
    .await;
    match loaded {
        Ok((second_factor, sessions)) => {
            let nav = nav(session, "/compte");
            let more = self_service(&nav, &sessions, password_error);
            page(
                status,
                pages::account_page(&nav, &second_factor, notice, more),
            )
        }
        Err(e) => failure(e),
    }
}

async fn account(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (session, token) = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    draw(&state, &session, token, StatusCode::OK, message(&q), None).await
}

async fn change_password(
    State(state): State<Arc<WebState>>,
    extensions: Extensions,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, token) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let current = form.get("actuel").cloned().unwrap_or_default();
    let new = form.get("nouveau").cloned().unwrap_or_default();
    if form.get("confirmation").map_or("", String::as_str) != new {
        return draw(
            &state,
            &session,
            token,
            StatusCode::BAD_REQUEST,
            None,
            Some("Les deux saisies du nouveau mot de passe diffèrent."),
        )
        .await;
    }
    let ip = client_ip(&extensions, &headers, state.trusted_proxy);
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let cookie = token.clone();
    match blocking(move || ws.change_own_password(&who, &cookie, ip, &current, &new)).await {
        Ok(_) => redirect("/compte?ok=mot-de-passe"),
        Err(HubError::BadInput(message)) => {
            draw(
                &state,
                &session,
                token,
                StatusCode::BAD_REQUEST,
                None,
                Some(&message),
            )
            .await
        }
        Err(e) => failure(e),
    }
}

async fn end_session(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, token) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let cookie = token.clone();
    match blocking(move || ws.end_own_session(&who, &cookie, &id)).await {
        Ok(()) => redirect("/compte?ok=session"),
        Err(HubError::BadInput(message)) => {
            draw(
                &state,
                &session,
                token,
                StatusCode::BAD_REQUEST,
                Some(&message),
                None,
            )
            .await
        }
        Err(e) => failure(e),
    }
}
