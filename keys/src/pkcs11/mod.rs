//! Keys on a PKCS#11 token (an HSM, a smart card; SoftHSM2 in tests), named by an RFC 7512
//! `pkcs11:` URI. The private key never leaves the token: Ferry asks it to sign a message
//! (Ed25519, CKM_EDDSA) or a SHA-256 digest computed here (ECDSA P-256, CKM_ECDSA;
//! RSASSA-PSS, CKM_RSA_PKCS_PSS with MGF1-SHA-256 and a 32-byte salt). The public key is
//! read from the token's public key object with the same label or id, and is the same TUF
//! key (and key id) that a key file of the same material gives.
mod generate;
mod public_key;
mod signer;
mod token;
mod uri;

pub use signer::Pkcs11Signer;
pub use uri::{ObjectType, PinSource, Pkcs11Uri};

use crate::{KeySource, PublicKey, Result, Signer};
use cryptoki::object::{AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::sync::Arc;
use token::{err, template};
use zeroize::Zeroizing;

/// A key on a PKCS#11 token.
#[derive(Clone)]
pub struct Pkcs11KeySource {
    uri: Pkcs11Uri,
    /// A PIN from elsewhere (a PIN file given on the command line), for a URI without one.
    pin: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Pkcs11KeySource {
    // The URI without its PIN, and never the caller's PIN.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeySource")
            .field("uri", &self.uri.redacted())
            .field("pin_given", &self.pin.is_some())
            .finish()
    }
}

/// An open session on the token a URI names.
struct Opened {
    session: Session,
    token: String,
}

impl Pkcs11KeySource {
    pub fn new(uri: Pkcs11Uri) -> Self {
        Pkcs11KeySource { uri, pin: None }
    }

    /// Parse `uri` ([`Pkcs11Uri::parse`]).
    pub fn parse(uri: &str) -> Result<Self> {
        Ok(Self::new(Pkcs11Uri::parse(uri)?))
    }

    /// Log in with `pin` when the URI carries none; a PIN given both ways is refused, as it
    /// is not clear which one was meant.
    pub fn with_pin(mut self, pin: Option<&[u8]>) -> Result<Self> {
        if let Some(pin) = pin {
            if self.uri.has_pin() {
                return Err(err(
                    "a PIN is given twice, in the URI and by the caller (expected one of them)",
                ));
            }
            self.pin = Some(Zeroizing::new(pin.to_vec()));
        }
        Ok(self)
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// A session on the named token; logged in when a PIN is known or `login_required`.
    fn open(&self, read_write: bool, login_required: bool) -> Result<Opened> {
        let pkcs11 = token::module(self.uri.module()?)?;
        let (slot, label) = token::find_slot(&pkcs11, &self.uri)?;
        let pin = token::pin(&self.uri, self.pin.as_ref())?;
        let session = token::open_session(
            &pkcs11,
            slot,
            &label,
            pin.as_ref(),
            read_write,
            login_required,
        )?;
        Ok(Opened {
            session,
            token: label,
        })
    }

    /// `token 'ferry' object="root-1"`, for messages.
    fn name(&self, token: &str) -> String {
        format!("token '{token}' {}", token::describe_object(&self.uri))
    }

    /// The private key the URI names.
    fn private_key(&self, opened: &Opened) -> Result<ObjectHandle> {
        token::check_names_object(&self.uri, ObjectType::Private)?;
        let tmpl = template(&self.uri, ObjectClass::PRIVATE_KEY);
        token::find_one(&opened.session, &tmpl, "the private key", &opened.token)?.ok_or_else(
            || {
                err(format!(
                    "no private key on {} (expected a CKO_PRIVATE_KEY with that label/id; \
                     private keys are only seen after login, so check the PIN is given)",
                    self.name(&opened.token)
                ))
            },
        )
    }

    /// The public key matching the URI, or (given `private`) the private key's `CKA_ID`;
    /// RSA falls back to the private key's own public attributes.
    fn public_key_in(&self, opened: &Opened, private: Option<ObjectHandle>) -> Result<PublicKey> {
        let s = &opened.session;
        let mut found = token::find_one(
            s,
            &template(&self.uri, ObjectClass::PUBLIC_KEY),
            "the public key",
            &opened.token,
        )?;
        if let (None, Some(private)) = (found, private) {
            let id = token::bytes_attr(s, private, AttributeType::Id)?;
            if !id.is_empty() {
                let tmpl = [
                    cryptoki::object::Attribute::Class(ObjectClass::PUBLIC_KEY),
                    cryptoki::object::Attribute::Id(id),
                ];
                found = token::find_one(s, &tmpl, "the private key's id", &opened.token)?;
            }
        }
        let object = match (found, private) {
            (Some(public), _) => public,
            (None, Some(private))
                if public_key::key_type(s, private)? == cryptoki::object::KeyType::RSA =>
            {
                private
            }
            _ => {
                return Err(err(format!(
                    "no public key on {} (expected a CKO_PUBLIC_KEY with the same label or \
                     CKA_ID as the private key{})",
                    self.name(&opened.token),
                    if private.is_none() {
                        "; with the PIN, the private key's CKA_ID is looked up too"
                    } else {
                        ""
                    }
                )))
            }
        };
        public_key::read_public(s, object)?.to_public_key()
    }

    /// The key's public half in TUF form. Public objects are readable without the PIN; it is
    /// used (when known) to find the public key by the private key's id.
    pub fn public_key(&self) -> Result<PublicKey> {
        token::check_names_object(&self.uri, ObjectType::Public)?;
        let opened = self.open(false, false)?;
        let public = token::find_one(
            &opened.session,
            &template(&self.uri, ObjectClass::PUBLIC_KEY),
            "the public key",
            &opened.token,
        )?;
        let private = match public {
            Some(_) => None,
            None => {
                let mut private_uri = self.clone();
                private_uri.uri.object_type = None;
                Some(private_uri.private_key(&opened)?)
            }
        };
        self.public_key_in(&opened, private)
    }

    /// The signer for the key, its session logged in.
    pub fn pkcs11_signer(&self) -> Result<Pkcs11Signer> {
        let opened = self.open(false, true)?;
        let private = self.private_key(&opened)?;
        let kind = public_key::key_type(&opened.session, private)?;
        if kind != cryptoki::object::KeyType::RSA {
            public_key::check_curve(&opened.session, private, kind)?;
        }
        let public = self.public_key_in(&opened, Some(private))?;
        let name = self.name(&opened.token);
        Pkcs11Signer::new(opened.session, private, public, name)
    }
}

impl KeySource for Pkcs11KeySource {
    fn signer(&self) -> Result<Arc<dyn Signer>> {
        Ok(Arc::new(self.pkcs11_signer()?))
    }
}
