//! The device's side of sync against scripted server answers (no sockets): documents
//! this version cannot read, a restored server, an older server, a push refused while the
//! record was being edited.

mod common;

use std::collections::HashSet;
use std::sync::Mutex;

use common::open_store;
use repere_core::records::Contact;
use repere_core::sync::protocol::{
    self, Ack, ENROL_PATH, EnrolResponse, ErrorBody, ErrorCode, PulledDoc, RejectCode, Rejection,
    SyncRequest, SyncResponse, WireKind,
};
use repere_core::sync::{SyncOptions, Transport, TransportError};
use repere_core::{Error, RecordKind, Store, SyncState};
use uuid::Uuid;

type Answer = Box<dyn Fn(u8, &SyncRequest) -> Result<Vec<u8>, TransportError> + Send + Sync>;

/// Answers each sync request with the next scripted answer (the last one repeats), and
/// remembers the versions and requests it saw.
struct Scripted {
    answers: Mutex<Vec<Answer>>,
    seen: Mutex<Vec<(u8, SyncRequest)>>,
    enrolled: Mutex<usize>,
    team: Uuid,
}

impl Scripted {
    fn new(team: Uuid, answers: Vec<Answer>) -> Scripted {
        Scripted {
            answers: Mutex::new(answers),
            seen: Mutex::new(Vec::new()),
            enrolled: Mutex::new(0),
            team,
        }
    }

    fn enrols(&self) -> usize {
        *self.enrolled.lock().expect("lock")
    }
}

impl Transport for Scripted {
    fn post(
        &self,
        path: &str,
        _token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        if path == ENROL_PATH {
            *self.enrolled.lock().expect("lock") += 1;
            return Ok(protocol::encode(&EnrolResponse {
                device_id: Uuid::now_v7(),
                team_id: self.team,
                organisation_id: Uuid::from_u128(9),
                token: "jeton".into(),
            }));
        }
        let version = protocol::version_of(&body).expect("a message");
        let request: SyncRequest = protocol::decode_request(&body).expect("a request");
        self.seen
            .lock()
            .expect("lock")
            .push((version, request.clone()));
        let mut answers = self.answers.lock().expect("lock");
        let answer = if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers.pop().expect("an answer")
        };
        let out = answer(version, &request);
        if answers.is_empty() {
            answers.push(answer);
        }
        out
    }
}

fn answer(
    f: impl Fn(u8, &SyncRequest) -> Result<Vec<u8>, TransportError> + Send + Sync + 'static,
) -> Answer {
    Box::new(f)
}

/// Acknowledges every push as fully merged and pulls nothing.
fn ack_all(epoch: u64) -> Answer {
    answer(move |version, req| {
        Ok(protocol::encode_response(
            version,
            &SyncResponse {
                acks: Vec::new(),
                rejections: Vec::new(),
                docs: Vec::new(),
                erased: Vec::new(),
                cursor: req.cursor.max(1),
                more: false,
                epoch,
                team: Default::default(),
                moved: Vec::new(),
                access: Vec::new(),
                lent: Vec::new(),
            },
        ))
    })
}

fn options() -> SyncOptions {
    SyncOptions {
        max_attempts: 2,
        initial_backoff: std::time::Duration::from_millis(1),
        ..SyncOptions::default()
    }
}

fn enrolled(store: &mut Store, transport: &Scripted) {
    store
        .enrol(transport, "https://sync.test", "CODE", "tablette", false)
        .expect("enrols");
}

fn pulled(store: &Store, id: Uuid) -> PulledDoc {
    let (kind, doc) = store.export_document(id).expect("export");
    PulledDoc {
        id,
        kind: kind.into(),
        doc,
        heads: store
            .heads(id)
            .expect("heads")
            .iter()
            .map(|h| h.0)
            .collect(),
        fields: String::new(),
    }
}

