//! Reading the server's own figures from its Prometheus text (`GET
//! /metrics`): a sample summed over its label sets, or over the label sets
//! that carry one label, and the change between two reads taken around a run.

/// The sample lines of Prometheus text: name, labels (between the braces,
/// without them) and value. Comments and lines that do not parse are skipped.
fn samples(text: &str) -> impl Iterator<Item = (&str, &str, f64)> {
    text.lines().filter(|line| !line.starts_with('#')).filter_map(|line| {
        let (series, value) = line.trim_end().rsplit_once(' ')?;
        let value = value.parse::<f64>().ok()?;
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end().trim_end_matches('}')),
            None => (series.trim_end(), ""),
        };
        Some((name, labels, value))
    })
}

/// The sum of a sample over all its label sets.
pub fn counter_total(metrics: &str, name: &str) -> f64 {
    samples(metrics).filter(|(n, _, _)| *n == name).map(|(_, _, value)| value).sum()
}

/// The sum of a sample over the label sets that hold `label`, written as
/// Prometheus writes it (`op="bid"`).
pub fn labelled_total(metrics: &str, name: &str, label: &str) -> f64 {
    samples(metrics)
        .filter(|(n, labels, _)| *n == name && labels.split(',').any(|l| l == label))
        .map(|(_, _, value)| value)
        .sum()
}

/// Two reads of the metrics of the same servers, before and after a run.
pub struct Change {
    pub before: String,
    pub after: String,
}

impl Change {
    /// How much a sample grew over the run, over all its label sets.
    pub fn total(&self, name: &str) -> f64 {
        counter_total(&self.after, name) - counter_total(&self.before, name)
    }

    /// How much a sample grew over the run, over the label sets that hold `label`.
    pub fn labelled(&self, name: &str, label: &str) -> f64 {
        labelled_total(&self.after, name, label) - labelled_total(&self.before, name, label)
    }

    /// The bound of the first bucket of a histogram that holds the share `q`
    /// of what it recorded over the run (the quantile to a bucket's width);
    /// `None` when it recorded nothing.
    pub fn bucket_quantile(&self, histogram: &str, q: f64) -> Option<f64> {
        let name = format!("{histogram}_bucket");
        let mut bounds: Vec<(f64, &str)> = samples(&self.after)
            .filter(|(n, _, _)| *n == name)
            .filter_map(|(_, labels, _)| {
                let bound = labels.split(',').find_map(|l| l.strip_prefix("le=\""))?.trim_end_matches('"');
                Some((if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? }, labels))
            })
            .collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let grown = |labels: &str| self.labelled(&name, labels);
        let all = grown(bounds.last()?.1);
        if all <= 0.0 {
            return None;
        }
        bounds.iter().find(|(_, labels)| grown(labels) >= q * all).map(|(bound, _)| *bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE dkp_tx_retries_total counter\n\
        dkp_tx_retries_total{op=\"bid\"} 3\n\
        dkp_tx_retries_total{op=\"transfer\"} 4\n\
        dkp_tx_retries_total_other 100\n\
        dkp_sequencer_batch_size_sum 96\n\
        dkp_sequencer_batch_size_count 3\n";

    #[test]
    fn a_counter_is_summed_over_its_label_sets_and_no_other_name() {
        assert_eq!(counter_total(TEXT, "dkp_tx_retries_total"), 7.0);
        assert_eq!(counter_total(TEXT, "dkp_sequencer_batch_size_sum"), 96.0);
        assert_eq!(counter_total(TEXT, "dkp_missing_total"), 0.0);
    }

    #[test]
    fn a_labelled_total_keeps_the_label_sets_holding_the_label() {
        assert_eq!(labelled_total(TEXT, "dkp_tx_retries_total", "op=\"bid\""), 3.0);
        assert_eq!(labelled_total(TEXT, "dkp_tx_retries_total", "op=\"bi\""), 0.0);
    }

    #[test]
    fn a_quantile_is_the_first_bucket_holding_its_share_of_what_the_run_added() {
        let before = "w_bucket{le=\"0.01\"} 10\nw_bucket{le=\"0.02\"} 10\nw_bucket{le=\"+Inf\"} 10\n";
        let after = "w_bucket{le=\"0.01\"} 60\nw_bucket{le=\"0.02\"} 109\nw_bucket{le=\"+Inf\"} 110\n";
        let change = Change { before: before.into(), after: after.into() };
        assert_eq!(change.bucket_quantile("w", 0.5), Some(0.01));
        assert_eq!(change.bucket_quantile("w", 0.99), Some(0.02));
        assert_eq!(change.bucket_quantile("w", 1.0), Some(f64::INFINITY));
        assert_eq!(change.bucket_quantile("x", 0.5), None);
    }

    #[test]
    fn a_change_is_the_growth_between_the_two_reads() {
        let change = Change { before: "x{op=\"bid\"} 2\ny 1\n".into(), after: "x{op=\"bid\"} 5\ny 1\n".into() };
        assert_eq!(change.labelled("x", "op=\"bid\""), 3.0);
        assert_eq!(change.total("y"), 0.0);
    }
}
