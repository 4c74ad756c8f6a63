//! A real Kafka-compatible broker for the Kafka tests: tansu with in-memory storage on a
//! loopback port found free at run time, and what the tests do with it through rdkafka (the
//! client bgpsentry uses): create topics, produce records, read a group's committed offsets.
//! Also the records themselves: real BMP made into OpenBMP records. `tests/run-all.sh`
//! installs tansu when it is missing (`cargo install tansu --features dynostore --locked`).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bgpkit_parser::models::{AsnLength, Bgp4MpEnum, BgpState, MrtMessage};
use bgpkit_parser::parser::parse_mrt_record;
use bgpsentry::event::Timestamp;
use bgpsentry::feeds::bmp::frame::split;
use bgpsentry::feeds::kafka::openbmp::write_record;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::daemons::free_port;
use super::{Proc, fixture, poll_until};

/// How long a request to the broker may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The tansu binary: on PATH or in ~/.cargo/bin.
pub fn tansu() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tansu"))
            .find(|p| p.exists())
    });
    let in_cargo = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/tansu"))
        .filter(|p| p.exists());
    on_path.or(in_cargo).unwrap_or_else(|| {
        panic!(
            "tansu is missing: install it with `cargo install tansu --features dynostore --locked` (tests/run-all.sh does)"
        )
    })
}

/// A running tansu broker; killed when dropped.
pub struct Broker {
    pub proc: Proc,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// What a client needs besides the address (TLS).
    client: Vec<(String, String)>,
}

impl Broker {
    /// Starts a broker with in-memory storage and waits until it answers a metadata request.
    pub fn start() -> Broker {
        Broker::start_with(&[], &[])
    }

    /// A broker that speaks only TLS with this PEM certificate and key; its clients trust the
    /// certificate (self-signed, for 127.0.0.1).
    pub fn start_tls(cert: &Path, key: &Path) -> Broker {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        Broker::start_with(
            &["--cert", &cert, "--key", &key],
            &[("security.protocol", "ssl"), ("ssl.ca.location", &cert)],
        )
    }

    fn start_with(args: &[&str], client: &[(&str, &str)]) -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(tansu());
        cmd.args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(args)
            .env("RUST_LOG", "warn");
        let broker = Broker {
            proc: Proc::spawn("tansu", cmd),
            addr: format!("127.0.0.1:{port}"),
            client: client
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let probe: BaseConsumer = broker.client().create().expect("a metadata client");
        poll_until("tansu to answer a metadata request", 60, || {
            probe
                .fetch_metadata(None, Duration::from_millis(500))
                .ok()
                .filter(|m| !m.brokers().is_empty())
        });
        broker
    }

    /// A client config for this broker.
    pub fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.addr);
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }

    /// Creates a topic of `partitions` partitions and waits until its metadata shows them.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client().create().expect("an admin client");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        // On a thread of its own: the tests calling this may run inside a runtime already.
        let results = std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
            })
            .join()
            .unwrap()
        })
        .expect("create_topics answered");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("creating topic {t} failed: {e}"));
        }
        let probe: BaseConsumer = self.client().create().unwrap();
        poll_until(&format!("topic {name} in the metadata"), 30, || {
            let m = probe.fetch_metadata(Some(name), TIMEOUT).ok()?;
            let t = m.topics().iter().find(|t| t.name() == name)?;
            (t.error().is_none() && t.partitions().len() == partitions as usize).then_some(())
        });
    }

    /// Produces `values` to one partition, in order, and waits until all are acknowledged.
    pub fn produce(&self, topic: &str, partition: i32, values: &[Vec<u8>]) {
        let producer: BaseProducer = self
            .client()
            .set("message.max.bytes", "10000000")
            .set("linger.ms", "5")
            .create()
            .expect("a producer");
        for v in values {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
                .partition(partition)
                .payload(v.as_slice());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        // Queue full: let deliveries drain, then again.
                        assert!(
                            matches!(
                                e,
                                rdkafka::error::KafkaError::MessageProduction(
                                    rdkafka::types::RDKafkaErrorCode::QueueFull
                                )
                            ),
                            "producing to {topic}: {e}"
                        );
                        producer.poll(Duration::from_millis(50));
                        record = r;
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("every record acknowledged");
    }

    /// The offset `group` committed for each partition (`None` where it committed none).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        let c: BaseConsumer = self
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let got = c
            .committed_offsets(tpl, TIMEOUT)
            .expect("committed offsets");
        (0..partitions)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            })
            .collect()
    }
}

/// Where the records say they were collected.
pub const COLLECTOR: &str = "rrc00";

