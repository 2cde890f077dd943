//! Download progress. On a terminal (stderr is one): a progress bar with bytes, rate and time
//! left. Otherwise (a service's journal, a test's pipe): one log line per tenth of the image,
//! so a long download shows it is moving without flooding the log.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug)]
pub struct Progress<'a> {
    name: &'a str,
    total: u64,
    done: u64,
    next_tenth: u64,
    bar: Option<ProgressBar>,
}

impl<'a> Progress<'a> {
    /// A bar if stderr is a terminal, else log lines.
    pub fn new(name: &'a str, total: u64) -> Self {
        Progress::with_bar(name, total, std::io::stderr().is_terminal())
    }

    pub fn with_bar(name: &'a str, total: u64, bar: bool) -> Self {
        tracing::info!(target = name, bytes = total, "download started");
        let bar = bar.then(|| {
            let bar = ProgressBar::new(total);
            // The template is a constant: it parses, but never panic over a progress bar.
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(name.to_owned());
            bar
        });
        Progress {
            name,
            total,
            done: 0,
            next_tenth: 1,
            bar,
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let total = self.total.max(1);
        if self.next_tenth <= 10 && self.done * 10 >= self.next_tenth * total {
            self.next_tenth = self.done * 10 / total + 1;
            tracing::info!(
                target = self.name,
                done = self.done,
                total = self.total,
                percent = self.done * 100 / total,
                "downloading"
            );
        }
    }

    /// The download ended (complete or not): the bar goes, the log says how far it got.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            target = self.name,
            done = self.done,
            total = self.total,
            "download ended"
        );
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        // A download that failed leaves no half-drawn bar behind.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(bar: bool, steps: u64) -> String {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut p = Progress::with_bar("apps/a.bin", 1000, bar);
            for _ in 0..steps {
                p.advance(1000 / steps);
            }
            p.finish();
        });
        let text = log.0.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn without_a_terminal_progress_is_logged_once_per_tenth() {
        let text = logged(false, 100);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("downloading")).collect();
        assert_eq!(lines.len(), 10, "{text}");
        assert!(lines[0].contains("percent=10"), "{text}");
        assert!(lines[9].contains("percent=100"), "{text}");
        assert!(text.contains("download ended"), "{text}");
    }

    #[test]
    fn with_a_bar_the_log_has_only_the_start_and_the_end() {
        let text = logged(true, 100);
        assert!(!text.contains("downloading"), "{text}");
        assert!(text.contains("download started"), "{text}");
        assert!(text.contains("download ended"), "{text}");
    }
}
