//! Public keys and identities from X.509 certificates.
//!
//! Only extraction: nothing here checks a certificate's signature, chain or validity period.
//! That is the caller's job (the Director's TLS layer, with its fleet CA).
use crate::spki_key::parse_spki_der;
use crate::{pem, Error, PublicKey, Result};
use pkcs8::Document;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// What the Director reads from a device certificate to identify a vehicle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's common name, if it has one.
    pub subject_cn: Option<String>,
    /// `dNSName` entries of the subject alternative name extension, in order.
    pub san_dns: Vec<String>,
    /// `uniformResourceIdentifier` entries of the subject alternative name extension, in order.
    pub san_uri: Vec<String>,
    /// Start of the validity period, in seconds since the Unix epoch.
    pub not_before: i64,
    /// End of the validity period, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// Subject CN, SANs and validity of the first certificate in a PEM text (a chain's leaf).
pub fn certificate_info(pem: &[u8]) -> Result<CertificateInfo> {
    certificate_info_der(pem_to_der(pem)?.as_bytes())
}

/// As [`certificate_info`], from DER.
pub fn certificate_info_der(der: &[u8]) -> Result<CertificateInfo> {
    let cert = parse_der(der)?;
    let mut cns = cert.subject().iter_common_name();
    let subject_cn = match (cns.next(), cns.next()) {
        (None, _) => None,
        (Some(cn), None) => Some(
            cn.as_str()
                .map_err(|_| malformed("subject CN is not a string (expected UTF8String, PrintableString or IA5String)"))?
                .to_owned(),
        ),
        // Two CNs make "the" identity ambiguous; an attacker-chosen second CN must not win.
        (Some(_), Some(_)) => {
            return Err(malformed("subject has more than one CN (expected at most one)"));
        }
    };
    let mut san_dns = Vec::new();
    let mut san_uri = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::MalformedCertificate(format!("subject alternative name: {e}")))?;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(s) => san_dns.push((*s).to_owned()),
            GeneralName::URI(s) => san_uri.push((*s).to_owned()),
            _ => {}
        }
    }
    Ok(CertificateInfo {
        subject_cn,
        san_dns,
        san_uri,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The URI SAN form of a VIN in a device certificate: `urn:ferry:vin:<VIN>`.
pub const VIN_URI_PREFIX: &str = "urn:ferry:vin:";

/// The VINs a device certificate (DER) names: its subject CN and every URI SAN of the form
/// `urn:ferry:vin:<VIN>`, without repeats, CN first. The one reading of a vehicle's identity
/// from its certificate, shared by the Director and a gateway relay serving vehicles over
/// mutual TLS. Nothing here checks the certificate's chain or validity: the TLS layer has
/// done that before asking.
pub fn certificate_vins(der: &[u8]) -> Result<Vec<String>> {
    let info = certificate_info_der(der)?;
    let mut vins: Vec<String> = Vec::new();
    let from_san = info
        .san_uri
        .iter()
        .filter_map(|uri| uri.strip_prefix(VIN_URI_PREFIX));
    for vin in info.subject_cn.as_deref().into_iter().chain(from_san) {
        if !vin.is_empty() && !vins.iter().any(|v| v == vin) {
            vins.push(vin.to_owned());
        }
    }
    Ok(vins)
}

impl PublicKey {
    /// The TUF public key of the first certificate in a PEM text: RSA as rsassa-pss-sha256,
    /// P-256 as ecdsa-sha2-nistp256, Ed25519 as ed25519.
    pub fn from_certificate_pem(pem: &[u8]) -> Result<PublicKey> {
        Self::from_certificate_der(pem_to_der(pem)?.as_bytes())
    }

    /// As [`PublicKey::from_certificate_pem`], from DER.
    pub fn from_certificate_der(der: &[u8]) -> Result<PublicKey> {
        let cert = parse_der(der)?;
        parse_spki_der(cert.public_key().raw)
            .map_err(|r| Error::MalformedCertificate(format!("subject public key: {r}")))?
            .to_public_key()
    }
}

fn malformed(reason: &str) -> Error {
    Error::MalformedCertificate(reason.to_owned())
}

fn pem_to_der(pem: &[u8]) -> Result<Document> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| malformed("not PEM text (expected '-----BEGIN CERTIFICATE-----')"))?;
    let (label, block) = pem::first_block(text).map_err(Error::MalformedCertificate)?;
    if label != "CERTIFICATE" {
        return Err(Error::MalformedCertificate(format!(
            "PEM label is '{label}', expected 'CERTIFICATE'"
        )));
    }
    let (_, doc) = Document::from_pem(block)
        .map_err(|e| Error::MalformedCertificate(format!("PEM does not decode: {e}")))?;
    Ok(doc)
}

fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::MalformedCertificate(format!("not a DER X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after the certificate"));
    }
    Ok(cert)
}
