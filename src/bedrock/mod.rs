//! Bedrock-facing rules: routes of the client contract, model ids and their geo
//! prefixes, regions, the request headers forwarded on InvokeModel calls, the proxy's own
//! error codes and the AWS errors it maps.

pub(crate) mod error;
pub mod eventstream;
pub(crate) mod headers;
pub mod model;
pub mod region;
pub(crate) mod route;
