//! The benchmark cases, one module per family.

pub(crate) mod acquire;
pub(crate) mod criterion;
pub(crate) mod gateway;
pub(crate) mod h2stream;
pub(crate) mod idle;
pub(crate) mod instructions;
pub(crate) mod latency;
pub(crate) mod load;
