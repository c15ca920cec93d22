//! The mapping between typed records and their Automerge documents.
//!
//! We map by hand rather than with autosurgeon: each field's merge behaviour is chosen
//! explicitly (`FieldKind`), edits write only the fields that changed, conflicts are read
//! straight from the document, and the actor id carries who wrote a value.
//!
//! Document layout: a root map with `_kind` (the record kind), `_schema` (layout version)
//! and one key per schema field: scalars as Automerge scalars, sets as maps of
//! `key → true`, lists as lists of strings, free text as a Text object.

use std::collections::{BTreeSet, HashMap};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::records::{AnyRecord, FieldKind, Record, RecordKind, ValidationContext};

pub type JsonFields = Map<String, Json>;

const KIND_KEY: &str = "_k";
const SCHEMA_KEY: &str = "_v";
const SCHEMA_VERSION: i64 = 1;

/// How a value written by a newer app version reads here (an enum variant this version
/// does not know). It is never written: an unchanged field keeps its bytes.
pub const UNKNOWN_VALUE: &str = "_unknown";

/// Runs Automerge on bytes from elsewhere (a push, a pull, a peer). Automerge 0.12 can
/// panic on crafted bytes (an unwrap on an actor it never registered, in its change import;
/// found by fuzz/received_document): that panic is a refusal of the bytes, not the end of
/// the server or of the app. Whatever `call` changed must be dropped when it fails.
pub fn on_received<T>(
    call: impl FnOnce() -> std::result::Result<T, AutomergeError>,
) -> std::result::Result<T, AutomergeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .unwrap_or(Err(AutomergeError::Fail))
}

/// The key a field is stored under: its position in the record's schema, as one letter.
/// Positional keys keep each document small on the wire (a new contact travels in about
/// 1.3× its gzip'd JSON); the price is that a schema may only grow at its end.
const KEYS: [&str; 52] = [
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s",
    "t", "u", "v", "w", "x", "y", "z", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L",
    "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z",
];

fn doc_key(index: usize) -> &'static str {
    KEYS.get(index).copied().unwrap_or("_overflow")
}

fn field_of_key(kind: RecordKind, key: &str) -> Option<&'static str> {
    let index = KEYS.iter().position(|k| *k == key)?;
    kind.schema().get(index).map(|(name, _)| *name)
}

/// Who writes: a device (store) and the team member using it. Both go into the Automerge
/// actor id, so every value in a document says who wrote it without extra bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Author {
    pub device_id: Uuid,
    pub member_id: Uuid,
}

impl Author {
    pub fn actor(&self) -> ActorId {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(self.device_id.as_bytes());
        bytes.extend_from_slice(self.member_id.as_bytes());
        ActorId::from(bytes)
    }

    /// An actor for an edit made against an older version when this device already wrote
    /// past it: Automerge numbers each actor's changes in sequence, so that edit needs an
    /// actor of its own. The first 32 bytes still say who wrote it.
    fn forked_actor(&self) -> ActorId {
        let mut bytes = self.actor().to_bytes().to_vec();
        bytes.extend_from_slice(Uuid::new_v4().as_bytes());
        ActorId::from(bytes)
    }

    pub fn from_actor(actor: &ActorId) -> Option<Author> {
        let bytes = actor.to_bytes();
        if bytes.len() != 32 && bytes.len() != 48 {
            return None;
        }
        Some(Author {
            device_id: Uuid::from_slice(&bytes[..16]).ok()?,
            member_id: Uuid::from_slice(&bytes[16..32]).ok()?,
        })
    }
}

/// One change of a record: who, when (device clock), which fields.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub author: Option<Author>,
    pub written_at: Option<DateTime<Utc>>,
    pub fields: Vec<String>,
}

/// One of the values a field holds after concurrent edits.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictValue {
    pub value: Json,
    /// `None` when the writer's actor id is not one of ours (a foreign tool wrote it).
    pub author: Option<Author>,
    /// When the writer's device says it wrote it (device clocks lie: informative only).
    pub written_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldConflict {
    pub field: String,
    /// The value the record currently shows comes first.
    pub values: Vec<ConflictValue>,
}

