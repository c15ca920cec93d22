//! A bounded pool of blocking connections: idle ones under a mutex, a condition variable
//! for the requests waiting for one. Connections are opened on demand up to the bound and
//! dropped when found closed (the server restarted, the network broke).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls, Statement};

use super::backend;
use crate::storage::{StorageError, StorageResult};

/// One connection and the statements prepared on it (by their SQL).
pub(crate) struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
}

pub(crate) struct Pool {
    config: Config,
    max: usize,
    wait: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Connection>,
    /// Connections open, idle or lent.
    open: usize,
}

/// A connection lent by the pool, given back when dropped.
pub(crate) struct Conn<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
}

impl Pool {
    pub(crate) fn new(config: Config, max: usize, wait: Duration) -> Pool {
        Pool {
            config,
            max,
            wait,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn get(&self) -> StorageResult<Conn<'_>> {
        self.get_within(self.wait)
    }

    /// A free connection, or a new one while under the bound, waiting up to `within`.
    pub(crate) fn get_within(&self, within: Duration) -> StorageResult<Conn<'_>> {
        let deadline = Instant::now() + within;
        let mut state = self.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(Conn {
                        pool: self,
                        conn: Some(conn),
                    });
                }
                state.open -= 1;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match open(&self.config) {
                    Ok(conn) => Ok(Conn {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StorageError::Backend(
                    "no free database connection (all are busy)".into(),
                ));
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// A poisoned mutex only means a thread panicked while holding it; the list is fine.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn open(config: &Config) -> StorageResult<Connection> {
    let client = config.connect(NoTls).map_err(|e| {
        StorageError::Backend(format!("cannot connect to the database: {}", backend(&e)))
    })?;
    Ok(Connection {
        client,
        statements: HashMap::new(),
    })
}

impl Conn<'_> {
    fn connection(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a lent connection is held until it is dropped")
    }

    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.connection().client
    }

    /// The statement cache and the client, borrowed together (a transaction holds the
    /// client while statements are prepared).
    pub(crate) fn parts(&mut self) -> (&mut HashMap<String, Statement>, &mut Client) {
        let conn = self.connection();
        (&mut conn.statements, &mut conn.client)
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let mut state = self.pool.lock();
        if conn.client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}
