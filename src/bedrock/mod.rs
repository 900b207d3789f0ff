//! Bedrock-facing rules: routes of the client contract, model ids and their geo
//! prefixes, regions, the proxy's own error codes and the AWS errors it maps.

pub(crate) mod error;
pub mod eventstream;
pub mod model;
pub mod region;
pub(crate) mod route;
