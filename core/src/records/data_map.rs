//! The DPIA data map: every stored field of every record kind with its category, purpose,
//! who sees it, where it is kept and for how long. Each kind declares the facts of its
//! fields beside its schema (`Record::DATA_MAP`); this module puts them together and renders
//! them in French for data-protection officers: docs/DATA-MAP.md is its output
//! (`repere-server admin data-map`), and the tests below fail when the schema, the map and
//! that file disagree.

use super::RecordKind;

/// What kind of personal data a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Names, alias, birth date: they point at the young person directly.
    Identity,
    /// Birth year, age band, sex: they point at someone only combined with other facts.
    Personal,
    /// Ways to reach the young person.
    Contact,
    /// A commune (INSEE code).
    Location,
    /// GDPR art. 9 (health) and 10 (criminal matters), and what reveals them.
    Special,
    /// Typed text: it may name third parties or reveal anything.
    FreeText,
    /// Facts of the follow-up: situation, referral, statuses, kinds of visit, action, outcome.
    Activity,
    Date,
    /// Who of the team or the coordination took part or wrote.
    Staff,
    /// Ids made on the device that link records: meaningless alone.
    TechnicalId,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Identity,
        Category::Personal,
        Category::Contact,
        Category::Location,
        Category::Special,
        Category::FreeText,
        Category::Activity,
        Category::Date,
        Category::Staff,
        Category::TechnicalId,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::Identity => "Identité",
            Category::Personal => "Caractéristiques personnelles",
            Category::Contact => "Coordonnées",
            Category::Location => "Localisation",
            Category::Special => "Donnée sensible (RGPD art. 9 et 10)",
            Category::FreeText => "Texte libre",
            Category::Activity => "Parcours et activité",
            Category::Date => "Date",
            Category::Staff => "Professionnel",
            Category::TechnicalId => "Identifiant technique",
        }
    }

    fn covers(self) -> &'static str {
        match self {
            Category::Identity => {
                "Surnom, prénom, nom, date de naissance : désignent le jeune directement."
            }
            Category::Personal => {
                "Année de naissance, tranche d'âge, sexe : ne désignent quelqu'un qu'avec d'autres \
                 informations."
            }
            Category::Contact => "Téléphone, courriel, autre moyen de joindre le jeune.",
            Category::Location => {
                "Une commune (code INSEE). Dans une commune de quelques centaines d'habitants, \
                 avec l'âge et le sexe, elle peut suffire à reconnaître un jeune."
            }
            Category::Special => {
                "Santé (handicap, besoin ou accès aux soins : art. 9), mesure de justice (art. 10) \
                 et indicateurs de profil tenus pour aussi sensibles (sortie de l'ASE, décrochage \
                 scolaire). Des cases à cocher, jamais du texte."
            }
            Category::FreeText => {
                "Texte saisi : peut nommer des tiers ou révéler n'importe quoi, données sensibles \
                 comprises."
            }
            Category::Activity => {
                "Situation, source du signalement, statuts, types de rencontre, d'action et de \
                 solution."
            }
            Category::Date => "Dates et heures du suivi.",
            Category::Staff => {
                "Membre de l'équipe ou coordinateur qui a participé ou écrit (identifiant ou nom \
                 affiché) : donnée sur les professionnels, pas sur le jeune."
            }
            Category::TechnicalId => {
                "Identifiants aléatoires créés sur la tablette qui relient les fiches entre elles ; \
                 ne disent rien seuls."
            }
        }
    }
}

/// What the coordinators' pages show of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Yes,
    /// Shown in part, or only in some form (said how).
    Partly(&'static str),
    No,
}

/// The CSV files coordinators download (sync-server `coord::reports`, page « Exports »).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// One row per young person under a pseudonym.
    Pseudonymised,
    /// The same with the record id and the names (second factor required).
    Named,
    /// The funder indicators: counts only.
    Indicators,
}

impl Export {
    pub const ALL: [Export; 3] = [Export::Pseudonymised, Export::Named, Export::Indicators];

