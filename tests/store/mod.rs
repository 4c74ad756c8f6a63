//! The alert store: crash safety and the integrity check at start.

mod crash;
mod integrity;
