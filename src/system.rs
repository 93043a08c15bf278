//! What every layer leans on: the configuration, reading and writing
//! files safely, time, names, links, syslog.

pub mod atomic_file;
pub mod config;
pub mod files;
pub mod names;
pub mod pages;
pub mod syslog;
pub mod time;
pub mod url;