#[test]
fn documents_this_version_cannot_read_are_set_aside_and_the_rest_goes_on() {
    let mut elsewhere = open_store(1);
    let youth = elsewhere.demo.youth();
    let good = elsewhere.store.create(&youth).expect("youth");
    let good_doc = pulled(&elsewhere.store, good);
    let newer = PulledDoc {
        id: Uuid::now_v7(),
        kind: WireKind(99),
        doc: good_doc.doc.clone(),
        heads: good_doc.heads.clone(),
        fields: String::new(),
    };
    let damaged = PulledDoc {
        id: Uuid::now_v7(),
        kind: RecordKind::Contact.into(),
        doc: b"pas un document".to_vec(),
        heads: vec![[1; 32]],
        fields: String::new(),
    };
    let docs = vec![newer.clone(), damaged.clone(), good_doc];
    let mut tablet = open_store(2);
    let team = tablet.demo.youth().team_id;
    let transport = Scripted::new(
        team,
        vec![answer(move |version, _| {
            Ok(protocol::encode_response(
                version,
                &SyncResponse {
                    acks: vec![],
                    rejections: vec![],
                    docs: docs.clone(),
                    erased: vec![],
                    cursor: 3,
                    more: false,
                    epoch: 5,
                    team: Default::default(),
                    moved: Vec::new(),
                    access: Vec::new(),
                    lent: Vec::new(),
                },
            ))
        })],
    );
    enrolled(&mut tablet.store, &transport);
    let report = tablet
        .store
        .sync(&transport, &options(), &mut |_| {})
        .expect("one unreadable record never blocks the sync");
    assert_eq!(report.set_aside, 2);
    assert_eq!(report.pulled, 3);
    assert!(tablet.store.youth(good).is_ok());
    let aside = tablet.store.set_aside().expect("list");
    let reasons: HashSet<(Uuid, String)> = aside.into_iter().map(|a| (a.id, a.reason)).collect();
    assert_eq!(
        reasons,
        HashSet::from([
            (newer.id, "newer_kind".to_string()),
            (damaged.id, "unreadable".to_string())
        ])
    );
    // The cursor moved past them: the next sync asks from 3.
    tablet
        .store
        .sync(&transport, &options(), &mut |_| {})
        .expect("again");
    let seen = transport.seen.lock().expect("lock");
    assert_eq!(seen.last().map(|(_, r)| r.cursor), Some(3));
}

#[test]
fn a_restored_server_gets_everything_again_and_the_pull_restarts() {
    let mut tablet = open_store(3);
    let team = tablet.demo.youth().team_id;
    // First life of the server's log (epoch 5): the tablet's record is acknowledged.
    let transport = Scripted::new(
        team,
        vec![answer(|version, req| {
            Ok(protocol::encode_response(
                version,
                &SyncResponse {
                    acks: req
                        .pushes
                        .iter()
                        .map(|p| Ack {
                            id: p.id,
                            heads: repere_core::document::RecordDoc::load(
                                RecordKind::Youth,
                                p.id,
                                &p.changes,
                                repere_core::Author {
                                    device_id: Uuid::nil(),
                                    member_id: Uuid::nil(),
                                },
                            )
                            .expect("doc")
                            .heads()
                            .iter()
                            .map(|h| h.0)
                            .collect(),
                        })
                        .collect(),
                    rejections: vec![],
                    docs: vec![],
                    erased: vec![],
                    cursor: 40,
                    more: false,
                    epoch: 5,
                    team: Default::default(),
                    moved: Vec::new(),
                    access: Vec::new(),
                    lent: Vec::new(),
                },
            ))
        })],
    );
    enrolled(&mut tablet.store, &transport);
    let youth = tablet.demo.youth();
    let id = tablet.store.create(&youth).expect("youth");
    tablet
        .store
        .sync(&transport, &options(), &mut |_| {})
        .expect("sync");
    assert_eq!(
        tablet.store.sync_state(id).expect("state"),
        SyncState::Synced
    );

    // The server comes back from a backup: another epoch, a log that starts again.
    let restored = Scripted::new(team, vec![ack_all(6)]);
    let report = tablet
        .store
        .sync(&restored, &options(), &mut |_| {})
        .expect("sync");
    assert!(report.server_restored);
    let seen = restored.seen.lock().expect("lock");
    // The first answer (epoch 6) was not taken; the next request starts from 0 and
    // offers the record again, whole.
    assert_eq!(seen[0].1.cursor, 40);
    assert_eq!(seen[1].1.cursor, 0);
    assert!(seen[1].1.pushes.iter().any(|p| p.id == id));
}

