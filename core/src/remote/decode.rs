//! Go `encoding/json` semantics, streamed straight into the clients'
//! structs: no tree of the whole document is built, so memory follows the
//! decoded catalog, not a multiple of its text.
//!
//! What Go does, and this decoder with it (`encoding/json/decode.go`):
//! object keys match struct fields exactly, else case-insensitively (with
//! Unicode's simple folding for `K` and `S`); every key is decoded in
//! document order, so a repeated key's last value wins, yet a type error
//! in an earlier one still fails the whole decoding; `null` leaves a
//! string, number or bool as it was and empties a map; a repeated struct
//! field merges into what is there, while a map's element starts afresh.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{IndexEntry, Item, KeySpelling, Product, ProductsFile, Version, quote};
use crate::diag::Diagnostic;
use crate::lint::Code;
use crate::vocab::{Client, CombinedKey};

const BOTH: &[Client] = &Client::ALL;
const LXD: &[Client] = &[Client::Lxd];
const INCUS: &[Client] = &[Client::Incus];

/// What one document decoded to, with what is wrong in it.
pub(super) struct Decoded<T> {
    pub value: T,
    pub problems: Vec<Diagnostic>,
    pub spellings: Vec<KeySpelling>,
    /// Whether the document is a JSON object (or `null`, which Go takes
    /// for an empty one).
    pub is_object: bool,
}

/// The decoded `index.json`.
#[derive(Default)]
pub(super) struct IndexDoc {
    pub entries: Vec<IndexEntry>,
    pub format: String,
}

/// Decodes `index.json`.
pub(super) fn index(file: &str, text: &str) -> Result<Decoded<IndexDoc>, Diagnostic> {
    let mut doc = IndexTop::default();
    let decoded = document(file, text, &mut doc)?;
    let entries = doc
        .index
        .into_iter()
        .map(|(key, mut entry)| {
            entry.key = key;
            entry
        })
        .collect();
    Ok(Decoded {
        value: IndexDoc {
            entries,
            format: doc.format,
        },
        problems: decoded.problems,
        spellings: decoded.spellings,
        is_object: decoded.is_object,
    })
}

/// Decodes a products file.
pub(super) fn products(file: &str, text: &str) -> Result<Decoded<ProductsFile>, Diagnostic> {
    let mut doc = ProductsFile::default();
    let decoded = document(file, text, &mut doc)?;
    Ok(Decoded {
        value: doc,
        problems: decoded.problems,
        spellings: decoded.spellings,
        is_object: decoded.is_object,
    })
}

/// The keys of a products file's `products` object, without decoding the
/// rest; `None` when the text is no such file.
pub(super) fn product_ids(text: &str) -> Option<Vec<String>> {
    #[derive(Clone, Copy)]
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut ids = Vec::new();
            while let Some(key) = map.next_key_seed(KeySeed)? {
                ids.push(key.into_owned());
                map.next_value::<IgnoredAny>()?;
            }
            Ok(ids)
        }
    }
    top_level(text, "products", Keys)
}

/// A top-level string of a JSON object, e.g. a catalog's `updated`,
/// without decoding the rest.
pub(crate) fn top_level_string(text: &str, key: &str) -> Option<String> {
    #[derive(Clone, Copy)]
    struct Text;
    impl Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
            Ok(s.to_owned())
        }
    }
    top_level(text, key, Text)
}

