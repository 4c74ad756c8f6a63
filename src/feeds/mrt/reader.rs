//! Reads MRT files into route events, one record at a time.
//!
//! BGP4MP updates, TABLE_DUMP and TABLE_DUMP_V2 RIBs (RFC 6396), gz, bz2 or plain, read with
//! bgpkit-parser.
//!
//! Records are framed one at a time so that a record that does not parse is reported with its
//! byte offset (in the decompressed stream) and skipped, and the rest of the file still counts.

use foldhash::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bgpkit_parser::models::{
    AsPathSegment, Bgp4MpEnum, BgpElem, BgpState, ElemType, MetaCommunity, MrtMessage,
};
use bgpkit_parser::models::{Community as BgpCommunity, MrtRecord};
use bgpkit_parser::parser::iters::record_validation_warnings;
use bgpkit_parser::{Elementor, chunk_mrt_record, error::ParserError};

use crate::event::{
    AsPath, Community, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp,
    VantagePoint,
};
use crate::feeds::admit::{Admission, FileClock, check_time};
use crate::feeds::error::InvalidReason;

/// Counts of what a file held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MrtStats {
    /// MRT records framed.
    pub records: u64,
    /// Announcements (one per prefix).
    pub announcements: u64,
    /// Withdrawals (one per prefix).
    pub withdrawals: u64,
    /// Sessions that left the Established state.
    pub peer_downs: u64,
    /// Records that could not be parsed and were skipped.
    pub bad_records: u64,
    /// Records that parsed with problems (RFC 7606 findings such as a malformed NLRI): their
    /// valid parts were used and the problem reported.
    pub malformed_records: u64,
}

/// A record that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// The file.
    pub file: PathBuf,
    /// Byte offset of the record in the decompressed file.
    pub offset: u64,
    /// What was wrong.
    pub message: String,
    /// Whether reading can go on after it (false when the framing itself is lost).
    pub recoverable: bool,
    /// The record parsed with problems and its valid parts were used (not skipped).
    pub used_in_part: bool,
    /// The `reason` label it is counted under in `bgpsentry_invalid_input_total`.
    pub reason: InvalidReason,
}

impl BadRecord {
    fn used_in_part(mut self) -> Self {
        self.used_in_part = true;
        self
    }
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: MRT record at byte offset {}: {}; {}",
            self.file.display(),
            self.offset,
            self.message,
            if self.used_in_part {
                "used its valid parts"
            } else if self.recoverable {
                "skipped it and went on with the next record"
            } else {
                "the rest of the file cannot be framed and was not read"
            }
        )
    }
}

/// Wraps a reader and counts the bytes taken from it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Turns every error of a decompressor into `InvalidData` naming the format. The MRT framer
/// reads an `UnexpectedEof` before a record as the clean end of the file, so a truncated or
/// corrupt compressed stream would otherwise end the file silently.
struct Decompressed<R> {
    inner: R,
    format: &'static str,
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the {} stream is truncated or corrupt ({e})", self.format),
            )
        })
    }
}

/// Counts the bytes read from the file as stored (before decompression), for progress.
struct FileCounting {
    inner: File,
    read: Arc<AtomicU64>,
}

impl Read for FileCounting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file, decompressing gzip or bzip2 by their magic bytes.
pub fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    open_counted(path, Arc::default())
}

/// [`open_decompressed`], adding the bytes read from the file to `read`.
fn open_counted(path: &Path, read: Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
    let file = FileCounting {
        inner: File::open(path)?,
        read,
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, file);
    let magic = buffered.fill_buf()?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(Decompressed {
            inner: flate2::read::MultiGzDecoder::new(buffered),
            format: "gzip",
        })
    } else if magic.starts_with(b"BZh") {
        Box::new(Decompressed {
            inner: bzip2::read::MultiBzDecoder::new(buffered),
            format: "bzip2",
        })
    } else {
        Box::new(buffered)
    })
}

