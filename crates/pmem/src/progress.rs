//! Progress bars on a TTY, nothing otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A byte progress bar on stderr when it is a terminal and not quiet; hidden otherwise.
pub fn bytes(total: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Progress for wrappers (fleet tools, scripts): one JSON object per line on stderr, about
/// once a second and at every phase change, each with the seconds since the start.
pub struct JsonLines {
    start: std::time::Instant,
    last: Option<std::time::Instant>,
    phase: String,
}

impl JsonLines {
    /// Lines only when `on` (`--progress-json`).
    pub fn new(on: bool) -> Option<JsonLines> {
        on.then(|| JsonLines { start: std::time::Instant::now(), last: None, phase: String::new() })
    }

    /// Emits `v` (an object with a "phase") if a second has passed, the phase changed, or `last`.
    pub fn tick(&mut self, mut v: serde_json::Value, last: bool) {
        let phase = v["phase"].as_str().unwrap_or_default().to_string();
        let due = self.last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
        if !(due || last || phase != self.phase) {
            return;
        }
        v["elapsed"] = serde_json::json!((self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
        eprintln!("{v}");
        self.last = Some(std::time::Instant::now());
        self.phase = phase;
    }
}
