//! A scripted tablet for the browser tests: enrols, syncs, lists and answers coordinators'
//! questions and prints indicators, on an encrypted store in a given directory.
//!
//!   repere-device STORE_DIR enrol URL CODE
//!   repere-device STORE_DIR sync
//!   repere-device STORE_DIR tasks                 (JSON lines: id, contact_id, status, question, answer)
//!   repere-device STORE_DIR answer TASK_ID TEXT
//!   repere-device STORE_DIR indicators FROM TO    (JSON: the total row's figures)
//!   repere-device STORE_DIR create-youth ALIAS    (a fictional young person; prints the id)
//!   repere-device STORE_DIR has ID                (true or false)
//!   repere-device STORE_DIR set-alias ID ALIAS    (edits a young person's alias)
//!   repere-device STORE_DIR youth ID              (JSON: alias, conflicting fields)
//!   repere-device STORE_DIR create-action YOUTH_ID (a past sport action, done; prints the id)
//!   repere-device STORE_DIR set-action-status ID STATUS   (planned, done, no_show, cancelled)
//!   repere-device STORE_DIR action ID             (JSON: status, conflicting fields)

use std::path::Path;
use std::process::ExitCode;

use repere_core::indicators::{Granularity, IndicatorQuery};
use repere_core::records::{Action, ActionKind, ActionStatus};
use repere_core::sync::SyncOptions;
use repere_core::{Error, Store};
use repere_transport::HttpTransport;
use uuid::Uuid;

const KEY: [u8; 32] = [5; 32];

fn run(args: &[String]) -> Result<(), Error> {
    let usage = || {
        Error::Network(
            "usage: repere-device STORE_DIR enrol|sync|tasks|answer|indicators|create-youth|has|set-alias|youth|create-action|set-action-status|action …"
                .into(),
        )
    };
    let dir = args.first().ok_or_else(usage)?;
    std::fs::create_dir_all(dir)?;
    let mut store = Store::open(Path::new(dir).join("store.db"), &KEY)?;
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or_else(usage);
    match arg(1)? {
        "enrol" => {
            let url = arg(2)?;
            let t = HttpTransport::new(url).map_err(|e| Error::Network(e.to_string()))?;
            let e = store.enrol(&t, url, arg(3)?, "tablette de test navigateur", false)?;
            println!("{}", e.team_id);
        }
        "sync" => {
            let url = store.enrolment()?.ok_or(Error::NotEnrolled)?.server_url;
            let t = HttpTransport::new(&url).map_err(|e| Error::Network(e.to_string()))?;
            let r = store.sync(&t, &SyncOptions::default(), &mut |_| {})?;
            println!(
                "{{\"pulled\":{},\"acknowledged\":{},\"rejected\":{}}}",
                r.pulled, r.acknowledged, r.rejected
            );
        }
        "tasks" => {
            for (id, t) in store.review_tasks(false)? {
                let line = serde_json::json!({
                    "id": id, "contact_id": t.contact_id, "status": t.status,
                    "question": t.question, "answer": t.answer,
                });
                println!("{line}");
            }
        }
        "answer" => {
            let id = Uuid::parse_str(arg(2)?).map_err(|_| usage())?;
            store.set_member(Uuid::from_u128(0xb1));
            store.answer_review_task(id, arg(3)?)?;
        }
        "indicators" => {
            let date = |s: &str| s.parse().map_err(|_| usage());
            let query = IndicatorQuery {
                from: date(arg(2)?)?,
                to: date(arg(3)?)?,
                granularity: Granularity::Whole,
                teams: None,
                dimension: None,
            };
            let report = store.indicators(&query)?;
            let total = report
                .rows
                .iter()
                .find(|r| r.key.is_none())
                .map(|r| &r.figures);
            println!("{}", serde_json::to_string(&total).unwrap_or_default());
        }
        "create-youth" => {
            let team = store.enrolment()?.ok_or(Error::NotEnrolled)?.team_id;
            let mut demo = repere_core::demo::DemoData::new(
                7,
                team,
                [Uuid::from_u128(0xb1), Uuid::from_u128(0xb2)],
                chrono::Utc::now(),
            );
            let mut youth = demo.youth();
            youth.identity_level = repere_core::records::IdentityLevel::AliasOnly;
            youth.alias = Some(arg(2)?.to_string());
            store.set_member(Uuid::from_u128(0xb1));
            println!("{}", store.create(&youth)?);
        }
        "has" => {
            let id = Uuid::parse_str(arg(2)?).map_err(|_| usage())?;
            println!("{}", store.ids()?.iter().any(|(_, i)| *i == id));
        }
        "set-alias" => {
            let id = Uuid::parse_str(arg(2)?).map_err(|_| usage())?;
            let alias = arg(3)?.to_string();
            store.set_member(Uuid::from_u128(0xb1));
            store.edit::<repere_core::records::Youth>(id, |y| y.alias = Some(alias))?;
        }
        "youth" => {
            let id = Uuid::parse_str(arg(2)?).map_err(|_| usage())?;
            let conflicts: Vec<String> =
                store.conflicts(id)?.into_iter().map(|c| c.field).collect();
            let line = serde_json::json!({
                "alias": store.youth(id)?.alias, "conflicts": conflicts,
            });
            println!("{line}");
        }
        "create-action" => {
            let youth_id = Uuid::parse_str(arg(2)?).map_err(|_| usage())?;
            let team = store.enrolment()?.ok_or(Error::NotEnrolled)?.team_id;
            let action = Action {
                team_id: team,
                youth_id,
                kind: ActionKind::Sport,
                start_date: chrono::Utc::now().date_naive() - chrono::Duration::days(7),
                end_date: None,
                status: ActionStatus::Done,
                detail: None,
            };
            store.set_member(Uuid::from_u128(0xb1));
            println!("{}", store.create(&action)?);
        }
        "set-action-status" => {
            let id = Uuid::parse_str(arg(2)?).map_err(|_| usage())?;
            let status: ActionStatus =
                serde_json::from_value(serde_json::Value::String(arg(3)?.to_string()))
                    .map_err(|_| usage())?;
            store.set_member(Uuid::from_u128(0xb1));
            store.edit::<Action>(id, |a| a.status = status)?;
        }
        "action" => {
            let id = Uuid::parse_str(arg(2)?).map_err(|_| usage())?;
            let conflicts: Vec<String> =
                store.conflicts(id)?.into_iter().map(|c| c.field).collect();
            let line = serde_json::json!({
                "status": store.get::<Action>(id)?.status, "conflicts": conflicts,
            });
            println!("{line}");
        }
        _ => return Err(usage()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("repere-device: {e}");
            ExitCode::FAILURE
        }
    }
}
