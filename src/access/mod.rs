//! Who may read and publish what, and how a refusal of access looks (DESIGN.md §10, §14, §16):
//! `--auth`'s Basic credentials in front of every route (`auth.rs`), readers' and publishers'
//! tokens (`token.rs`, what one grants in `grant.rs`, their key in `public_key.rs`, their channel patterns in `pattern.rs`)
//! taken off a request and weighed per channel (`gate/`), the pacing of wrong guesses
//! (`guessing.rs`), the `Host` guard of a loopback bind (`hosts.rs`), who the client is behind a
//! proxy (`forwarded.rs`), secrets kept as digests (`digest.rs`) and the 401/403 answers
//! (`denied.rs`, built as every refusal is: `crate::refused`), and the application's own word
//! through `--authorize-url` on what none of these grants (`authorize/`). Routes ask it for a decision; it knows nothing of channels' events or streams.

mod auth;
mod authorize;
mod denied;
mod digest;
mod forwarded;
mod gate;
mod grant;
mod guessing;
mod hosts;
mod pattern;
mod public_key;
mod token;

pub use auth::{Credentials, guard as auth_guard};
pub use authorize::{AuthorizeConfig, Authorizer};
pub use denied::{Denied, forbidden};
pub use digest::SecretDigest;
pub use forwarded::{Peer, TrustedProxies};
pub use gate::{Access, Gate, access};
pub use grant::Grant;
pub use guessing::{Guesses, Penalty, peer_key, too_many};
pub use hosts::{AllowedHosts, HostName, guard as hosts_guard};
pub use pattern::Pattern;
pub use token::{KeySource, Secret, TokenConfig, Tokens};
