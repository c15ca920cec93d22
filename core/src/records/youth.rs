use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data_map::{Category, Export, FieldData, KindData, Shown};
use super::validate::{
    NAME_MAX, SHORT_TEXT_MAX, ValidationContext, check_email, check_opt_text, check_phone,
};
use super::{FieldKind, Record, RecordKind, reach};
use crate::communes::Communes;
use crate::error::{Problem, ValidationErrors};
use crate::index::enum_str;
use crate::text::{fold, phonetic, words};

/// How much of the young person's identity is known: many are first met under an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityLevel {
    AliasOnly,
    FirstName,
    FullIdentity,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgeBand {
    #[serde(rename = "16-17")]
    From16To17,
    #[serde(rename = "18-21")]
    From18To21,
    #[serde(rename = "22-25")]
    From22To25,
    #[serde(rename = "26-29")]
    From26To29,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

impl AgeBand {
    pub fn of_age(age: i32) -> Option<Self> {
        match age {
            16..=17 => Some(AgeBand::From16To17),
            18..=21 => Some(AgeBand::From18To21),
            22..=25 => Some(AgeBand::From22To25),
            26..=29 => Some(AgeBand::From26To29),
            _ => None,
        }
    }

    /// A representative age, for "~19 ans" when only the band is known.
    pub fn midpoint(self) -> Option<i32> {
        match self {
            AgeBand::From16To17 => Some(16),
            AgeBand::From18To21 => Some(19),
            AgeBand::From22To25 => Some(23),
            AgeBand::From26To29 => Some(27),
            AgeBand::FromNewerVersion => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// Who pointed the young person out ("signalement").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralSource {
    TownHall,
    Shop,
    AssociationOrClub,
    /// ASE, PJJ, SPIP, MDPH, Éducation nationale, CAF, social landlord…
    PartnerInstitution,
    PhoneLine,
    Website,
    SocialNetwork,
    SelfReferral,
    Peer,
    Outreach,
    Other,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// Sensitive flags: flags only, never free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileFlag {
    CareLeaver,
    SchoolDropout,
    Disability,
    JusticeMeasure,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// The situation on the day of first contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Situation {
    /// In no employment, education or training.
    Neet,
    InEducation,
    InEmployment,
    InTraining,
    Unknown,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// The public employment services whose follow-up makes a young person not "invisible".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    MissionLocale,
    FranceTravail,
    CapEmploi,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YouthStatus {
    Identified,
    Mobilised,
    Helped,
    Closed,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// A young person ("jeune").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Youth {
    pub team_id: Uuid,
    pub identity_level: IdentityLevel,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub birth_year: Option<i32>,
    #[serde(default)]
    pub age_band: Option<AgeBand>,
    #[serde(default)]
    pub sex: Option<Sex>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Another way to reach them (a social network handle, a relative…).
    #[serde(default)]
    pub other_contact: Option<String>,
    #[serde(default)]
    pub home_commune: Option<String>,
    pub referral_source: ReferralSource,
    #[serde(default)]
    pub referral_detail: Option<String>,
    #[serde(default)]
    pub referral_date: Option<NaiveDate>,
    #[serde(default)]
    pub profile_flags: BTreeSet<ProfileFlag>,
    pub situation: Situation,
    #[serde(default)]
    pub followed_by: Option<Service>,
    pub first_contact_date: NaiveDate,
    /// When the GDPR information notice was given.
    #[serde(default)]
    pub notice_given_on: Option<NaiveDate>,
    pub status: YouthStatus,
}

impl Youth {
    /// In no job, school or training and followed by no public employment service.
    pub fn is_invisible(&self) -> bool {
        self.situation == Situation::Neet && self.followed_by.is_none()
    }

    /// The name shown in lists: alias in guillemets, first name, or first name and initial.
    pub fn display_name(&self) -> String {
        let first = self
            .first_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let alias = self
            .alias
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let last_initial = self
            .last_name
            .as_deref()
            .and_then(|l| l.trim().chars().next())
            .map(|c| c.to_uppercase().to_string());
        match (first, alias, last_initial) {
            (Some(f), _, Some(i)) => format!("{f} {i}."),
            (Some(f), _, None) => f.to_string(),
            (None, Some(a), _) => format!("« {a} »"),
            (None, None, _) => "(sans nom)".to_string(),
        }
    }

    /// Age on `day`, exact from the birth date, approximate from the year or band.
    pub fn approximate_age(&self, day: NaiveDate) -> Option<i32> {
        if let Some(b) = self.birth_date {
            return Some(age_on(b, day));
        }
        if let Some(y) = self.birth_year {
            return Some(day.year() - y);
        }
        self.age_band.and_then(AgeBand::midpoint)
    }
}

pub fn age_on(birth: NaiveDate, day: NaiveDate) -> i32 {
    let mut age = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

impl Record for Youth {
    const KIND: RecordKind = RecordKind::Youth;
    const SCHEMA: &'static [(&'static str, FieldKind)] = &[
        ("team_id", FieldKind::Scalar),
        ("identity_level", FieldKind::Scalar),
        ("alias", FieldKind::Scalar),
        ("first_name", FieldKind::Scalar),
        ("last_name", FieldKind::Scalar),
        ("birth_date", FieldKind::Scalar),
        ("birth_year", FieldKind::Scalar),
        ("age_band", FieldKind::Scalar),
        ("sex", FieldKind::Scalar),
        ("phone", FieldKind::Scalar),
        ("email", FieldKind::Scalar),
        ("other_contact", FieldKind::Scalar),
        ("home_commune", FieldKind::Scalar),
        ("referral_source", FieldKind::Scalar),
        ("referral_detail", FieldKind::Scalar),
        ("referral_date", FieldKind::Scalar),
        ("profile_flags", FieldKind::Set),
        ("situation", FieldKind::Scalar),
        ("followed_by", FieldKind::Scalar),
        ("first_contact_date", FieldKind::Scalar),
        ("notice_given_on", FieldKind::Scalar),
        ("status", FieldKind::Scalar),
    ];

    const DATA_MAP: KindData = KindData {
        title: "Jeune",
        about: "La fiche d'un jeune de 16 à 29 ans repéré par le binôme : qui il est, comment le \
                joindre, qui l'a signalé, sa situation au premier contact et où en est son \
                accompagnement.",
        retention: "la durée de l'organisation après le dernier contact (2 ans par défaut), \
                    puis effacement avec tout ce qui l'accompagne",
        fields: &[
            FieldData {
                field: "team_id",
                category: Category::TechnicalId,
                purpose: "Rattacher la fiche à l'équipe qui suit le jeune : décide quelles \
                          tablettes et quels coordinateurs la voient.",
                pages: Shown::Partly("nom de l'équipe"),
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("nom de l'équipe"),
            },
            FieldData {
                field: "identity_level",
                category: Category::Activity,
                purpose: "Dire ce que l'on sait de son identité (surnom, prénom, identité \
                          complète) : décide des champs exigés.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "alias",
                category: Category::Identity,
                purpose: "Nommer et retrouver un jeune connu seulement sous un surnom ; repérer \
                          les doublons.",
                pages: Shown::Partly("affiché à défaut de prénom ; recherche par nom"),
                tablet: &["youth_index", "youth_fts"],
                exports: &[Export::Named],
                exported_as: None,
            },
            FieldData {
                field: "first_name",
                category: Category::Identity,
                purpose: "Nommer et retrouver le jeune ; repérer les doublons.",
                pages: Shown::Yes,
                tablet: &["youth_index", "youth_fts"],
                exports: &[Export::Named],
                exported_as: None,
            },
            FieldData {
                field: "last_name",
                category: Category::Identity,
                purpose: "Identifier le jeune quand son identité complète est connue ; repérer \
                          les doublons.",
                pages: Shown::Partly("initiale seulement ; recherche par nom"),
                tablet: &["youth_index", "youth_fts"],
                exports: &[Export::Named],
                exported_as: None,
            },
            FieldData {
                field: "birth_date",
                category: Category::Identity,
                purpose: "Vérifier l'âge (16 à 29 ans au premier contact) et en déduire la \
                          tranche d'âge ; repérer les doublons.",
                pages: Shown::Partly("l'âge seulement"),
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("tranche d'âge au premier contact"),
            },
            FieldData {
                field: "birth_year",
                category: Category::Personal,
                purpose: "L'âge approché quand la date de naissance n'est pas connue ; repérer \
                          les doublons.",
                pages: Shown::Partly("l'âge seulement"),
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("tranche d'âge au premier contact"),
            },
            FieldData {
                field: "age_band",
                category: Category::Personal,
                purpose: "La tranche d'âge quand ni la date ni l'année de naissance ne sont \
                          connues.",
                pages: Shown::Partly("l'âge approché"),
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("tranche d'âge au premier contact"),
            },
            FieldData {
                field: "sex",
                category: Category::Personal,
                purpose: "Les indicateurs du financeur par sexe.",
                pages: Shown::Yes,
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: None,
            },
            FieldData {
                field: "phone",
                category: Category::Contact,
                purpose: "Joindre le jeune.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "email",
                category: Category::Contact,
                purpose: "Joindre le jeune.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "other_contact",
                category: Category::Contact,
                purpose: "Un autre moyen de le joindre (réseau social, proche…) : peut nommer un \
                          tiers.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "home_commune",
                category: Category::Location,
                purpose: "Savoir où vit le jeune ; les indicateurs par commune et \
                          intercommunalité.",
                pages: Shown::Yes,
                tablet: &["youth_index", "youth_fts"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some(
                    "code, nom et intercommunalité ; à défaut, la commune de la première visite. \
                     Pseudonymisé : l'intercommunalité seule quand moins de 5 jeunes de l'export \
                     partagent la commune, rien quand moins de 5 y sont ainsi regroupés",
                ),
            },
            FieldData {
                field: "referral_source",
                category: Category::Activity,
                purpose: "Savoir qui a signalé le jeune (mairie, commerce, institution \
                          partenaire…) ; les indicateurs par source.",
                pages: Shown::Yes,
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: None,
            },
            FieldData {
                field: "referral_detail",
                category: Category::FreeText,
                purpose: "Préciser le signalement (qui, quelle structure) : peut nommer un tiers.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "referral_date",
                category: Category::Date,
                purpose: "Dater le signalement.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "profile_flags",
                category: Category::Special,
                purpose: "Adapter l'accompagnement et compter les publics prioritaires : sortie \
                          de l'ASE, décrochage scolaire, handicap (MDPH/RQTH), mesure de justice \
                          (PJJ/SPIP). Des cases, jamais de texte.",
                pages: Shown::Yes,
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some(
                    "pseudonymisé et nominatif : seulement si la case « indicateurs de profil » \
                     est cochée, export noté au journal ; indicateurs : des nombres",
                ),
            },
            FieldData {
                field: "situation",
                category: Category::Activity,
                purpose: "Savoir si le jeune est sans emploi, études ni formation au premier \
                          contact (« invisible ») ; les indicateurs.",
                pages: Shown::Yes,
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("réduite à « invisible » oui ou non"),
            },
            FieldData {
                field: "followed_by",
                category: Category::Activity,
                purpose: "Savoir si un service public de l'emploi le suit déjà (Mission Locale, \
                          France Travail, Cap emploi) ; les indicateurs.",
                pages: Shown::Yes,
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("réduit à « invisible » oui ou non"),
            },
            FieldData {
                field: "first_contact_date",
                category: Category::Date,
                purpose: "Dater le repérage ; la période des indicateurs.",
                pages: Shown::Yes,
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some(
                    "la plus ancienne de cette date et des visites ; pseudonymisé : le mois \
                     (AAAA-MM)",
                ),
            },
            FieldData {
                field: "notice_given_on",
                category: Category::Date,
                purpose: "Prouver que l'information RGPD a été remise au jeune.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "status",
                category: Category::Activity,
                purpose: "Où en est l'accompagnement (repéré, mobilisé, coup de main, clos).",
                pages: Shown::Yes,
                tablet: &["youth_index"],
                exports: &[Export::Pseudonymised, Export::Named],
                exported_as: None,
            },
        ],
    };

    const DERIVED: &'static [(&'static str, &'static str)] = &[("youth_index", "id")];

    fn write_derived(&self, conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        let folded = |v: &Option<String>| v.as_deref().map(fold).filter(|s| !s.is_empty());
        let (first, alias, last) = (
            folded(&self.first_name),
            folded(&self.alias),
            folded(&self.last_name),
        );
        let phon = |v: &Option<String>| v.as_deref().and_then(|s| words(s).next()).map(phonetic);
        conn.prepare_cached(
            "INSERT INTO youth_index (id, team_id, display_name, first_folded, alias_folded,
            last_folded, phon_first, phon_alias, phon_last, birth_date, birth_year, age_band,
            home_commune, status, first_contact_date, invisible, sex, referral_source,
            profile_flags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19)",
        )?
        .execute(params![
            bid,
            self.team_id.as_bytes().as_slice(),
            self.display_name(),
            first,
            alias,
            last,
            phon(&first),
            phon(&alias),
            phon(&last),
            self.birth_date.map(|d| d.to_string()),
            self.birth_year
                .or(self.birth_date.map(|d| chrono::Datelike::year(&d))),
            self.age_band.as_ref().map(enum_str),
            self.home_commune,
            enum_str(&self.status),
            self.first_contact_date.to_string(),
            self.is_invisible(),
            self.sex.as_ref().map(enum_str),
            enum_str(&self.referral_source),
            self.profile_flags
                .iter()
                .map(enum_str)
                .collect::<Vec<_>>()
                .join(" "),
        ])?;
        let rowid = conn.last_insert_rowid();
        let names = [first, alias, last]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let place = self
            .home_commune
            .as_deref()
            .and_then(|c| Communes::global().get(c))
            .map(|c| fold(c.name))
            .unwrap_or_default();
        conn.prepare_cached("INSERT INTO youth_fts (rowid, names, place) VALUES (?1, ?2, ?3)")?
            .execute(params![rowid, names, place])?;
        reach::youth_written(conn, bid)
    }

    /// The search rows go first: `youth_fts` is keyed by the index row's rowid.
    fn remove_derived(conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        let rowid: Option<i64> = conn
            .prepare_cached("SELECT rowid FROM youth_index WHERE id = ?1")?
            .query_row([bid], |r| r.get(0))
            .optional()?;
        if let Some(rowid) = rowid {
            conn.prepare_cached("DELETE FROM youth_fts WHERE rowid = ?1")?
                .execute([rowid])?;
            conn.prepare_cached("DELETE FROM youth_index WHERE rowid = ?1")?
                .execute([rowid])?;
        }
        Ok(())
    }

    fn clear_derived(conn: &Connection) -> crate::error::Result<()> {
        conn.execute_batch("DELETE FROM youth_fts; DELETE FROM youth_index;")?;
        Ok(())
    }

    fn team_id(&self) -> Uuid {
        self.team_id
    }

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        check_opt_text(&mut errs, "alias", &self.alias, NAME_MAX);
        check_opt_text(&mut errs, "first_name", &self.first_name, NAME_MAX);
        check_opt_text(&mut errs, "last_name", &self.last_name, NAME_MAX);
        let missing = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        match self.identity_level {
            IdentityLevel::AliasOnly => {
                if missing(&self.alias) && missing(&self.first_name) {
                    errs.push("alias", Problem::Required);
                }
            }
            IdentityLevel::FirstName => {
                if missing(&self.first_name) {
                    errs.push("first_name", Problem::Required);
                }
            }
            IdentityLevel::FullIdentity => {
                if missing(&self.first_name) {
                    errs.push("first_name", Problem::Required);
                }
                if missing(&self.last_name) {
                    errs.push("last_name", Problem::Required);
                }
                if self.birth_date.is_none() {
                    errs.push("birth_date", Problem::Required);
                }
            }
            IdentityLevel::FromNewerVersion => {}
        }

        ctx.check_past_date(&mut errs, "first_contact_date", self.first_contact_date);
        let first = self.first_contact_date;
        match (self.birth_date, self.birth_year, self.age_band) {
            (None, None, None) => errs.push("age_band", Problem::Required),
            (Some(b), year, band) => {
                let age = age_on(b, first);
                if !(16..=29).contains(&age) {
                    errs.push("birth_date", Problem::AgeOutOfRange);
                } else if year.is_some_and(|y| y != b.year()) {
                    errs.push(
                        "birth_year",
                        Problem::Inconsistent(
                            "année de naissance différente de la date de naissance",
                        ),
                    );
                } else if band.is_some_and(|band| AgeBand::of_age(age) != Some(band)) {
                    errs.push(
                        "age_band",
                        Problem::Inconsistent("tranche d'âge différente de la date de naissance"),
                    );
                }
            }
            (None, Some(y), _) => {
                // Born in year y, the age on the first contact is (diff - 1) or diff.
                let diff = first.year() - y;
                if !(16..=30).contains(&diff) {
                    errs.push("birth_year", Problem::AgeOutOfRange);
                }
            }
            (None, None, Some(_)) => {}
        }

        if let Some(p) = &self.phone {
            check_phone(&mut errs, "phone", p);
        }
        if let Some(e) = &self.email {
            check_email(&mut errs, "email", e);
        }
        check_opt_text(
            &mut errs,
            "other_contact",
            &self.other_contact,
            SHORT_TEXT_MAX,
        );
        if let Some(c) = &self.home_commune {
            ctx.check_commune(&mut errs, "home_commune", c);
        }
        check_opt_text(
            &mut errs,
            "referral_detail",
            &self.referral_detail,
            SHORT_TEXT_MAX,
        );
        if let Some(d) = self.referral_date {
            ctx.check_past_date(&mut errs, "referral_date", d);
        }
        if let Some(d) = self.notice_given_on {
            ctx.check_past_date(&mut errs, "notice_given_on", d);
        }
        errs.into_result()
    }
}
