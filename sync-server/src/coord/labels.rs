//! French labels of the record values, and date formats, for the pages.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use repere_core::RecordKind;
use repere_core::indicators::{Dimension, Granularity};
use repere_core::records::{
    ActionKind, ActionStatus, ContactKind, IdentityLevel, Need, OutcomeKind, ProfileFlag,
    ReferralSource, ReviewTaskStatus, Service, Sex, Situation, YouthStatus,
};

use super::paris;

/// How a value set by a newer app version shows on the pages.
pub const NEWER_VERSION: &str = "Valeur d'une version plus récente";

pub fn contact_kind(k: ContactKind) -> &'static str {
    match k {
        ContactKind::Street => "Rue",
        ContactKind::Home => "Domicile",
        ContactKind::TownHall => "Mairie",
        ContactKind::PartnerPremises => "Locaux d'un partenaire",
        ContactKind::Event => "Événement",
        ContactKind::Phone => "Téléphone",
        ContactKind::SocialNetwork => "Réseaux sociaux",
        ContactKind::Other => "Autre",
        ContactKind::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn need(n: Need) -> &'static str {
    match n {
        Need::Housing => "Logement",
        Need::Health => "Santé",
        Need::Mobility => "Mobilité",
        Need::Employment => "Emploi",
        Need::Training => "Formation",
        Need::Rights => "Accès aux droits",
        Need::Other => "Autre",
        Need::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn youth_status(s: YouthStatus) -> &'static str {
    match s {
        YouthStatus::Identified => "Repéré",
        YouthStatus::Mobilised => "Mobilisé",
        YouthStatus::Helped => "Coup de main",
        YouthStatus::Closed => "Clos",
        YouthStatus::FromNewerVersion => NEWER_VERSION,
    }
}

pub const YOUTH_STATUSES: [YouthStatus; 4] = [
    YouthStatus::Identified,
    YouthStatus::Mobilised,
    YouthStatus::Helped,
    YouthStatus::Closed,
];

pub fn profile_flag(f: ProfileFlag) -> &'static str {
    match f {
        ProfileFlag::CareLeaver => "Sortant ASE",
        ProfileFlag::SchoolDropout => "Décrocheur scolaire",
        ProfileFlag::Disability => "Handicap",
        ProfileFlag::JusticeMeasure => "Mesure de justice",
        ProfileFlag::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn identity_level(l: IdentityLevel) -> &'static str {
    match l {
        IdentityLevel::AliasOnly => "Surnom seulement",
        IdentityLevel::FirstName => "Prénom",
        IdentityLevel::FullIdentity => "Identité complète",
        IdentityLevel::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn sex(s: Sex) -> &'static str {
    match s {
        Sex::Female => "Femme",
        Sex::Male => "Homme",
        Sex::Other => "Autre",
        Sex::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn referral(r: ReferralSource) -> &'static str {
    match r {
        ReferralSource::TownHall => "Mairie",
        ReferralSource::Shop => "Commerce",
        ReferralSource::AssociationOrClub => "Association ou club",
        ReferralSource::PartnerInstitution => "Institution partenaire",
        ReferralSource::PhoneLine => "Numéro unique",
        ReferralSource::Website => "Site internet",
        ReferralSource::SocialNetwork => "Réseaux sociaux",
        ReferralSource::SelfReferral => "Le jeune lui-même",
        ReferralSource::Peer => "Un pair",
        ReferralSource::Outreach => "Aller-vers du binôme",
        ReferralSource::Other => "Autre",
        ReferralSource::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn situation(s: Situation) -> &'static str {
    match s {
        Situation::Neet => "Ni en emploi, ni en études, ni en formation",
        Situation::InEducation => "En études",
        Situation::InEmployment => "En emploi",
        Situation::InTraining => "En formation",
        Situation::Unknown => "Non renseignée",
        Situation::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn service(s: Service) -> &'static str {
    match s {
        Service::MissionLocale => "Mission Locale",
        Service::FranceTravail => "France Travail",
        Service::CapEmploi => "Cap emploi",
        Service::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn action_kind(k: ActionKind) -> &'static str {
    match k {
        ActionKind::Chantier5Days => "Chantier jeunes (5 jours)",
        ActionKind::ChantierMonth => "Chantier jeunes (1 mois)",
        ActionKind::Sport => "Activité sportive",
        ActionKind::Culture => "Activité culturelle",
        ActionKind::Appointment => "Rendez-vous",
        ActionKind::Other => "Autre",
        ActionKind::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn action_status(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::Planned => "Prévue",
        ActionStatus::Done => "Réalisée",
        ActionStatus::NoShow => "Absence",
        ActionStatus::Cancelled => "Annulée",
        ActionStatus::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn outcome_kind(k: OutcomeKind) -> &'static str {
    match k {
        OutcomeKind::MissionLocaleRegistration => "Inscription Mission Locale",
        OutcomeKind::FranceTravailRegistration => "Inscription France Travail",
        OutcomeKind::CapEmploiRegistration => "Inscription Cap emploi",
        OutcomeKind::Job => "Emploi",
        OutcomeKind::Training => "Formation",
        OutcomeKind::ReturnToSchool => "Retour en scolarité",
        OutcomeKind::Housing => "Logement",
        OutcomeKind::HealthCare => "Soins",
        OutcomeKind::Other => "Autre",
        OutcomeKind::FromNewerVersion => NEWER_VERSION,
    }
}

/// The outcome counters' ids (`OutcomeCounts::by_kind`) in French.
pub fn outcome_id(id: &str) -> &'static str {
    match id {
        "mission_locale_registration" => "Inscription Mission Locale",
        "france_travail_registration" => "Inscription France Travail",
        "cap_emploi_registration" => "Inscription Cap emploi",
        "job" => "Emploi",
        "training" => "Formation",
        "return_to_school" => "Retour en scolarité",
        "housing" => "Logement",
        "health_care" => "Soins",
        _ => "Autre",
    }
}

pub fn task_status(s: ReviewTaskStatus) -> &'static str {
    match s {
        ReviewTaskStatus::Open => "En attente de réponse",
        ReviewTaskStatus::Answered => "Répondue",
        ReviewTaskStatus::Closed => "Close",
        ReviewTaskStatus::FromNewerVersion => NEWER_VERSION,
    }
}

pub fn granularity(g: Granularity) -> &'static str {
    match g {
        Granularity::Month => "Mois",
        Granularity::Quarter => "Trimestre",
        Granularity::Whole => "Période entière",
    }
}

pub fn dimension(d: Dimension) -> &'static str {
    match d {
        Dimension::Team => "Équipe",
        Dimension::Commune => "Commune",
        Dimension::Epci => "Intercommunalité (EPCI)",
        Dimension::ReferralSource => "Origine du signalement",
        Dimension::AgeBand => "Tranche d'âge",
        Dimension::Sex => "Sexe",
        Dimension::ProfileFlag => "Profil",
    }
}

/// A record kind's French name.
pub fn record_kind(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Youth => "Fiche jeune",
        RecordKind::Contact => "Visite",
        RecordKind::Tour => "Tournée",
        RecordKind::Action => "Action",
        RecordKind::Outcome => "Solution",
        RecordKind::ReviewTask => "Question de la coordination",
    }
}

/// A record field's French name, for the history.
pub fn field(name: &str) -> &str {
    match name {
        "team_id" => "équipe",
        "youth_ids" => "jeunes",
        "tour_id" => "tournée",
        "member_ids" => "membres présents",
        "occurred_at" => "date",
        "commune" => "commune",
        "kind" => "type",
        "notes" => "notes",
        "needs" => "besoins",
        "next_step" => "prochaine étape",
        "next_step_due" => "échéance",
        "question" => "question",
        "answer" => "réponse",
        "status" => "statut",
        "identity_level" => "identité connue",
        "alias" => "surnom",
        "first_name" => "prénom",
        "last_name" => "nom",
        "birth_date" => "date de naissance",
        "birth_year" => "année de naissance",
        "age_band" => "tranche d'âge",
        "sex" => "sexe",
        "phone" => "téléphone",
        "email" => "courriel",
        "other_contact" => "autre moyen de contact",
        "home_commune" => "commune de résidence",
        "referral_source" => "signalé par",
        "referral_detail" => "précision sur le signalement",
        "referral_date" => "date du signalement",
        "profile_flags" => "profil",
        "situation" => "situation au premier contact",
        "followed_by" => "suivi par",
        "first_contact_date" => "premier contact",
        "notice_given_on" => "information RGPD donnée le",
        "youth_id" => "jeune",
        "start_date" => "début",
        "end_date" => "fin",
        "detail" => "précision",
        "date" => "date",
        "organisation" => "organisme",
        "contact_id" => "visite",
        "asked_by" => "posée par",
        "asked_at" => "posée le",
        "answered_by" => "répondue par",
        "answered_at" => "répondue le",
        "communes" => "communes",
        other => other,
    }
}

/// 05/03/2025
pub fn day(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// A server time, in French local time: 05/03/2025 14:07
pub fn server_time(t: DateTime<Utc>) -> String {
    paris(t).format("%d/%m/%Y %H:%M").to_string()
}

/// A time as entered on a device, with its own offset: 05/03/2025 14:07
pub fn device_time(t: &DateTime<FixedOffset>) -> String {
    t.format("%d/%m/%Y %H:%M").to_string()
}
