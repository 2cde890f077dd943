//! The default boot backend: `key=value` lines in one file, replaced atomically (written
//! beside, fsynced, renamed, directory fsynced), so a power loss leaves the old or the new
//! environment, never a mix. The bootloader side (or the simulated boot in
//! [`crate::install::os`]) reads the same file.

use super::{parse_lines, BootControl};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct FileEnv {
    path: PathBuf,
}

impl FileEnv {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileEnv { path: path.into() }
    }
}

impl BootControl for FileEnv {
    fn describe(&self) -> String {
        format!("boot environment file {}", self.path.display())
    }

    fn get(&self) -> Result<BTreeMap<String, String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(parse_lines(&text)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    fn set(&mut self, vars: &[(&str, String)]) -> Result<()> {
        let mut all = self.get()?;
        for (k, v) in vars {
            all.insert((*k).to_owned(), v.clone());
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".bootenv-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        let text: String = all.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&dir, e))
    }
}
