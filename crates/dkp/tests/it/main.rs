//! The one integration test binary: the API-level suite, each scenario run
//! against embedded SQLite and against PostgreSQL over a real connection.

mod services;
mod support;

mod accounts;
mod auctions;
mod bad_input;
mod balancer;
mod blobs;
mod concurrency;
mod guilds;
mod haproxy;
mod idempotency;
mod jobs;
mod ledger;
mod monitoring;
mod operations;
mod origins;
mod pgbouncer;
mod raid_night;
mod realtime;
mod replica;
mod scale_out;
mod sealed;
mod servers;
