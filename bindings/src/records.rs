//! Records as the shells see them: ids and dates as strings (UUID, ISO 8601), sets as
//! lists. Enums are core's own, exported as they are.
//!
//! Each kind comes twice. `NewYouth`, `NewContact`… are the fields of a record being
//! created: it has no id and no version yet. `Youth`, `Contact`… are a record as read from
//! the store: the same fields plus its `id` and the `version` it was read at (opaque bytes).
//! A form starts from the record read and hands it back, edited, to `update_*`: the core
//! then writes only the fields the user changed relative to that version, so what other
//! tablets merged in meanwhile stays (DESIGN decision 11). The version cannot be forgotten:
//! it travels inside the record.
//!
//! Every enum has a `FromNewerVersion` case: a value written by a newer app version, which
//! this one cannot name. Screens show it as « valeur d'une version plus récente »; it is kept
//! as it is when the field is left alone, and refused if a form tries to write it.

use chrono::{DateTime, FixedOffset, NaiveDate};
use repere_core::records::{
    self as model, ActionKind, ActionStatus, AgeBand, ContactKind, IdentityLevel, Need,
    OutcomeKind, ProfileFlag, ReferralSource, Service, Sex, Situation, TourStatus, YouthStatus,
};
use repere_core::{Problem, Record, RecordKind, ValidationErrors, Version, Versioned};
use uuid::Uuid;

use crate::error::RepereError;

