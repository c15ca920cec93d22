//! Demo mode (`serve --demo`): a fictional organisation with two binômes and their
//! caseloads, seeded once into an empty database, enrolment codes to try it with, a
//! coordinator who can sign in to the coordinators' pages, convention targets, and a second
//! organisation (one binôme, its own coordinator) to see that each only sees its own.
//! Every name and record is made up by `repere_core::demo::DemoData`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use repere_core::demo::DemoData;
use repere_core::document::{Author, RecordDoc, to_json_fields};
use repere_core::records::ValidationContext;
use repere_core::{Communes, Record};
use uuid::Uuid;

use crate::admin::DEFAULT_CODE_TTL;
use crate::coord::auth::hash_password;
use crate::coord::reports::random_password;
use crate::hub::{Hub, HubError};
use crate::pushed;
use crate::secret;
use crate::storage::{DocumentWrite, EnrolmentCode, Organisation, Role, Team, TeamMember, User};

pub const ORGANISATION_NAME: &str = "Mission Locale du Nord Meusien (démo)";
pub const TEAM_NAMES: [&str; 2] = ["Binôme Stenay", "Binôme Sedan"];
/// The members of each demo team, in `TEAM_NAMES` order.
const DEMO_MEMBERS: [[&str; 2]; 2] = [["Amina", "Julien"], ["Léa", "Karim"]];
pub const COORDINATOR_NAME: &str = "Coordination (démo)";
/// What the demo coordinator types to sign in.
pub const COORDINATOR_LOGIN: &str = "coordination@demo";
pub const ADMIN_NAME: &str = "Administration (démo)";
/// What the demo organisation's administrator types to sign in.
pub const ADMIN_LOGIN: &str = "administration@demo";
pub const OTHER_ORGANISATION_NAME: &str = "Association Prévention Ardennes (démo)";
pub const OTHER_TEAM_NAME: &str = "Binôme Rethel";
pub const OTHER_COORDINATOR_NAME: &str = "Coordination Ardennes (démo)";
pub const OTHER_COORDINATOR_LOGIN: &str = "coordination@autre-demo";
pub const OTHER_YOUTH: usize = 10;
/// The convention targets of the demo organisation (docs/indicators.md).
pub const TARGET_IDENTIFIED: u32 = 250;
pub const TARGET_MOBILISED: u32 = 125;
pub const YOUTH_PER_TEAM: usize = 40;
pub const TOURS_PER_TEAM: usize = 6;
pub const CODES_PER_TEAM: usize = 2;

/// What was seeded, to tell the person who started the server.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub organisation: Organisation,
    pub coordinator: User,
    pub teams: Vec<DemoTeam>,
    /// Shown once: only its Argon2id hash is stored.
    pub coordinator_password: String,
    /// The demo organisation's administrator (same password rules).
    pub administrator: User,
    pub administrator_password: String,
    pub targets: repere_core::indicators::Targets,
    /// The second organisation, its binôme and its coordinator (same password rules).
    pub other_organisation: Organisation,
    pub other_coordinator: User,
    pub other_team: DemoTeam,
    pub other_coordinator_password: String,
}

#[derive(Debug, Clone)]
pub struct DemoTeam {
    pub team: Team,
    pub youth: usize,
    pub records: usize,
    /// Shown once: only their hashes are stored.
    pub codes: Vec<String>,
    pub codes_expire_at: DateTime<Utc>,
}

struct SeedDoc {
    id: Uuid,
    kind: repere_core::RecordKind,
    team_id: Uuid,
    bytes: Vec<u8>,
    heads: Vec<[u8; 32]>,
    fields: String,
}

struct Builder {
    now: DateTime<Utc>,
    author: Author,
    docs: Vec<SeedDoc>,
    skipped: usize,
}

