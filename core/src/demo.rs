//! Fictional but realistic records (names, Meuse and Ardennes communes, dates), from a
//! seed: for the server's demo mode, the benchmarks and the tests. No real person's data.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Offset, Utc};
use uuid::Uuid;

use crate::records::{
    Action, ActionKind, ActionStatus, AgeBand, Contact, ContactKind, IdentityLevel, Need, Outcome,
    OutcomeKind, ProfileFlag, ReferralSource, Service, Sex, Situation, Tour, TourStatus, Youth,
    YouthStatus,
};

const FIRST_NAMES: &[(&str, Sex)] = &[
    ("Kévin", Sex::Male),
    ("Lucas", Sex::Male),
    ("Mathéo", Sex::Male),
    ("Enzo", Sex::Male),
    ("Dylan", Sex::Male),
    ("Théo", Sex::Male),
    ("Nathan", Sex::Male),
    ("Yanis", Sex::Male),
    ("Sofiane", Sex::Male),
    ("Jordan", Sex::Male),
    ("Maxime", Sex::Male),
    ("Hugo", Sex::Male),
    ("Léa", Sex::Female),
    ("Chloé", Sex::Female),
    ("Manon", Sex::Female),
    ("Océane", Sex::Female),
    ("Inès", Sex::Female),
    ("Jade", Sex::Female),
    ("Camille", Sex::Female),
    ("Laura", Sex::Female),
    ("Sarah", Sex::Female),
    ("Émilie", Sex::Female),
    ("Lou", Sex::Female),
    ("Anaïs", Sex::Female),
];
const LAST_NAMES: &[&str] = &[
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Schmitt", "Colin", "Renard", "Gérard", "Masson", "Jacquot", "Humbert",
];
const ALIASES: &[&str] = &[
    "Kéké", "Titi", "Le Grand", "Doudou", "Bibi", "Momo", "Zouzou", "Nono",
];
/// Communes of Meuse (55) and Ardennes (08), by INSEE code.
const COMMUNES: &[&str] = &[
    "55502", "55545", "55029", "55043", "55122", "55167", "55181", "55291", "55351", "55463",
    "55505", "08105", "08409", "08081", "08090", "08185", "08190", "08311", "08328", "08362",
    "08363", "08490",
];
const NOTES: &[&str] = &[
    "Rencontré devant la boulangerie, intéressé par le permis.",
    "Cherche un logement, hébergé chez un ami.",
    "A arrêté le lycée en première, veut travailler dans la mécanique.",
    "Orienté par la mairie. Souhaite faire un chantier jeunes.",
    "Premier contact timide, à revoir à la prochaine tournée.",
];

/// A deterministic generator of fictional records for one team.
pub struct DemoData {
    state: u64,
    pub team_id: Uuid,
    pub member_ids: [Uuid; 2],
    now: DateTime<Utc>,
}

