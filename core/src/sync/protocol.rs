//! The sync protocol's messages and their wire encoding (docs/sync-protocol.md).
//! Shared by the device (core) and the server (`repere-server`): defined once, here.
//!
//! Wire format of every body: `b"RP"`, the protocol version byte, a flags byte
//! (bit 0: the rest is raw-deflate compressed), then the message in postcard encoding.
//!
//! Versions: 1 (the first release), 2 (the sync answer carries the server's log epoch)
//! 3 (the enrolment request names the store's writer id, and proves a re-enrolling
//! store's earlier enrolment with its token) and 4 (a record can be rewritten as a new
//! generation: a push built on an older one is refused as `Rewritten`; the device replaces
//! its copy with the generation it pulls) and 5 (the sync carries the team's roster and
//! the coordinators' decisions on its visits, each from where the device stands: see
//! [`TeamSince`] and [`TeamNews`]), 6 (a record transferred to another team is told
//! apart from an erased one), 7 (the request says the app's version and how many
//! records wait to be sent: see [`DeviceReport`]) and 8 (break-the-glass: the request
//! asks for read access to files outside the team, the answer says what was granted and
//! lends the files: see [`AccessRequest`] and [`LentFile`]). The device speaks the highest version the server
//! accepts; the server answers
//! in the version it was asked in. Every change to a message bumps the version, and
//! golden files of each version's messages (core/tests/golden/) pin the bytes.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::records::RecordKind;

/// The version this build speaks by default (the newest).
pub const PROTOCOL_VERSION: u8 = 8;
/// The first version whose devices replace a rewritten record (see [`RejectCode::Rewritten`]).
pub const REWRITE_VERSION: u8 = 4;
/// The first version whose sync carries the roster and the coordinators' decisions.
pub const TEAM_NEWS_VERSION: u8 = 5;
/// The first version whose sync tells a record transferred to another team
/// ([`SyncResponse::moved`], [`RejectCode::Transferred`]) from an erased one.
pub const TRANSFER_VERSION: u8 = 6;
/// The first version whose sync request carries a [`DeviceReport`].
pub const REPORT_VERSION: u8 = 7;
/// The first version whose sync carries break-the-glass requests and lent files.
pub const LEND_VERSION: u8 = 8;
/// The shortest and longest reason a break-the-glass request may give (characters).
pub const ACCESS_REASON_CHARS: std::ops::RangeInclusive<usize> = 15..=500;
/// How long a break-the-glass access may last, in minutes (default two hours).
pub const ACCESS_MINUTES: std::ops::RangeInclusive<u32> = 15..=480;
pub const ACCESS_DEFAULT_MINUTES: u32 = 120;
/// Break-the-glass requests one sync carries at most: the server refuses the rest as
/// [`AccessRefusal::TooMany`] and the device never sends more.
pub const MAX_ACCESS_REQUESTS: usize = 20;
/// The longest app version a tablet may report ("1.4.0-beta.2 (1042)" is 19).
pub const APP_VERSION_MAX_CHARS: usize = 32;
/// The oldest version this build still speaks.
pub const PROTOCOL_MIN_VERSION: u8 = 1;
const MAGIC: &[u8; 2] = b"RP";
const FLAG_DEFLATE: u8 = 1;
/// Bodies smaller than this are sent as they are: deflate would not pay for itself.
const COMPRESS_FROM: usize = 256;
/// Records one sync request may push; the server refuses a request with more, and the
/// device never sends more.
pub const MAX_PUSHES: usize = 5_000;
/// The largest message either side accepts once inflated (a deflate bomb stops here).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

pub const ENROL_PATH: &str = "/v1/enrol";
pub const SYNC_PATH: &str = "/v1/sync";
pub const CONTENT_TYPE: &str = "application/x-repere-sync";

/// A device asks to join: the one-time code an administrator issued for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub code: String,
    /// Shown to administrators ("tablette 2 — équipe Stenay"); never personal data.
    pub device_label: String,
    /// The store's writer id: the device part of every Automerge actor it writes with.
    /// The server binds it to the device it enrols and refuses new changes under any
    /// other writer id from that device (versions 3 and later; `None` from older ones).
    pub writer: Option<Uuid>,
    /// When the store was enrolled before: its current token, proving that the writer
    /// id is its own (a writer id already bound to a device is only given to a store
    /// that holds one of that writer's tokens).
    pub previous_token: Option<String>,
}

