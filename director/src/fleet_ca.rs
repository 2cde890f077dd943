//! The fleet CA (DESIGN.md "Servers and ports"): the certificate authority whose device
//! certificates the Director's mutual-TLS listener accepts, and which also issues the
//! Director's own server certificate.
//!
//! A device certificate names its vehicle twice: the VIN is the subject CN, and a URI subject
//! alternative name `urn:ferry:vin:<VIN>` ([`VIN_URI_PREFIX`]). The reader
//! ([`certificate_vins`]) accepts either, so certificates from another tool may carry the VIN
//! in just one of them (a CN holding an ECU serial, say, with the VIN in the SAN). DNS SANs are
//! never read as VINs: they name hosts. Device certificates are for client authentication
//! only and server certificates for server authentication only (extended key usage), so a
//! server certificate of the same CA can never pass as a vehicle's.
//!
//! All keys are ECDSA P-256. Private keys leave this module as PEM in [`Zeroizing`] strings;
//! [`write_private_pem`] writes them to new files with mode 0600.

use crate::error::{Error, Result};
use crate::store::check_vin;
use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SanType,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::net::IpAddr;
use std::path::Path;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::{KeyIdentifier, ParsedExtension};
use zeroize::Zeroizing;

/// The URI SAN form of a VIN in a device certificate: `urn:ferry:vin:<VIN>`.
pub use ferry_keys::VIN_URI_PREFIX;

/// The subject CN prefix of operator certificates ([`FleetCa::issue_operator_cert`]).
pub const OPERATOR_CN_PREFIX: &str = "operator:";

/// The subject CN prefix of gateway relay certificates ([`FleetCa::issue_relay_cert`]).
pub const RELAY_CN_PREFIX: &str = "relay:";

/// Certificates start this long before the time they are issued at, so a Director or device
/// whose clock is a little behind the issuing host's still accepts them.
const BACKDATE_SECS: i64 = 3600;

/// A freshly issued certificate and its private key.
pub struct IssuedCert {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM (`PRIVATE KEY`), unencrypted: write it with
    /// [`write_private_pem`].
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// The fleet CA: its certificate and the key that signs what it issues.
pub struct FleetCa {
    cert_pem: String,
    /// The CA's subject as encoded in its certificate; every issued certificate's issuer
    /// must be exactly these bytes or no verifier would chain it to the CA.
    subject_der: Vec<u8>,
    subject: String,
    not_after: DateTime<Utc>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for FleetCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetCa")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl FleetCa {
    /// A new fleet CA with a fresh P-256 key: a self-signed CA certificate with subject CN
    /// `common_name`, valid from `now` (less an hour) for `valid_for`, which may sign end-entity
    /// certificates only (path length 0).
    pub fn generate(
        common_name: &str,
        now: DateTime<Utc>,
        valid_for: std::time::Duration,
    ) -> Result<FleetCa> {
        if common_name.trim().is_empty() {
            return Err(Error::FleetCa {
                reason: "the CA common name is empty; expected a name such as \"Ferry fleet CA\""
                    .into(),
            });
        }
        let key = new_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, now, valid_for, None)?;
        let cert = params.self_signed(&key).map_err(|e| Error::FleetCa {
            reason: format!("the CA certificate could not be built: {e}"),
        })?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        Self::from_pem(&cert.pem(), &key_pem, None)
    }