/// The value of the top-level `key` of the object `text`, read by
/// `visitor`, skipping everything else; `None` when the text is no JSON
/// object, lacks the key or holds another kind of value there.
fn top_level<'de, V: Visitor<'de> + Copy>(
    text: &'de str,
    key: &str,
    visitor: V,
) -> Option<V::Value> {
    struct Top<'k, V> {
        key: &'k str,
        visitor: V,
    }
    struct Value<V>(V);
    impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Value<V> {
        type Value = Option<V::Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            // A value of another kind is no answer, not an error.
            Ok(d.deserialize_any(self.0).ok())
        }
    }
    impl<'de, V: Visitor<'de> + Copy> Visitor<'de> for Top<'_, V> {
        type Value = Option<V::Value>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key_seed(KeySeed)? {
                if k == self.key {
                    found = map.next_value_seed(Value(self.visitor))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(Top { key, visitor }).ok().flatten()
}

/// The problem of a file that is not JSON at all: the clients refuse it.
fn unreadable(file: &str, code: Code, message: String) -> Diagnostic {
    Diagnostic::coded(code, BOTH, file, message)
}

fn document<T: Fields>(file: &str, text: &str, value: &mut T) -> Result<Decoded<()>, Diagnostic> {
    if text.is_empty() {
        return Err(unreadable(
            file,
            Code::RemoteEmptyFile,
            "the file is empty (the clients refuse it: \"No content in download\")".to_owned(),
        ));
    }
    if text.starts_with('\u{feff}') {
        return Err(unreadable(
            file,
            Code::RemoteInvalidJson,
            "the file starts with a UTF-8 byte-order mark, which Go's JSON decoder refuses"
                .to_owned(),
        ));
    }
    let mut ctx = Ctx {
        file: file.to_owned(),
        problems: Vec::new(),
        spellings: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Visit {
        ctx: &mut ctx,
        loc: &Loc::Root,
        clients: BOTH,
        slot: Struct(value),
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(e) = result {
        return Err(unreadable(
            file,
            Code::RemoteInvalidJson,
            format!("invalid JSON: {e}"),
        ));
    }
    Ok(Decoded {
        value: (),
        problems: ctx.problems,
        spellings: ctx.spellings,
        // Go takes `null` for an empty object.
        is_object: {
            let start = text.trim_start();
            start.starts_with('{') || start.starts_with("null")
        },
    })
}

/// The state shared by every value of one document.
struct Ctx {
    file: String,
    problems: Vec<Diagnostic>,
    spellings: Vec<KeySpelling>,
}

impl Ctx {
    fn type_error(&mut self, loc: &Loc<'_>, clients: &[Client], expected: &str, found: &str) {
        let location = loc.to_string();
        let path = if location.is_empty() {
            self.file.clone()
        } else {
            format!("{}#{location}", self.file)
        };
        self.problems.push(Diagnostic::coded(
            Code::RemoteTypeError,
            clients,
            path,
            format!("expected {expected}, found {found}"),
        ));
    }

    fn spelling(&mut self, loc: &Loc<'_>, field: &str, spellings: Vec<String>) {
        self.spellings.push(KeySpelling {
            file: self.file.clone(),
            location: loc.to_string(),
            field: field.to_owned(),
            spellings,
        });
    }

    /// A key repeated in an object decoded as a Go map (the last one wins).
    fn map_key_again(&mut self, loc: &Loc<'_>, key: &str) {
        let location = loc.to_string();
        if let Some(s) = self
            .spellings
            .iter_mut()
            .find(|s| s.location == location && s.field == key)
        {
            s.spellings.push(key.to_owned());
            return;
        }
        self.spelling(loc, key, vec![key.to_owned(), key.to_owned()]);
    }
}

/// A JSON location, rendered only when a problem names it.
enum Loc<'a> {
    Root,
    /// `parent.field`.
    Field(&'a Loc<'a>, &'static str),
    /// `parent["key"]`.
    Key(&'a Loc<'a>, &'a str),
    /// `parent.key` for a plain key, else `parent["key"]`.
    Name(&'a Loc<'a>, &'a str),
    /// `parent[i]`.
    Index(&'a Loc<'a>, usize),
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Root => Ok(()),
            Loc::Field(Loc::Root, field) => f.write_str(field),
            Loc::Field(parent, field) => write!(f, "{parent}.{field}"),
            Loc::Key(parent, key) => write!(f, "{parent}[{}]", quote(key)),
            Loc::Name(parent, key) => f.write_str(&super::at_name(&parent.to_string(), key)),
            Loc::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Go's `encoding/json` key folding for ASCII field names: ASCII letters
/// compare case-insensitively, and the Kelvin sign and the long s fold to
/// `K` and `S` (`unicode.ToUpper(unicode.ToLower(r))`).
pub(super) fn go_fold_eq(key: &str, field: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'K',
        '\u{017F}' => 'S',
        c => c.to_ascii_uppercase(),
    };
    key.chars().map(fold).eq(field.chars().map(fold))
}

/// An object key, borrowed from the text when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// How a problem message shows a string that was found.
fn describe_str(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    let quoted = quote(&short);
    if short.len() < s.len() {
        format!("{quoted}…")
    } else {
        quoted
    }
}

/// A mismatch: what the slot expected instead.
type Fit = Result<(), &'static str>;

/// What a Go value of some type does with each kind of JSON value. The
/// default refuses every kind with [`Slot::EXPECTED`].
trait Slot<'de> {
    const EXPECTED: &'static str;
    fn null(&mut self) {}
    fn boolean(&mut self, _b: bool) -> Fit {
        Err(Self::EXPECTED)
    }
    fn int(&mut self, _n: i64) -> Fit {
        Err(Self::EXPECTED)
    }
    fn big(&mut self, _n: u64) -> Fit {
        Err(Self::EXPECTED)
    }
    fn float(&mut self, _x: f64) -> Fit {
        Err(Self::EXPECTED)
    }
    fn string(&mut self, _s: &str) -> Fit {
        Err(Self::EXPECTED)
    }
    /// Decodes an array; returns the mismatch before reading any element.
    fn array<A: SeqAccess<'de>>(
        &mut self,
        _ctx: &mut Ctx,
        _loc: &Loc<'_>,
        _clients: &'static [Client],
        _seq: &mut A,
    ) -> Result<Fit, A::Error> {
        Ok(Err(Self::EXPECTED))
    }
    /// Decodes an object; returns the mismatch before reading any entry.
    fn object<A: MapAccess<'de>>(
        &mut self,
        _ctx: &mut Ctx,
        _loc: &Loc<'_>,
        _clients: &'static [Client],
        _map: &mut A,
    ) -> Result<Fit, A::Error> {
        Ok(Err(Self::EXPECTED))
    }
}

/// Decodes one JSON value into a slot, recording a type error (and
/// skipping the value) when the kinds differ.
struct Visit<'c, 'l, S> {
    ctx: &'c mut Ctx,
    loc: &'l Loc<'l>,
    clients: &'static [Client],
    slot: S,
}

impl<S> Visit<'_, '_, S> {
    fn fit<E>(self, fit: Fit, found: impl FnOnce() -> String) -> Result<(), E> {
        if let Err(expected) = fit {
            self.ctx
                .type_error(self.loc, self.clients, expected, &found());
        }
        Ok(())
    }
}

impl<'de, S: Slot<'de>> DeserializeSeed<'de> for Visit<'_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: Slot<'de>> Visitor<'de> for Visit<'_, '_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(S::EXPECTED)
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.slot.null();
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(mut self, b: bool) -> Result<(), E> {
        let fit = self.slot.boolean(b);
        self.fit(fit, || b.to_string())
    }
    fn visit_i64<E: de::Error>(mut self, n: i64) -> Result<(), E> {
        let fit = self.slot.int(n);
        self.fit(fit, || n.to_string())
    }
    fn visit_u64<E: de::Error>(mut self, n: u64) -> Result<(), E> {
        let fit = match i64::try_from(n) {
            Ok(n) => self.slot.int(n),
            Err(_) => self.slot.big(n),
        };
        self.fit(fit, || n.to_string())
    }
    fn visit_f64<E: de::Error>(mut self, x: f64) -> Result<(), E> {
        let fit = self.slot.float(x);
        self.fit(fit, || format!("{x:?}"))
    }
    fn visit_str<E: de::Error>(mut self, s: &str) -> Result<(), E> {
        let fit = self.slot.string(s);
        self.fit(fit, || describe_str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let fit = self
            .slot
            .array(self.ctx, self.loc, self.clients, &mut seq)?;
        if fit.is_err() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
        }
        self.fit(fit, || "an array".to_owned())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let fit = self
            .slot
            .object(self.ctx, self.loc, self.clients, &mut map)?;
        if fit.is_err() {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        }
        self.fit(fit, || "an object".to_owned())
    }
}

/// A Go `string`.
struct Str<'t>(&'t mut String);

impl<'de> Slot<'de> for Str<'_> {
    const EXPECTED: &'static str = "a string";
    fn string(&mut self, s: &str) -> Fit {
        s.clone_into(self.0);
        Ok(())
    }
}

