//! U-Boot's environment through `fw_printenv` (all variables as `key=value` lines) and
//! `fw_setenv -s SCRIPT` (`key value` lines, applied in one environment write, so the
//! variables never change one by one).

use super::{parse_lines, run_tool, BootControl, BOOT_TOOL_LIMIT};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct UBoot {
    printenv: PathBuf,
    setenv: PathBuf,
}

impl UBoot {
    pub fn new(printenv: impl Into<PathBuf>, setenv: impl Into<PathBuf>) -> Self {
        UBoot {
            printenv: printenv.into(),
            setenv: setenv.into(),
        }
    }
}

impl BootControl for UBoot {
    fn describe(&self) -> String {
        format!("U-Boot environment ({})", self.printenv.display())
    }

    fn get(&self) -> Result<BTreeMap<String, String>> {
        let out = run_tool(
            &self.describe(),
            Command::new(&self.printenv),
            BOOT_TOOL_LIMIT,
        )?;
        Ok(parse_lines(&out))
    }

    fn set(&mut self, vars: &[(&str, String)]) -> Result<()> {
        let mut script =
            tempfile::NamedTempFile::new().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let text: String = vars.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        script
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(script.path(), e))?;
        let mut cmd = Command::new(&self.setenv);
        cmd.arg("-s").arg(script.path());
        run_tool(&self.describe(), cmd, BOOT_TOOL_LIMIT).map(|_| ())
    }
}
