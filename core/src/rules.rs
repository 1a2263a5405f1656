//! The naming rules a build obeys and the lint checks, stated once: which
//! characters a path may hold, what a directory name of the layout is,
//! what a version name must start with, and what an alias a local server
//! accepts looks like (`docs/protocol.md#paths`, `#version-names`,
//! `#aliases`).

use std::collections::BTreeSet;
use std::fmt;

use crate::time;

/// Whether `c` may appear in a published path: these give the same URL in
/// both clients (Incus takes a path as already escaped, LXD escapes it)
/// and pass python-simplestreams.
#[must_use]
pub fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '/' | ':' | '-')
}

/// Whether `name` may be one directory of the layout (an os, release,
/// arch, variant or version name) that a build reads and publishes: not
/// empty, not hidden, and only characters that give the same URL in every
/// client.
#[must_use]
pub fn is_dir_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c != '/' && is_url_char(c))
}

/// Whether `name` may be an os, release, arch or variant name: a
/// directory name without `:`, the character that joins the four into the
/// product id (`a:b/c` and `a/b:c` would give one id to two directories).
/// A version name may hold `:`: it is no part of the id.
#[must_use]
pub fn is_product_name(name: &str) -> bool {
    is_dir_name(name) && !name.contains(':')
}

/// Whether `path` is relative and stays where it is joined: not empty, no
/// leading `/`, no backslash, and no empty, `.` or `..` segment.
#[must_use]
pub fn is_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// What is wrong with an item's or a products file's `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// An absolute URL: the clients append it to the remote's URL.
    Url,
    /// A leading `/` (the clients still join it to the remote's URL).
    LeadingSlash,
    /// A `..` segment (the clients resolve it, python-simplestreams
    /// refuses it).
    DotDot,
    /// Characters the two clients escape differently.
    Chars(BTreeSet<char>),
}

/// The problems of a catalog `path`, empty when it is fine. An absolute
/// URL is reported alone: nothing else about it matters.
#[must_use]
pub fn path_problems(path: &str) -> Vec<PathProblem> {
    if path.contains("://") {
        return vec![PathProblem::Url];
    }
    let mut out = Vec::new();
    if path.starts_with('/') {
        out.push(PathProblem::LeadingSlash);
    }
    if path.split('/').any(|s| s == "..") {
        out.push(PathProblem::DotDot);
    }
    let bad: BTreeSet<char> = path.chars().filter(|c| !is_url_char(*c)).collect();
    if !bad.is_empty() {
        out.push(PathProblem::Chars(bad));
    }
    out
}

pub(crate) fn char_list(chars: impl IntoIterator<Item = char>) -> String {
    chars
        .into_iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathProblem::Url => f.write_str("it is an absolute URL"),
            PathProblem::LeadingSlash => f.write_str(
                "it starts with \"/\" (the clients still join it to the remote's URL, python-simplestreams refuses it)",
            ),
            PathProblem::DotDot => f.write_str(
                "it contains \"..\" (python-simplestreams refuses it, the clients resolve it)",
            ),
            PathProblem::Chars(chars) => write!(
                f,
                "it contains {} (Incus and LXD escape such characters differently)",
                char_list(chars.iter().copied())
            ),
        }
    }
}

/// Whether `name` starts with a `YYYYMMDD` date the clients parse: a
/// version whose name does not is dropped by both.
#[must_use]
pub fn is_version_name(name: &str) -> bool {
    time::version_date(name).is_some()
}

/// A version name with its digits replaced by `9`: names of one shape sort
/// byte-wise in time order; names of several shapes may not.
#[must_use]
pub fn version_shape(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect()
}

/// The shapes of `names`; more than one means the newest may not sort last.
pub fn version_shapes<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names.into_iter().map(version_shape).collect()
}

/// Whether `c` is a character a terminal may act on rather than show: a C0
/// control (newline and tab included), DEL, a C1 control, or a
/// bidirectional override or isolate, which reorders what follows it.
#[must_use]
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The characters of `s` that [`is_control`] matches.
#[must_use]
pub fn control_chars(s: &str) -> BTreeSet<char> {
    s.chars().filter(|c| is_control(*c)).collect()
}

