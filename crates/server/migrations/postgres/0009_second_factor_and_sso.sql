-- Two-factor login (TOTP with recovery codes) and single sign-on (OpenID Connect).
-- Numbered 0009: 0008 and 0010 are others'.

-- A user's authenticator. The secret is sealed (AES-256-GCM under a key derived from the
-- token-signing secret, the user's id as associated data): a copy of the database alone
-- does not give anyone the codes.
CREATE TABLE totp_factors (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       bytea NOT NULL,                -- nonce (12 bytes) || ciphertext
    created_at   bigint NOT NULL,
    -- NULL while the enrolment waits for its first code; logins ask for a code once set.
    confirmed_at bigint,
    -- The highest time step (unix seconds / 30) a code was accepted for: a code, once
    -- accepted, is never accepted again, on any node.
    last_step    bigint NOT NULL DEFAULT 0
);

-- Single-use recovery codes, SHA-256 of the normalised code (80 random bits each).
CREATE TABLE recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at   bigint,
    PRIMARY KEY (user_id, code_hash)
);

-- An account's link to an OpenID provider's user: by (issuer, subject), never by email.
CREATE TABLE sso_identities (
    issuer     text NOT NULL,
    subject    text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at bigint NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);

-- Single sign-on logins in progress, kept in the store so that the provider's redirect
-- back may reach any node. Keyed by the hash of the `state` parameter; after the
-- callback the row holds the hash of the one-time code the browser exchanges for tokens.
CREATE TABLE sso_flows (
    state_hash    bytea PRIMARY KEY,
    provider      text NOT NULL,
    nonce         text NOT NULL,
    pkce_verifier text NOT NULL,
    -- Set when a logged-in user links the provider to their account from settings.
    link_user_id  uuid REFERENCES users (id) ON DELETE CASCADE,
    expires_at    bigint NOT NULL,
    -- After the callback: the code's hash and the account it logs in.
    code_hash     bytea UNIQUE,
    user_id       uuid REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX sso_flows_expiry ON sso_flows (expires_at);
