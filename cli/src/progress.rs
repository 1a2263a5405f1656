//! Progress bars on stderr, shown only when stderr is a terminal (stdout
//! is data, and logs get no control characters).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps drawn with the indicatif `template`, or a hidden
/// one when stderr is not a terminal or there is nothing to do.
pub fn bar(len: u64, template: &str) -> ProgressBar {
    if len == 0 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// A bar over `total` bytes that `verb`s them (`hashing`, `uploading`).
pub fn bytes(total: u64, verb: &str) -> ProgressBar {
    bar(
        total,
        &format!(
            "{{spinner}} {verb} {{msg}} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}}"
        ),
    )
}

/// A set of bars drawn together (one per file and one overall), hidden
/// when stderr is not a terminal.
pub fn multi() -> indicatif::MultiProgress {
    if std::io::stderr().is_terminal() {
        indicatif::MultiProgress::new()
    } else {
        indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    }
}