    pub fn label(self) -> &'static str {
        match self {
            Export::Pseudonymised => "pseudonymisé",
            Export::Named => "nominatif",
            Export::Indicators => "indicateurs",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Export::Pseudonymised => {
                "`/exports/jeunes.csv`, une ligne par jeune sous un pseudonyme stable (`J-` et 16 \
                 chiffres hexadécimaux : 64 bits de HMAC-SHA256 de l'identifiant sous une clé \
                 dérivée de la clé du serveur, gardée hors des données). Le premier contact au \
                 mois ; une commune où vivent moins de 5 jeunes de l'export remplacée par son \
                 intercommunalité, retirée aussi quand moins de 5 y sont ainsi regroupés ; les \
                 indicateurs de profil seulement sur demande (case cochée, noté au journal). \
                 Pseudonymisé, pas anonyme : équipe, tranche d'âge, sexe, statut, source du \
                 signalement et nombres réunis peuvent encore désigner un jeune. Fichier \
                 `donnees-personnelles-pseudonymisees-jeunes-DATE.csv`. Tracé au journal."
            }
            Export::Named => {
                "`/exports/jeunes.csv` avec les noms demandés : le même export avec en plus \
                 l'identifiant de la fiche, le prénom, le nom et le surnom, la commune et la \
                 date complète du premier contact ; les indicateurs de profil seulement sur \
                 demande. Demande une session confirmée par la double authentification ; \
                 fichier `donnees-personnelles-nominatives-jeunes-DATE.csv` ; tracé au journal \
                 (« Export des jeunes AVEC les noms »)."
            }
            Export::Indicators => {
                "`/exports/indicateurs.csv`, les chiffres du tableau de bord : des nombres de \
                 jeunes par période, au total ou par équipe, commune, intercommunalité, source du \
                 signalement, tranche d'âge, sexe ou indicateur de profil ; aucune ligne par \
                 jeune. C'est ce que reçoivent les financeurs. Aucun seuil ne masque aujourd'hui \
                 les petits effectifs : une case à 1 dans une petite commune peut désigner \
                 quelqu'un. Tracé au journal."
            }
        }
    }
}

/// The data-protection facts of one stored field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldData {
    /// The field's schema name.
    pub field: &'static str,
    pub category: Category,
    /// Why it is kept (French, for the map).
    pub purpose: &'static str,
    /// What the coordinators' pages show of it (the binôme's tablets show every field).
    pub pages: Shown,
    /// The tablet's derived tables that copy it, besides the record's document.
    pub tablet: &'static [&'static str],
    pub exports: &'static [Export],
    /// How it goes into its exports when not as stored (an age band for a birth date…).
    pub exported_as: Option<&'static str>,
}

/// The data-protection facts of one record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindData {
    /// The kind's French name.
    pub title: &'static str,
    /// What one record is, in a sentence.
    pub about: &'static str,
    /// How long its records are kept: every field goes with its record (one document each).
    pub retention: &'static str,
    /// One entry per schema field, in schema order.
    pub fields: &'static [FieldData],
}

const HEADER: &str = "\
# Repère — carte des données (AIPD)

<!-- Généré par `repere-server admin data-map` : ne pas modifier à la main. -->

Chaque champ enregistré de chaque type de fiche : sa catégorie, sa finalité, qui le voit, où il
est conservé et combien de temps. Ce fichier est **généré** à partir des déclarations que chaque
type de fiche fait à côté de son schéma (`core/src/records/`, constante `DATA_MAP`). Après un
changement de champ, régénérez-le :

    cargo run -p repere-server -- admin data-map > docs/DATA-MAP.md

Les tests `data_map` de `repere-core` échouent quand un champ du schéma n'a pas sa ligne, quand
une ligne nomme un champ qui n'existe pas, quand l'ordre diffère, quand une table de la tablette
nommée n'existe pas ou qu'une table dérivée n'est nommée par aucun champ, ou quand ce fichier
n'est plus celui que la commande produit. Les colonnes « qui le voit », « où » et la
conservation sont déclarées, pas déduites du code : elles se relisent à chaque changement de
champ, de page ou d'export.

## Où sont les données

