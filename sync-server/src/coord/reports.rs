//! Funder figures over the organisation's records (core's `indicators`, the same code as
//! the tablets), targets, and the CSV exports: indicators, and one row per young person
//! under a stable pseudonym unless names are explicitly asked for. The pseudonymised export
//! is made not to re-identify: no profile flag unless asked for, dates to the month, small
//! communes generalised to their intercommunality (docs/DATA-PROTECTION.md).

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use hmac::{Hmac, KeyInit, Mac};
use repere_core::Communes;
use repere_core::indicators::{
    self, Dimension, Figures, Granularity, IndicatorQuery, IndicatorReport, IndicatorRow,
    QueryError, Reached, TargetProgress, Targets, age_band_at,
};
use repere_core::records::Youth;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use super::audit::{self, Audit};
use super::view::decode;
use super::{Coordinator, Workspace, accounts, csv};
use crate::hub::{Hub, HubError};
use crate::secret;
use crate::storage::{Organisation, Role, YouthSummary};

/// The name of the pseudonym key in `server_secrets` (only on a server without a key).
pub const PSEUDONYM_KEY: &str = "pseudonym_key";

/// Young people read per page by an export.
const EXPORT_PAGE: usize = 1000;

/// The fewest young people of a pseudonymised export that a commune, or an intercommunality
/// standing for small communes, may hold.
pub const MIN_CELL: usize = 5;

/// The dashboard's and the indicators export's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub dimension: Option<Dimension>,
    /// One team of the organisation, or all of them.
    pub team: Option<Uuid>,
}

impl DashboardQuery {
    /// Without personal data: for the audit log.
    pub fn describe(&self) -> String {
        format!(
            "du {} au {}, {}, dimension {}, équipe {}",
            self.from,
            self.to,
            granularity_id(self.granularity),
            self.dimension.map_or("aucune", Dimension::as_str),
            self.team
                .map_or_else(|| "toutes".to_string(), |t| t.to_string())
        )
    }
}

pub fn granularity_id(g: Granularity) -> &'static str {
    match g {
        Granularity::Month => "month",
        Granularity::Quarter => "quarter",
        Granularity::Whole => "whole",
    }
}

pub fn parse_granularity(s: &str) -> Option<Granularity> {
    match s {
        "month" => Some(Granularity::Month),
        "quarter" => Some(Granularity::Quarter),
        "whole" => Some(Granularity::Whole),
        _ => None,
    }
}

pub const DIMENSIONS: [Dimension; 7] = [
    Dimension::Team,
    Dimension::Commune,
    Dimension::Epci,
    Dimension::ReferralSource,
    Dimension::AgeBand,
    Dimension::Sex,
    Dimension::ProfileFlag,
];

pub fn parse_dimension(s: &str) -> Option<Dimension> {
    DIMENSIONS.into_iter().find(|d| d.as_str() == s)
}

/// What the dashboard shows.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub query: DashboardQuery,
    /// Per period: the total row, then the dimension's rows (team rows labelled by name).
    pub report: IndicatorReport,
    /// The whole range's totals.
    pub totals: Figures,
    /// The whole range's dimension rows (empty without a dimension).
    pub by_dimension: Vec<IndicatorRow>,
    /// The organisation's targets and its progress today (all its teams).
    pub targets: Option<Targets>,
    pub progress: Option<TargetProgress>,
}

/// One organisation's line on the consortium page.
#[derive(Debug, Clone)]
pub struct OrganisationFigures {
    pub organisation: Organisation,
    pub teams: usize,
    /// Its dashboard over the whole period, without a dimension.
    pub dashboard: Dashboard,
}

fn query_error(e: QueryError) -> HubError {
    HubError::BadInput(match e {
        QueryError::EndBeforeStart { .. } => "La date de fin précède la date de début.".into(),
        QueryError::TooManyPeriods { max } => {
            format!("La période demandée compte plus de {max} mois ou trimestres.")
        }
    })
}

/// The serde id of an enum value ("town_hall", "16-17"…).
pub fn serde_id<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// "J-" and 16 hex digits (64 bits) of HMAC-SHA256(key, id): stable for a server,
/// meaningless without its key, and too many to enumerate or to collide by chance.
pub fn pseudonym(key: &[u8], id: Uuid) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return "J-????????????????".to_string();
    };
    mac.update(id.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("J-{hex}")
}

