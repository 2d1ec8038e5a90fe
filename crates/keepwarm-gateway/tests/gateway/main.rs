//! Integration tests of the gateway: a real server on 127.0.0.1:0 in front
//! of testkit mock providers, driven by a real HTTP client.

mod dashboard;
mod errors;
mod http2;
mod lifecycle;
mod management;
mod openapi;
mod prewarm;
mod proxy;
mod registry;
mod reload;
mod resilience;
mod routing;
mod stats_cli;
mod streaming;
mod support;
mod translate;
mod upstream_tls;