/// The enrolment request of versions 1 and 2.
#[derive(Serialize, Deserialize)]
struct EnrolRequestV1 {
    code: String,
    device_label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub device_id: Uuid,
    pub team_id: Uuid,
    pub organisation_id: Uuid,
    /// The bearer token for every later request. The server keeps only its hash.
    pub token: String,
}

/// A record kind on the wire: its pinned code (`RecordKind::wire_code`), so that a kind
/// added by a newer version decodes as an unknown code instead of failing the message.
/// Encoded exactly as version 1 encoded `RecordKind` (a varint of the variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireKind(pub u32);

impl WireKind {
    /// `None` for a kind this version does not know.
    pub fn known(self) -> Option<RecordKind> {
        RecordKind::from_wire(self.0)
    }
}

impl From<RecordKind> for WireKind {
    fn from(kind: RecordKind) -> Self {
        WireKind(kind.wire_code())
    }
}

impl std::fmt::Display for WireKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.known() {
            Some(kind) => write!(f, "{kind}"),
            None => write!(f, "kind #{}", self.0),
        }
    }
}

/// One exchange: the device's unacknowledged changes, and where its pull stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The server log position the device has applied everything up to (0 at first).
    pub cursor: u64,
    pub pushes: Vec<PushDoc>,
    /// How many documents the device wants at most in this response's pull.
    pub pull_limit: u32,
    /// What the device holds of its team's roster and decisions (version 5; zeros from
    /// older devices, which are sent neither).
    pub team: TeamSince,
    /// What the tablet says of itself, shown to administrators (version 7; empty from
    /// older devices).
    pub report: DeviceReport,
    /// Break-the-glass requests not answered yet (version 8; none from older devices).
    pub access_requests: Vec<AccessRequest>,
}

/// The sync request of version 7: no break-the-glass requests.
#[derive(Serialize, Deserialize)]
struct SyncRequestV7 {
    cursor: u64,
    pushes: Vec<PushDoc>,
    pull_limit: u32,
    team: TeamSince,
    report: DeviceReport,
}

/// The sync request of versions 5 and 6: no report.
#[derive(Serialize, Deserialize)]
struct SyncRequestV5 {
    cursor: u64,
    pushes: Vec<PushDoc>,
    pull_limit: u32,
    team: TeamSince,
}

/// The sync request of versions 1 to 4.
#[derive(Serialize, Deserialize)]
struct SyncRequestV1 {
    cursor: u64,
    pushes: Vec<PushDoc>,
    pull_limit: u32,
}

/// What a tablet tells the server of itself at each sync, for its administrators' tablets
/// page: never personal data, only which app it runs and how much waits on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// The app's version as the shell names it (see [`app_version`]); empty: not said.
    pub app_version: String,
    /// Records with changes the server has not acknowledged when the request was built
    /// (never synced, pending or refused).
    pub unsent: u32,
}

/// `version` as an app version both sides accept: trimmed, 1 to [`APP_VERSION_MAX_CHARS`]
/// characters among ASCII letters, digits, `.`, `-`, `+`, `_`, space and parentheses,
/// starting with a digit. Anything else (a name, a sentence, control characters) is
/// `None`: the field can carry nothing but a version.
pub fn app_version(version: &str) -> Option<&str> {
    let version = version.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-+_ ()".contains(c);
    (version.starts_with(|c: char| c.is_ascii_digit())
        && version.len() <= APP_VERSION_MAX_CHARS
        && version.chars().all(allowed))
    .then_some(version)
}

/// A team member asks, from their tablet, to read one young person's file that is not
/// their team's (an emergency, a shared case): break-the-glass. Granted at once for
/// `minutes`, journaled, and shown to the coordination of the team that holds the file.
/// Sent again at each sync until answered; the server answers a repeated id as the first
/// time, so a lost answer grants nothing twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Made by the tablet; the grant, if any, has this id.
    pub id: Uuid,
    /// The file's reference, as the team holding it gave it.
    pub youth_id: Uuid,
    /// The member asking, as the tablet declares them.
    pub member_id: Uuid,
    /// Why: personal data, kept for the journal, never logged.
    pub reason: String,
    pub minutes: u32,
}

