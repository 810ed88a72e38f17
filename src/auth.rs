//! API tokens: how they are made and stored (as digests only), and the limit
//! on failed attempts per client address.

use std::hash::{BuildHasher, RandomState};
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
/// `window`, that address's failures are answered "too many attempts" until
/// the window has passed. A valid token is never refused: tokens carry 256
/// random bits, so the limit is not what stops guessing; it keeps a
/// misconfigured client from filling the log and the CPU, and it must not
/// let anyone who can reach the port lock the others out.
///
/// The table has a fixed number of slots, and each address may use one of
/// two (chosen by a hash keyed at random per process, so addresses cannot be
/// picked to collide): memory is bounded and every call costs the same
/// however many addresses have failed. When both slots of an address are
/// taken by live entries of others, the older one is replaced; an attacker
/// with thousands of addresses can make the limiter forget, which costs
/// nothing but the limit itself.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    keys: RandomState,
    slots: Mutex<Vec<Option<Failures>>>,
}

/// Slots in the table: about 40 bytes each.
const FAILURE_SLOTS: usize = 4096;

#[derive(Clone, Copy)]
struct Failures {
    client: ClientKey,
    since: Instant,
    count: u32,
}

/// An address as the limiter counts it: IPv4 alone; IPv6 by its /64, the
/// block one host is given (one machine has millions of its addresses).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => ClientKey::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.into()),
                None => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        FailureLimiter {
            max,
            window,
            keys: RandomState::new(),
            slots: Mutex::new(vec![None; FAILURE_SLOTS]),
        }
    }

    /// The two slots `client` may use.
    fn slots_of(&self, client: ClientKey) -> [usize; 2] {
        let hash = self.keys.hash_one(client);
        [
            (hash as usize) % FAILURE_SLOTS,
            ((hash >> 32) as usize) % FAILURE_SLOTS,
        ]
    }

    fn live(&self, entry: &Failures) -> bool {
        entry.since.elapsed() < self.window
    }

    /// Whether `client`'s failures may be answered as usual now; if not,
    /// how long until they may.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let client = ClientKey::from(client);
        let slots = self.slots.lock().expect("failure limiter");
        for index in self.slots_of(client) {
            if let Some(entry) = &slots[index] {
                if entry.client == client && entry.count >= self.max && self.live(entry) {
                    return Err(self.window.saturating_sub(entry.since.elapsed()));
                }
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, client: IpAddr) {
        let client = ClientKey::from(client);
        let candidates = self.slots_of(client);
        let mut slots = self.slots.lock().expect("failure limiter");
        let own = candidates
            .into_iter()
            .find(|&i| slots[i].is_some_and(|entry| entry.client == client));
        if let Some(index) = own {
            let entry = slots[index].as_mut().expect("found above");
            if !self.live(entry) {
                *entry = Failures {
                    client,
                    since: Instant::now(),
                    count: 0,
                };
            }
            entry.count = entry.count.saturating_add(1);
            return;
        }
        // A free or expired slot, else the one whose entry is oldest.
        let index = candidates
            .into_iter()
            .find(|&i| slots[i].map_or(true, |entry| !self.live(&entry)))
            .unwrap_or_else(|| {
                *candidates
                    .iter()
                    .min_by_key(|&&i| slots[i].map(|entry| entry.since))
                    .expect("two candidates")
            });
        slots[index] = Some(Failures {
            client,
            since: Instant::now(),
            count: 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_as_digests() {
        let token = new_token().unwrap();
        assert!(
            token.starts_with("berth_") && token.len() == 6 + 43,
            "{token}"
        );
        assert_ne!(token, new_token().unwrap());
        assert_eq!(digest(&token), digest(&token.clone()));
        assert_ne!(digest(&token), digest("berth_wrong"));
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
        // IPv6 addresses count by their /64.
        let (c, d): (IpAddr, IpAddr) = (
            "2001:db8:1:2::1".parse().unwrap(),
            "2001:db8:1:2:ffff::9".parse().unwrap(),
        );
        for _ in 0..3 {
            limiter.record_failure(c);
        }
        assert!(limiter.check(d).is_err());
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let short = FailureLimiter::new(1, Duration::from_millis(1));
        short.record_failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.check(a).is_ok());
    }

    #[test]
    fn the_failure_table_stays_bounded_and_keeps_counting_recent_addresses() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let attacked: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            limiter.record_failure(attacked);
        }
        // Far more addresses than slots fail once each.
        for n in 0..(FAILURE_SLOTS as u32 * 4) {
            limiter.record_failure(IpAddr::V4((0x0a00_0000 + n).into()));
        }
        assert_eq!(
            limiter.slots.lock().unwrap().len(),
            FAILURE_SLOTS,
            "the table never grows"
        );
        // The newest addresses are still counted.
        let recent = IpAddr::V4((0x0a00_0000 + FAILURE_SLOTS as u32 * 4 - 1).into());
        limiter.record_failure(recent);
        limiter.record_failure(recent);
        assert!(limiter.check(recent).is_err());
    }

    #[test]
    fn token_names_are_plain() {
        assert!(check_token_name("billing-1").is_ok());
        for bad in ["", "a b", "a\nb", &"x".repeat(65)] {
            assert!(check_token_name(bad).is_err());
        }
    }
}