#[test]
fn an_older_server_is_spoken_to_in_its_version() {
    let mut tablet = open_store(4);
    let team = tablet.demo.youth().team_id;
    // A server of the first release: refuses versions 8 to 2 without saying what it
    // speaks, and answers version 1.
    let transport = Scripted::new(
        team,
        vec![answer(|version, req| {
            if version != 1 {
                return Err(TransportError::Status {
                    status: 400,
                    body: Some(ErrorBody {
                        error: ErrorCode::UnsupportedVersion,
                        message: "version".into(),
                        versions: None,
                    }),
                });
            }
            Ok(protocol::encode_response(
                1,
                &SyncResponse {
                    acks: vec![],
                    rejections: vec![],
                    docs: vec![],
                    erased: vec![],
                    cursor: req.cursor + 1,
                    more: false,
                    epoch: 99,
                    team: Default::default(),
                    moved: Vec::new(),
                    access: Vec::new(),
                    lent: Vec::new(),
                },
            ))
        })],
    );
    enrolled(&mut tablet.store, &transport);
    tablet
        .store
        .sync(&transport, &options(), &mut |_| {})
        .expect("syncs in version 1");
    let versions: Vec<u8> = transport
        .seen
        .lock()
        .expect("lock")
        .iter()
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(versions, vec![8, 7, 6, 5, 4, 3, 2, 1]);

    // A server that speaks nothing this app knows: a clear error, not "unreachable".
    let none = Scripted::new(
        team,
        vec![answer(|_, _| {
            Err(TransportError::Status {
                status: 400,
                body: Some(ErrorBody {
                    error: ErrorCode::UnsupportedVersion,
                    message: "version".into(),
                    versions: Some((8, 9)),
                }),
            })
        })],
    );
    assert!(matches!(
        tablet.store.sync(&none, &options(), &mut |_| {}),
        Err(Error::NoCommonVersion { .. })
    ));
}

#[test]
fn a_record_edited_while_its_push_was_refused_goes_back_to_pending() {
    let mut tablet = open_store(5);
    let team = tablet.demo.youth().team_id;
    let transport = Scripted::new(
        team,
        vec![answer(|version, req| {
            Ok(protocol::encode_response(
                version,
                &SyncResponse {
                    acks: vec![],
                    rejections: req
                        .pushes
                        .iter()
                        .map(|p| Rejection {
                            id: p.id,
                            code: RejectCode::Invalid,
                            reason: "commune: code commune INSEE inconnu".into(),
                        })
                        .collect(),
                    docs: vec![],
                    erased: vec![],
                    cursor: 1,
                    more: false,
                    epoch: 5,
                    team: Default::default(),
                    moved: Vec::new(),
                    access: Vec::new(),
                    lent: Vec::new(),
                },
            ))
        })],
    );
    enrolled(&mut tablet.store, &transport);
    let youth = tablet.demo.youth();
    let youth_id = tablet.store.create(&youth).expect("youth");
    let contact = tablet.demo.contact(&[youth_id]);
    let id = tablet.store.create(&contact).expect("contact");
    // The steps a shell runs around the network wait, with an edit in between.
    let batch = tablet
        .store
        .sync_prepare(&options(), &HashSet::new())
        .expect("prepare");
    let body = batch.body();
    tablet
        .store
        .edit::<Contact>(id, |c| c.notes.push_str(" Corrigé."))
        .expect("edit during the exchange");
    let answer = transport
        .post(protocol::SYNC_PATH, Some(batch.token()), body)
        .expect("answer");
    let resp = protocol::decode_response(&answer).expect("decode");
    tablet.store.sync_apply(&batch, &resp).expect("apply");
    assert_eq!(
        tablet.store.sync_state(id).expect("state"),
        SyncState::NeverSynced
    );
    // Not edited since its push: rejected, with the reason.
    assert!(matches!(
        tablet.store.sync_state(youth_id).expect("state"),
        SyncState::Rejected { .. }
    ));
}

#[test]
fn changing_team_with_unsent_changes_is_refused_unless_forced() {
    let mut tablet = open_store(6);
    let team = tablet.demo.youth().team_id;
    let offline = |team| {
        Scripted::new(
            team,
            vec![answer(|_, _| {
                Err(TransportError::Network("pas de réseau".into()))
            })],
        )
    };
    let here = offline(team);
    enrolled(&mut tablet.store, &here);
    let youth = tablet.demo.youth();
    let unsent = tablet.store.create(&youth).expect("youth");
    // Same team again (a revoked tablet given a new code): nothing to refuse.
    tablet
        .store
        .enrol(&here, "https://sync.test", "CODE2", "tablette", false)
        .expect("same team");
    assert!(tablet.store.youth(unsent).is_ok());
    // Another team while the change cannot be sent: refused, nothing lost.
    let elsewhere = offline(Uuid::from_u128(0xBEEF));
    let refused = tablet
        .store
        .enrol(&elsewhere, "https://sync.test", "CODE3", "tablette", false);
    assert!(
        matches!(refused, Err(Error::UnsentChanges { count: 1 })),
        "{refused:?}"
    );
    assert!(tablet.store.youth(unsent).is_ok(), "nothing lost");
    assert_eq!(
        tablet.store.enrolment().expect("read").map(|e| e.team_id),
        Some(team),
        "still in its team"
    );
    // Forced with the same code: the credentials already obtained are used (the code
    // is single-use), and the old team's unsent record is set aside, not lost.
    let enrols_before = elsewhere.enrols();
    tablet
        .store
        .enrol(&elsewhere, "https://sync.test", "CODE3", "tablette", true)
        .expect("forced");
    assert_eq!(elsewhere.enrols(), enrols_before);
    assert!(tablet.store.youth(unsent).is_err());
    let aside = tablet.store.set_aside().expect("list");
    assert_eq!(aside.len(), 1);
    assert_eq!(
        (aside[0].id, aside[0].reason.as_str()),
        (unsent, "left_team")
    );
    assert!(tablet.store.unsynced().expect("unsynced").is_empty());
}