/// The server's answer to one [`AccessRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessAnswer {
    pub id: Uuid,
    pub outcome: AccessOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessOutcome {
    /// Readable until then (Unix milliseconds, server clock); the file comes among
    /// [`SyncResponse::lent`].
    Granted {
        expires_at_ms: i64,
    },
    Refused(AccessRefusal),
}

/// Why a break-the-glass request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessRefusal {
    /// No young person has this reference (or their file was erased).
    UnknownFile,
    /// The file is the tablet's own team's: it is on the tablet already.
    OwnTeam,
    /// The reason is shorter or longer than [`ACCESS_REASON_CHARS`].
    BadReason,
    /// The duration is outside [`ACCESS_MINUTES`].
    BadDuration,
    /// The tablet asked for too many files at once.
    TooMany,
}

impl AccessRefusal {
    /// What the field worker reads.
    pub fn message(self) -> &'static str {
        match self {
            AccessRefusal::UnknownFile => {
                "Aucune fiche n'a cette référence : vérifiez-la auprès de l'équipe qui suit ce jeune."
            }
            AccessRefusal::OwnTeam => {
                "Cette fiche est celle de votre équipe : elle est déjà sur la tablette."
            }
            AccessRefusal::BadReason => "Le motif doit faire de 15 à 500 caractères.",
            AccessRefusal::BadDuration => "La durée doit aller de 15 minutes à 8 heures.",
            AccessRefusal::TooMany => {
                "Trop de demandes à la fois : réessayez après la synchronisation."
            }
        }
    }
}

/// A file lent to the tablet by a break-the-glass grant, whole in every answer that ends
/// a sync while the grant lasts: read-only, never pushed back, deleted by the tablet at
/// `expires_at_ms` by its own clock, or as soon as an answer no longer lends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LentFile {
    pub grant_id: Uuid,
    pub youth_id: Uuid,
    /// The team that holds the file, by name (who to call about it).
    pub team_name: String,
    pub expires_at_ms: i64,
    /// The young person first, then their visits, actions and outcomes.
    pub records: Vec<LentRecord>,
}

/// One record of a lent file: its fields only (nothing is merged into it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LentRecord {
    pub id: Uuid,
    pub kind: WireKind,
    /// The record's fields as JSON, like [`PulledDoc::fields`].
    pub fields: String,
}

/// Where the device stands with its team's roster and the coordinators' decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSince {
    /// The roster version the device holds (0: none). Another version on the server
    /// (newer, or older after a restore) sends the whole roster.
    pub roster: u64,
    /// The decision position up to which the device has every decision (0 at first).
    pub decisions: u64,
}

/// What changed in the team since [`TeamSince`] (version 5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamNews {
    /// The whole roster, when its version is not the one the device holds.
    pub roster: Option<Roster>,
    /// Decisions on the team's visits made or changed after the device's position, in
    /// position order.
    pub decisions: Vec<Decision>,
    /// The device's new decision position, stored with the decisions it covers. When
    /// more decisions wait past it, the answer's `more` is set.
    pub decisions_cursor: u64,
}

impl TeamNews {
    /// Where a device stands once it has stored this (it stood at `before`).
    pub fn since(&self, before: TeamSince) -> TeamSince {
        TeamSince {
            roster: self.roster.as_ref().map_or(before.roster, |r| r.version),
            decisions: if self.decisions_cursor > 0 {
                self.decisions_cursor
            } else {
                before.decisions
            },
        }
    }
}

/// A team's members, every one of them, active or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub version: u64,
    pub members: Vec<Member>,
}

/// A team member as tablets know them: the id records name and a display name (personal
/// data: shown, never logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: Uuid,
    pub name: String,
    /// Inactive members stay named on past records but are not offered for new ones.
    pub active: bool,
}

/// A coordinator's latest decision on a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub contact_id: Uuid,
    pub state: DecisionState,
    /// Why the visit was flagged (empty otherwise); may name someone: personal data.
    pub reason: String,
    /// When it was decided, Unix milliseconds (server clock).
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionState {
    Approved,
    /// Asks the binôme for action: the reason says what.
    Flagged,
    /// A question was asked (it comes as a `ReviewTask` record).
    Question,
}