/// `s` with every [`is_control`] character written visibly, so that text
/// from a remote cannot move the cursor, clear the screen, fake a line or
/// reorder a terminal's output: `\n`, `\r`, `\t`, and `\u{hex}` for the
/// others (`\u{1b}` for ESC). A string without them is returned as it is.
/// A backslash is left alone, so that text already escaped (a JSON string
/// in a message) reads as it did.
#[must_use]
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !s.chars().any(is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The longest alias a local server takes, in bytes, `/<arch>` included.
pub const ALIAS_MAX: usize = 64;

/// Characters a local server refuses in an alias.
const ALIAS_RESERVED: &str = "$?&+\"'*`";

/// Why a local server would refuse an alias when an image is copied with
/// its aliases (`shared/validate/validate.go` `IsAPIName` in Incus; LXD has
/// the same rule), or why the CLI would misread it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasProblem {
    /// The alias is empty.
    Empty,
    /// Longer than [`ALIAS_MAX`] bytes once the clients add `/<arch>`.
    TooLong {
        /// The alias with its `/<arch>` suffix.
        with_arch: String,
    },
    /// It holds whitespace (entries are split on `,` without trimming).
    Whitespace,
    /// It holds control characters (see [`is_control`]), which a terminal
    /// acts on when the alias is listed.
    Control(BTreeSet<char>),
    /// It holds characters a local server refuses.
    Reserved(BTreeSet<char>),
    /// It holds `,`, the separator of the `aliases` list.
    Comma,
    /// It holds `:`, which the CLI reads as `remote:alias`.
    Colon,
    /// It does not start and end with an ASCII letter or digit. The local
    /// server's check is the regular expression `^[a-zA-Z0-9]+(.*[a-zA-Z0-9]+)?$`,
    /// so `é` at either end is refused although it is a letter.
    Ends,
}

/// Everything wrong with `alias` for a product of architecture `arch`;
/// empty when a local server takes it.
#[must_use]
pub fn alias_problems(alias: &str, arch: &str) -> Vec<AliasProblem> {
    if alias.is_empty() {
        return vec![AliasProblem::Empty];
    }
    let mut out = Vec::new();
    let with_arch = format!("{alias}/{arch}");
    if with_arch.len() > ALIAS_MAX {
        out.push(AliasProblem::TooLong { with_arch });
    }
    if alias.chars().any(char::is_whitespace) {
        out.push(AliasProblem::Whitespace);
    }
    let control = control_chars(alias);
    if !control.is_empty() {
        out.push(AliasProblem::Control(control));
    }
    let reserved: BTreeSet<char> = alias
        .chars()
        .filter(|c| ALIAS_RESERVED.contains(*c))
        .collect();
    if !reserved.is_empty() {
        out.push(AliasProblem::Reserved(reserved));
    }
    if alias.contains(',') {
        out.push(AliasProblem::Comma);
    }
    if alias.contains(':') {
        out.push(AliasProblem::Colon);
    }
    let ascii = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ascii(alias.chars().next()) || !ascii(alias.chars().next_back()) {
        out.push(AliasProblem::Ends);
    }
    out
}

impl fmt::Display for AliasProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasProblem::Empty => f.write_str("it is empty"),
            AliasProblem::TooLong { with_arch } => write!(
                f,
                "{with_arch:?} is {} bytes with the /<arch> the clients add, over the {ALIAS_MAX} a local server accepts",
                with_arch.len()
            ),
            AliasProblem::Whitespace => {
                f.write_str("it contains whitespace (entries are split on \",\" without trimming)")
            }
            AliasProblem::Control(chars) => write!(
                f,
                "it contains the control character(s) {}",
                char_list(chars.iter().copied())
            ),
            AliasProblem::Reserved(chars) => {
                write!(f, "it contains {}", char_list(chars.iter().copied()))
            }
            AliasProblem::Comma => f.write_str("it contains \",\", which separates aliases"),
            AliasProblem::Colon => {
                f.write_str("it contains \":\", which the CLI reads as remote:alias")
            }
            AliasProblem::Ends => {
                f.write_str("it does not start and end with an ASCII letter or digit")
            }
        }
    }
}

