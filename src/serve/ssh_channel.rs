//! An SSH channel as the blocking streams git and the shell's code expect:
//! the client's data as a reader (or a line read without holding a thread),
//! the channel's output and error as writers, and git run on them.

use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use russh::ChannelId;
use russh::server::Handle;
use tokio::sync::mpsc;

use crate::system::time::format_duration;
use crate::transport::exec::GitInvocation;

/// Starts git with the channel as its standard streams and returns its
/// exit code once it ended and all its output was sent.
pub fn run_git(
    invocation: &GitInvocation,
    mut stdin: BufReader<ChannelInput>,
    (stdout, stderr): (&ChannelOutput, &ChannelOutput),
    max: i64,
) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut child = invocation
        .command()
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (Some(mut child_in), Some(mut child_out), Some(mut child_err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other("no pipes to git"));
    };
    // Input runs on its own: it ends at the client's EOF, or when git has
    // gone and the pipe breaks, or when the channel closes.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdin, &mut child_in);
    });
    // When the client is gone, git is stopped: it would otherwise block
    // on a full pipe that nobody reads.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let stop_git = move || {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    };
    // No connection keeps git for longer than `max_git_duration`.
    let mut timeout_err = stderr.clone();
    let on_timeout = move || {
        log::warn!("stopped a git operation after {}", format_duration(max));
        let _ = write!(
            timeout_err,
            "\ngit2fa: this git connection ran for {}, the longest allowed here; it was closed. Run the command again.\n",
            format_duration(max)
        );
    };
    let limit = Duration::from_secs(max.max(1) as u64);
    let status = std::thread::scope(|scope| {
        let mut err_out = stderr.clone();
        scope.spawn(move || {
            if pump(&mut child_err, &mut err_out).is_err() {
                stop_git();
            }
        });
        let waiter =
            scope.spawn(|| crate::transport::exec::wait_at_most(&mut child, limit, on_timeout));
        let mut out = stdout.clone();
        if pump(&mut child_out, &mut out).is_err() {
            stop_git();
        }
        drop(child_out);
        waiter.join()
    });
    let status = status.map_err(|_| std::io::Error::other("the wait for git panicked"))??;
    Ok(status.code().map_or(255, |c| c as u32))
}

pub fn pump(from: &mut dyn Read, to: &mut dyn Write) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..n])?;
    }
}

/// The client's data: read a line asynchronously (a `2fa verify` code),
/// or, for git, as a blocking reader.
pub struct ChannelInput {
    pub receiver: mpsc::UnboundedReceiver<Vec<u8>>,
    /// Completes when the channel is closed or the connection dropped (not
    /// at the input's EOF): the client is gone.
    pub gone: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Bytes queued and not read yet, shared with the handler.
    pub pending: Arc<AtomicUsize>,
    pub runtime: tokio::runtime::Handle,
    pub chunk: Vec<u8>,
    pub at: usize,
}

impl ChannelInput {
    /// One line of at most `max` bytes, without holding a thread while it
    /// waits. `Ok(None)`: the input ended first. Past `timeout`, an error.
    pub async fn read_line(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Option<String>, String> {
        let mut line = Vec::new();
        let read = tokio::time::timeout(timeout, async {
            loop {
                if self.at >= self.chunk.len() {
                    match self.receiver.recv().await {
                        Some(chunk) => {
                            self.chunk = chunk;
                            self.at = 0;
                            continue;
                        }
                        None => return,
                    }
                }
                let byte = self.chunk[self.at];
                self.at += 1;
                self.pending.fetch_sub(1, Ordering::SeqCst);
                line.push(byte);
                if byte == b'\n' || line.len() >= max {
                    return;
                }
            }
        })
        .await;
        match read {
            Err(_) => Err(format!("no code within {} minutes", timeout.as_secs() / 60)),
            Ok(()) if line.is_empty() => Ok(None),
            Ok(()) => Ok(Some(String::from_utf8_lossy(&line).into_owned())),
        }
    }
}

impl Read for ChannelInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.runtime.block_on(self.receiver.recv()) {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        self.pending.fetch_sub(n, Ordering::SeqCst);
        Ok(n)
    }
}

/// Standard output (or, with `ext = Some(1)`, standard error) of a channel
/// as a blocking writer.
#[derive(Clone)]
pub struct ChannelOutput {
    pub runtime: tokio::runtime::Handle,
    pub handle: Handle,
    pub channel: ChannelId,
    pub ext: Option<u32>,
}

impl Write for ChannelOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let data = buf.to_vec();
        let sent = self.runtime.block_on(async {
            match self.ext {
                None => self.handle.data(self.channel, data).await,
                Some(ext) => self.handle.extended_data(self.channel, ext, data).await,
            }
        });
        match sent {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
