//! The demo's output for a person: numbered steps, ✓ for each check passed, ✗ for each
//! refusal, and a spinner during long steps (on a terminal; plain progress lines otherwise).
//! With `--json` the story goes to stderr so stdout holds only the summary.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Debug)]
pub struct Story {
    to_stderr: bool,
    terminal: bool,
    /// The current slow step's spinner (only when stderr is a terminal).
    spinner: Option<ProgressBar>,
    step: usize,
    /// Every ✓ line, for the summary.
    pub checks: Vec<String>,
}

impl Story {
    pub fn new(json: bool) -> Story {
        Story {
            to_stderr: json,
            terminal: std::io::stderr().is_terminal(),
            spinner: None,
            step: 0,
            checks: Vec::new(),
        }
    }

    /// Print a line of the story (around the spinner, which redraws after it).
    pub fn line(&self, text: &str) {
        let print = || {
            if self.to_stderr {
                let _ = writeln!(std::io::stderr(), "{text}");
            } else {
                let _ = writeln!(std::io::stdout(), "{text}");
            }
        };
        match &self.spinner {
            Some(s) => s.suspend(print),
            None => print(),
        }
    }

    /// The next numbered step.
    pub fn step(&mut self, title: &str) {
        self.done();
        self.step += 1;
        self.line(&format!("\n{}. {title}", self.step));
    }

    /// A check that passed.
    pub fn ok(&mut self, text: &str) {
        self.line(&format!("   ✓ {text}"));
        self.checks.push(text.to_owned());
    }

    /// A refusal (the expected outcome of the demo's last step).
    pub fn refused(&self, text: &str) {
        self.line(&format!("   ✗ {text}"));
    }

    /// A detail under the current step.
    pub fn note(&self, text: &str) {
        self.line(&format!("     {text}"));
    }

    /// Something slow is running: the spinner says what, or a plain progress line.
    pub fn busy(&mut self, what: &str) {
        if !self.terminal {
            let _ = writeln!(std::io::stderr(), "   ... {what}");
            return;
        }
        let bar = self.spinner.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("   {spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        bar.set_message(what.to_owned());
    }

    /// The slow part is over.
    pub fn done(&mut self) {
        if let Some(s) = self.spinner.take() {
            s.finish_and_clear();
        }
    }
}

impl Drop for Story {
    fn drop(&mut self) {
        self.done();
    }
}
