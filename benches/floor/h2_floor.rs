//! The machine's HTTP/2 floor: a minimal hyper server that answers every request with a
//! fixed, pre-framed gRPC reply (OK trailers), decoding nothing. The gateway benchmark
//! drives it with the same load generator, bodies and pinning as `tern serve`, so Tern's
//! figures are reported as a fraction of what any HTTP/2 server can do on this machine.
//!
//!     h2-floor ADDR CREATE_REPLY GET_REPLY
//!
//! `CREATE_REPLY` / `GET_REPLY` are files holding the framed reply bodies (flag byte, length,
//! message) sent for paths ending in `/CreateTask` and for every other path.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The same allocator as `tern serve`: the floor is the best this machine's HTTP/2 can do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Reply = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn reply(body: Bytes) -> Response<Reply> {
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
    let frames = vec![Ok(Frame::data(body)), Ok(Frame::trailers(trailers))];
    let mut response = Response::new(StreamBody::new(futures::stream::iter(frames)));
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/grpc"));
    response
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, create, get] = args.as_slice() else {
        return Err("usage: h2-floor ADDR CREATE_REPLY GET_REPLY".into());
    };
    let addr: SocketAddr = addr.parse()?;
    let create = Bytes::from(std::fs::read(create)?);
    let get = Bytes::from(std::fs::read(get)?);
    let replies = Arc::new((create, get));
    // The floor is the best a server can do on the one CPU it is pinned to: tokio's
    // single-threaded scheduler (the multi-threaded one with one worker serves ~0.6 of it).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("h2-floor listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let replies = replies.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let replies = replies.clone();
                    async move {
                        let body = if request.uri().path().ends_with("/CreateTask") { replies.0.clone() } else { replies.1.clone() };
                        // Read (and drop) the request, as any server must.
                        let _ = request.into_body().collect().await;
                        Ok::<_, Infallible>(reply(body))
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
