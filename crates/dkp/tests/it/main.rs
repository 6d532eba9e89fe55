//! The one integration test binary: the API-level suite, each scenario run
//! against embedded SQLite and against PostgreSQL over a real connection.

mod services;
mod support;

mod accounts;
mod auctions;
mod audit_db;
mod backup;
mod bad_input;
mod balancer;
mod blobs;
mod browser;
mod chaos;
mod characters;
mod concurrency;
mod decay_schedule;
mod guilds;
mod haproxy;
mod idempotency;
mod imports;
mod jobs;
mod ledger;
mod migrations;
mod monitoring;
mod nats;
mod operations;
mod origins;
mod pgbouncer;
mod raid_night;
mod raids;
mod realtime;
mod replica;
mod roles;
mod roster;
mod scale_out;
mod sealed;
mod servers;
mod standings;
mod traces;
mod web;