/// A Go `int64`.
struct Int<'t>(&'t mut i64);

impl<'de> Slot<'de> for Int<'_> {
    const EXPECTED: &'static str = "an integer";
    fn int(&mut self, n: i64) -> Fit {
        *self.0 = n;
        Ok(())
    }
    fn big(&mut self, _n: u64) -> Fit {
        Err("an integer that fits in 64 bits (Go int64)")
    }
}

/// A Go `bool`.
struct Bool<'t>(&'t mut bool);

impl<'de> Slot<'de> for Bool<'_> {
    const EXPECTED: &'static str = "a boolean";
    fn boolean(&mut self, b: bool) -> Fit {
        *self.0 = b;
        Ok(())
    }
}

/// A Go `[]string` (the index's `products`): a `null` element is `""`.
struct StrList<'t>(&'t mut Vec<String>);

impl<'de> Slot<'de> for StrList<'_> {
    const EXPECTED: &'static str = "an array of strings";
    fn null(&mut self) {
        self.0.clear();
    }
    fn array<A: SeqAccess<'de>>(
        &mut self,
        ctx: &mut Ctx,
        loc: &Loc<'_>,
        clients: &'static [Client],
        seq: &mut A,
    ) -> Result<Fit, A::Error> {
        // Go decodes an array into a slice from its start.
        self.0.clear();
        for i in 0.. {
            let mut text = String::new();
            let before = ctx.problems.len();
            let seed = Visit {
                ctx: &mut *ctx,
                loc: &Loc::Index(loc, i),
                clients,
                slot: Str(&mut text),
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            // A null element is "" in Go; a wrong one is reported.
            if ctx.problems.len() == before {
                self.0.push(text);
            }
        }
        Ok(Ok(()))
    }
}

