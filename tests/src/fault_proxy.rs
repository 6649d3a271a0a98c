//! A fault-injecting HTTP proxy for S3 tests: it sits between the client
//! and a real S3-compatible server on loopback and, for a chosen share of
//! requests, answers `500 InternalError`, `503 SlowDown`, or drops the
//! connection without an answer (what a reset looks like to the client);
//! every other request is forwarded untouched (the `Host` header is kept,
//! so SigV4 signatures still verify upstream).
//!
//! Faults are drawn from a seeded generator, so a failing run can be
//! replayed with the same seed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the proxy did, for the test to assert that faults really happened.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Requests seen.
    pub requests: AtomicU64,
    /// Answered 500.
    pub internal_errors: AtomicU64,
    /// Answered 503 SlowDown.
    pub slow_downs: AtomicU64,
    /// Connections dropped without an answer.
    pub resets: AtomicU64,
}

impl FaultCounts {
    /// All injected faults.
    pub fn faults(&self) -> u64 {
        self.internal_errors.load(Ordering::Relaxed)
            + self.slow_downs.load(Ordering::Relaxed)
            + self.resets.load(Ordering::Relaxed)
    }
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    endpoint: String,
    counts: Arc<FaultCounts>,
    accept_loop: JoinHandle<()>,
}

/// SplitMix64 as a tiny seeded generator (no dependency needed).
fn next_random(state: &Mutex<u64>) -> u64 {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        "application/xml".parse().unwrap_or_else(|_| unreachable!()),
    );
    response
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) that faults
    /// `fault_percent` % of requests, split evenly between 500, 503 and
    /// dropped connections.
    pub async fn start(
        upstream: &str,
        fault_percent: u64,
        seed: u64,
    ) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr: SocketAddr = listener.local_addr()?;
        let counts = Arc::new(FaultCounts::default());
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        let state = Arc::new(Mutex::new(seed));
        let loop_counts = counts.clone();
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (client, upstream, counts, state) = (
                    client.clone(),
                    upstream.clone(),
                    loop_counts.clone(),
                    state.clone(),
                );
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (client, upstream, counts, state) = (
                            client.clone(),
                            upstream.clone(),
                            counts.clone(),
                            state.clone(),
                        );
                        async move {
                            counts.requests.fetch_add(1, Ordering::Relaxed);
                            let roll = next_random(&state) % 100;
                            if roll < fault_percent {
                                match roll % 3 {
                                    0 => {
                                        counts.internal_errors.fetch_add(1, Ordering::Relaxed);
                                        return Ok(s3_error(
                                            StatusCode::INTERNAL_SERVER_ERROR,
                                            "InternalError",
                                            "injected by the fault proxy",
                                        ));
                                    }
                                    1 => {
                                        counts.slow_downs.fetch_add(1, Ordering::Relaxed);
                                        return Ok(s3_error(
                                            StatusCode::SERVICE_UNAVAILABLE,
                                            "SlowDown",
                                            "injected by the fault proxy",
                                        ));
                                    }
                                    _ => {
                                        counts.resets.fetch_add(1, Ordering::Relaxed);
                                        // An error from the service makes hyper drop the
                                        // connection with no response.
                                        return Err("injected connection reset".to_string());
                                    }
                                }
                            }
                            let (mut parts, body) = request.into_parts();
                            let path = parts
                                .uri
                                .path_and_query()
                                .map_or("/", |p| p.as_str())
                                .to_string();
                            parts.uri = format!("{upstream}{path}")
                                .parse()
                                .map_err(|e| format!("{e}"))?;
                            let forwarded = Request::from_parts(parts, body);
                            let response = client
                                .request(forwarded)
                                .await
                                .map_err(|e| format!("upstream: {e}"))?;
                            let (parts, body) = response.into_parts();
                            let bytes = body
                                .collect()
                                .await
                                .map_err(|e| format!("upstream body: {e}"))?
                                .to_bytes();
                            Ok::<_, String>(Response::from_parts(parts, Full::new(bytes)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy {
            endpoint: format!("http://{addr}"),
            counts,
            accept_loop,
        })
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What the proxy has done so far.
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}