/// The BMP per-peer header (RFC 7854 4.2) of a global-instance peer's pre-policy routes.
fn per_peer_header(peer_ip: IpAddr, peer_asn: u32, secs: u32, micros: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(42);
    h.push(0); // global instance peer
    h.push(if peer_ip.is_ipv6() { 0x80 } else { 0 }); // V flag; 4-byte ASNs, pre-policy
    h.extend_from_slice(&[0; 8]); // no route distinguisher
    match peer_ip {
        IpAddr::V4(a) => {
            h.extend_from_slice(&[0; 12]);
            h.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => h.extend_from_slice(&a.octets()),
    }
    h.extend_from_slice(&peer_asn.to_be_bytes());
    let id = match peer_ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0, 0, 0, 1],
    };
    h.extend_from_slice(&id);
    h.extend_from_slice(&secs.to_be_bytes());
    h.extend_from_slice(&micros.to_be_bytes());
    h
}

/// A BMP message: the common header, then `body`.
fn bmp_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(6 + body.len());
    m.push(3);
    m.extend_from_slice(&((6 + body.len()) as u32).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// The real hijack as OpenBMP records: every record of the small RIS fixture (AS58678 hijacks
/// 202.134.148.0/24 at 16:00:06, gone at 16:00:56), each BGP UPDATE re-encoded by
/// bgpkit-parser into a BMP Route Monitoring message of its peer, each session that leaves
/// Established a BMP Peer Down. The collector's own address is the router's.
pub fn hijack_openbmp_records() -> Vec<Vec<u8>> {
    mrt_openbmp_records(&super::notify::hijack_fixture())
}

/// Every record of a gzipped MRT update file as OpenBMP records, as [`hijack_openbmp_records`]
/// makes them.
pub fn mrt_openbmp_records(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap();
    let mut gz = flate2::read::GzDecoder::new(file);
    let mut raw = Vec::new();
    gz.read_to_end(&mut raw).unwrap();
    let mut reader = raw.as_slice();
    let mut out = Vec::new();
    while !reader.is_empty() {
        let record = parse_mrt_record(&mut reader).expect("the fixture's MRT records parse");
        let (secs, micros) = (
            record.common_header.timestamp,
            record.common_header.microsecond_timestamp.unwrap_or(0),
        );
        let collected = Timestamp::from_parts(i64::from(secs), i64::from(micros));
        let MrtMessage::Bgp4Mp(m) = record.message else {
            continue;
        };
        let (router, message) = match m {
            Bgp4MpEnum::Message(msg) => {
                let bgp = msg
                    .bgp_message
                    .encode(AsnLength::Bits32)
                    .expect("bgpkit-parser encodes the UPDATE");
                let mut body = per_peer_header(msg.peer_ip, msg.peer_asn.to_u32(), secs, micros);
                body.extend_from_slice(&bgp);
                (msg.local_ip, bmp_message(0, &body))
            }
            Bgp4MpEnum::StateChange(s) => {
                if s.old_state != BgpState::Established || s.new_state == BgpState::Established {
                    continue;
                }
                let mut body = per_peer_header(s.peer_ip, s.peer_asn.to_u32(), secs, micros);
                // Reason 4: the remote system closed the session without a NOTIFICATION.
                body.push(4);
                (s.local_addr, bmp_message(2, &body))
            }
        };
        out.push(write_record(COLLECTOR, router, collected, &message));
    }
    assert!(out.len() >= 40, "{} records made", out.len());
    out
}

/// A recorded router BMP stream of `tests/fixtures/bmp/` (gobgpd, FRR), message by message, as
/// OpenBMP records of `router`: every message type a router sends.
pub fn router_openbmp_records(file: &str, router: Ipv4Addr) -> Vec<Vec<u8>> {
    let data = std::fs::read(fixture(&format!("bmp/{file}"))).unwrap();
    split(&data, 1 << 20)
        .map(|m| {
            write_record(
                "openbmp-collector",
                IpAddr::V4(router),
                Timestamp::now(),
                m.expect("the fixture frames"),
            )
        })
        .collect()
}

/// The RIS Live frames of the fixture, one record each.
pub fn ris_live_records() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(fixture("ris-live-frames.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// A config file's `feeds:` entry of a kafka feed reading `topic` of `broker`.
pub fn feed_yaml(broker: &Broker, topic: &str, group: &str, format: &str) -> String {
    format!(
        "  - kind: kafka\n    brokers: ['{}']\n    topics: [{topic}]\n    group: {group}\n    format: {format}\n    start_from: earliest\n",
        broker.addr
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
