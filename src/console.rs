//! `accurate console`: one JSON-RPC call to a running `accurate serve`
//! (or CGRateS), the reply's result printed as pretty JSON (the
//! `cgr-console` role). An error reply goes to stderr and exits 1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use jsonrpc::{Request, Version};
use serde_json::Value;

/// How long the console waits for the server.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `accurate console`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsoleArgs {
    /// The server: http://IP:PORT/jsonrpc or tcp://IP:PORT.
    #[arg(
        long,
        default_value = "http://127.0.0.1:2080/jsonrpc",
        value_name = "URL"
    )]
    server: String,
    /// The server's `[api] auth-token` (default: the ACCURATE_TOKEN
    /// environment variable, which keeps it out of `ps`).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// The method, e.g. CoreSv1.Status or APIerSv1.GetCost.
    method: String,
    /// Its argument as JSON, e.g. '{"Subject":"1001","Usage":"90s"}'.
    #[arg(default_value = "{}")]
    params: String,
}

/// Calls the method and prints the result.
pub(crate) fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let params: Value = serde_json::from_str(&args.params)
        .with_context(|| format!("the argument is not JSON: {}", args.params))?;
    let req = Request {
        method: args.method.clone(),
        params,
        id: Value::from(1),
        version: Version::V1,
        notification: false,
    };
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("ACCURATE_TOKEN").ok());
    let reply = if let Some(addr) = args.server.strip_prefix("tcp://") {
        call_tcp(addr, token.as_deref(), &req)?
    } else if args.server.starts_with("http://") {
        call_http(&args.server, token.as_deref(), &req)?
    } else {
        bail!(
            "unsupported server URL {:?}: use http://IP:PORT/jsonrpc or tcp://IP:PORT",
            args.server
        );
    };
    match reply.outcome {
        Ok(result) => {
            let text = serde_json::to_string_pretty(&result).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")
                .and_then(|()| out.flush())
                .map_err(crate::exit::Failure::Output)?;
            Ok(())
        }
        Err(e) => bail!("{} replied: {}", args.method, e.message),
    }
}

/// Sends requests on one TCP connection (an `AuthSv1.Auth` first when a
/// token is given) and reads the last reply.
fn call_tcp(addr: &str, token: Option<&str>, req: &Request) -> anyhow::Result<jsonrpc::Reply> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to tcp://{addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).context("socket")?;
    let mut decoder = jsonrpc::StreamDecoder::new(64 << 20);
    if let Some(t) = token {
        let auth = Request {
            method: "AuthSv1.Auth".into(),
            params: serde_json::json!({ "Token": t }),
            id: Value::from(0),
            version: Version::V1,
            notification: false,
        };
        stream.write_all(&jsonrpc::encode_request(&auth))?;
        let r = read_reply(&mut stream, &mut decoder)?;
        if let Err(e) = r.outcome {
            bail!("authentication refused: {}", e.message);
        }
    }
    stream.write_all(&jsonrpc::encode_request(req))?;
    read_reply(&mut stream, &mut decoder)
}

fn read_reply(
    stream: &mut TcpStream,
    decoder: &mut jsonrpc::StreamDecoder,
) -> anyhow::Result<jsonrpc::Reply> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(v) = decoder.next_value()? {
            return jsonrpc::parse_reply(v).map_err(anyhow::Error::msg);
        }
        let n = stream.read(&mut buf).context("reading the reply")?;
        if n == 0 {
            bail!("the server closed the connection without a reply");
        }
        decoder.feed(buf.get(..n).unwrap_or_default());
    }
}

/// `POST`s the request and reads the reply.
fn call_http(url: &str, token: Option<&str>, req: &Request) -> anyhow::Result<jsonrpc::Reply> {
    let uri: hyper::Uri = url.parse().with_context(|| format!("invalid URL {url}"))?;
    let host = uri.host().context("the URL names no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let body = jsonrpc::encode_request(req);
    rt.block_on(async move {
        let fut = async {
            let host_port = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let stream = tokio::net::TcpStream::connect(&host_port)
                .await
                .with_context(|| format!("cannot connect to {url}"))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .context("HTTP handshake")?;
            tokio::spawn(conn);
            let mut builder = hyper::Request::post(uri.path())
                .header(hyper::header::HOST, host_port.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json");
            if let Some(t) = token {
                builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
            }
            let request = builder
                .body(Full::new(Bytes::from(body)))
                .context("building the request")?;
            let resp = sender
                .send_request(request)
                .await
                .context("sending the request")?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .context("reading the reply")?
                .to_bytes();
            let value: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)))?;
            jsonrpc::parse_reply(value).map_err(anyhow::Error::msg)
        };
        tokio::time::timeout(TIMEOUT, fut)
            .await
            .context("no reply from the server")?
    })
}

/// Arguments of `accurate load`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The tariff plan folder (CGRateS CSVs, with accounts and actions).
    dir: std::path::PathBuf,
    /// The running server: http://IP:PORT/jsonrpc or tcp://IP:PORT
    /// [default: http://127.0.0.1:2080/jsonrpc].
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    server: Option<String>,
    /// Load into a stopped server's store instead: its data directory
    /// (or, with `[storage] redis` in the config, its Redis). `*asap`
    /// actions run now, as at a server's load; `*http_post` actions are
    /// not posted.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// The server's `[api] auth-token` (default: ACCURATE_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

/// Checks the folder here, has the server load it
/// (`APIerSv1.LoadTariffPlanFromFolder`), and prints what it holds.
pub(crate) fn run_load(args: LoadArgs, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let cfg = crate::config::Config::load_or_default(config)?;
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    let (plan, _) = crate::cost::load_tariff_plan(&dir, &cfg.load_policy())?;
    let data = plan.account_data();
    if let Some(data_dir) = &args.data_dir {
        crate::serve::load_offline(&dir, data_dir, &cfg)?;
    } else {
        load_online(&dir, args.server.as_deref(), args.token)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "loaded {}: {} destinations, {} rating profiles, {} accounts, {} action plans, {} actions, {} action trigger sets",
        dir.display(),
        plan.destination_count(),
        plan.rating_profile_count(),
        data.account_actions.len(),
        data.action_plans.len(),
        data.actions.len(),
        data.triggers.len()
    )
    .and_then(|()| out.flush())
    .map_err(crate::exit::Failure::Output)?;
    Ok(())
}

/// Has the running server load the folder.
fn load_online(
    dir: &std::path::Path,
    server: Option<&str>,
    token: Option<String>,
) -> anyhow::Result<()> {
    let server = server.unwrap_or("http://127.0.0.1:2080/jsonrpc");
    let req = Request {
        method: "APIerSv1.LoadTariffPlanFromFolder".into(),
        params: serde_json::json!({ "FolderPath": dir.to_string_lossy() }),
        id: Value::from(1),
        version: Version::V1,
        notification: false,
    };
    let token = token.or_else(|| std::env::var("ACCURATE_TOKEN").ok());
    let reply = if let Some(addr) = server.strip_prefix("tcp://") {
        call_tcp(addr, token.as_deref(), &req)?
    } else if server.starts_with("http://") {
        call_http(server, token.as_deref(), &req)?
    } else {
        bail!("unsupported server URL {server:?}: use http://IP:PORT/jsonrpc or tcp://IP:PORT");
    };
    if let Err(e) = reply.outcome {
        bail!("the server refused the plan: {}", e.message);
    }
    Ok(())
}
