//! The pages, server-rendered with maud: French, semantic (headings, labels, tables), one
//! small inline stylesheet, no script, no external resource. Key elements carry a stable
//! `data-testid` for the browser tests (listed in sync-server/README.md).

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use repere_core::RecordKind;
use repere_core::document::Author;
use repere_core::indicators::{Dimension, FigureProgress, Figures, Granularity, IndicatorRow};
use repere_core::records::{ReviewTaskStatus, Youth};
use uuid::Uuid;

use super::chart;
use crate::coord::access::AccessFile;
use crate::coord::accounts::{RECOVERY_CODES, SecondFactorStatus, TotpSetup};
use crate::coord::audit::{JournalLine, action_label};
use crate::coord::conflicts::{Input, OpenConflict, open_conflicts};
use crate::coord::erasure::{ErasureItem, ErasureReceipt, TabletState};
use crate::coord::labels;
use crate::coord::reports::{DIMENSIONS, Dashboard, OrganisationFigures, granularity_id};
use crate::coord::retention::RetentionView;
use crate::coord::transfer::{Destination, TransferItem};
use crate::coord::view::{Paged, VisitDetail, VisitItem, YouthDetail, YouthItem, commune_name};
use crate::coord::{Coordinator, short_id};
use crate::hub::ErasureReason;
use crate::storage::{Role, TransferState, VisitState};

