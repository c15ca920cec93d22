//! Records as the shells see them: ids and dates as strings (UUID, ISO 8601), sets as
//! lists. Enums are core's own, exported as they are.

use chrono::{DateTime, FixedOffset, NaiveDate};
use repere_core::records::{
    self as model, ActionKind, ActionStatus, AgeBand, ContactKind, IdentityLevel, Need,
    OutcomeKind, ProfileFlag, ReferralSource, Service, Sex, Situation, TourStatus, YouthStatus,
};
use repere_core::{Problem, RecordKind, ValidationErrors};
use uuid::Uuid;

use crate::error::RepereError;

#[uniffi::remote(Enum)]
pub enum IdentityLevel {
    AliasOnly,
    FirstName,
    FullIdentity,
}

#[uniffi::remote(Enum)]
pub enum AgeBand {
    From16To17,
    From18To21,
    From22To25,
    From26To29,
}

#[uniffi::remote(Enum)]
pub enum Sex {
    Female,
    Male,
    Other,
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
}

#[uniffi::remote(Enum)]
pub enum ProfileFlag {
    CareLeaver,
    SchoolDropout,
    Disability,
    JusticeMeasure,
}

#[uniffi::remote(Enum)]
pub enum Situation {
    Neet,
    InEducation,
    InEmployment,
    InTraining,
    Unknown,
}

#[uniffi::remote(Enum)]
pub enum Service {
    MissionLocale,
    FranceTravail,
    CapEmploi,
}

#[uniffi::remote(Enum)]
pub enum YouthStatus {
    Identified,
    Mobilised,
    Helped,
    Closed,
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
}

#[uniffi::remote(Enum)]
pub enum TourStatus {
    Planned,
    InProgress,
    Done,
    Cancelled,
}

#[uniffi::remote(Enum)]
pub enum ActionKind {
    Chantier5Days,
    ChantierMonth,
    Sport,
    Culture,
    Appointment,
    Other,
}

#[uniffi::remote(Enum)]
pub enum ActionStatus {
    Planned,
    Done,
    NoShow,
    Cancelled,
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

/// A young person. Dates are `YYYY-MM-DD`; ids are UUID strings.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Youth {
    pub team_id: String,
    pub identity_level: IdentityLevel,
    pub alias: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<String>,
    pub birth_year: Option<i32>,
    pub age_band: Option<AgeBand>,
    pub sex: Option<Sex>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub other_contact: Option<String>,
    pub home_commune: Option<String>,
    pub referral_source: ReferralSource,
    pub referral_detail: Option<String>,
    pub referral_date: Option<String>,
    pub profile_flags: Vec<ProfileFlag>,
    pub situation: Situation,
    pub followed_by: Option<Service>,
    pub first_contact_date: String,
    pub notice_given_on: Option<String>,
    pub status: YouthStatus,
}

/// A contact. `occurred_at` is RFC 3339 with the device's UTC offset.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Contact {
    pub team_id: String,
    pub youth_ids: Vec<String>,
    pub tour_id: Option<String>,
    pub member_ids: Vec<String>,
    pub occurred_at: String,
    pub commune: String,
    pub kind: ContactKind,
    pub notes: String,
    pub needs: Vec<Need>,
    pub next_step: Option<String>,
    pub next_step_due: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Tour {
    pub team_id: String,
    pub date: String,
    pub communes: Vec<String>,
    pub status: TourStatus,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Action {
    pub team_id: String,
    pub youth_id: String,
    pub kind: ActionKind,
    pub start_date: String,
    pub end_date: Option<String>,
    pub status: ActionStatus,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Outcome {
    pub team_id: String,
    pub youth_id: String,
    pub kind: OutcomeKind,
    pub date: String,
    pub organisation: Option<String>,
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

impl TryFrom<Youth> for model::Youth {
    type Error = RepereError;
    fn try_from(y: Youth) -> Result<Self, RepereError> {
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

impl From<model::Youth> for Youth {
    fn from(y: model::Youth) -> Self {
        Youth {
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

impl TryFrom<Contact> for model::Contact {
    type Error = RepereError;
    fn try_from(c: Contact) -> Result<Self, RepereError> {
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

impl From<model::Contact> for Contact {
    fn from(c: model::Contact) -> Self {
        Contact {
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

impl TryFrom<Tour> for model::Tour {
    type Error = RepereError;
    fn try_from(t: Tour) -> Result<Self, RepereError> {
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

impl From<model::Tour> for Tour {
    fn from(t: model::Tour) -> Self {
        Tour {
            team_id: t.team_id.to_string(),
            date: date_str(t.date),
            communes: t.communes,
            status: t.status,
        }
    }
}

impl TryFrom<Action> for model::Action {
    type Error = RepereError;
    fn try_from(a: Action) -> Result<Self, RepereError> {
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

impl From<model::Action> for Action {
    fn from(a: model::Action) -> Self {
        Action {
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

impl TryFrom<Outcome> for model::Outcome {
    type Error = RepereError;
    fn try_from(o: Outcome) -> Result<Self, RepereError> {
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

impl From<model::Outcome> for Outcome {
    fn from(o: model::Outcome) -> Self {
        Outcome {
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
