//! What the benchmarks set up before they measure, through the public API
//! as a guild's officers would: accounts, guilds, members, pools, points and
//! lots. Names carry a tag of the run, so runs can share a database.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::harness::Http;

const PASSWORD: &str = "bench-password";

/// Registrations and logins in flight at once: each costs the server a
/// deliberately slow password hash.
const HASHES_AT_ONCE: usize = 4;

/// Twelve hex digits that tell this run's names from another's.
pub fn run_tag() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos ^ (u64::from(std::process::id()) << 36);
    format!("{:012x}", mixed & 0xffff_ffff_ffff)
}

/// A string from a JSON answer, or an error naming where it was expected.
pub fn text(value: &Value, what: &str) -> anyhow::Result<String> {
    value.as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("the answer has no {what}: {value}"))
}

/// How far apart bids must be on the lots `Officer::lot` opens (hundredths).
pub const INCREMENT: i64 = 1;

/// Points as the API writes them, from hundredths (not negative).
pub fn amount(hundredths: i64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Hundredths from points as the API writes them (`"12.50"`, `"3"`; not negative).
pub fn hundredths(points: &str) -> Option<i64> {
    if points.starts_with('-') {
        return None;
    }
    let (whole, fraction) = points.split_once('.').unwrap_or((points, ""));
    if fraction.len() > 2 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fraction)
}

/// Registers `name` and logs in: the session token.
pub async fn account(http: &Http, name: &str) -> anyhow::Result<String> {
    let credentials = json!({"username": name, "password": PASSWORD});
    http.expect("POST", "/api/v1/auth/register", None, credentials.clone(), 201).await?;
    let reply = http.expect("POST", "/api/v1/auth/login", None, credentials, 200).await?;
    text(&reply["token"], "token")
}

/// Registers `name` without logging in.
pub async fn register(http: &Http, name: &str) -> anyhow::Result<()> {
    let credentials = json!({"username": name, "password": PASSWORD});
    http.expect("POST", "/api/v1/auth/register", None, credentials, 201).await?;
    Ok(())
}

/// Runs `work` on each of `items`, a few at a time, in order.
pub async fn few_at_a_time<T, F, R>(items: Vec<T>, work: impl Fn(T) -> F) -> anyhow::Result<Vec<R>>
where
    F: Future<Output = anyhow::Result<R>>,
{
    let results: Vec<anyhow::Result<R>> =
        futures_util::stream::iter(items).map(work).buffered(HASHES_AT_ONCE).collect().await;
    results.into_iter().collect()
}

/// What an officer (here: the guild's owner) does to set a guild up.
#[derive(Clone)]
pub struct Officer {
    pub http: Http,
    pub token: String,
}

