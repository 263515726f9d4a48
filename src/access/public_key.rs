//! `--jwt-key`: the PEM public key tokens are verified with, and the one algorithm that key
//! takes (RS256, ES256 on P-256, or EdDSA). A private key is refused with the command that
//! gives its public half.

use std::path::Path;

use anyhow::bail;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

/// An uncompressed P-256 point (`04 || x || y`), the public key ES256 verifies with.
const P256_POINT_BYTES: usize = 65;

/// The PEM public key in `pem` and the one algorithm its tokens use.
pub(super) fn public_key(pem: &[u8], path: &Path) -> anyhow::Result<(DecodingKey, Algorithm)> {
    let text = String::from_utf8_lossy(pem);
    let file = path.display();
    if text.contains("PRIVATE KEY-----") {
        bail!(
            "{file} (--jwt-key) holds a private key; give its public key (`openssl pkey -in {file} -pubout`)"
        );
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((key, Algorithm::EdDSA));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        match key.kind() {
            DecodingKeyKind::SecretOrDer(point) if point.len() == P256_POINT_BYTES => {
                return Ok((key, Algorithm::ES256));
            }
            _ => bail!("{file} (--jwt-key): only P-256 EC keys (ES256) are taken"),
        }
    }
    bail!("{file} (--jwt-key) holds no PEM public key (RSA, EC P-256 or Ed25519)")
}
