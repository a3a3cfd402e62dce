//! TOTP authenticators, recovery codes and single sign-on, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Columns, Engine, SqlStore, is_unique_violation};
use crate::store::{Constraint, SecondFactorStore, SsoFlow, StoreError, StoreResult, TotpFactor};

#[async_trait]
impl<P: Engine> SecondFactorStore for SqlStore<P> {
    async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
        with_db!(&self.read, |db| {
            let row =
                sqlx::query("SELECT secret, confirmed_at FROM totp_factors WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(db)
                    .await?;
            row.map(|row| {
                let confirmed: Option<i64> = row.col("confirmed_at")?;
                Ok(TotpFactor {
                    sealed_secret: row.col("secret")?,
                    confirmed: confirmed.is_some(),
                })
            })
            .transpose()
        })
    }

    async fn put_pending_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        now_ms: i64,
    ) -> StoreResult<bool> {
        // A confirmed authenticator is never overwritten here: removing it has rules of
        // its own (the password or a code).
        let written = with_db!(&self.write, |db| {
            sqlx::query(
                "INSERT INTO totp_factors (user_id, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                 created_at = excluded.created_at WHERE totp_factors.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(sealed_secret)
            .bind(now_ms)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(written == 1)
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[Vec<u8>],
        now_ms: i64,
    ) -> StoreResult<bool> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let confirmed = sqlx::query(
                "UPDATE totp_factors SET confirmed_at = $1, last_step = $2 \
                 WHERE user_id = $3 AND confirmed_at IS NULL",
            )
            .bind(now_ms)
            .bind(step)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if confirmed == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(hash.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
        // One statement: two nodes given the same code at once cannot both accept it.
        let used = with_db!(&self.write, |db| {
            sqlx::query(
                "UPDATE totp_factors SET last_step = $1 \
                 WHERE user_id = $2 AND last_step < $1 AND confirmed_at IS NOT NULL",
            )
            .bind(step)
            .bind(user_id)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(used == 1)
    }

    async fn use_recovery_code(
        &self,
        user_id: Uuid,
        hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<bool> {
        let used = with_db!(&self.write, |db| {
            sqlx::query(
                "UPDATE recovery_codes SET used_at = $1 \
                 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            )
            .bind(now_ms)
            .bind(user_id)
            .bind(hash)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(used == 1)
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> StoreResult<u32> {
        let left: i64 = with_db!(&self.read, |db| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .fetch_one(db)
            .await?;
            row.col("n")?
        });
        Ok(u32::try_from(left).unwrap_or(0))
    }

    async fn remove_totp(&self, user_id: Uuid) -> StoreResult<bool> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let removed = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(removed == 1)
        })
    }

    async fn sso_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<Uuid>> {
        with_db!(&self.read, |db| {
            let row = sqlx::query(
                "SELECT user_id FROM sso_identities WHERE issuer = $1 AND subject = $2",
            )
            .bind(issuer)
            .bind(subject)
            .fetch_optional(db)
            .await?;
            row.map(|row| row.col("user_id")).transpose()
        })
    }

    async fn link_sso(
        &self,
        issuer: &str,
        subject: &str,
        user_id: Uuid,
        now_ms: i64,
    ) -> StoreResult<()> {
        let linked = with_db!(&self.write, |db| {
            sqlx::query(
                "INSERT INTO sso_identities (issuer, subject, user_id, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(issuer)
            .bind(subject)
            .bind(user_id)
            .bind(now_ms)
            .execute(db)
            .await
            .map(|_| ())
        });
        linked.map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::Conflict(Constraint::SsoIdentity)
            } else {
                err.into()
            }
        })
    }

    async fn start_sso_flow(
        &self,
        state_hash: &[u8],
        flow: &SsoFlow,
        expires_ms: i64,
        now_ms: i64,
        max_pending: u32,
    ) -> StoreResult<bool> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            sqlx::query("DELETE FROM sso_flows WHERE expires_at <= $1")
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query("SELECT COUNT(*) AS n FROM sso_flows")
                .fetch_one(&mut *tx)
                .await?;
            let pending: i64 = row.col("n")?;
            if pending >= i64::from(max_pending) {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO sso_flows \
                 (state_hash, provider, nonce, pkce_verifier, link_user_id, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(state_hash)
            .bind(&flow.provider)
            .bind(&flow.nonce)
            .bind(&flow.pkce_verifier)
            .bind(flow.link_user_id)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn take_sso_flow(&self, state_hash: &[u8], now_ms: i64) -> StoreResult<Option<SsoFlow>> {
        // The verifier is blanked as the flow is taken: a second callback with the same
        // state finds nothing to continue, on any node.
        let find = format!(
            "SELECT provider, nonce, pkce_verifier, link_user_id FROM sso_flows \
             WHERE state_hash = $1 AND expires_at > $2 AND pkce_verifier <> '' {}",
            P::row_lock("FOR UPDATE")
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let row = sqlx::query(&find)
                .bind(state_hash)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let flow = SsoFlow {
                provider: row.col("provider")?,
                nonce: row.col("nonce")?,
                pkce_verifier: row.col("pkce_verifier")?,
                link_user_id: row.col("link_user_id")?,
            };
            sqlx::query("UPDATE sso_flows SET pkce_verifier = '' WHERE state_hash = $1")
                .bind(state_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(flow))
        })
    }

    async fn finish_sso_flow(
        &self,
        state_hash: &[u8],
        code_hash: &[u8],
        user_id: Uuid,
        expires_ms: i64,
    ) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            sqlx::query(
                "UPDATE sso_flows SET code_hash = $1, user_id = $2, expires_at = $3 \
                 WHERE state_hash = $4",
            )
            .bind(code_hash)
            .bind(user_id)
            .bind(expires_ms)
            .bind(state_hash)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    async fn redeem_sso_code(&self, code_hash: &[u8], now_ms: i64) -> StoreResult<Option<Uuid>> {
        with_db!(&self.write, |db| {
            let row = sqlx::query(
                "DELETE FROM sso_flows WHERE code_hash = $1 RETURNING user_id, expires_at",
            )
            .bind(code_hash)
            .fetch_optional(db)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let expires: i64 = row.col("expires_at")?;
            let user: Option<Uuid> = row.col("user_id")?;
            Ok(user.filter(|_| expires > now_ms))
        })
    }
}
