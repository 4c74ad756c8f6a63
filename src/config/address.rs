//! Addresses and ports in the config and on the command line, read with an explanation of
//! what is accepted when they do not parse.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Deserializer};

/// What `listen` accepts, for every message about it.
const LISTEN_FORM: &str = "write IP:PORT, like 127.0.0.1:9179 (this host only), 0.0.0.0:9179 \
                           (every IPv4 interface) or [::]:9179 (every interface); port 0 picks \
                           a free port, which the log reports";

/// Parses a listening address (`http.listen`, `run --listen`), or says what is wrong with it
/// and what is accepted.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let s = text.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if s.parse::<IpAddr>().is_ok() {
        // `::1:9179` is an IPv6 address too: say how a port would be written.
        let bracketed = s
            .rsplit_once(':')
            .filter(|(host, port)| host.parse::<Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok())
            .map(|(host, port)| {
                format!(" (an IPv6 address takes brackets before its port: [{host}]:{port})")
            })
            .unwrap_or_default();
        return Err(format!("`{s}` has no port{bracketed}; {LISTEN_FORM}"));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "`{s}` is not an address with a port; {LISTEN_FORM}"
        ));
    };
    let port_ok = match port.parse::<u64>() {
        Ok(p) if p > u64::from(u16::MAX) => {
            return Err(format!(
                "port {p} in `{s}` is out of range: ports are 0 to 65535; {LISTEN_FORM}"
            ));
        }
        Ok(_) => true,
        Err(_) => false,
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if !port_ok {
        return Err(format!(
            "`{port}` in `{s}` is not a port number; {LISTEN_FORM}"
        ));
    }
    if bare.parse::<Ipv6Addr>().is_ok() && !host.starts_with('[') {
        return Err(format!(
            "an IPv6 address takes brackets before its port: [{bare}]:{port}; {LISTEN_FORM}"
        ));
    }
    if bare.parse::<IpAddr>().is_err() {
        return Err(format!(
            "`{host}` is not an IP address; `listen` takes an IP address, not a host name: \
             {LISTEN_FORM}"
        ));
    }
    Err(format!("`{s}` is not a valid address; {LISTEN_FORM}"))
}

/// `http.listen` as written.
pub(super) fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_listen(&text).map_err(serde::de::Error::custom)
}

/// An optional port to connect to (`smtp_port`): 1 to 65535.
pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let n = i64::deserialize(d)?;
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(Some(p)),
        _ => Err(serde::de::Error::custom(format!(
            "port {n} is out of range: a port to connect to is 1 to 65535; leave the key out \
             for the default"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_listen;

    #[test]
    fn listen_accepts_ip_and_port_and_explains_the_rest() {
        assert_eq!(parse_listen("127.0.0.1:0").unwrap().port(), 0);
        assert_eq!(parse_listen("[::]:9179").unwrap().port(), 9179);
        let err = |s: &str| parse_listen(s).unwrap_err();
        assert!(
            err("127.0.0.1:70000").starts_with(
                "port 70000 in `127.0.0.1:70000` is out of range: ports are 0 to 65535"
            )
        );
        assert!(err("localhost:9179").starts_with("`localhost` is not an IP address"));
        assert!(err("127.0.0.1").starts_with("`127.0.0.1` has no port"));
        assert!(err("::1:9179").starts_with(
            "`::1:9179` has no port (an IPv6 address takes brackets before its port: [::1]:9179)"
        ));
        assert!(
            err("127.0.0.1:http").starts_with("`http` in `127.0.0.1:http` is not a port number")
        );
        assert!(err("9179").starts_with("`9179` is not an address with a port"));
        assert!(err("").contains("like 127.0.0.1:9179"));
    }
}
