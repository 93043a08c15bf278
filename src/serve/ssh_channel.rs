//! An SSH channel as the blocking streams git and the shell's code expect:
//! the client's data as a reader (or a line read without holding a thread),
//! the channel's output and error as writers, and git run on them.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use russh::ChannelId;
use russh::server::Handle;
use tokio::sync::mpsc;

use crate::system::time::format_duration;
use crate::transport::exec::GitInvocation;

/// Runs git with the channel as its standard streams and returns its exit
/// code once it ended and all its output was sent. It holds no thread:
/// the client's data, git's output and error, and the wait for git are
/// tasks of the runtime, so that held git operations cannot starve the
/// web page, log-ins or the sockets (each used to hold a thread of the
/// blocking pool for its whole life, and three more of its own).
pub async fn git_on_channel(
    invocation: &GitInvocation,
    mut input: ChannelInput,
    (handle, channel): (Handle, ChannelId),
    max: i64,
) -> std::io::Result<u32> {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::from(invocation.command());
    command
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let pid = child
        .id()
        .map(|id| nix::unistd::Pid::from_raw(id as i32))
        .ok_or_else(|| std::io::Error::other("git exited at once"))?;
    let (Some(mut child_in), Some(child_out), Some(child_err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(std::io::Error::other("no pipes to git"));
    };
    // The client's data, until its EOF (or the channel's end); aborted
    // once git has ended, whatever the client still holds open.
    let pending = input.pending.clone();
    let rest = input.chunk.split_off(input.at.min(input.chunk.len()));
    let mut receiver = input.receiver;
    let feeding = tokio::spawn(async move {
        if !rest.is_empty() {
            pending.fetch_sub(rest.len(), Ordering::SeqCst);
            if child_in.write_all(&rest).await.is_err() {
                return;
            }
        }
        while let Some(chunk) = receiver.recv().await {
            pending.fetch_sub(chunk.len(), Ordering::SeqCst);
            if child_in.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // Dropping the pipe is git's end of input.
    });
    // git is stopped when the client is gone (the channel closed), when its
    // output can no longer be sent, and at `max_git_duration`: otherwise it
    // could block on a full pipe that nobody reads, or run for ever.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let sending = {
        let (handle, stop) = (handle.clone(), stop.clone());
        async move {
            let sent = tokio::join!(
                send(child_out, &handle, channel, None),
                send(child_err, &handle, channel, Some(1)),
            );
            if sent.0.is_err() || sent.1.is_err() {
                let _ = stop.send(true);
            }
        }
    };
    let gone = input.gone.take();
    let limit = Duration::from_secs(max.max(1) as u64);
    let waiting = async {
        let client_gone = async {
            match gone {
                Some(gone) => {
                    let _ = gone.await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        // The group is signalled only while git is not reaped: its id is
        // not anybody else's yet.
        let kill = || {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        };
        tokio::select! {
            status = child.wait() => status,
            () = tokio::time::sleep(limit) => {
                log::warn!("stopped a git operation after {}", format_duration(max));
                let _ = handle
                    .extended_data(
                        channel,
                        1,
                        format!(
                            "\ngit2fa: this git connection ran for {}, the longest allowed here; it was closed. Run the command again.\n",
                            format_duration(max)
                        )
                        .into_bytes(),
                    )
                    .await;
                kill();
                child.wait().await
            }
            () = client_gone => {
                kill();
                child.wait().await
            }
            () = async { let _ = stopped.wait_for(|s| *s).await; } => {
                kill();
                child.wait().await
            }
        }
    };
    let ((), status) = tokio::join!(sending, waiting);
    feeding.abort();
    Ok(status?.code().map_or(255, |c| c as u32))
}

/// Sends what git writes on `from` to the channel (standard error with
/// `ext = Some(1)`), one reused buffer.
async fn send(
    mut from: impl tokio::io::AsyncRead + Unpin,
    handle: &Handle,
    channel: ChannelId,
    ext: Option<u32>,
) -> Result<(), ()> {
    use tokio::io::AsyncReadExt;
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        let n = from.read(&mut buffer).await.map_err(|_| ())?;
        if n == 0 {
            return Ok(());
        }
        let data = buffer[..n].to_vec();
        let sent = match ext {
            None => handle.data(channel, data).await,
            Some(ext) => handle.extended_data(channel, ext, data).await,
        };
        sent.map_err(|_| ())?;
    }
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
    /// The next bytes the client sent, without holding a thread while it
    /// waits; `None` once the input has ended. Safe to cancel (in a
    /// `select!`): nothing is taken until it is returned.
    pub async fn read_chunk(&mut self) -> Option<Vec<u8>> {
        if self.at < self.chunk.len() {
            let rest = self.chunk.split_off(self.at);
            self.chunk.clear();
            self.at = 0;
            self.pending.fetch_sub(rest.len(), Ordering::SeqCst);
            return Some(rest);
        }
        let chunk = self.receiver.recv().await?;
        self.pending.fetch_sub(chunk.len(), Ordering::SeqCst);
        Some(chunk)
    }

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
