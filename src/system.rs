//! What every layer leans on: the configuration, writing files safely,
//! time, names, syslog.

pub mod atomic_file;
pub mod config;
pub mod names;
pub mod syslog;
pub mod time;
