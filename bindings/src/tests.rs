//! The skin's own logic: versions carried by records, what creation refuses, error mapping.
//! (The Kotlin tests drive the same calls through the generated bindings and a live server.)

use std::path::PathBuf;
use std::sync::Arc;

use repere_core::Error as CoreError;
use repere_core::sync::DecodeError;

use repere_core::records::{AgeBand, IdentityLevel, ReferralSource, Situation, YouthStatus};

use crate::records::NewYouth;
use crate::{RepereError, RepereStore};

/// A store in a fresh temporary directory, removed when dropped.
struct TempStore {
    dir: PathBuf,
    store: Arc<RepereStore>,
}

impl TempStore {
    fn new() -> TempStore {
        let dir = std::env::temp_dir().join(format!("repere-ffi-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.db").to_string_lossy().into_owned();
        let store = RepereStore::open(path, vec![7; 32]).unwrap();
        TempStore { dir, store }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lea() -> NewYouth {
    let today = chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    NewYouth {
        team_id: "0190a5c0-0000-7000-8000-000000000001".into(),
        identity_level: IdentityLevel::FirstName,
        alias: None,
        first_name: Some("Léa".into()),
        last_name: None,
        birth_date: None,
        birth_year: None,
        age_band: Some(AgeBand::From18To21),
        sex: None,
        phone: None,
        email: None,
        other_contact: None,
        home_commune: Some("55502".into()),
        referral_source: ReferralSource::Outreach,
        referral_detail: None,
        referral_date: None,
        profile_flags: vec![],
        situation: Situation::Neet,
        followed_by: None,
        first_contact_date: today,
        notice_given_on: None,
        status: YouthStatus::Identified,
    }
}

fn codes(e: &RepereError) -> Vec<(String, String)> {
    match e {
        RepereError::Validation { fields, .. } => fields
            .iter()
            .map(|f| (f.field.clone(), f.code.clone()))
            .collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_record_read_carries_its_version_and_an_update_returns_the_new_one() {
    let t = TempStore::new();
    let id = t.store.create_youth(lea()).unwrap();
    let read = t.store.get_youth(id.clone()).unwrap();
    assert_eq!(read.id, id);
    assert!(!read.version.is_empty());
    let mut form = read.clone();
    form.alias = Some("Lele".into());
    let saved = t.store.update_youth(form).unwrap();
    assert_eq!(saved.alias.as_deref(), Some("Lele"));
    assert_ne!(saved.version, read.version);
    assert_eq!(t.store.get_youth(id).unwrap(), saved);
}

#[test]
fn an_update_without_a_usable_version_writes_nothing() {
    let t = TempStore::new();
    let id = t.store.create_youth(lea()).unwrap();
    let read = t.store.get_youth(id.clone()).unwrap();
    for version in [vec![], vec![1; 5], vec![1; 32]] {
        let mut form = read.clone();
        form.alias = Some("Lele".into());
        form.version = version;
        assert!(matches!(
            t.store.update_youth(form),
            Err(RepereError::UnknownVersion { .. })
        ));
    }
    assert_eq!(t.store.get_youth(id).unwrap(), read);
}

#[test]
fn values_from_a_newer_version_are_never_written() {
    let t = TempStore::new();
    let mut new = lea();
    new.situation = Situation::FromNewerVersion;
    new.age_band = Some(AgeBand::FromNewerVersion);
    let mut found = codes(&t.store.create_youth(new).unwrap_err());
    found.sort();
    assert_eq!(
        found,
        [
            ("age_band".to_string(), "newer_version_value".to_string()),
            ("situation".to_string(), "newer_version_value".to_string()),
        ]
    );
    assert_eq!(t.store.unsynced_count().unwrap(), 0);
    let id = t.store.create_youth(lea()).unwrap();
    let mut form = t.store.get_youth(id).unwrap();
    form.status = YouthStatus::FromNewerVersion;
    assert_eq!(
        codes(&t.store.update_youth(form).unwrap_err()),
        [("status".to_string(), "newer_version_value".to_string())]
    );
}

#[test]
fn new_core_errors_have_their_own_cases_and_french_sentences() {
    let one = RepereError::from(CoreError::UnsentChanges { count: 1 });
    let RepereError::UnsentChanges {
        count,
        user_message,
    } = one
    else {
        panic!("{one:?}")
    };
    assert_eq!(count, 1);
    assert!(user_message.starts_with("1 fiche modifiée sur cette tablette n'a pas été envoyée"));
    let RepereError::UnsentChanges { user_message, .. } =
        RepereError::from(CoreError::UnsentChanges { count: 3 })
    else {
        panic!()
    };
    assert!(
        user_message.starts_with("3 fiches modifiées sur cette tablette n'ont pas été envoyées")
    );
    assert!(matches!(
        RepereError::from(CoreError::Protocol(DecodeError::NotAMessage)),
        RepereError::InvalidServerResponse { .. }
    ));
    assert!(matches!(
        RepereError::from(CoreError::NoCommonVersion { min: 1, max: 2 }),
        RepereError::IncompatibleServer { .. }
    ));
    assert!(matches!(
        RepereError::from(CoreError::NoRecord {
            id: uuid::Uuid::nil()
        }),
        RepereError::NotFound { .. }
    ));
    assert!(matches!(
        RepereError::from(CoreError::CorruptStore("meta")),
        RepereError::Storage { .. }
    ));
}

#[test]
fn an_insecure_or_invalid_server_address_is_refused_before_anything_is_sent() {
    let t = TempStore::new();
    let err = t
        .store
        .enrol(
            "http://192.0.2.1:8080".into(),
            "ABCD-EFGH-JK".into(),
            "tablette".into(),
            false,
        )
        .unwrap_err();
    let RepereError::InvalidServerAddress { user_message } = err else {
        panic!("{err:?}")
    };
    assert!(
        user_message.starts_with("Adresse du serveur non sécurisée : utilisez https://"),
        "{user_message}"
    );
    let err = t
        .store
        .enrol(
            "sync.example.org".into(),
            "ABCD-EFGH-JK".into(),
            "tablette".into(),
            false,
        )
        .unwrap_err();
    let RepereError::InvalidServerAddress { user_message } = err else {
        panic!("{err:?}")
    };
    assert!(user_message.starts_with("Adresse du serveur invalide"));
    assert_eq!(t.store.enrolment().unwrap(), None);
    // Loopback http is accepted (tests, a server on the same machine): nothing listens on
    // port 9, so the server is unreachable rather than refused.
    assert!(matches!(
        t.store.enrol(
            "http://127.0.0.1:9".into(),
            "ABCD-EFGH-JK".into(),
            "tablette".into(),
            false
        ),
        Err(RepereError::NetworkUnavailable { .. })
    ));
}

#[test]
fn a_break_the_glass_request_is_checked_here_and_listed_as_pending() {
    let t = TempStore::new();
    let reason = "Urgence : hébergement à trouver ce soir".to_string();
    let err = t
        .store
        .request_access("pas-une-reference".into(), reason.clone(), 120)
        .unwrap_err();
    assert_eq!(
        codes(&err),
        [("youth_id".to_string(), "bad_format".to_string())]
    );
    let RepereError::Validation { user_message, .. } = err else {
        panic!()
    };
    assert!(user_message.starts_with("Demande non envoyée : La référence n'est pas valide"));

    let other = uuid::Uuid::now_v7().to_string();
    let err = t
        .store
        .request_access(other.clone(), reason.clone(), 120)
        .unwrap_err();
    assert_eq!(
        codes(&err),
        [("member_id".to_string(), "required".to_string())]
    );
    t.store
        .set_member("0190a5c0-0000-7000-8000-0000000000a1".into())
        .unwrap();
    let err = t
        .store
        .request_access(other.clone(), "urgence".into(), 5)
        .unwrap_err();
    assert_eq!(
        codes(&err),
        [
            ("reason".to_string(), "inconsistent".to_string()),
            ("minutes".to_string(), "inconsistent".to_string())
        ]
    );
    let RepereError::Validation { user_message, .. } = err else {
        panic!()
    };
    assert_eq!(
        user_message,
        "Demande non envoyée : Le motif doit faire de 15 à 500 caractères. La durée doit aller de 15 minutes à 8 heures."
    );
    let ours = t.store.create_youth(lea()).unwrap();
    assert_eq!(
        codes(
            &t.store
                .request_access(ours, reason.clone(), 120)
                .unwrap_err()
        ),
        [("youth_id".to_string(), "inconsistent".to_string())]
    );

    let limits = crate::lending::access_limits();
    let id = t
        .store
        .request_access(other.clone(), reason.clone(), limits.default_minutes)
        .unwrap();
    let asked = t.store.access_requests().unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].id.as_str(), asked[0].youth_id.as_str()),
        (id.as_str(), other.as_str())
    );
    assert_eq!(asked[0].minutes, 120);
    assert_eq!(asked[0].state, crate::lending::AccessState::Pending);
    assert!(t.store.lent_files().unwrap().is_empty());
    assert_eq!(t.store.lent_file(other).unwrap(), None);
    assert_eq!(
        t.store.unsynced_count().unwrap(),
        1,
        "only the young person"
    );
}
