//! Hardware marks of SSH keys and the audit's `factor`, on every engine.

use super::*;

fn only_security_keys_are_marked_and_rows_keep_their_factor(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let verified = Some(Hardware::Verified);
    assert!(
        store
            .add_key(
                alice,
                "ssh-ed25519",
                "AAAA",
                "SHA256:plain",
                "",
                verified,
                NOW
            )
            .is_err(),
        "an ordinary key cannot be marked"
    );
    let plain = store
        .add_key(alice, "ssh-ed25519", "AAAA", "SHA256:plain", "", None, NOW)
        .unwrap();
    let sk = store
        .add_key(
            alice,
            "sk-ssh-ed25519@openssh.com",
            "BBBB",
            "SHA256:sk",
            "",
            verified,
            NOW,
        )
        .unwrap();
    assert_eq!(store.key(sk).unwrap().unwrap().hardware, verified);
    assert!(!store.set_key_hardware(plain, verified).unwrap());
    assert_eq!(store.key(plain).unwrap().unwrap().hardware, None);
    assert!(store.set_key_hardware(sk, Some(Hardware::Present)).unwrap());
    assert_eq!(
        store.key(sk).unwrap().unwrap().hardware,
        Some(Hardware::Present)
    );
    assert!(store.set_key_hardware(sk, None).unwrap());
    assert_eq!(store.key(sk).unwrap().unwrap().hardware, None);
    store
        .append_audit(&AuditRecord {
            at: NOW,
            transport: "ssh".into(),
            action: "write".into(),
            outcome: "allow".into(),
            reason: "hardware-key".into(),
            factor: Some("hardware-verified".into()),
            ..AuditRecord::default()
        })
        .unwrap();
    let rows = store
        .audit(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(rows[0].1.factor.as_deref(), Some("hardware-verified"));
}

on_every_engine!(only_security_keys_are_marked_and_rows_keep_their_factor);