/// The problems joined for one message.
#[must_use]
pub fn describe<T: fmt::Display>(problems: &[T]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_are_url_safe() {
        for ok in ["debian", "3.22", "bookworm~rc1", "20260801_03:52"] {
            assert!(is_dir_name(ok), "{ok}");
        }
        for bad in ["12 (bookworm)", ".hidden", "", "a/b", "c++", "é"] {
            assert!(!is_dir_name(bad), "{bad}");
        }
        assert!(is_product_name("bookworm~rc1"));
        assert!(!is_product_name("x:y"), "':' joins the product id");
    }

    #[test]
    fn relative_paths_stay_put() {
        assert!(is_relative_path("images/a/b"));
        for bad in [
            "/etc/passwd",
            "images/../../x",
            "images//x",
            "",
            "a\\b",
            "./a",
        ] {
            assert!(!is_relative_path(bad), "{bad}");
        }
        assert_eq!(
            path_problems("https://cdn/x y"),
            [PathProblem::Url],
            "a URL is reported alone"
        );
        assert_eq!(
            path_problems("/a/../b c"),
            [
                PathProblem::LeadingSlash,
                PathProblem::DotDot,
                PathProblem::Chars([' '].into())
            ]
        );
        assert!(path_problems("images/a:b/c~d.e_f-g").is_empty());
    }

    #[test]
    fn aliases_follow_the_local_servers_rule() {
        assert!(alias_problems("debian/12", "amd64").is_empty());
        assert_eq!(alias_problems("", "amd64"), [AliasProblem::Empty]);
        assert_eq!(alias_problems("debian/12/", "amd64"), [AliasProblem::Ends]);
        assert_eq!(alias_problems("a,b", "amd64"), [AliasProblem::Comma]);
        assert_eq!(
            alias_problems("images:debian", "amd64"),
            [AliasProblem::Colon]
        );
        assert!(matches!(
            alias_problems(&"a".repeat(59), "amd64")[..],
            [AliasProblem::TooLong { .. }]
        ));
        assert!(alias_problems(&"a".repeat(58), "arm").is_empty());
        // A letter, but not an ASCII one: the local server's regular
        // expression refuses it at either end.
        assert_eq!(alias_problems("debian/12é", "amd64"), [AliasProblem::Ends]);
        assert_eq!(alias_problems("édebian", "amd64"), [AliasProblem::Ends]);
        assert!(alias_problems("debian/é/12", "amd64").is_empty());
    }

    #[test]
    fn control_characters_are_flagged_and_shown_visibly() {
        assert_eq!(
            alias_problems("x\u{1b}[2Jclear", "amd64"),
            [AliasProblem::Control(['\u{1b}'].into())]
        );
        assert_eq!(
            alias_problems("a\u{202e}b", "amd64"),
            [AliasProblem::Control(['\u{202e}'].into())]
        );
        assert_eq!(
            control_chars("a\u{7f}b\u{85}c\u{2066}é"),
            ['\u{7f}', '\u{85}', '\u{2066}'].into()
        );
        assert_eq!(
            escape_controls("x\u{1b}[31m\n\t\\\u{9b}\u{202e}é"),
            "x\\u{1b}[31m\\n\\t\\\\u{9b}\\u{202e}é"
        );
        assert!(matches!(
            escape_controls("debian/12 é \\u{1b}"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(control_chars("debian 12 (bookworm) é").is_empty());
    }

    #[test]
    fn version_names() {
        assert!(is_version_name("20260801_0312"));
        assert!(!is_version_name("latest"));
        assert_eq!(
            version_shapes(["20260801_0312", "20260802_0312", "202608010312"]).len(),
            2
        );
    }
}