/// Columns of the young people's export; `profile_flags` only when asked for, and the
/// named export adds `NAMED_COLUMNS` after `pseudonym`.
pub const YOUTH_COLUMNS: [&str; 16] = [
    "pseudonym",
    "team",
    "status",
    "age_band",
    "sex",
    "commune",
    "commune_name",
    "epci",
    "epci_name",
    "referral_source",
    "profile_flags",
    "situation_invisible",
    "first_contact_date",
    "contacts",
    "actions",
    "outcomes",
];
pub const NAMED_COLUMNS: [&str; 4] = ["id", "first_name", "last_name", "alias"];

/// What a young people's export holds, and of which teams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct YouthExport {
    /// One team of the organisation, or all of them.
    pub team: Option<Uuid>,
    /// Record ids and names, with full dates and communes (a second factor required).
    pub names: bool,
    /// The profile flags (GDPR art. 9 and 10): only when the coordinator asks for them.
    pub profile_flags: bool,
}

/// Where a row of the pseudonymised export says the young person lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Commune,
    Epci,
    Nowhere,
}

/// Each row's place, from its commune and the commune's intercommunality: the commune when
/// at least `MIN_CELL` rows share it; else the intercommunality when at least `MIN_CELL` rows
/// so generalised share it — not all of its rows, or its total minus its shown communes
/// would point at the few left; else neither.
fn places(rows: &[(&str, Option<&str>)]) -> Vec<Place> {
    let mut communes: HashMap<&str, usize> = HashMap::new();
    for (commune, _) in rows {
        *communes.entry(commune).or_default() += 1;
    }
    let small = |commune: &str| communes.get(commune).is_none_or(|n| *n < MIN_CELL);
    let mut epcis: HashMap<&str, usize> = HashMap::new();
    for (_, epci) in rows.iter().filter(|(c, _)| small(c)) {
        if let Some(epci) = epci {
            *epcis.entry(epci).or_default() += 1;
        }
    }
    rows.iter()
        .map(|(commune, epci)| {
            if !small(commune) {
                Place::Commune
            } else if epci.is_some_and(|e| epcis.get(e).is_some_and(|n| *n >= MIN_CELL)) {
                Place::Epci
            } else {
                Place::Nowhere
            }
        })
        .collect()
}

/// A finished export.
#[derive(Debug, Clone)]
pub struct Export {
    pub csv: String,
    pub rows: usize,
}

impl Hub {
    /// Sets an organisation's targets (replacing earlier ones).
    pub fn set_targets(&self, organisation_id: Uuid, targets: &Targets) -> Result<(), HubError> {
        if targets.to < targets.from {
            return Err(HubError::BadInput(
                "the targets' window ends before it starts".into(),
            ));
        }
        let now = self.now();
        self.storage()
            .write_with(|tx| Ok::<_, HubError>(tx.set_targets(organisation_id, targets, now)?))?;
        tracing::info!(organisation = %organisation_id, "targets set");
        Ok(())
    }

    pub fn targets(&self, organisation_id: Uuid) -> Result<Option<Targets>, HubError> {
        self.storage()
            .read_with(|tx| Ok::<_, HubError>(tx.targets(organisation_id)?))
    }
}

impl Workspace {
    /// The dashboard's first view: the targets' window up to today (else since the
    /// 1st of January of last year), by month.
    pub fn default_dashboard_query(&self, who: &Coordinator) -> Result<DashboardQuery, HubError> {
        let today = self.today();
        let targets = self.hub().targets(who.organisation.id)?;
        let from = targets
            .as_ref()
            .map(|t| t.from)
            .filter(|f| *f <= today)
            .or_else(|| NaiveDate::from_ymd_opt(today.year() - 1, 1, 1))
            .unwrap_or(today);
        Ok(DashboardQuery {
            from,
            to: today,
            granularity: Granularity::Month,
            dimension: None,
            team: None,
        })
    }

