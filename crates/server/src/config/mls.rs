//! `[mls]`: the bounds of end-to-end encrypted rooms' directory and messages.

use serde::{Deserialize, Serialize};

/// `[mls]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlsConfig {
    /// Live devices (sessions with MLS keys) one account may have. Default 10.
    pub max_devices_per_user: u32,
    /// Unclaimed one-time key packages kept per device; uploading more drops the oldest.
    /// Default 100.
    pub max_key_packages: u32,
    /// One-time key packages of one device that one claimer gets per hour; past it they
    /// get the device's last-resort package, so nobody drains another's stock. Default 10.
    pub claim_share_per_hour: u32,
    /// The largest MLS message (decoded bytes) a send or upload may carry. A commit that
    /// adds many devices, with its welcome, is the largest; base64 makes it a third
    /// larger on the wire, where `max_body_bytes` and `max_frame_bytes` bound the whole
    /// request, so clients add devices a few dozen per commit. Default 40960 (40 KiB).
    pub max_message_bytes: usize,
    /// Welcomes kept waiting per device; more drop the oldest. Default 100.
    pub max_welcomes_per_device: u32,
}

impl Default for MlsConfig {
    fn default() -> Self {
        Self {
            max_devices_per_user: 10,
            max_key_packages: 100,
            claim_share_per_hour: 10,
            max_message_bytes: 40 * 1024,
            max_welcomes_per_device: 100,
        }
    }
}
