//! A device store with its way to the server, for the shells: the HTTP client is made once
//! for the enrolled address and reused by every sync, so a sync after the first finds its
//! connection open (or resumes its TLS session) instead of starting over.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use repere_core::Store;
use repere_core::sync::{
    Cancellation, Enrolment, SyncOptions, SyncProgress, SyncReport, sync_shared,
};

use crate::{HttpTransport, SetupError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Core(#[from] repere_core::Error),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

pub struct SyncClient {
    store: Mutex<Store>,
    /// The transport to the address last used, kept for the next sync.
    transport: Mutex<Option<Arc<HttpTransport>>>,
    /// A root certificate (PEM) trusted besides the platform's.
    extra_root: Option<Vec<u8>>,
}

impl SyncClient {
    pub fn new(store: Store) -> SyncClient {
        SyncClient {
            store: Mutex::new(store),
            transport: Mutex::new(None),
            extra_root: None,
        }
    }

    /// Also trusts the root certificate `pem` (a server behind an organisation's own
    /// certificate authority, a test endpoint); an unreadable one fails the first sync.
    pub fn with_extra_root(store: Store, pem: &[u8]) -> SyncClient {
        SyncClient {
            extra_root: Some(pem.to_vec()),
            ..SyncClient::new(store)
        }
    }

    /// The store, for everything but the network. Never held across a network wait by
    /// [`SyncClient::sync`].
    pub fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while the lock was held was already reported; the store itself is
        // transactional, so carrying on is safe.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The transport to `url`: the one kept if it goes there, else a new one kept instead.
    fn transport_to(&self, url: &str) -> Result<Arc<HttpTransport>, SetupError> {
        let mut kept = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wanted = url.trim().trim_end_matches('/');
        if let Some(t) = kept.as_ref().filter(|t| t.base_url() == wanted) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(match &self.extra_root {
            Some(pem) => HttpTransport::with_extra_root(url, pem)?,
            None => HttpTransport::new(url)?,
        });
        *kept = Some(Arc::clone(&t));
        Ok(t)
    }

    /// Enrols the store with the server at `url` (see `Store::enrol`). The store stays
    /// locked meanwhile: the person waits at the enrolment screen, nothing else runs.
    pub fn enrol(
        &self,
        url: &str,
        code: &str,
        device_label: &str,
        force: bool,
    ) -> Result<Enrolment, ClientError> {
        let t = self.transport_to(url)?;
        Ok(self.store().enrol(&*t, url, code, device_label, force)?)
    }

    /// Pushes and pulls until up to date, or until `cancel` is set (then
    /// `Error::Cancelled`; what was applied stays). `progress` is told after each round.
    pub fn sync(
        &self,
        cancel: &Cancellation,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport, ClientError> {
        let enrolled = self
            .store()
            .enrolment()?
            .ok_or(repere_core::Error::NotEnrolled)?;
        let t = self.transport_to(&enrolled.server_url)?;
        let options = SyncOptions {
            cancel: cancel.clone(),
            ..SyncOptions::default()
        };
        Ok(sync_shared(&self.store, &*t, &options, progress)?)
    }
}
