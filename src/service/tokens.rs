//! API tokens: create, list, revoke, and find whose a presented token is.

use super::{Service, ServiceError};
use crate::auth;
use crate::db::tokens::{self, TokenRecord};
use crate::db::DbError;
use crate::domain::time;

/// How precisely a token's last use is recorded: the time is for operators
/// to read, and writing it on every request would make every API call a
/// write transaction.
const LAST_USE_RESOLUTION: chrono::Duration = chrono::Duration::seconds(60);

impl Service {
    /// Creates a token and returns it: the only time it exists in clear.
    pub async fn create_token(&self, name: &str) -> Result<String, ServiceError> {
        auth::check_token_name(name)?;
        let token = auth::new_token()
            .map_err(|e| std::io::Error::other(format!("no randomness from the OS: {e}")))?;
        let mut tx = self.db.begin().await?;
        match tokens::insert(&mut tx, name, &auth::digest(&token), time::now()).await {
            Err(e) if e.is_unique_violation() => {
                return Err(ServiceError::Conflict(format!(
                    "a token named '{name}' exists; revoke it first"
                )))
            }
            other => other?,
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(token)
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, ServiceError> {
        Ok(tokens::list(&mut *self.connection().await?).await?)
    }

    pub async fn revoke_token(&self, name: &str) -> Result<(), ServiceError> {
        let mut tx = self.db.begin().await?;
        if !tokens::delete(&mut tx, name).await? {
            return Err(ServiceError::Conflict(format!(
                "there is no token named '{name}'"
            )));
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    /// The name of the token `presented` is, if it is a valid one.
    pub async fn token_owner(&self, presented: &str) -> Result<Option<String>, ServiceError> {
        let stored = tokens::digests(&mut *self.connection().await?).await?;
        let pairs: Vec<(String, String)> = stored
            .iter()
            .map(|token| (token.name.clone(), token.digest.clone()))
            .collect();
        let Some(name) = auth::verify(presented, &pairs).map(str::to_owned) else {
            return Ok(None);
        };
        let now = time::now();
        let recent = stored
            .iter()
            .find(|token| token.name == name)
            .and_then(|token| token.last_used_at)
            .is_some_and(|last| now - last < LAST_USE_RESOLUTION);
        if !recent {
            tokens::touch(&mut *self.db.writer().await?, &name, now).await?;
        }
        Ok(Some(name))
    }
}