impl DecisionState {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionState::Approved => "approved",
            DecisionState::Flagged => "flagged",
            DecisionState::Question => "question",
        }
    }

    pub fn parse(s: &str) -> Option<DecisionState> {
        [
            DecisionState::Approved,
            DecisionState::Flagged,
            DecisionState::Question,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// Changes of one record, as Automerge bytes the server can `load_incremental`:
/// the whole compact document for a record the server has never acknowledged, otherwise
/// only the changes made since the heads it acknowledged last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushDoc {
    pub id: Uuid,
    pub kind: WireKind,
    pub changes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Pushed records the server stored (or already had), with its heads after merging.
    pub acks: Vec<Ack>,
    pub rejections: Vec<Rejection>,
    /// Records of the device's scope changed since its cursor, as compact documents.
    pub docs: Vec<PulledDoc>,
    /// Records erased since the cursor: delete every local copy.
    pub erased: Vec<Uuid>,
    /// The new cursor, to be stored with the data it covers.
    pub cursor: u64,
    /// More documents wait past `cursor`: ask again.
    pub more: bool,
    /// Which life of the server's log the cursor counts in (version 2; 0 from a version 1
    /// server). It changes when the server is restored from a backup: the device then
    /// pushes everything the server may lack and pulls again from the start.
    pub epoch: u64,
    /// The roster and decisions changed since the device's [`TeamSince`] (version 5;
    /// empty from older servers).
    pub team: TeamNews,
    /// Records that left the device's team since the cursor (a young person transferred
    /// to another team, and what moved with them): delete every local copy, but they are
    /// not erased (version 6; older devices get them among `erased`).
    pub moved: Vec<Uuid>,
    /// Answers to this request's [`AccessRequest`]s (version 8).
    pub access: Vec<AccessAnswer>,
    /// Every file lent to this tablet now, in the answer that ends a sync (`more` false;
    /// empty otherwise, which then says nothing). A file the tablet holds that is not
    /// among them is no longer lent (version 8).
    pub lent: Vec<LentFile>,
}

/// A sync answer in versions 6 and 7: nothing lent.
#[derive(Serialize, Deserialize)]
struct SyncResponseV6 {
    acks: Vec<Ack>,
    rejections: Vec<Rejection>,
    docs: Vec<PulledDoc>,
    erased: Vec<Uuid>,
    cursor: u64,
    more: bool,
    epoch: u64,
    team: TeamNews,
    moved: Vec<Uuid>,
}

/// A sync answer in version 5: no moved records.
#[derive(Serialize, Deserialize)]
struct SyncResponseV5 {
    acks: Vec<Ack>,
    rejections: Vec<Rejection>,
    docs: Vec<PulledDoc>,
    erased: Vec<Uuid>,
    cursor: u64,
    more: bool,
    epoch: u64,
    team: TeamNews,
}

/// A sync answer in versions 2 to 4: no roster, no decisions.
#[derive(Serialize, Deserialize)]
struct SyncResponseV2 {
    acks: Vec<Ack>,
    rejections: Vec<Rejection>,
    docs: Vec<PulledDoc>,
    erased: Vec<Uuid>,
    cursor: u64,
    more: bool,
    epoch: u64,
}

/// A sync answer in version 1: no epoch.
#[derive(Serialize, Deserialize)]
struct SyncResponseV1 {
    acks: Vec<Ack>,
    rejections: Vec<Rejection>,
    docs: Vec<PulledDoc>,
    erased: Vec<Uuid>,
    cursor: u64,
    more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub id: Uuid,
    pub heads: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectCode {
    /// The merged record fails validation; the reason names the fields.
    Invalid,
    /// The record belongs to another team's caseload.
    OutOfScope,
    /// The record was erased: the device must delete its copy.
    Erased,
    /// The bytes are not an Automerge document of the stated kind.
    Malformed,
    /// The changes build on history the server does not have: send the whole document.
    MissingHistory,
    /// The record was rewritten as a new generation (a rectification) and the push builds
    /// on an older one: the device replaces its copy with the one in this answer's pull
    /// (version 4; older devices are told `Erased`, since they cannot replace a copy).
    Rewritten,
    /// The record left the device's team (its young person was transferred to another
    /// team): the device deletes its copy, unsent changes included (version 6; older
    /// devices are told `Erased`).
    Transferred,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub id: Uuid,
    pub code: RejectCode,
    /// Safe to show to the field worker: field names and problems, never values.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PulledDoc {
    pub id: Uuid,
    pub kind: WireKind,
    /// The compact document: the truth.
    pub doc: Vec<u8>,
    /// Its heads, as the server stored them.
    pub heads: Vec<[u8; 32]>,
    /// The record's fields as JSON, as the server validated them (may be empty). A tablet
    /// that does not have the record indexes it from these without parsing the document;
    /// a tablet that has it merges the document.
    pub fields: String,
}

/// The JSON body of every 4xx/5xx answer: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
    /// With `unsupported_version`: the oldest and newest versions the server speaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<(u8, u8)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedRequest,
    UnsupportedVersion,
    TooLarge,
    Unauthorized,
    DeviceRevoked,
    /// The device was revoked with an order to delete its store: it does so now.
    WipeOrdered,
    InvalidEnrolmentCode,
    RateLimited,
    Internal,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not a Repère sync message")]
    NotAMessage,
    #[error(
        "protocol version {0} is not supported (this side speaks {PROTOCOL_MIN_VERSION} to {PROTOCOL_VERSION})"
    )]
    UnsupportedVersion(u8),
    #[error("message too large once decompressed")]
    TooLarge,
    #[error("message damaged: {0}")]
    Damaged(String),
}

