//! Password hashing: argon2id with the crate's defaults (19 MiB, 2 passes),
//! on a few threads of its own, one per core, each with its 19 MiB of blocks
//! allocated once and reused for every hash it computes.
//!
//! Why: a hash that allocates its own blocks hands 19 MiB back to the
//! allocator of whichever thread ran it; the C allocator keeps such blocks
//! in per-thread arenas rather than returning them, so a burst of logins on
//! the runtime's many blocking threads left hundreds of MiB resident for
//! good. Here memory stays at one buffer per hasher, and at most that many
//! hashes run at once; the others wait their turn in the queue.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use super::Error;

/// Work for a hasher, given its blocks.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The hashing threads of one service; they end when it is dropped.
pub struct Hashers {
    jobs: mpsc::Sender<Job>,
}

impl Hashers {
    /// Starts one hasher per core.
    pub fn start() -> Hashers {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for n in 0..cores {
            let queue = queue.clone();
            let started = std::thread::Builder::new().name(format!("dkp-hasher-{n}")).spawn(move || work(&queue));
            if let Err(error) = started {
                tracing::error!(error = %error, "cannot start a password hashing thread");
            }
        }
        Hashers { jobs }
    }

    /// A new salted hash of `password`, in the PHC string form.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        self.run(move |blocks| hash(&password, blocks)).await?
    }

    /// Whether `password` matches `stored`; with no stored hash (an unknown
    /// user) it hashes all the same, so that the time tells nothing.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Error> {
        self.run(move |blocks| match stored {
            Some(stored) => matches(&password, &stored, blocks),
            None => {
                let _ = hash(&password, blocks);
                false
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |blocks| {
            let _ = answer.send(work(blocks));
        });
        self.jobs.send(job).map_err(|_| Error::internal(anyhow::anyhow!("no password hashing thread runs")))?;
        answered.await.map_err(|_| Error::internal(anyhow::anyhow!("a password hashing thread stopped")))
    }
}

/// A hasher: runs jobs until the service is gone.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut blocks = Vec::new();
    loop {
        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            Ok(job) => job(&mut blocks),
            Err(_) => return,
        }
    }
}

/// Runs `argon2` on the kept blocks when they are large enough for its
/// parameters (they are, for every hash this service writes); a stored hash
/// of larger parameters gets blocks of its own, dropped after.
fn fill(argon2: &Argon2, password: &str, salt: &[u8], out: &mut [u8], kept: &mut Vec<Block>) -> Result<(), Error> {
    let needed = argon2.params().block_count();
    let default = Params::default().block_count();
    if kept.len() < needed.min(default) {
        kept.resize(default, Block::default());
    }
    let result = if kept.len() >= needed {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut kept[..])
    } else {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, vec![Block::default(); needed])
    };
    result.map_err(|e| Error::internal(anyhow::anyhow!("hashing: {e}")))
}

fn hash(password: &str, blocks: &mut Vec<Block>) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::internal(anyhow::anyhow!("no randomness: {e}")))?;
    let argon2 = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    fill(&argon2, password, &salt, &mut out, blocks)?;
    let fault = |e: argon2::password_hash::Error| Error::internal(anyhow::anyhow!("hash form: {e}"));
    let salt = SaltString::encode_b64(&salt).map_err(fault)?;
    let hash = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon2.params()).map_err(fault)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(fault)?),
    };
    Ok(hash.to_string())
}

fn matches(password: &str, stored: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else { return false };
    let Ok(version) = hash.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&hash) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    // `Output` compares in constant time.
    fill(&argon2, password, salt, &mut out, blocks).is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

#[cfg(test)]
mod tests {
    use argon2::PasswordHasher;

    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_reads_hashes_made_before() {
        let hashers = Hashers::start();
        let stored = hashers.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(hashers.verify("correct horse".into(), Some(stored.clone())).await.unwrap());
        assert!(!hashers.verify("correct horsf".into(), Some(stored)).await.unwrap());
        assert!(!hashers.verify("anything".into(), None).await.unwrap());
        assert!(!hashers.verify("anything".into(), Some("not a hash".into())).await.unwrap());
        // As the password-hash crate's own hasher wrote them, with other parameters too.
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        for params in [Params::default(), Params::new(32 * 1024, 1, 1, None).unwrap()] {
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let earlier = argon2.hash_password(b"correct horse", &salt).unwrap().to_string();
            assert!(hashers.verify("correct horse".into(), Some(earlier)).await.unwrap());
        }
    }
}
