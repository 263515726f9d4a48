//! Certificates made for a test (rcgen, for `localhost` and 127.0.0.1) and HTTP clients that
//! trust them: reqwest over TLS (HTTP/2 by ALPN, or HTTP/1.1 only), and HTTP/2 with prior
//! knowledge (h2c) on a plain port.

use std::path::PathBuf;

use super::{Client, Server, WAIT};

/// A self-signed certificate and its key, written as PEM files in a temporary directory.
pub struct TestCert {
    dir: tempfile::TempDir,
    pub cert_pem: String,
}

impl TestCert {
    pub fn new() -> TestCert {
        let dir = tempfile::tempdir().unwrap();
        let made = TestCert::generate();
        std::fs::write(dir.path().join("cert.pem"), &made.0).unwrap();
        std::fs::write(dir.path().join("key.pem"), &made.1).unwrap();
        TestCert {
            dir,
            cert_pem: made.0,
        }
    }

    /// A fresh (certificate PEM, key PEM) pair.
    pub fn generate() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// `--tls-cert FILE --tls-key FILE`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_path().display().to_string(),
            "--tls-key".into(),
            self.key_path().display().to_string(),
        ]
    }

    /// Replaces the files with a new pair (a renewal); returns the new certificate's PEM.
    pub fn renew(&self) -> String {
        let (cert, key) = TestCert::generate();
        std::fs::write(self.cert_path(), &cert).unwrap();
        std::fs::write(self.key_path(), &key).unwrap();
        cert
    }
}

/// Which protocol a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    /// TLS with ALPN offering h2 and http/1.1 (what a browser does).
    Alpn,
    /// TLS, HTTP/1.1 only.
    Http1,
    /// Plain TCP, HTTP/2 from the first byte (h2c with prior knowledge).
    H2c,
}

/// A reqwest client that trusts `cert_pem` (when given) and speaks `http`.
pub fn client(cert_pem: Option<&str>, http: Http) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(pem) = cert_pem {
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    builder = match http {
        Http::Alpn => builder,
        Http::Http1 => builder.http1_only(),
        Http::H2c => builder.http2_prior_knowledge(),
    };
    builder.build().unwrap()
}

/// GET `url` with `client`; the response head must come within `WAIT`.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    tokio::time::timeout(WAIT, request.send())
        .await
        .expect("response headers in time")
        .unwrap_or_else(|err| panic!("GET {url}: {err:?}"))
}

/// An event stream read with `client`, after checking the protocol it came over.
pub async fn events(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    version: reqwest::Version,
) -> Client {
    let response = get(client, url, headers).await;
    assert_eq!(response.version(), version, "protocol of {url}");
    Client::from_response(response)
}

/// A TLS connection to `address` that trusts `cert_pem` and offers `alpn`: for tests that speak
/// below HTTP (a client that completes its handshake, then says nothing).
pub async fn handshake(
    address: &str,
    cert_pem: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, connector.connect(name, socket))
        .await
        .expect("handshake in time")
        .unwrap()
}

/// A server on `cert` with stdin piped; its helpers trust the certificate and speak ALPN.
pub fn server(cert: &TestCert, args: &[&str]) -> Server {
    let tls_args = cert.args();
    let mut all: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    Server::piped(&all).asking_with(client(Some(&cert.cert_pem), Http::Alpn))
}
