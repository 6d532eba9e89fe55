//! What counts as an image here: PNG, JPEG, WebP or GIF, named by the
//! upload's `Content-Type` and confirmed by the first bytes of the body. Only
//! raster formats a browser shows without running anything (no SVG), so a
//! file served back from our own origin cannot carry a script.

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// The image formats accepted, each with its media type and file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Webp,
    Gif,
}

const KINDS: [ImageKind; 4] = [ImageKind::Png, ImageKind::Jpeg, ImageKind::Webp, ImageKind::Gif];

impl ImageKind {
    /// The kind a `Content-Type` header names (parameters ignored), if accepted.
    pub fn from_content_type(value: &str) -> Option<ImageKind> {
        let mime = value.split(';').next().unwrap_or("").trim();
        KINDS.into_iter().find(|kind| kind.mime().eq_ignore_ascii_case(mime))
    }

    /// The kind a stored key's extension names.
    pub fn from_extension(extension: &str) -> Option<ImageKind> {
        KINDS.into_iter().find(|kind| kind.extension() == extension)
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Webp => "image/webp",
            ImageKind::Gif => "image/gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Webp => "webp",
            ImageKind::Gif => "gif",
        }
    }

    /// Whether `bytes` open with this format's signature.
    fn opens(self, bytes: &[u8]) -> bool {
        match self {
            ImageKind::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            ImageKind::Jpeg => bytes.starts_with(&[0xff, 0xd8, 0xff]),
            // A RIFF container (then its length) whose form type is WEBP.
            ImageKind::Webp => bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP",
            ImageKind::Gif => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        }
    }
}

/// Why an upload is not an image we keep.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("send the image as image/png, image/jpeg, image/webp or image/gif")]
    UnsupportedType,
    #[error("the image is empty")]
    Empty,
    #[error("the body is not a {0} image")]
    Mismatch(&'static str),
}

/// An accepted image: its kind, its bytes and their SHA-256 in lowercase hex.
#[derive(Clone, Debug)]
pub struct Image {
    pub kind: ImageKind,
    pub bytes: Bytes,
    pub sha256: String,
}

impl Image {
    /// Accepts `bytes` sent with `content_type` if the type is one we keep
    /// and the bytes really are of that type.
    pub fn parse(content_type: Option<&str>, bytes: Bytes) -> Result<Image, ImageError> {
        let kind = content_type.and_then(ImageKind::from_content_type).ok_or(ImageError::UnsupportedType)?;
        if bytes.is_empty() {
            return Err(ImageError::Empty);
        }
        if !kind.opens(&bytes) {
            return Err(ImageError::Mismatch(kind.mime()));
        }
        let sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        Ok(Image { kind, bytes, sha256 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn parse(content_type: &str, bytes: &'static [u8]) -> Result<Image, ImageError> {
        Image::parse(Some(content_type), Bytes::from_static(bytes))
    }

    #[test]
    fn each_kind_is_accepted_with_its_own_signature() {
        assert_eq!(parse("image/png", PNG).map(|i| i.kind), Ok(ImageKind::Png));
        assert_eq!(parse("image/jpeg", b"\xff\xd8\xff\xe0JFIF").map(|i| i.kind), Ok(ImageKind::Jpeg));
        assert_eq!(parse("image/webp", b"RIFF\x10\0\0\0WEBPVP8 ").map(|i| i.kind), Ok(ImageKind::Webp));
        assert_eq!(parse("image/gif", b"GIF89a\x01\0").map(|i| i.kind), Ok(ImageKind::Gif));
        assert_eq!(parse("image/gif", b"GIF87a\x01\0").map(|i| i.kind), Ok(ImageKind::Gif));
    }

    #[test]
    fn the_content_type_is_read_without_case_or_parameters() {
        assert!(parse("Image/PNG; charset=binary", PNG).is_ok());
    }

    #[test]
    fn other_types_and_a_missing_type_are_unsupported() {
        for content_type in ["image/svg+xml", "text/html", "application/octet-stream", "image/jpg", ""] {
            assert_eq!(parse(content_type, PNG).map(|i| i.kind), Err(ImageError::UnsupportedType), "{content_type}");
        }
        assert_eq!(Image::parse(None, Bytes::from_static(PNG)).map(|i| i.kind), Err(ImageError::UnsupportedType));
    }

    #[test]
    fn bytes_of_another_kind_are_a_mismatch() {
        assert_eq!(parse("image/jpeg", PNG).map(|i| i.kind), Err(ImageError::Mismatch("image/jpeg")));
        assert_eq!(
            parse("image/png", b"<svg onload=alert(1)>").map(|i| i.kind),
            Err(ImageError::Mismatch("image/png"))
        );
        assert_eq!(parse("image/webp", b"RIFF\0\0\0\0WAVE").map(|i| i.kind), Err(ImageError::Mismatch("image/webp")));
        assert_eq!(parse("image/webp", b"RIFF").map(|i| i.kind), Err(ImageError::Mismatch("image/webp")));
    }

    #[test]
    fn an_empty_body_is_refused() {
        assert_eq!(parse("image/png", b"").map(|i| i.kind), Err(ImageError::Empty));
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_bytes() {
        let image = parse("image/png", PNG).unwrap();
        assert_eq!(image.sha256, "02a3e298f1533f62558c58e4c70edcab9af5a50d62d925fd5390942020fb0fb8");
        assert_ne!(image.sha256, parse("image/png", b"\x89PNG\r\n\x1a\nother").unwrap().sha256);
    }

    #[test]
    fn extensions_name_their_kind_back() {
        for kind in KINDS {
            assert_eq!(ImageKind::from_extension(kind.extension()), Some(kind));
        }
        assert_eq!(ImageKind::from_extension("svg"), None);
    }
}
