//! Progress bars for long operations. indicatif draws only when stderr is a terminal, so
//! scripts and logs get no bar noise.

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count bar for hashing or copying `total` bytes.
pub fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}
