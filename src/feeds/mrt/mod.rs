//! MRT files (RFC 6396): their reader and the service's `mrt` feed.
//!
//! The [`reader`] turns a file into route events, record by record; the [`feed`] replays
//! files once at start-up. MRT has no live connection and `bgpsentry stream` does not read it.

pub mod feed;
pub mod reader;

pub use reader::{BadRecord, MrtReader, MrtStats, collector_from_file_name, open_decompressed};
