//! A keep-alive HTTP/1.1 client for the bench scripts, so that a timed
//! sequence of API calls measures berth rather than a curl process starting
//! per request. Reads `METHOD PORT PATH [BODY]` lines on stdin (to
//! 127.0.0.1 only) and answers each with one line: `STATUS BODY`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn request(
    connections: &mut HashMap<u16, BufReader<TcpStream>>,
    method: &str,
    port: u16,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let connection = match connections.entry(port) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(entry) => {
            let stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_nodelay(true)?;
            entry.insert(BufReader::new(stream))
        }
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    connection.get_mut().write_all(head.as_bytes())?;
    let mut line = String::new();
    if connection.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        connection.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut answer = vec![0; length];
    connection.read_exact(&mut answer)?;
    Ok((status, String::from_utf8_lossy(&answer).replace('\n', " ")))
}

fn main() {
    let mut connections = HashMap::new();
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut parts = line.splitn(4, ' ');
        let (Some(method), Some(port), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            let _ = writeln!(stdout.lock(), "0 bad command");
            continue;
        };
        let body = parts.next().unwrap_or("");
        let port: u16 = port.parse().unwrap_or(0);
        // A connection the server closed while idle is opened again, once.
        let answer = request(&mut connections, method, port, path, body).or_else(|_| {
            connections.remove(&port);
            request(&mut connections, method, port, path, body)
        });
        let (status, body) = answer.unwrap_or_else(|e| (0, e.to_string()));
        let mut out = stdout.lock();
        let _ = writeln!(out, "{status} {body}");
        let _ = out.flush();
    }
}
