//! The line every bidding benchmark ends with, so that hot-lot and
//! raid-night compare column for column: what the bidders saw (answers by
//! kind, the time from sending an accepted bid to its 201) and what the
//! servers did over the run (bid batches committed, retried, failed), from
//! their metrics.

use std::fmt;
use std::time::Instant;

use crate::metrics::Change;
use crate::quantile;

/// The answers bidders got.
#[derive(Debug, Default)]
pub struct Answers {
    /// Milliseconds from sending each accepted bid to its 201.
    pub accepted: Vec<f64>,
    /// Bids refused as the bidder's own fault: too low, a closed lot (422, 409).
    pub refused: u64,
    /// Answers 500 and above.
    pub server_errors: u64,
    /// Anything else: another status, or no answer at all.
    pub other: u64,
}

/// How a bid was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused,
    ServerError,
    Other,
}

impl Outcome {
    /// The kind of answer a status is (`None`: the request got no answer).
    pub fn of(status: Option<u16>) -> Outcome {
        match status {
            Some(201) => Outcome::Accepted,
            Some(409 | 422) => Outcome::Refused,
            Some(500..) => Outcome::ServerError,
            _ => Outcome::Other,
        }
    }
}

impl Answers {
    /// Counts one answer to a bid sent at `sent`.
    pub fn record(&mut self, outcome: Outcome, sent: Instant) {
        match outcome {
            Outcome::Accepted => self.accepted.push(sent.elapsed().as_secs_f64() * 1000.0),
            Outcome::Refused => self.refused += 1,
            Outcome::ServerError => self.server_errors += 1,
            Outcome::Other => self.other += 1,
        }
    }

    /// Adds another bidder's answers to these.
    pub fn merge(&mut self, mut other: Answers) {
        self.accepted.append(&mut other.accepted);
        self.refused += other.refused;
        self.server_errors += other.server_errors;
        self.other += other.other;
    }

    /// Sorts the latencies, for quantiles.
    pub fn sort(&mut self) {
        self.accepted.sort_by(f64::total_cmp);
    }
}

/// What the servers did with bids over a run, from their metrics.
#[derive(Debug, Clone, Copy)]
pub struct BidWork {
    /// Transactions of bid batches committed, and retried on a conflict.
    pub commits: f64,
    pub retries: f64,
    /// Bids in all batches, and the batches.
    pub batched: f64,
    pub batches: f64,
    /// Transactions of any kind that failed after their last attempt.
    pub failures: f64,
}

impl BidWork {
    pub fn over(change: &Change) -> BidWork {
        BidWork {
            commits: change.labelled("dkp_tx_commits_total", "op=\"bid\""),
            retries: change.labelled("dkp_tx_retries_total", "op=\"bid\""),
            batched: change.total("dkp_sequencer_batch_size_sum"),
            batches: change.total("dkp_sequencer_batch_size_count"),
            failures: change.total("dkp_tx_failures_total"),
        }
    }
}

/// `part / whole`, 0 when there is no whole.
fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// One line of figures for one run.
pub struct Row<'a> {
    pub bench: &'static str,
    pub store: &'static str,
    /// `instances=N via=…`, from the deployment.
    pub deployment: String,
    pub bidders: usize,
    pub lots: usize,
    /// Seconds the bidding took.
    pub elapsed: f64,
    /// With the latencies sorted.
    pub answers: &'a Answers,
    pub work: BidWork,
}

impl fmt::Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (answers, work, seconds) = (self.answers, self.work, self.elapsed.max(0.001));
        write!(
            f,
            "{}: store={} {} bidders={} lots={} accepted/s={:.0} refused/s={:.0} 5xx={} other={} \
             p50_ms={:.2} p99_ms={:.2} retries/commit={:.4} commits/s={:.0} bids/commit={:.1} tx_failures={}",
            self.bench,
            self.store,
            self.deployment,
            self.bidders,
            self.lots,
            answers.accepted.len() as f64 / seconds,
            answers.refused as f64 / seconds,
            answers.server_errors,
            answers.other,
            quantile(&answers.accepted, 0.5),
            quantile(&answers.accepted, 0.99),
            ratio(work.retries, work.commits),
            work.commits / seconds,
            ratio(work.batched, work.batches),
            work.failures,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_into_accepted_refused_server_errors_and_the_rest() {
        assert_eq!(Outcome::of(Some(201)), Outcome::Accepted);
        assert_eq!(Outcome::of(Some(422)), Outcome::Refused);
        assert_eq!(Outcome::of(Some(409)), Outcome::Refused);
        assert_eq!(Outcome::of(Some(503)), Outcome::ServerError);
        assert_eq!(Outcome::of(Some(429)), Outcome::Other);
        assert_eq!(Outcome::of(None), Outcome::Other);
    }

    #[test]
    fn the_row_divides_by_commits_and_batches_and_survives_none() {
        let mut answers = Answers::default();
        answers.record(Outcome::Accepted, Instant::now());
        answers.record(Outcome::ServerError, Instant::now());
        let work = BidWork { commits: 4.0, retries: 1.0, batched: 10.0, batches: 4.0, failures: 0.0 };
        let row = Row {
            bench: "raid-night",
            store: "sqlite",
            deployment: "instances=1 via=direct".into(),
            bidders: 2,
            lots: 3,
            elapsed: 2.0,
            answers: &answers,
            work,
        };
        let line = row.to_string();
        assert!(line.contains(" 5xx=1 "), "{line}");
        assert!(line.contains(" retries/commit=0.2500 commits/s=2 bids/commit=2.5 "), "{line}");
        let idle = BidWork { commits: 0.0, retries: 0.0, batched: 0.0, batches: 0.0, failures: 0.0 };
        assert!(Row { work: idle, ..row }.to_string().contains("retries/commit=0.0000"));
    }
}
