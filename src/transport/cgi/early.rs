//! The answers git2fa-http gives before a decision: the audit row of a
//! request it refuses unread, and the answer when every password hash of
//! the server is under way.

use super::*;

impl CgiRequest {
    /// The row of a refusal made before the decision: a request git2fa
    /// cannot read, a malformed token, a path outside the repositories.
    /// Within the bound per address; best effort (the refusal stands).
    pub(super) fn audit_early(
        &self,
        config: &Config,
        user: Option<&str>,
        repo: Option<&str>,
        reason: &str,
        detail: &str,
    ) {
        let clip = crate::domain::clipped;
        let record = crate::store::AuditRecord {
            at: now(),
            // A token typed as the user name is never recorded.
            user: user.filter(|u| !token::looks_like_token(u)).map(&clip),
            transport: Transport::Http.as_str().into(),
            repo: repo.map(&clip),
            action: "http-request".into(),
            outcome: "refuse".into(),
            reason: reason.into(),
            remote_addr: self.remote_addr.clone(),
            detail: Some(clip(detail)),
            ..Default::default()
        };
        let written =
            Store::connect(&Location::of(config)).and_then(|mut s| s.append_refusal(&record));
        if let Err(e) = written {
            log::warn!("cannot write the audit row of a refused request: {e}");
        }
    }

    /// The server checks as many passwords as it may at once: 503, audited,
    /// and nothing counted against the user.
    pub(super) fn busy(
        &self,
        config: &Config,
        store: &mut Store,
        request: &GitRequest,
        now: i64,
    ) -> Response {
        let what = messages::Busy::PasswordHashes;
        let record = crate::store::AuditRecord {
            at: now,
            user: None,
            transport: Transport::Http.as_str().into(),
            repo: Some(request.repo.clone()),
            action: if request.service.is_write() {
                "write"
            } else {
                "read"
            }
            .into(),
            outcome: "refuse".into(),
            reason: what.reason().into(),
            credential: Some("password".into()),
            remote_addr: self.remote_addr.clone(),
            ..Default::default()
        };
        // Within the bound per address: a flood of them cannot fill the disk.
        if let Err(e) = store.append_refusal(&record) {
            log::warn!("cannot write the audit row of a busy refusal: {e}");
        }
        Response::Text {
            status: 503,
            lines: messages::busy(config, what),
            challenge: false,
        }
    }
}
