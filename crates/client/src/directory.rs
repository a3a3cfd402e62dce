//! The MLS directory of encrypted rooms (`/api/v1/mls/*`): devices, key packages and
//! welcomes, as raw base64 MLS structures. `e2ee` builds on these.

use palaver_proto::{
    ClaimKeyPackagesRequest, ClaimedKeyPackages, Device, DeviceList, KeyPackageStock,
    RegisterDeviceRequest, UploadKeyPackagesRequest, WelcomeList,
};
use reqwest::Method;
use uuid::Uuid;

use crate::{Client, Result};

impl Client {
    /// `POST /api/v1/mls/devices`: makes this session a device.
    pub async fn register_device(&self, name: &str, signature_key: &str) -> Result<Device> {
        let body = RegisterDeviceRequest {
            name: name.into(),
            signature_key: signature_key.into(),
        };
        Ok(self
            .call(Method::POST, "/api/v1/mls/devices", Some(&body))
            .await?
            .1)
    }

    /// `DELETE /api/v1/mls/devices/{deviceId}`.
    pub async fn revoke_device(&self, device: Uuid) -> Result<()> {
        let path = format!("/api/v1/mls/devices/{device}");
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await?;
        Ok(())
    }

    /// `POST /api/v1/mls/devices/{deviceId}/key-packages`.
    pub async fn upload_key_packages(
        &self,
        device: Uuid,
        key_packages: Vec<String>,
        last_resort: Option<String>,
    ) -> Result<KeyPackageStock> {
        let path = format!("/api/v1/mls/devices/{device}/key-packages");
        let body = UploadKeyPackagesRequest {
            key_packages,
            last_resort,
        };
        Ok(self.call(Method::POST, &path, Some(&body)).await?.1)
    }

    /// `POST /api/v1/mls/key-packages/claim`.
    pub async fn claim_key_packages(&self, users: &[Uuid]) -> Result<ClaimedKeyPackages> {
        let body = ClaimKeyPackagesRequest {
            user_ids: users.to_vec(),
        };
        Ok(self
            .call(Method::POST, "/api/v1/mls/key-packages/claim", Some(&body))
            .await?
            .1)
    }

    /// `GET /api/v1/users/{userId}/devices`.
    pub async fn devices(&self, user: Uuid) -> Result<DeviceList> {
        let path = format!("/api/v1/users/{user}/devices");
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// `GET /api/v1/mls/devices/{deviceId}/welcomes`.
    pub async fn welcomes(&self, device: Uuid) -> Result<WelcomeList> {
        let path = format!("/api/v1/mls/devices/{device}/welcomes");
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// `DELETE /api/v1/mls/devices/{deviceId}/welcomes/{welcomeId}`.
    pub async fn take_welcome(&self, device: Uuid, welcome: Uuid) -> Result<()> {
        let path = format!("/api/v1/mls/devices/{device}/welcomes/{welcome}");
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await?;
        Ok(())
    }
}