impl Builder {
    /// Adds the record if it is valid (demo data should always be); returns its id.
    fn add<R: Record>(&mut self, record: &R) -> Result<Option<Uuid>, HubError> {
        let ctx = ValidationContext {
            now: self.now,
            communes: Communes::global(),
        };
        if record.validate(&ctx).is_err() {
            self.skipped += 1;
            return Ok(None);
        }
        let id = Uuid::now_v7();
        let internal = |e: repere_core::Error| HubError::Internal(format!("demo record: {e}"));
        let fields = to_json_fields(record).map_err(internal)?;
        let mut doc =
            RecordDoc::create(R::KIND, id, self.author, &fields, self.now).map_err(internal)?;
        let heads = pushed::sorted(doc.heads().iter().map(|h| h.0));
        self.docs.push(SeedDoc {
            id,
            kind: R::KIND,
            team_id: record.team_id(),
            bytes: doc.save(),
            heads,
            fields: serde_json::to_string(&fields).unwrap_or_default(),
        });
        Ok(Some(id))
    }
}

/// Seeds the demo data if the database has no organisation yet, all in one transaction.
/// Returns `None` (and changes nothing) when there is already data: restarting with
/// `--demo` never seeds twice. The coordinators get random passwords.
pub fn seed(hub: &Hub) -> Result<Option<DemoSummary>, HubError> {
    seed_with_password(hub, None)
}