pub fn to_json_fields<R: Record>(record: &R) -> Result<JsonFields> {
    match serde_json::to_value(record) {
        Ok(Json::Object(map)) => Ok(map),
        _ => Err(Error::Unserializable(R::KIND)),
    }
}

/// A loaded record document, ready to read or edit.
pub struct RecordDoc {
    pub kind: RecordKind,
    pub id: Uuid,
    doc: AutoCommit,
}

impl RecordDoc {
    /// A new document holding `fields`, every container created up front so that two
    /// replicas never create the same set or text concurrently.
    pub fn create(
        kind: RecordKind,
        id: Uuid,
        author: Author,
        fields: &JsonFields,
        now: DateTime<Utc>,
    ) -> Result<RecordDoc> {
        let mut doc = AutoCommit::new().with_actor(author.actor());
        doc.put(automerge::ROOT, KIND_KEY, kind.as_str())?;
        doc.put(automerge::ROOT, SCHEMA_KEY, SCHEMA_VERSION)?;
        let mut rec = RecordDoc { kind, id, doc };
        let empty = JsonFields::new();
        for (i, &(name, field_kind)) in kind.schema().iter().enumerate() {
            write_field(
                &mut rec.doc,
                doc_key(i),
                field_kind,
                empty.get(name),
                fields.get(name),
                true,
            )?;
        }
        rec.commit(now);
        Ok(rec)
    }

    /// Loads stored or received bytes, checking they hold a document of `kind`.
    pub fn load(kind: RecordKind, id: Uuid, bytes: &[u8], author: Author) -> Result<RecordDoc> {
        let doc = on_received(|| AutoCommit::load(bytes)).map_err(|e| Error::CorruptDocument {
            kind,
            id,
            reason: e.to_string(),
        })?;
        RecordDoc::from_loaded(kind, id, doc, author)
    }

    /// A document Automerge already loaded (from received bytes, on another thread),
    /// checked to hold a record of `kind`, as [`RecordDoc::load`] does.
    pub fn from_loaded(
        kind: RecordKind,
        id: Uuid,
        doc: AutoCommit,
        author: Author,
    ) -> Result<RecordDoc> {
        let corrupt = |reason: String| Error::CorruptDocument { kind, id, reason };
        let rec = RecordDoc {
            kind,
            id,
            doc: doc.with_actor(author.actor()),
        };
        match rec.stored_kind() {
            Some(k) if k == kind => Ok(rec),
            Some(other) => Err(Error::WrongKind {
                id,
                expected: kind,
                actual: other,
            }),
            None => Err(corrupt("no record kind".into())),
        }
    }