impl Officer {
    /// A POST expected to answer 201: the reply.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send("POST", path, body, 201).await
    }

    /// A PUT expected to answer 200: the reply.
    pub async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send("PUT", path, body, 200).await
    }

    /// Setup is not measured, so a write the server refused as contended
    /// (503: "try again") is sent again, as a client would, a few times.
    async fn send(&self, method: &str, path: &str, body: Value, expected: u16) -> anyhow::Result<Value> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (status, reply) = self.http.send(method, path, Some(&self.token), Some(&body)).await?;
            match status {
                _ if status == expected => return Ok(reply),
                503 if attempt < 10 => tokio::time::sleep(Duration::from_millis(20 * attempt)).await,
                _ => bail!("{method} {path}: expected {expected}, got {status} (attempt {attempt}): {reply}"),
            }
        }
    }

    pub async fn guild(&self, slug: &str) -> anyhow::Result<()> {
        self.post("/api/v1/guilds", json!({"name": "Bench", "slug": slug})).await?;
        Ok(())
    }

    /// Adds a registered user as a member: the member's id.
    pub async fn member(&self, slug: &str, username: &str) -> anyhow::Result<String> {
        let body = json!({"username": username, "role": "member"});
        let reply = self.post(&format!("/api/v1/guilds/{slug}/members"), body).await?;
        text(&reply["member"]["id"], "member id")
    }

    /// Opens a pool: its id.
    pub async fn pool(&self, slug: &str, name: &str) -> anyhow::Result<String> {
        let reply = self.post(&format!("/api/v1/guilds/{slug}/pools"), json!({"name": name})).await?;
        text(&reply["pool"]["id"], "pool id")
    }

    /// Awards `amount` to each member, 500 to an entry.
    pub async fn award(&self, slug: &str, pool: &str, members: &[String], amount: &str) -> anyhow::Result<()> {
        for chunk in members.chunks(500) {
            let award = json!({"member_ids": chunk, "amount": amount, "reason": "bench"});
            self.post(&format!("/api/v1/guilds/{slug}/pools/{pool}/awards"), award).await?;
        }
        Ok(())
    }

    /// What the wallets of the pools at `pools` (`/api/v1/guilds/{slug}/pools/{id}`)
    /// hold together, in hundredths, from their standings.
    pub async fn held(&self, pools: impl IntoIterator<Item = &str>) -> anyhow::Result<i64> {
        let mut held = 0;
        for pool in pools {
            let path = format!("{pool}/standings");
            let (status, reply) = self.http.send("GET", &path, Some(&self.token), None).await?;
            if status != 200 {
                bail!("GET {path}: {status} {reply}");
            }
            for standing in reply["standings"].as_array().into_iter().flatten() {
                let balance = text(&standing["balance"], "balance")?;
                held += hundredths(&balance).ok_or_else(|| anyhow::anyhow!("a balance of {balance}"))?;
            }
        }
        Ok(held)
    }

    /// Opens a lot in `pool`: an open auction of an hour, bids `INCREMENT`
    /// apart, unless `terms` say otherwise. The lot's id.
    pub async fn lot(&self, slug: &str, pool: &str, terms: &Value) -> anyhow::Result<String> {
        let mut lot = json!({"pool_id": pool, "item": {"name": "Bench item"}, "mode": "open",
                             "min_bid": "0.01", "increment": amount(INCREMENT), "duration_s": 3600});
        for (key, value) in terms.as_object().cloned().unwrap_or_default() {
            lot[key] = value;
        }
        let reply = self.post(&format!("/api/v1/guilds/{slug}/lots"), lot).await?;
        text(&reply["lot"]["id"], "lot id")
    }
}

/// A guild with funded bidders and one lot.
pub struct Stage {
    pub slug: String,
    pub owner: String,
    pub bidders: Vec<String>,
    pub lot_id: String,
}

/// Registers `bidders` users (and an owner), funds each with a billion
/// points, and opens one lot with the given terms.
pub async fn stage(http: &Http, bidders: usize, lot_terms: Value) -> anyhow::Result<Stage> {
    let tag = run_tag();
    let owner = Officer { http: http.clone(), token: account(http, &format!("own{tag}")).await? };
    let slug = format!("b{tag}");
    owner.guild(&slug).await?;
    let pool = owner.pool(&slug, "Main").await?;
    let names: Vec<String> = (0..bidders).map(|n| format!("u{n}x{tag}")).collect();
    let tokens = few_at_a_time(names.clone(), |name| async move { account(http, &name).await }).await?;
    let mut members = Vec::new();
    for name in &names {
        members.push(owner.member(&slug, name).await?);
    }
    owner.award(&slug, &pool, &members, "1000000000").await?;
    let lot_id = owner.lot(&slug, &pool, &lot_terms).await?;
    Ok(Stage { slug, owner: owner.token, bidders: tokens, lot_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_go_to_hundredths_and_back() {
        assert_eq!(hundredths("12.50"), Some(1250));
        assert_eq!(hundredths("3"), Some(300));
        assert_eq!(hundredths("0.7"), Some(70));
        assert_eq!(hundredths("1.234"), None);
        assert_eq!(hundredths("x"), None);
        assert_eq!(hundredths("-0.05"), None);
        assert_eq!(amount(1250), "12.50");
        assert_eq!(amount(7), "0.07");
    }

    #[test]
    fn a_run_tag_is_twelve_hex_digits() {
        let tag = run_tag();
        assert_eq!(tag.len(), 12);
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
