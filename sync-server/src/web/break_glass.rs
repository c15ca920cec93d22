//! Break-the-glass pages (`coord::break_glass`): `/acces-exceptionnels` (GET: the form to
//! ask, the grants on one's teams' files with their reasons, one's own grants; POST: ask),
//! `/acces-exceptionnels/{id}` (the lent file, read-only, while the grant lasts; 410 once
//! over) and POST `/acces-exceptionnels/{id}/terminer` (end it early: its reader, or the
//! coordination of the team holding the file).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use repere_core::sync::protocol::{ACCESS_DEFAULT_MINUTES, ACCESS_MINUTES};
use uuid::Uuid;

use super::pages::{self, Nav, age, flags, layout};
use super::{
    WebState, blocking, failure, nav, not_found, page, param, redirect, require, require_post,
};
use crate::coord::break_glass::{GrantItem, LentPage};
use crate::coord::labels;
use crate::coord::view::{YouthDetail, commune_name};
use crate::hub::HubError;

const PATH: &str = "/acces-exceptionnels";
/// The durations offered, in minutes (within `ACCESS_MINUTES`).
const DURATIONS: [(u32, &str); 5] = [
    (30, "30 minutes"),
    (60, "1 heure"),
    (120, "2 heures"),
    (240, "4 heures"),
    (480, "8 heures"),
];

pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route(PATH, get(list).post(ask))
        .route("/acces-exceptionnels/{id}", get(open))
        .route("/acces-exceptionnels/{id}/terminer", post(end))
}

/// What was typed, shown again with an error.
#[derive(Default)]
struct Asked {
    reference: String,
    reason: String,
    minutes: u32,
}

async fn list(
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
    let flash = (param(&q, "ok") == "termine").then_some("L'accès exceptionnel a pris fin.");
    match blocking(move || ws.access_grants(&who)).await {
        Ok((incoming, outgoing)) => page(
            StatusCode::OK,
            list_page(
                &nav(&session, PATH),
                &incoming,
                &outgoing,
                &Asked::default(),
                None,
                flash,
            ),
        ),
        Err(e) => failure(e),
    }
}

