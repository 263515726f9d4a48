//! TLS for the listening port: the certificate chain and key from PEM files (`--tls-cert`,
//! `--tls-key`), ALPN `h2` and `http/1.1`, and a reload (SIGHUP) that new connections see while
//! open ones go on. It knows nothing of HTTP: the connection code picks the protocol ALPN chose.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// `--tls-cert` and `--tls-key`, always given together.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A client that has not finished its handshake by then is dropped: it holds a descriptor.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS side of the listener: accepts handshakes with the current certificate.
pub struct Tls {
    acceptor: TlsAcceptor,
    certificate: Arc<CurrentCertificate>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// The pair every new handshake gets; replaced whole by a reload.
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl fmt::Debug for CurrentCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCertificate")
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(current.clone())
    }
}

impl Tls {
    /// Reads both files; a missing, unreadable or mismatched file is an error naming it.
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Tls> {
        let certificate = Arc::new(CurrentCertificate(RwLock::new(Arc::new(read_pair(
            cert_path, key_path,
        )?))));
        let provider = Arc::new(ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS setup")?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        // h2 first: a browser that speaks it shares one connection among all its tabs.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
        })
    }

    /// Reads the files again; on success new handshakes get the new pair, on failure the old
    /// one stays and the error says why.
    pub fn reload(&self) -> anyhow::Result<()> {
        let pair = read_pair(&self.cert_path, &self.key_path)?;
        *self
            .certificate
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// Completes the server side of a handshake, within `HANDSHAKE_TIMEOUT`.
    pub async fn accept<S>(&self, socket: S) -> std::io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(socket)).await {
            Ok(handshake) => handshake,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// Whether a finished handshake agreed on HTTP/2.
pub fn negotiated_h2<S>(stream: &TlsStream<S>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}

/// The chain from `cert_path` and the key from `key_path`, checked to belong together.
fn read_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<CertifiedKey> {
    let cert_file = format!("TLS certificate {} (--tls-cert)", cert_path.display());
    let key_file = format!("TLS key {} (--tls-key)", key_path.display());
    let cert_pem = std::fs::read(cert_path)
        .map_err(|err| anyhow!(crate::errors::describe(&err)))
        .with_context(|| format!("cannot read {cert_file}"))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow!("{cert_file} is not valid PEM: {err}"))?;
    if chain.is_empty() {
        bail!("{cert_file} holds no CERTIFICATE");
    }
    let key_pem = std::fs::read(key_path)
        .map_err(|err| anyhow!(crate::errors::describe(&err)))
        .with_context(|| format!("cannot read {key_file}"))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => anyhow!("{key_file} holds no PRIVATE KEY"),
        err => anyhow!("{key_file} is not valid PEM: {err}"),
    })?;
    let provider: &CryptoProvider = &ring::default_provider();
    CertifiedKey::from_der(chain, key, provider).map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => {
            anyhow!("{key_file} does not match {cert_file}")
        }
        err => anyhow!("cannot use {key_file} with {cert_file}: {err}"),
    })
}