- **Tablette** : chaque tablette du binôme garde toutes les fiches de son équipe dans un magasin
  SQLite chiffré (SQLCipher, AES-256, clé tenue par le trousseau de l'appareil). Chaque fiche y
  est un document Automerge qui contient tous ses champs (table `documents`) ; la colonne nomme
  en plus les tables dérivées (listes, recherche, doublons) qui recopient le champ, reconstruites
  à partir des documents.
- **Serveur** : sa base (SQLCipher, sous la clé du serveur gardée hors du répertoire de données)
  garde le document de chaque fiche avec ses champs en JSON (`documents`) et la vue de la
  coordination (`record_view`, les champs en JSON), d'où est tirée une ligne par jeune
  (`youth_summary` : nom, surnom et commune repliés pour la recherche, statut, dates et nombres
  de visites, d'actions et de solutions, et ce que comptent les indicateurs : sexe, âge, source,
  indicateurs de profil, communes), effacée avec la fiche. Les sauvegardes (`admin backup`) en
  sont des copies chiffrées sous la même clé.
- **Historique** : un document garde toutes ses modifications ; une valeur remplacée reste
  lisible dans l'historique, sur le serveur comme sur les tablettes, jusqu'à une rectification
  (`repere-server admin rectify`, docs/DATA-PROTECTION.md).
- **Exports** : fichiers CSV que la coordination télécharge depuis la page « Exports ». Une fois
  téléchargés, ils sont hors du logiciel : à garder dans un espace protégé et à supprimer après
  usage. La colonne dit dans quels exports va le champ, et sous quelle forme quand ce n'est pas
  tel quel.
- **Droit d'accès** : le document d'un jeune (`/jeunes/{id}/acces`, page imprimable, et
  `/jeunes/{id}/acces.json`) rassemble tous les champs de toutes ses fiches (fiche, visites,
  actions, solutions, questions) avec leur historique et le journal des consultations ; il
  demande la double authentification et chaque document produit est inscrit au journal.

## Qui le voit

- **binôme** : les tablettes de l'équipe à laquelle la fiche appartient. Le binôme voit tous les
  champs des fiches de son équipe, aucune fiche d'une autre équipe.
- **coordination** : les coordinateurs de l'organisation de l'équipe, sur les pages de
  coordination ; la colonne dit ce que ces pages affichent du champ. Sur la page d'une visite, un
  conflit de saisie montre les valeurs en conflit de n'importe quel champ de la visite. Chaque
  consultation d'une visite ou d'une fiche jeune et chaque export est inscrit au journal.
- **administrateurs** : un compte administrateur connecté aux pages voit ce qu'y voit la
  coordination de son organisation. Les commandes `repere-server admin` n'affichent pas le
  contenu des fiches : des identifiants, des nombres, des noms de champs et, pour
  `admin purge --dry-run`, les dates de dernier contact et d'échéance ; qui détient la clé du
  serveur peut techniquement lire sa base.
- **financeurs** : seulement des chiffres agrégés (l'export des indicateurs), jamais une ligne
  par jeune.

## Exports

";

const RETENTION: &str = "
## Conservation

- **Règle** : chaque organisation fixe sa durée, en mois après le dernier contact
  (`repere-server admin retention --organisation ID --months N`, de 1 à 120) ; sans règle, celle
  du référentiel de la CNIL « accompagnement social » : 24 mois en base active. Le dernier
  contact d'un jeune est la plus récente des dates de son premier contact, de ses visites, de ses
  actions (la fin, sinon le début) et de ses solutions. À l'échéance, sa fiche est effacée avec
  tout ce qui l'accompagne : ses actions, ses solutions, les visites où il était seul et les
  questions de la coordination sur ces visites ; il est retiré des visites de groupe (la visite
  est réécrite sans lui). Une tournée est effacée après la même durée, comptée depuis sa date.
- **Application** : le serveur applique les règles lui-même, à son démarrage puis chaque jour
  (journal : « fin de la durée de conservation ») ; `repere-server admin purge --dry-run` liste ce
  qui arrive à échéance, `admin purge` l'applique aussitôt, et la page « Conservation » montre à
  la coordination ce qui sera effacé dans les 30 jours, pour qu'un jeune encore suivi ait un
  nouveau contact à temps. Les tablettes effacent leur copie à leur synchronisation suivante. Un
  effacement ne laisse aucun octet lisible, ni sur le serveur ni sur les tablettes
  (docs/DATA-PROTECTION.md).
- Le journal d'audit et le registre des effacements ne gardent que des identifiants, des dates et
  des noms de champs, jamais une valeur.
";

const OUTSIDE: &str = "
## Hors des fiches

Données conservées par le serveur qui ne sont pas des champs de fiche (décrites à la main, hors
de la vérification par les tests) :

- `visit_reviews` : la décision de la coordination sur une visite (approuvée, signalée, question)
  et le motif d'un signalement, texte libre qui peut nommer quelqu'un ; vue de la coordination
  et des tablettes de l'équipe de la visite (sans le nom de la personne qui a décidé, table
  `visit_decisions` sur la tablette) ; effacée avec la visite, sur le serveur et les tablettes.
- `team_members` : les membres d'une équipe, identifiant et nom affiché (donnée personnelle du
  personnel, à réduire au prénom ou à un prénom et une initiale), actif ou non, date de
  modification ; gérés par `repere-server admin add-member` et suivantes ; vus de la coordination
  et des tablettes de l'équipe (table `team_members` sur la tablette, remplacée à chaque
  changement, supprimée quand la tablette change d'équipe ou est effacée) ; jamais écrits dans
  les journaux. Aucune durée de conservation n'est fixée par le logiciel : un membre parti est
  désactivé (ses anciennes fiches restent nommées) et peut être renommé.