/// [`seed`], with the coordinators' password given (scripted browser tests) or random.
pub fn seed_with_password(
    hub: &Hub,
    password: Option<&str>,
) -> Result<Option<DemoSummary>, HubError> {
    if !hub.is_empty()? {
        return Ok(None);
    }
    if let Some(p) = password {
        crate::coord::auth::check_new_password(p)?;
    }
    let coordinator_password = match password {
        Some(p) => p.to_string(),
        None => random_password()?,
    };
    let other_coordinator_password = match password {
        Some(p) => p.to_string(),
        None => random_password()?,
    };
    let administrator_password = match password {
        Some(p) => p.to_string(),
        None => random_password()?,
    };
    let coordinator_hash = hash_password(&coordinator_password)?;
    let administrator_hash = hash_password(&administrator_password)?;
    let other_hash = hash_password(&other_coordinator_password)?;
    let now = hub.now();
    let organisation = Organisation {
        id: Uuid::now_v7(),
        name: ORGANISATION_NAME.to_string(),
        created_at: now,
    };
    let coordinator = User {
        id: Uuid::now_v7(),
        organisation_id: organisation.id,
        name: COORDINATOR_NAME.to_string(),
        role: Role::Coordinator,
        created_at: now,
    };
    let administrator = User {
        id: Uuid::now_v7(),
        organisation_id: organisation.id,
        name: ADMIN_NAME.to_string(),
        role: Role::Admin,
        created_at: now,
    };
    let mut builder = Builder {
        now,
        author: Author {
            device_id: Uuid::nil(),
            member_id: Uuid::nil(),
        },
        docs: Vec::new(),
        skipped: 0,
    };
    let mut teams = Vec::new();
    let mut codes: Vec<EnrolmentCode> = Vec::new();
    // Each team's two members, named on its tablets (fictional first names).
    let mut roster: Vec<TeamMember> = Vec::new();
    let mut name_members = |team: Uuid, ids: [Uuid; 2], names: [&str; 2]| {
        for (id, name) in ids.into_iter().zip(names) {
            roster.push(TeamMember {
                id,
                team_id: team,
                display_name: name.to_string(),
                active: true,
                changed_at: now,
                seq: 0,
            });
        }
    };
    for (i, name) in TEAM_NAMES.iter().enumerate() {
        let team = Team {
            id: Uuid::now_v7(),
            organisation_id: organisation.id,
            name: (*name).to_string(),
            created_at: now,
        };
        let members = [Uuid::now_v7(), Uuid::now_v7()];
        name_members(team.id, members, DEMO_MEMBERS[i]);
        builder.author.member_id = members[0];
        let first = builder.docs.len();
        let mut data = DemoData::new(1000 + i as u64, team.id, members, now);
        for _ in 0..TOURS_PER_TEAM {
            builder.add(&data.tour())?;
        }
        let mut youth = 0;
        for n in 0..YOUTH_PER_TEAM {
            let Some(youth_id) = builder.add(&data.youth())? else {
                continue;
            };
            youth += 1;
            for _ in 0..1 + n % 3 {
                builder.add(&data.contact(&[youth_id]))?;
            }
            if n % 3 == 0 {
                builder.add(&data.action(youth_id))?;
            }
            if n % 5 == 0 {
                builder.add(&data.outcome(youth_id))?;
            }
        }
        let mut team_codes = Vec::new();
        for _ in 0..CODES_PER_TEAM {
            let code = secret::new_code()?;
            let canonical = secret::normalize_code(&code)
                .ok_or_else(|| HubError::Internal("generated code does not normalize".into()))?;
            codes.push(EnrolmentCode {
                code_hash: secret::code_hash(&canonical),
                team_id: team.id,
                created_at: now,
                expires_at: now + DEFAULT_CODE_TTL,
                used_at: None,
                device_id: None,
            });
            team_codes.push(code);
        }
        teams.push(DemoTeam {
            team,
            youth,
            records: builder.docs.len() - first,
            codes: team_codes,
            codes_expire_at: now + DEFAULT_CODE_TTL,
        });
    }
    // The second organisation: one binôme, a smaller caseload.
    let other_organisation = Organisation {
        id: Uuid::now_v7(),
        name: OTHER_ORGANISATION_NAME.to_string(),
        created_at: now,
    };
    let other_coordinator = User {
        id: Uuid::now_v7(),
        organisation_id: other_organisation.id,
        name: OTHER_COORDINATOR_NAME.to_string(),
        role: Role::Coordinator,
        created_at: now,
    };
    let other_team = {
        let team = Team {
            id: Uuid::now_v7(),
            organisation_id: other_organisation.id,
            name: OTHER_TEAM_NAME.to_string(),
            created_at: now,
        };
        let members = [Uuid::now_v7(), Uuid::now_v7()];
        name_members(team.id, members, ["Sophie", "Thomas"]);
        builder.author.member_id = members[0];
        let first = builder.docs.len();
        let mut data = DemoData::new(2000, team.id, members, now);
        let mut youth = 0;
        for n in 0..OTHER_YOUTH {
            let Some(youth_id) = builder.add(&data.youth())? else {
                continue;
            };
            youth += 1;
            builder.add(&data.contact(&[youth_id]))?;
            if n % 2 == 0 {
                builder.add(&data.action(youth_id))?;
            }
        }
        DemoTeam {
            team,
            youth,
            records: builder.docs.len() - first,
            codes: Vec::new(),
            codes_expire_at: now + DEFAULT_CODE_TTL,
        }
    };
    let today = now.date_naive();
    let targets = repere_core::indicators::Targets {
        identified: Some(TARGET_IDENTIFIED),
        mobilised: Some(TARGET_MOBILISED),
        from: NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap_or(today),
        to: NaiveDate::from_ymd_opt(today.year(), 12, 31).unwrap_or(today),
    };

    if builder.skipped > 0 {
        tracing::warn!(
            skipped = builder.skipped,
            "demo records failing validation were left out"
        );
    }

    let seeded = hub.storage().write_with(|tx| -> Result<bool, HubError> {
        // Checked again inside the transaction: another process may have seeded meanwhile.
        if !tx.organisations()?.is_empty() {
            return Ok(false);
        }
        tx.insert_organisation(&organisation)?;
        tx.insert_user(&coordinator)?;
        tx.set_login(coordinator.id, Some(COORDINATOR_LOGIN))?;
        tx.set_password_hash(coordinator.id, &coordinator_hash, now)?;
        tx.insert_user(&administrator)?;
        tx.set_login(administrator.id, Some(ADMIN_LOGIN))?;
        tx.set_password_hash(administrator.id, &administrator_hash, now)?;
        tx.set_targets(organisation.id, &targets, now)?;
        for t in &teams {
            tx.insert_team(&t.team)?;
        }
        tx.insert_organisation(&other_organisation)?;
        tx.insert_user(&other_coordinator)?;
        tx.set_login(other_coordinator.id, Some(OTHER_COORDINATOR_LOGIN))?;
        tx.set_password_hash(other_coordinator.id, &other_hash, now)?;
        tx.insert_team(&other_team.team)?;
        for member in &roster {
            tx.put_team_member(member)?;
        }
        for doc in &builder.docs {
            tx.put_document(DocumentWrite {
                id: doc.id,
                kind: doc.kind,
                team_id: doc.team_id,
                doc: &doc.bytes,
                heads: &doc.heads,
                fields: &doc.fields,
                device_id: None,
                received_at: now,
                generation: 0,
            })?;
        }
        for code in &codes {
            tx.insert_enrolment_code(code)?;
        }
        Ok(true)
    })?;
    if !seeded {
        return Ok(None);
    }
    tracing::info!(
        organisation = %organisation.id,
        teams = teams.len(),
        records = builder.docs.len(),
        "demo data seeded"
    );
    Ok(Some(DemoSummary {
        organisation,
        coordinator,
        teams,
        coordinator_password,
        administrator,
        administrator_password,
        targets,
        other_organisation,
        other_coordinator,
        other_team,
        other_coordinator_password,
    }))
}