#[test]
fn a_cancelled_sync_stops_between_rounds_and_during_backoff_keeping_what_was_applied() {
    let team = Uuid::now_v7();
    let cancel = repere_core::sync::Cancellation::new();
    // The first answer is applied and asks for more; the caller cancels meanwhile.
    let stop = cancel.clone();
    let server = Scripted::new(
        team,
        vec![answer(move |version, req| {
            stop.cancel();
            Ok(protocol::encode_response(
                version,
                &SyncResponse {
                    acks: Vec::new(),
                    rejections: Vec::new(),
                    docs: Vec::new(),
                    erased: Vec::new(),
                    cursor: req.cursor + 1,
                    more: true,
                    epoch: 1,
                    team: Default::default(),
                    moved: Vec::new(),
                    access: Vec::new(),
                    lent: Vec::new(),
                },
            ))
        })],
    );
    let mut tablet = open_store(7);
    let store = &mut tablet.store;
    enrolled(store, &server);
    let options = SyncOptions {
        cancel: cancel.clone(),
        ..options()
    };
    assert!(matches!(
        store.sync(&server, &options, &mut |_| {}),
        Err(Error::Cancelled)
    ));
    // The page fetched ahead is dropped with the cancellation; no third request is made.
    assert!(server.seen.lock().expect("lock").len() <= 2);

    // A failing server is retried after a backoff, which a cancellation cuts short.
    let cancel = repere_core::sync::Cancellation::new();
    let stop = cancel.clone();
    let failing = Scripted::new(
        team,
        vec![answer(move |_, _| {
            stop.cancel();
            Err(TransportError::Network("coupé".into()))
        })],
    );
    let options = SyncOptions {
        cancel,
        max_attempts: 5,
        initial_backoff: std::time::Duration::from_secs(600),
        ..SyncOptions::default()
    };
    assert!(matches!(
        store.sync(&failing, &options, &mut |_| {}),
        Err(Error::Cancelled)
    ));
    assert_eq!(
        failing.seen.lock().expect("lock").len(),
        1,
        "no retry after cancel"
    );
    // Cancelling never loses anything: the next sync goes through.
    let report = store
        .sync(
            &Scripted::new(team, vec![ack_all(1)]),
            &self::options(),
            &mut |_| {},
        )
        .expect("sync");
    assert_eq!(report.rounds, 1);
}

/// An answer that pulls nothing, with `team` news, in log `epoch`.
fn with_news(epoch: u64, team: protocol::TeamNews) -> Answer {
    answer(move |version, req| {
        Ok(protocol::encode_response(
            version,
            &SyncResponse {
                acks: Vec::new(),
                rejections: Vec::new(),
                docs: Vec::new(),
                erased: Vec::new(),
                cursor: req.cursor.max(1),
                more: false,
                epoch,
                team: team.clone(),
                moved: Vec::new(),
                access: Vec::new(),
                lent: Vec::new(),
            },
        ))
    })
}