/// Reads one MRT file as route events.
pub struct MrtReader {
    path: PathBuf,
    reader: Counting<BufReader<Box<dyn Read + Send>>>,
    elementor: Elementor,
    feed: Arc<str>,
    collector: Arc<str>,
    /// foldhash (seeded per process): looked up for every elem.
    vps: HashMap<(u32, IpAddr), Arc<VantagePoint>>,
    /// The VP returned last.
    last_vp: Option<Arc<VantagePoint>>,
    last_attrs: Option<Arc<RouteAttrs>>,
    stats: MrtStats,
    done: bool,
    /// This host's clock when the file was opened: no event may be more than a day ahead of it.
    opened_at: Timestamp,
    /// Record times of the file so far, to reject one far from the others.
    clock: FileClock,
    /// Event times and vantage points the file's events must pass.
    admission: Admission,
    /// Bytes read from the file as stored (0 for a stream).
    file_read: Arc<AtomicU64>,
}

/// The collector name a RIS or RouteViews file name implies (`rrc00-updates…` → `rrc00`).
pub fn collector_from_file_name(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.split(['-', '.']).next().unwrap_or("");
    if stem.starts_with("rrc") || stem.starts_with("route") {
        stem.to_string()
    } else {
        String::new()
    }
}

impl MrtReader {
    /// Opens a file. VPs are named with `feed` and `collector` (derived from the file name when
    /// `None`).
    pub fn open(path: &Path, feed: &str, collector: Option<&str>) -> io::Result<Self> {
        let file_read = Arc::new(AtomicU64::new(0));
        let inner = open_counted(path, file_read.clone())?;
        let collector = collector
            .map(str::to_string)
            .unwrap_or_else(|| collector_from_file_name(path));
        let mut reader = Self::with_buffer(
            BufReader::with_capacity(256 * 1024, inner),
            path,
            feed,
            &collector,
        );
        reader.file_read = file_read;
        Ok(reader)
    }

