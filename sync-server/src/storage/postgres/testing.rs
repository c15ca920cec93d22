//! Throwaway databases for tests: each test that runs on PostgreSQL gets a database of its
//! own on the server of a base URL (`REPERE_TEST_DATABASE_URL` in the server's tests),
//! dropped when the test ends.

use postgres::{Client, NoTls};
use uuid::Uuid;

use super::{backend, parse_url};
use crate::storage::{StorageError, StorageResult};

/// A database created for one test; dropped (connections closed by force) on drop.
pub struct TestDatabase {
    base_url: String,
    name: String,
    url: String,
}

/// Creates `repere_t_<uuid>` on the server of `base_url` (whose database is only used to
/// connect).
pub fn fresh_database(base_url: &str) -> StorageResult<TestDatabase> {
    let name = format!("repere_t_{}", Uuid::new_v4().simple());
    let mut admin = admin(base_url)?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .map_err(|e| backend(&e))?;
    Ok(TestDatabase {
        base_url: base_url.to_string(),
        url: with_database(base_url, &name),
        name,
    })
}

fn admin(base_url: &str) -> StorageResult<Client> {
    parse_url(base_url)?.connect(NoTls).map_err(|e| {
        StorageError::Backend(format!("cannot connect to the database: {}", backend(&e)))
    })
}

/// `base_url` naming the database `name` instead of its own (query parameters kept).
fn with_database(base_url: &str, name: &str) -> String {
    let (head, query) = match base_url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base_url, None),
    };
    let authority_at = head.find("://").map_or(0, |i| i + 3);
    let server = match head[authority_at..].find('/') {
        Some(slash) => &head[..authority_at + slash],
        None => head,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

impl TestDatabase {
    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = admin(&self.base_url).and_then(|mut admin| {
            admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .map_err(|e| backend(&e))
        });
        if let Err(e) = dropped {
            tracing::warn!(database = %self.name, error = %e, "test database not dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn names_the_new_database_in_the_base_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
    }
}
