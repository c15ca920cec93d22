//! The shipped commune list, for pickers and lookups.

use repere_core::Communes;

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Commune {
    pub code: String,
    pub name: String,
    pub department: String,
    pub postcodes: Vec<String>,
    pub epci_name: Option<String>,
}

fn convert(c: &repere_core::Commune) -> Commune {
    Commune {
        code: c.code.to_string(),
        name: c.name.to_string(),
        department: c.department.to_string(),
        postcodes: c.postcodes().map(str::to_string).collect(),
        epci_name: c.epci_name().map(str::to_string),
    }
}

#[uniffi::export]
pub fn commune_by_code(code: String) -> Option<Commune> {
    Communes::global().get(code.trim()).map(convert)
}

/// Communes whose name starts with `prefix`, ignoring accents, case and hyphens.
#[uniffi::export]
pub fn search_communes(prefix: String, limit: u32) -> Vec<Commune> {
    Communes::global()
        .search_name(&prefix, limit as usize)
        .into_iter()
        .map(convert)
        .collect()
}

/// Communes of a postal code (or of every postal code starting with `postcode`).
#[uniffi::export]
pub fn communes_by_postcode(postcode: String, limit: u32) -> Vec<Commune> {
    Communes::global()
        .search_postcode(&postcode, limit as usize)
        .into_iter()
        .map(convert)
        .collect()
}

/// The attribution the commune list's licence asks for (credits screen).
#[uniffi::export]
pub fn communes_attribution() -> String {
    repere_core::communes::ATTRIBUTION.to_string()
}
