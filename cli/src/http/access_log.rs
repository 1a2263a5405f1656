//! `--access-log`: one line per answered request in the common log format
//! (`host ident authuser [date] "request line" status bytes`), written when
//! the answer has been sent, with the bytes of the body actually sent.

use std::fs::File;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};

/// Where the lines go.
pub struct AccessLog {
    out: Mutex<Out>,
}

enum Out {
    Stderr,
    File(File),
}

impl AccessLog {
    /// A file (appended to, created 0640) or `-` for stderr.
    pub fn open(target: &Path) -> Result<Self> {
        let out = if target.as_os_str() == "-" {
            Out::Stderr
        } else {
            use std::os::unix::fs::OpenOptionsExt as _;
            Out::File(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .open(target)
                    .with_context(|| {
                        format!(
                            "cannot open the access log {}; give a writable file, or - for stderr",
                            target.display()
                        )
                    })?,
            )
        };
        Ok(Self {
            out: Mutex::new(out),
        })
    }

    /// Writes one line in one write, so lines of parallel requests never
    /// interleave. A failed write is dropped: serving goes on.
    pub fn write(&self, entry: &Entry, status: u16, sent: u64) {
        let line = entry.line(status, sent);
        let Ok(mut out) = self.out.lock() else { return };
        let _ = match &mut *out {
            Out::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Out::File(file) => file.write_all(line.as_bytes()),
        };
    }
}

/// What is known of a request when it arrives.
pub struct Entry {
    pub peer: IpAddr,
    /// Unix seconds when the request arrived.
    pub at: i64,
    /// `GET /streams/v1/index.json HTTP/1.1`, escaped.
    pub request: String,
}

impl Entry {
    pub fn new(peer: IpAddr, method: &str, target: &str, version: hyper::Version) -> Self {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let version = match version {
            hyper::Version::HTTP_09 => "HTTP/0.9",
            hyper::Version::HTTP_10 => "HTTP/1.0",
            hyper::Version::HTTP_2 => "HTTP/2.0",
            hyper::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        };
        Self {
            peer,
            at,
            request: escape(&format!("{method} {target} {version}")),
        }
    }

    fn line(&self, status: u16, sent: u64) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (year, month, day) = ssgen_core::time::civil_from_days(self.at.div_euclid(86_400));
        let secs = self.at.rem_euclid(86_400);
        let month = MONTHS[usize::try_from(month.saturating_sub(1)).unwrap_or(0) % 12];
        let bytes = if sent == 0 {
            "-".to_owned()
        } else {
            sent.to_string()
        };
        format!(
            "{} - - [{day:02}/{month}/{year:04}:{:02}:{:02}:{:02} +0000] \"{}\" {status} {bytes}\n",
            self.peer,
            secs / 3600,
            secs % 3600 / 60,
            secs % 60,
            self.request
        )
    }
}

/// A request line as log text: quotes, backslashes and control bytes
/// escaped, so a hostile path cannot forge a line.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_common_log_format_and_escaped() {
        let entry = Entry {
            peer: "127.0.0.1".parse().expect("ip"),
            at: 1_785_556_800,
            request: escape("GET /a\"b\n HTTP/1.1"),
        };
        assert_eq!(
            entry.line(200, 1234),
            "127.0.0.1 - - [01/Aug/2026:04:00:00 +0000] \"GET /a\\\"b\\x0a HTTP/1.1\" 200 1234\n"
        );
        assert!(entry.line(304, 0).ends_with("\" 304 -\n"));
    }
}
