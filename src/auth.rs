//! API tokens: how they are made, stored (as digests only) and checked (in
//! constant time), and the limit on failed attempts per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::ValidationErrors;

/// Prefix that makes berth tokens recognisable (e.g. to secret scanners).
const TOKEN_PREFIX: &str = "berth_";

/// A new token: 256 random bits from the operating system.
pub fn new_token() -> Result<String, getrandom::Error> {
    Ok(format!("{TOKEN_PREFIX}{}", random_secret()?))
}

/// 256 random bits from the operating system, URL-safe: session ids and
/// CSRF secrets (without the token prefix, so they are never mistaken for
/// API tokens).
pub fn random_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What is stored of a token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The name of the stored token `presented` matches, comparing every digest
/// in constant time so timing tells nothing about how close a guess was.
pub fn verify<'a>(presented: &str, stored: &'a [(String, String)]) -> Option<&'a str> {
    let presented = digest(presented);
    let mut found = None;
    for (name, stored_digest) in stored {
        if bool::from(presented.as_bytes().ct_eq(stored_digest.as_bytes())) {
            found = Some(name.as_str());
        }
    }
    found
}

/// Token names: what `berth token revoke` and job records use.
pub fn check_token_name(name: &str) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'));
    if !valid {
        errors.push(
            "name",
            "must be 1 to 64 letters, digits, '_', '.', '-' or '@'",
        );
    }
    errors.into_result(())
}

/// Failed authentication attempts per client address: after `max` in
/// `window`, that address is refused until the window has passed.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        FailureLimiter {
            max,
            window,
            seen: Mutex::default(),
        }
    }

    /// Whether `client` may try (again) now; if not, how long until it may.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let seen = self.seen.lock().expect("failure limiter");
        match seen.get(&client) {
            Some((since, count)) if *count >= self.max && since.elapsed() < self.window => {
                Err(self.window - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, client: IpAddr) {
        let mut seen = self.seen.lock().expect("failure limiter");
        // Forget old entries now and then so the map cannot grow forever.
        if seen.len() > 10_000 {
            let window = self.window;
            seen.retain(|_, (since, _)| since.elapsed() < window);
        }
        let entry = seen.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_verify_only_against_their_digest() {
        let token = new_token().unwrap();
        assert!(
            token.starts_with("berth_") && token.len() == 6 + 43,
            "{token}"
        );
        assert_ne!(token, new_token().unwrap());
        let stored = vec![
            ("ci".to_owned(), digest("other")),
            ("ops".to_owned(), digest(&token)),
        ];
        assert_eq!(verify(&token, &stored), Some("ops"));
        assert_eq!(verify("berth_wrong", &stored), None);
        assert!(!digest(&token).contains(&token[6..]));
        let secret = random_secret().unwrap();
        assert!(secret.len() == 43 && !secret.starts_with("berth_"));
        assert!(same_secret(&secret, &secret.clone()));
        assert!(!same_secret(&secret, &random_secret().unwrap()));
        assert!(!same_secret(&secret, ""));
    }

    #[test]
    fn failures_are_limited_per_address_within_the_window() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
            limiter.record_failure(a);
        }
        assert!(limiter.check(a).is_err());
        assert!(limiter.check(b).is_ok());
        let short = FailureLimiter::new(1, Duration::from_millis(1));
        short.record_failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.check(a).is_ok());
    }

    #[test]
    fn token_names_are_plain() {
        assert!(check_token_name("billing-1").is_ok());
        for bad in ["", "a b", "a\nb", &"x".repeat(65)] {
            assert!(check_token_name(bad).is_err());
        }
    }
}
