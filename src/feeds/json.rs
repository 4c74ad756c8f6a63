//! Small borrowed JSON pieces for the feed parsers.
//!
//! Frames are read straight into typed structs whose strings point into the frame, instead of
//! building a `serde_json::Value` tree with an allocation per key and string. Every piece
//! accepts any JSON shape and records what it saw, so the parsers still decide what is wrong
//! and report it with their own reasons.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Whether reading `text` failed because it is not JSON at all (bad syntax, cut short, nested
/// too deep) rather than JSON of the wrong shape. A shape error can be raised before the
/// rest of the text is seen, so the text is then checked whole.
pub fn is_syntax(e: &serde_json::Error, text: &str) -> bool {
    match e.classify() {
        serde_json::error::Category::Data => serde_json::from_str::<IgnoredAny>(text).is_err(),
        _ => true,
    }
}

/// One JSON value, with scalars kept and arrays and objects only noted.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// A string (borrowed from the frame unless it had escapes).
    Str(Cow<'a, str>),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// A number with a fraction or exponent.
    F64(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An array (skipped).
    Array,
    /// An object (skipped).
    Object,
}

impl<'a> Scalar<'a> {
    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::U64(n) => Some(n as f64),
            Scalar::I64(n) => Some(n as f64),
            Scalar::F64(n) => Some(n),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Scalar::U64(n) => i64::try_from(n).ok(),
            Scalar::I64(n) => Some(n),
            _ => None,
        }
    }

    /// True for any number.
    pub fn is_number(&self) -> bool {
        matches!(self, Scalar::U64(_) | Scalar::I64(_) | Scalar::F64(_))
    }
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::U64(n) => write!(f, "{n}"),
            Scalar::I64(n) => write!(f, "{n}"),
            Scalar::F64(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Null => f.write_str("null"),
            Scalar::Array => f.write_str("[…]"),
            Scalar::Object => f.write_str("{…}"),
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(if v >= 0 {
            Scalar::U64(v as u64)
        } else {
            Scalar::I64(v)
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// Implements the `visit_*` methods of a [`Visitor`] for the kinds of JSON value listed
/// (`scalars`, `null`, `array`, `object`), each giving `$value`: the parsers read any shape and
/// record what they saw instead of failing, and most shapes mean the same thing to them.
macro_rules! other_json_is {
    ($value:expr; $($kind:ident),+) => {
        $( $crate::feeds::json::other_json_is!(@one $kind, $value); )+
    };
    (@one scalars, $value:expr) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@one null, $value:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@one array, $value:expr) => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok($value)
        }
    };
    (@one object, $value:expr) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok($value)
        }
    };
}
pub(crate) use other_json_is;

/// What was wrong with a list of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListError {
    /// It was not a list (nor `null`).
    NotList,
    /// It held something other than a string.
    NonString,
}

/// A list of strings as sent: `null` is empty; anything else that is not a list of strings is
/// recorded, not refused, so the parser can decide whether it matters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StrList<'a> {
    /// The strings, in order (those before a non-string element, if any).
    pub items: Vec<Cow<'a, str>>,
    /// How many elements the list had (all kinds), for the per-message limits.
    pub len: usize,
    /// What was wrong, if anything.
    pub error: Option<ListError>,
    /// The value when it was a single string (bgproutes may join prefixes with commas).
    pub single: Option<Cow<'a, str>>,
}

struct StrListVisitor;

impl<'de> Visitor<'de> for StrListVisitor {
    type Value = StrList<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(StrList::default())
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(StrList::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = StrList {
            items: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64)),
            ..StrList::default()
        };
        while let Some(item) = seq.next_element::<Scalar<'de>>()? {
            out.len += 1;
            match item {
                Scalar::Str(s) if out.error.is_none() => out.items.push(s),
                Scalar::Str(_) => {}
                _ => out.error = Some(ListError::NonString),
            }
        }
        Ok(out)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self.not_list(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.not_list(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self.not_list(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self.not_list(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.not_list(None))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.not_list(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(self.not_list(None))
    }
}

impl StrListVisitor {
    fn not_list<'a>(self, single: Option<Cow<'a, str>>) -> StrList<'a> {
        StrList {
            error: Some(ListError::NotList),
            single,
            ..StrList::default()
        }
    }
}

impl<'de> Deserialize<'de> for StrList<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrListVisitor)
    }
}

/// Reads a JSON object's keys without allocating when they have no escapes.
pub fn key<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    map.next_key::<Scalar<'de>>().map(|k| {
        k.map(|k| match k {
            Scalar::Str(s) => s,
            _ => Cow::Borrowed(""),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_borrow_and_note_containers() {
        let v: Vec<Scalar> =
            serde_json::from_str(r#"["a", "b\n", 1, -2, 1.5, true, null, [1,[2]], {"x":{}}]"#)
                .unwrap();
        assert!(matches!(&v[0], Scalar::Str(Cow::Borrowed("a"))));
        assert!(matches!(&v[1], Scalar::Str(Cow::Owned(s)) if s == "b\n"));
        assert_eq!(v[2], Scalar::U64(1));
        assert_eq!(v[3], Scalar::I64(-2));
        assert_eq!(v[4], Scalar::F64(1.5));
        assert_eq!(v[5], Scalar::Bool(true));
        assert_eq!(v[6], Scalar::Null);
        assert_eq!(v[7], Scalar::Array);
        assert_eq!(v[8], Scalar::Object);
    }

    #[test]
    fn string_lists_record_what_is_wrong() {
        let l: StrList = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!((l.items.len(), l.len, l.error), (2, 2, None));
        let l: StrList = serde_json::from_str(r#"["a",1,"c"]"#).unwrap();
        assert_eq!(
            (l.items.len(), l.len, l.error),
            (1, 3, Some(ListError::NonString))
        );
        let l: StrList = serde_json::from_str(r#""a,b""#).unwrap();
        assert_eq!(l.error, Some(ListError::NotList));
        assert_eq!(l.single.as_deref(), Some("a,b"));
        let l: StrList = serde_json::from_str("null").unwrap();
        assert_eq!((l.len, l.error), (0, None));
        let l: StrList = serde_json::from_str(r#"{"a":[1]}"#).unwrap();
        assert_eq!(l.error, Some(ListError::NotList));
    }
}
