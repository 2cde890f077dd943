//! Loading a PKCS#11 module, finding the one token a URI names, logging in, and finding
//! key objects on it.
use super::uri::{ObjectType, PinSource, Pkcs11Uri};
use crate::{Error, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use zeroize::Zeroizing;

pub(crate) fn err(reason: impl Into<String>) -> Error {
    Error::Pkcs11(reason.into())
}

/// A cryptoki error as "what we did: which call returned which code". Never carries a PIN:
/// cryptoki's errors hold only return codes.
pub(crate) fn ck(what: &str) -> impl Fn(CkError) -> Error + '_ {
    move |e| match e {
        CkError::Pkcs11(rv, function) => err(format!("{what}: C_{function:?} returned {rv:?}")),
        other => err(format!("{what}: {other}")),
    }
}

/// Modules stay loaded and initialised for the life of the process: `C_Initialize` may run
/// once per process, and sessions of several signers share it.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(Default::default)
}

/// The module at `path`, loaded and initialised once. Loading runs the library's code: the
/// path is the operator's own choice, as any `module-path` in a PKCS#11 URI is.
pub(crate) fn module(path: &Path) -> Result<Pkcs11> {
    let mut loaded = modules().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = loaded.get(path) {
        return Ok(m.clone());
    }
    if !path.exists() {
        return Err(err(format!(
            "module {} does not exist (expected the path of a PKCS#11 shared library, \
             e.g. /usr/lib/softhsm/libsofthsm2.so)",
            path.display()
        )));
    }
    let pkcs11 = Pkcs11::new(path).map_err(|e| {
        err(format!(
            "module {} does not load as a PKCS#11 library: {e}",
            path.display()
        ))
    })?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck(&format!("initialising module {}", path.display()))(e)),
    }
    loaded.insert(path.to_owned(), pkcs11.clone());
    Ok(pkcs11)
}

fn matches(want: &Option<String>, have: &str) -> bool {
    want.as_deref().is_none_or(|w| w == have)
}

/// The one initialised token the URI's token, slot and library attributes select.
pub(crate) fn find_slot(pkcs11: &Pkcs11, uri: &Pkcs11Uri) -> Result<(Slot, String)> {
    let info = pkcs11
        .get_library_info()
        .map_err(ck("reading the module's information"))?;
    let version = info.library_version();
    if !matches(&uri.library_manufacturer, info.manufacturer_id())
        || !matches(&uri.library_description, info.library_description())
        || uri
            .library_version
            .is_some_and(|v| v != (version.major(), version.minor()))
    {
        return Err(err(format!(
            "the module is {} {} {}.{}, not the library the URI's library-* attributes name",
            info.manufacturer_id(),
            info.library_description(),
            version.major(),
            version.minor()
        )));
    }
    let slots = pkcs11
        .get_slots_with_initialized_token()
        .map_err(ck("listing the module's tokens"))?;
    let mut present = Vec::new();
    let mut chosen = Vec::new();
    for slot in slots {
        let token = pkcs11
            .get_token_info(slot)
            .map_err(ck("reading a token's information"))?;
        let slot_info = pkcs11
            .get_slot_info(slot)
            .map_err(ck("reading a slot's information"))?;
        present.push(format!("'{}' (slot-id={})", token.label(), slot.id()));
        if matches(&uri.token, token.label())
            && matches(&uri.manufacturer, token.manufacturer_id())
            && matches(&uri.serial, token.serial_number())
            && matches(&uri.model, token.model())
            && matches(&uri.slot_description, slot_info.slot_description())
            && matches(&uri.slot_manufacturer, slot_info.manufacturer_id())
            && uri.slot_id.is_none_or(|id| id == slot.id())
        {
            chosen.push((slot, token.label().to_owned()));
        }
    }
    match chosen.len() {
        1 => Ok(chosen.remove(0)),
        0 => Err(err(format!(
            "no initialised token matches {} (tokens present: {})",
            describe_token(uri),
            if present.is_empty() {
                "none".to_owned()
            } else {
                present.join(", ")
            }
        ))),
        n => Err(err(format!(
            "{n} tokens match {} (expected one: add token=LABEL, serial= or slot-id= to the URI)",
            describe_token(uri)
        ))),
    }
}

fn describe_token(uri: &Pkcs11Uri) -> String {
    match (&uri.token, uri.slot_id) {
        (Some(t), _) => format!("token={t:?}"),
        (None, Some(s)) => format!("slot-id={s}"),
        (None, None) => "the URI".to_owned(),
    }
}

