//! Readers' and publishers' tokens (DESIGN.md §10): the key that verifies them (`--jwt-secret`
//! for HS256, or `--jwt-key`, a PEM public key for RS256, ES256 or EdDSA), the claims a token
//! must carry, and the channel patterns it grants (`Grant`, in `grant.rs`). No HTTP here:
//! `gate/` takes the token off a request and answers refusals.
//!
//! Signatures and `aud` are checked by `jsonwebtoken`; this file chooses what it accepts: the
//! key's one algorithm (so neither `alg: none` nor an HS256 token signed with a public key
//! passes), and checks `exp` (required) and `nbf` itself, as RFC 7519 NumericDates, which may
//! have a fraction (`jsonwebtoken` takes whole seconds only). One rule of time: a token is valid
//! from `nbf` − `LEEWAY` to `exp` + `LEEWAY`, and a stream it opened ends at the end of that
//! (`Grant::remaining`): no token is taken for a stream that would be over already.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::grant::{Grant, Invalid};
use super::pattern::Pattern;
use super::public_key::public_key;
use crate::channels::ChannelName;
use crate::errors::describe;

/// Clocks of the minting application and of this server may disagree by this much.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// The HS256 secret. `Debug` hides it; nothing prints it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Checks the length only; the value is never part of a message.
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the secret must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 §3.2); make one with `openssl rand -hex 32`"
            ));
        }
        Ok(Secret(bytes))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// Where the verifying key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `--jwt-secret`: HS256.
    Secret(Secret),
    /// `--jwt-key`: a PEM public key, read at start.
    PemFile(PathBuf),
}

/// How tokens are checked (`--jwt-secret` or `--jwt-key`, `--jwt-audience`, `--public`).
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub key: KeySource,
    pub audience: Option<String>,
    /// Channels anyone may read while tokens are required.
    pub public: Vec<Pattern>,
}

/// The loaded key and the rules a token must pass.
pub struct Tokens {
    key: DecodingKey,
    validation: Validation,
    public: Vec<Pattern>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("algorithms", &self.validation.algorithms)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Reads the key. A missing or unreadable file, or one that holds no public key of a kind
    /// this server verifies, is an error naming the file.
    pub fn load(config: &TokenConfig) -> anyhow::Result<Self> {
        let (key, algorithm) = match &config.key {
            KeySource::Secret(secret) => (
                DecodingKey::from_secret(&secret.0).context("--jwt-secret")?,
                Algorithm::HS256,
            ),
            KeySource::PemFile(path) => {
                let pem = std::fs::read(path).map_err(|err| {
                    anyhow::anyhow!(
                        "cannot read {} (--jwt-key): {}",
                        path.display(),
                        describe(&err)
                    )
                })?;
                public_key(&pem, path)?
            }
        };
        let mut validation = Validation::new(algorithm);
        // `exp` and `nbf` are checked in `verify`, fractions and all.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["aud"]);
            }
            // No audience asked: a token's `aud` is not this server's business.
            None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims::<&str>(&[]);
            }
        }
        Ok(Tokens {
            key,
            validation,
            public: config.public.clone(),
        })
    }

    /// What a token grants, if it is well formed, signed with the key, current and meant for
    /// this server.
    pub fn verify(&self, token: &str) -> Result<Grant, Invalid> {
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &self.key, &self.validation)
            .map_err(|err| Invalid::from(err.kind()))?;
        let claims = data.claims;
        let exp = claims.exp.ok_or(Invalid::NoExpiry)?;
        let now = unix_seconds(SystemTime::now());
        let leeway = LEEWAY.as_secs_f64();
        if now > exp + leeway {
            return Err(Invalid::Expired);
        }
        if claims.nbf.is_some_and(|nbf| now < nbf - leeway) {
            return Err(Invalid::NotYetValid);
        }
        Ok(Grant {
            // Within the bounds `SystemTime` holds everywhere: year 33658 at most.
            expires: UNIX_EPOCH + Duration::from_secs_f64((exp + leeway).clamp(0.0, 1e12)),
            subscribe: claims.sse_broadcast.subscribe,
            publish: claims.sse_broadcast.publish,
            user: claims.sub.map(String::into_boxed_str),
        })
    }

    /// Whether `--public` lets anyone read `channel`.
    pub fn is_public(&self, channel: &ChannelName) -> bool {
        self.public.iter().any(|pattern| pattern.matches(channel))
    }
}

/// Seconds since the epoch, with their fraction (a clock set before 1970 reads as 0).
fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// The claims this server reads; `jsonwebtoken` checks `aud` itself.
#[derive(Deserialize)]
struct Claims {
    /// NumericDates: seconds since the epoch, which may have a fraction (RFC 7519 §2). A value
    /// that is not a number makes the token malformed.
    exp: Option<f64>,
    nbf: Option<f64>,
    /// Who the token names (`--presence` announces it); any JSON string.
    sub: Option<String>,
    #[serde(default)]
    sse_broadcast: Rights,
}