    /// The fleet CA from its certificate and private key, both PEM. The key may be PKCS#8
    /// `PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with `passphrase`. Refused: a certificate
    /// that is not a CA, or may not sign certificates, or a key that is not its key.
    pub fn from_pem(cert_pem: &str, key_pem: &str, passphrase: Option<&[u8]>) -> Result<FleetCa> {
        let ca_err = |reason: String| Error::FleetCa { reason };
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
            ca_err(format!(
                "the CA certificate is not PEM ({e}); expected a '-----BEGIN CERTIFICATE-----' block"
            ))
        })?;
        let (rest, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
            ca_err(format!(
                "the CA certificate does not parse ({e}); expected a DER X.509 certificate"
            ))
        })?;
        if !rest.is_empty() {
            return Err(ca_err(
                "the CA certificate has trailing bytes; expected one DER certificate".into(),
            ));
        }
        check_is_ca(&cert)?;
        let key = load_key(key_pem, passphrase)?;
        if rcgen::PublicKeyData::subject_public_key_info(&key) != cert.public_key().raw {
            return Err(ca_err(
                "the private key is not the CA certificate's key; expected the key the CA certificate was made for"
                    .into(),
            ));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen_name(&cert)?;
        // Issued certificates' authority key identifier then equals the CA's own subject key
        // identifier, whichever method its maker used.
        if let Some(ski) = subject_key_id(&cert) {
            params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
        }
        let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
            .ok_or_else(|| ca_err("the CA certificate's notAfter is out of range".into()))?;
        Ok(FleetCa {
            cert_pem: cert_pem.to_owned(),
            subject_der: cert.subject().as_raw().to_vec(),
            subject: cert.subject().to_string(),
            not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// As [`FleetCa::from_pem`], from a certificate file and a key file.
    pub fn read_files(
        cert_path: &Path,
        key_path: &Path,
        passphrase: Option<&[u8]>,
    ) -> Result<FleetCa> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map(Zeroizing::new)
                .map_err(|e| Error::FleetCa {
                    reason: format!("{}: {e}; expected a readable PEM file", path.display()),
                })
        };
        let text = |path: &Path, bytes: &[u8]| -> Result<String> {
            String::from_utf8(bytes.to_vec()).map_err(|_| Error::FleetCa {
                reason: format!("{}: not UTF-8; expected a PEM file", path.display()),
            })
        };
        let cert = read(cert_path)?;
        let key = read(key_path)?;
        let key_text = Zeroizing::new(text(key_path, &key)?);
        Self::from_pem(&text(cert_path, &cert)?, &key_text, passphrase)
    }

    /// The CA certificate, PEM: the trust anchor of the Director's `[tls]` section and of
    /// devices checking the Director's server certificate.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, unencrypted PKCS#8 PEM (write it with [`write_private_pem`]).
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.issuer.key().serialize_pem())
    }

    /// The CA's subject, for messages.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A device certificate for vehicle `vin` with a fresh P-256 key: subject CN `vin`, URI SAN
    /// `urn:ferry:vin:<vin>`, client authentication only. Registration is the caller's check
    /// (the CLI refuses VINs the store does not know); here the VIN must only be one the
    /// Director could register.
    pub fn issue_device_cert(
        &self,
        vin: &str,
        now: DateTime<Utc>,
        valid_for: std::time::Duration,
    ) -> Result<IssuedCert> {
        check_vin(vin)?;
        let uri = format!("{VIN_URI_PREFIX}{vin}");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, vin);
        params.subject_alt_names = vec![SanType::URI(uri.as_str().try_into().map_err(|e| {
            Error::Certificate {
                reason: format!("SAN {uri:?} is not an IA5 string ({e}); expected ASCII"),
            }
        })?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, now, valid_for)
    }

    /// A client certificate for an operator's tool (the admin API, reached over the same
    /// mutual-TLS listener, which admits fleet certificates only): subject CN
    /// `operator:<name>`, no VIN SAN. No VIN may contain ':', so this certificate can never
    /// pass as a vehicle's, whatever is registered later.
    pub fn issue_operator_cert(
        &self,
        name: &str,
        now: DateTime<Utc>,
        valid_for: std::time::Duration,
    ) -> Result<IssuedCert> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Certificate {
                reason: format!(
                    "operator name {name:?} is empty or has spaces or non-ASCII characters; expected a name such as ops-console"
                ),
            });
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{OPERATOR_CN_PREFIX}{name}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, now, valid_for)
    }

    /// A client certificate for gateway relay `name` (issue #20), toward the Director's
    /// mutual-TLS listener: subject CN `relay:<name>`, no VIN SAN, client authentication only.
    /// No VIN may contain ':', so it can never pass as a vehicle's; the Director takes it as
    /// the relay only once `ferry admin relay add NAME --cert` registered this very
    /// certificate (its SHA-256), and never on the admin API.
    pub fn issue_relay_cert(
        &self,
        name: &str,
        now: DateTime<Utc>,
        valid_for: std::time::Duration,
    ) -> Result<IssuedCert> {
        crate::store::check_relay_name(name)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{RELAY_CN_PREFIX}{name}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, now, valid_for)
    }

    /// A server certificate for the Director with a fresh P-256 key, for `names`: host names
    /// (DNS SANs) and IP addresses (IP SANs), such as `localhost` and `127.0.0.1`; server
    /// authentication only. The first name is also the subject CN.
    pub fn issue_server_cert(
        &self,
        names: &[String],
        now: DateTime<Utc>,
        valid_for: std::time::Duration,
    ) -> Result<IssuedCert> {
        let Some(first) = names.first() else {
            return Err(Error::Certificate {
                reason: "no server names given; expected at least one host name or IP address"
                    .into(),
            });
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, first);
        params.subject_alt_names = names
            .iter()
            .map(|name| server_name(name))
            .collect::<Result<_>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, now, valid_for)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        now: DateTime<Utc>,
        valid_for: std::time::Duration,
    ) -> Result<IssuedCert> {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, now, valid_for, Some(self.not_after))?;
        // The serial number is rcgen's default, a hash of the public key: every certificate
        // gets a fresh key, so serials never repeat.
        let key = new_key()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| Error::Certificate {
                reason: format!("the certificate could not be signed: {e}"),
            })?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert.der()).map_err(|e| Error::Certificate {
                reason: format!("the issued certificate does not parse back: {e}"),
            })?;
        if parsed.issuer().as_raw() != self.subject_der.as_slice() {
            return Err(Error::FleetCa {
                reason: format!(
                    "the CA subject {} cannot be reproduced exactly in issued certificates (it has multi-valued or repeated attributes); expected a CA subject of single-valued attributes",
                    self.subject
                ),
            });
        }
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}