    /// The kind the document says it holds (a pushed change could have rewritten it).
    pub fn stored_kind(&self) -> Option<RecordKind> {
        match self.doc.get(automerge::ROOT, KIND_KEY).ok()?? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Str(k) => RecordKind::parse(k),
                _ => None,
            },
            _ => None,
        }
    }

    /// The whole document, its columns left uncompressed. Automerge would deflate each
    /// large column on its own, which hides a note's text from the deflate of a whole sync
    /// page (where it sits beside the same text in the record's fields): a page of contacts
    /// with notes is less than half as large this way, for a document about a fifth larger
    /// at rest (docs/BENCHMARKS.md, "Side by side with the peers").
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    pub fn heads(&mut self) -> Vec<automerge::ChangeHash> {
        self.doc.get_heads()
    }

    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// The changes made since `heads`, as bytes another replica can load incrementally.
    /// With no (or unknown) heads, the whole record: as its changes or as the compact
    /// document, whichever is smaller (a new record is one change, smaller than a document).
    pub fn changes_since(&mut self, heads: &[automerge::ChangeHash]) -> Vec<u8> {
        if !heads.is_empty() && self.knows(heads) {
            return self.doc.save_after(heads);
        }
        let changes = self.doc.save_after(&[]);
        let document = self.save();
        if changes.len() < document.len() {
            changes
        } else {
            document
        }
    }

    /// Whether every change named by `heads` is in this document.
    pub fn knows(&mut self, heads: &[automerge::ChangeHash]) -> bool {
        heads
            .iter()
            .all(|h| self.doc.get_change_meta_by_hash(h).is_some())
    }

    /// The changes that depend on nothing: the one the record was created with, for every
    /// copy of one generation of the record. A rewritten record (a new generation) starts
    /// from another one, which is how a copy tells that it holds an older generation.
    pub fn roots(&mut self) -> Vec<automerge::ChangeHash> {
        self.doc
            .get_changes_meta(&[])
            .iter()
            .filter(|c| c.deps.is_empty())
            .map(|c| c.hash)
            .collect()
    }

    /// Whether `other` is a copy of the same generation of the record (it shares this
    /// copy's first change).
    pub fn same_generation(&mut self, other: &mut RecordDoc) -> bool {
        let roots = other.roots();
        !roots.is_empty() && self.knows(&roots)
    }

    /// Whether `heads` (all known here) cover every change of this document.
    pub fn covered_by(&mut self, heads: &[automerge::ChangeHash]) -> bool {
        self.knows(heads) && self.doc.get_changes(heads).is_empty()
    }

    /// Applies pushed Automerge bytes (a whole document or changes). The flag is `false`
    /// when some changes wait for history this copy does not have. The document is taken
    /// by value: bytes refused halfway may have left it changed, so it goes with the error.
    pub fn with_incremental(mut self, bytes: &[u8]) -> Result<(RecordDoc, bool)> {
        on_received(|| self.doc.load_incremental(bytes)).map_err(|e| Error::CorruptDocument {
            kind: self.kind,
            id: self.id,
            reason: e.to_string(),
        })?;
        let complete = self.doc.get_missing_deps(&[]).is_empty();
        Ok((self, complete))
    }

    /// Reads the record whatever its kind.
    pub fn read_record(&self) -> Result<crate::records::AnyRecord> {
        crate::store::any_from_fields(self.kind, self.id, self.read_fields())
    }

    /// Takes every change of `other` that this document lacks.
    pub fn merge(&mut self, other: &mut RecordDoc) -> Result<()> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }

    fn commit(&mut self, now: DateTime<Utc>) {
        self.doc
            .commit_with(CommitOptions::default().with_time(now.timestamp()));
    }

    /// Reads the record as it currently shows (the winning value of each field), in one
    /// pass over the document.
    pub fn read_fields(&self) -> JsonFields {
        self.fields_at(None)
    }

    /// Reads each schema key on its own, never hydrating the document: keys this version
    /// does not know, and objects nested where the schema has none, are never walked.
    fn fields_at(&self, heads: Option<&[ChangeHash]>) -> JsonFields {
        let mut out = JsonFields::new();
        // The current fields: one pass over the root map gives each key's winning value and
        // whether other values were written concurrently; only those keys are looked up
        // again (a lookup per key was a fifth of the server's cost of a pushed visit).
        let winners: Option<HashMap<String, (Value<'static>, ObjId, bool)>> =
            heads.is_none().then(|| {
                self.doc
                    .map_range(automerge::ROOT, ..)
                    .map(|item| {
                        let id = item.id();
                        (
                            item.key.to_string(),
                            (item.value.into_value(), id, item.conflict),
                        )
                    })
                    .collect()
            });
        for (i, &(name, kind)) in self.kind.schema().iter().enumerate() {
            let key = doc_key(i);
            // Every value under the key, the winning one last (Automerge's order).
            let all = match winners.as_ref().map(|w| w.get(key)) {
                Some(None) => Vec::new(),
                Some(Some((value, id, false))) => vec![(value.clone(), id.clone())],
                Some(Some((_, _, true))) | None => self.all_values(key, heads).unwrap_or_default(),
            };
            let json = match kind {
                FieldKind::Scalar => match all.last() {
                    Some((Value::Scalar(s), _)) => scalar_to_json(s),
                    _ => Json::Null,
                },
                _ => {
                    let mut containers = all.iter().rev().filter_map(|(v, id)| {
                        matches!(v, Value::Object(t) if Some(*t) == container_type(kind))
                            .then_some(id)
                    });
                    match containers.next() {
                        None => empty_container(kind),
                        Some(winner) => {
                            let mut json = self.container_json(kind, winner, heads);
                            // Two replicas that both created this container (a field added
                            // to the schema after the document was made) each hold part of
                            // its content: read them all, so no concurrent first write is
                            // lost.
                            for other in containers {
                                absorb(kind, &mut json, self.container_json(kind, other, heads));
                            }
                            json
                        }
                    }
                }
            };
            out.insert(name.to_string(), json);
        }
        out
    }

    /// A set's keys, a list's string items or a text, as JSON.
    fn container_json(&self, kind: FieldKind, obj: &ObjId, heads: Option<&[ChangeHash]>) -> Json {
        let d = &self.doc;
        match kind {
            FieldKind::Set => {
                let mut keys: Vec<String> = match heads {
                    Some(h) => d.keys_at(obj, h).collect(),
                    None => d.keys(obj).collect(),
                };
                keys.sort();
                Json::Array(keys.into_iter().map(Json::String).collect())
            }
            FieldKind::List => {
                let len = heads.map_or_else(|| d.length(obj), |h| d.length_at(obj, h));
                Json::Array(
                    (0..len)
                        .filter_map(|i| {
                            let item = match heads {
                                Some(h) => d.get_at(obj, i, h),
                                None => d.get(obj, i),
                            };
                            match item {
                                Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                                    ScalarValue::Str(s) => Some(Json::String(s.to_string())),
                                    _ => None,
                                },
                                _ => None,
                            }
                        })
                        .collect(),
                )
            }
            FieldKind::Text => Json::String(
                match heads {
                    Some(h) => d.text_at(obj, h),
                    None => d.text(obj),
                }
                .unwrap_or_default(),
            ),
            FieldKind::Scalar => Json::Null,
        }
    }

    /// Whether the document holds only what the schema declares: the kind and layout keys
    /// and the schema's keys, each of its declared shape (scalars, a map of scalars for a
    /// set, a list of scalars, a text). The server refuses anything else at push, so no
    /// replica ever has to read an object nested where the schema has none.
    pub fn check_shape(&self) -> std::result::Result<(), String> {
        let schema = self.kind.schema();
        // One pass over the root map; a key holding concurrent values is looked up whole.
        for item in self.doc.map_range(automerge::ROOT, ..) {
            let key = item.key.as_ref();
            if key == KIND_KEY || key == SCHEMA_KEY {
                continue;
            }
            let Some(i) = KEYS
                .iter()
                .position(|k| *k == key)
                .filter(|i| *i < schema.len())
            else {
                return Err("a field this server does not know".into());
            };
            let (name, kind) = schema[i];
            let values = if item.conflict {
                self.doc.get_all(automerge::ROOT, key).unwrap_or_default()
            } else {
                vec![(item.value.clone().into_value(), item.id())]
            };
            for (value, obj) in values {
                let ok = match (kind, value) {
                    (FieldKind::Scalar, Value::Scalar(_)) => true,
                    (_, Value::Object(t)) if Some(t) == container_type(kind) => {
                        self.holds_only_scalars(kind, &obj)
                    }
                    _ => false,
                };
                if !ok {
                    return Err(format!("{name}: not of the shape the schema declares"));
                }
            }
        }
        Ok(())
    }

    fn holds_only_scalars(&self, kind: FieldKind, obj: &ObjId) -> bool {
        match kind {
            FieldKind::Text => true,
            FieldKind::Set => self
                .doc
                .map_range(obj, ..)
                .all(|item| matches!(item.value, automerge::ValueRef::Scalar(_))),
            FieldKind::List => self
                .doc
                .list_range(obj, ..)
                .all(|item| matches!(item.value, automerge::ValueRef::Scalar(_))),
            FieldKind::Scalar => false,
        }
    }

    fn all_values(
        &self,
        key: &str,
        heads: Option<&[ChangeHash]>,
    ) -> Result<Vec<(Value<'_>, ObjId)>> {
        Ok(match heads {
            Some(h) => self.doc.get_all_at(automerge::ROOT, key, h)?,
            None => self.doc.get_all(automerge::ROOT, key)?,
        })
    }

    pub fn read<R: Record>(&self) -> Result<R> {
        self.typed(self.read_fields())
    }

    /// The record as it read at `heads`.
    pub fn read_at<R: Record>(&self, heads: &[ChangeHash]) -> Result<R> {
        self.typed(self.read_fields_at(heads)?)
    }

    fn typed<R: Record>(&self, fields: JsonFields) -> Result<R> {
        serde_json::from_value(Json::Object(fields)).map_err(|e| {
            Error::CorruptDocument {
                kind: self.kind,
                id: self.id,
                // serde's message names the field and expected type, never the value.
                reason: e.to_string(),
            }
        })
    }

    /// Writes the fields that differ between `old` and `new` and commits them as one change.
    /// Returns whether anything changed.
    pub fn update(
        &mut self,
        old: &JsonFields,
        new: &JsonFields,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let changed = changed_fields(self.kind, old, new);
        if changed.is_empty() {
            return Ok(false);
        }
        write_changes(&mut self.doc, &changed, old, new)?;
        self.commit(now);
        Ok(true)
    }

    /// An edit made against the version a user saw (`seen`, whose fields read as
    /// `seen_fields`): only the fields the user changed relative to that version are
    /// written, and they are written *as of* that version, so everything merged in since
    /// stays and a field changed on both sides becomes a visible conflict.
    pub fn update_against(
        &mut self,
        seen: &[ChangeHash],
        seen_fields: &JsonFields,
        new: &JsonFields,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if !self.knows(seen) {
            return Err(Error::UnknownVersion {
                kind: self.kind,
                id: self.id,
            });
        }
        let changed = changed_fields(self.kind, seen_fields, new);
        if changed.is_empty() {
            return Ok(false);
        }
        if same_heads(&self.doc.get_heads(), seen) {
            write_changes(&mut self.doc, &changed, seen_fields, new)?;
            self.commit(now);
            return Ok(true);
        }
        let mut fork = self.doc.fork_at(seen)?;
        let ours = self.doc.get_actor().clone();
        let wrote_since = self
            .doc
            .get_changes(seen)
            .iter()
            .any(|c| c.actor_id() == &ours);
        let actor = match Author::from_actor(&ours) {
            Some(author) if wrote_since => author.forked_actor(),
            _ => ours,
        };
        fork.set_actor(actor);
        write_changes(&mut fork, &changed, seen_fields, new)?;
        fork.commit_with(CommitOptions::default().with_time(now.timestamp()));
        self.doc.merge(&mut fork)?;
        Ok(true)
    }

    /// The record's fields as they read at `heads` (the version a form was filled from).
    pub fn read_fields_at(&self, heads: &[ChangeHash]) -> Result<JsonFields> {
        if !heads
            .iter()
            .all(|h| self.doc.get_change_by_hash(h).is_some())
        {
            return Err(Error::UnknownVersion {
                kind: self.kind,
                id: self.id,
            });
        }
        Ok(self.fields_at(Some(heads)))
    }

    /// Writes `value` to a scalar field even if it is already the winning value, which
    /// supersedes every concurrent value: this is how a conflict is resolved. An empty
    /// value (`null`) is written too (not skipped as when creating), so keeping a field
    /// cleared on one tablet resolves its conflict.
    pub fn overwrite_scalar(
        &mut self,
        field: &str,
        value: &Json,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let key = self.scalar_key(field)?;
        write_field(
            &mut self.doc,
            key,
            FieldKind::Scalar,
            None,
            Some(value),
            false,
        )?;
        self.commit(now);
        Ok(())
    }

    /// Resolves the conflict on `field` by choosing `value` (one of its values or another):
    /// the record as it will read is checked (no value only known as "from a newer
    /// version", the kind's validation) before the value is written as one change by this
    /// document's actor. The same rule on a tablet (`Store::resolve_conflict`) and on the
    /// coordinators' pages. Returns the record as it now reads.
    pub fn resolve_conflict(
        &mut self,
        field: &str,
        value: &Json,
        ctx: &ValidationContext<'_>,
    ) -> Result<AnyRecord> {
        if !self.conflicts().iter().any(|c| c.field == field) {
            return Err(Error::NoConflict {
                id: self.id,
                field: field.chars().take(64).collect(),
            });
        }
        let seen = self.read_record()?;
        let mut fields = self.read_fields();
        fields.insert(field.to_string(), value.clone());
        let record = crate::store::any_from_fields(self.kind, self.id, fields)?;
        // Compared as the typed records write them, so a value read as "unknown" on both
        // sides counts as unchanged.
        crate::store::check_no_newer_values(
            self.kind,
            &crate::store::any_to_fields(&seen)?,
            &crate::store::any_to_fields(&record)?,
        )?;
        record.validate(ctx)?;
        self.overwrite_scalar(field, value, ctx.now)?;
        Ok(record)
    }

    fn scalar_key(&self, field: &str) -> Result<&'static str> {
        self.kind
            .schema()
            .iter()
            .position(|(n, k)| *n == field && *k == FieldKind::Scalar)
            .map(doc_key)
            .ok_or_else(|| Error::UnknownField {
                kind: self.kind,
                field: field.chars().take(64).collect(),
            })
    }

    /// Every change of the record in causal order, with the fields it touched: the
    /// record's history for review ("who changed which field when").
    pub fn history(&mut self) -> Vec<HistoryEntry> {
        use automerge::legacy::{Key, ObjectId, OpId, OpType};
        let mut containers: std::collections::HashMap<OpId, String> =
            std::collections::HashMap::new();
        let mut out = Vec::new();
        for change in self.doc.get_changes(&[]) {
            let expanded = change.decode();
            let mut fields: Vec<String> = Vec::new();
            for (i, op) in expanded.operations.iter().enumerate() {
                let field = match (&op.obj, &op.key) {
                    (ObjectId::Root, Key::Map(k)) => field_of_key(self.kind, k).map(str::to_string),
                    (ObjectId::Id(obj), _) => containers.get(obj).cloned(),
                    _ => None,
                };
                let Some(field) = field else {
                    continue;
                };
                if matches!(op.action, OpType::Make(_)) {
                    let id = OpId(
                        expanded.start_op.get() + i as u64,
                        expanded.actor_id.clone(),
                    );
                    containers.insert(id, field.clone());
                }
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
            out.push(HistoryEntry {
                author: Author::from_actor(change.actor_id()),
                written_at: DateTime::from_timestamp(change.timestamp(), 0),
                fields,
            });
        }
        out
    }

    /// Scalar fields that hold several values after concurrent edits.
    pub fn conflicts(&mut self) -> Vec<FieldConflict> {
        let mut out = Vec::new();
        for (i, &(name, kind)) in self.kind.schema().iter().enumerate() {
            if kind != FieldKind::Scalar {
                continue;
            }
            let Ok(all) = self.doc.get_all(automerge::ROOT, doc_key(i)) else {
                continue;
            };
            if all.len() < 2 {
                continue;
            }
            let raw: Vec<(Json, ObjId)> = all
                .into_iter()
                .map(|(v, id)| match v {
                    Value::Scalar(s) => (scalar_to_json(&s), id),
                    Value::Object(_) => (Json::Null, id),
                })
                .collect();
            // get_all lists values in ascending op order; the winner (what `get` shows) is last.
            let values = raw
                .into_iter()
                .rev()
                .map(|(value, id)| self.describe(value, &id))
                .collect();
            out.push(FieldConflict {
                field: name.to_string(),
                values,
            });
        }
        out
    }

    fn describe(&mut self, value: Json, op: &ObjId) -> ConflictValue {
        let author = match op {
            ObjId::Id(_, actor, _) => Author::from_actor(actor),
            ObjId::Root => None,
        };
        let written_at = self
            .doc
            .hash_for_opid(op)
            .and_then(|h| self.doc.get_change_by_hash(&h))
            .and_then(|c| DateTime::from_timestamp(c.timestamp(), 0));
        ConflictValue {
            value,
            author,
            written_at,
        }
    }
}

fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// The schema fields whose value differs between `old` and `new`, with their key and kind.
/// The fields of a new generation of a record (`theirs`) with the edits this copy made
/// since `base` (the version the server last acknowledged) carried over: a field edited
/// here is kept where the new generation left it as it was in `base`; where the new
/// generation changed it too (a rectification of that very field), the new generation wins,
/// so a redaction is never undone by an edit made before it was seen. Returns the fields
/// and how many local edits were dropped that way.
pub fn carry_over_edits(
    kind: RecordKind,
    base: &JsonFields,
    ours: &JsonFields,
    theirs: &JsonFields,
) -> (JsonFields, usize) {
    let mut fields = theirs.clone();
    let mut dropped = 0;
    for (name, _, _) in changed_fields(kind, base, ours) {
        if norm(theirs.get(name)) != norm(base.get(name)) {
            dropped += 1;
            continue;
        }
        match ours.get(name) {
            Some(value) => fields.insert(name.to_string(), value.clone()),
            None => fields.remove(name),
        };
    }
    (fields, dropped)
}

fn changed_fields(
    kind: RecordKind,
    old: &JsonFields,
    new: &JsonFields,
) -> Vec<(&'static str, &'static str, FieldKind)> {
    kind.schema()
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| norm(old.get(*name)) != norm(new.get(*name)))
        .map(|(i, &(name, field_kind))| (name, doc_key(i), field_kind))
        .collect()
}

