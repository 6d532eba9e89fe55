//! The job runner of `dkp serve`: closes lots whose end has passed, at most
//! a poll interval late. The lot row is the job: closing is a guarded
//! transition, so any number of runners (instances, workers) may race on the
//! same lot and it is settled once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::service::Service;
use crate::store::{Ctx, Ending};

/// How often due lots are looked for.
pub const POLL: Duration = Duration::from_millis(250);

/// Runs until `stop` turns true.
pub async fn run(service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                close_due(&service).await;
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// Closes every lot that is due now; returns how many this call closed.
pub async fn close_due(service: &Service) -> usize {
    if let Ok(open) = service.store.open_lot_count().await {
        metrics::gauge!("dkp_lots_open").set(open as f64);
    }
    let now = service.clock.now();
    let due = match service.store.due_lots(now, 100).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(error = %error, "cannot list due lots");
            return 0;
        }
    };
    let mut closed = 0;
    for (guild_id, lot_id) in due {
        let ctx = Ctx { actor: None, request_id: format!("job:close:{lot_id}"), now: service.clock.now() };
        match service.finish_lot(guild_id, lot_id, Ending::Due, "", &ctx).await {
            Ok(_) => closed += 1,
            // Another closer won, or a late bid moved the end: nothing to do.
            Err(crate::error::ApiError::Conflict { .. }) => {}
            Err(error) => tracing::warn!(lot_id = %lot_id, error = %error, "closing a lot failed; it is retried"),
        }
    }
    closed
}
