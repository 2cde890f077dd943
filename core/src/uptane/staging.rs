//! New Director metadata becomes trusted only as a whole (DESIGN.md "Vehicle binding"): every
//! write the workflow makes while verifying it is held here, visible to the workflow itself,
//! and handed to the real source only once timestamp, snapshot, targets and the VIN check
//! have all passed. A refused set leaves the kept metadata exactly as it was.

use crate::refresh::{MetadataFile, MetadataSource};

#[derive(Debug)]
enum Write {
    Persist(String, Vec<u8>),
    Remove(String),
}

/// A [`MetadataSource`] that fetches through `inner` but keeps its writes until
/// [`Staged::commit`].
#[derive(Debug)]
pub struct Staged<'a, S> {
    inner: &'a mut S,
    writes: Vec<Write>,
}

impl<'a, S: MetadataSource> Staged<'a, S> {
    pub fn new(inner: &'a mut S) -> Self {
        Staged {
            inner,
            writes: Vec::new(),
        }
    }

    /// The real source, read-only (what it fetched, say); its writes are still held.
    pub fn source(&self) -> &S {
        self.inner
    }

    /// Hand every held write to the real source, in the order the workflow made them.
    pub fn commit(self) -> Result<(), S::Error> {
        for write in self.writes {
            match write {
                Write::Persist(role, bytes) => self.inner.persist(&role, &bytes)?,
                Write::Remove(role) => self.inner.remove(&role)?,
            }
        }
        Ok(())
    }
}

impl<S: MetadataSource> MetadataSource for Staged<'_, S> {
    type Error = S::Error;

    fn fetch(&mut self, file: MetadataFile<'_>, max_len: u64) -> Result<Vec<u8>, S::Error> {
        self.inner.fetch(file, max_len)
    }

    fn is_not_found(error: &S::Error) -> bool {
        S::is_not_found(error)
    }

    fn load(&mut self, role: &str) -> Result<Option<Vec<u8>>, S::Error> {
        // The latest held write for `role` wins over what the source kept.
        for write in self.writes.iter().rev() {
            match write {
                Write::Persist(r, bytes) if r == role => return Ok(Some(bytes.clone())),
                Write::Remove(r) if r == role => return Ok(None),
                _ => {}
            }
        }
        self.inner.load(role)
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), S::Error> {
        self.writes
            .push(Write::Persist(role.to_owned(), bytes.to_vec()));
        Ok(())
    }

    fn remove(&mut self, role: &str) -> Result<(), S::Error> {
        self.writes.push(Write::Remove(role.to_owned()));
        Ok(())
    }
}
