//! Requests between nodes: signed with the cluster secret (never a user's
//! token, and never the secret itself on the wire), and the client that
//! streams a container's files to the node it moves to.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use uuid::Uuid;

/// The header a node-to-node request is signed in:
/// `t=<unix seconds>,mac=<hex HMAC-SHA256 of "METHOD\npath\nt">`.
pub const AUTH_HEADER: &str = "Berth-Cluster-Auth";

/// How far a signature's time may be from the receiver's clock: nodes'
/// clocks are expected to be kept by NTP.
const MAX_SKEW_SECS: i64 = 300;

/// The shortest secret accepted: it is all that stands between the
/// network and every container's files.
const MIN_SECRET_LEN: usize = 32;

/// The setting `cluster_secret`, shared by every node. Never printed.
#[derive(Clone, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ClusterSecret(Arc<str>);

impl TryFrom<String> for ClusterSecret {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        ClusterSecret::parse(&raw)
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(hidden)")
    }
}

impl ClusterSecret {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() < MIN_SECRET_LEN {
            return Err(format!(
                "cluster_secret must be at least {MIN_SECRET_LEN} characters (e.g. the output \
                 of `openssl rand -hex 32`)"
            ));
        }
        if raw.chars().any(char::is_whitespace) {
            return Err("cluster_secret must not contain white space".into());
        }
        Ok(ClusterSecret(raw.into()))
    }

    /// The header value that signs `method path` at `now` (Unix seconds).
    pub fn sign(&self, method: &str, path: &str, now: i64) -> String {
        let mac = hmac_sha256(self.0.as_bytes(), signed_text(method, path, now).as_bytes());
        format!("t={now},mac={}", hex::encode(mac))
    }

    /// Whether `header` signs `method path` with this secret, within the
    /// allowed clock difference of `now`.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        header: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let (time, mac) = parse_header(header).ok_or(SignatureError::Malformed)?;
        if (now - time).abs() > MAX_SKEW_SECS {
            return Err(SignatureError::Stale { skew: now - time });
        }
        let expected = hmac_sha256(
            self.0.as_bytes(),
            signed_text(method, path, time).as_bytes(),
        );
        let presented = hex::decode(mac).map_err(|_| SignatureError::Malformed)?;
        if subtle::ConstantTimeEq::ct_eq(expected.as_slice(), presented.as_slice()).into() {
            Ok(())
        } else {
            Err(SignatureError::Wrong)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {AUTH_HEADER} header is not t=<unix time>,mac=<hex>")]
    Malformed,
    #[error(
        "the signature is {skew} s away from this node's clock (at most {MAX_SKEW_SECS} s \
         allowed); keep the nodes' clocks in time"
    )]
    Stale { skew: i64 },
    #[error("the signature does not match this node's cluster_secret")]
    Wrong,
}

fn signed_text(method: &str, path: &str, time: i64) -> String {
    format!("{method}\n{path}\n{time}")
}

fn parse_header(header: &str) -> Option<(i64, &str)> {
    let (time, mac) = header.trim().split_once(',')?;
    let time = time.trim().strip_prefix("t=")?.parse().ok()?;
    let mac = mac.trim().strip_prefix("mac=")?;
    Some((time, mac))
}

/// HMAC (RFC 2104) over SHA-256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The SHA-256 and length of the bytes that went through a stream, read
/// once the stream is done.
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<(Sha256, u64)>>);

impl Tally {
    fn add(&self, bytes: &[u8]) {
        let mut inner = self.0.lock().expect("tally lock");
        inner.0.update(bytes);
        inner.1 += bytes.len() as u64;
    }

    /// The bytes so far.
    pub fn bytes(&self) -> u64 {
        self.0.lock().expect("tally lock").1
    }

    /// The hex SHA-256 and byte count so far.
    pub fn sum(&self) -> (String, u64) {
        let inner = self.0.lock().expect("tally lock");
        (hex::encode(inner.0.clone().finalize()), inner.1)
    }
}

/// A reader that counts and hashes what is read through it.
pub struct TalliedReader<R> {
    inner: R,
    tally: Tally,
}

impl<R> TalliedReader<R> {
    pub fn new(inner: R, tally: Tally) -> Self {
        TalliedReader { inner, tally }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for TalliedReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            self.tally.add(&buf.filled()[before..]);
        }
        polled
    }
}

/// What the target said it received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Received {
    pub sha256: String,
    /// A string, as every number in berth's JSON.
    pub bytes: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("node '{node}' cannot be reached at {url} or broke off ({}); its log may say why", chain(.source))]
    Unreachable {
        node: String,
        url: String,
        source: reqwest::Error,
    },
    #[error("node '{node}' refused ({status}): {message}")]
    Refused {
        node: String,
        status: u16,
        message: String,
    },
    #[error("node '{node}' answered what berth cannot read: {why}")]
    BadAnswer { node: String, why: String },
}

/// An error and its causes, as one line: reqwest's own text ("error
/// sending request") names none of them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Another node, as this one calls it.
pub struct Peer<'a> {
    pub name: &'a str,
    /// Its `api_url`, without a trailing slash.
    pub api_url: &'a str,
}

/// The client for node-to-node requests.
#[derive(Clone, Debug)]
pub struct Peers {
    client: reqwest::Client,
    secret: ClusterSecret,
}

