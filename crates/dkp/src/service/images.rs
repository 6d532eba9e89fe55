//! Guild logos and lot icons, uploaded by officers and owners. The order is
//! what keeps a refusal from changing anything: tenancy and role, then the
//! image itself, then (for an icon) the lot; only then is the object written
//! to the blob store, and only after that does the database name its key.

use bytes::Bytes;
use dkp_core::Action;

use super::Error;
use super::{Caller, Service};
use crate::blobs::{BlobKey, Image};
use crate::model::{Guild, LotView};

/// An uploaded body with the type it was sent as, already within the size limit.
pub struct Upload {
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

impl Service {
    pub async fn set_guild_logo(&self, caller: &Caller, slug: &str, upload: Upload) -> Result<Guild, Error> {
        let access = self.guild_access(caller, slug, Action::UploadImages).await?;
        let image = Image::parse(upload.content_type.as_deref(), upload.bytes)?;
        let key = self.keep(access.guild.id, &image).await?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        let guild = self.store.set_guild_logo(access.guild.id, key.as_str(), &ctx).await?;
        // Memberships carry the guild; this instance shows the new logo at once.
        self.memberships.clear();
        Ok(guild)
    }

    pub async fn set_lot_icon(
        &self,
        caller: &Caller,
        slug: &str,
        lot_id: &str,
        upload: Upload,
    ) -> Result<LotView, Error> {
        let access = self.guild_access(caller, slug, Action::UploadImages).await?;
        let lot_id = super::id(lot_id)?;
        let image = Image::parse(upload.content_type.as_deref(), upload.bytes)?;
        // An unknown lot stores nothing, not even an unreferenced object.
        self.store.lot(access.guild.id, lot_id).await?.ok_or_else(Error::not_found)?;
        let key = self.keep(access.guild.id, &image).await?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.set_lot_icon(access.guild.id, lot_id, key.as_str(), &ctx).await?)
    }

    /// Writes the image to the blob store under its content address in the guild's space.
    async fn keep(&self, guild_id: uuid::Uuid, image: &Image) -> Result<BlobKey, Error> {
        let key = BlobKey::for_image(guild_id, image);
        self.blobs.put(&key, image).await.map_err(|error| {
            tracing::warn!(error = %error, key = key.as_str(), "the blob store refused an image");
            Error::Unavailable("the blob store")
        })?;
        metrics::counter!("dkp_blobs_written_total").increment(1);
        Ok(key)
    }
}

impl Service {
    /// The largest image accepted, in bytes.
    pub fn image_limit(&self) -> usize {
        self.blobs.max_bytes()
    }

    /// A stored image, if `key` names one.
    pub async fn image(&self, key: &BlobKey) -> Result<Option<object_store::GetResult>, Error> {
        self.blobs.get(key).await.map_err(|error| blob_unavailable(key, &error))
    }

    /// Whether `key` names a stored image.
    pub async fn image_exists(&self, key: &BlobKey) -> Result<bool, Error> {
        self.blobs.exists(key).await.map_err(|error| blob_unavailable(key, &error))
    }
}

fn blob_unavailable(key: &BlobKey, error: &object_store::Error) -> Error {
    tracing::warn!(error = %error, key = key.as_str(), "the blob store failed a read");
    Error::Unavailable("the blob store")
}
