//! API tokens: create, list, revoke, and find whose a presented token is.
//!
//! Every authenticated request asks whose its token is, so the answer comes
//! from memory: a copy of the token table, read again whenever the table's
//! change marker (see `db::tokens::ChangeMarker`, one `stat`) says another
//! process (`berth token revoke`) or this one changed it. A revoke takes
//! effect with the next request; the copy is never older than
//! [`MAX_COPY_AGE`] even if the table is edited behind berth's back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{Service, ServiceError};
use crate::auth;
use crate::db::tokens::{self, ChangeMarker, TokenRecord, TokensVersion};
use crate::db::{Db, DbError};
use crate::domain::time::{self, Timestamp};

/// How precisely a token's last use is recorded: the time is for operators
/// to read, and writing it on every request would make every API call a
/// write transaction.
const LAST_USE_RESOLUTION: chrono::Duration = chrono::Duration::seconds(60);

/// The longest the in-memory copy is trusted without reading the table.
const MAX_COPY_AGE: Duration = Duration::from_secs(60);

/// The in-memory copy of the token table (shared by every clone of the
/// service).
pub struct TokenCache {
    marker: ChangeMarker,
    copy: RwLock<Option<Arc<TokenCopy>>>,
}

struct TokenCopy {
    version: TokensVersion,
    read_at: Instant,
    /// By digest: what a presented token is looked up by. The lookup's time
    /// depends only on digests, which tell a guesser nothing about tokens.
    by_digest: HashMap<String, Arc<KnownToken>>,
}

struct KnownToken {
    name: String,
    last_used_at: Mutex<Option<Timestamp>>,
}

impl TokenCache {
    pub fn new(db: &Db) -> Self {
        TokenCache {
            marker: ChangeMarker::of(db),
            copy: RwLock::new(None),
        }
    }

    /// The copy, read again from `db` when the table changed or the copy is
    /// too old (always, for a database without a marker file).
    async fn current(&self, db: &Db) -> Result<Arc<TokenCopy>, ServiceError> {
        let version = self.marker.version();
        if let Some(copy) = self.copy.read().expect("token cache").as_ref() {
            if self.marker.is_shared()
                && copy.version == version
                && copy.read_at.elapsed() < MAX_COPY_AGE
            {
                return Ok(Arc::clone(copy));
            }
        }
        // The version is taken before the read: a change committed in
        // between makes the next request read again, never the reverse.
        let stored =
            tokens::digests(&mut *db.pool().acquire().await.map_err(DbError::from)?).await?;
        let copy = Arc::new(TokenCopy {
            version,
            read_at: Instant::now(),
            by_digest: stored
                .into_iter()
                .map(|token| {
                    let known = KnownToken {
                        name: token.name,
                        last_used_at: Mutex::new(token.last_used_at),
                    };
                    (token.digest, Arc::new(known))
                })
                .collect(),
        });
        *self.copy.write().expect("token cache") = Some(Arc::clone(&copy));
        Ok(copy)
    }

    /// After this process changed the table: tell the others, forget the copy.
    fn changed(&self) -> std::io::Result<()> {
        *self.copy.write().expect("token cache") = None;
        self.marker.mark()
    }
}

impl Service {
    /// Creates a token and returns it: the only time it exists in clear.
    pub async fn create_token(&self, name: &str) -> Result<String, ServiceError> {
        auth::check_token_name(name)?;
        let token = auth::new_token()
            .map_err(|e| std::io::Error::other(format!("no randomness from the OS: {e}")))?;
        let mut tx = self.db.begin().await?;
        match tokens::insert(&mut tx, name, &auth::digest(&token), time::now()).await {
            Err(e) if e.is_unique_violation() => {
                return Err(ServiceError::TokenExists(name.to_owned()))
            }
            other => other?,
        }
        tx.commit().await.map_err(DbError::from)?;
        self.tokens
            .changed()
            .map_err(|e| marker_error("created", name, e))?;
        Ok(token)
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, ServiceError> {
        Ok(tokens::list(&mut *self.connection().await?).await?)
    }

    pub async fn revoke_token(&self, name: &str) -> Result<(), ServiceError> {
        let mut tx = self.db.begin().await?;
        if !tokens::delete(&mut tx, name).await? {
            return Err(ServiceError::TokenNotFound(name.to_owned()));
        }
        tx.commit().await.map_err(DbError::from)?;
        self.tokens
            .changed()
            .map_err(|e| marker_error("revoked", name, e))?;
        Ok(())
    }

    /// The name of the token `presented` is, if it is a valid one.
    pub async fn token_owner(&self, presented: &str) -> Result<Option<String>, ServiceError> {
        let copy = self.tokens.current(&self.db).await?;
        let Some(token) = copy.by_digest.get(&auth::digest(presented)) else {
            return Ok(None);
        };
        let now = time::now();
        let due = {
            let mut last = token.last_used_at.lock().expect("token cache");
            let due = last.map_or(true, |last| now - last >= LAST_USE_RESOLUTION);
            if due {
                *last = Some(now);
            }
            due
        };
        if due {
            tokens::touch(&mut *self.db.writer().await?, &token.name, now).await?;
        }
        Ok(Some(token.name.clone()))
    }
}

/// The change is stored, but running berth processes may not know of it.
fn marker_error(done: &str, name: &str, error: std::io::Error) -> ServiceError {
    ServiceError::ChangeNotPublished(format!(
        "token '{name}' {done}, but the change marker beside the database could not be \
         written ({error}): a running berth takes the change into account within {} s",
        MAX_COPY_AGE.as_secs()
    ))
}
