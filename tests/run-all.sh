#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need when it is missing,
# then checks formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

# --- system packages the tests use (installed only when missing) ---
need_apt=()
# Prometheus kit: promtool (rules, config, metrics checks) and a real Prometheus for the
# end-to-end test; amtool and a real Alertmanager (also for the notifier's tests);
# systemd-analyze for the unit file.
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || need_apt+=(prometheus)
{ [ -x /usr/bin/prometheus-alertmanager ] && [ -x /usr/bin/amtool ]; } || need_apt+=(prometheus-alertmanager)
[ -x /usr/bin/systemd-analyze ] || need_apt+=(systemd)
# headless Chromium renders the status page in tests/surfaces/http.rs (fonts for its screenshots)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s fonts-liberation >/dev/null 2>&1 || need_apt+=(fonts-liberation)
# Real BGP daemons for the BMP feed's tests (tests/feeds/bmp.rs): gobgpd and FRR's bgpd (with its
# bmp module) as monitored routers, gobgpd as their eBGP peer; exabgp for manual injection.
{ command -v gobgpd >/dev/null && command -v gobgp >/dev/null; } || need_apt+=(gobgpd)
[ -x /usr/lib/frr/bgpd ] || need_apt+=(frr)
command -v exabgp >/dev/null || need_apt+=(exabgp)
# script (bsdutils) gives `bgpsentry replay` a pseudo-terminal in tests/replay/progress.rs.
command -v script >/dev/null || need_apt+=(bsdutils)
# openssl makes the certificates of the TLS email tests.
command -v openssl >/dev/null || need_apt+=(openssl)
# The Kafka feed links librdkafka (built from its bundled source by the rdkafka crate) against
# the system OpenSSL for TLS and SCRAM.
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
# python3 and pip run the SMTP test server.
command -v python3 >/dev/null || need_apt+=(python3)
{ command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; } || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# --- Python packages the tests use (installed only when missing) ---
need_pip=()
# aiosmtpd: the real SMTP server the notifier's email tests send to.
python3 -c 'import aiosmtpd' 2>/dev/null || need_pip+=(aiosmtpd)
# kubernetes-validate: checks deploy/kubernetes against the Kubernetes schemas (offline).
command -v kubernetes-validate >/dev/null || need_pip+=(kubernetes-validate)
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "installing: ${need_pip[*]}"
  # A Debian python refuses pip installs outside a venv unless told (PEP 668).
  python3 -m pip install --quiet "${need_pip[@]}" ||
    python3 -m pip install --quiet --break-system-packages "${need_pip[@]}"
fi

# --- tansu, the Kafka-compatible broker of the Kafka feed's tests (tests/feeds/kafka.rs, tests/scale_out/) ---
# No Apache Kafka package is installable here; tansu builds from crates.io (slow: only when
# missing). The tests find it on PATH or in ~/.cargo/bin.
if ! command -v tansu >/dev/null && [ ! -x "${HOME}/.cargo/bin/tansu" ]; then
  echo "installing: tansu (cargo install)"
  # Pinned to the version the tests were written against; lightly optimised, as it is only a
  # test fixture and that builds faster than a full release build.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install tansu --version 0.6.0 --features dynostore --locked
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