#[derive(Default, Deserialize)]
struct Rights {
    #[serde(default)]
    subscribe: Vec<Pattern>,
    #[serde(default)]
    publish: Vec<Pattern>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tokens(audience: Option<&str>) -> Tokens {
        Tokens::load(&TokenConfig {
            key: KeySource::Secret(Secret::new(SECRET.to_vec()).unwrap()),
            audience: audience.map(str::to_owned),
            public: vec!["news.*".parse().unwrap()],
        })
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn mint(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret(SECRET).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    fn channel(name: &str) -> ChannelName {
        name.parse().unwrap()
    }

    #[test]
    fn a_current_token_grants_its_patterns() {
        let grant = tokens(None)
            .verify(&mint(json!({
                "exp": now() + 60,
                "sse_broadcast": {"subscribe": ["team.*", "default"], "publish": ["build"]},
            })))
            .unwrap();
        assert!(grant.may_subscribe(&channel("team.a")) && !grant.may_subscribe(&channel("teamx")));
        assert!(grant.may_subscribe(&ChannelName::default_name()));
        assert!(grant.may_publish(&channel("build")) && !grant.may_publish(&channel("team.a")));
        assert!(!grant.subscribes_to_all());
        assert!(grant.remaining() > Duration::from_secs(50));
        let all = tokens(None)
            .verify(&mint(
                json!({"exp": now() + 60, "sse_broadcast": {"subscribe": ["*"]}}),
            ))
            .unwrap();
        assert!(all.subscribes_to_all() && !all.may_publish(&channel("x")));
    }

    #[test]
    fn refuses_what_the_contract_refuses() {
        let tokens = tokens(None);
        let refused = |claims| tokens.verify(&mint(claims)).unwrap_err();
        assert_eq!(refused(json!({"exp": now() - 31})), Invalid::Expired);
        assert_eq!(
            refused(json!({"exp": now() + 60, "nbf": now() + 31})),
            Invalid::NotYetValid
        );
        assert_eq!(refused(json!({"nbf": now()})), Invalid::NoExpiry);
        // Within the leeway: accepted, until the leeway's end.
        let late = tokens.verify(&mint(json!({"exp": now() - 5}))).unwrap();
        assert!((Duration::from_secs(20)..=LEEWAY).contains(&late.remaining()));
        assert!(
            tokens
                .verify(&mint(json!({"exp": now() + 60, "nbf": now() + 25})))
                .is_ok()
        );
        assert_eq!(refused(json!({"exp": "soon"})), Invalid::Malformed);
        let good = mint(json!({"exp": now() + 60}));
        let (head, _) = good.rsplit_once('.').unwrap();
        assert_eq!(
            tokens.verify(&format!("{head}.AAAA")).unwrap_err(),
            Invalid::BadSignature
        );
        assert_eq!(
            tokens.verify("not a token").unwrap_err(),
            Invalid::Malformed
        );
        assert_eq!(tokens.verify("").unwrap_err(), Invalid::Malformed);
        // alg: none, with no signature at all.
        let payload = good.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(tokens.verify(&none).is_err());
        // HS384 with the same secret: not the key's algorithm.
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &json!({"exp": now() + 60}),
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap();
        assert_eq!(tokens.verify(&hs384).unwrap_err(), Invalid::Algorithm);
    }

    #[test]
    fn numeric_dates_may_have_a_fraction() {
        let tokens = tokens(None);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let grant = tokens
            .verify(&mint(json!({"exp": now + 60.5, "nbf": now - 0.25})))
            .unwrap();
        let left = grant.remaining().as_secs_f64();
        assert!((80.0..=90.5).contains(&left), "{left}");
        assert_eq!(
            tokens
                .verify(&mint(json!({"exp": now - 30.5})))
                .unwrap_err(),
            Invalid::Expired
        );
        assert_eq!(
            tokens
                .verify(&mint(json!({"exp": now + 60.0, "nbf": now + 30.5})))
                .unwrap_err(),
            Invalid::NotYetValid
        );
    }

    #[test]
    fn an_audience_once_asked_is_required() {
        let tokens = tokens(Some("hub"));
        assert!(
            tokens
                .verify(&mint(json!({"exp": now() + 60, "aud": "hub"})))
                .is_ok()
        );
        assert!(
            tokens
                .verify(&mint(json!({"exp": now() + 60, "aud": ["x", "hub"]})))
                .is_ok()
        );
        for claims in [
            json!({"exp": now() + 60, "aud": "other"}),
            json!({"exp": now() + 60}),
        ] {
            assert_eq!(tokens.verify(&mint(claims)).unwrap_err(), Invalid::Audience);
        }
    }

    #[test]
    fn public_patterns_and_short_secrets() {
        let tokens = tokens(None);
        assert!(tokens.is_public(&channel("news.today")) && !tokens.is_public(&channel("news")));
        assert!(Secret::new(b"short".to_vec()).is_err());
        assert!(!format!("{:?}", Secret::new(SECRET.to_vec()).unwrap()).contains("0123"));
    }
}