/// The user PIN: the URI's, else the caller's, else none.
pub(crate) fn pin(
    uri: &Pkcs11Uri,
    fallback: Option<&Zeroizing<Vec<u8>>>,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    match &uri.pin {
        PinSource::Value(v) => Ok(Some(v.clone())),
        PinSource::File(path) => {
            let mut pin = Zeroizing::new(std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?);
            if pin.last() == Some(&b'\n') {
                pin.pop();
                if pin.last() == Some(&b'\r') {
                    pin.pop();
                }
            }
            if pin.is_empty() {
                return Err(err(format!(
                    "PIN file {} is empty (expected the token's user PIN)",
                    path.display()
                )));
            }
            Ok(Some(pin))
        }
        PinSource::None => Ok(fallback.cloned()),
    }
}

/// A session on the token, logged in as the user when a PIN is given or the token needs it.
pub(crate) fn open_session(
    pkcs11: &Pkcs11,
    slot: Slot,
    label: &str,
    pin: Option<&Zeroizing<Vec<u8>>>,
    read_write: bool,
    login_required: bool,
) -> Result<Session> {
    let session = if read_write {
        pkcs11.open_rw_session(slot)
    } else {
        pkcs11.open_ro_session(slot)
    }
    .map_err(ck(&format!("opening a session on token '{label}'")))?;
    let Some(pin) = pin else {
        let needed = pkcs11
            .get_token_info(slot)
            .map(|t| t.login_required())
            .unwrap_or(true);
        if needed && login_required {
            return Err(err(format!(
                "token '{label}' needs its user PIN (expected pin-source=file:PATH or \
                 pin-value=... in the URI)"
            )));
        }
        return Ok(session);
    };
    let raw = RawAuthPin::new(Box::new(pin.to_vec()));
    match session.login_with_raw(UserType::User, &raw) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(err(format!(
            "login to token '{label}' failed: the PIN is incorrect (CKR_PIN_INCORRECT; \
             expected the token's user PIN)"
        ))),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(err(format!(
            "login to token '{label}' failed: the user PIN is locked (CKR_PIN_LOCKED; \
             the security officer must reset it)"
        ))),
        Err(e) => Err(ck(&format!("logging in to token '{label}'"))(e)),
    }
}

/// The template selecting objects of `class` by the URI's label and id.
pub(crate) fn template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

/// What the URI names, for messages: `object="root-1" id=01ab`.
pub(crate) fn describe_object(uri: &Pkcs11Uri) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &uri.object {
        parts.push(format!("object={o:?}"));
    }
    if let Some(id) = &uri.id {
        parts.push(format!("id={}", hex::encode(id)));
    }
    parts.join(" ")
}

/// The URI must name an object by label or id, and not as something other than a key.
pub(crate) fn check_names_object(uri: &Pkcs11Uri, wanted: ObjectType) -> Result<()> {
    if uri.object.is_none() && uri.id.is_none() {
        return Err(err(
            "the URI names no object (expected object=LABEL or id=%XX... in its path)",
        ));
    }
    if wanted == ObjectType::Private && uri.object_type == Some(ObjectType::Public) {
        return Err(err(
            "the URI names a public key (type=public); signing needs the private key \
             (expected type=private or no type)",
        ));
    }
    Ok(())
}

/// The one object matching `tmpl`, `None` if there is none.
pub(crate) fn find_one(
    session: &Session,
    tmpl: &[Attribute],
    what: &str,
    token: &str,
) -> Result<Option<ObjectHandle>> {
    let found = session
        .find_objects(tmpl)
        .map_err(ck(&format!("searching token '{token}' for {what}")))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(err(format!(
            "{} objects on token '{token}' match {what} (expected one: add id= or object= \
             to the URI)",
            many.len()
        ))),
    }
}

/// One attribute's bytes, or an error naming it.
pub(crate) fn bytes_attr(
    session: &Session,
    object: ObjectHandle,
    which: AttributeType,
) -> Result<Vec<u8>> {
    let attrs = session
        .get_attributes(object, &[which])
        .map_err(ck(&format!("reading {which:?} of a key")))?;
    attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcParams(v)
            | Attribute::EcPoint(v)
            | Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::Id(v)
            | Attribute::Label(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| err(format!("the key has no {which:?} attribute")))
}
