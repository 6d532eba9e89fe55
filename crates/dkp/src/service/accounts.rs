//! Registration, login, logout and the caller's own view. Passwords are hashed
//! with argon2id (see `passwords`); a login hands out a random token stored
//! only as its SHA-256.

use dkp_core::names::{self, Username};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::Duration;
use uuid::Uuid;

use super::Error;
use super::{Caller, Service};
use crate::model::{Membership, NewSession, NewUser, Ts, User};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// The hash of a token, as sessions are looked up by.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Service {
    pub async fn register(&self, input: Registration, request_id: &str) -> Result<User, Error> {
        let username = Username::parse(&input.username)?;
        names::check_password(&input.password)?;
        let display_name = match &input.display_name {
            Some(name) => names::display_text("display_name", name, 64)?,
            None => username.as_str().to_owned(),
        };
        let password_hash = self.hashers.hash(input.password).await?;
        let new = NewUser {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
            username_folded: username.folded(),
            display_name,
            password_hash,
        };
        Ok(self.store.create_user(&new, &self.ctx(None, request_id)).await?)
    }

    /// Checks the password and opens a session: the token and its user. For
    /// tools inside this process; requests come through `login_from`.
    pub async fn login(&self, input: Login, request_id: &str) -> Result<(String, User), Error> {
        self.login_from(input, "in-process", request_id).await
    }

    /// Checks the password of a login from `address` and opens a session,
    /// unless failed logins of its account or address are past their limits
    /// (see `limits`): then 429, before any password is checked.
    pub async fn login_from(&self, input: Login, address: &str, request_id: &str) -> Result<(String, User), Error> {
        // Counted by the name as typed, known or not: the answers never tell which.
        let account = input.username.to_ascii_lowercase();
        let account: String = account.chars().take(64).collect();
        let _turn = self.limits.login_turn(address).await;
        self.limits.admit_login(&account, address).await?;
        let found = match Username::parse(&input.username) {
            Ok(username) => self.store.login_of(&username.folded()).await?,
            Err(_) => None,
        };
        // An unknown user costs the same hash as a known one, so timing tells nothing.
        let stored = found.as_ref().map(|(_, hash)| hash.clone());
        let matches = self.hashers.verify(input.password, stored).await?;
        let Some((user, _)) = found.filter(|_| matches) else {
            self.limits.count_failed_login(&account, address).await;
            return Err(Error::Unauthenticated);
        };
        let token = random_token()?;
        let now = self.clock.now();
        let session = NewSession {
            token_hash: token_hash(&token),
            user_id: user.id,
            expires_at: Ts(now.0 + Duration::hours(i64::from(self.session_ttl_hours))),
        };
        self.store.create_session(&session, &self.ctx(Some(user.id), request_id)).await?;
        Ok((token, user))
    }

    pub async fn logout(&self, caller: &Caller) -> Result<(), Error> {
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        self.sessions.remove(&caller.token_hash);
        self.store.end_session(&caller.token_hash, &ctx).await?;
        self.watch.end(&caller.token_hash);
        Ok(())
    }

    /// Watches the session of `token` for a connection that outlives the
    /// request that opened it: the connection learns when the session ends.
    pub fn watch_session(&self, token: &str) -> super::watch::Watched {
        self.watch.watch(token_hash(token), &self.store, &self.clock)
    }

    /// The user behind a token, if its session is open.
    pub async fn authenticate(&self, token: &str) -> Result<Option<User>, Error> {
        let hash = token_hash(token);
        if let Some(user) = self.sessions.get(&hash) {
            return Ok(Some(user));
        }
        let user = self.store.session_user(&hash, self.clock.now()).await?;
        if let Some(user) = &user {
            self.sessions.put(hash, user.clone());
        }
        Ok(user)
    }

    pub async fn me(&self, caller: &Caller) -> Result<Vec<Membership>, Error> {
        Ok(self.store.memberships(caller.user.id, caller.reads).await?)
    }
}
