//! A local HTTPS endpoint in front of the real server: TLS is terminated here (test
//! certificate for `localhost` and 127.0.0.1 under `data/tls/ca.pem`), bytes relayed to the
//! server's plain port. It counts the TLS handshakes, so a test can tell a reused
//! connection or a resumed session from a new one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, crypto};

/// The test certificate authority, for the client to trust.
pub const CA_PEM: &[u8] = include_bytes!("../data/tls/ca.pem");
const CERT_PEM: &[u8] = include_bytes!("../data/tls/server.pem");
const KEY_PEM: &[u8] = include_bytes!("../data/tls/server.key");

pub struct TlsRelay {
    pub port: u16,
    /// Full handshakes and resumptions alike: every TLS session set up.
    handshakes: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsRelay {
    pub fn start(upstream_port: u16) -> TlsRelay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let certs = vec![CertificateDer::from_pem_slice(CERT_PEM).expect("test certificate")];
        let key = PrivateKeyDer::from_pem_slice(KEY_PEM).expect("test key");
        // The provider is named: with several compiled in, none is the process default.
        let config =
            ServerConfig::builder_with_provider(Arc::new(crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        TlsRelay {
            port,
            handshakes,
            runtime: Some(runtime),
        }
    }

    /// `https://localhost:PORT`, the name the test certificate is for.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