- `access_grants` : les accès exceptionnels (« bris de glace ») à la fiche d'un jeune hors de son
  périmètre : qui lit (compte, ou tablette et membre déclaré), l'équipe qui suit le jeune, le
  motif (texte libre qui peut nommer quelqu'un), le début, l'échéance (15 minutes à 8 heures) et
  la fin anticipée ; vus de la coordination de l'équipe qui suit le jeune et du lecteur ;
  supprimés avec la fiche du jeune quand elle est effacée ; le journal n'en garde que les
  identifiants. Sur la tablette du lecteur : la demande (`access_requests` : la fiche demandée,
  le membre, le motif, la durée, la réponse), gardée jusqu'à la fin de l'accès accordé, un jour
  après un refus ; la fiche prêtée (`lent_files`, `lent_records` : ses champs seulement et le nom
  de l'équipe qui suit le jeune, à part des fiches de l'équipe, jamais renvoyée), supprimée à
  l'échéance par l'horloge de la tablette, dès que le serveur ne la prête plus, ou avec tout le
  reste quand la tablette est effacée.
- Comptes des pages de coordination (`users`) : nom, identifiant de connexion, empreinte
  Argon2id du mot de passe, secret de la double authentification, empreintes des codes de
  secours ; sessions (empreinte du jeton) ; tentatives de connexion (HMAC de l'identifiant tapé
  et de l'adresse).
- Tablettes (`devices`) : libellé, empreinte du jeton, dates d'enrôlement et de dernière
  synchronisation, position du journal reçue, ordre d'effacement, et ce que la tablette a dit
  d'elle à sa dernière synchronisation (version de l'application, nombre de fiches non
  envoyées).
- `erasure_requests` : les demandes d'effacement (identifiants de la fiche, de l'équipe, de qui
  a demandé et de qui a décidé, motif en mot fixe, dates, décision, nombre de fiches effacées
  avec) ; jamais le contenu de la fiche. Vues de la coordination de l'organisation (page
  « Effacements »).
- `transfers` : les transferts d'un jeune vers une autre équipe, peut-être d'une autre
  organisation (identifiants du jeune, des deux équipes, de qui a demandé et de qui a décidé,
  état, dates) ; aucun contenu de fiche. Vus de la coordination des deux équipes (page
  « Transferts ») avec le nom affiché du jeune tant que le transfert attend, puis par l'équipe
  qui a la fiche seulement (l'autre ne voit plus qu'un identifiant court) ; chaque étape est
  inscrite au journal des deux organisations. `departures` : l'identifiant d'une fiche partie
  avec un jeune transféré, l'équipe quittée, une position du journal et la date, pour que les
  tablettes de cette équipe suppriment leur copie ; aucun contenu. Aucune durée de conservation
  n'est fixée par le logiciel pour l'une ou l'autre : un effacement du jeune laisse ces lignes,
  qui ne gardent que des identifiants.
- `audit_log` : qui a fait quoi et quand, en identifiants et mots fixes ;
  `erasure-register.tsv` (à côté de la base) : identifiant, équipe et date de chaque effacement,
  et pour une rectification les noms des champs changés. Aucune durée de conservation n'est fixée
  par le logiciel pour l'un ou l'autre.
";

/// A Markdown table cell: a pipe would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn who_sees(f: &FieldData) -> String {
    let mut who = vec!["binôme".to_string()];
    match f.pages {
        Shown::Yes => who.push("coordination".into()),
        Shown::Partly(how) => who.push(format!("coordination ({how})")),
        Shown::No => {}
    }
    if f.exports.contains(&Export::Indicators) {
        who.push("financeurs (chiffres agrégés)".into());
    }
    who.join(" ; ")
}

fn kept_where(f: &FieldData) -> String {
    let tablet = std::iter::once("documents")
        .chain(f.tablet.iter().copied())
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let exports = if f.exports.is_empty() {
        "aucun".to_string()
    } else {
        let names: Vec<&str> = f.exports.iter().map(|e| e.label()).collect();
        match f.exported_as {
            Some(how) => format!("{} ({how})", names.join(", ")),
            None => names.join(", "),
        }
    };
    format!("tablette : {tablet}<br>serveur : `documents`, `record_view`<br>exports : {exports}")
}