#[uniffi::remote(Enum)]
pub enum IdentityLevel {
    AliasOnly,
    FirstName,
    FullIdentity,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum AgeBand {
    From16To17,
    From18To21,
    From22To25,
    From26To29,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum Sex {
    Female,
    Male,
    Other,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum ReferralSource {
    TownHall,
    Shop,
    AssociationOrClub,
    PartnerInstitution,
    PhoneLine,
    Website,
    SocialNetwork,
    SelfReferral,
    Peer,
    Outreach,
    Other,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum ProfileFlag {
    CareLeaver,
    SchoolDropout,
    Disability,
    JusticeMeasure,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum Situation {
    Neet,
    InEducation,
    InEmployment,
    InTraining,
    Unknown,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum Service {
    MissionLocale,
    FranceTravail,
    CapEmploi,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum YouthStatus {
    Identified,
    Mobilised,
    Helped,
    Closed,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum ContactKind {
    Street,
    Home,
    TownHall,
    PartnerPremises,
    Event,
    Phone,
    SocialNetwork,
    Other,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum Need {
    Housing,
    Health,
    Mobility,
    Employment,
    Training,
    Rights,
    Other,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum TourStatus {
    Planned,
    InProgress,
    Done,
    Cancelled,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum ActionKind {
    Chantier5Days,
    ChantierMonth,
    Sport,
    Culture,
    Appointment,
    Other,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum ActionStatus {
    Planned,
    Done,
    NoShow,
    Cancelled,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum OutcomeKind {
    MissionLocaleRegistration,
    FranceTravailRegistration,
    CapEmploiRegistration,
    Job,
    Training,
    ReturnToSchool,
    Housing,
    HealthCare,
    Other,
    FromNewerVersion,
}

#[uniffi::remote(Enum)]
pub enum RecordKind {
    Youth,
    Contact,
    Tour,
    Action,
    Outcome,
    ReviewTask,
}

/// Declares the two shapes of a record kind (see the module documentation): `$new`, the
/// fields of a record being created, and `$read`, the same fields with the id and version
/// of the record as read. One field list, so the two cannot drift apart.
macro_rules! record_pair {
    (
        $model:ty;
        $(#[$new_meta:meta])* new $new:ident;
        $(#[$read_meta:meta])* read $read:ident;
        { $( $(#[$field_meta:meta])* $field:ident : $ty:ty, )+ }
    ) => {
        $(#[$new_meta])*
        #[derive(Debug, Clone, PartialEq, uniffi::Record)]
        pub struct $new {
            $( $(#[$field_meta])* pub $field: $ty, )+
        }

        $(#[$read_meta])*
        #[derive(Debug, Clone, PartialEq, uniffi::Record)]
        pub struct $read {
            /// The record's id (UUID).
            pub id: String,
            /// The version the record was read at. Opaque: keep it with the form and hand
            /// it back unchanged with the update.
            pub version: Vec<u8>,
            $( $(#[$field_meta])* pub $field: $ty, )+
        }

        impl StoredRecord for $read {
            type Model = $model;
            type New = $new;

            fn from_versioned(v: Versioned<$model>) -> Self {
                let fields = $new::from(v.record);
                $read {
                    id: v.id.to_string(),
                    version: v.version.to_bytes(),
                    $( $field: fields.$field, )+
                }
            }

            fn into_parts(self) -> (String, Vec<u8>, $new) {
                (self.id, self.version, $new { $( $field: self.$field, )+ })
            }
        }
    };
}

/// A record as read from the store, with its id and version (`Youth`, `Contact`…).
pub trait StoredRecord: Sized {
    type Model: Record;
    /// The same fields without id or version.
    type New: TryInto<Self::Model, Error = RepereError> + From<Self::Model>;

    fn from_versioned(v: Versioned<Self::Model>) -> Self;
    /// The id, the version the form was filled from, and the fields as edited.
    fn into_parts(self) -> (String, Vec<u8>, Self::New);
}

record_pair! {
    model::Youth;
    /// A young person being created. Dates are `YYYY-MM-DD`; ids are UUID strings.
    new NewYouth;
    /// A young person as read, with its id and version.
    read Youth;
    {
        team_id: String,
        identity_level: IdentityLevel,
        #[uniffi(default = None)]
        alias: Option<String>,
        #[uniffi(default = None)]
        first_name: Option<String>,
        #[uniffi(default = None)]
        last_name: Option<String>,
        #[uniffi(default = None)]
        birth_date: Option<String>,
        #[uniffi(default = None)]
        birth_year: Option<i32>,
        #[uniffi(default = None)]
        age_band: Option<AgeBand>,
        #[uniffi(default = None)]
        sex: Option<Sex>,
        #[uniffi(default = None)]
        phone: Option<String>,
        #[uniffi(default = None)]
        email: Option<String>,
        #[uniffi(default = None)]
        other_contact: Option<String>,
        #[uniffi(default = None)]
        home_commune: Option<String>,
        referral_source: ReferralSource,
        #[uniffi(default = None)]
        referral_detail: Option<String>,
        #[uniffi(default = None)]
        referral_date: Option<String>,
        #[uniffi(default = [])]
        profile_flags: Vec<ProfileFlag>,
        situation: Situation,
        #[uniffi(default = None)]
        followed_by: Option<Service>,
        first_contact_date: String,
        #[uniffi(default = None)]
        notice_given_on: Option<String>,
        status: YouthStatus,
    }
}

record_pair! {
    model::Contact;
    /// A contact being created. `occurred_at` is RFC 3339 with the device's UTC offset.
    new NewContact;
    /// A contact as read, with its id and version.
    read Contact;
    {
        team_id: String,
        #[uniffi(default = [])]
        youth_ids: Vec<String>,
        #[uniffi(default = None)]
        tour_id: Option<String>,
        #[uniffi(default = [])]
        member_ids: Vec<String>,
        occurred_at: String,
        commune: String,
        kind: ContactKind,
        notes: String,
        #[uniffi(default = [])]
        needs: Vec<Need>,
        #[uniffi(default = None)]
        next_step: Option<String>,
        #[uniffi(default = None)]
        next_step_due: Option<String>,
    }
}

record_pair! {
    model::Tour;
    /// A tour being created.
    new NewTour;
    /// A tour as read, with its id and version.
    read Tour;
    {
        team_id: String,
        date: String,
        #[uniffi(default = [])]
        communes: Vec<String>,
        status: TourStatus,
    }
}

record_pair! {
    model::Action;
    /// A mobilisation action being created.
    new NewAction;
    /// A mobilisation action as read, with its id and version.
    read Action;
    {
        team_id: String,
        youth_id: String,
        kind: ActionKind,
        start_date: String,
        #[uniffi(default = None)]
        end_date: Option<String>,
        status: ActionStatus,
        #[uniffi(default = None)]
        detail: Option<String>,
    }
}

record_pair! {
    model::Outcome;
    /// An outcome being created.
    new NewOutcome;
    /// An outcome as read, with its id and version.
    read Outcome;
    {
        team_id: String,
        youth_id: String,
        kind: OutcomeKind,
        date: String,
        #[uniffi(default = None)]
        organisation: Option<String>,
    }
}

/// Parses the string fields of one incoming record, collecting every bad one.
#[derive(Default)]
struct Parser(ValidationErrors);

impl Parser {
    fn uuid(&mut self, field: &'static str, s: &str) -> Uuid {
        Uuid::parse_str(s.trim()).unwrap_or_else(|_| {
            self.0.push(field, Problem::BadFormat);
            Uuid::nil()
        })
    }

    fn uuids<T: FromIterator<Uuid>>(&mut self, field: &'static str, items: &[String]) -> T {
        items.iter().map(|s| self.uuid(field, s)).collect()
    }

    fn opt_uuid(&mut self, field: &'static str, s: &Option<String>) -> Option<Uuid> {
        s.as_deref().map(|s| self.uuid(field, s))
    }

    fn date(&mut self, field: &'static str, s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").unwrap_or_else(|_| {
            self.0.push(field, Problem::BadFormat);
            NaiveDate::MIN
        })
    }

    fn opt_date(&mut self, field: &'static str, s: &Option<String>) -> Option<NaiveDate> {
        s.as_deref().map(|s| self.date(field, s))
    }

    fn instant(&mut self, field: &'static str, s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s.trim()).unwrap_or_else(|_| {
            self.0.push(field, Problem::BadFormat);
            DateTime::<chrono::Utc>::MIN_UTC.fixed_offset()
        })
    }

    fn finish<T>(self, value: T) -> Result<T, RepereError> {
        self.0
            .into_result()
            .map(|()| value)
            .map_err(|e| repere_core::Error::Invalid(e).into())
    }
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl TryFrom<NewYouth> for model::Youth {
    type Error = RepereError;
    fn try_from(y: NewYouth) -> Result<Self, RepereError> {
        let mut p = Parser::default();
        let v = model::Youth {
            team_id: p.uuid("team_id", &y.team_id),
            identity_level: y.identity_level,
            alias: y.alias,
            first_name: y.first_name,
            last_name: y.last_name,
            birth_date: p.opt_date("birth_date", &y.birth_date),
            birth_year: y.birth_year,
            age_band: y.age_band,
            sex: y.sex,
            phone: y.phone,
            email: y.email,
            other_contact: y.other_contact,
            home_commune: y.home_commune,
            referral_source: y.referral_source,
            referral_detail: y.referral_detail,
            referral_date: p.opt_date("referral_date", &y.referral_date),
            profile_flags: y.profile_flags.into_iter().collect(),
            situation: y.situation,
            followed_by: y.followed_by,
            first_contact_date: p.date("first_contact_date", &y.first_contact_date),
            notice_given_on: p.opt_date("notice_given_on", &y.notice_given_on),
            status: y.status,
        };
        p.finish(v)
    }
}

impl From<model::Youth> for NewYouth {
    fn from(y: model::Youth) -> Self {
        NewYouth {
            team_id: y.team_id.to_string(),
            identity_level: y.identity_level,
            alias: y.alias,
            first_name: y.first_name,
            last_name: y.last_name,
            birth_date: y.birth_date.map(date_str),
            birth_year: y.birth_year,
            age_band: y.age_band,
            sex: y.sex,
            phone: y.phone,
            email: y.email,
            other_contact: y.other_contact,
            home_commune: y.home_commune,
            referral_source: y.referral_source,
            referral_detail: y.referral_detail,
            referral_date: y.referral_date.map(date_str),
            profile_flags: y.profile_flags.into_iter().collect(),
            situation: y.situation,
            followed_by: y.followed_by,
            first_contact_date: date_str(y.first_contact_date),
            notice_given_on: y.notice_given_on.map(date_str),
            status: y.status,
        }
    }
}

impl TryFrom<NewContact> for model::Contact {
    type Error = RepereError;
    fn try_from(c: NewContact) -> Result<Self, RepereError> {
        let mut p = Parser::default();
        let v = model::Contact {
            team_id: p.uuid("team_id", &c.team_id),
            youth_ids: p.uuids("youth_ids", &c.youth_ids),
            tour_id: p.opt_uuid("tour_id", &c.tour_id),
            member_ids: p.uuids("member_ids", &c.member_ids),
            occurred_at: p.instant("occurred_at", &c.occurred_at),
            commune: c.commune,
            kind: c.kind,
            notes: c.notes,
            needs: c.needs.into_iter().collect(),
            next_step: c.next_step,
            next_step_due: p.opt_date("next_step_due", &c.next_step_due),
        };
        p.finish(v)
    }
}

impl From<model::Contact> for NewContact {
    fn from(c: model::Contact) -> Self {
        NewContact {
            team_id: c.team_id.to_string(),
            youth_ids: c.youth_ids.iter().map(Uuid::to_string).collect(),
            tour_id: c.tour_id.map(|t| t.to_string()),
            member_ids: c.member_ids.iter().map(Uuid::to_string).collect(),
            occurred_at: c.occurred_at.to_rfc3339(),
            commune: c.commune,
            kind: c.kind,
            notes: c.notes,
            needs: c.needs.into_iter().collect(),
            next_step: c.next_step,
            next_step_due: c.next_step_due.map(date_str),
        }
    }
}

impl TryFrom<NewTour> for model::Tour {
    type Error = RepereError;
    fn try_from(t: NewTour) -> Result<Self, RepereError> {
        let mut p = Parser::default();
        let v = model::Tour {
            team_id: p.uuid("team_id", &t.team_id),
            date: p.date("date", &t.date),
            communes: t.communes,
            status: t.status,
        };
        p.finish(v)
    }
}

impl From<model::Tour> for NewTour {
    fn from(t: model::Tour) -> Self {
        NewTour {
            team_id: t.team_id.to_string(),
            date: date_str(t.date),
            communes: t.communes,
            status: t.status,
        }
    }
}

impl TryFrom<NewAction> for model::Action {
    type Error = RepereError;
    fn try_from(a: NewAction) -> Result<Self, RepereError> {
        let mut p = Parser::default();
        let v = model::Action {
            team_id: p.uuid("team_id", &a.team_id),
            youth_id: p.uuid("youth_id", &a.youth_id),
            kind: a.kind,
            start_date: p.date("start_date", &a.start_date),
            end_date: p.opt_date("end_date", &a.end_date),
            status: a.status,
            detail: a.detail,
        };
        p.finish(v)
    }
}

impl From<model::Action> for NewAction {
    fn from(a: model::Action) -> Self {
        NewAction {
            team_id: a.team_id.to_string(),
            youth_id: a.youth_id.to_string(),
            kind: a.kind,
            start_date: date_str(a.start_date),
            end_date: a.end_date.map(date_str),
            status: a.status,
            detail: a.detail,
        }
    }
}

impl TryFrom<NewOutcome> for model::Outcome {
    type Error = RepereError;
    fn try_from(o: NewOutcome) -> Result<Self, RepereError> {
        let mut p = Parser::default();
        let v = model::Outcome {
            team_id: p.uuid("team_id", &o.team_id),
            youth_id: p.uuid("youth_id", &o.youth_id),
            kind: o.kind,
            date: p.date("date", &o.date),
            organisation: o.organisation,
        };
        p.finish(v)
    }
}

impl From<model::Outcome> for NewOutcome {
    fn from(o: model::Outcome) -> Self {
        NewOutcome {
            team_id: o.team_id.to_string(),
            youth_id: o.youth_id.to_string(),
            kind: o.kind,
            date: date_str(o.date),
            organisation: o.organisation,
        }
    }
}

pub fn parse_id(id: &str) -> Result<Uuid, RepereError> {
    Uuid::parse_str(id.trim()).map_err(|_| RepereError::NotFound {
        user_message: "Identifiant de fiche invalide.".to_string(),
    })
}

/// The version a form was filled from, as the shell handed it back.
pub fn parse_version(bytes: &[u8]) -> Result<Version, RepereError> {
    Version::from_bytes(bytes).ok_or_else(RepereError::unknown_version)
}