/// Encodes a message in the current version.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    encode_as(PROTOCOL_VERSION, message)
}

/// Encodes a message whose layout is the same in every version (everything but the sync
/// request and answer and the enrolment request) in the envelope of `version`.
pub fn encode_as<T: Serialize>(version: u8, message: &T) -> Vec<u8> {
    // postcard cannot fail on these types (no maps with non-string keys, no unsized data).
    let body = postcard::to_stdvec(message).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(version);
    if body.len() >= COMPRESS_FROM {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        let compressed = enc
            .write_all(&body)
            .ok()
            .and_then(|()| enc.finish().ok())
            .filter(|c| c.len() < body.len());
        if let Some(compressed) = compressed {
            out.push(FLAG_DEFLATE);
            out.extend_from_slice(&compressed);
            return out;
        }
    }
    out.push(0);
    out.extend_from_slice(&body);
    out
}

/// A sync answer in the layout of `version`.
pub fn encode_response(version: u8, response: &SyncResponse) -> Vec<u8> {
    if version >= LEND_VERSION {
        return encode_as(version, response);
    }
    // Before version 8 a device asks for nothing and is lent nothing (the hub lends
    // nothing to it).
    if version >= TRANSFER_VERSION {
        let v6 = SyncResponseV6 {
            acks: response.acks.clone(),
            rejections: response.rejections.clone(),
            docs: response.docs.clone(),
            erased: response.erased.clone(),
            cursor: response.cursor,
            more: response.more,
            epoch: response.epoch,
            team: response.team.clone(),
            moved: response.moved.clone(),
        };
        return encode_as(version, &v6);
    }
    // Before version 6 a device only knows erasure to drop a record.
    let mut erased = response.erased.clone();
    erased.extend(&response.moved);
    let transferred_as_erased = |r: &Rejection| match r.code {
        RejectCode::Transferred => Rejection {
            id: r.id,
            code: RejectCode::Erased,
            reason: r.reason.clone(),
        },
        _ => r.clone(),
    };
    let response = &SyncResponse {
        rejections: response
            .rejections
            .iter()
            .map(transferred_as_erased)
            .collect(),
        erased,
        moved: Vec::new(),
        ..response.clone()
    };
    if version >= TEAM_NEWS_VERSION {
        return encode_as(
            version,
            &SyncResponseV5 {
                acks: response.acks.clone(),
                rejections: response.rejections.clone(),
                docs: response.docs.clone(),
                erased: response.erased.clone(),
                cursor: response.cursor,
                more: response.more,
                epoch: response.epoch,
                team: response.team.clone(),
            },
        );
    }
    // Before version 5 a device is sent no roster and no decisions (the hub builds none
    // for it).
    let more = response.more;
    if version >= REWRITE_VERSION {
        return encode_as(
            version,
            &SyncResponseV2 {
                acks: response.acks.clone(),
                rejections: response.rejections.clone(),
                docs: response.docs.clone(),
                erased: response.erased.clone(),
                cursor: response.cursor,
                more,
                epoch: response.epoch,
            },
        );
    }
    // Before version 4 a device cannot replace a copy, only delete it.
    let rejections: Vec<Rejection> = response
        .rejections
        .iter()
        .map(|r| match r.code {
            RejectCode::Rewritten => Rejection {
                id: r.id,
                code: RejectCode::Erased,
                reason: "this record was rewritten by coordination: update the app".into(),
            },
            _ => r.clone(),
        })
        .collect();
    if version >= 2 {
        return encode_as(
            version,
            &SyncResponseV2 {
                acks: response.acks.clone(),
                rejections,
                docs: response.docs.clone(),
                erased: response.erased.clone(),
                cursor: response.cursor,
                more,
                epoch: response.epoch,
            },
        );
    }
    let v1 = SyncResponseV1 {
        acks: response.acks.clone(),
        rejections,
        docs: response.docs.clone(),
        erased: response.erased.clone(),
        cursor: response.cursor,
        more,
    };
    encode_as(1, &v1)
}

