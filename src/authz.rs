//! Authorisation: may this identity do this operation on this repository
//! now? `decision` is the pure rule set (no I/O) and its messages; `gate`
//! gathers the facts from the store and the repository, decides, and
//! writes the audit row; `twofactor` checks a code and opens a 2FA session.

pub mod decision;
pub mod gate;
pub mod messages;
pub mod password;
pub mod security_keys;
pub mod twofactor;