async fn ask(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (session, _) = match require_post(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let asked = Asked {
        reference: param(&form, "reference").trim().to_string(),
        reason: param(&form, "motif"),
        minutes: param(&form, "duree").parse().unwrap_or(0),
    };
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    let (reference, reason, minutes) =
        (asked.reference.clone(), asked.reason.clone(), asked.minutes);
    let done = blocking(move || {
        let granted = match Uuid::parse_str(&reference) {
            Ok(youth) => ws.break_glass(&who, youth, &reason, minutes),
            Err(_) => Err(HubError::BadInput(
                "La référence d'une fiche a 36 caractères (chiffres, lettres a à f et tirets) : \
                 copiez-la depuis la fiche de l'équipe qui suit ce jeune."
                    .into(),
            )),
        };
        Ok((granted, ws.access_grants(&who)?))
    })
    .await;
    match done {
        Ok((Ok(id), _)) => redirect(&format!("{PATH}/{id}")),
        Ok((Err(HubError::BadInput(message)), (incoming, outgoing))) => page(
            StatusCode::BAD_REQUEST,
            list_page(
                &nav(&session, PATH),
                &incoming,
                &outgoing,
                &asked,
                Some(&message),
                None,
            ),
        ),
        Ok((Err(e), _)) | Err(e) => failure(e),
    }
}

async fn open(
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
    match blocking(move || ws.lent_file(&who, id)).await {
        Ok(Some(LentPage::Open { item, detail })) => page(
            StatusCode::OK,
            lent_page(&nav(&session, PATH), &item, &detail),
        ),
        Ok(Some(LentPage::Over(item))) => {
            page(StatusCode::GONE, over_page(&nav(&session, PATH), &item))
        }
        Ok(None) => not_found(),
        Err(e) => failure(e),
    }
}

async fn end(
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
    let ws = state.ws.clone();
    let who = session.coordinator.clone();
    match blocking(move || ws.end_access_grant(&who, id)).await {
        Ok(()) => redirect(&format!("{PATH}?ok=termine")),
        Err(e) => failure(e),
    }
}

fn state_badge(i: &GrantItem) -> Markup {
    let (state, label) = match (i.active, i.grant.ended_at) {
        (true, _) => ("active", "en cours"),
        (false, Some(_)) => ("ended", "terminé"),
        (false, None) => ("expired", "expiré"),
    };
    html! { span.badge data-state=(state) { (label) } }
}

fn end_button(nav: &Nav<'_>, i: &GrantItem) -> Markup {
    html! {
        @if i.active {
            form method="post" action=(format!("{PATH}/{}/terminer", i.grant.id)) {
                input type="hidden" name="csrf" value=(nav.csrf);
                button.secondary type="submit" data-testid="grant-end" { "Mettre fin" }
            }
        }
    }
}

fn list_page(
    nav: &Nav<'_>,
    incoming: &[GrantItem],
    outgoing: &[GrantItem],
    asked: &Asked,
    error: Option<&str>,
    flash: Option<&str>,
) -> Markup {
    let chosen = if ACCESS_MINUTES.contains(&asked.minutes) {
        asked.minutes
    } else {
        ACCESS_DEFAULT_MINUTES
    };
    layout(
        "Accès exceptionnels",
        Some(nav),
        html! {
            h1 { "Accès exceptionnels" }
            p.muted { "Pour lire la fiche d'un jeune suivi hors de votre organisation (une urgence, un suivi partagé) : "
                "sa référence, donnée par l'équipe qui le suit, et un motif. La fiche s'ouvre aussitôt, en lecture seule, "
                "pour la durée choisie. L'accès est inscrit au journal des deux organisations, et la coordination de l'équipe "
                "qui suit le jeune voit votre nom et votre motif ; elle peut y mettre fin." }
            @if let Some(flash) = flash { p.notice.ok role="status" data-testid="grant-message" { (flash) } }
            section.card {
                h2 { "Demander un accès" }
                @if let Some(e) = error { p.notice.error role="alert" data-testid="grant-error" { (e) } }
                form method="post" action=(PATH) data-testid="grant-form" {
                    input type="hidden" name="csrf" value=(nav.csrf);
                    label for="reference" { "Référence de la fiche"
                        input #reference name="reference" required value=(asked.reference) autocomplete="off" data-testid="grant-reference";
                    }
                    label for="motif" { "Motif (15 à 500 caractères)"
                        textarea #motif name="motif" required minlength="15" maxlength="500" data-testid="grant-reason" { (asked.reason) }
                    }
                    label for="duree" { "Durée"
                        select #duree name="duree" data-testid="grant-duration" {
                            @for (minutes, label) in DURATIONS {
                                option value=(minutes) selected[minutes == chosen] { (label) }
                            }
                        }
                    }
                    button type="submit" data-testid="grant-submit" { "Ouvrir la fiche" }
                }
            }
            h2 { "Accès à vos fiches" }
            @if incoming.is_empty() { p.muted data-testid="grants-incoming-empty" { "Aucun accès exceptionnel à une fiche de vos équipes." } } @else {
                div.table-wrap { table data-testid="grants-incoming" {
                    thead { tr {
                        th scope="col" { "Accordé le" } th scope="col" { "Jeune" } th scope="col" { "Équipe" }
                        th scope="col" { "Lecteur" } th scope="col" { "Motif" } th scope="col" { "Jusqu'au" }
                        th scope="col" { "État" } th scope="col" { "" }
                    } }
                    tbody { @for i in incoming {
                        tr data-testid="grant-row" data-id=(i.grant.id) data-youth-id=(i.grant.youth_id) {
                            td { (labels::server_time(i.grant.granted_at)) }
                            td { (i.youth_label) }
                            td { (i.holding_team) }
                            td data-testid="grant-reader" { (i.reader) br; span.muted { (i.reader_organisation) } }
                            td data-testid="grant-reason-shown" { (i.grant.reason) }
                            td { (labels::server_time(i.grant.expires_at)) }
                            td data-testid="grant-state" { (state_badge(i)) }
                            td { (end_button(nav, i)) }
                        }
                    } }
                } }
            }
            h2 { "Vos accès" }
            @if outgoing.is_empty() { p.muted data-testid="grants-outgoing-empty" { "Vous n'avez demandé aucun accès exceptionnel." } } @else {
                div.table-wrap { table data-testid="grants-outgoing" {
                    thead { tr {
                        th scope="col" { "Accordé le" } th scope="col" { "Jeune" } th scope="col" { "Équipe" }
                        th scope="col" { "Jusqu'au" } th scope="col" { "État" } th scope="col" { "" }
                    } }
                    tbody { @for i in outgoing {
                        tr data-testid="own-grant-row" data-id=(i.grant.id) {
                            td { (labels::server_time(i.grant.granted_at)) }
                            td { @if i.active { a href=(format!("{PATH}/{}", i.grant.id)) data-testid="own-grant-open" { (i.youth_label) } } @else { (i.youth_label) } }
                            td { (i.holding_team) }
                            td { (labels::server_time(i.grant.expires_at)) }
                            td data-testid="own-grant-state" { (state_badge(i)) }
                            td { (end_button(nav, i)) }
                        }
                    } }
                } }
            }
        },
    )
}

