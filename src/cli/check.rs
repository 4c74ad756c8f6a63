//! `bgpsentry check`: validate a config file.

use std::process::ExitCode;

use super::ConfigArg;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
}

/// Prints a one-line summary and exits 0, or prints every error and exits 1.
pub fn check(args: CheckArgs) -> ExitCode {
    match args
        .config
        .load_watched()
        .and_then(|cfg| crate::notify::template::check_config(&cfg).map(|()| cfg))
    {
        Ok(cfg) => {
            let count = |n: usize, noun| crate::replay::counted(n as u64, noun);
            println!(
                "{}: OK, {}, {}",
                cfg.source.display(),
                count(cfg.prefixes.len(), "watched prefix"),
                count(cfg.feeds.len(), "feed")
            );
            // The RPKI files are read too, so a broken export shows up before the service runs.
            if let Some(rpki) = &cfg.rpki {
                match crate::rpki::load_files(&rpki.files) {
                    Ok((data, files)) => {
                        let skipped: usize = files.iter().map(|f| f.rejected).sum();
                        println!(
                            "RPKI: {} VRPs, {} ASPA records, {skipped} entries skipped",
                            data.vrp_count(),
                            data.aspa_count()
                        );
                    }
                    Err(e) => {
                        eprintln!("error: cannot load RPKI data: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn built_in_default_config_is_valid() {
        let cfg = Config::parse(super::super::DEFAULT_CONFIG, Path::new("default.yml"))
            .expect("the built-in config parses");
        assert!(cfg.prefixes.iter().all(|p| p.origins == vec![12654]));
        assert!(!cfg.feeds.is_empty());
        crate::notify::template::check_config(&cfg).expect("its templates compile");
    }
}
