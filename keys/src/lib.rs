//! Ferry's key layer: TUF key JSON and key ids, private keys as (encrypted) PKCS#8 PEM,
//! public keys as SPKI PEM or from X.509 certificates, and signing/verification for
//! ed25519, rsassa-pss-sha256 and ecdsa-sha2-nistp256, with keys in files or on PKCS#11 tokens.
//!
//! Canonical JSON lives here too, because a key id is the SHA-256 of a key's canonical form.

mod cert;
pub mod cjson;
mod ed25519_strict;
mod error;
pub mod fs;
mod identified;
mod key_json;
mod key_source;
mod pem;
pub mod pkcs11;
mod private;
mod private_pem;
mod public;
mod signer;
mod spki_key;
mod verify;

pub use error::{Error, Result};
pub use identified::IdentifiedKey;
pub use key_source::{FileKeySource, KeySource};
pub use pkcs11::{Pkcs11KeySource, Pkcs11Signer, Pkcs11Uri};
pub use public::{KeyId, KeyVal, PublicKey, Scheme};
pub use signer::Signer;

pub use cert::{
    certificate_info, certificate_info_der, certificate_vins, CertificateInfo, VIN_URI_PREFIX,
};
pub use private::{KeyKind, PrivateKey};
pub use private_pem::check_owner_only;
