//! The primary's own ECU: the Secondary library in-process, so it verifies, installs and
//! reports exactly as a Secondary does. It also carries the refusals only the primary sees
//! (a check between the repositories, a download, a sibling ECU not ready), so the vehicle
//! manifest names them.

use crate::distribute::{EcuLink, EcuStatus};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use ferry_core::manifest::EcuVersionReport;
use ferry_core::metadata::Signed;
use ferry_keys::Signer;
use ferry_secondary::image::tee::Tap;
use ferry_secondary::Ecu;

#[derive(Debug)]
pub struct OwnEcu {
    serial: String,
    ecu: Ecu,
}

impl OwnEcu {
    /// Open the own ECU at `now` (the time resumed install steps are journaled at).
    pub fn open(config: ferry_secondary::Config, now: DateTime<Utc>) -> Result<Self> {
        let serial = config.serial.clone();
        let ecu = Ecu::open_at(config, now).map_err(|source| Error::own_ecu(&serial, source))?;
        Ok(OwnEcu { serial, ecu })
    }

    fn wrap(&self) -> impl FnOnce(ferry_secondary::Error) -> Error + '_ {
        move |source| Error::own_ecu(&self.serial, source)
    }

    /// The key that signs the vehicle manifest: the primary ECU's, as registered.
    pub fn signer(&self) -> &dyn Signer {
        self.ecu.signer()
    }

    /// The latest time the own ECU verified metadata at: the vehicle's securely attested
    /// time, which no verification goes below.
    pub fn verified_time(&self) -> Result<Option<DateTime<Utc>>> {
        self.ecu.verified_time().map_err(self.wrap())
    }

    /// Record a refusal the primary made for the vehicle: in `attacks_detected` when it was
    /// a failed security check, always as the last install's result.
    pub fn record_refusal(&mut self, target: &str, error: &Error) -> Result<()> {
        let detail = error.to_string();
        self.ecu
            .record_refusal(target, &detail, error.is_attack())
            .map_err(|source| Error::own_ecu(&self.serial, source))
    }
}

impl EcuLink for OwnEcu {
    fn serial(&self) -> &str {
        &self.serial
    }

    fn hardware_id(&mut self) -> Result<String> {
        Ok(self.ecu.info().hardware_id)
    }

    fn status(&mut self) -> Result<EcuStatus> {
        self.ecu.status().map_err(self.wrap())
    }

    fn send_metadata(&mut self, bundle: &[u8], now: DateTime<Utc>) -> Result<Option<String>> {
        let serial = self.serial.clone();
        let pending = self
            .ecu
            .receive_metadata(bundle, now)
            .map_err(|source| Error::own_ecu(&serial, source))?;
        Ok(pending.map(|a| a.target_name().to_owned()))
    }

    fn send_image(&mut self, mut image: Tap, _length: u64) -> Result<()> {
        let serial = self.serial.clone();
        self.ecu
            .receive_image(&mut image)
            .map_err(|source| Error::own_ecu(&serial, source))
    }

    fn install(&mut self, now: DateTime<Utc>) -> Result<()> {
        let serial = self.serial.clone();
        self.ecu
            .install(now)
            .map(|_| ())
            .map_err(|source| Error::own_ecu(&serial, source))
    }

    fn report(&mut self, nonce: &str, now: DateTime<Utc>) -> Result<Signed<EcuVersionReport>> {
        self.ecu.report(nonce, now).map_err(self.wrap())
    }
}
