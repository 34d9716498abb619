//! JSON-RPC over TCP: Go's `net/rpc/jsonrpc` stream.
//!
//! One task per connection reads, feeds the connection's
//! [`jsonrpc::StreamDecoder`], runs each request and writes the replies in
//! request order. Bytes that are not JSON-RPC (or a request over the size
//! limit) close that connection only, as Go's codec does; at most
//! `max-connections` are open at once, more are closed at once (counted),
//! and one silent for `idle-timeout-secs` is closed (counted).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::methods::State;
use super::{Auth, MAX_REQUEST_BYTES, answer};

/// Accepts connections until `stop` turns true; then closes them all.
pub(super) async fn run(
    listener: TcpListener,
    state: Arc<State>,
    max_connections: usize,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        state.counters.tcp_conn_limit.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, "rpc-tcp connection limit reached, closing");
                        drop(stream);
                        continue;
                    };
                    state.counters.tcp_connections.fetch_add(1, Ordering::Relaxed);
                    let st = Arc::clone(&state);
                    conns.spawn(async move {
                        serve(stream, &st, idle).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: wait a little
                    // rather than spin.
                    tracing::warn!(error = %e, "rpc-tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.shutdown().await;
}

/// Serves one connection until it closes or sends bytes that are not
/// JSON-RPC.
async fn serve(mut stream: TcpStream, state: &Arc<State>, idle: Duration) {
    let _ = stream.set_nodelay(true);
    let mut decoder = jsonrpc::StreamDecoder::new(MAX_REQUEST_BYTES);
    let mut auth = if state.auth_token.is_some() {
        Auth::Needed
    } else {
        Auth::Done
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // A connection that holds a slot (and maybe a partial request)
        // without sending is closed.
        let n = match tokio::time::timeout(idle, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => {
                state
                    .counters
                    .tcp_idle_timeout
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        decoder.feed(buf.get(..n).unwrap_or_default());
        let mut out = Vec::new();
        loop {
            match decoder.next_value() {
                Ok(Some(v)) => {
                    if let Some(reply) = answer(state, v, &mut auth).await {
                        out.extend_from_slice(&reply);
                        out.push(b'\n');
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    state.counters.tcp_malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(error = %e, "rpc-tcp closing a connection");
                    let _ = stream.write_all(&out).await;
                    return;
                }
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
    }
}
