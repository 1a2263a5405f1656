//! Who may do what: the upload API's bearer token, and the read tokens of
//! a private feed.
//!
//! A private feed answers reads only under `/<token>/…`, the form stock
//! clients can use: `lxc remote add x https://host/<token>
//! --protocol=simplestreams`, and they append `streams/v1/…` and the item
//! paths to that URL. Anything else is 404, as if there were nothing there.
//! It keeps the images from casual discovery and hot-linking; the token
//! sits in every client's configuration and in every URL they ask for, so
//! a leaked URL is a leaked token.

use crate::Sha256;

/// The shortest token either server takes: shorter ones can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// How a request should send the upload token.
const HOW: &str = "send `Authorization: Bearer <token>`";

/// The token of an `Authorization: Bearer <token>` header, given every
/// value the request sent (the scheme is case-insensitive, RFC 9110
/// §11.1), or why there is none. The message never repeats what was sent
/// after the scheme: it may be a secret.
///
/// # Errors
/// No header, several, an unreadable one, another scheme or no token.
pub fn bearer<'a>(values: &[&'a str]) -> Result<&'a str, String> {
    let text = match values {
        [] => return Err(format!("no Authorization header; {HOW}")),
        [one] => *one,
        _ => return Err(format!("more than one Authorization header; {HOW}")),
    };
    let text = text.trim_matches([' ', '\t']);
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // A scheme is a short word (Basic, Digest); anything else may be
        // a token sent without one, and is not repeated.
        let word = scheme.len() < 16 && scheme.bytes().all(|b| b.is_ascii_alphabetic());
        return Err(if word {
            format!("the Authorization header uses the scheme {scheme:?}, not Bearer; {HOW}")
        } else {
            format!("the Authorization header does not start with a scheme; {HOW}")
        });
    }
    let token = token.trim_matches([' ', '\t']);
    if token.is_empty() {
        return Err(format!(
            "the Authorization header says Bearer but holds no token; {HOW}"
        ));
    }
    Ok(token)
}

/// Constant-time check of a token: both sides are hashed first, so that
/// neither the length nor the first differing byte shows in the time
/// taken. An empty expected token matches nothing.
#[must_use]
pub fn token_ok(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::of(given.as_bytes()).0,
        Sha256::of(expected.as_bytes()).0,
    );
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0 && !expected.is_empty()
}

/// Why a token cannot be used, if it cannot: shorter than
/// [`MIN_TOKEN_LEN`], or (for a read token, which is a path segment)
/// holding a character that a URL would have to escape.
#[must_use]
pub fn token_problem(token: &str, in_path: bool) -> Option<String> {
    if token.len() < MIN_TOKEN_LEN {
        return Some(format!(
            "a token of {} characters is too short; use at least {MIN_TOKEN_LEN} random ones (e.g. `openssl rand -hex 32`)",
            token.len()
        ));
    }
    let url_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
    if in_path && !token.chars().all(url_safe) {
        return Some(
            "a read token goes into the remote's URL, so it may hold only letters, digits and -_.~ (e.g. `openssl rand -hex 32`)"
                .into(),
        );
    }
    if in_path && token.starts_with('.') {
        // A first segment starting with `.` is a hidden name, never served.
        return Some(
            "a read token may not start with '.': the server never serves a path whose first name is hidden (e.g. `openssl rand -hex 32`)"
                .into(),
        );
    }
    if token.chars().all(|c| token.starts_with(c)) {
        return Some(
            "a token of one repeated character is guessable; use random characters (e.g. `openssl rand -hex 32`)"
                .into(),
        );
    }
    None
}

/// The read tokens of a private feed; empty for a public one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadTokens(Vec<String>);

impl ReadTokens {
    /// Tokens given one by one.
    ///
    /// # Errors
    /// The first unusable token's problem (never the token itself).
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut all: Vec<String> = Vec::new();
        for (i, t) in tokens.into_iter().enumerate() {
            if let Some(why) = token_problem(&t, true) {
                return Err(format!("read token {}: {why}", i + 1));
            }
            all.push(t);
        }
        all.sort();
        all.dedup();
        Ok(Self(all))
    }

    /// Tokens from a text: one per line (or separated by commas or
    /// whitespace); blank lines and lines starting with `#` say nothing.
    ///
    /// # Errors
    /// As [`ReadTokens::new`].
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::new(
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .flat_map(|l| l.split([',', ' ', '\t']))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        )
    }

    /// The union of two sets of tokens.
    #[must_use]
    pub fn with(mut self, other: &ReadTokens) -> Self {
        self.0.extend(other.0.iter().cloned());
        self.0.sort();
        self.0.dedup();
        self
    }

    /// Whether the feed is public.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many tokens there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The path below the token prefix of `rel` (a request path without
    /// its leading `/`), and the token: `("<token>", "streams/v1/index.json")`
    /// for `<token>/streams/v1/index.json`, `""` for `<token>` or
    /// `<token>/`. `None` when the first segment is no token. Every token
    /// is compared in constant time, so the time taken tells nothing of how
    /// close a guess came.
    #[must_use]
    pub fn strip<'a>(&self, rel: &'a str) -> Option<(&'a str, &'a str)> {
        let (first, rest) = rel.split_once('/').unwrap_or((rel, ""));
        let found = self
            .0
            .iter()
            .fold(false, |found, t| token_ok(first, t) | found);
        found.then_some((first, rest))
    }
}

