//! Idempotency, end to end. A point-moving request may carry an
//! `Idempotency-Key`; the same request sent again under it gets its first
//! answer again, and another request under the same key is refused
//! (`idempotency_key_reused`).
//!
//! - What identifies a request is its fingerprint: the method, the path the
//!   request was sent to and its JSON body (object keys sorted, so equal
//!   bodies fingerprint equal), hashed; made here from what the transport
//!   hands over, never built by hand per route.
//! - A key belongs to its caller: the same key from two users is two keys.
//! - The first answer is kept as a record (`model::Answer`) in the
//!   transaction of the change it answers (the store's `record_entry` and
//!   `place_bids` write it); a refusal of the request's own making is kept
//!   too (`remember_refusal` below), so a repeat is refused the same way.
//! - Within one batch of bids the same key may come twice: the first is
//!   applied and the repeat given its answer (`in_batch`).
//! - Work the service does for itself (a job's ledger entry) runs under a key
//!   no client can send, so a job run twice writes once.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Error, Service};
use crate::model::{Answer, IdempotencyClaim};
use crate::store::Ctx;

/// A request's `Idempotency-Key` with its fingerprint, before it is bound to a caller.
#[derive(Clone, Debug)]
pub struct Request {
    key: String,
    fingerprint: Vec<u8>,
}

impl Request {
    /// The key sent with the request to `path` by `method` with `body`;
    /// refused unless it is 1-255 visible ASCII characters.
    pub fn new(key: &str, method: &str, path: &str, body: &Value) -> Result<Request, Error> {
        dkp_core::names::check_idempotency_key(key)?;
        // serde_json keeps object keys sorted, so equal bodies print equal.
        Ok(Request { key: key.to_owned(), fingerprint: fingerprint(&format!("{method} {path}\n{body}")) })
    }

    /// The key as `user_id`'s.
    pub fn claim(self, user_id: Uuid) -> IdempotencyClaim {
        IdempotencyClaim { user_id, key: self.key, fingerprint: self.fingerprint }
    }

    /// The fingerprint, as hex.
    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

fn fingerprint(request: &str) -> Vec<u8> {
    Sha256::digest(request.as_bytes()).to_vec()
}

/// The key under which a job writes its effect: with a space, which no
/// client's key can hold, so it is the job's alone.
pub fn job_claim(user_id: Uuid, job_id: Uuid) -> IdempotencyClaim {
    let key = format!("job {job_id}");
    IdempotencyClaim { user_id, fingerprint: fingerprint(&key), key }
}

/// What to do with one request of a batch, by its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InBatch {
    /// The first under its key, or keyless: apply it.
    Apply,
    /// The same request as the one at this index: give it that one's answer.
    RepeatOf(usize),
    /// Another request under a key met earlier in the batch: refuse it.
    Reused,
}

/// Sorts the requests of a batch by their keys.
pub fn in_batch<'a>(claims: impl IntoIterator<Item = Option<&'a IdempotencyClaim>>) -> Vec<InBatch> {
    let mut seen: HashMap<(Uuid, &str), (&[u8], usize)> = HashMap::new();
    let mut plan = Vec::new();
    for (index, claim) in claims.into_iter().enumerate() {
        let Some(claim) = claim else {
            plan.push(InBatch::Apply);
            continue;
        };
        plan.push(match seen.get(&(claim.user_id, claim.key.as_str())) {
            Some((fingerprint, first)) if *fingerprint == claim.fingerprint.as_slice() => InBatch::RepeatOf(*first),
            Some(_) => InBatch::Reused,
            None => {
                seen.insert((claim.user_id, claim.key.as_str()), (claim.fingerprint.as_slice(), index));
                InBatch::Apply
            }
        });
    }
    plan
}

impl Service {
    /// Keeps a refusal as the answer under the request's key (unless an
    /// answer is kept already), so that a repeat is refused the same way.
    /// Faults of the moment are not kept: a repeat may then succeed.
    pub(super) async fn remember_refusal(
        &self,
        claim: Option<&IdempotencyClaim>,
        error: &crate::store::StoreError,
        ctx: &Ctx,
    ) -> Result<(), Error> {
        let (Some(claim), Some(refusal)) = (claim, super::error::refusal(error)) else { return Ok(()) };
        Ok(self.store.remember(claim, &Answer::Refused(refusal), ctx).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(user: u128, key: &str, body: &str) -> IdempotencyClaim {
        Request::new(key, "POST", "/x", &Value::String(body.into())).unwrap().claim(Uuid::from_u128(user))
    }

    #[test]
    fn equal_requests_fingerprint_equal_and_any_difference_differs() {
        let body = serde_json::json!({"b": 1, "a": 2});
        let same = serde_json::json!({"a": 2, "b": 1});
        let a = Request::new("k", "POST", "/p", &body).unwrap();
        assert_eq!(a.fingerprint, Request::new("k", "POST", "/p", &same).unwrap().fingerprint);
        assert_ne!(a.fingerprint, Request::new("k", "POST", "/q", &body).unwrap().fingerprint);
        assert_ne!(a.fingerprint, Request::new("k", "PUT", "/p", &body).unwrap().fingerprint);
        assert!(Request::new("", "POST", "/p", &body).is_err(), "an empty key is refused");
    }

    #[test]
    fn a_repeat_in_a_batch_gets_the_first_answer_and_another_request_is_refused() {
        let (first, repeat, other, theirs) =
            (claim(1, "k", "a"), claim(1, "k", "a"), claim(1, "k", "b"), claim(2, "k", "b"));
        let plan = in_batch([Some(&first), None, Some(&repeat), Some(&other), Some(&theirs)]);
        assert_eq!(plan, [InBatch::Apply, InBatch::Apply, InBatch::RepeatOf(0), InBatch::Reused, InBatch::Apply]);
    }

    #[test]
    fn a_jobs_key_is_no_clients_key() {
        let job = job_claim(Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(dkp_core::names::check_idempotency_key(&job.key).is_err());
    }
}
