-- Two-factor login (TOTP with recovery codes) and single sign-on (OpenID Connect).
-- Numbered 0012: 0011 and 0013 are others'.

-- A user's authenticator. The secret is sealed (AES-256-GCM under a key derived from the
-- token-signing secret, the user's id as associated data): a copy of the database alone
-- does not give anyone the codes.
CREATE TABLE totp_factors (
    user_id      BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BLOB NOT NULL,                -- nonce (12 bytes) || ciphertext
    created_at   INTEGER NOT NULL,
    -- NULL while the enrolment waits for its first code; logins ask for a code once set.
    confirmed_at INTEGER,
    -- The highest time step (unix seconds / 30) a code was accepted for: a code, once
    -- accepted, is never accepted again, on any node.
    last_step    INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Single-use recovery codes, SHA-256 of the normalised code (80 random bits each).
CREATE TABLE recovery_codes (
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- An account's link to an OpenID provider's user: by (issuer, subject), never by email.
CREATE TABLE sso_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
) STRICT;
CREATE INDEX sso_identities_user ON sso_identities (user_id);

-- Single sign-on logins in progress, kept in the store so that the provider's redirect
-- back may reach any node. Keyed by the hash of the `state` parameter; after the
-- callback the row holds the hash of the one-time code the browser exchanges for tokens.
CREATE TABLE sso_flows (
    state_hash    BLOB PRIMARY KEY,
    provider      TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    -- Set when a logged-in user links the provider to their account from settings.
    link_user_id  BLOB REFERENCES users (id) ON DELETE CASCADE,
    expires_at    INTEGER NOT NULL,
    -- After the callback: the code's hash and the account it logs in.
    code_hash     BLOB UNIQUE,
    user_id       BLOB REFERENCES users (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sso_flows_expiry ON sso_flows (expires_at);
