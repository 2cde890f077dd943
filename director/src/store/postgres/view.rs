//! A device request's [`View`] on PostgreSQL: one read-only REPEATABLE READ transaction (one
//! snapshot), begun with its first read. Every read is a round trip to the server, so the
//! BEGIN goes out with the first read, and reads announced with [`View::prefetch`] go out
//! together with it: a device request that announces its reads waits one round trip for
//! all of them (tokio-postgres sends requests in the order their futures are first polled,
//! and `join!` is `biased` to poll them in order; the BEGIN is first, so the snapshot is taken
//! by the reads after it).

use super::sql::classify;
use super::{assignments, ecu_keys, inventory, metadata, offline, relays, PgStore};
use crate::model::{Assignment, MetadataRole, StoredMetadata};
use crate::store::view::{device_token_matches, Prefetch, View};
use crate::Result;
use deadpool_postgres::Object;
use ferry_core::manifest::RegisteredVehicle;
use std::cell::{Cell, RefCell};
use std::future::Future;

/// How a [`PgView`] begins.
const BEGIN_VIEW: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

pub(super) struct PgView<'a> {
    store: &'a PgStore,
    client: &'a Object,
    op: &'a str,
    /// Whether the reads share a snapshot (one transaction); if not, each is a statement
    /// of its own and the view sends no BEGIN.
    snapshot: bool,
    /// Whether the BEGIN was sent (the view then ends with a ROLLBACK).
    begun: Cell<bool>,
    /// The answers of announced reads, each handed out once, to the read it answers.
    prefetched: RefCell<Prefetched>,
}

/// An announced read's VIN (and role) with its answer.
#[derive(Default)]
struct Prefetched {
    token: Option<(String, Result<Option<Vec<u8>>>)>,
    keys: Option<(String, Result<Option<RegisteredVehicle>>)>,
    metadata: Option<(String, MetadataRole, Result<Option<StoredMetadata>>)>,
    active: Option<(String, Result<Vec<Assignment>>)>,
}

/// `f`'s output, if there is an `f`: an announced read, or none.
async fn maybe<F: Future>(f: Option<F>) -> Option<F::Output> {
    match f {
        Some(f) => Some(f.await),
        None => None,
    }
}

impl<'a> PgView<'a> {
    /// A view on `client`; with `snapshot`, one read-only transaction.
    pub(super) fn new(store: &'a PgStore, client: &'a Object, op: &'a str, snapshot: bool) -> Self {
        PgView {
            store,
            client,
            op,
            snapshot,
            begun: Cell::new(false),
            prefetched: RefCell::default(),
        }
    }

    /// Whether the view's transaction was begun (and must be ended).
    pub(super) fn begun(&self) -> bool {
        self.begun.get()
    }

    /// The BEGIN, if not sent yet (`None` if it was, or if the view takes no snapshot).
    fn begin(
        &self,
    ) -> Option<impl Future<Output = std::result::Result<(), tokio_postgres::Error>> + '_> {
        if !self.snapshot || self.begun.replace(true) {
            None
        } else {
            Some(self.client.batch_execute(BEGIN_VIEW))
        }
    }

    /// `read` in the view: with the BEGIN if it is the first. A failed BEGIN fails the read
    /// even when the read itself succeeded (it ran outside the snapshot).
    fn run<T>(&self, read: impl Future<Output = Result<T>>) -> Result<T> {
        let (began, out) = self
            .store
            .block(async { tokio::join!(biased; maybe(self.begin()), read) });
        began.transpose().map_err(|e| classify(self.op, e))?;
        out
    }
}

impl View for PgView<'_> {
    fn prefetch(&self, reads: &[Prefetch<'_>]) -> Result<()> {
        let (mut token, mut keys, mut meta, mut active) = (None, None, None, None);
        for read in reads {
            match *read {
                Prefetch::DeviceToken(vin) => token = Some(vin),
                Prefetch::EcuKeys(vin) => keys = Some(vin),
                Prefetch::Metadata(vin, role) => meta = Some((vin, role)),
                Prefetch::ActiveAssignments(vin) => active = Some(vin),
            }
        }
        let c = self.client;
        let (began, token_hash, ecu_keys, stored, assigned) = self.store.block(async {
            tokio::join!(
                biased;
                maybe(self.begin()),
                maybe(token.map(|vin| inventory::device_token_hash(c, vin))),
                maybe(keys.map(|vin| ecu_keys::ecu_keys(c, &self.store.keys, vin))),
                maybe(meta.map(|(vin, role)| metadata::get(c, vin, role))),
                maybe(active.map(|vin| assignments::list(c, vin, true))),
            )
        });
        began.transpose().map_err(|e| classify(self.op, e))?;
        let mut p = self.prefetched.borrow_mut();
        p.token = token.zip(token_hash).map(|(v, r)| (v.to_owned(), r));
        p.keys = keys.zip(ecu_keys).map(|(v, r)| (v.to_owned(), r));
        p.metadata = meta
            .zip(stored)
            .map(|((v, role), r)| (v.to_owned(), role, r));
        p.active = active.zip(assigned).map(|(v, r)| (v.to_owned(), r));
        Ok(())
    }

    fn verify_relay_token(&self, name: &str, secret: &str) -> Result<bool> {
        self.run(relays::verify(self.client, name, secret))
    }

    fn verify_relay_cert(&self, name: &str, sha256: &[u8; 32]) -> Result<bool> {
        self.run(relays::verify_cert(self.client, name, sha256))
    }

    fn verify_device_token(&self, vin: &str, token: &str) -> Result<bool> {
        let announced = self.prefetched.borrow_mut().token.take_if(|p| p.0 == vin);
        let stored = match announced {
            Some((_, stored)) => stored?,
            None => self.run(inventory::device_token_hash(self.client, vin))?,
        };
        Ok(device_token_matches(stored.as_deref(), token))
    }

    fn ecu_keys(&self, vin: &str) -> Result<Option<RegisteredVehicle>> {
        let announced = self.prefetched.borrow_mut().keys.take_if(|p| p.0 == vin);
        match announced {
            Some((_, keys)) => keys,
            None => self.run(ecu_keys::ecu_keys(self.client, &self.store.keys, vin)),
        }
    }

    fn get_vehicle_metadata(
        &self,
        vin: &str,
        role: MetadataRole,
    ) -> Result<Option<StoredMetadata>> {
        let announced = self
            .prefetched
            .borrow_mut()
            .metadata
            .take_if(|p| p.0 == vin && p.1 == role);
        match announced {
            Some((_, _, stored)) => stored,
            None => self.run(metadata::get(self.client, vin, role)),
        }
    }

    fn get_vehicle_metadata_version(
        &self,
        vin: &str,
        role: MetadataRole,
        version: u64,
    ) -> Result<Option<Vec<u8>>> {
        self.run(metadata::get_version(self.client, vin, role, version))
    }

    fn active_assignments(&self, vin: &str) -> Result<Vec<Assignment>> {
        let announced = self.prefetched.borrow_mut().active.take_if(|p| p.0 == vin);
        match announced {
            Some((_, active)) => active,
            None => self.run(assignments::list(self.client, vin, true)),
        }
    }

    fn get_root(&self, version: u64) -> Result<Option<Vec<u8>>> {
        self.run(metadata::get_root(self.client, version))
    }

    fn latest_root(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.run(metadata::latest_root(self.client))
    }

    fn latest_offline_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.run(offline::latest_snapshot(self.client))
    }
}