/// A Go `map[string]string`: `None` is Go's nil map.
struct StrMap<'t>(&'t mut Option<BTreeMap<String, String>>);

impl<'de> Slot<'de> for StrMap<'_> {
    const EXPECTED: &'static str = "an object";
    fn null(&mut self) {
        *self.0 = None;
    }
    fn object<A: MapAccess<'de>>(
        &mut self,
        ctx: &mut Ctx,
        loc: &Loc<'_>,
        clients: &'static [Client],
        map: &mut A,
    ) -> Result<Fit, A::Error> {
        let out = self.0.get_or_insert_with(BTreeMap::new);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let mut text = String::new();
            let before = ctx.problems.len();
            map.next_value_seed(Visit {
                ctx: &mut *ctx,
                loc: &Loc::Name(loc, &key),
                clients,
                slot: Str(&mut text),
            })?;
            if ctx.problems.len() == before {
                if out.contains_key(&*key) {
                    ctx.map_key_again(loc, &key);
                }
                out.insert(key.into_owned(), text);
            }
        }
        Ok(Ok(()))
    }
}

/// A Go `map[string]T` of structs: each element starts from zero.
struct MapOf<'t, T>(&'t mut BTreeMap<String, T>);

impl<'de, T: Fields + Default> Slot<'de> for MapOf<'_, T> {
    const EXPECTED: &'static str = "an object";
    fn null(&mut self) {
        self.0.clear();
    }
    fn object<A: MapAccess<'de>>(
        &mut self,
        ctx: &mut Ctx,
        loc: &Loc<'_>,
        clients: &'static [Client],
        map: &mut A,
    ) -> Result<Fit, A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let mut value = T::default();
            map.next_value_seed(Visit {
                ctx: &mut *ctx,
                loc: &Loc::Key(loc, &key),
                clients,
                slot: Struct(&mut value),
            })?;
            if self.0.contains_key(&*key) {
                ctx.map_key_again(loc, &key);
            }
            self.0.insert(key.into_owned(), value);
        }
        Ok(Ok(()))
    }
}

/// A field of a Go struct: its JSON name and the clients whose struct has
/// it.
struct Field {
    name: &'static str,
    clients: &'static [Client],
}

const fn field(name: &'static str) -> Field {
    Field {
        name,
        clients: BOTH,
    }
}

/// A Go struct: its fields, and where each is stored.
trait Fields {
    const FIELDS: &'static [Field];
    /// Where field `i` goes.
    fn field(&mut self, i: usize) -> Target<'_>;
    /// A key that is no field.
    fn unknown(&mut self, _key: &str) {}
}

