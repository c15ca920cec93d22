//! `RepereStore`: the encrypted device store as an object for Kotlin and Swift.
//! Every method converts arguments, calls core under a panic guard, converts the result.

use std::sync::{Arc, MutexGuard};

use repere_core::records as model;
use repere_core::sync::Cancellation;
use repere_core::{DuplicateProbe, Record, RecordKind, Store, StoreEvent, SyncState};
use repere_transport::SyncClient;

use crate::error::{RepereError, guard};
use crate::records::{
    Action, Contact, NewAction, NewContact, NewOutcome, NewTour, NewYouth, Outcome, StoredRecord,
    Tour, Youth, parse_id, parse_version,
};

/// A young person in a list or a search result.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct YouthSummary {
    pub id: String,
    pub display_name: String,
    pub age: Option<i32>,
    pub age_is_approximate: bool,
    pub home_commune: Option<String>,
    pub home_commune_name: Option<String>,
    pub status: String,
    pub contact_count: u32,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SimilarYouth {
    pub youth: YouthSummary,
    pub score: f64,
    pub same_commune: bool,
    pub birth_year_close: bool,
    /// "Kévin, ~19 ans, Stenay — vu 3 fois"
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct DuplicateQuery {
    pub first_name: Option<String>,
    pub alias: Option<String>,
    pub last_name: Option<String>,
    pub birth_year: Option<i32>,
    pub home_commune: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ContactSummary {
    pub id: String,
    /// RFC 3339, UTC.
    pub occurred_at: String,
    pub commune: String,
    pub commune_name: String,
    pub kind: String,
    pub youth_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConflictValue {
    /// The value as JSON (`"mobilised"`, `2007`, `null`).
    pub value_json: String,
    pub member_id: Option<String>,
    pub device_id: Option<String>,
    /// RFC 3339; the writer's device clock, informative only.
    pub written_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FieldConflict {
    pub field: String,
    /// The value the record shows first.
    pub values: Vec<ConflictValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum RecordSyncState {
    NeverSynced,
    Pending,
    Synced,
    Rejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Enrolment {
    pub server_url: String,
    pub device_id: String,
    pub team_id: String,
    pub organisation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    pub rounds: u32,
    pub pushed: u64,
    pub acknowledged: u64,
    pub rejected: u64,
    pub pulled: u64,
    pub erased: u64,
    /// Records that left this tablet's team (a young person transferred to another team):
    /// deleted here but not erased; say « transféré à une autre équipe », not « effacé ».
    pub transferred: u64,
    /// Received documents this version cannot read (a record kind from a newer version,
    /// damaged bytes): kept aside, see `set_aside`. They never block the sync.
    pub set_aside: u64,
    /// Records coordination rewrote (a rectification): the copy here was replaced.
    pub rewritten: u64,
    /// Edits made here and not yet sent, to fields such a rewrite changed: the rewrite won.
    pub edits_dropped: u64,
    /// The server was restored from a backup: everything was offered to it again.
    pub server_restored: bool,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// A record named by kind and id.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordRef {
    pub kind: RecordKind,
    pub id: String,
}

/// A document kept on the tablet but out of the lists, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SetAside {
    pub id: String,
    /// The kind as received: a name (`youth`…), or `kind #N` for a kind from a newer version.
    pub kind: String,
    /// Stable: `newer_kind` (a record kind from a newer app version), `unreadable` (bytes
    /// this version cannot read), `left_team` (unsent changes of a team this tablet left).
    pub reason: String,
    /// French, for the screen.
    pub user_message: String,
}

fn set_aside_message(reason: &str) -> String {
    match reason {
        "newer_kind" => "Fiche d'un type créé par une version plus récente de l'application : elle sera lisible après la mise à jour.",
        "unreadable" => "Fiche reçue que cette version ne sait pas lire : elle est gardée telle quelle ; mettez l'application à jour, et signalez-le si cela persiste.",
        "left_team" => "Modifications d'une équipe que cette tablette a quittée, jamais envoyées : gardées sur la tablette, elles ne seront pas envoyées.",
        _ => "Fiche mise de côté sur cette tablette.",
    }
    .to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChangedRecord {
    pub kind: RecordKind,
    pub id: String,
    /// Changed by sync rather than on this tablet.
    pub remote: bool,
}

/// Told of every committed change (for refreshing screens).
#[uniffi::export(with_foreign)]
pub trait StoreListener: Send + Sync {
    /// Records written, here or by sync (a visit a coordinator decided on is listed too).
    fn on_change(&self, changes: Vec<ChangedRecord>);
    /// The team's roster changed: names and « membres présents » are to be read again.
    fn on_roster_change(&self);
    /// The break-the-glass requests or the lent files changed (a request made or answered,
    /// a file lent, ended or over): `access_requests` and `lent_files` are to be read again.
    fn on_lending_change(&self);
}

/// Told after each sync round.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// Stops a running `sync` from another thread; one per sync call.
#[derive(uniffi::Object, Default)]
pub struct SyncCancellation(Cancellation);

#[uniffi::export]
impl SyncCancellation {
    #[uniffi::constructor]
    pub fn new() -> Arc<SyncCancellation> {
        Arc::default()
    }

    /// The sync stops at once, even mid-request, with `RepereError::Cancelled`.
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

#[derive(uniffi::Object)]
pub struct RepereStore {
    client: SyncClient,
}

impl RepereStore {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.client.store()
    }

    fn create<R: Record>(
        &self,
        record: impl TryInto<R, Error = RepereError>,
    ) -> Result<String, RepereError> {
        let record = record.try_into()?;
        Ok(self.lock().create(&record)?.to_string())
    }

    /// Writes what the user changed relative to the version the record was read at, then
    /// reads the record back (merged, with its new version) for the form to carry on from.
    fn update<S: StoredRecord>(&self, record: S) -> Result<S, RepereError> {
        let (id, version, fields) = record.into_parts();
        let id = parse_id(&id)?;
        let seen = parse_version(&version)?;
        let fields: S::Model = fields.try_into()?;
        let mut store = self.lock();
        store.update(id, &seen, &fields)?;
        Ok(S::from_versioned(store.read(id)?))
    }

    fn read<S: StoredRecord>(&self, id: &str) -> Result<S, RepereError> {
        let id = parse_id(id)?;
        Ok(S::from_versioned(self.lock().read(id)?))
    }
}

pub(crate) fn summary(y: repere_core::YouthSummary) -> YouthSummary {
    YouthSummary {
        id: y.id.to_string(),
        display_name: y.display_name,
        age: y.age,
        age_is_approximate: y.age_is_approximate,
        home_commune: y.home_commune,
        home_commune_name: y.home_commune_name,
        status: y.status,
        contact_count: y.contact_count,
    }
}

pub(crate) fn similar_youth(s: repere_core::SimilarYouth) -> SimilarYouth {
    SimilarYouth {
        description: s.describe(),
        youth: summary(s.youth),
        score: s.score,
        same_commune: s.same_commune,
        birth_year_close: s.birth_year_close,
    }
}

fn progress(p: &repere_core::sync::SyncProgress) -> SyncProgress {
    SyncProgress {
        rounds: p.rounds,
        pushed: p.pushed as u64,
        acknowledged: p.acknowledged as u64,
        rejected: p.rejected as u64,
        pulled: p.pulled as u64,
        erased: p.erased as u64,
        transferred: p.transferred as u64,
        set_aside: p.set_aside as u64,
        rewritten: p.rewritten as u64,
        edits_dropped: p.edits_dropped as u64,
        server_restored: p.server_restored,
        bytes_up: p.bytes_up as u64,
        bytes_down: p.bytes_down as u64,
    }
}

fn enrolment(e: repere_core::sync::Enrolment) -> Enrolment {
    Enrolment {
        server_url: e.server_url,
        device_id: e.device_id.to_string(),
        team_id: e.team_id.to_string(),
        organisation_id: e.organisation_id.to_string(),
    }
}

#[uniffi::export]
impl RepereStore {
    /// Opens (or creates) the encrypted store at `path` with the 32-byte key from the
    /// platform keystore.
    #[uniffi::constructor]
    pub fn open(path: String, key: Vec<u8>) -> Result<Arc<RepereStore>, RepereError> {
        guard(|| {
            Ok(Arc::new(RepereStore {
                client: SyncClient::new(Store::open(path, &key)?),
            }))
        })
    }

    /// The team member using the tablet, recorded as author of the next edits.
    pub fn set_member(&self, member_id: String) -> Result<(), RepereError> {
        guard(|| {
            let id = parse_id(&member_id)?;
            self.lock().set_member(id);
            Ok(())
        })
    }

    pub fn device_id(&self) -> String {
        self.lock().device_id().to_string()
    }

    /// The app's version as the shell names it (Android `versionName`, iOS
    /// `CFBundleShortVersionString`), told to the server at each sync for the
    /// administrators' tablets page; call it at start (until then: this core's version).
    /// Only a short version string is taken (1 to 32 characters: digits, letters,
    /// `. - + _ ( )` and spaces, starting with a digit); anything else is refused
    /// (`Internal`: a bug of the shell) and the version stays as it was.
    pub fn set_app_version(&self, version: String) -> Result<(), RepereError> {
        guard(|| Ok(self.lock().set_app_version(&version)?))
    }

    /// The version the next sync reports.
    pub fn app_version(&self) -> String {
        self.lock().app_version().to_string()
    }

    /// Stores a new young person; returns its id.
    pub fn create_youth(&self, youth: NewYouth) -> Result<String, RepereError> {
        guard(|| self.create::<model::Youth>(youth))
    }

    /// Saves a form filled from `youth` as read (`get_youth`): only the fields changed
    /// relative to its `version` are written. Returns the record as now stored.
    pub fn update_youth(&self, youth: Youth) -> Result<Youth, RepereError> {
        guard(|| self.update(youth))
    }

    /// The young person with its version, to show or to fill a form from.
    pub fn get_youth(&self, id: String) -> Result<Youth, RepereError> {
        guard(|| self.read(&id))
    }

    pub fn create_contact(&self, contact: NewContact) -> Result<String, RepereError> {
        guard(|| self.create::<model::Contact>(contact))
    }

    /// See `update_youth`.
    pub fn update_contact(&self, contact: Contact) -> Result<Contact, RepereError> {
        guard(|| self.update(contact))
    }

    pub fn get_contact(&self, id: String) -> Result<Contact, RepereError> {
        guard(|| self.read(&id))
    }

    pub fn create_tour(&self, tour: NewTour) -> Result<String, RepereError> {
        guard(|| self.create::<model::Tour>(tour))
    }

    /// See `update_youth`.
    pub fn update_tour(&self, tour: Tour) -> Result<Tour, RepereError> {
        guard(|| self.update(tour))
    }

    pub fn get_tour(&self, id: String) -> Result<Tour, RepereError> {
        guard(|| self.read(&id))
    }

    pub fn create_action(&self, action: NewAction) -> Result<String, RepereError> {
        guard(|| self.create::<model::Action>(action))
    }

    /// See `update_youth`.
    pub fn update_action(&self, action: Action) -> Result<Action, RepereError> {
        guard(|| self.update(action))
    }

    pub fn get_action(&self, id: String) -> Result<Action, RepereError> {
        guard(|| self.read(&id))
    }

    pub fn create_outcome(&self, outcome: NewOutcome) -> Result<String, RepereError> {
        guard(|| self.create::<model::Outcome>(outcome))
    }

    /// See `update_youth`.
    pub fn update_outcome(&self, outcome: Outcome) -> Result<Outcome, RepereError> {
        guard(|| self.update(outcome))
    }

    pub fn get_outcome(&self, id: String) -> Result<Outcome, RepereError> {
        guard(|| self.read(&id))
    }

    /// Accent- and case-insensitive search by first name, alias, last name and commune.
    pub fn search_youth(
        &self,
        query: String,
        limit: u32,
    ) -> Result<Vec<YouthSummary>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .search_youth(&query, limit as usize)?
                .into_iter()
                .map(summary)
                .collect())
        })
    }

    /// Young people who may be the one about to be created, best first.
    pub fn find_similar_youth(
        &self,
        query: DuplicateQuery,
        limit: u32,
    ) -> Result<Vec<SimilarYouth>, RepereError> {
        guard(|| {
            let probe = DuplicateProbe {
                first_name: query.first_name,
                alias: query.alias,
                last_name: query.last_name,
                birth_year: query.birth_year,
                home_commune: query.home_commune,
            };
            Ok(self
                .lock()
                .find_similar_youth(&probe, limit as usize)?
                .into_iter()
                .map(similar_youth)
                .collect())
        })
    }

    /// Contacts, most recent first.
    pub fn list_contacts(
        &self,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<ContactSummary>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .list_contacts(offset as usize, limit as usize)?
                .into_iter()
                .map(|c| ContactSummary {
                    id: c.id.to_string(),
                    occurred_at: c.occurred_at.to_rfc3339(),
                    commune: c.commune,
                    commune_name: c.commune_name,
                    kind: c.kind,
                    youth_names: c.youth_names,
                })
                .collect())
        })
    }

    pub fn contacts_of_youth(&self, youth_id: String) -> Result<Vec<String>, RepereError> {
        guard(|| {
            let id = parse_id(&youth_id)?;
            Ok(self
                .lock()
                .contacts_of_youth(id)?
                .iter()
                .map(ToString::to_string)
                .collect())
        })
    }

    /// Fields edited concurrently on two tablets, with each value, who wrote it and when.
    pub fn conflicts(&self, id: String) -> Result<Vec<FieldConflict>, RepereError> {
        guard(|| {
            let id = parse_id(&id)?;
            Ok(self
                .lock()
                .conflicts(id)?
                .into_iter()
                .map(|c| FieldConflict {
                    field: c.field,
                    values: c
                        .values
                        .into_iter()
                        .map(|v| ConflictValue {
                            value_json: v.value.to_string(),
                            member_id: v.author.map(|a| a.member_id.to_string()),
                            device_id: v.author.map(|a| a.device_id.to_string()),
                            written_at: v.written_at.map(|t| t.to_rfc3339()),
                        })
                        .collect(),
                })
                .collect())
        })
    }

    /// Keeps `value_json` (one of the conflict's values, or another) for `field`.
    pub fn resolve_conflict(
        &self,
        id: String,
        field: String,
        value_json: String,
    ) -> Result<(), RepereError> {
        guard(|| {
            let id = parse_id(&id)?;
            let value: serde_json::Value = serde_json::from_str(&value_json).map_err(|_| {
                RepereError::validation(vec![crate::error::FieldProblem {
                    field: field.clone(),
                    code: "bad_format".into(),
                    user_message: repere_core::Problem::BadFormat.to_string(),
                }])
            })?;
            Ok(self.lock().resolve_conflict(id, &field, value)?)
        })
    }

    pub fn sync_state(&self, id: String) -> Result<RecordSyncState, RepereError> {
        guard(|| {
            let id = parse_id(&id)?;
            Ok(match self.lock().sync_state(id)? {
                SyncState::NeverSynced => RecordSyncState::NeverSynced,
                SyncState::Pending => RecordSyncState::Pending,
                SyncState::Synced => RecordSyncState::Synced,
                SyncState::Rejected { reason } => RecordSyncState::Rejected { reason },
            })
        })
    }

    /// What is wrong with a record as merged, when two valid edits made it invalid (e.g. a
    /// next-step date kept by one tablet while the other cleared the next step), as
    /// `field: problem` items joined by `; ` (problems in French); `None` when valid. Both
    /// edits are kept; show this to the field worker, whose ordinary edit fixes it.
    pub fn problems(&self, id: String) -> Result<Option<String>, RepereError> {
        guard(|| {
            let id = parse_id(&id)?;
            Ok(self.lock().problems(id)?)
        })
    }

    /// Records whose merged version fails validation (see `problems`).
    pub fn with_problems(&self) -> Result<Vec<RecordRef>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .with_problems()?
                .into_iter()
                .map(|(kind, id)| RecordRef {
                    kind,
                    id: id.to_string(),
                })
                .collect())
        })
    }

    /// Documents kept on the tablet but out of the lists: kinds from a newer app version,
    /// bytes this version cannot read, unsent changes of a team this tablet left.
    pub fn set_aside(&self) -> Result<Vec<SetAside>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .set_aside()?
                .into_iter()
                .map(|s| SetAside {
                    id: s.id.to_string(),
                    user_message: set_aside_message(&s.reason),
                    kind: s.kind,
                    reason: s.reason,
                })
                .collect())
        })
    }

    /// How many records have changes the server has not acknowledged.
    pub fn unsynced_count(&self) -> Result<u32, RepereError> {
        guard(|| Ok(self.lock().unsent_count()?))
    }

    /// The records with changes the server has not acknowledged, oldest change first: the
    /// sync screen's « pas encore sur le serveur » list (`sync_state` says why for each).
    pub fn unsynced(&self) -> Result<Vec<RecordRef>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .unsynced()?
                .into_iter()
                .map(|(kind, id)| RecordRef {
                    kind,
                    id: id.to_string(),
                })
                .collect())
        })
    }

    /// When the tablet last got an answer from its server (RFC 3339, UTC), or `None` if it
    /// never did: the sync screen's « dernière synchronisation ».
    pub fn last_server_contact(&self) -> Result<Option<String>, RepereError> {
        guard(|| Ok(self.lock().last_server_contact()?.map(|t| t.to_rfc3339())))
    }

    /// Exchanges a one-time code for this tablet's credentials. Into the same team, every
    /// record and unsent change stays. Into another team, unsent changes are first sent with
    /// the current credentials; if some cannot be, this fails with `UnsentChanges` and the
    /// new credentials wait for the same code to be given again with `force`, which sets
    /// those records aside (see `set_aside`). The old team's synced records leave the tablet.
    pub fn enrol(
        &self,
        server_url: String,
        code: String,
        device_label: String,
        force: bool,
    ) -> Result<Enrolment, RepereError> {
        guard(|| {
            Ok(enrolment(self.client.enrol(
                &server_url,
                &code,
                &device_label,
                force,
            )?))
        })
    }

    pub fn enrolment(&self) -> Result<Option<Enrolment>, RepereError> {
        guard(|| Ok(self.lock().enrolment()?.map(enrolment)))
    }

    /// Pushes and pulls until up to date, or until `cancellation` is cancelled. The store
    /// stays usable during the network waits; the HTTP connection is kept for the next sync.
    pub fn sync(
        &self,
        listener: Option<Arc<dyn SyncListener>>,
        cancellation: Option<Arc<SyncCancellation>>,
    ) -> Result<SyncProgress, RepereError> {
        guard(|| {
            let cancel = cancellation.map(|c| c.0.clone()).unwrap_or_default();
            let report = self.client.sync(&cancel, &mut |p| {
                if let Some(l) = &listener {
                    l.on_progress(progress(p));
                }
            })?;
            Ok(progress(&report))
        })
    }

    /// Whether the records are locked: the server was not reached for longer than the
    /// offline lock period (see `set_offline_lock_days`). A sync that gets through unlocks.
    pub fn is_locked(&self) -> Result<bool, RepereError> {
        guard(|| Ok(self.lock().is_locked()?))
    }

    /// Days without reaching the server before the records lock (30 unless set); `None`
    /// never locks. For the device-management configuration of the app.
    pub fn set_offline_lock_days(&self, days: Option<u32>) -> Result<(), RepereError> {
        guard(|| Ok(self.lock().set_offline_lock_days(days)?))
    }

    /// Calls `listener` after every committed change, local or from sync.
    pub fn subscribe(&self, listener: Arc<dyn StoreListener>) {
        self.lock().subscribe(Arc::new(move |e: &StoreEvent| {
            let remote = e.origin == repere_core::Origin::Remote;
            let changes = e
                .changed
                .iter()
                .map(|(kind, id)| ChangedRecord {
                    kind: *kind,
                    id: id.to_string(),
                    remote,
                })
                .collect();
            // A listener that panics must not take the store down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if !e.changed.is_empty() {
                    listener.on_change(changes);
                }
                if e.roster_changed {
                    listener.on_roster_change();
                }
                if e.lending_changed {
                    listener.on_lending_change();
                }
            }));
        }));
    }
}
