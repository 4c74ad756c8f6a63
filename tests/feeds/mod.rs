//! The live feeds (RIS Live, bgproutes.io), their warm start, `bgpsentry stream`, and hostile
//! input to their parsers.

mod bgproutes;
mod bmp;
mod fuzz_corpus;
mod hostile_input;
mod kafka;
mod ris_live;
mod stream;
mod warm_start;
