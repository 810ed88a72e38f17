//! PostgreSQL's NOTIFY/LISTEN, by which nodes tell each other that a job
//! or a container changed (SQLite has one node: nothing to tell).

use sqlx::postgres::{PgListener, PgNotification};

use super::{Backend, Db, DbError};

/// A connection that receives one channel's notifications.
pub struct Listener(PgListener);

/// What a `Listener` hands over.
pub enum Heard {
    Notification(PgNotification),
    /// The connection was lost and made again: what was sent meanwhile is
    /// lost, so whatever depends on it should look again.
    Reconnected,
}

impl Db {
    /// Sends `payload` to every node listening on `channel` (delivered when
    /// the sender's transaction commits; at once outside one).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), DbError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A listener on `channel`; `None` on SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<Listener>, DbError> {
        let Some(url) = self
            .url
            .as_deref()
            .filter(|_| self.backend == Backend::Postgres)
        else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(Some(Listener(listener)))
    }
}

impl Listener {
    /// The next notification; reconnects (and says so) when the connection
    /// was lost.
    pub async fn next(&mut self) -> Result<Heard, DbError> {
        Ok(match self.0.try_recv().await? {
            Some(notification) => Heard::Notification(notification),
            None => Heard::Reconnected,
        })
    }
}