/// The file, with nothing to act on.
fn lent_page(nav: &Nav<'_>, item: &GrantItem, d: &YouthDetail) -> Markup {
    let y = &d.youth;
    layout(
        "Accès exceptionnel",
        Some(nav),
        html! {
            p { a href=(PATH) { "← Accès exceptionnels" } }
            h1 data-testid="youth-name" { (y.display_name()) }
            p.notice role="status" data-testid="lent-notice" {
                "Accès exceptionnel en lecture seule jusqu'au " (labels::server_time(item.grant.expires_at))
                ". Fiche suivie par l'équipe « " (item.holding_team) " » : contactez sa coordination pour toute suite à donner."
            }
            section.card data-testid="lent-file" data-youth-id=(d.id) {
                dl {
                    dt { "Statut" } dd { (labels::youth_status(y.status)) }
                    dt { "Âge" } dd { (age(d.age)) }
                    dt { "Commune" } dd { @match &y.home_commune { Some(c) => { (commune_name(c)) } None => { "non renseignée" } } }
                    dt { "Premier contact" } dd { (labels::day(y.first_contact_date)) }
                    dt { "Situation au premier contact" } dd {
                        (labels::situation(y.situation))
                        @if let Some(s) = y.followed_by { " — suivi par " (labels::service(s)) }
                    }
                    dt { "Profil" } dd { (flags(y)) }
                }
            }
            h2 { "Visites" }
            @if d.contacts.is_empty() { p.muted { "Aucune visite." } }
            @for (id, c, _) in &d.contacts {
                section.card data-testid="lent-visit" data-visit-id=(id) {
                    h3 { (labels::device_time(&c.occurred_at)) " — " (commune_name(&c.commune)) " — " (labels::contact_kind(c.kind)) }
                    @if !c.notes.is_empty() { p { (c.notes) } }
                    @if let Some(step) = &c.next_step { p { strong { "Suite prévue : " } (step) } }
                }
            }
            h2 { "Actions" }
            @if d.actions.is_empty() { p.muted { "Aucune action." } } @else {
                ul { @for (_, a) in &d.actions {
                    li { (labels::day(a.start_date)) " — " (labels::action_kind(a.kind)) " (" (labels::action_status(a.status)) ")" }
                } }
            }
            h2 { "Solutions" }
            @if d.outcomes.is_empty() { p.muted { "Aucune solution enregistrée." } } @else {
                ul { @for (_, o) in &d.outcomes {
                    li { (labels::day(o.date)) " — " (labels::outcome_kind(o.kind)) }
                } }
            }
        },
    )
}

fn over_page(nav: &Nav<'_>, item: &GrantItem) -> Markup {
    let how = if item.grant.ended_at.is_some() {
        "Il a été terminé avant son échéance."
    } else {
        "Sa durée est écoulée."
    };
    pages::message_page(
        Some(nav),
        "Accès exceptionnel terminé",
        &format!(
            "Cet accès exceptionnel a pris fin : la fiche n'est plus lisible. {how} Demandez un \
             nouvel accès si c'est encore nécessaire."
        ),
        "grant-over",
    )
}
