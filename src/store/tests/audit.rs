//! The audit log: append-only, pruned only once exported, read once as
//! it is written, and committed with the change it records.

use super::*;
use crate::store::audit::AuditCursor;

/// The audit log, oldest row first (at most 100 rows).
fn oldest_first(store: &Store) -> Vec<(i64, AuditRecord)> {
    store
        .audit(&AuditFilter {
            after_id: Some(0),
            limit: 100,
            ..AuditFilter::default()
        })
        .unwrap()
}

fn the_audit_log_is_append_only(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    for (user, repo) in [("alice", "a"), ("bob", "a"), ("alice", "b")] {
        store
            .append_audit(&AuditRecord {
                at: NOW,
                user: Some(user.into()),
                transport: "ssh".into(),
                repo: Some(repo.into()),
                action: "read".into(),
                outcome: "allow".into(),
                reason: "not-required".into(),
                ..AuditRecord::default()
            })
            .unwrap();
    }
    let alice = store
        .audit(&AuditFilter {
            user: Some("alice".into()),
            repo: None,
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        alice
            .iter()
            .map(|(_, r)| r.repo.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["b", "a"]
    );
    let repo_a = store
        .audit(&AuditFilter {
            user: None,
            repo: Some("a".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(repo_a.len(), 2);
    assert!(
        store
            .conn
            .execute("UPDATE audit SET outcome = 'allow'", &[])
            .is_err()
    );
    assert!(store.conn.execute("DELETE FROM audit", &[]).is_err());
    assert_eq!(
        store
            .audit(&AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap()
            .len(),
        3
    );
}

fn audit_rows_go_only_once_an_export_holds_them(engine: Engine) {
    // Attack: an insider who may run the retention command removes the
    // rows that record what they did, saying they were exported. Only
    // rows the export holds exactly as the store does go, oldest first,
    // and the table's triggers refuse every other delete.
    let (_fresh, mut store) = new_store_on(engine);
    for at in 1..=6 {
        store
            .append_audit(&AuditRecord {
                at: NOW + at,
                user: Some("alice".into()),
                transport: "ssh".into(),
                action: "read".into(),
                outcome: "allow".into(),
                reason: format!("row {at}"),
                ..AuditRecord::default()
            })
            .unwrap();
    }
    let ids: Vec<i64> = oldest_first(&store).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 6);
    let prune_row = |p: &AuditPruned| AuditRecord {
        at: NOW + 100,
        transport: "cli".into(),
        action: "audit-prune".into(),
        outcome: "ok".into(),
        reason: format!("{} removed, {} kept", p.removed, p.kept),
        ..AuditRecord::default()
    };
    // The export holds rows 1, 2 and 4; row 3 differs from the store's.
    let held = |id: i64, r: &AuditRecord| {
        (id == ids[0] || id == ids[1] || id == ids[3]) && r.reason.starts_with("row")
            || id == ids[2] && r.reason == "row 3 as the insider wrote it"
    };
    let pruned = store.prune_audit(NOW + 5, &held, prune_row).unwrap();
    assert_eq!(
        pruned,
        AuditPruned {
            removed: 2,
            kept: 2
        }
    );
    // Another delete, of a row past those, is refused.
    assert!(
        store
            .conn
            .execute("DELETE FROM audit WHERE id = ?1", &params![ids[3]])
            .is_err()
    );
    let left = oldest_first(&store);
    assert_eq!(
        left.iter().map(|(id, _)| *id).collect::<Vec<_>>()[..4],
        ids[2..],
        "rows 3 to 6 stay"
    );
    let last = &left.last().unwrap().1;
    assert_eq!(
        (last.action.as_str(), last.reason.as_str()),
        ("audit-prune", "2 removed, 2 kept")
    );
    // Rows newer than the date stay whatever the export holds.
    let all = |_: i64, _: &AuditRecord| true;
    let pruned = store.prune_audit(NOW + 5, &all, prune_row).unwrap();
    assert_eq!(
        pruned,
        AuditPruned {
            removed: 2,
            kept: 0
        }
    );
    assert_eq!(
        oldest_first(&store).len(),
        4,
        "rows 5 and 6 and the two prune rows"
    );
}

fn a_row_newer_than_the_date_is_checked_before_any_later_prune_removes_it(engine: Engine) {
    // Attack: a row whose time is later than the rows after it (another
    // front end's clock ahead, or a row committed late on PostgreSQL) was
    // skipped by a prune that looked only at rows older than its date; the
    // prune recorded an id past it, and a later prune started after that
    // id and removed the row without ever checking the export held it.
    let (_fresh, mut store) = new_store_on(engine);
    for (i, at) in [1, 50, 2, 3].into_iter().enumerate() {
        store
            .append_audit(&AuditRecord {
                at: NOW + at,
                user: Some("mallory".into()),
                transport: "ssh".into(),
                action: "write".into(),
                outcome: "allow".into(),
                reason: format!("row {}", i + 1),
                ..AuditRecord::default()
            })
            .unwrap();
    }
    let prune_row = |p: &AuditPruned| AuditRecord {
        at: NOW + 1000,
        transport: "cli".into(),
        action: "audit-prune".into(),
        outcome: "ok".into(),
        reason: format!("{} removed, {} kept", p.removed, p.kept),
        ..AuditRecord::default()
    };
    // Every row but the second is in the export.
    let held = |_: i64, r: &AuditRecord| r.reason != "row 2";
    let first = store.prune_audit(NOW + 10, &held, prune_row).unwrap();
    assert_eq!(
        first,
        AuditPruned {
            removed: 1,
            kept: 2
        },
        "rows 3 and 4 wait behind row 2, which is newer than the date"
    );
    let second = store.prune_audit(NOW + 100, &held, prune_row).unwrap();
    assert_eq!(
        second,
        AuditPruned {
            removed: 0,
            kept: 3
        },
        "row 2 is not in the export: it and the rows after it stay"
    );
    let reasons: Vec<String> = oldest_first(&store)
        .into_iter()
        .map(|(_, r)| r.reason)
        .collect();
    assert_eq!(reasons[..3], ["row 2", "row 3", "row 4"], "{reasons:?}");
}

fn a_row_committed_after_a_newer_one_is_still_read_once(engine: Engine) {
    // On PostgreSQL a transaction may take an id and commit after one that
    // took a later id: a reader that goes on from the newest id it read
    // never sees that row (`audit --follow`, serve's metrics). Made here
    // with explicit ids, the same on both engines.
    let (_fresh, mut store) = new_store_on(engine);
    let row = |reason: &str| AuditRecord {
        at: NOW,
        user: Some("alice".into()),
        transport: "ssh".into(),
        action: "read".into(),
        outcome: "allow".into(),
        reason: reason.into(),
        ..AuditRecord::default()
    };
    store.append_audit(&row("first")).unwrap();
    let first = store
        .audit(&AuditFilter {
            limit: 1,
            ..AuditFilter::default()
        })
        .unwrap()[0]
        .0;
    let mut cursor = AuditCursor::after(first);
    let insert = |store: &Store, id: i64, reason: &str| {
        store
            .conn
            .execute(
                "INSERT INTO audit (id, at, \"user\", transport, action, outcome, reason)
                 VALUES (?1, ?2, 'alice', 'ssh', 'read', 'allow', ?3)",
                &params![id, NOW, reason],
            )
            .unwrap();
    };
    insert(&store, first + 3, "third");
    let reasons = |rows: Vec<(i64, AuditRecord)>| -> Vec<String> {
        rows.into_iter().map(|(_, r)| r.reason).collect()
    };
    assert_eq!(reasons(cursor.next(&store, 100, NOW).unwrap()), ["third"]);
    insert(&store, first + 1, "late");
    assert_eq!(
        reasons(cursor.next(&store, 100, NOW + 1).unwrap()),
        ["late"],
        "the row that committed after a newer one"
    );
    assert!(
        cursor.next(&store, 100, NOW + 2).unwrap().is_empty(),
        "once"
    );
    // An id still missing long after is given up (rolled back).
    assert!(cursor.next(&store, 100, NOW + 400).unwrap().is_empty());
    insert(&store, first + 2, "too late");
    assert!(cursor.next(&store, 100, NOW + 401).unwrap().is_empty());
    assert_eq!(cursor.last(), first + 3);
}

fn a_change_and_its_audit_row_commit_together_or_not_at_all(engine: Engine) {
    // Attack: a token minted (or a key added) while the audit row cannot
    // be written (a full disk, a lock past the timeout) left a working
    // credential that no row records. The change and its row are one
    // transaction now.
    let (_fresh, mut store) = new_store_on(engine);
    let id = enrolled(&mut store, "alice");
    let row = |action: &str| AuditRecord {
        at: NOW,
        user: Some("alice".into()),
        transport: "web".into(),
        action: action.into(),
        outcome: "ok".into(),
        reason: "laptop".into(),
        ..AuditRecord::default()
    };
    let add = |store: &mut Store, hash: [u8; 32]| {
        store.add_token(
            id,
            "laptop",
            &hash,
            &["*".into()],
            Permission::Read,
            None,
            false,
            NOW,
        )
    };
    let token = store
        .audited(row("token-create"), |store| add(store, [1; 32]))
        .unwrap();
    let rows = store
        .audit(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(rows[0].1.action, "token-create");
    assert_eq!(
        rows[0].1.token_id,
        Some(token),
        "the row names the token it made"
    );

    // The row cannot be written: the token is not made either.
    let refuse = match engine {
        Engine::Sqlite => "CREATE TRIGGER no_rows BEFORE INSERT ON audit \
                           BEGIN SELECT RAISE(ABORT, 'no room'); END;"
            .to_string(),
        _ => "CREATE FUNCTION no_rows() RETURNS trigger LANGUAGE plpgsql AS \
              $$ BEGIN RAISE EXCEPTION 'no room'; END $$; \
              CREATE TRIGGER no_rows BEFORE INSERT ON audit \
              FOR EACH ROW EXECUTE FUNCTION no_rows();"
            .to_string(),
    };
    store.conn.batch(&refuse).unwrap();
    assert!(
        store
            .audited(row("token-create"), |store| add(store, [2; 32]))
            .is_err()
    );
    assert!(
        store.token_by_hash(&[2; 32]).unwrap().is_none(),
        "minted without its row"
    );
    // A change that changes nothing records nothing (and so fails not).
    assert!(
        !store
            .audited(row("token-revoke"), |store| store.revoke_token(999, NOW))
            .unwrap()
    );
    // A code checked while its row cannot be written opens no session,
    // spends no code and counts no failure: a session no row records
    // would let git in unaccounted.
    let describe = |o: &AttemptOutcome| match o {
        AttemptOutcome::Accepted { .. } => ("ok".to_string(), "totp".to_string(), None),
        _ => ("fail".to_string(), "wrong-totp".to_string(), None),
    };
    let step = NOW / 30;
    let verify = |store: &mut Store, attempt: Attempt| {
        store.audited(row("verify"), |store| {
            store.record_attempt_described(
                id,
                attempt,
                NOW,
                LOCK,
                Some(&session()),
                Some(&describe),
            )
        })
    };
    assert!(verify(&mut store, totp(step)).is_err());
    assert!(verify(&mut store, Attempt::Totp(None)).is_err());
    assert!(store.open_sessions(id, NOW).unwrap().is_empty());
    assert_eq!(store.user_by_id(id).unwrap().unwrap().failures, 0);
    let drop = match engine {
        Engine::Sqlite => "DROP TRIGGER no_rows;",
        _ => "DROP TRIGGER no_rows ON audit; DROP FUNCTION no_rows();",
    };
    store.conn.batch(drop).unwrap();
    // The same code, once rows can be written: its session and its row.
    assert!(matches!(
        verify(&mut store, totp(step)).unwrap(),
        AttemptOutcome::Accepted {
            session_id: Some(_)
        }
    ));
    let newest = &store
        .audit(&AuditFilter {
            limit: 1,
            ..AuditFilter::default()
        })
        .unwrap()[0]
        .1;
    assert_eq!(
        (
            newest.action.as_str(),
            newest.outcome.as_str(),
            newest.reason.as_str()
        ),
        ("verify", "ok", "totp")
    );
    // A change that fails writes no row.
    let before = store
        .audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .unwrap()
        .len();
    assert!(
        store
            .audited(row("token-create"), |store| add(store, [1; 32]))
            .is_err(),
        "the same hash twice"
    );
    let after = store
        .audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .unwrap()
        .len();
    assert_eq!(before, after);
}

on_every_engine!(
    the_audit_log_is_append_only,
    audit_rows_go_only_once_an_export_holds_them,
    a_row_newer_than_the_date_is_checked_before_any_later_prune_removes_it,
    a_row_committed_after_a_newer_one_is_still_read_once,
    a_change_and_its_audit_row_commit_together_or_not_at_all,
);