/// The VINs a device certificate (DER) names ([`ferry_keys::certificate_vins`]: its subject
/// CN and every `urn:ferry:vin:` URI SAN). Nothing here checks the certificate's chain or
/// validity: the TLS layer has done that before asking.
pub fn certificate_vins(der: &[u8]) -> Result<Vec<String>> {
    ferry_keys::certificate_vins(der).map_err(|e| Error::Certificate {
        reason: format!("the device certificate's names do not read: {e}"),
    })
}

/// The relay a client certificate (DER) is for, if its subject CN is `relay:<NAME>`
/// ([`FleetCa::issue_relay_cert`]); whether that relay is registered, unrevoked and this
/// its certificate is the store's check.
pub fn certificate_relay(der: &[u8]) -> Option<String> {
    let info = ferry_keys::certificate_info_der(der).ok()?;
    let name = info.subject_cn?.strip_prefix(RELAY_CN_PREFIX)?.to_owned();
    (!name.is_empty()).then_some(name)
}

/// Write a private key (PKCS#8 PEM) to a new file with mode 0600, encrypted if `passphrase`
/// is given; an existing file is never overwritten, and no partial file is left behind.
pub fn write_private_pem(path: &Path, pem: &str, passphrase: Option<&[u8]>) -> Result<()> {
    // ferry-keys already creates key files 0600 at open(2) with create_new; reuse it.
    let key = ferry_keys::PrivateKey::from_pkcs8_pem(pem, None).map_err(Error::KeyFile)?;
    key.write_file(path, passphrase).map_err(Error::KeyFile)
}

fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| Error::Certificate {
        reason: format!("P-256 key generation failed: {e}"),
    })
}

/// An rcgen key from PKCS#8 PEM; an encrypted key is decrypted by ferry-keys first.
fn load_key(pem: &str, passphrase: Option<&[u8]>) -> Result<KeyPair> {
    let plain;
    let pem = if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        plain = ferry_keys::PrivateKey::from_pkcs8_pem(pem, passphrase)
            .and_then(|k| k.to_pkcs8_pem(None))
            .map_err(Error::KeyFile)?;
        plain.as_str()
    } else {
        pem
    };
    KeyPair::from_pem(pem).map_err(|e| Error::FleetCa {
        reason: format!(
            "the CA private key does not load ({e}); expected a PKCS#8 PEM ECDSA, Ed25519 or RSA key"
        ),
    })
}

fn check_is_ca(cert: &X509Certificate<'_>) -> Result<()> {
    let reason = match cert.basic_constraints() {
        Err(e) => Some(format!("its basic constraints do not parse ({e})")),
        Ok(Some(bc)) if bc.value.ca => None,
        Ok(_) => Some("it is not a CA certificate (basicConstraints CA is not set)".into()),
    }
    .or_else(|| match cert.key_usage() {
        Err(e) => Some(format!("its key usage does not parse ({e})")),
        Ok(Some(ku)) if !ku.value.key_cert_sign() => {
            Some("its key usage does not include keyCertSign".into())
        }
        Ok(_) => None,
    });
    match reason {
        Some(reason) => Err(Error::FleetCa {
            reason: format!(
                "the certificate {} cannot be the fleet CA: {reason}; expected a CA certificate allowed to sign certificates",
                cert.subject()
            ),
        }),
        None => Ok(()),
    }
}