    /// The joined facts of the organisation's young people ever visited, from their
    /// summaries (one derived row each, kept up to date by `refresh_view`). Every visit
    /// naming a young person counts, whichever team made it: one transferred in from
    /// another organisation keeps the visits their old team made.
    pub fn reached(&self, who: &Coordinator) -> Result<Vec<Reached>, HubError> {
        self.refresh_view()?;
        let teams = who.team_ids();
        let facts = self
            .hub()
            .storage()
            .read_with(|tx| Ok::<_, HubError>(tx.reached_facts(&teams)?))?;
        Ok(facts
            .iter()
            .filter_map(|f| match serde_json::from_str(f) {
                Ok(reached) => Some(reached),
                Err(_) => {
                    tracing::warn!("a young person's derived facts cannot be read");
                    None
                }
            })
            .collect())
    }

    fn indicator_query(
        &self,
        who: &Coordinator,
        q: &DashboardQuery,
        g: Granularity,
        dimension: Option<Dimension>,
    ) -> IndicatorQuery {
        IndicatorQuery {
            from: q.from,
            to: q.to,
            granularity: g,
            teams: Some(who.scope(q.team).into_iter().collect()),
            dimension,
        }
    }

    /// Team rows are labelled with the team's name rather than its id.
    fn label_teams(who: &Coordinator, report: &mut IndicatorReport) {
        if report.query.dimension != Some(Dimension::Team) {
            return;
        }
        for row in &mut report.rows {
            if let Some(team) = row
                .key
                .as_deref()
                .and_then(|k| Uuid::parse_str(k).ok())
                .and_then(|id| who.team(id))
            {
                row.label = team.name.clone();
            }
        }
    }

    pub fn dashboard(&self, who: &Coordinator, q: &DashboardQuery) -> Result<Dashboard, HubError> {
        // The facts are read once for the three countings below.
        let reached = self.reached(who)?;
        let mut report = indicators::count(
            &reached,
            &self.indicator_query(who, q, q.granularity, q.dimension),
        )
        .map_err(query_error)?;
        Self::label_teams(who, &mut report);
        let mut whole = indicators::count(
            &reached,
            &self.indicator_query(who, q, Granularity::Whole, q.dimension),
        )
        .map_err(query_error)?;
        Self::label_teams(who, &mut whole);
        let totals = whole
            .rows
            .iter()
            .find(|r| r.key.is_none())
            .map(|r| r.figures)
            .unwrap_or_default();
        let by_dimension = whole.rows.into_iter().filter(|r| r.key.is_some()).collect();
        let targets = self.hub().targets(who.organisation.id)?;
        let progress = targets
            .as_ref()
            .map(|t| indicators::progress_of(&reached, Some(&who.team_set()), t, self.today()));
        Ok(Dashboard {
            query: q.clone(),
            report,
            totals,
            by_dimension,
            targets,
            progress,
        })
    }

