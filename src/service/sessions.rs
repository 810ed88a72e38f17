//! Console sessions: opened by logging in with an API token, found again by
//! the id in the session cookie, closed by logging out (or by revoking the
//! token, or by expiring).

use chrono::Duration;

use super::{Service, ServiceError};
use crate::auth;
use crate::db::sessions;
use crate::db::DbError;
use crate::domain::time;

/// How long a login lasts: a working day, after which the console asks for
/// the token again.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// A live session, as the console needs it.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub token_name: String,
    pub csrf: String,
}

fn no_randomness(error: getrandom::Error) -> ServiceError {
    std::io::Error::other(format!("no randomness from the OS: {error}")).into()
}

impl Service {
    /// Opens a session for the token named `token_name` (already verified)
    /// and returns its id: for the cookie only, never stored.
    pub async fn open_session(&self, token_name: &str) -> Result<String, ServiceError> {
        let id = auth::random_secret().map_err(no_randomness)?;
        let csrf = auth::random_secret().map_err(no_randomness)?;
        let now = time::now();
        let mut tx = self.db.begin().await?;
        sessions::delete_expired(&mut tx, now).await?;
        sessions::insert(
            &mut tx,
            &auth::digest(&id),
            token_name,
            &csrf,
            now,
            now + SESSION_LIFETIME,
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(id)
    }

    /// The live session whose id was `presented`: none when it never
    /// existed, has expired, was closed, or its token was revoked.
    pub async fn session(&self, presented: &str) -> Result<Option<ConsoleSession>, ServiceError> {
        let mut conn = self.connection().await?;
        let found = sessions::get(&mut conn, &auth::digest(presented)).await?;
        Ok(found
            .filter(|s| s.expires_at > time::now())
            .map(|s| ConsoleSession {
                token_name: s.token_name,
                csrf: s.csrf,
            }))
    }

    pub async fn close_session(&self, presented: &str) -> Result<(), ServiceError> {
        let mut conn = self.connection().await?;
        sessions::delete(&mut conn, &auth::digest(presented)).await?;
        Ok(())
    }
}
