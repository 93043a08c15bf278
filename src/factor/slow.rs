//! The slow hashes (Argon2id: passwords 19 MiB, recovery codes 8 MiB) on
//! a few threads of their own, in `git2fa serve`.
//!
//! Without a bound, each concurrent log-in hashed on a thread of its own:
//! 40 at once took serve from 9 to 439 MiB, and the memory stayed (each
//! thread's allocator arena kept its block). Here at most `[limits]
//! password_hashes` hashes run at once, each on one of that many threads,
//! so the memory is that many blocks, reused. A password check past the
//! limit is refused at once (the log-in is told the server is busy); the
//! rarer hashes of a signed-in user (new recovery codes) wait their turn,
//! for a bounded time.
//!
//! Other processes (the shims, the admin CLI) hash one password at a time
//! on their own thread: without `configure`, a hash runs where it is asked
//! for.

use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// Hashing threads: one rendezvous channel per worker, so that a job is
/// handed to a worker only if it is waiting for one.
struct Pool(Vec<SyncSender<Job>>);

/// This process's pool, once `configure` made it.
static POOL: OnceLock<Pool> = OnceLock::new();

/// How long a hash that may wait (`Wait::Bounded`) waits for a worker.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Starts `workers` hashing threads for this process (once; later calls
/// change nothing).
pub fn configure(workers: usize) {
    let _ = POOL.get_or_init(|| Pool::new(workers));
}

/// Whether a hash may wait for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// No: refused at once when every worker is busy (log-ins).
    No,
    /// Up to `MAX_WAIT`.
    Bounded,
}

/// Every worker was busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Runs `hash` on a hashing thread (here, without `configure`), and
/// returns what it returned.
pub fn run<T: Send + 'static>(
    wait: Wait,
    hash: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Busy> {
    match POOL.get() {
        Some(pool) => pool.run(wait, hash),
        None => Ok(hash()),
    }
}

impl Pool {
    fn new(workers: usize) -> Pool {
        Pool(
            (0..workers.max(1))
                .filter_map(|i| {
                    let (sender, receiver) = sync_channel::<Job>(0);
                    std::thread::Builder::new()
                        .name(format!("git2fa-hash-{i}"))
                        .spawn(move || {
                            while let Ok(job) = receiver.recv() {
                                job();
                            }
                        })
                        .ok()
                        .map(|_| sender)
                })
                .collect(),
        )
    }

    fn run<T: Send + 'static>(
        &self,
        wait: Wait,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (done, result) = std::sync::mpsc::channel();
        let mut job: Job = Box::new(move || {
            let _ = done.send(hash());
        });
        let deadline = Instant::now() + MAX_WAIT;
        loop {
            for worker in &self.0 {
                match worker.try_send(job) {
                    Ok(()) => return result.recv().map_err(|_| Busy),
                    Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => job = back,
                }
            }
            if wait == Wait::No || Instant::now() >= deadline {
                return Err(Busy);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_workers_a_hash_is_refused_at_once_or_waits() {
        let pool = std::sync::Arc::new(Pool::new(2));
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let held = std::sync::Arc::new(std::sync::Mutex::new(held));
        // Both workers busy until told.
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let (held, pool) = (held.clone(), pool.clone());
                std::thread::spawn(move || {
                    pool.run(Wait::Bounded, move || {
                        let _ = held.lock().unwrap().recv();
                    })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(pool.run(Wait::No, || 1), Err(Busy));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "refused at once"
        );
        // One that may wait gets a worker once one is free.
        let waiting = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.run(Wait::Bounded, || 2))
        };
        std::thread::sleep(Duration::from_millis(100));
        hold.send(()).unwrap();
        hold.send(()).unwrap();
        assert_eq!(waiting.join().unwrap(), Ok(2));
        for b in busy {
            assert_eq!(b.join().unwrap(), Ok(()));
        }
        assert_eq!(pool.run(Wait::No, || 3), Ok(3));
    }
}