/// Where a struct field's value goes, by its Go type.
enum Target<'t> {
    Str(&'t mut String),
    Int(&'t mut i64),
    Bool(&'t mut bool),
    StrList(&'t mut Vec<String>),
    StrMap(&'t mut Option<BTreeMap<String, String>>),
    Entries(&'t mut BTreeMap<String, IndexEntry>),
    Products(&'t mut BTreeMap<String, Product>),
    Versions(&'t mut BTreeMap<String, Version>),
    Items(&'t mut BTreeMap<String, Item>),
    /// Decoded for its type only.
    Unused,
}

/// Decodes the next value of `map` into `target`, as field `f` at `loc`.
fn value<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    loc: &Loc<'_>,
    f: &Field,
    target: Target<'_>,
) -> Result<(), A::Error> {
    let loc = &Loc::Field(loc, f.name);
    macro_rules! visit {
        ($slot:expr) => {
            map.next_value_seed(Visit {
                ctx,
                loc,
                clients: f.clients,
                slot: $slot,
            })
        };
    }
    match target {
        Target::Str(t) => visit!(Str(t)),
        Target::Int(t) => visit!(Int(t)),
        Target::Bool(t) => visit!(Bool(t)),
        Target::StrList(t) => visit!(StrList(t)),
        Target::StrMap(t) => visit!(StrMap(t)),
        Target::Entries(t) => visit!(MapOf(t)),
        Target::Products(t) => visit!(MapOf(t)),
        Target::Versions(t) => visit!(MapOf(t)),
        Target::Items(t) => visit!(MapOf(t)),
        Target::Unused => visit!(Str(&mut String::new())),
    }
}

/// A struct value: keys matched to fields exactly, then by Go's folding.
struct Struct<'t, T>(&'t mut T);

impl<'de, T: Fields> Slot<'de> for Struct<'_, T> {
    const EXPECTED: &'static str = "an object";
    fn object<A: MapAccess<'de>>(
        &mut self,
        ctx: &mut Ctx,
        loc: &Loc<'_>,
        _clients: &'static [Client],
        map: &mut A,
    ) -> Result<Fit, A::Error> {
        let fields = T::FIELDS;
        // Per field: how often it was given, and whether its first key was
        // the canonical spelling; the keys of every other case, in order.
        let mut count = [0u32; 16];
        let mut odd: Vec<(usize, String)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let index = fields
                .iter()
                .position(|f| f.name == key)
                .or_else(|| fields.iter().position(|f| go_fold_eq(&key, f.name)));
            let Some(i) = index else {
                self.0.unknown(&key);
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let canonical = key == fields[i].name;
            if count[i] == 1 && !odd.iter().any(|(j, _)| *j == i) {
                // The first key was canonical: it belongs to the list now.
                odd.push((i, fields[i].name.to_owned()));
            }
            if count[i] > 0 || !canonical {
                odd.push((i, key.into_owned()));
            }
            count[i] += 1;
            value(map, ctx, loc, &fields[i], self.0.field(i))?;
        }
        for (i, f) in fields.iter().enumerate() {
            let keys: Vec<String> = odd
                .iter()
                .filter(|(j, _)| *j == i)
                .map(|(_, k)| k.clone())
                .collect();
            if !keys.is_empty() {
                ctx.spelling(loc, f.name, keys);
            }
        }
        Ok(Ok(()))
    }
}

/// The top level of `index.json`.
#[derive(Default)]
struct IndexTop {
    index: BTreeMap<String, IndexEntry>,
    format: String,
}

impl Fields for IndexTop {
    const FIELDS: &'static [Field] = &[field("index"), field("updated"), field("format")];
    fn field(&mut self, i: usize) -> Target<'_> {
        match i {
            0 => Target::Entries(&mut self.index),
            2 => Target::Str(&mut self.format),
            _ => Target::Unused,
        }
    }
}

impl Fields for IndexEntry {
    const FIELDS: &'static [Field] = &[
        field("datatype"),
        field("path"),
        field("updated"),
        field("products"),
        field("format"),
    ];
    fn field(&mut self, i: usize) -> Target<'_> {
        match i {
            0 => Target::Str(&mut self.datatype),
            1 => Target::Str(&mut self.path),
            3 => Target::StrList(&mut self.products),
            4 => Target::Str(&mut self.format),
            _ => Target::Unused,
        }
    }
}

impl Fields for ProductsFile {
    const FIELDS: &'static [Field] = &[
        field("content_id"),
        field("datatype"),
        field("format"),
        field("license"),
        field("products"),
        field("updated"),
    ];
    fn field(&mut self, i: usize) -> Target<'_> {
        match i {
            0 => Target::Str(&mut self.content_id),
            2 => Target::Str(&mut self.format),
            4 => Target::Products(&mut self.products),
            _ => Target::Unused,
        }
    }
}

