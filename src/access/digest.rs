//! Secrets kept and compared as SHA-256 digests: `--auth`'s credentials and `--publish-token`.
//! Both sides are hashed before the constant-time compare, so neither where the first byte
//! differs nor how long the secret is shows in the time an answer takes (`subtle`'s compare of
//! two slices returns at once when their lengths differ).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The digest of a secret; the secret itself is not kept.
#[derive(Clone)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub fn of(secret: &[u8]) -> Self {
        SecretDigest(Sha256::digest(secret).into())
    }

    /// Whether `given` is the secret, in the same time whatever `given` is.
    pub fn matches(&self, given: &[u8]) -> bool {
        bool::from(SecretDigest::of(given).0.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even a digest lets an offline guess be checked: it stays out of logs.
        f.write_str("SecretDigest(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::SecretDigest;

    #[test]
    fn only_the_secret_itself_matches() {
        let digest = SecretDigest::of(b"s3cret");
        assert!(digest.matches(b"s3cret"));
        for wrong in [&b""[..], b"s3cre", b"s3crett", b"S3cret", b"s3cret "] {
            assert!(!digest.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{digest:?}"), "SecretDigest(…)");
    }
}
