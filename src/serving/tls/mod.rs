//! TLS for the listening port: the certificate chain and key from PEM files (`--tls-cert`,
//! `--tls-key`), ALPN `h2` and `http/1.1`, and a reload (SIGHUP) that new connections see while
//! open ones go on. It knows nothing of HTTP: the connection code picks the protocol ALPN chose.
//!
//! Handshakes wait in one line, first come, first served, and a bounded number compute at once
//! (`HANDSHAKE_SLOTS_PER_CORE`): in a reconnect storm every client gets its turn and each
//! handshake, once begun, ends quickly, instead of thousands advancing together so slowly that
//! they all time out. A client takes its place in line only once its whole ClientHello is in,
//! so a socket that sends nothing (or half a hello) never holds a slot.
//!
//! Every connection runs on rustls's unbuffered API (`unbuffered.rs`), which keeps no buffer
//! while the connection idles: most connections carry event streams for hours.

mod unbuffered;

use std::fmt;
use std::io;
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

pub use unbuffered::UnbufferedTls;

/// `--tls-cert` and `--tls-key`, always given together.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Handshakes that may compute at once, per core. A slot is held only while the server works
/// on a ClientHello (key exchange and signature, the CPU-heavy part, done in one go by
/// rustls's `Accepted::into_connection`), not while it waits for the client: two per core keep
/// every core busy (one computes while the next is being woken); more would only interleave
/// handshakes on the same cores, so each took longer and those at the back started later.
const HANDSHAKE_SLOTS_PER_CORE: usize = 2;
/// Bytes read at a time while the ClientHello comes in (most fit in one read).
const HELLO_READ: usize = 4096;
/// How long the alert that says why a handshake failed may take to go out.
const ALERT_GRACE: Duration = Duration::from_secs(1);

/// The TLS side of the listener: accepts handshakes with the current certificate.
pub struct Tls {
    config: Arc<ServerConfig>,
    /// The line of handshakes (tokio's semaphore is fair: first come, first served).
    slots: Semaphore,
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
        let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
        Ok(Tls {
            config: Arc::new(config),
            slots: Semaphore::new(cores * HANDSHAKE_SLOTS_PER_CORE),
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

    /// Completes the server side of a handshake: the ClientHello must be in by `hello_by`, then
    /// the handshake waits for its slot, and must end within `timeout` of getting it. The
    /// connection comes boxed: it is large (rustls's state alone is over 1 KiB, asserted
    /// below), and a task that awaits this keeps room for the result in every later state,
    /// where a box is one pointer.
    pub async fn accept<S>(
        &self,
        mut socket: S,
        hello_by: Instant,
        timeout: Duration,
    ) -> io::Result<Box<UnbufferedTls<S>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let hello = tokio::time::timeout_at(hello_by, read_hello(&mut socket));
        let hello = hello
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        let slot = self.slots.acquire().await.map_err(io::Error::other)?;
        let mut tls = Box::new(UnbufferedTls::new(socket, self.config.clone(), hello)?);
        let handshake = async {
            // The CPU-heavy part of the handshake runs here, inside the slot.
            tls.respond()?;
            drop(slot);
            tls.finish().await
        };
        match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(())) => Ok(tls),
            Ok(Err(err)) => {
                let _ = tokio::time::timeout(ALERT_GRACE, tls.send_queued()).await;
                Err(err)
            }
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

// Why `accept` boxes the connection: rustls's state alone is large.
const _: () = assert!(std::mem::size_of::<rustls::server::UnbufferedServerConnection>() >= 1024);

/// Reads until a whole ClientHello is in (rustls's `Acceptor` says when) and returns every byte
/// read, for the connection to answer. A malformed hello gets its alert.
async fn read_hello<S>(socket: &mut S) -> io::Result<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut acceptor = Acceptor::default();
    let mut read = Vec::new();
    loop {
        let start = read.len();
        read.reserve(HELLO_READ);
        if socket.read_buf(&mut read).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut fresh = &read[start..];
        while !fresh.is_empty() {
            acceptor.read_tls(&mut fresh)?;
        }
        match acceptor.accept() {
            Ok(None) => {}
            Ok(Some(_)) => return Ok(read),
            Err((err, mut alert)) => {
                let mut bytes = Vec::new();
                alert.write_all(&mut bytes)?;
                let _ = tokio::time::timeout(ALERT_GRACE, socket.write_all(&bytes)).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        }
    }
}

/// Whether a finished handshake agreed on HTTP/2.
pub fn negotiated_h2<S>(stream: &UnbufferedTls<S>) -> bool {
    stream.alpn_protocol() == Some(b"h2")
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
