//! The borrowed serde shapes of a RIS Live frame, read in one pass.
//!
//! The envelope, the `ris_message` fields that matter, and the path, communities and
//! announcements checked as they are read; the [`parser`](super::parser) turns them into
//! events.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::event::{AsPath, Community, PathElem};
use crate::feeds::error::{Invalid, InvalidReason, check_path_len};
use crate::feeds::json::{self, Scalar, StrList};

/// The outer object: `{"type": …, "data": …}`. RIS Live sends `type` first, so the data of a
/// `ris_message` is usually read as such in the same pass; otherwise it is kept raw and read
/// once the type is known.
pub(super) struct Envelope<'a> {
    pub(super) ty: Option<Scalar<'a>>,
    pub(super) data: Option<&'a RawValue>,
    pub(super) msg: Option<MaybeMsg<'a>>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut env = Envelope {
                    ty: None,
                    data: None,
                    msg: None,
                };
                while let Some(k) = json::key(&mut map)? {
                    match &*k {
                        "type" => env.ty = Some(map.next_value()?),
                        "data" if matches!(&env.ty, Some(Scalar::Str(t)) if t == "ris_message") => {
                            env.msg = Some(map.next_value()?);
                            env.data = None;
                        }
                        "data" => {
                            env.data = Some(map.next_value()?);
                            env.msg = None;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V)
    }
}

/// `ris_error` data: its `message`, if it has a string one.
pub(super) struct ErrorData(pub(super) Option<String>);

impl<'de> Deserialize<'de> for ErrorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ErrorData;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut msg = None;
                while let Some(k) = json::key(&mut map)? {
                    if k == "message" {
                        msg = map.next_value::<Scalar>()?.as_str().map(str::to_string);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ErrorData(msg))
            }
        }
        d.deserialize_map(V)
    }
}

/// The fields of a `ris_message` that matter, read in one pass (a repeated key: the last one).
#[derive(Default)]
pub(super) struct MsgData<'a> {
    pub(super) timestamp: Option<Scalar<'a>>,
    pub(super) peer: Option<Scalar<'a>>,
    pub(super) peer_asn: Option<Scalar<'a>>,
    pub(super) host: Option<Scalar<'a>>,
    pub(super) kind: Option<Scalar<'a>>,
    pub(super) state: Option<Scalar<'a>>,
    pub(super) path: Option<RisPath>,
    pub(super) community: Option<RisCommunities>,
    pub(super) announcements: Option<Announcements<'a>>,
    pub(super) withdrawals: Option<StrList<'a>>,
}

/// `ris_message` data: `None` when it is not an object.
pub(super) struct MaybeMsg<'a>(pub(super) Option<MsgData<'a>>);

impl<'de> Deserialize<'de> for MaybeMsg<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeMsg<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut m = MsgData::default();
                while let Some(k) = json::key(&mut map)? {
                    match &*k {
                        "timestamp" => m.timestamp = Some(map.next_value()?),
                        "peer" => m.peer = Some(map.next_value()?),
                        "peer_asn" => m.peer_asn = Some(map.next_value()?),
                        "host" => m.host = Some(map.next_value()?),
                        "type" => m.kind = Some(map.next_value()?),
                        "state" => m.state = Some(map.next_value()?),
                        "path" => m.path = Some(map.next_value()?),
                        "community" => m.community = Some(map.next_value()?),
                        "announcements" => m.announcements = Some(map.next_value()?),
                        "withdrawals" => m.withdrawals = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(MaybeMsg(Some(m)))
            }
            json::other_json_is!(MaybeMsg(None); scalars, null, array);
        }
        d.deserialize_any(V)
    }
}

pub(super) fn asn_scalar(v: &Scalar) -> Result<u32, Invalid> {
    match *v {
        Scalar::U64(a) => u32::try_from(a).ok(),
        _ => None,
    }
    .ok_or_else(|| Invalid::new(InvalidReason::InvalidAsn, format!("`{v}` is not an ASN")))
}

/// A RIS path (integers, with an AS_SET as a nested list), checked as it is read; what is
/// wrong with it matters only if the message announces something.
pub(super) struct RisPath(pub(super) Result<AsPath, Invalid>);

/// One element of a RIS path.
enum PathItem {
    Asn(Result<u32, Invalid>),
    /// An AS_SET: its members (at most one over the path limit are kept) and how many it had.
    Set(Vec<Result<u32, Invalid>>, usize),
}

