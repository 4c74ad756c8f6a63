//! `bgpsentry stream`: print a live feed's messages for some prefixes.
//!
//! Each feed's `stream` module reads the feed; this command parses the arguments, sets up the
//! log and prints in the reference client's pipe format or as JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use futures_util::StreamExt;
use ipnet::IpNet;

use crate::feeds::bgproutes::{self, BgpLiveMsg, BgproutesClient};
use crate::feeds::ris_live;

/// Which feed to stream.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StreamFeed {
    /// bgproutes.io (needs an API key).
    Bgproutes,
    /// RIPE RIS Live (public).
    #[value(name = "ris_live")]
    RisLive,
    /// BMP from your own routers, which connect to `--listen`.
    Bmp,
    /// Records of Kafka topics (`--brokers`, `--topics`, `--format`).
    Kafka,
}

/// Arguments of `stream`.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// The feed to read.
    #[arg(long, value_enum)]
    feed: StreamFeed,
    /// Comma-separated prefixes, e.g. 192.0.2.0/24,2001:db8::/32 (at most 10 for bgproutes).
    #[arg(long)]
    prefixes: String,
    /// Print JSON lines instead of TIMESTAMP|MSG_TYPE|VP_ASN|VP_IP|PREFIXES|ASPATH|COMMUNITIES|ORIGIN|NEXTHOP.
    #[arg(long)]
    json: bool,
    /// Log more: -v essential, -vv exhaustive, -vvv everything.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Write the log to this file instead of stderr.
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// WebSocket URL (default: the feed's public URL).
    #[arg(long)]
    url: Option<String>,
    /// bgproutes live-manager URL (default: the public one).
    #[arg(long)]
    live_manager_url: Option<String>,
    /// Environment variable with the bgproutes API key.
    #[arg(long, default_value = bgproutes::DEFAULT_KEY_ENV)]
    api_key_env: String,
    /// File with the bgproutes API key (instead of the environment).
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// Client name sent to RIS Live.
    #[arg(long, default_value = ris_live::DEFAULT_CLIENT)]
    client: String,
    /// Address and port BMP routers connect to (`bmp`; port 0 picks a free one, printed on
    /// stderr).
    #[arg(long, default_value = "127.0.0.1:11019")]
    listen: std::net::SocketAddr,
    /// Comma-separated router addresses or prefixes allowed to connect (`bmp`).
    #[arg(long, default_value = "127.0.0.0/8,::1/128")]
    routers: String,
    /// RIB kind to print (`bmp`): adj_rib_in_pre, adj_rib_in_post, loc_rib, adj_rib_out_pre,
    /// adj_rib_out_post; repeat or separate with commas. Default: adj_rib_in_post,loc_rib.
    #[arg(long, value_delimiter = ',')]
    ribs: Vec<String>,
    /// Comma-separated bootstrap brokers, `host:port` (`kafka`).
    #[arg(long)]
    brokers: Option<String>,
    /// Comma-separated topics to read (`kafka`).
    #[arg(long)]
    topics: Option<String>,
    /// What a record holds (`kafka`): openbmp or ris_live.
    #[arg(long, default_value = "openbmp")]
    format: String,
    /// Read from the oldest retained record instead of the next one published (`kafka`).
    #[arg(long)]
    from_earliest: bool,
}