/// How long a node may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Peers {
    /// An `https://` node is trusted by the host's CA store
    /// (`/etc/ssl/certs`; a private CA is added with
    /// `update-ca-certificates`).
    pub fn new(secret: ClusterSecret) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Node to node on the nodes' own network: a proxy set for the
            // host's outbound traffic must not see the files.
            .no_proxy()
            .build()
            .map_err(|e| {
                format!(
                    "cannot make the client for node-to-node requests: {}",
                    chain(&e)
                )
            })?;
        Ok(Peers { client, secret })
    }

    fn path_of(container: Uuid) -> String {
        format!("/v1/cluster/migrations/{}", container.hyphenated())
    }

    fn signed(
        &self,
        method: reqwest::Method,
        peer: &Peer<'_>,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let now = chrono::Utc::now().timestamp();
        self.client
            .request(method.clone(), format!("{}{path}", peer.api_url))
            .header(AUTH_HEADER, self.secret.sign(method.as_str(), path, now))
    }

    /// Streams `files` to `peer` as `container`'s; the answer says what
    /// arrived. `tally` counts what was sent.
    pub async fn send_files(
        &self,
        peer: &Peer<'_>,
        container: Uuid,
        files: impl AsyncRead + Unpin + Send + 'static,
        tally: Tally,
    ) -> Result<Received, PeerError> {
        let reader = TalliedReader::new(files, tally);
        let chunks = futures::stream::unfold(reader, |mut reader| async move {
            let mut chunk = vec![0u8; 256 * 1024];
            match reader.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok::<_, std::io::Error>(chunk), reader))
                }
                Err(error) => Some((Err(error), reader)),
            }
        });
        let path = Self::path_of(container);
        let request = self
            .signed(reqwest::Method::PUT, peer, &path)
            .header("Content-Type", "application/x-tar")
            .body(reqwest::Body::wrap_stream(chunks));
        let answer = self.answer(peer, request).await?;
        serde_json::from_str(&answer).map_err(|e| PeerError::BadAnswer {
            node: peer.name.to_owned(),
            why: format!("{e}: {answer}"),
        })
    }

    /// Asks `peer` whether it would take `container`'s files now.
    pub async fn check(&self, peer: &Peer<'_>, container: Uuid) -> Result<(), PeerError> {
        let path = Self::path_of(container);
        let request = self.signed(reqwest::Method::GET, peer, &path);
        self.answer(peer, request).await.map(drop)
    }

    /// Asks `peer` to remove the copy of `container` a failed move left;
    /// the peer's reason for the failure, if it had one.
    pub async fn discard(
        &self,
        peer: &Peer<'_>,
        container: Uuid,
    ) -> Result<Option<String>, PeerError> {
        let path = Self::path_of(container);
        let request = self.signed(reqwest::Method::DELETE, peer, &path);
        let answer = self.answer(peer, request).await?;
        Ok(serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("failure").and_then(|f| f.as_str()).map(str::to_owned)))
    }

    async fn answer(
        &self,
        peer: &Peer<'_>,
        request: reqwest::RequestBuilder,
    ) -> Result<String, PeerError> {
        let unreachable = |source| PeerError::Unreachable {
            node: peer.name.to_owned(),
            url: peer.api_url.to_owned(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or(body);
        Err(PeerError::Refused {
            node: peer.name.to_owned(),
            status: status.as_u16(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn secret(text: &str) -> ClusterSecret {
        ClusterSecret::parse(text).unwrap()
    }

    #[test]
    fn a_signature_holds_for_its_request_secret_and_time_only() {
        let key = secret("0123456789abcdef0123456789abcdef");
        let path = "/v1/cluster/migrations/54e21881-8620-4bb0-95f1-05f143973a6e";
        let header = key.sign("PUT", path, 1_000_000);
        assert_eq!(key.verify("PUT", path, &header, 1_000_000), Ok(()));
        assert_eq!(key.verify("PUT", path, &header, 1_000_300), Ok(()));
        assert_eq!(
            key.verify("PUT", path, &header, 1_000_301),
            Err(SignatureError::Stale { skew: 301 })
        );
        assert_eq!(
            key.verify("DELETE", path, &header, 1_000_000),
            Err(SignatureError::Wrong)
        );
        assert_eq!(
            key.verify("PUT", "/v1/cluster/migrations/other", &header, 1_000_000),
            Err(SignatureError::Wrong)
        );
        let other = secret("fedcba9876543210fedcba9876543210");
        assert_eq!(
            other.verify("PUT", path, &header, 1_000_000),
            Err(SignatureError::Wrong)
        );
        for garbage in ["", "t=1", "mac=00", "t=x,mac=00", "t=1000000,mac=zz"] {
            assert_eq!(
                key.verify("PUT", path, garbage, 1_000_000),
                Err(SignatureError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn short_or_spaced_secrets_are_refused_and_none_is_printed() {
        assert!(ClusterSecret::parse("short").is_err());
        assert!(ClusterSecret::parse("0123456789abcdef 0123456789abcdef").is_err());
        let key = secret("0123456789abcdef0123456789abcdef");
        assert!(!format!("{key:?}").contains("0123"));
    }

    #[tokio::test]
    async fn the_tally_counts_and_hashes_what_is_read() {
        let tally = Tally::default();
        let mut reader = TalliedReader::new(&b"hello world"[..], tally.clone());
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(
            tally.sum(),
            (
                "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9".to_owned(),
                11
            )
        );
    }
}