    /// Reads MRT records from an already decompressed stream (a socket, a buffer in memory, a
    /// fuzzer's input). `name` stands for the file in [`BadRecord`]s.
    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        name: &Path,
        feed: &str,
        collector: &str,
    ) -> Self {
        Self::with_buffer(BufReader::new(reader), name, feed, collector)
    }

    /// A reader at the start of `reader`, which is buffered as its caller sees fit.
    fn with_buffer(
        reader: BufReader<Box<dyn Read + Send>>,
        name: &Path,
        feed: &str,
        collector: &str,
    ) -> Self {
        MrtReader {
            path: name.to_path_buf(),
            reader: Counting {
                inner: reader,
                read: 0,
            },
            elementor: Elementor::new(),
            feed: feed.into(),
            collector: collector.into(),
            vps: HashMap::default(),
            last_vp: None,
            last_attrs: None,
            stats: MrtStats::default(),
            done: false,
            opened_at: Timestamp::now(),
            clock: FileClock::default(),
            admission: Admission::default(),
            file_read: Arc::default(),
        }
    }

    /// What was read so far.
    pub fn stats(&self) -> MrtStats {
        self.stats
    }

    /// Bytes of the file as stored (compressed or not) read so far; 0 for a stream.
    pub fn file_offset(&self) -> u64 {
        self.file_read.load(Ordering::Relaxed)
    }

    /// Bytes of decompressed input consumed so far.
    pub fn offset(&self) -> u64 {
        self.reader.read
    }

    /// Reads the next record and appends its events to `out`. Returns `None` at the end of the
    /// file, `Some(Err)` for a record that was skipped (or that ends reading, see
    /// [`BadRecord::recoverable`]) or that parsed with problems (its valid parts are in `out`).
    pub fn next_record(&mut self, out: &mut Vec<FeedEvent>) -> Option<Result<(), BadRecord>> {
        if self.done {
            return None;
        }
        let offset = self.reader.read;
        let raw = match chunk_mrt_record(&mut self.reader) {
            Ok(raw) => raw,
            Err(e) => {
                self.done = true;
                return match e.error {
                    ParserError::EofExpected => None,
                    ParserError::EofError(_) if self.reader.read == offset => None,
                    other => {
                        self.stats.bad_records += 1;
                        Some(Err(self.bad(offset, other.to_string(), false)))
                    }
                };
            }
        };
        self.stats.records += 1;
        let record = match raw.parse() {
            Ok(r) => r,
            Err(e) => {
                self.stats.bad_records += 1;
                return Some(Err(self.bad(offset, e.to_string(), true)));
            }
        };
        // A record whose time is absurd or far from the file's other records is skipped whole:
        // its events would move the engine's clock (see `admit`).
        let time = record_time(&record);
        if let Err(bad) = check_time(time, self.opened_at).and_then(|()| self.clock.check(time)) {
            self.stats.bad_records += 1;
            let mut b = self.bad(offset, bad.detail, true);
            b.reason = bad.reason;
            return Some(Err(b));
        }
        let warnings = record_validation_warnings(&record);
        let start = out.len();
        self.convert(record, out);
        // Each event on its own: a table dump's routes carry their own (originated) times, and
        // every event must come from a vantage point within the limit.
        let mut events = out.split_off(start);
        let rejected = self.admission.filter(&mut events, self.opened_at);
        let kept = !events.is_empty();
        out.append(&mut events);
        if warnings.is_empty() && rejected.is_empty() {
            return Some(Ok(()));
        }
        let mut problems: Vec<String> = Vec::new();
        if !warnings.is_empty() {
            self.stats.malformed_records += 1;
            let list: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
            problems.push(format!("malformed content ({})", list.join("; ")));
        }
        if let Some(first) = rejected.first() {
            problems.push(format!(
                "{} events skipped ({})",
                rejected.len(),
                first.detail
            ));
        }
        let mut b = self.bad(offset, problems.join("; "), true);
        if let (true, Some(first)) = (warnings.is_empty(), rejected.first()) {
            b.reason = first.reason;
        }
        if kept || !warnings.is_empty() {
            b = b.used_in_part();
        } else {
            self.stats.bad_records += 1;
        }
        Some(Err(b))
    }

    fn bad(&self, offset: u64, message: String, recoverable: bool) -> BadRecord {
        BadRecord {
            file: self.path.clone(),
            offset,
            message,
            recoverable,
            used_in_part: false,
            reason: InvalidReason::MrtRecord,
        }
    }

    fn vp(&mut self, asn: u32, ip: IpAddr) -> Arc<VantagePoint> {
        // The elems of one record share a peer: most lookups are the one before.
        if let Some(last) = &self.last_vp
            && last.peer_asn == asn
            && last.peer_ip == ip
        {
            return last.clone();
        }
        let (feed, collector) = (&self.feed, &self.collector);
        let vp = self
            .vps
            .entry((asn, ip))
            .or_insert_with(|| {
                Arc::new(VantagePoint {
                    feed: feed.clone(),
                    collector: collector.clone(),
                    peer_asn: asn,
                    peer_ip: ip,
                    exporter: None,
                })
            })
            .clone();
        self.last_vp = Some(vp.clone());
        vp
    }

    fn convert(&mut self, record: MrtRecord, out: &mut Vec<FeedEvent>) {
        if let MrtMessage::Bgp4Mp(Bgp4MpEnum::StateChange(sc)) = &record.message {
            if sc.old_state == BgpState::Established && sc.new_state != BgpState::Established {
                self.stats.peer_downs += 1;
                let vp = self.vp(sc.peer_asn.to_u32(), sc.peer_ip);
                out.push(FeedEvent::PeerDown {
                    timestamp: record_time(&record),
                    vp,
                    within: None,
                });
            }
            return;
        }
        for elem in self.elementor.record_to_elems(record) {
            let event = self.route_event(elem);
            out.push(FeedEvent::Route(event));
        }
    }

    fn route_event(&mut self, elem: BgpElem) -> RouteEvent {
        let vp = self.vp(elem.peer_asn.to_u32(), elem.peer_ip);
        let change = match elem.elem_type {
            ElemType::ANNOUNCE => {
                self.stats.announcements += 1;
                RouteChange::Announce(shared_attrs(&elem, &mut self.last_attrs))
            }
            ElemType::WITHDRAW => {
                self.stats.withdrawals += 1;
                RouteChange::Withdraw
            }
        };
        RouteEvent {
            timestamp: Timestamp::from_secs_f64(elem.timestamp),
            vp,
            prefix: elem.prefix.prefix.trunc(),
            change,
        }
    }
}

fn record_time(record: &MrtRecord) -> Timestamp {
    let h = &record.common_header;
    Timestamp::from_parts(
        h.timestamp as i64,
        h.microsecond_timestamp.unwrap_or(0) as i64,
    )
}