/// The text printed on stdout after seeding: what the codes are and how to use them.
pub fn instructions(summary: &DemoSummary, server_url: &str, data_dir: &str) -> String {
    let mut out = String::new();
    let hours = DEFAULT_CODE_TTL.num_hours();
    out.push_str("Repère — données de démonstration créées / demo data created\n");
    out.push_str(&format!(
        "Organisation : {} ({})\n",
        summary.organisation.name, summary.organisation.id
    ));
    for t in &summary.teams {
        out.push_str(&format!(
            "\n  Équipe / team « {} » ({})\n    {} jeunes fictifs, {} fiches / {} fictional young people, {} records\n",
            t.team.name, t.team.id, t.youth, t.records, t.youth, t.records
        ));
        out.push_str("    Codes d'enrôlement / enrolment codes:\n");
        for code in &t.codes {
            out.push_str(&format!("      {code}\n"));
        }
    }
    out.push_str(&format!(
        "\nFR : dans Repère sur la tablette, à l'écran de connexion au serveur, saisir l'adresse\n\
         \x20    {server_url} et l'un des codes de l'équipe. Chaque code ne sert qu'une fois et\n\
         \x20    expire dans {} jours ; la tablette reçoit alors les fiches de son équipe.\n\
         EN : in Repère on the tablet, on the connect-to-server screen, enter the address\n\
         \x20    {server_url} and one of the team's codes. Each code works once and expires in\n\
         \x20    {} days; the tablet then receives its team's records.\n\
         La tablette doit joindre cette adresse (réseau local : --listen 0.0.0.0:8080).\n\
         The tablet must reach this address (local network: --listen 0.0.0.0:8080).\n\
         Plus de codes / more codes:\n\
         \x20    repere-server admin --data-dir {data_dir} issue-code --team <team id>\n",
        hours / 24,
        hours / 24,
    ));
    out.push_str(&format!(
        "\nPages de coordination / coordinators' pages: {server_url}/connexion\n\
         \x20   « {} » : identifiant / login {COORDINATOR_LOGIN}   mot de passe / password {}\n\
         \x20   (objectifs / targets: {} repérés, {} mobilisés, du {} au {})\n\
         \x20   « {} » (administrateur / administrator, {server_url}/administration) :\n\
         \x20   identifiant / login {ADMIN_LOGIN}   mot de passe / password {}\n\
         \x20   Autre organisation / second organisation « {} » (binôme « {} », {} jeunes) :\n\
         \x20   identifiant / login {OTHER_COORDINATOR_LOGIN}   mot de passe / password {}\n\
         \x20   Les mots de passe ne sont affichés qu'une fois / passwords are shown only now:\n\
         \x20   repere-server admin --data-dir {data_dir} set-password --user <login>\n",
        summary.organisation.name,
        summary.coordinator_password,
        summary.targets.identified.unwrap_or(0),
        summary.targets.mobilised.unwrap_or(0),
        summary.targets.from,
        summary.targets.to,
        summary.administrator.name,
        summary.administrator_password,
        summary.other_organisation.name,
        summary.other_team.team.name,
        summary.other_team.youth,
        summary.other_coordinator_password,
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use repere_core::sync::protocol::{EnrolRequest, SyncRequest};

    use super::*;
    use crate::storage::sqlite::SqliteStorage;

    #[test]
    fn seeds_once_with_valid_records_and_working_codes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hub = Hub::new(Arc::new(
            SqliteStorage::open_dir(dir.path(), None).expect("open"),
        ));
        let summary = seed(&hub)
            .expect("seed")
            .expect("seeded on an empty database");
        assert_eq!(summary.teams.len(), 2);
        for t in &summary.teams {
            assert_eq!(t.youth, YOUTH_PER_TEAM, "every demo young person is valid");
            assert!(t.records > YOUTH_PER_TEAM * 2);
            assert_eq!(t.codes.len(), CODES_PER_TEAM);
        }
        assert!(
            seed(&hub).expect("second run").is_none(),
            "never seeds twice"
        );
        let overview = hub.overview().expect("overview");
        assert_eq!(overview.len(), 2, "the demo organisation and a second one");
        assert_eq!(overview[0].users, 2, "a coordinator and an administrator");
        assert_eq!(overview[1].users, 1);
        assert_eq!(overview[1].teams.len(), 1);
        let text = instructions(&summary, "http://127.0.0.1:8080", "./repere-data");
        assert!(text.contains(&summary.teams[0].codes[0]));
        assert!(text.contains(COORDINATOR_LOGIN));
        assert!(text.contains(&summary.coordinator_password));
        assert!(text.contains(&summary.other_coordinator_password));
        assert!(text.contains(ADMIN_LOGIN));
        assert!(text.contains(&summary.administrator_password));
        assert_eq!(
            hub.targets(summary.organisation.id).expect("targets"),
            Some(summary.targets.clone())
        );

        // The printed logins and passwords sign in, each to their own organisation.
        let ws = crate::coord::Workspace::new(Arc::new(Hub::new(Arc::new(
            SqliteStorage::open_dir(dir.path(), None).expect("open"),
        ))));
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let signed = ws
            .login(ip, COORDINATOR_LOGIN, &summary.coordinator_password)
            .expect("demo coordinator signs in");
        assert_eq!(signed.coordinator.teams.len(), 2);
        let admin = ws
            .login(ip, ADMIN_LOGIN, &summary.administrator_password)
            .expect("demo administrator signs in");
        assert_eq!(admin.coordinator.user.role, Role::Admin);
        assert_eq!(admin.coordinator.organisation.id, summary.organisation.id);
        let other = ws
            .login(
                ip,
                OTHER_COORDINATOR_LOGIN,
                &summary.other_coordinator_password,
            )
            .expect("second coordinator signs in");
        assert_eq!(
            other.coordinator.organisation.id,
            summary.other_organisation.id
        );
        assert_eq!(other.coordinator.teams.len(), 1);

        // A printed code enrols a tablet, which then pulls exactly its team's records.
        let team = &summary.teams[1];
        let enrolled = hub
            .enrol(EnrolRequest {
                code: team.codes[0].clone(),
                device_label: "démo".into(),
                writer: None,
                previous_token: None,
            })
            .expect("demo code enrols");
        assert_eq!(enrolled.team_id, team.team.id);
        let device = hub.authenticate(&enrolled.token).expect("token");
        let mut cursor = 0;
        let mut pulled = 0;
        loop {
            let resp = hub
                .sync(
                    &device,
                    SyncRequest {
                        cursor,
                        pushes: vec![],
                        pull_limit: 100,
                        team: Default::default(),
                        report: Default::default(),
                        access_requests: Vec::new(),
                    },
                )
                .expect("pull");
            pulled += resp.docs.len();
            cursor = resp.cursor;
            if !resp.more {
                break;
            }
        }
        assert_eq!(pulled, team.records);
    }
}