fn write_changes(
    doc: &mut AutoCommit,
    changed: &[(&'static str, &'static str, FieldKind)],
    old: &JsonFields,
    new: &JsonFields,
) -> Result<()> {
    for &(name, key, field_kind) in changed {
        write_field(doc, key, field_kind, old.get(name), new.get(name), false)?;
    }
    Ok(())
}

fn write_field(
    doc: &mut AutoCommit,
    key: &'static str,
    kind: FieldKind,
    old: Option<&Json>,
    new: Option<&Json>,
    creating: bool,
) -> Result<()> {
    let root = automerge::ROOT;
    match kind {
        FieldKind::Scalar => match new.and_then(json_to_scalar) {
            Some(v) => {
                doc.put(&root, key, v)?;
            }
            // Clearing writes a null rather than deleting: a delete only removes the
            // values it has seen, so a colleague's concurrent value would silently win;
            // a null stands beside it as a visible conflict.
            None if !creating => {
                doc.put(&root, key, ScalarValue::Null)?;
            }
            None => {}
        },
        FieldKind::Set => {
            let before = string_items(old);
            let after = string_items(new);
            let containers = containers(doc, key, ObjType::Map)?;
            let obj = match containers.first() {
                Some(obj) => obj.clone(),
                None => doc.put_object(&root, key, ObjType::Map)?,
            };
            for gone in before.difference(&after) {
                for c in &containers {
                    if doc.get(c, gone.as_str())?.is_some() {
                        doc.delete(c, gone.as_str())?;
                    }
                }
            }
            for added in after.difference(&before) {
                if added != UNKNOWN_VALUE {
                    doc.put(&obj, added.as_str(), true)?;
                }
            }
        }
        FieldKind::List => {
            let obj = single_container(doc, key, ObjType::List)?;
            let current: Vec<String> = read_list(doc, &obj);
            let after: Vec<String> = string_list(new);
            // Splice only the differing middle so concurrent edits at the ends merge.
            let prefix = current
                .iter()
                .zip(&after)
                .take_while(|(a, b)| a == b)
                .count();
            let suffix = current[prefix..]
                .iter()
                .rev()
                .zip(after[prefix..].iter().rev())
                .take_while(|(a, b)| a == b)
                .count();
            for _ in prefix..current.len() - suffix {
                doc.delete(&obj, prefix)?;
            }
            for (i, item) in after[prefix..after.len() - suffix].iter().enumerate() {
                doc.insert(&obj, prefix + i, item.as_str())?;
            }
        }
        FieldKind::Text => {
            let obj = single_container(doc, key, ObjType::Text)?;
            let text = new.and_then(Json::as_str).unwrap_or("");
            doc.update_text(&obj, text)?;
        }
    }
    Ok(())
}

