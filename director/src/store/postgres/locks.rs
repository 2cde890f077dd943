//! Locks that hold across Directors: PostgreSQL session advisory locks, each on a connection
//! of its own taken from the store's lock pool and held as long as the guard lives.
//!
//! Why a separate pool: a signing holds its lock while it reads and writes through the main
//! pool; if both came from one pool, as many signings as connections could each hold a lock
//! and wait for a connection none of them returns. If a Director dies, its connections close
//! and PostgreSQL releases its locks: a crashed refresher leader or signer blocks no one.

use super::sql::{classify, get};
use crate::Result;
use deadpool_postgres::{Object, Pool};

/// Advisory-lock class of a vehicle's signing (`pg_advisory_lock(class, hashtext(vin))`:
/// two VINs with one hash share a lock, and then only wait for each other).
const SIGNING: i32 = 0x4665_0002;
/// Advisory-lock class of leadership of background work (the refresher).
const LEADER: i32 = 0x4665_0003;

/// A held advisory lock; dropping it unlocks (on the store's runtime, without blocking).
pub(super) struct Held {
    client: Option<Object>,
    class: i32,
    key: String,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("class", &self.class)
            .field("key", &self.key)
            .finish()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let (class, key) = (self.class, std::mem::take(&mut self.key));
        self.runtime.spawn(async move {
            let unlocked = client
                .query_one(
                    "SELECT pg_advisory_unlock($1, hashtext($2))",
                    &[&class, &key],
                )
                .await
                .ok()
                .and_then(|r| r.try_get::<_, bool>(0).ok());
            if unlocked != Some(true) {
                // A connection that may still hold the lock never goes back to the pool:
                // closing it is what releases the lock.
                tracing::warn!(key, "advisory unlock failed; closing its connection");
                drop(Object::take(client));
            }
        });
    }
}

async fn lock_client(locks: &Pool, op: &str) -> Result<Object> {
    locks.get().await.map_err(|e| super::pool_error(op, e))
}

/// Wait for `vin`'s signing lock.
pub(super) async fn signing(
    locks: &Pool,
    runtime: tokio::runtime::Handle,
    vin: &str,
) -> Result<Held> {
    let op = "take the vehicle's signing lock";
    let client = lock_client(locks, op).await?;
    client
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&SIGNING, &vin],
        )
        .await
        .map_err(|e| classify(op, e))?;
    Ok(Held {
        client: Some(client),
        class: SIGNING,
        key: vin.to_owned(),
        runtime,
    })
}

/// Leadership of `what` if no other Director holds it now.
pub(super) async fn try_lead(
    locks: &Pool,
    runtime: tokio::runtime::Handle,
    what: &str,
) -> Result<Option<Held>> {
    let op = "try to lead background work";
    let client = lock_client(locks, op).await?;
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&LEADER, &what],
        )
        .await
        .map_err(|e| classify(op, e))?;
    if !get::<bool>(&row, 0, "advisory lock")? {
        return Ok(None);
    }
    Ok(Some(Held {
        client: Some(client),
        class: LEADER,
        key: what.to_owned(),
        runtime,
    }))
}
