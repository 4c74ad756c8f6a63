//! Triage metrics, set at each scrape from the alert book and the triage state.

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

/// `bgpsentry_alerts_firing_triage` and `bgpsentry_silences_active`.
#[derive(Clone)]
pub struct TriageMetrics {
    firing: IntGaugeVec,
    silences: IntGauge,
}

const FLAGS: [&str; 2] = ["false", "true"];

impl TriageMetrics {
    /// Registers the families, every series at 0 from the first scrape.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let firing = IntGaugeVec::new(
            Opts::new(
                "bgpsentry_alerts_firing_triage",
                "bgpsentry firing alerts by whether they are acknowledged and silenced",
            ),
            &["acknowledged", "silenced"],
        )?;
        let silences = IntGauge::new(
            "bgpsentry_silences_active",
            "bgpsentry silences in force now (added and not expired)",
        )?;
        for a in FLAGS {
            for s in FLAGS {
                firing.with_label_values(&[a, s]).set(0);
            }
        }
        registry.register(Box::new(firing.clone()))?;
        registry.register(Box::new(silences.clone()))?;
        Ok(TriageMetrics { firing, silences })
    }

    /// `counts[acknowledged][silenced]` firing alerts, `active` silences.
    pub(super) fn set(&self, counts: [[i64; 2]; 2], active: usize) {
        for (a, row) in counts.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                self.firing.with_label_values(&[FLAGS[a], FLAGS[s]]).set(*n);
            }
        }
        self.silences.set(active as i64);
    }
}
