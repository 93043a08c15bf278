//! The tests' one HTTP client: a request written by hand on its own
//! loopback connection, so that a test sees exactly what a server answers
//! (no redirect followed, no header added but those named here). The web
//! page's browser-like `Client` keeps a cookie on top of it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An answer: the status, the status line and headers as sent, the body
/// (de-chunked).
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// The status line, `HTTP/1.1 200 OK`.
    pub fn status_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// A header's value (the first, by a name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `method path` to loopback `port` with `headers` (each `Name:
/// value`; a `Host` among them replaces the default) and `body`, and reads
/// the answer: `Content-Length` bytes when the server says so (some keep
/// the connection open), else to the end.
pub fn send(port: u16, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        request += &format!("Host: 127.0.0.1:{port}\r\n");
    }
    request += "Connection: close\r\n";
    for header in headers {
        request += &format!("{header}\r\n");
    }
    if !body.is_empty() || method == "POST" {
        request += &format!("Content-Length: {}\r\n", body.len());
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();

    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).trim_end().to_string();
    let mut reply = Reply {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head,
        body: String::new(),
    };
    let mut body = Vec::new();
    match reply.header("content-length").and_then(|v| v.parse().ok()) {
        Some(length) => {
            body.resize(length, 0);
            stream.read_exact(&mut body).unwrap();
        }
        None => {
            let _ = stream.read_to_end(&mut body);
        }
    }
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    reply.body = String::from_utf8_lossy(&body).into_owned();
    reply
}

/// `GET path`, with no credential.
pub fn get(port: u16, path: &str) -> Reply {
    send(port, "GET", path, &[], b"")
}

/// The data of a chunked body (RFC 9112, section 7.1), trailers dropped.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return data;
        };
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).unwrap_or(0);
        raw = &raw[end + 2..];
        if size == 0 || raw.len() < size {
            return data;
        }
        data.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
}

#[test]
fn chunked_bodies_are_joined() {
    assert_eq!(dechunk(b"5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n"), b"hello!");
    assert_eq!(dechunk(b""), b"");
}