/// The whole map as Markdown: docs/DATA-MAP.md.
pub fn markdown() -> String {
    let mut out = String::from(HEADER);
    for e in Export::ALL {
        out.push_str(&format!("- **{}** — {}\n", e.label(), e.describe()));
    }
    out.push_str(RETENTION);
    out.push_str("\n## Catégories\n\n| Catégorie | Ce qu'elle couvre |\n|---|---|\n");
    for c in Category::ALL {
        out.push_str(&format!("| {} | {} |\n", c.label(), cell(c.covers())));
    }
    for kind in RecordKind::ALL {
        let data = kind.data_map();
        out.push_str(&format!(
            "\n## {} (`{kind}`)\n\n{}\n\n",
            data.title, data.about
        ));
        out.push_str(
            "| Champ | Catégorie | Finalité | Qui le voit | Où il est conservé | \
             Durée de conservation |\n|---|---|---|---|---|---|\n",
        );
        for f in data.fields {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                f.field,
                f.category.label(),
                cell(f.purpose),
                cell(&who_sees(f)),
                cell(&kept_where(f)),
                cell(data.retention)
            ));
        }
    }
    out.push_str(OUTSIDE);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// How to bring docs/DATA-MAP.md up to date.
    const REGENERATE: &str = "cargo run -p repere-server -- admin data-map > docs/DATA-MAP.md";

    #[test]
    fn data_map_has_one_entry_per_schema_field_in_schema_order() {
        for kind in RecordKind::ALL {
            let schema: Vec<&str> = kind.schema().iter().map(|(name, _)| *name).collect();
            let mapped: Vec<&str> = kind.data_map().fields.iter().map(|f| f.field).collect();
            for name in &schema {
                let entries = mapped.iter().filter(|m| *m == name).count();
                assert_eq!(
                    entries, 1,
                    "{kind}.{name}: {entries} data map entries, want exactly one \
                     (declare it in the kind's DATA_MAP)"
                );
            }
            for name in &mapped {
                assert!(
                    schema.contains(name),
                    "{kind}: the data map names {name}, which is not in its SCHEMA"
                );
            }
            assert_eq!(
                mapped, schema,
                "{kind}: DATA_MAP must list the fields in SCHEMA order"
            );
        }
    }

    #[test]
    fn data_map_entries_are_complete() {
        for kind in RecordKind::ALL {
            let data = kind.data_map();
            for text in [data.title, data.about, data.retention] {
                assert!(
                    !text.trim().is_empty(),
                    "{kind}: empty title, about or retention"
                );
                assert!(
                    !text.contains('\n'),
                    "{kind}: a line break would cut the map"
                );
            }
            for f in data.fields {
                let name = f.field;
                assert!(!f.purpose.trim().is_empty(), "{kind}.{name}: no purpose");
                assert!(!f.purpose.contains('\n'), "{kind}.{name}: line break");
                if let Shown::Partly(how) = f.pages {
                    assert!(!how.trim().is_empty(), "{kind}.{name}: say how it is shown");
                }
                assert!(
                    f.exported_as.is_none() || !f.exports.is_empty(),
                    "{kind}.{name}: exported_as without an export"
                );
            }
        }
    }

    /// The tablet tables the map names exist in the device store's schema, and every
    /// derived table a kind writes is named by at least one of its fields.
    #[test]
    fn data_map_tablet_tables_match_the_store() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut schema = String::new();
        for entry in std::fs::read_dir(&dir).expect("core/migrations") {
            let path = entry.expect("migration").path();
            schema.push_str(&std::fs::read_to_string(&path).expect("readable migration"));
        }
        let created = |table: &str| {
            schema.contains(&format!("CREATE TABLE {table} ("))
                || schema.contains(&format!("CREATE VIRTUAL TABLE {table} USING"))
        };
        for kind in RecordKind::ALL {
            let fields = kind.data_map().fields;
            for f in fields {
                for table in f.tablet {
                    assert!(
                        created(table),
                        "{kind}.{}: no table {table} on the tablet",
                        f.field
                    );
                }
            }
            for (table, _) in kind.derived() {
                assert!(
                    fields.iter().any(|f| f.tablet.contains(table)),
                    "{kind}: the derived table {table} copies no field of the data map"
                );
            }
        }
    }

    #[test]
    fn data_map_doc_is_the_generated_markdown() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DATA-MAP.md");
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("docs/DATA-MAP.md unreadable ({e}); run: {REGENERATE}"));
        let generated = markdown();
        if on_disk != generated {
            let same = on_disk.lines().zip(generated.lines());
            let line = same.take_while(|(a, b)| a == b).count() + 1;
            panic!(
                "docs/DATA-MAP.md differs from the generated map from line {line}: the schema \
                 or the data map changed. Regenerate it from the workspace root: {REGENERATE}"
            );
        }
    }
}
