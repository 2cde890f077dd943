//! TEST-ONLY fault injection, compiled into debug builds only (`debug_assertions`): a
//! release build ignores the variables below entirely.
//!
//! `FERRY_TEST_PAUSE_AT=<domain>:<state>` (or just `<state>`) makes the ECU, right after it
//! journaled that state, write `<domain>:<state>` to the file `FERRY_TEST_PAUSE_MARKER` and
//! block forever. The power-loss tests wait for the marker, SIGKILL the process there and
//! start it again: a kill at a known point of every state, with no timing involved.

/// Called after each journal write.
pub fn point(domain: &str, state: &str) {
    #[cfg(debug_assertions)]
    {
        let Ok(wanted) = std::env::var("FERRY_TEST_PAUSE_AT") else {
            return;
        };
        let here = format!("{domain}:{state}");
        if wanted != here && wanted != state {
            return;
        }
        tracing::warn!(at = %here, "FERRY_TEST_PAUSE_AT: pausing until killed (test hook)");
        if let Some(marker) = std::env::var_os("FERRY_TEST_PAUSE_MARKER") {
            let marker = std::path::PathBuf::from(marker);
            // Written whole then renamed: the test never reads half a marker.
            let part = marker.with_extension("part");
            if std::fs::write(&part, &here).is_ok() {
                let _ = std::fs::rename(&part, &marker);
            }
        }
        loop {
            std::thread::park();
        }
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = (domain, state);
    }
}