#[test]
fn team_news_are_kept_until_the_server_restarts_its_log() {
    use protocol::{Decision, DecisionState, Member, Roster, TeamNews, TeamSince};
    let mut tablet = open_store(4);
    let team = tablet.demo.youth().team_id;
    let (amina, visit) = (Uuid::now_v7(), Uuid::now_v7());
    let news = TeamNews {
        roster: Some(Roster {
            version: 3,
            members: vec![Member {
                id: amina,
                name: "Amina".into(),
                active: true,
            }],
        }),
        decisions: vec![Decision {
            contact_id: visit,
            state: DecisionState::Flagged,
            reason: "Commune à vérifier".into(),
            at_ms: 1_780_000_000_000,
        }],
        decisions_cursor: 7,
    };
    let transport = Scripted::new(
        team,
        vec![
            with_news(1, news),
            with_news(1, TeamNews::default()),
            with_news(2, TeamNews::default()),
        ],
    );
    enrolled(&mut tablet.store, &transport);
    let store = &mut tablet.store;
    // What the screens are told: (roster changed, records listed), event by event.
    let events = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen_events = events.clone();
    store.subscribe(std::sync::Arc::new(move |e| {
        seen_events
            .lock()
            .expect("lock")
            .push((e.roster_changed, e.changed.len()));
    }));
    let told = || std::mem::take(&mut *events.lock().expect("lock"));
    store
        .sync(&transport, &options(), &mut |_| {})
        .expect("sync");
    assert_eq!(
        told(),
        [(true, 0)],
        "news alone are told; a decision on a visit not held lists no record"
    );
    assert_eq!(
        store.member_name(amina).expect("read").as_deref(),
        Some("Amina")
    );
    let decision = store.visit_decision(visit).expect("read").expect("stored");
    assert_eq!(decision.reason, "Commune à vérifier");
    assert!(decision.asks_for_action());
    assert!(
        store.flagged_visits(0, 10).expect("list").is_empty(),
        "only visits this tablet has are listed"
    );
    assert!(
        !store
            .todo(0, 10)
            .expect("todo")
            .iter()
            .any(|i| i.reason == repere_core::TodoReason::Flagged)
    );

    // An answer with no news changes nothing; the request said where the tablet stands.
    store
        .sync(&transport, &options(), &mut |_| {})
        .expect("sync");
    assert_eq!(store.roster().expect("roster").len(), 1);
    assert_eq!(told(), [], "nothing new, nothing told");
    let seen = transport.seen.lock().expect("lock").clone();
    assert_eq!(seen[0].1.team, TeamSince::default());
    assert_eq!(
        seen[1].1.team,
        TeamSince {
            roster: 3,
            decisions: 7
        }
    );

    // A server restored from a backup: both come again from the start.
    store
        .sync(&transport, &options(), &mut |_| {})
        .expect("sync");
    assert!(store.roster().expect("roster").is_empty());
    assert_eq!(told(), [(true, 0)], "the roster forgotten is told");
    assert_eq!(store.visit_decision(visit).expect("read"), None);
    let seen = transport.seen.lock().expect("lock").clone();
    assert_eq!(seen.last().expect("a request").1.team, TeamSince::default());
}

#[test]
fn a_flagged_visit_is_listed_in_the_binome_s_todo_with_its_reason() {
    use protocol::{Decision, DecisionState, TeamNews};
    let mut tablet = open_store(5);
    let youth = tablet.demo.youth();
    let team = youth.team_id;
    let youth_id = tablet.store.create(&youth).expect("youth");
    let visit = tablet
        .store
        .create(&tablet.demo.contact(&[youth_id]))
        .expect("visit");
    let approved = tablet
        .store
        .create(&tablet.demo.contact(&[youth_id]))
        .expect("visit");
    let decision = |contact_id, state, reason: &str| Decision {
        contact_id,
        state,
        reason: reason.into(),
        at_ms: 1_780_000_000_000,
    };
    let news = TeamNews {
        roster: None,
        decisions: vec![
            decision(visit, DecisionState::Flagged, "Commune à vérifier"),
            decision(approved, DecisionState::Approved, ""),
        ],
        decisions_cursor: 2,
    };
    let transport = Scripted::new(team, vec![with_news(1, news)]);
    enrolled(&mut tablet.store, &transport);
    let told = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = told.clone();
    tablet.store.subscribe(std::sync::Arc::new(move |e| {
        seen.lock().expect("lock").extend(e.changed.clone());
    }));
    tablet
        .store
        .sync(&transport, &options(), &mut |_| {})
        .expect("sync");
    // The scripted server repeats its answer each round, so they may be told more than once.
    let decided: std::collections::BTreeSet<_> =
        told.lock().expect("lock").iter().copied().collect();
    assert_eq!(
        decided,
        [
            (RecordKind::Contact, visit),
            (RecordKind::Contact, approved)
        ]
        .into(),
        "the decided visits are told as changed"
    );
    let flagged: Vec<_> = tablet
        .store
        .todo(0, 50)
        .expect("todo")
        .into_iter()
        .filter(|i| i.reason == repere_core::TodoReason::Flagged)
        .collect();
    assert_eq!(flagged.len(), 1, "an approved visit asks for nothing");
    assert_eq!(flagged[0].id, visit);
    assert_eq!(flagged[0].kind, RecordKind::Contact);
    assert_eq!(flagged[0].detail, "Commune à vérifier");
    assert_eq!(flagged[0].youth_ids, [youth_id]);
    assert_eq!(
        flagged[0].date,
        chrono::NaiveDate::from_ymd_opt(2026, 5, 28)
    );
}
