//! The `Blobs` port: where uploaded images live, one `Arc<dyn ObjectStore>`
//! chosen by `BLOB_URL` (a local folder by default, any S3-compatible store
//! in production, memory for a bare `Service`).
//!
//! Invariants:
//! - keys are content-addressed, `g/{guild_id}/{sha256}.{ext}`: a key names
//!   the same bytes forever, so its URL may be cached forever and a repeated
//!   upload writes the same object again, harmlessly;
//! - only keys of that exact shape are read or written, so no request can
//!   reach outside its guild's prefix or the store's root;
//! - an object is written before the database names it, and never deleted
//!   (two lots may share an icon), so a stored key always has its object.

pub mod image;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientConfigKey, GetResult, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig,
};
use uuid::Uuid;

use crate::config::Secret;
pub use image::{Image, ImageError, ImageKind};

/// The `Cache-Control` of every stored image: its key never changes meaning.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Where the objects live, from `BLOB_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobLocation {
    Folder(PathBuf),
    S3 { bucket: String },
}

impl BlobLocation {
    /// Reads `BLOB_URL`: unset means `blobs` in the data folder.
    pub fn parse(url: Option<&str>, data_dir: &FsPath) -> anyhow::Result<BlobLocation> {
        const SHAPES: &str = "BLOB_URL must be file:///absolute/path, s3://bucket, or unset";
        match url.map(str::trim) {
            None | Some("") => Ok(BlobLocation::Folder(data_dir.join("blobs"))),
            Some(url) => {
                if let Some(path) = url.strip_prefix("file://") {
                    anyhow::ensure!(path.starts_with('/'), "{SHAPES} (got {url:?})");
                    return Ok(BlobLocation::Folder(PathBuf::from(path)));
                }
                let bucket = url.strip_prefix("s3://").map(|b| b.trim_end_matches('/')).unwrap_or("");
                // S3 bucket names: 3-63 of lowercase letters, digits, dots and hyphens.
                let valid = (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
                anyhow::ensure!(valid, "{SHAPES} (got {url:?}; a bucket name is 3-63 of a-z 0-9 . -)");
                Ok(BlobLocation::S3 { bucket: bucket.to_owned() })
            }
        }
    }
}

/// How the S3 client reaches and signs in to the store; unset values come
/// from the other `AWS_*` variables the client knows, if any.
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub region: Option<String>,
    /// For MinIO, Garage and other S3-compatible stores; plain `http://` is allowed.
    pub endpoint: Option<String>,
}

/// Everything `Blobs::open` needs.
#[derive(Clone, Debug)]
pub struct BlobConfig {
    pub location: BlobLocation,
    pub s3: S3Settings,
    pub public_url: PublicUrls,
    /// The largest image accepted, in bytes.
    pub max_bytes: usize,
}

/// The default largest image: 512 KiB.
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024;

