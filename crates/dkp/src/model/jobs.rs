//! Jobs: work a runner carries out after the change that asked for it.

use serde_json::Value;
use uuid::Uuid;

use super::Ts;

/// The kinds of job, each with its one name in the job table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Closes a lot once it is due (again later if a bid extended it).
    CloseLot,
    /// Shrinks a pool's balances by a percent.
    Decay,
    /// Runs one period of a pool's decay schedule, and plans the next.
    ScheduledDecay,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::CloseLot => "close_lot",
            JobKind::Decay => "decay",
            JobKind::ScheduledDecay => "scheduled_decay",
        }
    }

    pub fn parse(text: &str) -> Option<JobKind> {
        [JobKind::CloseLot, JobKind::Decay, JobKind::ScheduledDecay].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A job to write.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: JobKind,
    /// At most one job per key.
    pub dedup_key: Option<String>,
    pub guild_id: Option<Uuid>,
    pub payload: Value,
    pub run_at: Ts,
}

/// A job as stored.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: Uuid,
    /// The kind's name as stored (see `JobKind`).
    pub kind: String,
    pub guild_id: Option<Uuid>,
    pub payload: Value,
    pub state: String,
    pub run_at: Ts,
    pub attempts: i32,
    pub result: Option<Value>,
    pub last_error: Option<String>,
    pub created_at: Ts,
    pub finished_at: Option<Ts>,
}

/// How a run of a job ended.
#[derive(Clone, Debug)]
pub enum JobEnd {
    /// Finished, with what it came to.
    Done(Value),
    /// Nothing to do yet: run it again at this time (not counted as a failure).
    Later(Ts),
    /// Failed for now: run it again at this time.
    Retry { at: Ts, error: String },
    /// Failed for good.
    Failed(String),
}
