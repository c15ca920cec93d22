//! The official list of French communes (INSEE codes), shipped inside the core so that
//! lookups work offline. Source and licence: `core/data/README.md`.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::text::fold;

const COMMUNES_TSV: &str = include_str!("../data/communes.tsv");
const EPCI_TSV: &str = include_str!("../data/epci.tsv");

/// Attribution required by the Licence Ouverte; show it on the app's credits screen.
pub const ATTRIBUTION: &str = "Source : INSEE (Code officiel géographique 2026), DGCL (EPCI 2026) \
et La Poste (codes postaux), via @etalab/decoupage-administratif 6.0.0 — Licence Ouverte / Open Licence";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commune {
    /// INSEE code, e.g. "55502".
    pub code: &'static str,
    pub name: &'static str,
    pub department: &'static str,
    /// Comma-separated postal codes.
    postcodes: &'static str,
    /// SIREN of the intercommunality (EPCI), if any.
    pub epci_code: Option<&'static str>,
}

impl Commune {
    pub fn postcodes(&self) -> impl Iterator<Item = &'static str> {
        self.postcodes.split(',').filter(|p| !p.is_empty())
    }

    pub fn epci_name(&self) -> Option<&'static str> {
        Communes::global().epci_name(self.epci_code?)
    }
}

/// Lookups over the shipped list. Built once, on first use, in a few milliseconds.
pub struct Communes {
    by_code: Vec<Commune>,
    /// (folded name, index into `by_code`), sorted for prefix search.
    by_name: Vec<(String, usize)>,
    by_postcode: HashMap<&'static str, Vec<usize>>,
    epci: HashMap<&'static str, &'static str>,
}

impl Communes {
    pub fn global() -> &'static Communes {
        static INSTANCE: OnceLock<Communes> = OnceLock::new();
        INSTANCE.get_or_init(|| Communes::parse(COMMUNES_TSV, EPCI_TSV))
    }

    fn parse(communes: &'static str, epci: &'static str) -> Communes {
        let rows = |text: &'static str| {
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|l| l.split('\t').collect::<Vec<_>>())
        };
        let mut by_code: Vec<Commune> = rows(communes)
            .filter(|cols| cols.len() == 5)
            .map(|cols| Commune {
                code: cols[0],
                name: cols[1],
                department: cols[2],
                postcodes: cols[3],
                epci_code: Some(cols[4]).filter(|e| !e.is_empty()),
            })
            .collect();
        by_code.sort_by_key(|c| c.code);
        let mut by_name: Vec<(String, usize)> = by_code
            .iter()
            .enumerate()
            .map(|(i, c)| (fold(c.name), i))
            .collect();
        by_name.sort();
        let mut by_postcode: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, c) in by_code.iter().enumerate() {
            for p in c.postcodes() {
                by_postcode.entry(p).or_default().push(i);
            }
        }
        let epci = rows(epci)
            .filter(|cols| cols.len() == 2)
            .map(|cols| (cols[0], cols[1]))
            .collect();
        Communes {
            by_code,
            by_name,
            by_postcode,
            epci,
        }
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    pub fn get(&self, code: &str) -> Option<&Commune> {
        self.by_code
            .binary_search_by_key(&code, |c| c.code)
            .ok()
            .map(|i| &self.by_code[i])
    }

    pub fn epci_name(&self, code: &str) -> Option<&'static str> {
        self.epci.get(code).copied()
    }

    /// Communes whose name starts with `prefix`, ignoring accents, case and hyphens
    /// ("charleville m" finds Charleville-Mézières).
    pub fn search_name(&self, prefix: &str, limit: usize) -> Vec<&Commune> {
        let key = fold(prefix);
        if key.is_empty() {
            return Vec::new();
        }
        let start = self
            .by_name
            .partition_point(|(n, _)| n.as_str() < key.as_str());
        self.by_name[start..]
            .iter()
            .take_while(|(n, _)| n.starts_with(&key))
            .take(limit)
            .map(|(_, i)| &self.by_code[*i])
            .collect()
    }

    /// Communes served by a postal code, or by every postal code starting with a partial one.
    pub fn search_postcode(&self, postcode: &str, limit: usize) -> Vec<&Commune> {
        let postcode = postcode.trim();
        if postcode.is_empty() || !postcode.chars().all(|c| c.is_ascii_digit()) {
            return Vec::new();
        }
        if let Some(found) = self.by_postcode.get(postcode) {
            return found
                .iter()
                .take(limit)
                .map(|i| &self.by_code[*i])
                .collect();
        }
        let mut hits: Vec<&Commune> = self
            .by_code
            .iter()
            .filter(|c| c.postcodes().any(|p| p.starts_with(postcode)))
            .take(limit)
            .collect();
        hits.sort_by_key(|c| c.name);
        hits
    }

    pub fn in_department(&self, department: &str) -> impl Iterator<Item = &Commune> {
        self.by_code
            .iter()
            .filter(move |c| c.department == department)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ships_all_communes_of_meuse_and_ardennes() {
        let c = Communes::global();
        assert!(c.len() > 34_000);
        assert_eq!(c.in_department("55").count(), 499);
        assert_eq!(c.in_department("08").count(), 447);
    }

    #[test]
    fn looks_up_by_code() {
        let c = Communes::global();
        let stenay = c.get("55502").expect("Stenay");
        assert_eq!(stenay.name, "Stenay");
        assert_eq!(stenay.postcodes().collect::<Vec<_>>(), vec!["55700"]);
        assert_eq!(
            stenay.epci_name(),
            Some("CC du Pays de Stenay et du Val Dunois")
        );
        assert_eq!(c.get("08105").map(|c| c.name), Some("Charleville-Mézières"));
        assert!(c.get("99999").is_none());
        assert!(c.get("").is_none());
    }

    #[test]
    fn searches_names_without_accents() {
        let c = Communes::global();
        let names: Vec<_> = c
            .search_name("charleville mez", 5)
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["Charleville-Mézières"]);
        let verdun: Vec<_> = c.search_name("VERDUN", 10).iter().map(|c| c.code).collect();
        assert!(verdun.contains(&"55545"));
        assert!(c.search_name("", 10).is_empty());
        assert!(c.search_name("zzzzqq", 10).is_empty());
    }

    #[test]
    fn searches_postal_codes() {
        let c = Communes::global();
        let sedan: Vec<_> = c
            .search_postcode("08200", 50)
            .iter()
            .map(|c| c.code)
            .collect();
        assert!(sedan.contains(&"08409"));
        let partial = c.search_postcode("557", 100);
        assert!(partial.iter().any(|c| c.code == "55502"));
        assert!(c.search_postcode("55a", 10).is_empty());
    }
}
