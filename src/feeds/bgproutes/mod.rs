//! The bgproutes.io live stream: its parser, the service's feed and its `stream` output.
//!
//! The [`parser`] reads its frames, [`connection`] is the service's feed (associate, connect,
//! reconnect), and [`stream`] is what `bgpsentry stream` prints (a library client without
//! reconnection and the reference client's format).
//!
//! # Library use
//!
//! ```no_run
//! use bgpsentry::feeds::bgproutes::BgproutesClient;
//! use futures_util::StreamExt;
//!
//! # async fn demo() -> Result<(), bgpsentry::feeds::bgproutes::ClientError> {
//! let mut client = BgproutesClient::from_env()?; // reads BGP_API_KEY
//! client.subscribe_to_prefixes("192.0.2.0/24,2001:db8::/32").await?;
//! let mut messages = client.messages().await?;
//! while let Some(msg) = messages.next().await {
//!     println!("{}", msg?); // TIMESTAMP|MSG_TYPE|VP_ASN|VP_IP|PREFIXES|ASPATH|...
//! }
//! # Ok(())
//! # }
//! ```

pub mod connection;
pub mod parser;
pub mod stream;

pub use connection::{
    ClientError, DEFAULT_KEY_ENV, DEFAULT_LIVE_MANAGER_URL, DEFAULT_REASSOCIATE_SECS, DEFAULT_URL,
    associate, read_key, spawn, ws_url,
};
pub use stream::{BgpLiveMsg, BgproutesClient, MessageStream, MsgType};