/// A sync request in the layout of `version` (before 7 it reports nothing, before 5 it
/// says nothing of the team).
pub fn encode_request(version: u8, request: &SyncRequest) -> Vec<u8> {
    if version >= LEND_VERSION {
        return encode_as(version, request);
    }
    if version >= REPORT_VERSION {
        let v7 = SyncRequestV7 {
            cursor: request.cursor,
            pushes: request.pushes.clone(),
            pull_limit: request.pull_limit,
            team: request.team,
            report: request.report.clone(),
        };
        return encode_as(version, &v7);
    }
    if version >= TEAM_NEWS_VERSION {
        let v5 = SyncRequestV5 {
            cursor: request.cursor,
            pushes: request.pushes.clone(),
            pull_limit: request.pull_limit,
            team: request.team,
        };
        return encode_as(version, &v5);
    }
    let v1 = SyncRequestV1 {
        cursor: request.cursor,
        pushes: request.pushes.clone(),
        pull_limit: request.pull_limit,
    };
    encode_as(version, &v1)
}

/// Decodes a sync request of any version this side speaks.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, DecodeError> {
    let version = version_of(bytes)?;
    if version >= LEND_VERSION {
        return decode(bytes);
    }
    if version >= REPORT_VERSION {
        let v7: SyncRequestV7 = decode(bytes)?;
        return Ok(SyncRequest {
            cursor: v7.cursor,
            pushes: v7.pushes,
            pull_limit: v7.pull_limit,
            team: v7.team,
            report: v7.report,
            access_requests: Vec::new(),
        });
    }
    if version >= TEAM_NEWS_VERSION {
        let v5: SyncRequestV5 = decode(bytes)?;
        return Ok(SyncRequest {
            cursor: v5.cursor,
            pushes: v5.pushes,
            pull_limit: v5.pull_limit,
            team: v5.team,
            report: DeviceReport::default(),
            access_requests: Vec::new(),
        });
    }
    let v1: SyncRequestV1 = decode(bytes)?;
    Ok(SyncRequest {
        cursor: v1.cursor,
        pushes: v1.pushes,
        pull_limit: v1.pull_limit,
        team: TeamSince::default(),
        report: DeviceReport::default(),
        access_requests: Vec::new(),
    })
}

/// An enrolment request in the layout of `version` (before 3 it names no writer id).
pub fn encode_enrol(version: u8, request: &EnrolRequest) -> Vec<u8> {
    if version >= 3 {
        return encode_as(version, request);
    }
    let v1 = EnrolRequestV1 {
        code: request.code.clone(),
        device_label: request.device_label.clone(),
    };
    encode_as(version, &v1)
}

/// Decodes an enrolment request of any version this side speaks, refused as soon as it
/// would inflate past `max_bytes` (see [`decode_within`]).
pub fn decode_enrol(bytes: &[u8], max_bytes: usize) -> Result<EnrolRequest, DecodeError> {
    if version_of(bytes)? >= 3 {
        return decode_within(bytes, max_bytes);
    }
    let v1: EnrolRequestV1 = decode_within(bytes, max_bytes)?;
    Ok(EnrolRequest {
        code: v1.code,
        device_label: v1.device_label,
        writer: None,
        previous_token: None,
    })
}

