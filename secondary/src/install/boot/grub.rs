//! GRUB's environment block through `grub-editenv FILE list` and `grub-editenv FILE set
//! k=v ...` (one call, one rewrite of the block).

use super::{parse_lines, run_tool, BootControl, BOOT_TOOL_LIMIT};
use crate::error::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Grub {
    editenv: PathBuf,
    file: PathBuf,
}

impl Grub {
    pub fn new(editenv: impl Into<PathBuf>, file: impl Into<PathBuf>) -> Self {
        Grub {
            editenv: editenv.into(),
            file: file.into(),
        }
    }
}

impl BootControl for Grub {
    fn describe(&self) -> String {
        format!("GRUB environment {}", self.file.display())
    }

    fn get(&self) -> Result<BTreeMap<String, String>> {
        let mut cmd = Command::new(&self.editenv);
        cmd.arg(&self.file).arg("list");
        let out = run_tool(&self.describe(), cmd, BOOT_TOOL_LIMIT)?;
        Ok(parse_lines(&out))
    }

    fn set(&mut self, vars: &[(&str, String)]) -> Result<()> {
        let mut cmd = Command::new(&self.editenv);
        cmd.arg(&self.file).arg("set");
        for (k, v) in vars {
            cmd.arg(format!("{k}={v}"));
        }
        run_tool(&self.describe(), cmd, BOOT_TOOL_LIMIT).map(|_| ())
    }
}
