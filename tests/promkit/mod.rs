//! The Prometheus kit and deploy files: rules, dashboards, metrics, and the deploy configs.

mod dashboards;
mod deploy;
mod e2e;
mod metrics;
mod rules;