/// The CA's subject as an rcgen name, attribute by attribute and with the same string types,
/// so issued certificates encode their issuer exactly as the CA encodes its subject (checked
/// after issuing: rcgen cannot express multi-valued RDNs).
fn rcgen_name(cert: &X509Certificate<'_>) -> Result<DistinguishedName> {
    let mut name = DistinguishedName::new();
    for attr in cert.subject().iter().flat_map(|rdn| rdn.iter()) {
        let unsupported = || {
            Error::FleetCa {
            reason: format!(
                "the CA subject {} has an attribute rcgen cannot re-encode; expected UTF8String, PrintableString or IA5String attributes",
                cert.subject()
            ),
        }
        };
        let oid: Vec<u64> = attr.attr_type().iter().ok_or_else(unsupported)?.collect();
        let value = attr.attr_value();
        let text = std::str::from_utf8(value.data).map_err(|_| unsupported())?;
        let value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
            Tag::PrintableString => {
                DnValue::PrintableString(text.try_into().map_err(|_| unsupported())?)
            }
            Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(|_| unsupported())?),
            _ => return Err(unsupported()),
        };
        name.push(DnType::from_oid(&oid), value);
    }
    Ok(name)
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(KeyIdentifier(id)) => Some(id.to_vec()),
            _ => None,
        })
}

/// A server name as a SAN: an IP address, or a DNS name of letters, digits, '-' and '.'.
fn server_name(name: &str) -> Result<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(Error::Certificate {
            reason: format!(
                "server name {name:?} is neither an IP address nor a DNS name; expected e.g. director.example.com, localhost or 127.0.0.1"
            ),
        });
    }
    name.try_into()
        .map(SanType::DnsName)
        .map_err(|e| Error::Certificate {
            reason: format!("server name {name:?} is not an IA5 string ({e})"),
        })
}

