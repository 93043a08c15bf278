//! Schema migrations, numbered from 1 and embedded, one list per engine.
//! SQLite records the last one applied in `PRAGMA user_version`, PostgreSQL
//! in the table `git2fa_schema`. A migration is never edited once released:
//! changes come as a new one.

pub const SQLITE: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE users (
        id               INTEGER PRIMARY KEY,
        name             TEXT NOT NULL UNIQUE,
        password_hash    TEXT,                  -- argon2id PHC string; NULL = never set
        enabled          INTEGER NOT NULL DEFAULT 1,
        is_admin         INTEGER NOT NULL DEFAULT 0,
        always_2fa       INTEGER NOT NULL DEFAULT 0,
        totp_secret      BLOB,                  -- nonce || AEAD ciphertext under secret.key
        totp_enrolled_at INTEGER,
        totp_last_step   INTEGER,               -- newest 30 s step accepted: each step once
        failures         INTEGER NOT NULL DEFAULT 0,
        locked_until     INTEGER,
        created_at       INTEGER NOT NULL
    );

    CREATE TABLE ssh_keys (
        id           INTEGER PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id),
        algorithm    TEXT NOT NULL,
        blob         TEXT NOT NULL,             -- base64, as in authorized_keys
        fingerprint  TEXT NOT NULL UNIQUE,      -- SHA256:...
        comment      TEXT NOT NULL DEFAULT '',
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
    );
    CREATE INDEX ssh_keys_user ON ssh_keys(user_id);

    CREATE TABLE recovery_codes (
        id       INTEGER PRIMARY KEY,
        user_id  INTEGER NOT NULL REFERENCES users(id),
        hash     TEXT NOT NULL,                 -- argon2id PHC string
        used_at  INTEGER
    );
    CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

    CREATE TABLE sessions (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        key_id      INTEGER,                    -- the SSH key it was opened with
        remote_addr TEXT,                       -- the address it was opened from
        opened_via  TEXT NOT NULL               -- ssh, web, cli
    );
    CREATE INDEX sessions_open ON sessions(user_id, expires_at) WHERE ended_at IS NULL;

    CREATE TABLE tokens (
        id           INTEGER PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id),
        name         TEXT NOT NULL,
        hash         BLOB NOT NULL UNIQUE,      -- SHA-256 of the whole token
        repos        TEXT NOT NULL,             -- patterns, one per line
        permission   TEXT NOT NULL CHECK (permission IN ('read', 'write')),
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,                   -- NULL = never
        revoked_at   INTEGER,
        last_used_at INTEGER
    );
    CREATE INDEX tokens_user ON tokens(user_id);

    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        user        TEXT,
        transport   TEXT NOT NULL,
        repo        TEXT,
        action      TEXT NOT NULL,
        refs        TEXT,
        outcome     TEXT NOT NULL CHECK (outcome IN ('allow', 'refuse', 'ok', 'fail')),
        reason      TEXT NOT NULL,
        credential  TEXT,
        key_id      INTEGER,
        token_id    INTEGER,
        remote_addr TEXT,
        detail      TEXT
    );
    CREATE INDEX audit_user ON audit(user, id);
    CREATE INDEX audit_repo ON audit(repo, id);
    CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "#,
    // 2: failed password checks over HTTP, per user and per address, so
    // that the slow hash cannot be turned into a denial of service.
    r#"
    CREATE TABLE password_failures (
        scope        TEXT PRIMARY KEY,          -- "user:NAME" or "addr:IP"
        count        INTEGER NOT NULL,
        window_start INTEGER NOT NULL
    );
    "#,
    // 3: the web page's sessions and one-time set-password links.
    r#"
    CREATE TABLE web_sessions (
        id               BLOB PRIMARY KEY,      -- SHA-256 of the cookie value
        user_id          INTEGER REFERENCES users(id),   -- NULL before log-in
        csrf             TEXT NOT NULL,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL,
        code_at          INTEGER,               -- last TOTP/recovery code entered here
        pending_secret   BLOB,                  -- enrolment in progress, sealed
        pending_codes    BLOB,                  -- its recovery codes, sealed
        remote_addr      TEXT
    );
    CREATE INDEX web_sessions_user ON web_sessions(user_id);

    CREATE TABLE password_links (
        hash        BLOB PRIMARY KEY,           -- SHA-256 of the link's secret
        user_id     INTEGER NOT NULL REFERENCES users(id),
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER
    );
    "#,
    // 4: row ids are never reused. Without AUTOINCREMENT, SQLite gives
    // the id of the newest row, once deleted, to the next row inserted
    // (https://www.sqlite.org/autoinc.html): a connection still bound to a
    // removed key's id would become whoever registered the next key. The
    // tables are rebuilt with AUTOINCREMENT, which keeps the highest id
    // ever used in sqlite_sequence. Tokens also record whether they were
    // minted without a second factor (service accounts, rule 4); tokens of
    // users who had never enrolled when this ran were minted so, and are
    // marked as such.
    r#"
    CREATE TABLE ssh_keys_v4 (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id      INTEGER NOT NULL REFERENCES users(id),
        algorithm    TEXT NOT NULL,
        blob         TEXT NOT NULL,
        fingerprint  TEXT NOT NULL UNIQUE,
        comment      TEXT NOT NULL DEFAULT '',
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
    );
    INSERT INTO ssh_keys_v4 SELECT id, user_id, algorithm, blob, fingerprint, comment,
        created_at, last_used_at FROM ssh_keys;
    DROP TABLE ssh_keys;
    ALTER TABLE ssh_keys_v4 RENAME TO ssh_keys;
    CREATE INDEX ssh_keys_user ON ssh_keys(user_id);

    CREATE TABLE sessions_v4 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        key_id      INTEGER,
        remote_addr TEXT,
        opened_via  TEXT NOT NULL
    );
    INSERT INTO sessions_v4 SELECT id, user_id, created_at, expires_at, ended_at, key_id,
        remote_addr, opened_via FROM sessions;
    DROP TABLE sessions;
    ALTER TABLE sessions_v4 RENAME TO sessions;
    CREATE INDEX sessions_open ON sessions(user_id, expires_at) WHERE ended_at IS NULL;

    CREATE TABLE tokens_v4 (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id      INTEGER NOT NULL REFERENCES users(id),
        name         TEXT NOT NULL,
        hash         BLOB NOT NULL UNIQUE,
        repos        TEXT NOT NULL,
        permission   TEXT NOT NULL CHECK (permission IN ('read', 'write')),
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER,
        last_used_at INTEGER,
        without_2fa  INTEGER NOT NULL DEFAULT 0   -- minted for a user without 2FA
    );
    INSERT INTO tokens_v4 SELECT t.id, t.user_id, t.name, t.hash, t.repos, t.permission,
        t.created_at, t.expires_at, t.revoked_at, t.last_used_at,
        (SELECT u.totp_enrolled_at IS NULL FROM users u WHERE u.id = t.user_id)
        FROM tokens t;
    DROP TABLE tokens;
    ALTER TABLE tokens_v4 RENAME TO tokens;
    CREATE INDEX tokens_user ON tokens(user_id);
    "#,
    // 5: ids the store itself no longer holds, but its sessions and audit
    // rows still name, are not handed out again either: the newest key or
    // token deleted before migration 4 left its id free.
    r#"
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'ssh_keys', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'ssh_keys');
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'tokens', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tokens');
    UPDATE sqlite_sequence SET seq = max(seq,
        (SELECT coalesce(max(key_id), 0) FROM sessions),
        (SELECT coalesce(max(key_id), 0) FROM audit))
        WHERE name = 'ssh_keys';
    UPDATE sqlite_sequence SET seq = max(seq,
        (SELECT coalesce(max(token_id), 0) FROM audit))
        WHERE name = 'tokens';
    "#,
    // 6: facts about the store itself: the fingerprint of the secret.key
    // that sealed its TOTP secrets, so that a host with another key is
    // found out by `git2fa check` rather than by users' failing codes.
    r#"
    CREATE TABLE settings (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 7: security keys and passkeys (WebAuthn): each key's public
    // credential, the ceremony a web session has under way, and the
    // one-time links that `ssh HOST 2fa verify` prints for a key.
    r#"
    CREATE TABLE security_keys (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id       INTEGER NOT NULL REFERENCES users(id),
        name          TEXT NOT NULL,
        credential_id BLOB NOT NULL UNIQUE,     -- as the authenticator names it
        credential    TEXT NOT NULL,            -- public key, flags and counter (webauthn-rs's JSON)
        sign_count    INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        last_used_at  INTEGER
    );
    CREATE INDEX security_keys_user ON security_keys(user_id);

    ALTER TABLE web_sessions ADD COLUMN ceremony TEXT;

    CREATE TABLE verify_links (
        hash        BLOB PRIMARY KEY,           -- SHA-256 of the link's token
        user_id     INTEGER NOT NULL REFERENCES users(id),
        key_id      INTEGER,                    -- the SSH key of the waiting command
        remote_addr TEXT,                       -- and its address
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER,
        session_id  INTEGER                     -- the 2FA session it opened
    );
    "#,
    // 8: audit retention. A row may be deleted once an export was proven
    // to hold it (`git2fa store prune-audit`), which records the newest
    // such row in `settings`; the trigger still refuses every other
    // delete, and every update.
    r#"
    DROP TRIGGER audit_append_only_delete;
    CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
        WHEN OLD.id > COALESCE((SELECT CAST(value AS INTEGER) FROM settings
                                WHERE name = 'audit_exported_through'), 0)
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "#,
    // 9: hardware-backed SSH keys. A security key (`sk-` type) may be
    // marked as one whose use proves a touch (`present`) or a PIN or
    // biometric (`verified`); the audit row says which a decision used.
    r#"
    ALTER TABLE ssh_keys ADD COLUMN hardware TEXT CHECK (hardware IN ('present', 'verified'));
    ALTER TABLE audit ADD COLUMN factor TEXT;
    "#,
    // 10: browser sign-in for git credential helpers (OAuth 2.0): the
    // one-time codes of the authorization step, and tokens that end with
    // the 2FA session they were issued from.
    r#"
    CREATE TABLE oauth_codes (
        hash         BLOB PRIMARY KEY,          -- SHA-256 of the code
        user_id      INTEGER NOT NULL REFERENCES users(id),
        client_id    TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        challenge    TEXT NOT NULL,             -- PKCE S256: BASE64URL(SHA-256(verifier))
        session_id   INTEGER NOT NULL,          -- the 2FA session the token will end with
        remote_addr  TEXT,                      -- the browser's address at the consent
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        used_at      INTEGER,
        token_id     INTEGER                    -- the token it was exchanged for
    );
    ALTER TABLE tokens ADD COLUMN session_id INTEGER;
    ALTER TABLE tokens ADD COLUMN oauth_client TEXT;
    "#,
];

/// PostgreSQL's schema: integers are `BIGINT` (the store reads every
/// integer as 64 bits, flags as 0 and 1), bytes are `BYTEA`, and ids come
/// from identity sequences, which never hand out an id twice
/// (`GENERATED BY DEFAULT`, so that `git2fa store migrate` can copy the
/// ids of an SQLite store and then move each sequence past them).
pub const POSTGRES: &[&str] = &[
    // 1: the schema of SQLite's migration 6.
    r#"
    CREATE TABLE users (
        id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name             TEXT NOT NULL UNIQUE,
        password_hash    TEXT,
        enabled          BIGINT NOT NULL DEFAULT 1,
        is_admin         BIGINT NOT NULL DEFAULT 0,
        always_2fa       BIGINT NOT NULL DEFAULT 0,
        totp_secret      BYTEA,
        totp_enrolled_at BIGINT,
        totp_last_step   BIGINT,
        failures         BIGINT NOT NULL DEFAULT 0,
        locked_until     BIGINT,
        created_at       BIGINT NOT NULL
    );

    CREATE TABLE ssh_keys (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        user_id      BIGINT NOT NULL REFERENCES users(id),
        algorithm    TEXT NOT NULL,
        blob         TEXT NOT NULL,
        fingerprint  TEXT NOT NULL UNIQUE,
        comment      TEXT NOT NULL DEFAULT '',
        created_at   BIGINT NOT NULL,
        last_used_at BIGINT
    );
    CREATE INDEX ssh_keys_user ON ssh_keys(user_id);

    CREATE TABLE recovery_codes (
        id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        user_id  BIGINT NOT NULL REFERENCES users(id),
        hash     TEXT NOT NULL,
        used_at  BIGINT
    );
    CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

    CREATE TABLE sessions (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        user_id     BIGINT NOT NULL REFERENCES users(id),
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        ended_at    BIGINT,
        key_id      BIGINT,
        remote_addr TEXT,
        opened_via  TEXT NOT NULL
    );
    CREATE INDEX sessions_open ON sessions(user_id, expires_at) WHERE ended_at IS NULL;
    CREATE INDEX sessions_key ON sessions(key_id) WHERE ended_at IS NULL;

    CREATE TABLE tokens (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        user_id      BIGINT NOT NULL REFERENCES users(id),
        name         TEXT NOT NULL,
        hash         BYTEA NOT NULL UNIQUE,
        repos        TEXT NOT NULL,
        permission   TEXT NOT NULL CHECK (permission IN ('read', 'write')),
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT,
        revoked_at   BIGINT,
        last_used_at BIGINT,
        without_2fa  BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_user ON tokens(user_id);

    CREATE TABLE audit (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at          BIGINT NOT NULL,
        "user"      TEXT,
        transport   TEXT NOT NULL,
        repo        TEXT,
        action      TEXT NOT NULL,
        refs        TEXT,
        outcome     TEXT NOT NULL CHECK (outcome IN ('allow', 'refuse', 'ok', 'fail')),
        reason      TEXT NOT NULL,
        credential  TEXT,
        key_id      BIGINT,
        token_id    BIGINT,
        remote_addr TEXT,
        detail      TEXT
    );
    CREATE INDEX audit_user ON audit("user", id);
    CREATE INDEX audit_repo ON audit(repo, id);
    CREATE FUNCTION git2fa_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
    CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION git2fa_audit_append_only();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION git2fa_audit_append_only();

    CREATE TABLE password_failures (
        scope        TEXT PRIMARY KEY,
        count        BIGINT NOT NULL,
        window_start BIGINT NOT NULL
    );

    CREATE TABLE web_sessions (
        id             BYTEA PRIMARY KEY,
        user_id        BIGINT REFERENCES users(id),
        csrf           TEXT NOT NULL,
        created_at     BIGINT NOT NULL,
        expires_at     BIGINT NOT NULL,
        code_at        BIGINT,
        pending_secret BYTEA,
        pending_codes  BYTEA,
        remote_addr    TEXT
    );
    CREATE INDEX web_sessions_user ON web_sessions(user_id);
    CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);

    CREATE TABLE password_links (
        hash        BYTEA PRIMARY KEY,
        user_id     BIGINT NOT NULL REFERENCES users(id),
        expires_at  BIGINT NOT NULL,
        used_at     BIGINT
    );

    CREATE TABLE settings (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 2: SQLite's migration 7 (security keys).
    r#"
    CREATE TABLE security_keys (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        user_id       BIGINT NOT NULL REFERENCES users(id),
        name          TEXT NOT NULL,
        credential_id BYTEA NOT NULL UNIQUE,
        credential    TEXT NOT NULL,
        sign_count    BIGINT NOT NULL DEFAULT 0,
        created_at    BIGINT NOT NULL,
        last_used_at  BIGINT
    );
    CREATE INDEX security_keys_user ON security_keys(user_id);

    ALTER TABLE web_sessions ADD COLUMN ceremony TEXT;

    CREATE TABLE verify_links (
        hash        BYTEA PRIMARY KEY,
        user_id     BIGINT NOT NULL REFERENCES users(id),
        key_id      BIGINT,
        remote_addr TEXT,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        used_at     BIGINT,
        session_id  BIGINT
    );
    "#,
    // 3: SQLite's migration 8 (audit retention).
    r#"
    CREATE FUNCTION git2fa_audit_delete_exported_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.id <= COALESCE((SELECT CAST(value AS BIGINT) FROM settings
                                   WHERE name = 'audit_exported_through'), 0) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'the audit log is append-only';
        END $$;
    DROP TRIGGER audit_append_only ON audit;
    CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
        FOR EACH ROW EXECUTE FUNCTION git2fa_audit_append_only();
    CREATE TRIGGER audit_delete_exported_only BEFORE DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION git2fa_audit_delete_exported_only();
    "#,
    // 4: SQLite's migration 9 (hardware-backed SSH keys).
    r#"
    ALTER TABLE ssh_keys ADD COLUMN hardware TEXT CHECK (hardware IN ('present', 'verified'));
    ALTER TABLE audit ADD COLUMN factor TEXT;
    "#,
    // 5: SQLite's migration 10 (OAuth for git credential helpers).
    r#"
    CREATE TABLE oauth_codes (
        hash         BYTEA PRIMARY KEY,
        user_id      BIGINT NOT NULL REFERENCES users(id),
        client_id    TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        challenge    TEXT NOT NULL,
        session_id   BIGINT NOT NULL,
        remote_addr  TEXT,
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT NOT NULL,
        used_at      BIGINT,
        token_id     BIGINT
    );
    ALTER TABLE tokens ADD COLUMN session_id BIGINT;
    ALTER TABLE tokens ADD COLUMN oauth_client TEXT;
    "#,
];