impl Fields for Product {
    const FIELDS: &'static [Field] = &[
        field("aliases"),
        field("arch"),
        field("os"),
        field("requirements"),
        Field {
            name: "lxd_requirements",
            clients: LXD,
        },
        field("release"),
        field("release_codename"),
        field("release_title"),
        field("supported"),
        field("support_eol"),
        field("version"),
        field("versions"),
        field("variant"),
    ];
    fn field(&mut self, i: usize) -> Target<'_> {
        match i {
            0 => Target::Str(&mut self.aliases),
            1 => Target::Str(&mut self.arch),
            2 => Target::Str(&mut self.os),
            3 => Target::StrMap(&mut self.requirements),
            4 => Target::StrMap(&mut self.lxd_requirements),
            5 => Target::Str(&mut self.release),
            6 => Target::Str(&mut self.release_codename),
            7 => Target::Str(&mut self.release_title),
            8 => Target::Bool(&mut self.supported),
            9 => Target::Str(&mut self.support_eol),
            10 => Target::Str(&mut self.version),
            11 => Target::Versions(&mut self.versions),
            _ => Target::Str(&mut self.variant),
        }
    }
}

impl Fields for Version {
    const FIELDS: &'static [Field] = &[field("items"), field("label"), field("pubname")];
    fn field(&mut self, i: usize) -> Target<'_> {
        match i {
            0 => Target::Items(&mut self.items),
            1 => Target::Str(&mut self.label),
            _ => Target::Str(&mut self.pubname),
        }
    }
}

/// The fields of an item after its combined keys, which come first in
/// [`CombinedKey::ALL`] order.
const ITEM_FIELDS: &[Field] = &[
    field(CombinedKey::ALL[0].as_str()),
    field(CombinedKey::ALL[1].as_str()),
    field(CombinedKey::ALL[2].as_str()),
    field(CombinedKey::ALL[3].as_str()),
    field(CombinedKey::ALL[4].as_str()),
    field(CombinedKey::ALL[5].as_str()),
    field("ftype"),
    field("md5"),
    field("path"),
    field("sha256"),
    field("size"),
    field("delta_base"),
    Field {
        name: "combined_type",
        clients: INCUS,
    },
];

impl Fields for Item {
    const FIELDS: &'static [Field] = ITEM_FIELDS;
    fn field(&mut self, i: usize) -> Target<'_> {
        match i {
            0..6 => Target::Str(self.combined_mut(CombinedKey::ALL[i])),
            6 => Target::Str(&mut self.ftype),
            8 => Target::Str(&mut self.path),
            9 => Target::Str(&mut self.sha256),
            10 => Target::Int(&mut self.size),
            11 => Target::Str(&mut self.delta_base),
            12 => Target::Str(&mut self.combined_type),
            _ => Target::Unused,
        }
    }
    fn unknown(&mut self, key: &str) {
        self.unknown_keys.push(key.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_folds_ascii_and_two_unicode_letters() {
        assert!(go_fold_eq("\u{212A}ey", "key"));
        assert!(go_fold_eq("\u{017F}ize", "size"));
        assert!(go_fold_eq("SIZE", "size"));
        assert!(!go_fold_eq("sizé", "size"));
    }

    #[test]
    fn locations_render_like_the_lint_names_them() {
        let root = Loc::Root;
        let products = Loc::Field(&root, "products");
        let p = Loc::Key(&products, "a:b");
        let req = Loc::Field(&p, "requirements");
        assert_eq!(
            Loc::Name(&req, "secureboot").to_string(),
            r#"products["a:b"].requirements.secureboot"#
        );
        assert_eq!(
            Loc::Name(&req, "a b").to_string(),
            r#"products["a:b"].requirements["a b"]"#
        );
        let list = Loc::Field(&p, "products");
        assert_eq!(
            Loc::Index(&list, 2).to_string(),
            r#"products["a:b"].products[2]"#
        );
    }
}