/// Validity from `now` less [`BACKDATE_SECS`] to `now + valid_for`, which must not outlast
/// the issuing CA (`ca_not_after`): a verifier would reject the certificate from then on
/// anyway, and a date the operator did not get is worse than a refusal.
fn set_validity(
    params: &mut CertificateParams,
    now: DateTime<Utc>,
    valid_for: std::time::Duration,
    ca_not_after: Option<DateTime<Utc>>,
) -> Result<()> {
    let invalid = |reason: String| Error::Certificate { reason };
    let length = chrono::Duration::from_std(valid_for)
        .ok()
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| {
            invalid(format!(
                "validity {valid_for:?} is out of range; expected a positive duration such as 365 days"
            ))
        })?;
    let not_after = now
        .checked_add_signed(length)
        .ok_or_else(|| invalid(format!("validity {valid_for:?} runs past the year 9999")))?;
    if let Some(ca_not_after) = ca_not_after.filter(|ca| not_after > *ca) {
        return Err(invalid(format!(
            "the certificate would be valid until {not_after}, after the fleet CA expires at {ca_not_after}; expected a shorter validity, or a new fleet CA"
        )));
    }
    let to_time = |t: DateTime<Utc>| {
        time::OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|e| invalid(format!("time {t} is out of range for a certificate: {e}")))
    };
    params.not_before = to_time(now - chrono::Duration::seconds(BACKDATE_SECS))?;
    params.not_after = to_time(not_after)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferry_core::{Clock, SystemClock};

    const YEAR: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

    fn ca() -> FleetCa {
        FleetCa::generate("Ferry fleet CA", SystemClock.now(), 10 * YEAR).unwrap()
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_device_certificate_names_its_vin_in_cn_and_san() {
        let ca = ca();
        let issued = ca
            .issue_device_cert("VIN-1", SystemClock.now(), YEAR)
            .unwrap();
        let info = ferry_keys::certificate_info(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(info.subject_cn.as_deref(), Some("VIN-1"));
        assert_eq!(info.san_uri, ["urn:ferry:vin:VIN-1"]);
        assert_eq!(certificate_vins(&der(&issued.cert_pem)).unwrap(), ["VIN-1"]);
        assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{issued:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_loaded_ca_issues_certificates_that_chain_to_it() {
        let ca = ca();
        let loaded = FleetCa::from_pem(ca.cert_pem(), &ca.key_pem(), None).unwrap();
        let issued = loaded
            .issue_device_cert("VIN-2", SystemClock.now(), YEAR)
            .unwrap();
        let cert_der = der(&issued.cert_pem);
        let ca_der = der(ca.cert_pem());
        let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
        assert_eq!(subject_key_id(&ca_cert), authority_key_id(&cert));
    }

    fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
        cert.extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
    }

    #[test]
    fn an_encrypted_ca_key_loads_with_its_passphrase() {
        let ca = ca();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        write_private_pem(&path, &ca.key_pem(), Some(b"secret")).unwrap();
        let encrypted = std::fs::read_to_string(&path).unwrap();
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let err = FleetCa::from_pem(ca.cert_pem(), &encrypted, None).unwrap_err();
        assert!(err.to_string().contains("passphrase"), "{err}");
        let loaded = FleetCa::from_pem(ca.cert_pem(), &encrypted, Some(b"secret")).unwrap();
        loaded
            .issue_device_cert("VIN-3", SystemClock.now(), YEAR)
            .unwrap();
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let ca = ca();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let issued = ca
            .issue_device_cert("VIN-4", SystemClock.now(), YEAR)
            .unwrap();
        write_private_pem(&path, &issued.key_pem, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = write_private_pem(&path, &issued.key_pem, None).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn a_ca_refuses_a_foreign_key_and_a_leaf_certificate() {
        let (a, b) = (ca(), ca());
        let err = FleetCa::from_pem(a.cert_pem(), &b.key_pem(), None).unwrap_err();
        assert!(
            err.to_string().contains("not the CA certificate's key"),
            "{err}"
        );
        let leaf = a
            .issue_device_cert("VIN-5", SystemClock.now(), YEAR)
            .unwrap();
        let err = FleetCa::from_pem(&leaf.cert_pem, &leaf.key_pem, None).unwrap_err();
        assert!(err.to_string().contains("not a CA certificate"), "{err}");
    }

    #[test]
    fn bad_names_and_validities_are_refused() {
        let ca = ca();
        let now = SystemClock.now();
        let err = ca.issue_device_cert("VIN/../x", now, YEAR).unwrap_err();
        assert!(
            err.to_string().contains("registration check failed"),
            "{err}"
        );
        let err = ca
            .issue_server_cert(&["bad name".into()], now, YEAR)
            .unwrap_err();
        assert!(err.to_string().contains("neither an IP address"), "{err}");
        let err = ca.issue_server_cert(&[], now, YEAR).unwrap_err();
        assert!(err.to_string().contains("no server names"), "{err}");
        let err = ca
            .issue_device_cert("VIN-6", now, std::time::Duration::ZERO)
            .unwrap_err();
        assert!(
            err.to_string().contains("expected a positive duration"),
            "{err}"
        );
        let err = ca.issue_device_cert("VIN-6", now, 11 * YEAR).unwrap_err();
        assert!(
            err.to_string().contains("after the fleet CA expires"),
            "{err}"
        );
    }

    #[test]
    fn an_operator_certificate_can_never_name_a_registrable_vin() {
        let ca = ca();
        let issued = ca
            .issue_operator_cert("ops", SystemClock.now(), YEAR)
            .unwrap();
        let vins = certificate_vins(&der(&issued.cert_pem)).unwrap();
        assert_eq!(vins, ["operator:ops"]);
        assert!(check_vin(&vins[0]).is_err());
        let err = ca
            .issue_operator_cert("a b", SystemClock.now(), YEAR)
            .unwrap_err();
        assert!(err.to_string().contains("operator name"), "{err}");
    }

    #[test]
    fn a_relay_certificate_names_its_relay_and_no_registrable_vin() {
        let ca = ca();
        let issued = ca
            .issue_relay_cert("yard-7", SystemClock.now(), YEAR)
            .unwrap();
        let relay_der = der(&issued.cert_pem);
        assert_eq!(certificate_relay(&relay_der).as_deref(), Some("yard-7"));
        let vins = certificate_vins(&relay_der).unwrap();
        assert_eq!(vins, ["relay:yard-7"]);
        assert!(check_vin(&vins[0]).is_err());
        let device = ca
            .issue_device_cert("VIN-7", SystemClock.now(), YEAR)
            .unwrap();
        assert_eq!(certificate_relay(&der(&device.cert_pem)), None);
        assert!(ca.issue_relay_cert("a/b", SystemClock.now(), YEAR).is_err());
    }

    #[test]
    fn a_server_certificate_names_hosts_and_addresses() {
        let ca = ca();
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        let issued = ca
            .issue_server_cert(&names, SystemClock.now(), YEAR)
            .unwrap();
        let info = ferry_keys::certificate_info(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(info.san_dns, ["localhost"]);
        assert!(info.san_uri.is_empty());
    }
}
