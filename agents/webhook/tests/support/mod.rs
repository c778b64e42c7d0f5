//! A tiny HTTP/1.1 server that records what it receives, and literal builders.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_agent_api::core;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const OK_BODY: &str = "{\"ok\": true}";
pub const FAIL_BODY: &str = "internal trouble";
pub const MOVED_BODY: &str = "see elsewhere";
/// Size of the body `/big...` answers with.
pub const BIG_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

/// Routes: `/fail...` → 500 with [`FAIL_BODY`]; `/big...` → 200 with [`BIG_BODY_BYTES`] bytes; `/moved...` → 302 to `/elsewhere` with
/// [`MOVED_BODY`]; `/slow...` → 200 after 3 s; else 200 with [`OK_BODY`].
pub struct HttpSink {
    pub url: String,
    requests: Arc<Mutex<Vec<Received>>>,
}

impl HttpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, seen).await;
                });
            }
        });
        Self { url, requests }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    pub fn only_request(&self) -> Received {
        let all = self.requests();
        assert_eq!(all.len(), 1, "expected exactly one request, got {all:?}");
        all.into_iter().next().unwrap()
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), parse_query(q)),
        None => (target.clone(), Vec::new()),
    };
    seen.lock().unwrap().push(Received { method, path: path.clone(), query, headers, body });
    let big = "x".repeat(BIG_BODY_BYTES);
    let (status, text) = if path.starts_with("/fail") {
        ("500 Internal Server Error", FAIL_BODY)
    } else if path.starts_with("/big") {
        ("200 OK", big.as_str())
    } else if path.starts_with("/moved") {
        ("302 Found\r\nLocation: /elsewhere", MOVED_BODY)
    } else {
        if path.starts_with("/slow") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        ("200 OK", OK_BODY)
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn primitive(v: core::primitive::Value) -> core::Literal {
    core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Primitive(core::Primitive { value: Some(v) })),
        }))),
        ..Default::default()
    }
}

pub fn none() -> core::Literal {
    core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::NoneType(core::Void {})),
        }))),
        ..Default::default()
    }
}