/// Every container object held under a root key, the winning one first.
fn containers(doc: &AutoCommit, key: &str, obj_type: ObjType) -> Result<Vec<ObjId>> {
    let mut all: Vec<ObjId> = doc
        .get_all(automerge::ROOT, key)?
        .into_iter()
        .filter_map(|(v, id)| matches!(v, Value::Object(t) if t == obj_type).then_some(id))
        .collect();
    all.reverse();
    Ok(all)
}

/// The one container of an ordered field, created if the document predates the field.
/// Where concurrent creations left several, a fresh one replaces them all, holding what
/// the user saw of them together (see `absorb`).
fn single_container(doc: &mut AutoCommit, key: &'static str, obj_type: ObjType) -> Result<ObjId> {
    let all = containers(doc, key, obj_type)?;
    if all.len() == 1 && doc.get_all(automerge::ROOT, key)?.len() == 1 {
        return Ok(all[0].clone());
    }
    Ok(doc.put_object(automerge::ROOT, key, obj_type)?)
}

fn read_list(doc: &AutoCommit, obj: &ObjId) -> Vec<String> {
    (0..doc.length(obj))
        .filter_map(|i| match doc.get(obj, i) {
            Ok(Some((Value::Scalar(s), _))) => scalar_to_json(&s).as_str().map(str::to_string),
            _ => None,
        })
        .collect()
}

