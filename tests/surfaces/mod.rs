//! The user-facing surfaces: `generate`, `import-bgpalerter`, `replay --report`, the status page,
//! and the book and README that describe them.

mod docs_book;
mod generate;
mod http;
mod import;
mod replay_report;