impl DemoData {
    pub fn new(seed: u64, team_id: Uuid, member_ids: [Uuid; 2], now: DateTime<Utc>) -> DemoData {
        DemoData {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            team_id,
            member_ids,
            now,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: enough for fictional data, and no dependency.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn recent_day(&mut self, max_days_ago: i64) -> NaiveDate {
        let back = (self.next() % max_days_ago.max(1) as u64) as i64;
        (self.now - Duration::days(back)).date_naive()
    }

    pub fn commune(&mut self) -> String {
        self.pick(COMMUNES).to_string()
    }

    pub fn youth(&mut self) -> Youth {
        let first_contact_date = self.recent_day(700);
        let age = 16 + self.below(14) as i32;
        let (first, sex) = self.pick(FIRST_NAMES);
        let level = match self.below(10) {
            0..=1 => IdentityLevel::AliasOnly,
            2..=5 => IdentityLevel::FirstName,
            _ => IdentityLevel::FullIdentity,
        };
        // A birthday between 1 and 300 days before the first contact: exactly `age` then.
        let birth_date = first_contact_date
            .with_day(1)
            .and_then(|d| d.with_year(first_contact_date.year() - age))
            .map(|d| d - Duration::days(1 + self.below(300) as i64));
        let mut flags = BTreeSet::new();
        for flag in [
            ProfileFlag::CareLeaver,
            ProfileFlag::SchoolDropout,
            ProfileFlag::Disability,
            ProfileFlag::JusticeMeasure,
        ] {
            if self.chance(12) {
                flags.insert(flag);
            }
        }
        let full = level == IdentityLevel::FullIdentity;
        Youth {
            team_id: self.team_id,
            identity_level: level,
            alias: (level == IdentityLevel::AliasOnly || self.chance(10))
                .then(|| self.pick(ALIASES).to_string()),
            first_name: (level != IdentityLevel::AliasOnly).then(|| first.to_string()),
            last_name: full.then(|| self.pick(LAST_NAMES).to_string()),
            birth_date: if full { birth_date } else { None },
            birth_year: (!full && self.chance(60)).then(|| first_contact_date.year() - age),
            age_band: (!full).then(|| AgeBand::of_age(age)).flatten(),
            sex: Some(sex),
            phone: self.chance(50).then(|| {
                format!(
                    "06 {:02} {:02} {:02} {:02}",
                    self.below(100),
                    self.below(100),
                    self.below(100),
                    self.below(100)
                )
            }),
            email: None,
            other_contact: None,
            home_commune: Some(self.commune()),
            referral_source: self.pick(&[
                ReferralSource::TownHall,
                ReferralSource::Shop,
                ReferralSource::AssociationOrClub,
                ReferralSource::PartnerInstitution,
                ReferralSource::Peer,
                ReferralSource::Outreach,
            ]),
            referral_detail: None,
            referral_date: Some(first_contact_date),
            profile_flags: flags,
            situation: if self.chance(80) {
                Situation::Neet
            } else {
                Situation::InTraining
            },
            followed_by: self.chance(15).then_some(Service::MissionLocale),
            first_contact_date,
            notice_given_on: Some(first_contact_date),
            status: if self.chance(30) {
                YouthStatus::Mobilised
            } else {
                YouthStatus::Identified
            },
        }
    }

    pub fn contact(&mut self, youth_ids: &[Uuid]) -> Contact {
        let day = self.recent_day(365);
        let hour = 9 + self.below(9) as u32;
        let occurred_at = day
            .and_hms_opt(hour, self.below(60) as u32, 0)
            .map(|t| t.and_utc().with_timezone(&paris_winter_offset()))
            .unwrap_or_else(|| self.now.fixed_offset());
        let mut needs = BTreeSet::new();
        for need in [
            Need::Housing,
            Need::Mobility,
            Need::Employment,
            Need::Training,
        ] {
            if self.chance(25) {
                needs.insert(need);
            }
        }
        let next_step = self
            .chance(50)
            .then(|| "Rappeler pour le chantier".to_string());
        Contact {
            team_id: self.team_id,
            youth_ids: youth_ids.iter().copied().collect(),
            tour_id: None,
            member_ids: self.member_ids.iter().copied().collect(),
            occurred_at,
            commune: self.commune(),
            kind: self.pick(&[
                ContactKind::Street,
                ContactKind::TownHall,
                ContactKind::Phone,
                ContactKind::Event,
            ]),
            notes: self.pick(NOTES).to_string(),
            needs,
            next_step_due: next_step.as_ref().map(|_| day + Duration::days(7)),
            next_step,
        }
    }

    pub fn tour(&mut self) -> Tour {
        let communes = (0..3 + self.below(4)).map(|_| self.commune()).collect();
        Tour {
            team_id: self.team_id,
            date: self.recent_day(60),
            communes,
            status: TourStatus::Done,
        }
    }

    pub fn action(&mut self, youth_id: Uuid) -> Action {
        let start_date = self.recent_day(300);
        let kind = self.pick(&[
            ActionKind::Chantier5Days,
            ActionKind::Sport,
            ActionKind::Culture,
            ActionKind::Appointment,
        ]);
        Action {
            team_id: self.team_id,
            youth_id,
            kind,
            start_date,
            end_date: (kind == ActionKind::Chantier5Days).then(|| start_date + Duration::days(4)),
            status: ActionStatus::Done,
            detail: None,
        }
    }

    pub fn outcome(&mut self, youth_id: Uuid) -> Outcome {
        Outcome {
            team_id: self.team_id,
            youth_id,
            kind: self.pick(&[
                OutcomeKind::MissionLocaleRegistration,
                OutcomeKind::Job,
                OutcomeKind::Training,
            ]),
            date: self.recent_day(200),
            organisation: Some("Mission Locale du Nord Meusien".to_string()),
        }
    }
}

fn paris_winter_offset() -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap_or(Utc.fix())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::communes::Communes;

    #[test]
    fn demo_communes_exist() {
        for code in COMMUNES {
            assert!(Communes::global().get(code).is_some(), "{code}");
        }
    }
}