impl<'de> Deserialize<'de> for PathItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PathItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ASN or a list of ASNs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                let mut count = 0usize;
                while let Some(m) = seq.next_element::<Scalar>()? {
                    count += 1;
                    if members.len() <= crate::feeds::error::MAX_AS_PATH_LEN {
                        members.push(asn_scalar(&m));
                    }
                }
                Ok(PathItem::Set(members, count))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::U64(v))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::I64(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::F64(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::Str(v.into()))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::Bool(v))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::Null)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(PathItem::Asn(asn_scalar(&Scalar::Object)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RisPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RisPath;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS path")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RisPath(Ok(AsPath::default())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut elems = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(64));
                let mut asns = 0usize;
                let mut failed: Option<Invalid> = None;
                // The rest of a bad path is still read (the frame must stay parsable), not kept.
                while let Some(item) = seq.next_element::<PathItem>()? {
                    if failed.is_some() {
                        continue;
                    }
                    if let Err(e) = check_path_len(asns) {
                        failed = Some(e);
                        continue;
                    }
                    match item {
                        PathItem::Asn(Ok(a)) => {
                            elems.push(PathElem::Asn(a));
                            asns += 1;
                        }
                        PathItem::Asn(Err(e)) => failed = Some(e),
                        PathItem::Set(members, count) => {
                            asns += count;
                            let set = check_path_len(asns).and_then(|()| {
                                members.into_iter().collect::<Result<Vec<u32>, _>>()
                            });
                            match set {
                                Ok(m) if m.is_empty() => {
                                    failed = Some(Invalid::new(
                                        InvalidReason::Schema,
                                        "empty AS_SET in `path`",
                                    ))
                                }
                                Ok(m) => elems.push(PathElem::Set(m.into())),
                                Err(e) => failed = Some(e),
                            }
                        }
                    }
                }
                Ok(RisPath(match failed {
                    Some(e) => Err(e),
                    None => check_path_len(asns).map(|()| AsPath::from(elems)),
                }))
            }
            json::other_json_is!(not_a_list(); scalars, object);
        }
        fn not_a_list() -> RisPath {
            RisPath(Err(Invalid::new(
                InvalidReason::Schema,
                "`path` is not a list",
            )))
        }
        d.deserialize_any(V)
    }
}

/// Communities as `[a, b]` (standard) or `[a, b, c]` (large) lists; the ones that are neither
/// are kept as text for the report.
#[derive(Default)]
pub(super) struct RisCommunities {
    pub(super) list: Vec<Community>,
    pub(super) invalid: Vec<String>,
}

impl<'de> Deserialize<'de> for RisCommunities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Item(Result<Community, String>);
        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a community")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut nums: Vec<Scalar> = Vec::with_capacity(3);
                        let mut count = 0usize;
                        while let Some(n) = seq.next_element::<Scalar>()? {
                            count += 1;
                            if nums.len() < 4 {
                                nums.push(n);
                            }
                        }
                        let u = |s: &Scalar| match *s {
                            Scalar::U64(n) => Some(n),
                            _ => None,
                        };
                        let c = match (count, nums.as_slice()) {
                            (2, [a, b]) => u(a)
                                .zip(u(b))
                                .and_then(|(a, b)| {
                                    Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?))
                                })
                                .map(|(a, b)| Community::Standard(a, b)),
                            (3, [a, b, c]) => (|| {
                                Some(Community::Large(
                                    u32::try_from(u(a)?).ok()?,
                                    u32::try_from(u(b)?).ok()?,
                                    u32::try_from(u(c)?).ok()?,
                                ))
                            })(),
                            _ => None,
                        };
                        Ok(Item(c.ok_or_else(|| {
                            let shown: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
                            let more = if count > nums.len() { ",…" } else { "" };
                            format!("[{}{more}]", shown.join(","))
                        })))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                        Ok(Item(Err(Scalar::Str(v.into()).to_string())))
                    }
                    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_unit<E>(self) -> Result<Self::Value, E> {
                        Ok(Item(Err("null".into())))
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        Ok(Item(Err("{…}".into())))
                    }
                }
                d.deserialize_any(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RisCommunities;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of communities")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = RisCommunities::default();
                while let Some(Item(c)) = seq.next_element()? {
                    match c {
                        Ok(c) => out.list.push(c),
                        Err(text) => out.invalid.push(text),
                    }
                }
                Ok(out)
            }
            // Anything but a list means no communities.
            json::other_json_is!(RisCommunities::default(); scalars, null, object);
        }
        d.deserialize_any(V)
    }
}

/// `announcements`: `Err` when it is neither a list nor `null`.
pub(super) struct Announcements<'a>(pub(super) Result<Vec<Announcement<'a>>, ()>);

/// One announcement: `None` when it is not an object.
pub(super) struct Announcement<'a>(pub(super) Option<(Option<Scalar<'a>>, StrList<'a>)>);

impl<'de> Deserialize<'de> for Announcement<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Announcement<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an announcement")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut next_hop = None;
                let mut prefixes = StrList::default();
                while let Some(k) = json::key(&mut map)? {
                    match &*k {
                        "next_hop" => next_hop = Some(map.next_value()?),
                        "prefixes" => prefixes = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Announcement(Some((next_hop, prefixes))))
            }
            json::other_json_is!(Announcement(None); scalars, null, array);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Announcements<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Announcements<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of announcements")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Announcements(Ok(Vec::new())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(a) = seq.next_element()? {
                    out.push(a);
                }
                Ok(Announcements(Ok(out)))
            }
            json::other_json_is!(Announcements(Err(())); scalars, object);
        }
        d.deserialize_any(V)
    }
}