/// The version a body is written in, if it is a message of a version this side speaks.
pub fn version_of(bytes: &[u8]) -> Result<u8, DecodeError> {
    if bytes.len() < 4 || &bytes[..2] != MAGIC {
        return Err(DecodeError::NotAMessage);
    }
    match bytes[2] {
        v @ PROTOCOL_MIN_VERSION..=PROTOCOL_VERSION => Ok(v),
        v => Err(DecodeError::UnsupportedVersion(v)),
    }
}

/// Decodes a message whose layout is the same in every version.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_within(bytes, MAX_MESSAGE_BYTES)
}

/// Like [`decode`], for a message that is always small (an enrolment): refused with
/// `TooLarge` as soon as it would inflate past `max_bytes`, so a few hundred bytes of
/// deflate cannot cost megabytes.
pub fn decode_within<T: DeserializeOwned>(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<T, DecodeError> {
    version_of(bytes)?;
    postcard::from_bytes(&inflate(bytes, max_bytes.min(MAX_MESSAGE_BYTES))?)
        .map_err(|e| DecodeError::Damaged(e.to_string()))
}

/// Decodes a sync answer of any version this side speaks.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, DecodeError> {
    let version = version_of(bytes)?;
    if version >= LEND_VERSION {
        return decode(bytes);
    }
    if version >= TRANSFER_VERSION {
        let v6: SyncResponseV6 = decode(bytes)?;
        return Ok(SyncResponse {
            acks: v6.acks,
            rejections: v6.rejections,
            docs: v6.docs,
            erased: v6.erased,
            cursor: v6.cursor,
            more: v6.more,
            epoch: v6.epoch,
            team: v6.team,
            moved: v6.moved,
            access: Vec::new(),
            lent: Vec::new(),
        });
    }
    if version >= TEAM_NEWS_VERSION {
        let v5: SyncResponseV5 = decode(bytes)?;
        return Ok(SyncResponse {
            acks: v5.acks,
            rejections: v5.rejections,
            docs: v5.docs,
            erased: v5.erased,
            cursor: v5.cursor,
            more: v5.more,
            epoch: v5.epoch,
            team: v5.team,
            moved: Vec::new(),
            access: Vec::new(),
            lent: Vec::new(),
        });
    }
    if version >= 2 {
        let v2: SyncResponseV2 = decode(bytes)?;
        return Ok(SyncResponse {
            acks: v2.acks,
            rejections: v2.rejections,
            docs: v2.docs,
            erased: v2.erased,
            cursor: v2.cursor,
            more: v2.more,
            epoch: v2.epoch,
            team: TeamNews::default(),
            moved: Vec::new(),
            access: Vec::new(),
            lent: Vec::new(),
        });
    }
    let v1: SyncResponseV1 = postcard::from_bytes(&inflate(bytes, MAX_MESSAGE_BYTES)?)
        .map_err(|e| DecodeError::Damaged(e.to_string()))?;
    Ok(SyncResponse {
        acks: v1.acks,
        rejections: v1.rejections,
        docs: v1.docs,
        erased: v1.erased,
        cursor: v1.cursor,
        more: v1.more,
        epoch: 0,
        team: TeamNews::default(),
        moved: Vec::new(),
        access: Vec::new(),
        lent: Vec::new(),
    })
}

