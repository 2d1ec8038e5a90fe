//! Integration tests of the client against real loopback upstreams from
//! keepwarm-testkit. Every test checks our counters against what the server
//! itself counted.

mod cancel;
mod connections;
mod errors;
mod exchange;
mod h1_random;
mod http2;
mod limits;
mod never_reused;
mod proxy;
mod reuse;
mod scripted;
mod set_profile;
mod stale;
mod support;
mod tls;
