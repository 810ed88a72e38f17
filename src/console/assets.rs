//! The console's static files (`static/`), compiled into the binary and
//! served under fingerprinted names (`app.<hash>.css`) that browsers may
//! cache for a year: a new build changes the hash, so nobody sees stale CSS.

use std::borrow::Cow;
use std::path::PathBuf;

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::Route;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

pub fn routes() -> Vec<Route> {
    rocket::routes![asset]
}

/// Hex digits of the content hash that go into a file name.
const FINGERPRINT_LEN: usize = 16;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Unfingerprinted or outdated names: usable, but checked every time.
const REVALIDATE: &str = "no-cache";

/// The URL to put in a page for `file` (a path under `static/`).
pub fn url(file: &str) -> String {
    match Assets::get(file) {
        Some(asset) => {
            let hash = fingerprint(&asset.metadata.sha256_hash());
            format!("/static/{}", fingerprinted_name(file, &hash))
        }
        None => {
            // A template naming a file that is not there is a bug in berth.
            log::error!("static/{file} is missing from the build");
            format!("/static/{file}")
        }
    }
}

fn fingerprint(sha256: &[u8; 32]) -> String {
    let hex: String = sha256.iter().map(|byte| format!("{byte:02x}")).collect();
    hex[..FINGERPRINT_LEN].to_owned()
}

/// `app.css` with hash `h` is `app.h.css`; a name without an extension
/// gets the hash appended.
fn fingerprinted_name(file: &str, hash: &str) -> String {
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !stem.ends_with('/') => {
            format!("{stem}.{hash}.{ext}")
        }
        _ => format!("{file}.{hash}"),
    }
}

/// Splits a requested name into the file it names and the fingerprint it
/// carried, if any.
fn strip_fingerprint(requested: &str) -> (Cow<'_, str>, Option<&str>) {
    let is_hash =
        |part: &str| part.len() == FINGERPRINT_LEN && part.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((rest, ext)) = requested.rsplit_once('.') {
        if let Some((stem, hash)) = rest.rsplit_once('.') {
            if is_hash(hash) && !stem.is_empty() {
                return (Cow::Owned(format!("{stem}.{ext}")), Some(hash));
            }
        }
        if is_hash(ext) && !rest.is_empty() {
            return (Cow::Borrowed(rest), Some(ext));
        }
    }
    (Cow::Borrowed(requested), None)
}

/// The `If-None-Match` header, for answering 304.
struct IfNoneMatch(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IfNoneMatch {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(IfNoneMatch(
            req.headers().get_one("If-None-Match").map(str::to_owned),
        ))
    }
}

struct AssetResponse {
    status: Status,
    content_type: ContentType,
    etag: String,
    cache_control: &'static str,
    body: Option<Cow<'static, [u8]>>,
}

impl<'r> Responder<'r, 'static> for AssetResponse {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .status(self.status)
            .header(self.content_type)
            .header(Header::new("ETag", self.etag))
            .header(Header::new("Cache-Control", self.cache_control));
        if let Some(body) = self.body {
            response.sized_body(body.len(), std::io::Cursor::new(body));
        }
        response.ok()
    }
}

/// Rocket's `PathBuf` segments guard already refuses `..` and hidden files.
#[rocket::get("/static/<path..>")]
fn asset(path: PathBuf, if_none_match: IfNoneMatch) -> Option<AssetResponse> {
    let requested = path.to_str()?;
    let (file, hash) = strip_fingerprint(requested);
    let asset = Assets::get(&file)?;
    let current = fingerprint(&asset.metadata.sha256_hash());
    let etag = format!("\"{current}\"");
    let cache_control = if hash == Some(current.as_str()) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let content_type = file
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    let unchanged = if_none_match.0.is_some_and(|tags| {
        tags.split(',')
            .any(|tag| tag.trim() == etag || tag.trim() == "*")
    });
    Some(AssetResponse {
        status: if unchanged {
            Status::NotModified
        } else {
            Status::Ok
        },
        content_type,
        etag,
        cache_control,
        body: (!unchanged).then_some(asset.data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_go_before_the_extension_and_come_off_again() {
        let hash = "0123456789abcdef";
        assert_eq!(
            fingerprinted_name("app.css", hash),
            "app.0123456789abcdef.css"
        );
        assert_eq!(
            fingerprinted_name("LICENSE", hash),
            "LICENSE.0123456789abcdef"
        );
        assert_eq!(
            strip_fingerprint("app.0123456789abcdef.css"),
            (Cow::Borrowed("app.css"), Some(hash))
        );
        assert_eq!(
            strip_fingerprint("LICENSE.0123456789abcdef"),
            (Cow::Borrowed("LICENSE"), Some(hash))
        );
        assert_eq!(
            strip_fingerprint("app.css"),
            (Cow::Borrowed("app.css"), None)
        );
        assert_eq!(
            strip_fingerprint("app.min.css"),
            (Cow::Borrowed("app.min.css"), None)
        );
    }

    #[test]
    fn every_linked_asset_exists_and_has_a_fingerprinted_url() {
        for file in ["app.css", "app.js", "favicon.svg"] {
            let url = url(file);
            assert!(Assets::get(file).is_some(), "{file}");
            let name = url.strip_prefix("/static/").unwrap();
            assert_eq!(strip_fingerprint(name).0, file, "{url}");
            assert!(strip_fingerprint(name).1.is_some(), "{url}");
        }
    }
}
