//! API tokens: create, list, revoke, and find whose a presented token is.

use super::{Service, ServiceError};
use crate::auth;
use crate::db::tokens::{self, TokenRecord};
use crate::db::DbError;
use crate::domain::time;

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
        let mut conn = self.connection().await?;
        let stored = tokens::digests(&mut conn).await?;
        let Some(name) = auth::verify(presented, &stored).map(str::to_owned) else {
            return Ok(None);
        };
        tokens::touch(&mut conn, &name, time::now()).await?;
        Ok(Some(name))
    }
}
