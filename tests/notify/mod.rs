//! Notification channels against real receivers, reloads and crashes of the notifier.

mod alertmanager;
mod crash;
mod email;
mod reload;
mod restart;
mod webhook;
