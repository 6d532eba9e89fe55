//! The `dkp` service: DKP wallets and live loot auctions for MMO guilds.
//!
//! Layers, with dependencies pointing one way:
//! - transport: `http` (API and operations), `config` (command line);
//! - use cases: `service`, which checks tenancy and roles and calls the ports;
//! - rules: the `dkp-core` crate (points, ledger, roles; no I/O);
//! - ports: `store` (`Store`, over PostgreSQL or embedded SQLite), `blobs`
//!   (uploaded images, in a local folder or an S3-compatible store).
//!
//! `app` wires them into one `Application`; `telemetry` sets up logs and metrics.

pub mod app;
pub mod blobs;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod jobs;
pub mod limits;
pub mod service;
pub mod shared;
pub mod store;
pub mod telemetry;
