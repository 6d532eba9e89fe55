//! The `dkp` service: DKP wallets and live loot auctions for MMO guilds.
//!
//! Layers, with dependencies pointing one way (see `docs/architecture.md`):
//! - transport: `http` (the API, the WebSocket feed, operations; the one place
//!   that maps errors to statuses and renders JSON, in `http::wire`), and the
//!   job runner `service::jobs::run`, driven by `app`;
//! - use cases: `service`, which checks tenancy and roles, decides with
//!   `dkp-core`, calls the store and publishes after the commit;
//! - rules: the `dkp-core` crate (points, ledger, auctions, roles; no I/O);
//! - ports: `store` (SQL over PostgreSQL or embedded SQLite), `hub`
//!   (real-time fan-out), `blobs` (images), `shared` (Redis);
//! - `model`: the records and closed sets every layer speaks in.
//!
//! `config` reads the command line, `cli` runs its commands that are not
//! servers (`dkp import`), `app` wires the parts into one
//! `Application`, `telemetry` sets up logs and metrics.

pub mod app;
pub mod blobs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod hub;
pub mod model;
pub mod secret;
pub mod service;
pub mod shared;
pub mod store;
pub mod telemetry;
