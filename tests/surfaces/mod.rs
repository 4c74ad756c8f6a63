//! The user-facing surfaces: `generate`, `import-bgpalerter`, `replay --report`, the status page.

mod generate;
mod http;
mod import;
mod replay_report;