/// `bgpsentry stream --feed kafka`: prints the topics' routes until stdout closes. The consumer
/// is in a group of its own and commits nothing.
async fn stream_kafka(args: &StreamArgs, prefixes: Vec<IpNet>) -> Result<(), String> {
    use crate::config::{DEFAULT_KAFKA_MAX_RECORD_BYTES, KafkaFormat, KafkaSettings, KafkaStart};
    let list = |s: &Option<String>, what: &str| -> Result<Vec<String>, String> {
        let v: Vec<String> = s
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect();
        if v.is_empty() {
            return Err(format!("--feed kafka needs {what}"));
        }
        Ok(v)
    };
    let format = KafkaFormat::ALL
        .into_iter()
        .find(|f| f.as_str() == args.format)
        .ok_or_else(|| {
            format!(
                "`{}` is not a format: openbmp, ris_live or events",
                args.format
            )
        })?;
    let settings = KafkaSettings {
        brokers: list(&args.brokers, "--brokers host:port[,host:port...]")?,
        subscription: list(&args.topics, "--topics topic[,topic...]")?,
        group: format!("bgpsentry-stream-{}", std::process::id()),
        format,
        start_from: if args.from_earliest {
            KafkaStart::Earliest
        } else {
            KafkaStart::Latest
        },
        max_record_bytes: DEFAULT_KAFKA_MAX_RECORD_BYTES as usize,
        tls: None,
        sasl: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let reader = tokio::spawn(crate::feeds::kafka::stream::run(
        settings,
        crate::feeds::kafka::DEFAULT_KAFKA_RIBS.to_vec(),
        prefixes,
        tx,
    ));
    while let Some(m) = rx.recv().await {
        if let Err(e) = print(&m, args.json) {
            reader.abort();
            return Err(e);
        }
    }
    reader
        .await
        .map_err(|e| format!("the consumer stopped: {e}"))?
}

/// `bgpsentry stream --feed bmp`: prints what routers send until stdout closes.
async fn stream_bmp(args: &StreamArgs, prefixes: Vec<IpNet>) -> Result<(), String> {
    use crate::config::{BmpRib, DEFAULT_BMP_MAX_MESSAGE_BYTES, DEFAULT_BMP_RIBS};
    let mut routers = Vec::new();
    for r in args
        .routers
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        let net = r
            .parse::<IpNet>()
            .or_else(|_| r.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| format!("`{r}` in --routers is not an address or prefix"))?;
        routers.push(net.trunc());
    }
    let mut ribs = Vec::new();
    for r in &args.ribs {
        let rib = BmpRib::ALL
            .into_iter()
            .find(|k| k.as_str() == r.trim())
            .ok_or_else(|| {
                format!("`{r}` is not a RIB kind: adj_rib_in_pre, adj_rib_in_post, loc_rib, adj_rib_out_pre or adj_rib_out_post")
            })?;
        ribs.push(rib);
    }
    if ribs.is_empty() {
        ribs = DEFAULT_BMP_RIBS.to_vec();
    }
    let settings = crate::feeds::bmp::stream::StreamSettings {
        listen: args.listen,
        routers,
        ribs,
        prefixes,
        max_message_bytes: DEFAULT_BMP_MAX_MESSAGE_BYTES as usize,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let listener = tokio::spawn(crate::feeds::bmp::stream::run(settings, tx));
    while let Some(m) = rx.recv().await {
        if let Err(e) = print(&m, args.json) {
            listener.abort();
            return Err(e);
        }
    }
    listener
        .await
        .map_err(|e| format!("the listener stopped: {e}"))?
}

fn init_logging(verbose: u8, file: Option<&PathBuf>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // The reference client's levels: nothing, essential, exhaustive, too much.
    let filter = match verbose {
        0 => "off",
        1 => "bgpsentry=info",
        2 => "bgpsentry=debug",
        _ => "trace",
    };
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(filter));
    match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            let _ = builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .finish()
                .with(super::secret_safe_targets())
                .try_init();
        }
        None => {
            let _ = builder
                .with_writer(std::io::stderr)
                .finish()
                .with(super::secret_safe_targets())
                .try_init();
        }
    }
    Ok(())
}

/// Runs `stream`: exit 0 never (it runs until the feed ends), 1 on a feed error, 2 on bad
/// arguments.
pub fn stream(args: StreamArgs) -> ExitCode {
    if let Err(e) = init_logging(args.verbose, args.log_file.as_ref()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let mut prefixes = Vec::new();
    for p in args
        .prefixes
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match p.parse::<IpNet>() {
            Ok(n) => prefixes.push(n.trunc()),
            Err(_) => {
                eprintln!("error: `{p}` is not a prefix like 192.0.2.0/24");
                return ExitCode::from(2);
            }
        }
    }
    if prefixes.is_empty() {
        eprintln!("error: --prefixes needs at least one prefix");
        return ExitCode::from(2);
    }
    let runtime = match super::current_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        match args.feed {
            StreamFeed::Bgproutes => {
                if prefixes.len() > crate::config::BGPROUTES_PREFIXES_PER_KEY {
                    return Err(format!(
                        "{} prefixes given; a bgproutes API key takes at most {}",
                        prefixes.len(),
                        crate::config::BGPROUTES_PREFIXES_PER_KEY
                    ));
                }
                let key =
                    bgproutes::read_key(Some(&args.api_key_env), args.api_key_file.as_deref())
                        .map_err(|e| e.to_string())?;
                let mut client = BgproutesClient::new(key);
                if let Some(u) = &args.url {
                    client = client.with_websocket_url(u);
                }
                if let Some(u) = &args.live_manager_url {
                    client = client.with_live_manager_url(u);
                }
                let list: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
                client
                    .subscribe_to_prefixes(&list.join(","))
                    .await
                    .map_err(|e| e.to_string())?;
                let mut messages = client.messages().await.map_err(|e| e.to_string())?;
                while let Some(m) = messages.next().await {
                    print(&m.map_err(|e| e.to_string())?, args.json)?;
                }
                Ok(())
            }
            StreamFeed::Bmp => stream_bmp(&args, prefixes).await,
            StreamFeed::Kafka => stream_kafka(&args, prefixes).await,
            StreamFeed::RisLive => {
                let url = args.url.as_deref().unwrap_or(ris_live::DEFAULT_URL);
                let mut messages = ris_live::stream::stream_messages(url, &args.client, &prefixes)
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(m) = messages.next().await {
                    print(&m.map_err(|e| e.to_string())?, args.json)?;
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_empty() => ExitCode::SUCCESS, // stdout closed (e.g. `| head`)
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one message; an empty error means stdout is gone.
fn print(m: &BgpLiveMsg, json: bool) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    m.write_line(&mut out, json)
        .and_then(|()| out.flush())
        .map_err(|_| String::new())
}
