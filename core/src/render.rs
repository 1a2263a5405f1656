//! The one place that decides the bytes of the documents: keys sorted at
//! every level, two-space indentation, a final newline. Sorting is done
//! here, not left to a map type, so no feature of a dependency can change
//! the output.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value whose objects are always sorted by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A string.
    Str(String),
    /// A non-negative integer.
    Int(u64),
    /// A list of strings.
    List(Vec<String>),
    /// An object, sorted by key.
    Map(BTreeMap<String, Node>),
}

impl Node {
    /// An empty object.
    #[must_use]
    pub fn map() -> Self {
        Node::Map(BTreeMap::new())
    }

    /// Sets `key` on an object (no-op on other values).
    pub fn set(&mut self, key: &str, value: impl Into<Node>) -> &mut Self {
        if let Node::Map(m) = self {
            m.insert(key.to_owned(), value.into());
        }
        self
    }
}

impl From<&str> for Node {
    fn from(s: &str) -> Self {
        Node::Str(s.to_owned())
    }
}
impl From<String> for Node {
    fn from(s: String) -> Self {
        Node::Str(s)
    }
}
impl From<u64> for Node {
    fn from(n: u64) -> Self {
        Node::Int(n)
    }
}
impl From<BTreeMap<String, String>> for Node {
    fn from(m: BTreeMap<String, String>) -> Self {
        Node::Map(m.into_iter().map(|(k, v)| (k, Node::Str(v))).collect())
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Str(v) => s.serialize_str(v),
            Node::Int(v) => s.serialize_u64(*v),
            Node::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Renders a document: pretty-printed with two spaces, newline-terminated.
#[must_use]
pub fn to_text(node: &Node) -> String {
    // Serialising owned strings and integers into a Vec cannot fail.
    let mut text = serde_json::to_string_pretty(node).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let mut inner = Node::map();
        inner.set("z", 1u64).set("a", "x");
        let mut root = Node::map();
        root.set("b", inner).set("a", Node::List(vec!["q".into()]));
        assert_eq!(
            to_text(&root),
            "{\n  \"a\": [\n    \"q\"\n  ],\n  \"b\": {\n    \"a\": \"x\",\n    \"z\": 1\n  }\n}\n"
        );
    }
}