impl BlobConfig {
    /// The defaults for objects kept in `folder`.
    pub fn in_folder(folder: PathBuf) -> BlobConfig {
        BlobConfig {
            location: BlobLocation::Folder(folder),
            s3: S3Settings::default(),
            public_url: PublicUrls::default(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// How a key reads as a public URL: `DKP_BLOB_PUBLIC_URL` + `/` + key. The
/// base is `/blobs` (this service) unless a CDN fronts the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrls {
    base: Arc<str>,
}

impl Default for PublicUrls {
    fn default() -> PublicUrls {
        PublicUrls { base: Arc::from("/blobs") }
    }
}

impl PublicUrls {
    /// A base that is a path on this host (`/…`) or an `http(s)://` URL.
    pub fn parse(base: &str) -> anyhow::Result<PublicUrls> {
        let base = base.trim().trim_end_matches('/');
        let absolute = base.starts_with("http://") || base.starts_with("https://");
        anyhow::ensure!(
            (absolute || base.starts_with('/')) && !base.contains(|c: char| c.is_whitespace() || c == '?' || c == '#'),
            "DKP_BLOB_PUBLIC_URL must be a path like /blobs or an http(s):// URL (got {base:?})"
        );
        Ok(PublicUrls { base: Arc::from(base) })
    }

    /// The public URL of `key`.
    pub fn of(&self, key: &str) -> String {
        format!("{}/{key}", self.base)
    }

    /// The origin (`https://cdn.example`) the URLs point to when it is not
    /// this service's own, for the pages' Content-Security-Policy.
    pub fn foreign_origin(&self) -> Option<&str> {
        let (scheme, rest) = self.base.split_once("://")?;
        let host_end = rest.find('/').unwrap_or(rest.len());
        self.base.get(..scheme.len() + 3 + host_end)
    }
}

/// The key of a stored image, `g/{guild_id}/{sha256}.{ext}`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobKey {
    text: String,
    kind: ImageKind,
}

impl BlobKey {
    /// The key `image` is kept under in `guild_id`'s space.
    pub fn for_image(guild_id: Uuid, image: &Image) -> BlobKey {
        BlobKey { text: format!("g/{guild_id}/{}.{}", image.sha256, image.kind.extension()), kind: image.kind }
    }

    /// A key as a client names it; anything not of our exact shape is `None`.
    pub fn parse(text: &str) -> Option<BlobKey> {
        let rest = text.strip_prefix("g/")?;
        let (guild, file) = rest.split_once('/')?;
        let (digest, extension) = file.split_once('.')?;
        let guild_ok = Uuid::try_parse(guild).is_ok_and(|id| id.hyphenated().to_string() == guild);
        let digest_ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let kind = ImageKind::from_extension(extension)?;
        (guild_ok && digest_ok).then(|| BlobKey { text: text.to_owned(), kind })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> ImageKind {
        self.kind
    }

    /// The SHA-256 of the object's bytes, as the key names it.
    pub fn digest(&self) -> &str {
        let file = self.text.rsplit('/').next().unwrap_or("");
        file.split('.').next().unwrap_or("")
    }

    fn path(&self) -> Path {
        Path::from(self.text.as_str())
    }
}

/// The object store of this service, with what it needs to know about it.
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// An S3 store: readiness checks it, and objects carry their headers.
    remote: bool,
    urls: PublicUrls,
    max_bytes: usize,
}

impl Blobs {
    /// Opens the configured store; an S3 store must answer before start-up goes on.
    pub async fn open(config: &BlobConfig) -> anyhow::Result<Blobs> {
        let (store, remote): (Arc<dyn ObjectStore>, bool) = match &config.location {
            BlobLocation::Folder(folder) => {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("cannot create the blob folder {}", folder.display()))?;
                let local = LocalFileSystem::new_with_prefix(folder)
                    .with_context(|| format!("cannot use the blob folder {}", folder.display()))?;
                (Arc::new(local), false)
            }
            BlobLocation::S3 { bucket } => (Arc::new(s3(bucket, &config.s3)?), true),
        };
        let blobs = Blobs { store, remote, urls: config.public_url.clone(), max_bytes: config.max_bytes };
        if let BlobLocation::S3 { bucket } = &config.location {
            match tokio::time::timeout(Duration::from_secs(10), blobs.ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => anyhow::bail!("the blob store s3://{bucket} does not answer: {error}"),
                Err(_) => anyhow::bail!("the blob store s3://{bucket} did not answer within 10 s"),
            }
        }
        Ok(blobs)
    }

    /// A store in memory, lost on exit: for a `Service` built without configuration.
    pub fn in_memory() -> Blobs {
        Blobs {
            store: Arc::new(InMemory::new()),
            remote: false,
            urls: PublicUrls::default(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    pub fn urls(&self) -> &PublicUrls {
        &self.urls
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether the objects live in another service (S3), which readiness checks.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// Answers when the store does: one listing of an empty prefix, which
    /// also fails when the bucket is missing (a HEAD of a missing key would not).
    pub async fn ping(&self) -> Result<(), object_store::Error> {
        self.store.list_with_delimiter(Some(&Path::from("ready"))).await.map(|_| ())
    }

    /// Writes `image` under `key`. On S3 the object carries its type and
    /// cache policy, so a CDN in front of the bucket serves it right too.
    pub async fn put(&self, key: &BlobKey, image: &Image) -> Result<(), object_store::Error> {
        let mut attributes = Attributes::new();
        if self.remote {
            attributes.insert(Attribute::ContentType, image.kind.mime().into());
            attributes.insert(Attribute::CacheControl, IMMUTABLE.into());
        }
        let options = PutOptions { attributes, ..PutOptions::default() };
        self.store.put_opts(&key.path(), PutPayload::from(image.bytes.clone()), options).await.map(|_| ())
    }

    /// The object under `key`, streaming, or `None` when there is none.
    pub async fn get(&self, key: &BlobKey) -> Result<Option<GetResult>, object_store::Error> {
        match self.store.get(&key.path()).await {
            Ok(result) => Ok(Some(result)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Whether an object is stored under `key`.
    pub async fn exists(&self, key: &BlobKey) -> Result<bool, object_store::Error> {
        match self.store.head(&key.path()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// An S3 client for `bucket`: the `AWS_*` environment first, then our
/// settings over it. Path-style requests, which MinIO, Garage and moto serve.
fn s3(bucket: &str, settings: &S3Settings) -> anyhow::Result<object_store::aws::AmazonS3> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(key) = &settings.access_key_id {
        builder = builder.with_access_key_id(key.expose());
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }
    if let Some(region) = &settings.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    // Fail within seconds rather than the client's default of minutes: a
    // request waits on this, and readiness must answer in time. (Set key by
    // key: replacing the client options would drop `allow_http` and the
    // environment's settings.)
    let retry = RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(10), ..RetryConfig::default() };
    builder
        .with_retry(retry)
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout), "3s")
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "30s")
        .build()
        .with_context(|| format!("BLOB_URL s3://{bucket}: cannot configure the S3 client"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUILD: &str = "0190a5c4-7b8e-7000-8000-000000000001";
    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn no_blob_url_means_a_folder_in_the_data_folder() {
        assert_eq!(BlobLocation::parse(None, FsPath::new("/d")).unwrap(), BlobLocation::Folder("/d/blobs".into()));
        assert_eq!(BlobLocation::parse(Some(""), FsPath::new("/d")).unwrap(), BlobLocation::Folder("/d/blobs".into()));
    }

    #[test]
    fn file_and_s3_urls_name_their_folder_and_bucket() {
        let data = FsPath::new("/d");
        assert_eq!(
            BlobLocation::parse(Some("file:///srv/img"), data).unwrap(),
            BlobLocation::Folder("/srv/img".into())
        );
        assert_eq!(
            BlobLocation::parse(Some("s3://guild-images"), data).unwrap(),
            BlobLocation::S3 { bucket: "guild-images".into() }
        );
    }

    #[test]
    fn other_blob_urls_are_refused() {
        for url in ["file://relative", "s3://", "s3://UPPER", "s3://a", "s3://bucket/prefix", "gs://x", "/srv/img"] {
            assert!(BlobLocation::parse(Some(url), FsPath::new("/d")).is_err(), "{url}");
        }
    }

    #[test]
    fn public_urls_join_the_base_and_the_key() {
        assert_eq!(PublicUrls::default().of("g/x.png"), "/blobs/g/x.png");
        assert_eq!(
            PublicUrls::parse("https://cdn.example/img/").unwrap().of("g/x.png"),
            "https://cdn.example/img/g/x.png"
        );
        for bad in ["", "blobs", "ftp://x", "/a b", "/x?y"] {
            assert!(PublicUrls::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_urls_on_another_host_have_a_foreign_origin() {
        assert_eq!(PublicUrls::default().foreign_origin(), None);
        assert_eq!(
            PublicUrls::parse("https://cdn.example:8443/img").unwrap().foreign_origin(),
            Some("https://cdn.example:8443")
        );
        assert_eq!(PublicUrls::parse("http://cdn.example").unwrap().foreign_origin(), Some("http://cdn.example"));
    }

    #[test]
    fn a_key_of_our_shape_parses_and_names_its_digest_and_kind() {
        let key = BlobKey::parse(&format!("g/{GUILD}/{DIGEST}.webp")).unwrap();
        assert_eq!((key.digest(), key.kind()), (DIGEST, ImageKind::Webp));
    }

    #[test]
    fn keys_of_any_other_shape_are_refused() {
        let upper = DIGEST.to_uppercase();
        let bad = [
            format!("g/{GUILD}/../{DIGEST}.png"),
            format!("g/../g/{GUILD}/{DIGEST}.png"),
            format!("g/{GUILD}/{DIGEST}.svg"),
            format!("g/{GUILD}/{DIGEST}.png.png"),
            format!("g/{GUILD}/{upper}.png"),
            format!("g/{GUILD}/{}.png", &DIGEST[1..]),
            format!("g/{}/{DIGEST}.png", GUILD.replace('-', "")),
            format!("g/{}/{DIGEST}.png", GUILD.to_uppercase()),
            format!("x/{GUILD}/{DIGEST}.png"),
            format!("/g/{GUILD}/{DIGEST}.png"),
            format!("g/{GUILD}/sub/{DIGEST}.png"),
        ];
        for text in bad {
            assert_eq!(BlobKey::parse(&text), None, "{text}");
        }
    }

    #[test]
    fn an_image_is_kept_under_its_guild_and_digest() {
        let image = Image::parse(Some("image/gif"), bytes::Bytes::from_static(b"GIF89a")).unwrap();
        let key = BlobKey::for_image(Uuid::parse_str(GUILD).unwrap(), &image);
        assert_eq!(key.as_str(), format!("g/{GUILD}/{}.gif", image.sha256));
        assert_eq!(BlobKey::parse(key.as_str()), Some(key));
    }
}