/// The only stylesheet (its hash is in the Content-Security-Policy).
pub const CSS: &str = r#"
:root{--ink:#1d2430;--muted:#5b6472;--line:#d8dde5;--bg:#f6f7f9;--accent:#1f5fa8;--ok:#1c7c3a;--warn:#8a4b00;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header.top{background:#fff;border-bottom:1px solid var(--line);padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
.brand{font-weight:700;color:var(--ink);text-decoration:none}
header.top nav a{margin-right:1rem;text-decoration:none;color:var(--accent);padding:.5rem 0;display:inline-block}
header.top nav a[aria-current=page]{font-weight:600;border-bottom:2px solid var(--accent)}
.who{margin-left:auto;color:var(--muted);display:flex;gap:.75rem;align-items:center;flex-wrap:wrap}
.who form{margin:0}
main{max-width:1200px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.2rem;margin:1.5rem 0 .5rem}h3{font-size:1.05rem;margin:1rem 0 .4rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid var(--line);padding:.45rem .6rem;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#fafbfc}
.table-wrap{overflow-x:auto;margin-bottom:1rem}
form.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;background:#fff;padding:.75rem;border:1px solid var(--line);margin-bottom:1rem}
label{display:flex;flex-direction:column;font-size:.9rem;color:var(--muted);gap:.2rem}
label.check{flex-direction:row;align-items:center;gap:.5rem;color:var(--ink)}
input,select,textarea,button{font:inherit;padding:.45rem .6rem;border:1px solid #aab2bf;border-radius:4px;background:#fff;color:var(--ink)}
textarea{width:100%;min-height:5rem}
button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer;min-height:2.5rem}
button.secondary{background:#fff;color:var(--accent)}button.danger{background:var(--bad);border-color:var(--bad)}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:999px;font-size:.85rem;background:#e6e9ee;white-space:nowrap}
.badge.approved{background:#dff3e5;color:var(--ok)}.badge.flagged{background:#fbe3e1;color:var(--bad)}.badge.question{background:#fdf0d9;color:var(--warn)}
.card{background:#fff;border:1px solid var(--line);padding:1rem;margin-bottom:1rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0}
.notice{padding:.75rem 1rem;border-left:4px solid var(--accent);background:#fff;margin-bottom:1rem}
.notice.error{border-color:var(--bad)}.notice.ok{border-color:var(--ok)}.notice.warn{border-color:var(--warn)}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:.75rem;margin-bottom:1rem}
.figure{background:#fff;border:1px solid var(--line);padding:.75rem}.figure .value{font-size:1.8rem;font-weight:600;display:block}
.pager{display:flex;gap:1rem;align-items:center;margin:1rem 0}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid var(--line)}
.s1{fill:#1f5fa8}.s2{fill:#8cb8e6}.s3{fill:#1c7c3a}.axis{stroke:#8a93a3}svg.chart text{font-size:11px;fill:#3a4250}
.legend{display:flex;gap:1rem;flex-wrap:wrap;font-size:.9rem;margin:.3rem 0}.key{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
.key.s1{background:#1f5fa8}.key.s2{background:#8cb8e6}.key.s3{background:#1c7c3a}
.actions{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:1rem}
.actions form{background:#fff;border:1px solid var(--line);padding:1rem;display:flex;flex-direction:column;gap:.5rem}
.muted{color:var(--muted)}.flags{display:flex;gap:.3rem;flex-wrap:wrap}
.notes{white-space:pre-wrap}
meter{width:100%;height:1.2rem}
.login{max-width:24rem;margin:3rem auto}.login form{display:flex;flex-direction:column;gap:.75rem}
.secret{font:1.1rem/1.6 ui-monospace,monospace;word-break:break-all;background:#eef1f5;padding:.5rem .75rem;display:block}
ol.codes{font:1.05rem/1.8 ui-monospace,monospace;columns:2}
@media (max-width:700px){header.top nav a{margin-right:.6rem}th,td{padding:.35rem}main{padding:.5rem}}
@media print{header.top,.no-print{display:none}body{background:#fff}.table-wrap{overflow:visible}}
"#;

/// The signed-in header: who, where, the logout form.
pub struct Nav<'a> {
    pub who: &'a Coordinator,
    pub csrf: &'a str,
    pub active: &'static str,
}

const NAV_ITEMS: [(&str, &str, &str); 9] = [
    ("/visites", "Visites", "nav-visites"),
    ("/jeunes", "Jeunes", "nav-jeunes"),
    ("/tableau-de-bord", "Tableau de bord", "nav-tableau-de-bord"),
    ("/exports", "Exports", "nav-exports"),
    ("/conservation", "Conservation", "nav-conservation"),
    ("/effacements", "Effacements", "nav-effacements"),
    ("/transferts", "Transferts", "nav-transferts"),
    (
        "/acces-exceptionnels",
        "Accès exceptionnels",
        "nav-acces-exceptionnels",
    ),
    ("/journal", "Journal", "nav-journal"),
];

pub fn layout(title: &str, nav: Option<&Nav<'_>>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Repère coordination" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top {
                    a.brand href="/visites" { "Repère · coordination" }
                    @if let Some(nav) = nav {
                        nav aria-label="Navigation principale" {
                            @for (href, label, testid) in NAV_ITEMS {
                                a href=(href) data-testid=(testid)
                                    aria-current=[(nav.active == href).then_some("page")] { (label) }
                            }
                            @if nav.who.user.role == Role::Admin {
                                a href="/administration" data-testid="nav-administration"
                                    aria-current=[(nav.active == "/administration").then_some("page")] { "Administration" }
                            }
                        }
                        div.who {
                            span data-testid="current-user" {
                                (nav.who.user.name) " · " (nav.who.organisation.name)
                            }
                            a href="/compte" data-testid="nav-compte"
                                aria-current=[(nav.active == "/compte").then_some("page")] { "Mon compte" }
                            form method="post" action="/deconnexion" {
                                input type="hidden" name="csrf" value=(nav.csrf);
                                button.secondary type="submit" data-testid="logout-button" { "Se déconnecter" }
                            }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

pub fn login_page(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Connexion",
        None,
        html! {
            section.login.card {
                h1 { "Connexion" }
                p.muted { "Espace des coordinateurs et coordinatrices." }
                @if let Some(error) = error {
                    p.notice.error role="alert" data-testid="login-error" { (error) }
                }
                form method="post" action="/connexion" data-testid="login-form" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="login" { "Identifiant"
                        input #login type="text" name="login" autocomplete="username" required
                            autocapitalize="none" spellcheck="false" data-testid="login-username";
                    }
                    label for="password" { "Mot de passe"
                        input #password type="password" name="password" autocomplete="current-password"
                            required data-testid="login-password";
                    }
                    button type="submit" data-testid="login-submit" { "Se connecter" }
                }
            }
        },
    )
}

/// The second step of a sign-in: the code of the authenticator app, or a recovery code.
pub fn second_factor_page(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Double authentification",
        None,
        html! {
            section.login.card {
                h1 { "Double authentification" }
                p { "Saisissez le code à 6 chiffres affiché par l'application d'authentification de votre téléphone." }
                @if let Some(error) = error {
                    p.notice.error role="alert" data-testid="second-factor-error" { (error) }
                }
                form method="post" action="/connexion/code" data-testid="second-factor-form" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="code" { "Code"
                        input #code type="text" name="code" autocomplete="one-time-code" required
                            autocapitalize="characters" spellcheck="false"
                            maxlength="64" data-testid="second-factor-code";
                    }
                    button type="submit" data-testid="second-factor-submit" { "Valider" }
                }
                p.muted { "Téléphone perdu ? Saisissez l'un de vos codes de secours (format ABCD-EFGH-JK) ; chacun ne sert qu'une fois." }
                p { a href="/connexion" { "Revenir à la connexion" } }
            }
        },
    )
}

pub fn rate_limited_page() -> Markup {
    layout(
        "Trop de tentatives",
        None,
        html! {
            section.login.card data-testid="login-rate-limited" {
                h1 { "Trop de tentatives" }
                p { "Trop de tentatives de connexion ont échoué. Par sécurité, réessayez dans 15 minutes." }
                p.muted { "Si vous avez oublié votre mot de passe, demandez à l'administrateur de le réinitialiser." }
                p { a href="/connexion" { "Revenir à la connexion" } }
            }
        },
    )
}

pub fn message_page(nav: Option<&Nav<'_>>, title: &str, message: &str, testid: &str) -> Markup {
    layout(
        title,
        nav,
        html! {
            section.card data-testid=(testid) {
                h1 { (title) }
                p { (message) }
                p { a href="/visites" { "Retour aux visites" } }
            }
        },
    )
}

/// The QR code of `text` as inline SVG (drawn with attributes only: no script, no style,
/// no image request, so the CSP needs nothing more). Text too long for a QR code gives a
/// note instead; the pages always show the same text beside it.
pub fn qr_svg(text: &str) -> Markup {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build();
            // The XML declaration has no place inside an HTML page.
            let svg = svg.find("<svg").map_or(svg.as_str(), |at| &svg[at..]);
            PreEscaped(svg.to_string())
        }
        Err(_) => html! { p.muted { "(code QR impossible : utilisez le texte)" } },
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn enc(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `a=1&b=2` from pairs, leaving out empty values.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pager<T>(page: &Paged<T>, base: &str, params: &[(&str, &str)]) -> Markup {
    let link = |n: usize| {
        let page = n.to_string();
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        pairs.push(("page", &page));
        format!("{base}?{}", query_string(&pairs))
    };
    html! {
        @if page.page > page.pages {
            p.notice.error role="alert" data-testid="page-missing" {
                "Cette page n'existe pas : il y a " (page.pages) " page" @if page.pages > 1 { "s" } ". "
                a href=(link(page.pages)) data-testid="pagination-last" { "Aller à la dernière page" }
            }
        } @else {
            nav.pager aria-label="Pagination" {
                @if page.page > 1 {
                    a href=(link(page.page - 1)) rel="prev" data-testid="pagination-prev" { "← Précédente" }
                }
                span data-testid="pagination-info" { "Page " (page.page) " sur " (page.pages) }
                @if page.page < page.pages {
                    a href=(link(page.page + 1)) rel="next" data-testid="pagination-next" { "Suivante →" }
                }
            }
        }
    }
}

/// A list's invalid filters, said above where the list would be.
fn filter_error(message: &str) -> Markup {
    html! {
        p.notice.error role="alert" data-testid="filter-error" { (message) " Rien n'est affiché : corrigez la demande." }
    }
}

fn team_select(who: &Coordinator, selected: &str, testid: &str) -> Markup {
    html! {
        label for="equipe" { "Équipe"
            select #equipe name="equipe" data-testid=(testid) {
                option value="" { "Toutes les équipes" }
                @for t in &who.teams {
                    @let id = t.id.to_string();
                    option value=(id) selected[selected == id] { (t.name) }
                }
            }
        }
    }
}

fn state_badge(state: VisitState) -> Markup {
    html! {
        span class=(format!("badge {}", state.as_str())) data-testid="visit-state" data-state=(state.as_str()) {
            (state.label())
        }
    }
}

pub(super) fn flags(youth: &Youth) -> Markup {
    html! {
        span.flags data-testid="youth-flags" {
            @if youth.profile_flags.is_empty() {
                span.muted { "aucun" }
            }
            @for f in &youth.profile_flags {
                span.badge { (labels::profile_flag(*f)) }
            }
        }
    }
}

pub(super) fn age(age: Option<i32>) -> String {
    age.map_or_else(|| "âge inconnu".to_string(), |a| format!("{a} ans"))
}

/// The raw filter values of the visits page, echoed back into the form.
#[derive(Debug, Clone, Default)]
pub struct VisitForm {
    pub equipe: String,
    pub du: String,
    pub au: String,
    pub commune: String,
    pub etat: String,
}

/// The visits list, or (`Err`) the form with what was wrong with its filters.
pub fn visits_page(
    nav: &Nav<'_>,
    form: &VisitForm,
    list: Result<&Paged<VisitItem>, &str>,
) -> Markup {
    let who = nav.who;
    let params = [
        ("equipe", form.equipe.as_str()),
        ("du", form.du.as_str()),
        ("au", form.au.as_str()),
        ("commune", form.commune.as_str()),
        ("etat", form.etat.as_str()),
    ];
    layout(
        "Visites",
        Some(nav),
        html! {
            h1 { "Visites à revoir" }
            form.filters method="get" action="/visites" data-testid="visits-filter-form" role="search" {
                (team_select(who, &form.equipe, "filter-team"))
                label for="du" { "Du"
                    input #du type="date" name="du" value=(form.du) data-testid="filter-from";
                }
                label for="au" { "Au"
                    input #au type="date" name="au" value=(form.au) data-testid="filter-to";
                }
                label for="commune" { "Commune (nom ou code INSEE)"
                    input #commune type="text" name="commune" value=(form.commune) data-testid="filter-commune";
                }
                label for="etat" { "État de la revue"
                    select #etat name="etat" data-testid="filter-state" {
                        option value="" { "Tous" }
                        @for s in VisitState::ALL {
                            option value=(s.as_str()) selected[form.etat == s.as_str()] { (s.label()) }
                        }
                    }
                }
                button type="submit" data-testid="filter-submit" { "Filtrer" }
            }
            @match list {
                Err(message) => { (filter_error(message)) }
                Ok(page) => { (visits_list(who, page, &params)) }
            }
        },
    )
}

fn visits_list(who: &Coordinator, page: &Paged<VisitItem>, params: &[(&str, &str)]) -> Markup {
    html! {
            p data-testid="visits-total" data-total=(page.total) {
                (page.total) " visite" @if page.total > 1 { "s" }
            }
            @if page.items.is_empty() && page.page <= page.pages {
                p.notice data-testid="visits-empty" { "Aucune visite ne correspond à ces critères." }
            } @else {
                div.table-wrap {
                    table data-testid="visits-table" {
                        caption.muted { "Les visites les plus récentes d'abord" }
                        thead { tr {
                            th scope="col" { "Date" }
                            th scope="col" { "Équipe" }
                            th scope="col" { "Commune" }
                            th scope="col" { "Jeune(s)" }
                            th scope="col" { "Type" }
                            th scope="col" { "Revue" }
                            th scope="col" { "" }
                        } }
                        tbody {
                            @for v in &page.items {
                                tr data-testid="visit-row" data-visit-id=(v.id) {
                                    td { (labels::device_time(&v.contact.occurred_at)) }
                                    td { (who.team_name(v.team_id)) }
                                    td { (commune_name(&v.contact.commune)) }
                                    td { @for (i, (_, name)) in v.youth.iter().enumerate() {
                                        @if i > 0 { ", " } (name)
                                    } }
                                    td { (labels::contact_kind(v.contact.kind)) }
                                    td {
                                        (state_badge(v.state))
                                        @if v.answered_questions > 0 {
                                            " " span.badge data-testid="visit-answered" { "réponse reçue" }
                                        } @else if v.open_questions > 0 {
                                            " " span.badge { "en attente" }
                                        }
                                    }
                                    td { a href=(format!("/visites/{}", v.id)) data-testid="visit-link" { "Ouvrir" } }
                                }
                            }
                        }
                    }
                }
            }
            (pager(page, "/visites", params))
    }
}

fn author_name(d: &VisitDetail, member: Uuid) -> String {
    member_name(&d.users, member)
}

fn member_name(users: &HashMap<Uuid, String>, member: Uuid) -> String {
    match users.get(&member) {
        Some(name) => format!("{name} (coordination)"),
        None => format!("membre {}", short_id(member)),
    }
}

fn json_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "(vide)".to_string(),
        other => other.to_string(),
    }
}

/// A refused resolution, shown again on the page with what was typed.
pub struct ConflictEcho<'a> {
    /// The record the form was about (a young person's page shows their actions' and
    /// outcomes' conflicts too).
    pub record: Uuid,
    pub field: &'a str,
    pub typed: &'a str,
    pub error: &'a str,
}

/// Who wrote a value: the team member (or coordinator) and the tablet (or the server).
fn written_by(
    users: &HashMap<Uuid, String>,
    tablets: &HashMap<Uuid, String>,
    author: Option<&Author>,
) -> String {
    match author {
        None => "auteur inconnu".to_string(),
        Some(a) if a.device_id.is_nil() => {
            format!("{}, sur ces pages", member_name(users, a.member_id))
        }
        Some(a) => format!(
            "{}, {}",
            member_name(users, a.member_id),
            match tablets.get(&a.device_id) {
                Some(label) => format!("tablette « {label} »"),
                None => format!("tablette {}", short_id(a.device_id)),
            }
        ),
    }
}

/// Who wrote the values of a page's conflicts.
struct Writers<'a> {
    users: &'a HashMap<Uuid, String>,
    tablets: &'a HashMap<Uuid, String>,
}

/// A record's conflicting fields, each with a form to keep one value or type another.
fn conflicts_section(
    nav: &Nav<'_>,
    record: Uuid,
    title: &str,
    conflicts: &[OpenConflict],
    writers: &Writers<'_>,
    echo: Option<&ConflictEcho<'_>>,
) -> Markup {
    let (users, tablets) = (writers.users, writers.tablets);
    let echo = echo.filter(|e| e.record == record);
    // Element ids stay unique on a page showing several records' conflicts.
    let prefix = short_id(record);
    html! {
        @if !conflicts.is_empty() {
            section.card data-testid="conflicts-section" data-record-id=(record) {
                h2 { (title) }
                p.muted { "Deux saisies simultanées sur des tablettes ont donné des valeurs différentes ; la première est celle affichée. "
                    "Gardez l'une d'elles ou saisissez-en une autre : la résolution arrive sur les tablettes de l'équipe à leur prochaine synchronisation, comme toute modification." }
                @for (n, f) in conflicts.iter().enumerate() {
                    @let echoed = echo.filter(|e| e.field == f.field);
                    @let other_id = format!("conflit-{prefix}-{n}-autre");
                    form.card method="post" action=(format!("/fiches/{record}/conflit")) data-testid="conflict-row" data-field=(f.field) {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        input type="hidden" name="champ" value=(f.field);
                        fieldset {
                            legend { strong { (f.label) } }
                            @if let Some(e) = echoed {
                                p.notice.error role="alert" data-testid="conflict-error" { (e.error) }
                            }
                            @for (i, v) in f.values.iter().enumerate() {
                                @let value_id = format!("conflit-{prefix}-{n}-{i}");
                                label.check for=(value_id) {
                                    input #(value_id) type="radio" name="choix" value=(v.json) checked[i == 0 && echoed.is_none()] data-testid="conflict-choice";
                                    span data-testid="conflict-value" { (v.label) }
                                    span.muted { " — " (written_by(users, tablets, v.author.as_ref()))
                                        @if let Some(t) = v.written_at { ", le " (labels::server_time(t)) " (horloge de l'appareil)" }
                                    }
                                }
                            }
                            label.check for=(format!("{other_id}-choix")) {
                                input #(format!("{other_id}-choix")) type="radio" name="choix" value="autre" checked[echoed.is_some()] data-testid="conflict-choice-other";
                                "Une autre valeur :"
                            }
                            @let typed = echoed.map_or("", |e| e.typed);
                            @match &f.input {
                                Input::Select(options) => {
                                    select #(other_id) name="valeur" aria-label=(format!("Autre valeur pour {}", f.label)) data-testid="conflict-other" {
                                        option value="" { "—" }
                                        @for (value, label) in options { option value=(value) selected[typed == value] { (label) } }
                                    }
                                }
                                Input::Date => {
                                    input #(other_id) type="text" name="valeur" value=(typed) placeholder="JJ/MM/AAAA" aria-label=(format!("Autre valeur pour {}", f.label)) data-testid="conflict-other";
                                }
                                Input::DateTime => {
                                    input #(other_id) type="text" name="valeur" value=(typed) placeholder="JJ/MM/AAAA HH:MM" aria-label=(format!("Autre valeur pour {}", f.label)) data-testid="conflict-other";
                                }
                                Input::Text => {
                                    input #(other_id) type="text" name="valeur" value=(typed) maxlength="2000" aria-label=(format!("Autre valeur pour {}", f.label)) data-testid="conflict-other";
                                }
                            }
                        }
                        button type="submit" data-testid="conflict-resolve" { "Résoudre" }
                    }
                }
            }
        }
    }
}

pub fn visit_page(
    nav: &Nav<'_>,
    d: &VisitDetail,
    flash: Option<&str>,
    error: Option<&str>,
    echo: Option<&ConflictEcho<'_>>,
) -> Markup {
    let c = &d.contact;
    let id = d.id;
    layout(
        "Visite",
        Some(nav),
        html! {
            p { a href="/visites" { "← Toutes les visites" } }
            h1 { "Visite du " (labels::device_time(&c.occurred_at)) }
            @if let Some(flash) = flash {
                p.notice.ok role="status" data-testid="review-message" { (flash) }
            }
            @if let Some(error) = error {
                p.notice.error role="alert" data-testid="review-error" { (error) }
            }
            div.grid {
                section.card data-testid="visit-detail" data-visit-id=(id) {
                    h2 { "La visite" }
                    dl {
                        dt { "Date (saisie sur la tablette)" } dd data-testid="visit-date" { (labels::device_time(&c.occurred_at)) }
                        dt { "Équipe" } dd data-testid="visit-team" { (d.team.name) }
                        dt { "Commune" } dd data-testid="visit-commune" { (commune_name(&c.commune)) " " span.muted { "(" (c.commune) ")" } }
                        dt { "Type" } dd data-testid="visit-kind" { (labels::contact_kind(c.kind)) }
                        dt { "Besoins" } dd data-testid="visit-needs" {
                            @if c.needs.is_empty() { span.muted { "aucun noté" } }
                            @for (i, n) in c.needs.iter().enumerate() { @if i > 0 { ", " } (labels::need(*n)) }
                        }
                        dt { "Notes" } dd.notes data-testid="visit-notes" { (c.notes) }
                        dt { "Prochaine étape" } dd data-testid="visit-next-step" {
                            @match &c.next_step {
                                Some(s) => { (s) @if let Some(due) = c.next_step_due { " — pour le " (labels::day(due)) } }
                                None => { span.muted { "aucune" } }
                            }
                        }
                        dt { "Reçue par le serveur" } dd { (labels::server_time(d.received_at)) }
                        dt { "Revue" } dd { (state_badge(d.state))
                            @if let Some(r) = &d.review {
                                " " span.muted { "le " (labels::server_time(r.at)) }
                                @if let Some(reason) = &r.reason {
                                    p data-testid="flag-reason-shown" { "Motif : " (reason) }
                                }
                            }
                        }
                    }
                }
                @for y in &d.youth {
                    section.card data-testid="youth-summary" data-youth-id=(y.id) {
                        h2 { "Jeune : " span data-testid="youth-name" { (y.youth.display_name()) } }
                        dl {
                            dt { "Âge" } dd data-testid="youth-age" { (age(y.age)) }
                            dt { "Commune" } dd data-testid="youth-commune" {
                                @match &y.youth.home_commune { Some(code) => { (commune_name(code)) } None => { span.muted { "non renseignée" } } }
                            }
                            dt { "Statut" } dd data-testid="youth-status" { (labels::youth_status(y.youth.status)) }
                            dt { "Profil" } dd { (flags(&y.youth)) }
                        }
                        p { a href=(format!("/jeunes/{}", y.id)) data-testid="youth-link" { "Voir la fiche" } }
                    }
                }
            }

            (conflicts_section(nav, id, "Conflits à résoudre", &open_conflicts(RecordKind::Contact, &d.conflicts), &Writers { users: &d.users, tablets: &d.tablets }, echo))

            section data-testid="review-tasks" {
                h2 { "Questions au binôme" }
                @if d.tasks.is_empty() {
                    p.muted { "Aucune question posée sur cette visite." }
                }
                @for (task_id, t) in &d.tasks {
                    article.card data-testid="review-task" data-task-id=(task_id) data-status=(crate::coord::reports::serde_id(&t.status)) {
                        p { strong { "Question" } " de " (t.asked_by) ", le " (labels::device_time(&crate::coord::paris(t.asked_at.to_utc()))) " : " }
                        p.notes data-testid="review-task-question" { (t.question) }
                        p { "Statut : " span.badge data-testid="review-task-status" { (labels::task_status(t.status)) } }
                        @if !t.answer.trim().is_empty() {
                            p { strong { "Réponse" }
                                @if let Some(by) = t.answered_by { " de " (author_name(d, by)) }
                                @if let Some(at) = &t.answered_at { ", le " (labels::device_time(&crate::coord::paris(at.to_utc()))) }
                                " :" }
                            p.notes data-testid="review-task-answer" { (t.answer) }
                        }
                        @if t.status != ReviewTaskStatus::Closed {
                            form method="post" action=(format!("/questions/{task_id}/cloturer")) {
                                input type="hidden" name="csrf" value=(nav.csrf);
                                button.secondary type="submit" data-testid="close-task-button" { "Clore la question" }
                            }
                        }
                    }
                }
            }

            section {
                h2 { "Revue" }
                div.actions {
                    form method="post" action=(format!("/visites/{id}/approuver")) data-testid="approve-form" {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        p { "La visite est complète et correcte." }
                        button type="submit" data-testid="approve-button" { "Approuver" }
                    }
                    form method="post" action=(format!("/visites/{id}/question")) data-testid="ask-form" {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        label for="question" { "Demander une information au binôme"
                            textarea #question name="question" required maxlength="2000" data-testid="ask-question" {}
                        }
                        p.muted { "La question arrive sur les tablettes de l'équipe à leur prochaine synchronisation." }
                        button type="submit" data-testid="ask-button" { "Envoyer la question" }
                    }
                    form method="post" action=(format!("/visites/{id}/signaler")) data-testid="flag-form" {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        label for="motif" { "Signaler la visite (motif)"
                            textarea #motif name="motif" required maxlength="1000" data-testid="flag-reason" {}
                        }
                        button.danger type="submit" data-testid="flag-button" { "Signaler" }
                    }
                }
                @if !d.events.is_empty() {
                    h3 { "Actions de revue" }
                    ul data-testid="review-events" { @for e in &d.events { li {
                        (labels::server_time(e.at)) " — " (action_label(&e.action))
                        @if let Some(u) = e.user_id { " — " (d.users.get(&u).cloned().unwrap_or_else(|| short_id(u))) }
                    } } }
                }
            }

            (erasure_request_form(nav, d.id, "Effacer cette visite (et les questions de la coordination sur elle)."))
            section {
                h2 { "Historique de la fiche" }
                p.muted { "Chaque modification avec son auteur et l'heure de l'appareil (indicative : les horloges des tablettes peuvent être fausses). La tablette est vérifiée par le serveur ; le membre de l'équipe et l'heure sont « déclarés par la tablette »." }
                div.table-wrap { table data-testid="history-table" {
                    thead { tr { th scope="col" { "Heure (appareil)" } th scope="col" { "Auteur" } th scope="col" { "Appareil" } th scope="col" { "Champs modifiés" } } }
                    tbody { @for h in &d.history { tr data-testid="history-row" {
                        td { @match h.written_at { Some(t) => { (labels::server_time(t)) } None => { "—" } } }
                        td { @match &h.author {
                            Some(a) if a.device_id.is_nil() => { (author_name(d, a.member_id)) }
                            Some(a) => { (author_name(d, a.member_id)) " " span.muted { "(déclaré par la tablette)" } }
                            None => { "inconnu" }
                        } }
                        td { @match &h.author {
                            Some(a) if a.device_id.is_nil() => { "serveur" }
                            Some(a) => { @match d.tablets.get(&a.device_id) {
                                Some(label) => { "tablette « " (label) " »" }
                                None => { "tablette " (short_id(a.device_id)) }
                            } }
                            None => { "—" }
                        } }
                        td { @for (i, f) in h.fields.iter().enumerate() { @if i > 0 { ", " } (labels::field(f)) } }
                    } } }
                } }
                h3 { "Réceptions par le serveur" }
                div.table-wrap { table data-testid="receipts-table" {
                    thead { tr { th scope="col" { "Reçu le (heure du serveur)" } th scope="col" { "Depuis" } th.num scope="col" { "Position" } } }
                    tbody { @for r in &d.receipts { tr {
                        td { (labels::server_time(r.received_at)) }
                        td { @match r.device_id { Some(dev) => { "tablette " (short_id(dev)) } None => { "serveur" } } }
                        td.num { (r.seq) }
                    } } }
                } }
            }
        },
    )
}

#[derive(Debug, Clone, Default)]
pub struct YouthForm {
    pub equipe: String,
    pub statut: String,
    pub q: String,
}

/// The young people's list, or (`Err`) the form with what was wrong with its filters.
pub fn youth_list_page(
    nav: &Nav<'_>,
    form: &YouthForm,
    list: Result<&Paged<YouthItem>, &str>,
) -> Markup {
    let who = nav.who;
    let params = [
        ("equipe", form.equipe.as_str()),
        ("statut", form.statut.as_str()),
        ("q", form.q.as_str()),
    ];
    layout(
        "Jeunes",
        Some(nav),
        html! {
            h1 { "Jeunes suivis" }
            form.filters method="get" action="/jeunes" data-testid="youth-filter-form" role="search" {
                (team_select(who, &form.equipe, "filter-team"))
                label for="statut" { "Statut"
                    select #statut name="statut" data-testid="filter-status" {
                        option value="" { "Tous" }
                        @for s in labels::YOUTH_STATUSES {
                            @let id = crate::coord::reports::serde_id(&s);
                            option value=(id) selected[form.statut == id] { (labels::youth_status(s)) }
                        }
                    }
                }
                label for="q" { "Nom, surnom ou commune"
                    input #q type="search" name="q" value=(form.q) data-testid="filter-search";
                }
                button type="submit" data-testid="filter-submit" { "Filtrer" }
            }
            @match list {
                Err(message) => { (filter_error(message)) }
                Ok(page) => { (youth_list(who, page, &params)) }
            }
        },
    )
}

fn youth_list(who: &Coordinator, page: &Paged<YouthItem>, params: &[(&str, &str)]) -> Markup {
    html! {
            p data-testid="youth-total" data-total=(page.total) { (page.total) " jeune" @if page.total > 1 { "s" } }
            div.table-wrap { table data-testid="youth-table" {
                thead { tr {
                    th scope="col" { "Jeune" } th scope="col" { "Équipe" } th scope="col" { "Âge" }
                    th scope="col" { "Commune" } th scope="col" { "Statut" } th scope="col" { "Profil" }
                    th.num scope="col" { "Visites" } th.num scope="col" { "Actions" } th.num scope="col" { "Solutions" }
                    th scope="col" { "Dernière visite" }
                } }
                tbody { @for y in &page.items {
                    tr data-testid="youth-row" data-youth-id=(y.id) {
                        td { a href=(format!("/jeunes/{}", y.id)) data-testid="youth-link" { (y.youth.display_name()) } }
                        td { (who.team_name(y.team_id)) }
                        td { (age(y.youth.approximate_age(y.last_contact.unwrap_or(y.youth.first_contact_date)))) }
                        td { @if let Some(c) = &y.youth.home_commune { (commune_name(c)) } }
                        td { (labels::youth_status(y.youth.status)) }
                        td { (flags(&y.youth)) }
                        td.num { (y.contacts) } td.num { (y.actions) } td.num { (y.outcomes) }
                        td { @if let Some(d) = y.last_contact { (labels::day(d)) } }
                    }
                } }
            } }
            (pager(page, "/jeunes", params))
    }
}

/// « conflit » on a row of an action or outcome with conflicting fields.
fn conflict_badge(d: &YouthDetail, record: Uuid) -> Markup {
    html! {
        @if d.record_conflicts.contains_key(&record) {
            span.badge.flagged data-testid="record-conflict" { "conflit à résoudre" }
        }
    }
}

pub fn youth_page(
    nav: &Nav<'_>,
    d: &YouthDetail,
    flash: Option<&str>,
    echo: Option<&ConflictEcho<'_>>,
) -> Markup {
    let y = &d.youth;
    let writers = Writers {
        users: &d.users,
        tablets: &d.tablets,
    };
    layout(
        "Fiche jeune",
        Some(nav),
        html! {
            p { a href="/jeunes" { "← Tous les jeunes" } }
            h1 data-testid="youth-name" { (y.display_name()) }
            @if let Some(flash) = flash {
                p.notice.ok role="status" data-testid="review-message" { (flash) }
            }
            p.no-print {
                a href=(format!("/jeunes/{}/acces", d.id)) data-testid="access-link" { "Droit d'accès : tout ce qui est détenu sur ce jeune" }
                " · "
                a href=(format!("/jeunes/{}/acces.json", d.id)) data-testid="access-json-link" { "en JSON" }
            }
            section.card data-testid="youth-detail" data-youth-id=(d.id) {
                dl {
                    dt { "Équipe" } dd { (d.team.name) }
                    dt { "Référence" } dd { code data-testid="youth-reference" { (d.id) } " " span.muted { "(à donner à une autre organisation pour un accès exceptionnel)" } }
                    dt { "Statut" } dd data-testid="youth-status" { (labels::youth_status(y.status)) }
                    dt { "Âge" } dd data-testid="youth-age" { (age(d.age)) }
                    dt { "Sexe" } dd { @match y.sex { Some(s) => { (labels::sex(s)) } None => { "non renseigné" } } }
                    dt { "Commune" } dd data-testid="youth-commune" { @match &y.home_commune { Some(c) => { (commune_name(c)) } None => { "non renseignée" } } }
                    dt { "Identité connue" } dd { (labels::identity_level(y.identity_level)) }
                    dt { "Premier contact" } dd { (labels::day(y.first_contact_date)) }
                    dt { "Signalé par" } dd { (labels::referral(y.referral_source)) }
                    dt { "Situation au premier contact" } dd {
                        (labels::situation(y.situation))
                        @if let Some(s) = y.followed_by { " — suivi par " (labels::service(s)) }
                        @if y.is_invisible() { " " span.badge { "invisible" } }
                    }
                    dt { "Profil" } dd { (flags(y)) }
                }
            }
            (conflicts_section(nav, d.id, "Conflits à résoudre", &open_conflicts(RecordKind::Youth, &d.conflicts), &writers, echo))
            h2 { "Visites" }
            div.table-wrap { table data-testid="youth-contacts" {
                thead { tr { th scope="col" { "Date" } th scope="col" { "Commune" } th scope="col" { "Type" } th scope="col" { "Revue" } th scope="col" { "" } } }
                tbody { @for (id, c, state) in &d.contacts { tr {
                    td { (labels::device_time(&c.occurred_at)) }
                    td { (commune_name(&c.commune)) }
                    td { (labels::contact_kind(c.kind)) }
                    td { (state_badge(*state)) }
                    td { a href=(format!("/visites/{id}")) data-testid="visit-link" { "Ouvrir" } }
                } } }
            } }
            h2 { "Actions" }
            @if d.actions.is_empty() { p.muted { "Aucune action." } } @else {
                div.table-wrap { table data-testid="youth-actions" {
                    thead { tr { th scope="col" { "Début" } th scope="col" { "Fin" } th scope="col" { "Action" } th scope="col" { "Statut" } th scope="col" { "" } } }
                    tbody { @for (id, a) in &d.actions { tr data-testid="action-row" data-action-id=(id) {
                        td { (labels::day(a.start_date)) }
                        td { @if let Some(e) = a.end_date { (labels::day(e)) } }
                        td { (labels::action_kind(a.kind)) }
                        td { (labels::action_status(a.status)) }
                        td { (conflict_badge(d, *id)) }
                    } } }
                } }
                @for (id, a) in &d.actions {
                    @if let Some(found) = d.record_conflicts.get(id) {
                        (conflicts_section(nav, *id, &format!("Conflits à résoudre sur l'action « {} » du {}", labels::action_kind(a.kind), labels::day(a.start_date)), &open_conflicts(RecordKind::Action, found), &writers, echo))
                    }
                }
            }
            h2 { "Solutions" }
            @if d.outcomes.is_empty() { p.muted { "Aucune solution enregistrée." } } @else {
                div.table-wrap { table data-testid="youth-outcomes" {
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Solution" } th scope="col" { "Organisme" } th scope="col" { "" } } }
                    tbody { @for (id, o) in &d.outcomes { tr data-testid="outcome-row" data-outcome-id=(id) {
                        td { (labels::day(o.date)) }
                        td { (labels::outcome_kind(o.kind)) }
                        td { @if let Some(org) = &o.organisation { (org) } }
                        td { (conflict_badge(d, *id)) }
                    } } }
                } }
                @for (id, o) in &d.outcomes {
                    @if let Some(found) = d.record_conflicts.get(id) {
                        (conflicts_section(nav, *id, &format!("Conflits à résoudre sur la solution « {} » du {}", labels::outcome_kind(o.kind), labels::day(o.date)), &open_conflicts(RecordKind::Outcome, found), &writers, echo))
                    }
                }
            }
            section.card.no-print data-testid="transfer-link" {
                h2 { "Changement d'équipe" }
                p { a href=(format!("/jeunes/{}/transfert", d.id)) { "Transférer ce jeune à une autre équipe" } " (il a déménagé)." }
            }
            (erasure_request_form(nav, d.id, "Effacer ce jeune : sa fiche, ses actions, ses solutions et les visites où il était seul ; il est retiré des visites de groupe."))
        },
    )
}

/// The form that asks for a young person's transfer (accepted by the destination).
pub fn transfer_request_page(
    nav: &Nav<'_>,
    youth_id: Uuid,
    name: &str,
    destinations: &[Destination],
) -> Markup {
    layout(
        "Transférer un jeune",
        Some(nav),
        html! {
            p.no-print { a href=(format!("/jeunes/{youth_id}")) { "← La fiche" } }
            h1 { "Transférer " (name) " à une autre équipe" }
            p.muted { "La coordination de l'équipe d'arrivée accepte ou refuse. Une fois accepté, la fiche, les actions "
                "et les solutions du jeune passent à cette équipe et quittent les tablettes de la vôtre à leur "
                "prochaine synchronisation ; les visites restent à votre équipe, qui les a faites." }
            form.card method="post" action="/transferts" data-testid="transfer-request" {
                input type="hidden" name="csrf" value=(nav.csrf);
                input type="hidden" name="fiche" value=(youth_id);
                label for="equipe-arrivee" { "Équipe d'arrivée"
                    select #equipe-arrivee name="equipe" data-testid="transfer-destination" {
                        @for d in destinations { option value=(d.team_id) { (d.label) } }
                    }
                }
                button type="submit" data-testid="transfer-request-button" { "Demander le transfert" }
            }
        },
    )
}

pub fn transfer_list_page(nav: &Nav<'_>, items: &[TransferItem], error: Option<&str>) -> Markup {
    layout(
        "Transferts",
        Some(nav),
        html! {
            h1 { "Transferts entre équipes" }
            p.muted { "Un transfert se demande depuis la fiche d'un jeune qui a déménagé. La coordination de l'équipe "
                "d'arrivée l'accepte ou le refuse ; chacune des deux équipes peut l'annuler tant qu'il attend." }
            @if let Some(e) = error { p.error role="alert" data-testid="transfer-error" { (e) } }
            @if items.is_empty() {
                p data-testid="transfer-empty" { "Aucun transfert." }
            } @else {
                div.table-wrap { table data-testid="transfer-table" {
                    thead { tr {
                        th scope="col" { "Demandé le" } th scope="col" { "Jeune" } th scope="col" { "De" }
                        th scope="col" { "Vers" } th scope="col" { "État" } th scope="col" { "" }
                    } }
                    tbody { @for i in items {
                        tr data-testid="transfer-row" data-id=(i.transfer.id) data-youth-id=(i.transfer.youth_id) data-state=(i.transfer.state.as_str()) {
                            td { (labels::server_time(i.transfer.requested_at)) }
                            td { (i.youth_label) }
                            td { (i.from_team) }
                            td { (i.to_team) }
                            td { span.badge data-state=(i.transfer.state.as_str()) { (i.transfer.state.label())
                                @if let (TransferState::Accepted | TransferState::Refused | TransferState::Cancelled, Some(at)) = (i.transfer.state, i.transfer.decided_at) {
                                    " le " (labels::server_time(at))
                                }
                            } }
                            td { @if i.pending() {
                                @if i.incoming {
                                    form method="post" action=(format!("/transferts/{}/accepter", i.transfer.id)) {
                                        input type="hidden" name="csrf" value=(nav.csrf);
                                        button type="submit" data-testid="transfer-accept" { "Accepter" }
                                    }
                                    form method="post" action=(format!("/transferts/{}/refuser", i.transfer.id)) {
                                        input type="hidden" name="csrf" value=(nav.csrf);
                                        button type="submit" data-testid="transfer-refuse" { "Refuser" }
                                    }
                                }
                                form method="post" action=(format!("/transferts/{}/annuler", i.transfer.id)) {
                                    input type="hidden" name="csrf" value=(nav.csrf);
                                    button type="submit" data-testid="transfer-cancel" { "Annuler" }
                                }
                            } }
                        }
                    } }
                } }
            }
        },
    )
}

#[derive(Debug, Clone, Default)]
pub struct DashboardForm {
    pub du: String,
    pub au: String,
    pub granularite: String,
    pub dimension: String,
    pub equipe: String,
}

impl DashboardForm {
    pub fn query_string(&self) -> String {
        query_string(&[
            ("du", &self.du),
            ("au", &self.au),
            ("granularite", &self.granularite),
            ("dimension", &self.dimension),
            ("equipe", &self.equipe),
        ])
    }
}

const FIGURES: [(&str, &str); 5] = [
    ("identified", "Jeunes repérés (invisibles)"),
    ("helped", "Coups de main"),
    ("mobilised", "Jeunes mobilisés"),
    ("chantier_participants", "Participants aux chantiers"),
    ("youth_with_outcome", "Jeunes ayant une solution"),
];

pub fn figure(f: &Figures, id: &str) -> u32 {
    match id {
        "identified" => f.identified,
        "helped" => f.helped,
        "mobilised" => f.mobilised,
        "chantier_participants" => f.chantier_participants,
        "youth_with_outcome" => f.youth_with_outcome,
        _ => 0,
    }
}

fn outcomes_total(f: &Figures) -> u32 {
    f.outcomes.by_kind().iter().map(|(_, n)| *n).sum()
}

fn figures_table(rows: &[IndicatorRow], with_period: bool, testid: &str) -> Markup {
    html! {
        div.table-wrap { table data-testid=(testid) {
            thead { tr {
                @if with_period { th scope="col" { "Période" } }
                th scope="col" { "Valeur" }
                @for (_, label) in FIGURES { th.num scope="col" { (label) } }
                th.num scope="col" { "Solutions" }
            } }
            tbody { @for r in rows {
                tr class=[r.key.is_none().then_some("total")] {
                    @if with_period { td { (r.period.label) } }
                    td { (r.label) }
                    @for (id, _) in FIGURES { td.num { (figure(&r.figures, id)) } }
                    td.num { (outcomes_total(&r.figures)) }
                }
            } }
        } }
    }
}

fn progress_block(id: &str, label: &str, p: &FigureProgress) -> Markup {
    html! {
        div.figure data-testid=(format!("progress-{id}")) {
            h3 { (label) }
            p {
                span data-testid=(format!("progress-{id}-achieved")) { (p.achieved) }
                " sur un objectif de "
                span data-testid=(format!("progress-{id}-target")) { (p.target) }
                " (" span data-testid=(format!("progress-{id}-percent")) { (format!("{:.1}", p.percent).replace('.', ",")) } " %)"
            }
            meter min="0" max=(p.target.max(1)) value=(p.achieved) low=(p.expected_by_now) optimum=(p.target) {
                (p.achieved) " / " (p.target)
            }
            p.muted {
                "Rythme attendu à ce jour : " (p.expected_by_now) " — "
                @if p.on_track { span data-testid=(format!("progress-{id}-on-track")) { "dans les temps" } }
                @else { span data-testid=(format!("progress-{id}-on-track")) { "en retard" } }
            }
        }
    }
}

pub fn dashboard_page(
    nav: &Nav<'_>,
    form: &DashboardForm,
    dashboard: Result<&Dashboard, &str>,
) -> Markup {
    let who = nav.who;
    let granularities = [Granularity::Month, Granularity::Quarter, Granularity::Whole];
    layout(
        "Tableau de bord",
        Some(nav),
        html! {
            h1 { "Tableau de bord" }
            @if who.user.role == Role::Admin {
                p { a href="/tableau-de-bord/consortium" data-testid="consortium-link" { "Chiffres de toutes les organisations du consortium" } }
            }
            form.filters method="get" action="/tableau-de-bord" data-testid="dashboard-filter-form" {
                label for="du" { "Du" input #du type="date" name="du" value=(form.du) data-testid="filter-from"; }
                label for="au" { "Au" input #au type="date" name="au" value=(form.au) data-testid="filter-to"; }
                label for="granularite" { "Par"
                    select #granularite name="granularite" data-testid="filter-granularity" {
                        @for g in granularities {
                            option value=(granularity_id(g)) selected[form.granularite == granularity_id(g)] { (labels::granularity(g)) }
                        }
                    }
                }
                label for="dimension" { "Détail par"
                    select #dimension name="dimension" data-testid="filter-dimension" {
                        option value="" { "Aucun (totaux)" }
                        @for dim in DIMENSIONS {
                            option value=(dim.as_str()) selected[form.dimension == dim.as_str()] { (labels::dimension(dim)) }
                        }
                    }
                }
                (team_select(who, &form.equipe, "filter-team"))
                button type="submit" data-testid="filter-submit" { "Afficher" }
            }
            @match dashboard {
                Err(message) => { p.notice.error role="alert" data-testid="dashboard-error" { (message) } }
                Ok(d) => { (dashboard_body(nav, form, d)) }
            }
        },
    )
}

/// The consortium page's period, as typed or as counted.
pub struct ConsortiumForm {
    pub du: String,
    pub au: String,
}

/// The consortium's figures: one row per organisation (all of them for an administrator,
/// their own for a coordinator), a total row when there are several, and each one's
/// progress against its targets.
pub fn consortium_page(
    nav: &Nav<'_>,
    form: &ConsortiumForm,
    figures: Result<&[OrganisationFigures], &str>,
) -> Markup {
    let everyone = nav.who.user.role == Role::Admin;
    layout(
        "Consortium",
        Some(nav),
        html! {
            h1 { "Chiffres du consortium" }
            p.muted {
                @if everyone {
                    "Toutes les organisations de ce serveur (le consortium), chacune sur ses propres équipes."
                } @else {
                    "Votre organisation : les chiffres des autres organisations du consortium sont réservés aux administrateurs."
                }
            }
            form.filters method="get" action="/tableau-de-bord/consortium" data-testid="consortium-filter-form" {
                label for="du" { "Du" input #du type="date" name="du" value=(form.du) data-testid="filter-from"; }
                label for="au" { "Au" input #au type="date" name="au" value=(form.au) data-testid="filter-to"; }
                button type="submit" data-testid="filter-submit" { "Afficher" }
            }
            @match figures {
                Err(message) => { p.notice.error role="alert" data-testid="consortium-error" { (message) } }
                Ok(rows) => { (consortium_body(rows)) }
            }
        },
    )
}

fn consortium_body(rows: &[OrganisationFigures]) -> Markup {
    let total = |id: &str| -> u32 { rows.iter().map(|r| figure(&r.dashboard.totals, id)).sum() };
    let outcomes: u32 = rows
        .iter()
        .map(|r| outcomes_total(&r.dashboard.totals))
        .sum();
    let with_targets: Vec<&OrganisationFigures> = rows
        .iter()
        .filter(|r| r.dashboard.progress.is_some())
        .collect();
    html! {
        @if let Some(first) = rows.first() {
            p.muted { "Du " (labels::day(first.dashboard.query.from)) " au " (labels::day(first.dashboard.query.to)) "." }
        }
        div.table-wrap { table data-testid="consortium-table" {
            caption { "Totaux de la période par organisation" }
            thead { tr {
                th scope="col" { "Organisation" }
                th.num scope="col" { "Équipes" }
                @for (_, label) in FIGURES { th.num scope="col" { (label) } }
                th.num scope="col" { "Solutions (toutes)" }
            } }
            tbody {
                @for r in rows {
                    tr data-testid="consortium-row" data-organisation-id=(r.organisation.id) {
                        th scope="row" data-testid="consortium-organisation" { (r.organisation.name) }
                        td.num { (r.teams) }
                        @for (id, _) in FIGURES {
                            td.num data-testid=(format!("org-{id}")) { (figure(&r.dashboard.totals, id)) }
                        }
                        td.num data-testid="org-outcomes" { (outcomes_total(&r.dashboard.totals)) }
                    }
                }
                @if rows.len() > 1 {
                    tr.total data-testid="consortium-total" {
                        th scope="row" { "Consortium" }
                        td.num { (rows.iter().map(|r| r.teams).sum::<usize>()) }
                        @for (id, _) in FIGURES {
                            td.num data-testid=(format!("consortium-{id}")) { (total(id)) }
                        }
                        td.num data-testid="consortium-outcomes" { (outcomes) }
                    }
                }
            }
        } }
        @if !with_targets.is_empty() {
            h2 { "Objectifs des conventions" }
            div.table-wrap { table data-testid="consortium-targets" {
                thead { tr {
                    th scope="col" { "Organisation" }
                    th scope="col" { "Convention" }
                    th.num scope="col" { "Jeunes repérés" }
                    th.num scope="col" { "Jeunes mobilisés" }
                } }
                tbody { @for r in with_targets {
                    @if let (Some(t), Some(p)) = (&r.dashboard.targets, &r.dashboard.progress) {
                        tr data-testid="consortium-target-row" data-organisation-id=(r.organisation.id) {
                            th scope="row" { (r.organisation.name) }
                            td { "du " (labels::day(t.from)) " au " (labels::day(t.to)) }
                            td.num { (progress_cell(p.identified.as_ref())) }
                            td.num { (progress_cell(p.mobilised.as_ref())) }
                        }
                    }
                } }
            } }
        }
    }
}

/// "achieved / target (percent %)", or a dash without a target.
fn progress_cell(p: Option<&FigureProgress>) -> String {
    p.map_or_else(
        || "—".to_string(),
        |p| {
            format!(
                "{} / {} ({} %)",
                p.achieved,
                p.target,
                format!("{:.1}", p.percent).replace('.', ",")
            )
        },
    )
}

fn dashboard_body(nav: &Nav<'_>, form: &DashboardForm, d: &Dashboard) -> Markup {
    let t = &d.totals;
    let export = format!("/exports/indicateurs.csv?{}", form.query_string());
    let period_totals: Vec<&IndicatorRow> =
        d.report.rows.iter().filter(|r| r.key.is_none()).collect();
    html! {
        p.muted {
            "Du " (labels::day(d.query.from)) " au " (labels::day(d.query.to))
            @match d.query.team { Some(team) => { " — " (nav.who.team_name(team)) } None => { " — toutes les équipes de " (nav.who.organisation.name) } }
            ". Définitions : un jeune est compté s'il a au moins une visite ; les chiffres sont recalculés à chaque affichage."
        }
        h2 { "Totaux de la période" }
        div.figures data-testid="totals" {
            @for (id, label) in FIGURES {
                div.figure { span.value data-testid=(format!("total-{id}")) { (figure(t, id)) } (label) }
            }
            div.figure { span.value data-testid="total-outcomes" { (outcomes_total(t)) } "Solutions (toutes)" }
        }
        div.table-wrap { table data-testid="outcomes-table" {
            caption { "Solutions par type" }
            thead { tr { th scope="col" { "Type" } th.num scope="col" { "Nombre" } } }
            tbody { @for (id, n) in t.outcomes.by_kind() {
                tr { td { (labels::outcome_id(id)) } td.num data-testid=(format!("total-outcome-{id}")) { (n) } }
            } }
        } }
        @if let (Some(targets), Some(p)) = (&d.targets, &d.progress) {
            h2 { "Objectifs de la convention" }
            p.muted { "Du " (labels::day(targets.from)) " au " (labels::day(targets.to)) ", toutes les équipes de l'organisation, au " (labels::day(p.today)) "." }
            div.figures data-testid="targets" {
                @if let Some(i) = &p.identified { (progress_block("identified", "Jeunes repérés", i)) }
                @if let Some(m) = &p.mobilised { (progress_block("mobilised", "Jeunes mobilisés", m)) }
            }
        }
        h2 { "Évolution" }
        (chart::periods(&period_totals))
        @if !d.by_dimension.is_empty() {
            @if let Some(dim) = d.query.dimension {
                h2 { "Par " (labels::dimension(dim).to_lowercase()) " (période entière)" }
                (chart::dimension(&d.by_dimension))
                (figures_table(&d.by_dimension, false, "dimension-table"))
            }
        }
        h2 { "Chiffres par période" }
        (figures_table(&d.report.rows, true, "figures-table"))
        p { a href=(export) download data-testid="export-indicators-link" { "Télécharger ces chiffres (CSV)" } }
        @if d.query.dimension == Some(Dimension::ProfileFlag) {
            p.muted { "Un jeune ayant plusieurs profils compte dans chacun : les lignes peuvent dépasser le total." }
        }
    }
}

/// The user's account: the second factor, and how to set it up.
/// `more`: the password and sessions sections (`web::account`).
pub fn account_page(
    nav: &Nav<'_>,
    status: &SecondFactorStatus,
    message: Option<&str>,
    more: Markup,
) -> Markup {
    layout(
        "Mon compte",
        Some(nav),
        html! {
            h1 { "Mon compte" }
            @if let Some(message) = message {
                p.notice.warn role="status" data-testid="account-message" { (message) }
            }
            section.card data-testid="second-factor-section" {
                h2 { "Double authentification" }
                @match status.enabled_at {
                    Some(at) => {
                        p.notice.ok data-testid="second-factor-status" data-enabled="yes" {
                            "Activée depuis le " (labels::server_time(at)) ". "
                            "Chaque connexion demande le code de votre application d'authentification."
                        }
                        p data-testid="recovery-codes-left" data-count=(status.recovery_codes_left) {
                            "Codes de secours encore utilisables : " (status.recovery_codes_left) " sur " (RECOVERY_CODES) "."
                        }
                        p.muted { "Téléphone perdu, ou plus de codes de secours : demandez à l'administrateur de réinitialiser la double authentification, puis activez-la à nouveau." }
                    }
                    None => {
                        p.notice.warn data-testid="second-factor-status" data-enabled="no" {
                            "Non activée. Elle est nécessaire pour exporter les noms des jeunes."
                        }
                        p { "Il vous faut une application d'authentification sur votre téléphone (par exemple FreeOTP, Aegis, Google Authenticator ou Microsoft Authenticator)." }
                        form method="post" action="/compte/double-authentification" data-testid="second-factor-start-form" {
                            input type="hidden" name="csrf" value=(nav.csrf);
                            button type="submit" data-testid="second-factor-start" {
                                @if status.pending { "Recommencer l'activation" } @else { "Activer la double authentification" }
                            }
                        }
                        @if status.pending {
                            p { a href="/compte/double-authentification" data-testid="second-factor-continue" { "Reprendre l'activation en cours" } }
                        }
                    }
                }
            }
            (more)
        },
    )
}

/// The secret being set up and the form that confirms it.
pub fn totp_setup_page(nav: &Nav<'_>, setup: &TotpSetup, error: Option<&str>) -> Markup {
    layout(
        "Activer la double authentification",
        Some(nav),
        html! {
            h1 { "Activer la double authentification" }
            section.card data-testid="totp-setup" {
                h2 { "1. Ajoutez le compte dans l'application" }
                p { "Dans l'application d'authentification, ajoutez un compte « à saisir manuellement » (type : basé sur l'heure), avec cette clé :" }
                code.secret data-testid="totp-secret" { (setup.secret) }
                p { "Ou donnez-lui cette adresse otpauth:// (depuis ce téléphone ou cette tablette : "
                    a href=(setup.uri) data-testid="totp-link" { "ouvrir dans l'application d'authentification" } ") :" }
                code.secret data-testid="totp-uri" { (setup.uri) }
                p { "Ou scannez ce code QR avec l'application :" }
                figure data-testid="totp-qr" { (qr_svg(&setup.uri)) }
                h2 { "2. Saisissez le code affiché" }
                @if let Some(error) = error {
                    p.notice.error role="alert" data-testid="totp-error" { (error) }
                }
                form method="post" action="/compte/double-authentification/confirmer" data-testid="totp-confirm-form" {
                    input type="hidden" name="csrf" value=(nav.csrf);
                    label for="code" { "Code à 6 chiffres"
                        input #code type="text" name="code" autocomplete="one-time-code" required
                            inputmode="numeric" maxlength="16" data-testid="totp-code";
                    }
                    button type="submit" data-testid="totp-confirm" { "Confirmer et activer" }
                }
                p.muted { "Une fois activée, vos autres sessions sont fermées et chaque connexion demande un code." }
            }
        },
    )
}

/// The recovery codes, shown once when the second factor is confirmed.
pub fn recovery_codes_page(nav: &Nav<'_>, codes: &[String]) -> Markup {
    layout(
        "Codes de secours",
        Some(nav),
        html! {
            h1 { "Double authentification activée" }
            p.notice.ok role="status" data-testid="second-factor-enabled" {
                "La double authentification est activée sur votre compte."
            }
            section.card {
                h2 { "Vos codes de secours" }
                p { strong { "Notez-les maintenant : ils ne seront plus jamais affichés." }
                    " Chacun permet une seule connexion sans le téléphone. Gardez-les à l'abri (pas dans le téléphone lui-même)." }
                ol.codes data-testid="recovery-codes" {
                    @for code in codes { li data-testid="recovery-code" { (code) } }
                }
                p { a href="/exports" { "Aller aux exports" } " · " a href="/visites" { "Retour aux visites" } }
            }
        },
    )
}

/// The export with names, refused for want of a second factor.
/// What needs a second factor, and where to go back to.
pub struct SecondFactorFor<'a> {
    pub what: &'a str,
    pub back_href: &'a str,
    pub back_label: &'a str,
}

pub const NAMED_EXPORT: SecondFactorFor<'static> = SecondFactorFor {
    what: "L'export avec les noms des jeunes",
    back_href: "/exports",
    back_label: "Retour aux exports",
};

pub fn second_factor_required_page(nav: &Nav<'_>, purpose: &SecondFactorFor<'_>) -> Markup {
    layout(
        "Double authentification requise",
        Some(nav),
        html! {
            section.card data-testid="second-factor-required" {
                h1 { "Double authentification requise" }
                p { (purpose.what) " n'est possible qu'avec la double authentification. "
                    "Activez-la depuis « Mon compte », puis recommencez." }
                p { a href="/compte" data-testid="setup-second-factor-link" { "Activer la double authentification" } }
                p { a href=(purpose.back_href) { (purpose.back_label) } }
            }
        },
    )
}

/// The right-of-access document, printable (GDPR art. 15).
pub fn access_page(nav: &Nav<'_>, f: &AccessFile) -> Markup {
    let name = f
        .records
        .first()
        .and_then(crate::coord::access::read)
        .and_then(|r| match r {
            repere_core::AnyRecord::Youth(y) => Some(y.display_name()),
            _ => None,
        })
        .unwrap_or_else(|| short_id(f.youth_id));
    layout(
        "Droit d'accès",
        Some(nav),
        html! {
            p.no-print { a href=(format!("/jeunes/{}", f.youth_id)) { "← La fiche" } }
            h1 data-testid="access-title" { "Droit d'accès — données détenues sur " (name) }
            p data-testid="access-meta" {
                (f.organisation) ", " (f.team.name) ". Document produit le " (labels::server_time(f.made_at))
                " par " (f.made_by) " (cette production est inscrite au journal). "
                "Il rassemble la fiche, les visites, actions et solutions qui la concernent, les questions "
                "de la coordination sur ces visites, l'historique de chaque fiche (qui a modifié quels "
                "champs, quand) et le journal des consultations, exports et actions."
            }
            p.muted.no-print { "Pour l'imprimer ou l'enregistrer en PDF : menu Imprimer du navigateur." }
            @for r in &f.records {
                section.card data-testid="access-record" data-kind=(r.kind.as_str()) data-id=(r.id) {
                    h2 { (labels::record_kind(r.kind)) " " span.muted { (short_id(r.id)) } }
                    @if r.generation > 0 {
                        p.muted { "Fiche rectifiée " (r.generation) " fois : son historique commence à la dernière rectification." }
                    }
                    div.table-wrap { table {
                        thead { tr { th scope="col" { "Champ" } th scope="col" { "Valeur" } } }
                        tbody { @for (field, _) in r.kind.schema() { tr {
                            td { (labels::field(field)) }
                            td { (r.fields.get(*field).map_or_else(|| "(vide)".to_string(), json_value)) }
                        } } }
                    } }
                    h3 { "Historique" }
                    div.table-wrap { table data-testid="access-history" {
                        thead { tr { th scope="col" { "Heure (appareil)" } th scope="col" { "Auteur" } th scope="col" { "Champs modifiés" } } }
                        tbody { @for h in &r.history { tr {
                            td { @match h.written_at { Some(t) => { (labels::server_time(t)) } None => { "—" } } }
                            td { (h.author) }
                            td { @for (i, field) in h.fields.iter().enumerate() { @if i > 0 { ", " } (labels::field(field)) } }
                        } } }
                    } }
                }
            }
            h2 { "Journal : consultations, exports et actions" }
            div.table-wrap { table data-testid="access-journal" {
                thead { tr { th scope="col" { "Date" } th scope="col" { "Utilisateur" } th scope="col" { "Action" } th scope="col" { "Fiche" } } }
                tbody { @for a in &f.audit { tr data-testid="access-journal-row" data-action=(a.entry.action) {
                    td { (labels::server_time(a.entry.at)) }
                    td { @match &a.user_name { Some(n) => { (n) } None => { "—" } } }
                    td { (action_label(&a.entry.action)) }
                    td { @if let Some(t) = a.entry.target_id { (short_id(t)) } }
                } } }
            } }
        },
    )
}

/// The exports page; `error`: why the export asked for was refused (an invalid filter).
pub fn exports_page(nav: &Nav<'_>, error: Option<&str>) -> Markup {
    let who = nav.who;
    let names_allowed = who.second_factor;
    layout(
        "Exports",
        Some(nav),
        html! {
            h1 { "Exports" }
            @if let Some(message) = error {
                p.notice.error role="alert" data-testid="filter-error" { (message) " Rien n'a été exporté." }
            }
            section.card {
                h2 { "Indicateurs (CSV)" }
                p { "Les chiffres du tableau de bord, avec les mêmes filtres. Choisissez-les sur le "
                    a href="/tableau-de-bord" { "tableau de bord" } " puis utilisez le lien de téléchargement, ou téléchargez la période de la convention jusqu'à aujourd'hui, par mois :" }
                p { a href="/exports/indicateurs.csv" download data-testid="export-indicators-link" { "Télécharger les indicateurs (CSV)" } }
            }
            section.card {
                h2 { "Jeunes, une ligne par jeune (CSV)" }
                p { "Équipe, statut, tranche d'âge, sexe, commune et intercommunalité, origine du signalement, situation, mois du premier contact, nombres de visites, d'actions et de solutions." }
                p.notice.warn data-testid="export-youth-personal-data" {
                    strong { "Données personnelles : " }
                    "ce fichier, même pseudonymisé, n'est pas anonyme. Croisées avec d'autres informations, ses lignes peuvent désigner un jeune. "
                    "Conservez-le dans un espace protégé, ne le transmettez pas (le financeur reçoit les indicateurs) et supprimez-le après usage. Chaque export est tracé dans le journal."
                }
                p { "L'export pseudonymisé retire :" }
                ul data-testid="export-youth-rules" {
                    li { "les noms et l'identifiant de la fiche, remplacés par un pseudonyme stable (J- suivi de 16 caractères) ;" }
                    li { "le jour du premier contact : seul le mois reste (AAAA-MM) ;" }
                    li { "la commune où vivent moins de " (crate::coord::reports::MIN_CELL) " jeunes de l'export : seule reste son intercommunalité, retirée aussi quand moins de " (crate::coord::reports::MIN_CELL) " jeunes y sont ainsi regroupés ;" }
                    li { "les indicateurs de profil (sortie de l'ASE, décrochage scolaire, handicap, mesure de justice) : la colonne profile_flags n'apparaît que si vous cochez la case ci-dessous, et l'export est noté au journal « avec indicateurs de profil »." }
                }
                p.muted { "La tranche d'âge, le sexe, l'équipe et les autres colonnes restent : dans une petite commune, leur combinaison peut encore désigner quelqu'un." }
                form method="post" action="/exports/jeunes.csv" data-testid="export-youth-form" {
                    input type="hidden" name="csrf" value=(nav.csrf);
                    (team_select(who, "", "export-team"))
                    label.check for="indicateurs_profil" {
                        input #indicateurs_profil type="checkbox" name="indicateurs_profil" value="oui"
                            data-testid="export-youth-flags";
                        "Inclure les indicateurs de profil (données sensibles)"
                    }
                    p.notice.warn {
                        strong { "Attention : " }
                        "un export avec les noms contient l'identité des jeunes, leur commune et la date complète du premier contact. "
                        "Ne le demandez que si c'est nécessaire. Les indicateurs de profil n'y figurent que si la case ci-dessus est cochée."
                    }
                    @if !names_allowed {
                        p.notice data-testid="export-names-need-second-factor" {
                            "L'export avec les noms demande la double authentification. "
                            a href="/compte" data-testid="setup-second-factor-link" { "Activez-la depuis « Mon compte »" } "."
                        }
                    }
                    label.check for="avec_noms" {
                        input #avec_noms type="checkbox" name="avec_noms" value="oui"
                            disabled[!names_allowed] data-testid="export-youth-names";
                        "Inclure les noms (prénom, nom, surnom)"
                    }
                    button type="submit" data-testid="export-youth-submit" { "Télécharger (CSV)" }
                }
            }
        },
    )
}

/// The form that asks for a record's erasure (decided by someone else).
fn erasure_request_form(nav: &Nav<'_>, record: Uuid, what: &str) -> Markup {
    html! {
        section.card.no-print data-testid="erasure-request" {
            h2 { "Demander l'effacement" }
            p.muted { (what) " Un administrateur ou le délégué à la protection des données décide ; "
                "l'effacement est alors exécuté sur le serveur et sur chaque tablette à sa prochaine synchronisation." }
            form method="post" action="/effacements" {
                input type="hidden" name="csrf" value=(nav.csrf);
                input type="hidden" name="fiche" value=(record);
                label for="motif-effacement" { "Motif"
                    select #motif-effacement name="motif" data-testid="erasure-reason" {
                        @for r in ErasureReason::ALL { option value=(r.as_str()) { (r.label()) } }
                    }
                }
                button.danger type="submit" data-testid="erasure-request-button" { "Demander l'effacement" }
            }
        }
    }
}

fn erasure_state(item: &ErasureItem) -> Markup {
    match (&item.request.decision, &item.request.executed) {
        (None, _) => html! { span.badge data-state="pending" { "en attente de décision" } },
        (Some(d), _) if !d.approved => html! { span.badge data-state="refused" { "refusée" } },
        (Some(_), Some(e)) => {
            html! { span.badge data-state="executed" { "exécutée le " (labels::server_time(e.at)) } }
        }
        (Some(_), None) => {
            html! { span.badge data-state="approved" { "approuvée, exécution à reprendre" } }
        }
    }
}

pub fn erasure_list_page(nav: &Nav<'_>, items: &[ErasureItem]) -> Markup {
    layout(
        "Effacements",
        Some(nav),
        html! {
            h1 { "Demandes d'effacement" }
            p.muted { "Une demande se fait depuis la fiche d'un jeune ou d'une visite. Elle est décidée par un "
                "administrateur ou le délégué à la protection des données, jamais par la personne qui l'a faite "
                "(quatre yeux), puis exécutée aussitôt ; son reçu dit quelles tablettes l'ont appliquée." }
            @if items.is_empty() {
                p data-testid="erasure-empty" { "Aucune demande." }
            } @else {
                div.table-wrap { table data-testid="erasure-table" {
                    thead { tr {
                        th scope="col" { "Demandée le" } th scope="col" { "Fiche" } th scope="col" { "Équipe" }
                        th scope="col" { "Motif" } th scope="col" { "Demandée par" } th scope="col" { "État" } th scope="col" { "" }
                    } }
                    tbody { @for i in items {
                        tr data-testid="erasure-row" data-id=(i.request.id) {
                            td { (labels::server_time(i.request.requested_at)) }
                            td { (i.label) }
                            td { (i.team_name) }
                            td { (i.reason.label()) }
                            td { (i.requested_by) }
                            td { (erasure_state(i)) }
                            td { a href=(format!("/effacements/{}", i.request.id)) data-testid="erasure-receipt-link" { "Reçu" } }
                        }
                    } }
                } }
            }
        },
    )
}

pub fn erasure_receipt_page(nav: &Nav<'_>, r: &ErasureReceipt, error: Option<&str>) -> Markup {
    let i = &r.item;
    layout(
        "Reçu d'effacement",
        Some(nav),
        html! {
            p.no-print { a href="/effacements" { "← Toutes les demandes" } }
            h1 { "Demande d'effacement " span.muted { (short_id(i.request.id)) } }
            @if let Some(e) = error { p.error role="alert" data-testid="erasure-error" { (e) } }
            section.card data-testid="erasure-receipt" data-state=(match (&i.request.decision, &i.request.executed) {
                (None, _) => "pending", (Some(d), _) if !d.approved => "refused", (Some(_), Some(_)) => "executed", _ => "approved",
            }) {
                dl {
                    dt { "Fiche" } dd { (i.label) }
                    dt { "Équipe" } dd { (i.team_name) }
                    dt { "Motif" } dd { (i.reason.label()) }
                    dt { "Demandée" } dd { "le " (labels::server_time(i.request.requested_at)) " par " (i.requested_by) }
                    dt { "Décision" } dd {
                        @match (&i.request.decision, &i.decided_by) {
                            (Some(d), Some(by)) => { (if d.approved { "approuvée" } else { "refusée" }) " le " (labels::server_time(d.at)) " par " (by) }
                            _ => { "en attente d'un administrateur ou du délégué à la protection des données" }
                        }
                    }
                    @if let Some(e) = &i.request.executed {
                        dt { "Exécution" } dd data-testid="erasure-executed" {
                            "le " (labels::server_time(e.at)) " sur le serveur ; " (e.also_erased) " fiche(s) liée(s) effacée(s), retiré de "
                            (e.removed_from) " visite(s) de groupe"
                        }
                    }
                }
            }
            @if r.may_decide {
                section.card data-testid="erasure-decision" {
                    h2 { "Décider" }
                    p { "Approuver efface la fiche aussitôt, sans retour possible." }
                    form method="post" action=(format!("/effacements/{}/approuver", i.request.id)) {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        button.danger type="submit" data-testid="erasure-approve" { "Approuver et effacer" }
                    }
                    form method="post" action=(format!("/effacements/{}/refuser", i.request.id)) {
                        input type="hidden" name="csrf" value=(nav.csrf);
                        button type="submit" data-testid="erasure-refuse" { "Refuser" }
                    }
                }
            }
            @if i.request.executed.is_some() {
                h2 { "Tablettes de l'équipe" }
                p.muted { "Une tablette confirme l'effacement en se synchronisant : elle supprime alors sa copie. "
                    "Une tablette révoquée ne se synchronise plus." }
                @if r.tablets.is_empty() { p { "L'équipe n'a aucune tablette." } } @else {
                    div.table-wrap { table data-testid="erasure-tablets" {
                        thead { tr { th scope="col" { "Tablette" } th scope="col" { "État" } } }
                        tbody { @for t in &r.tablets {
                            tr data-testid="erasure-tablet" data-state=(match t.state { TabletState::Confirmed { .. } => "confirmed", TabletState::Waiting { .. } => "waiting", TabletState::Revoked { .. } => "revoked" }) {
                                td { (t.label) }
                                td { @match &t.state {
                                    TabletState::Confirmed { at } => { "effacement appliqué" @if let Some(at) = at { " (synchronisée le " (labels::server_time(*at)) ")" } }
                                    TabletState::Waiting { last_sync: Some(at) } => { "pas encore : dernière synchronisation le " (labels::server_time(*at)) }
                                    TabletState::Waiting { last_sync: None } => { "pas encore : jamais synchronisée" }
                                    TabletState::Revoked { at } => { "révoquée le " (labels::server_time(*at)) }
                                } }
                            }
                        } }
                    } }
                }
            }
        },
    )
}

pub fn retention_page(nav: &Nav<'_>, view: &RetentionView) -> Markup {
    layout(
        "Conservation",
        Some(nav),
        html! {
            h1 { "Durée de conservation" }
            p data-testid="retention-rule" data-months=(view.months) {
                "Les fiches de " (nav.who.organisation.name) " sont conservées "
                strong { (view.months) " mois" } " après le dernier contact (visite, action, "
                "sortie ou premier contact), puis effacées avec tout ce qui s'y rattache. "
                "Durée par défaut : 24 mois, référentiel « accompagnement social » de la CNIL. "
                "Le serveur applique cette règle chaque jour."
            }
            p.muted { "Un nouveau contact enregistré sur la tablette repousse l'échéance d'un jeune encore suivi." }
            h2 { "Effacements prévus dans les " (crate::retention::NOTICE_DAYS) " prochains jours" }
            @if view.items.is_empty() {
                p data-testid="retention-empty" { "Aucune fiche n'arrive en fin de conservation." }
            } @else {
                div.table-wrap { table data-testid="retention-table" {
                    thead { tr {
                        th scope="col" { "Fiche" } th scope="col" { "Équipe" }
                        th scope="col" { "Dernier contact" } th scope="col" { "Effacée le" }
                        th scope="col" { "Dans" }
                    } }
                    tbody { @for item in &view.items {
                        tr data-testid="retention-row" data-id=(item.due.id) data-kind=(item.due.kind.as_str()) data-purge-on=(item.due.purge_on) {
                            td { @match crate::coord::retention::link(item.due.kind, item.due.id) {
                                Some(href) => { a href=(href) { (item.label) } }
                                None => { (item.label) }
                            } }
                            td { (item.team_name) }
                            td { (labels::day(item.due.last_contact)) }
                            td { (labels::day(item.due.purge_on)) }
                            td data-testid="retention-days" {
                                @if item.days_left < 0 { "échue : au prochain passage quotidien" }
                                @else if item.days_left == 0 { "aujourd'hui" }
                                @else { (item.days_left) " j" }
                            }
                        }
                    } }
                } }
            }
        },
    )
}

/// The journal, or (`Err`) what was wrong with the page asked for.
pub fn journal_page(nav: &Nav<'_>, list: Result<&Paged<JournalLine>, &str>) -> Markup {
    layout(
        "Journal",
        Some(nav),
        html! {
            h1 { "Journal des accès et des actions" }
            p.muted { "Connexions, consultations, actions de revue et exports des coordinateurs de " (nav.who.organisation.name) "." }
            @match list {
                Err(message) => { (filter_error(message)) }
                Ok(page) => { (journal_list(page)) }
            }
        },
    )
}

fn journal_list(page: &Paged<JournalLine>) -> Markup {
    html! {
            div.table-wrap { table data-testid="audit-table" {
                thead { tr {
                    th scope="col" { "Date" } th scope="col" { "Utilisateur" } th scope="col" { "Action" }
                    th scope="col" { "Objet" } th scope="col" { "Détail" }
                } }
                tbody { @for l in &page.items {
                    tr data-testid="audit-row" data-action=(l.entry.action) {
                        td { (labels::server_time(l.entry.at)) }
                        td { @match &l.user_name { Some(n) => { (n) } None => { "—" } } }
                        td { (action_label(&l.entry.action)) }
                        td { @if let Some(t) = l.entry.target_id { code { (short_id(t)) } } }
                        td { (l.entry.detail) }
                    }
                } }
            } }
            (pager(page, "/journal", &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_inline_svg_without_xml_declaration_nor_style() {
        let svg = qr_svg("repere://enrol?server=x&code=y").into_string();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        assert!(
            !svg.contains("style"),
            "no inline style: the CSP allows none"
        );
    }
}