/// A request target (path and query) of a private feed as an access log
/// may show it: a first segment that could be a token is replaced by
/// `[token]` (right tokens and near misses alike), so that logs do not
/// hand out the feed. Top-level names of the server itself stay, so a log
/// still says what a request without a token asked for.
#[must_use]
pub fn redact(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if !path.starts_with('/') {
        return target.to_owned();
    }
    // The segments as the server reads them: empty ones and `.` name no
    // directory, so `//<token>/…` and `/./<token>/…` reach the token too.
    let mut segments = super::path_segments(path);
    let mut out = String::with_capacity(target.len());
    match segments.next() {
        None => out.push('/'),
        Some(first) if is_server_name(first) => {
            out.push('/');
            out.push_str(first);
        }
        Some(_) => out.push_str("/[token]"),
    }
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    if path.len() > 1 && path.ends_with('/') {
        out.push('/');
    }
    // Reads take no query: one may only be a token sent the wrong way.
    if query.is_some() {
        out.push_str("?[query]");
    }
    out
}

/// Whether `first` is the first name of one of the server's own paths,
/// never a token.
fn is_server_name(first: &str) -> bool {
    [
        super::IMAGES_DIR,
        crate::STREAMS_DIR,
        crate::direct::URL_PREFIX,
        super::FILES_API,
        super::PUBLISH,
        super::HEALTHZ,
        crate::html::FILE_NAME,
    ]
    .iter()
    .any(|path| path.split('/').next() == Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_refusals_say_why() {
        assert_eq!(bearer(&["Bearer abc"]), Ok("abc"));
        assert_eq!(bearer(&["bearer abc"]), Ok("abc"));
        assert_eq!(bearer(&["BEARER   abc "]), Ok("abc"));
        assert_eq!(bearer(&["bEaReR\tabc"]).ok(), None, "a tab is no separator");
        let refused = bearer(&["Basic dXNlcjpzZWNyZXQ="]).expect_err("basic");
        assert!(
            refused.contains("\"Basic\"") && !refused.contains("dXNlcj"),
            "{refused}"
        );
        assert!(
            bearer(&[])
                .expect_err("none")
                .contains("no Authorization header")
        );
        assert!(bearer(&["Bearer"]).expect_err("empty").contains("no token"));
        assert!(
            bearer(&["Bearer "])
                .expect_err("empty")
                .contains("no token")
        );
        assert!(bearer(&["Bearer a", "Bearer b"]).is_err());
        assert!(bearer(&["Bearerabc"]).is_err());
        let bare = bearer(&["secret-token-0123456789"]).expect_err("no scheme");
        assert!(
            bare.contains("does not start with a scheme") && !bare.contains("secret"),
            "{bare}"
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_ok("s3cret", "s3cret"));
        assert!(!token_ok("s3cret ", "s3cret") && !token_ok("s3cre", "s3cret"));
        assert!(!token_ok("", ""));
        assert!(token_problem("short", false).is_some());
        assert!(token_problem("0123456789abcdef", true).is_none());
        assert!(token_problem("0123456789abcdef/", true).is_some());
        assert!(token_problem("0123456789abcdef/", false).is_none());
    }

    #[test]
    fn read_tokens_open_their_prefix_only() {
        let t = ReadTokens::parse(
            "# readers\nfeed-token-0123456789\n\n other-token-0123456789 , feed-token-0123456789\n",
        )
        .expect("tokens");
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.strip("feed-token-0123456789/streams/v1/index.json"),
            Some(("feed-token-0123456789", "streams/v1/index.json"))
        );
        assert_eq!(
            t.strip("other-token-0123456789"),
            Some(("other-token-0123456789", ""))
        );
        assert_eq!(
            t.strip("feed-token-0123456789/"),
            Some(("feed-token-0123456789", ""))
        );
        assert_eq!(t.strip("streams/v1/index.json"), None);
        assert_eq!(t.strip("feed-token-012345678/streams"), None);
        assert_eq!(t.strip(""), None);
        assert!(
            ReadTokens::parse("short")
                .expect_err("short")
                .contains("read token 1")
        );
        assert!(ReadTokens::parse("has/slash-0123456789").is_err());
        assert!(ReadTokens::parse(".hidden-token-0123").is_err());
        assert!(ReadTokens::parse("aaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(ReadTokens::parse("").expect("none").is_empty());
        assert_eq!(
            redact("/feed-token-0123456789/streams/v1/index.json"),
            "/[token]/streams/v1/index.json"
        );
        assert_eq!(redact("/feed-token-0123?x=1"), "/[token]?[query]");
        for hidden in [
            "//feed-token-0123456789/streams/v1/index.json",
            "///feed-token-0123456789/streams/v1/index.json",
            "/./feed-token-0123456789/streams/v1/index.json",
            "/%66eed-token-0123456789/streams/v1/index.json",
        ] {
            assert_eq!(redact(hidden), "/[token]/streams/v1/index.json", "{hidden}");
        }
        assert_eq!(
            redact("/streams/v1/index.json?token=feed-token-0123456789"),
            "/streams/v1/index.json?[query]"
        );
        assert_eq!(redact("/streams/v1/index.json"), "/streams/v1/index.json");
        assert_eq!(redact("/healthz"), "/healthz");
        assert_eq!(redact("/"), "/");
    }
}
