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
        let mut conn = self.db.writer().await?;
        sessions::delete(&mut conn, &auth::digest(presented)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::events::EventBus;
    use crate::jobs::JobQueue;
    use crate::os_templates::OsTemplateStore;

    #[rocket::async_test]
    async fn sessions_live_until_closed_expired_or_their_token_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let service = Service::new(
            db.clone(),
            OsTemplateStore::new(dir.path().join("templates")),
            JobQueue::new(),
            EventBus::new(),
            crate::driver::host::HostProbe::new(dir.path().into(), false),
            crate::service::ThisNode::alone("local"),
        );
        service.create_token("ops").await.unwrap();
        let id = service.open_session("ops").await.unwrap();
        let session = service.session(&id).await.unwrap().expect("a live session");
        assert_eq!(session.token_name, "ops");
        assert_ne!(session.csrf, id);
        assert!(service.session("not-a-session").await.unwrap().is_none());

        let long_ago = time::now() - SESSION_LIFETIME - Duration::minutes(1);
        let mut conn = db.pool().acquire().await.unwrap();
        sessions::insert(
            &mut conn,
            &auth::digest("old"),
            "ops",
            "csrf",
            long_ago,
            long_ago + SESSION_LIFETIME,
        )
        .await
        .unwrap();
        assert!(service.session("old").await.unwrap().is_none(), "expired");

        let other = service.open_session("ops").await.unwrap();
        service.close_session(&other).await.unwrap();
        assert!(service.session(&other).await.unwrap().is_none(), "closed");
        assert!(service.session(&id).await.unwrap().is_some());

        service.revoke_token("ops").await.unwrap();
        assert!(service.session(&id).await.unwrap().is_none(), "revoked");
    }
}