/// The attributes of an announced elem, as the `Arc` in `last` when they are equal to it:
/// consecutive elems of one UPDATE carry the same attributes, so they share one allocation.
pub(crate) fn shared_attrs(elem: &BgpElem, last: &mut Option<Arc<RouteAttrs>>) -> Arc<RouteAttrs> {
    // Compared in place first: converting (two allocations) only to find them equal to the
    // last set was a tenth of a replay's instructions.
    if let Some(a) = last
        && same_attrs(elem, a)
    {
        return a.clone();
    }
    let attrs = RouteAttrs {
        path: elem.as_path.as_ref().map(convert_path).unwrap_or_default(),
        communities: elem
            .communities
            .as_deref()
            .map(|c| convert_communities(c).into())
            .unwrap_or_default(),
        next_hop: elem.next_hop,
    };
    match last {
        Some(a) if **a == attrs => a.clone(),
        _ => {
            let a = Arc::new(attrs);
            *last = Some(a.clone());
            a
        }
    }
}

/// True when `elem` converts to attributes equal to `attrs` ([`convert_path`],
/// [`convert_communities`], the next hop), without converting it.
fn same_attrs(elem: &BgpElem, attrs: &RouteAttrs) -> bool {
    if elem.next_hop != attrs.next_hop {
        return false;
    }
    let same_path = match elem.as_path.as_ref() {
        None => attrs.path.is_empty(),
        Some(path) => {
            let mut held = attrs.path.iter();
            let mut same = true;
            for seg in path.iter_segments() {
                match seg {
                    AsPathSegment::AsSequence(asns) => {
                        same = asns
                            .iter()
                            .all(|a| held.next() == Some(&PathElem::Asn(a.to_u32())));
                    }
                    AsPathSegment::AsSet(asns) => {
                        // Rare: converted as `convert_path` does.
                        let mut set: Vec<u32> = asns.iter().map(|a| a.to_u32()).collect();
                        set.sort_unstable();
                        set.dedup();
                        same = matches!(held.next(), Some(PathElem::Set(s)) if **s == set[..]);
                    }
                    AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => {}
                }
                if !same {
                    break;
                }
            }
            same && held.next().is_none()
        }
    };
    same_path
        && match elem.communities.as_deref() {
            None => attrs.communities.is_empty(),
            Some(list) => list
                .iter()
                .filter_map(convert_community)
                .eq(attrs.communities.iter().copied()),
        }
}

/// Converts bgpkit's AS path; confederation segments are internal to the neighbour and left out.
fn convert_path(path: &bgpkit_parser::models::AsPath) -> AsPath {
    let mut out = Vec::new();
    for seg in path.iter_segments() {
        match seg {
            AsPathSegment::AsSequence(asns) => {
                out.extend(asns.iter().map(|a| PathElem::Asn(a.to_u32())))
            }
            AsPathSegment::AsSet(asns) => {
                let mut set: Vec<u32> = asns.iter().map(|a| a.to_u32()).collect();
                set.sort_unstable();
                set.dedup();
                out.push(PathElem::Set(set.into()));
            }
            AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => {}
        }
    }
    AsPath::from(out)
}

fn convert_communities(list: &[MetaCommunity]) -> Vec<Community> {
    list.iter().filter_map(convert_community).collect()
}

/// One community as the engine holds it; extended communities are left out.
fn convert_community(c: &MetaCommunity) -> Option<Community> {
    match c {
        MetaCommunity::Plain(BgpCommunity::Custom(asn, value)) => {
            Some(Community::Standard(asn.to_u32() as u16, *value))
        }
        MetaCommunity::Plain(BgpCommunity::NoExport) => Some(Community::Standard(0xFFFF, 0xFF01)),
        MetaCommunity::Plain(BgpCommunity::NoAdvertise) => {
            Some(Community::Standard(0xFFFF, 0xFF02))
        }
        MetaCommunity::Plain(BgpCommunity::NoExportSubConfed) => {
            Some(Community::Standard(0xFFFF, 0xFF03))
        }
        MetaCommunity::Large(l) => Some(Community::Large(
            l.global_admin,
            l.local_data[0],
            l.local_data[1],
        )),
        MetaCommunity::Extended(_) | MetaCommunity::Ipv6Extended(_) => None,
    }
}