    /// The figures of the consortium page (`/tableau-de-bord/consortium`) over `from..=to`:
    /// the dashboard's totals and target progress of each organisation the user may see
    /// figures of — every organisation on this server for an administrator (the server's
    /// organisations are the consortium: the data model has no other), their own for a
    /// coordinator. Each is the organisation's own dashboard, counted with its teams as
    /// scope, so the figures are the ones its coordinators see; no record is shown.
    pub fn consortium(
        &self,
        who: &Coordinator,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<OrganisationFigures>, HubError> {
        let scopes = if who.user.role == Role::Admin {
            self.hub()
                .storage()
                .read_with(|tx| -> Result<_, HubError> {
                    let teams = tx.teams()?;
                    Ok(tx
                        .organisations()?
                        .into_iter()
                        .map(|organisation| Coordinator {
                            user: who.user.clone(),
                            teams: teams
                                .iter()
                                .filter(|t| t.organisation_id == organisation.id)
                                .cloned()
                                .collect(),
                            organisation,
                            second_factor: who.second_factor,
                        })
                        .collect::<Vec<_>>())
                })?
        } else {
            vec![who.clone()]
        };
        let query = DashboardQuery {
            from,
            to,
            granularity: Granularity::Whole,
            dimension: None,
            team: None,
        };
        scopes
            .into_iter()
            .map(|scope| {
                let dashboard = self.dashboard(&scope, &query)?;
                Ok(OrganisationFigures {
                    teams: scope.teams.len(),
                    organisation: scope.organisation,
                    dashboard,
                })
            })
            .collect()
    }

    /// The indicators as CSV (core's `to_csv`, formula cells neutralised), audited.
    pub fn indicators_csv(
        &self,
        who: &Coordinator,
        q: &DashboardQuery,
    ) -> Result<Export, HubError> {
        let reached = self.reached(who)?;
        let mut report = indicators::count(
            &reached,
            &self.indicator_query(who, q, q.granularity, q.dimension),
        )
        .map_err(query_error)?;
        Self::label_teams(who, &mut report);
        let csv = csv::neutralise_document(&indicators::to_csv(&report));
        let rows = report.rows.len();
        self.record(Audit::by(
            who,
            audit::EXPORT_INDICATORS,
            None,
            format!("{} ; {rows} lignes", q.describe()),
        ))?;
        Ok(Export { csv, rows })
    }

    /// The key of the pseudonyms: derived from the server key, so kept apart from the data;
    /// only a server without a key (`--demo`, tests) makes one on first use and keeps it in
    /// the database, where it is no safer than the data.
    fn pseudonym_key(&self) -> Result<Vec<u8>, HubError> {
        if let Some(key) = self.hub().pseudonym_key() {
            return Ok(key.to_vec());
        }
        if let Some(key) = self
            .hub()
            .storage()
            .read_with(|tx| Ok::<_, HubError>(tx.server_secret(PSEUDONYM_KEY)?))?
        {
            return Ok(key);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| HubError::Internal(format!("random source failed: {e}")))?;
        let now = self.now();
        self.hub().storage().write_with(|tx| {
            Ok::<_, HubError>(tx.insert_server_secret(PSEUDONYM_KEY, &key, now)?)
        })
    }

    /// A young person's pseudonym on this server.
    pub fn pseudonym_of(&self, youth_id: Uuid) -> Result<String, HubError> {
        Ok(pseudonym(&self.pseudonym_key()?, youth_id))
    }

    /// One row per young person of the organisation (or of one of its teams). Names appear
    /// only when `export.names` (the coordinator ticked the box), and only for a session
    /// confirmed with a second factor (`Unauthorized` otherwise); profile flags only when
    /// `export.profile_flags`; every case is audited. Without names, the first contact is
    /// given by month and small communes are generalised (`places`). Cells a spreadsheet
    /// would run as formulas are neutralised (`csv`).
    pub fn youth_csv(&self, who: &Coordinator, export: &YouthExport) -> Result<Export, HubError> {
        if export.names && !accounts::may_export_names(who) {
            self.record(Audit::by(
                who,
                audit::EXPORT_YOUTH_NAMED_REFUSED,
                None,
                "double authentification non activée",
            ))?;
            tracing::warn!(user = %who.user.id, "export with names refused: no second factor");
            return Err(HubError::Unauthorized);
        }
        self.refresh_view()?;
        let key = self.pseudonym_key()?;
        let teams = who.scope(export.team);
        // Each young person's first contact and commune, before the rows are written: the
        // small cells are known only once every commune is. Read page by page, one
        // derived row per young person.
        struct Facts {
            id: Uuid,
            team_id: Uuid,
            youth: Youth,
            summary: YouthSummary,
            entry: NaiveDate,
            commune: String,
        }
        let mut facts: Vec<Facts> = Vec::new();
        let mut after = None;
        loop {
            let rows = self.hub().storage().read_with(|tx| {
                Ok::<_, HubError>(tx.youth_rows_after(&teams, after, EXPORT_PAGE)?)
            })?;
            let Some((last, _)) = rows.last() else {
                break;
            };
            after = Some(last.youth_id);
            for (summary, view) in rows {
                let Some(youth) = decode::<Youth>(&view) else {
                    continue;
                };
                let first: Option<(NaiveDate, String)> = summary
                    .reached
                    .as_deref()
                    .and_then(|r| serde_json::from_str::<Reached>(r).ok())
                    .map(|r| (r.first_visit_day, r.first_visit_commune));
                let entry = first.as_ref().map_or(youth.first_contact_date, |f| {
                    f.0.min(youth.first_contact_date)
                });
                let commune = youth
                    .home_commune
                    .clone()
                    .filter(|h| !h.trim().is_empty())
                    .or_else(|| first.map(|f| f.1))
                    .unwrap_or_default();
                facts.push(Facts {
                    id: view.id,
                    team_id: view.team_id,
                    youth,
                    summary,
                    entry,
                    commune,
                });
            }
        }
        let communes = Communes::global();
        let epci_of = |commune: &str| communes.get(commune).and_then(|f| f.epci_code);
        let places = if export.names {
            vec![Place::Commune; facts.len()]
        } else {
            let cells: Vec<(&str, Option<&str>)> = facts
                .iter()
                .map(|f| (f.commune.as_str(), epci_of(&f.commune)))
                .collect();
            places(&cells)
        };
        let mut header: Vec<String> = Vec::new();
        for c in YOUTH_COLUMNS {
            if c == "profile_flags" && !export.profile_flags {
                continue;
            }
            header.push(c.to_string());
            if c == "pseudonym" && export.names {
                header.extend(NAMED_COLUMNS.iter().map(|n| n.to_string()));
            }
        }
        let mut out = String::new();
        csv::push_line(&mut out, &header);
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        for (f, place) in facts.iter().zip(places) {
            let (y, c) = (&f.youth, &f.summary);
            let pseudo = pseudonym(&key, f.id);
            let mut fields = vec![pseudo.clone()];
            if export.names {
                fields.push(f.id.to_string());
                fields.push(y.first_name.clone().unwrap_or_default());
                fields.push(y.last_name.clone().unwrap_or_default());
                fields.push(y.alias.clone().unwrap_or_default());
            }
            let (commune, epci) = match place {
                Place::Commune => (f.commune.as_str(), epci_of(&f.commune)),
                Place::Epci => ("", epci_of(&f.commune)),
                Place::Nowhere => ("", None),
            };
            let epci = epci.unwrap_or_default();
            fields.extend([
                who.team_name(f.team_id),
                serde_id(&y.status),
                age_band_at(y, f.entry).map_or_else(|| "unknown".to_string(), |b| serde_id(&b)),
                y.sex
                    .map_or_else(|| "unknown".to_string(), |s| serde_id(&s)),
                commune.to_string(),
                communes
                    .get(commune)
                    .map(|f| f.name.to_string())
                    .unwrap_or_default(),
                epci.to_string(),
                communes
                    .epci_name(epci)
                    .map(str::to_string)
                    .unwrap_or_default(),
                serde_id(&y.referral_source),
            ]);
            if export.profile_flags {
                let flags: BTreeSet<String> = y.profile_flags.iter().map(serde_id).collect();
                fields.push(flags.into_iter().collect::<Vec<_>>().join(";"));
            }
            fields.extend([
                if y.is_invisible() { "yes" } else { "no" }.to_string(),
                if export.names {
                    f.entry.to_string()
                } else {
                    f.entry.format("%Y-%m").to_string()
                },
                c.visits.to_string(),
                c.actions.to_string(),
                c.outcomes.to_string(),
            ]);
            rows.push((pseudo, fields));
        }
        // Ordered by pseudonym: the order tells nothing about when records were made.
        rows.sort();
        for (_, fields) in &rows {
            csv::push_line(&mut out, fields);
        }
        let action = if export.names {
            audit::EXPORT_YOUTH_NAMED
        } else {
            audit::EXPORT_YOUTH_PSEUDONYMISED
        };
        let scope = export
            .team
            .map_or_else(|| "toutes".to_string(), |t| t.to_string());
        let flags = if export.profile_flags {
            " ; avec indicateurs de profil (données sensibles)"
        } else {
            ""
        };
        self.record(Audit::by(
            who,
            action,
            None,
            format!("équipe {scope} ; {} lignes{flags}", rows.len()),
        ))?;
        Ok(Export {
            csv: out,
            rows: rows.len(),
        })
    }
}

/// A random 32-byte value, base64url (used for the demo's passwords).
pub fn random_password() -> Result<String, HubError> {
    let token = secret::new_token()?;
    Ok(token.chars().take(20).collect())
}