fn inflate(bytes: &[u8], max_bytes: usize) -> Result<std::borrow::Cow<'_, [u8]>, DecodeError> {
    let payload = &bytes[4..];
    match bytes[3] {
        0 if payload.len() > max_bytes => Err(DecodeError::TooLarge),
        0 => Ok(std::borrow::Cow::Borrowed(payload)),
        FLAG_DEFLATE => {
            let mut out = Vec::new();
            let read = flate2::read::DeflateDecoder::new(payload)
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::Damaged(e.to_string()))?;
            if read > max_bytes {
                return Err(DecodeError::TooLarge);
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        _ => Err(DecodeError::Damaged("unknown flags".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_response(docs: usize) -> SyncResponse {
        SyncResponse {
            acks: vec![Ack {
                id: Uuid::now_v7(),
                heads: vec![[3; 32]],
            }],
            rejections: vec![Rejection {
                id: Uuid::now_v7(),
                code: RejectCode::Invalid,
                reason: "birth_year: âge hors tranche".into(),
            }],
            docs: (0..docs)
                .map(|i| PulledDoc {
                    id: Uuid::now_v7(),
                    kind: RecordKind::Contact.into(),
                    doc: vec![i as u8; 300],
                    heads: vec![[i as u8; 32]],
                    fields: String::new(),
                })
                .collect(),
            erased: vec![Uuid::now_v7()],
            cursor: 42,
            more: true,
            epoch: 7,
            team: TeamNews::default(),
            moved: Vec::new(),
            access: Vec::new(),
            lent: Vec::new(),
        }
    }

    #[test]
    fn round_trips_small_and_compressed_messages() {
        for docs in [0, 20] {
            let msg = sample_response(docs);
            let bytes = encode(&msg);
            assert_eq!(bytes[3], u8::from(docs > 0), "compressed only when it pays");
            assert_eq!(decode_response(&bytes), Ok(msg));
        }
    }

    #[test]
    fn an_empty_sync_is_tiny() {
        let req = SyncRequest {
            cursor: 123_456,
            pushes: vec![],
            pull_limit: 500,
            team: TeamSince::default(),
            report: DeviceReport {
                app_version: "1.4.0".into(),
                unsent: 3,
            },
            access_requests: Vec::new(),
        };
        assert!(encode(&req).len() < 22);
        let resp = SyncResponse {
            acks: vec![],
            rejections: vec![],
            docs: vec![],
            erased: vec![],
            cursor: 123_456,
            more: false,
            epoch: u64::MAX / 3,
            team: TeamNews::default(),
            moved: Vec::new(),
            access: Vec::new(),
            lent: Vec::new(),
        };
        assert!(encode(&resp).len() < 28);
    }

    #[test]
    fn rejects_garbage_truncation_and_other_versions() {
        let bytes = encode(&sample_response(3));
        assert_eq!(
            decode::<SyncResponse>(b"GET / HTTP/1.1"),
            Err(DecodeError::NotAMessage)
        );
        assert_eq!(decode::<SyncResponse>(b""), Err(DecodeError::NotAMessage));
        let mut other = bytes.clone();
        other[2] = 9;
        assert_eq!(
            decode::<SyncResponse>(&other),
            Err(DecodeError::UnsupportedVersion(9))
        );
        for cut in [4, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode::<SyncResponse>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn only_a_short_version_string_is_an_app_version() {
        assert_eq!(
            app_version(" 1.4.0-beta+2 (1042) "),
            Some("1.4.0-beta+2 (1042)")
        );
        for bad in [
            "",
            "   ",
            "Amina Benali",
            "1.0\nAmina",
            "1.0;DROP",
            "1.é",
            &"1".repeat(33),
        ] {
            assert_eq!(app_version(bad), None, "{bad:?}");
        }
        assert!(app_version(&"1".repeat(APP_VERSION_MAX_CHARS)).is_some());
    }

    #[test]
    fn refuses_a_deflate_bomb() {
        let body = vec![0u8; MAX_MESSAGE_BYTES + 10];
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&body).expect("compress");
        let mut bytes = b"RP".to_vec();
        bytes.extend([PROTOCOL_VERSION, FLAG_DEFLATE]);
        bytes.extend(enc.finish().expect("compress"));
        assert_eq!(decode::<SyncRequest>(&bytes), Err(DecodeError::TooLarge));
    }

    #[test]
    fn a_small_message_is_refused_past_its_own_bound() {
        let long = EnrolRequest {
            code: "ABCD-EFGH-JK".into(),
            device_label: "tablette ".repeat(100),
            writer: None,
            previous_token: None,
        };
        let deflated = encode(&long);
        assert_eq!(deflated[3], FLAG_DEFLATE, "long enough to be compressed");
        assert!(deflated.len() < 200);
        assert_eq!(decode_within(&deflated, 2048), Ok(long.clone()));
        assert_eq!(
            decode_within::<EnrolRequest>(&deflated, 512),
            Err(DecodeError::TooLarge),
            "inflates past the bound"
        );
        let short = EnrolRequest {
            code: "ABCD-EFGH-JK".into(),
            device_label: "tablette 1".into(),
            writer: None,
            previous_token: None,
        };
        let plain = encode(&short);
        assert_eq!(plain[3], 0);
        assert_eq!(decode_within(&plain, 64), Ok(short));
        assert_eq!(
            decode_within::<EnrolRequest>(&plain, 8),
            Err(DecodeError::TooLarge)
        );
    }
}
