//! Where git operations come in. Each transport learns who is asking
//! (`identity`) and what for (`ssh_command`, `http_request`, the hook's
//! pushed refs), asks `authz::gate`, and then runs git (`exec`) or writes
//! the refusal in the form its client shows.
//!
//! - `shell`: `git2fa-shell`, OpenSSH's forced command;
//! - `cgi`: `git2fa-http`, the CGI behind nginx or Apache;
//! - `hook`: `git2fa-hook`, pre-receive and update;
//! - `shim`: the small programs git runs, which ask `git2fa serve`
//!   (`ask`) and hand over to the three above when it does not answer;
//! - `exec`: the one place that starts git.

pub mod ask;
pub mod cgi;
pub mod exec;
pub mod hook;
pub mod hook_question;
pub mod http_request;
pub mod identity;
pub mod shell;
pub mod shim;
pub mod ssh_command;
