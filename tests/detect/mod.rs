//! Detection quality on real BGP data: detectors, learning, precision and the noise budget.

mod detectors_mrt;
mod learning_mrt;
mod noise_budget;
mod precision_mrt;
