//! The listener: accepts TCP connections and serves HTTP/1.1 on them, within limits a client
//! cannot stretch.
//!
//! - At most `max_connections` connections are served at once; the next one is answered
//!   `503 Service Unavailable` and closed at once, so a flood of idle sockets cannot hold the
//!   gateway's memory or file descriptors.
//! - A client has `header_read_timeout` to send a request's headers, and the same time to start
//!   its next request on a kept-alive connection; a client that sends half a request is cut off.
//!   (The body has a deadline of its own: [`super::guard`].)
//! - Every request carries the client's address as `ConnectInfo<SocketAddr>`.
//! - On shutdown the listener stops accepting, lets each connection finish the request it is
//!   serving (new requests on it are refused), and returns once every connection has closed or
//!   `grace` has passed.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// What one listener allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub grace: Duration,
}

/// What a client over the connection limit is told before the connection is closed.
const BUSY: &str = "flowgate is serving as many connections as it can; retry in a second.\n";

/// Serves `router` on `listener` until `shutdown` is cancelled and the connections have drained
/// (or `limits.grace` has passed).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    loop {
        let (tcp, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        // Replies are often written in two parts (an SSE priming event, then the result):
        // without TCP_NODELAY the second waits for the client's delayed ACK, 40 ms.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(req)
        });
        let conn = http.serve_connection(TokioIo::new(tcp), service);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a slot until it closes: having them all back means drained.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = limits.max_connections - slots.available_permits(),
            "connections still open after the shutdown grace period"
        );
    }
}

/// Tells a client over the connection limit to come back, then closes.
async fn refuse(mut tcp: TcpStream) {
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BUSY}",
        BUSY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(reply.as_bytes())).await;
    let _ = tcp.shutdown().await;
}