fn container_type(kind: FieldKind) -> Option<ObjType> {
    match kind {
        FieldKind::Set => Some(ObjType::Map),
        FieldKind::List => Some(ObjType::List),
        FieldKind::Text => Some(ObjType::Text),
        FieldKind::Scalar => None,
    }
}

fn empty_container(kind: FieldKind) -> Json {
    match kind {
        FieldKind::Text => Json::String(String::new()),
        _ => Json::Array(Vec::new()),
    }
}

/// Adds what a concurrently created container holds to the winning one's value: set
/// items and list items not already there, text as a further paragraph.
fn absorb(kind: FieldKind, into: &mut Json, other: Json) {
    match (into, other) {
        (Json::Array(items), Json::Array(more)) => {
            for item in more {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            if kind == FieldKind::Set {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
        (Json::String(text), Json::String(more)) if !more.is_empty() && *text != more => {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&more);
        }
        _ => {}
    }
}

/// `None` and JSON null are the same absence.
fn norm(v: Option<&Json>) -> Option<&Json> {
    v.filter(|v| !v.is_null())
}

fn string_items(v: Option<&Json>) -> BTreeSet<String> {
    string_list(v).into_iter().collect()
}

fn string_list(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn json_to_scalar(v: &Json) -> Option<ScalarValue> {
    match v {
        Json::String(s) => Some(ScalarValue::Str(s.as_str().into())),
        Json::Bool(b) => Some(ScalarValue::Boolean(*b)),
        Json::Number(n) => n
            .as_i64()
            .map(ScalarValue::Int)
            .or_else(|| n.as_f64().map(ScalarValue::F64)),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

fn scalar_to_json(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Str(s) => Json::String(s.to_string()),
        ScalarValue::Int(i) => Json::from(*i),
        ScalarValue::Uint(u) => Json::from(*u),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Timestamp(t) => Json::from(*t),
        _ => Json::Null,
    }
}
