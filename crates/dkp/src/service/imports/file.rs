//! The file of an import as the parser reads it: a file on disk, read
//! through a small buffer. An upload is spooled to an unnamed
//! temporary file as it arrives (`Upload`), its SHA-256 taken on the way, so
//! neither the body nor the parse ever holds the whole file in memory; the
//! command line's file is hashed in one read and parsed in a second.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The buffer a file on disk is read through.
const READ_BUFFER: usize = 64 * 1024;

/// A file to import, with its content hash (what makes a re-import idempotent).
pub struct ImportFile {
    file: File,
    hash: Vec<u8>,
    len: u64,
}

impl ImportFile {
    /// A file on disk, hashed now and read again when parsed. Blocking.
    pub fn open(path: &Path) -> io::Result<ImportFile> {
        let mut file = File::open(path)?;
        let mut hash = Sha256::new();
        let len = io::copy(&mut file, &mut hash)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(ImportFile { file, hash: hash.finalize().to_vec(), len })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SHA-256 of the content.
    pub fn hash(&self) -> &[u8] {
        &self.hash
    }

    /// The content, from its start. Blocking.
    pub fn reader(self) -> impl BufRead + Send {
        BufReader::with_capacity(READ_BUFFER, self.file)
    }
}

/// An upload being spooled to disk as its chunks arrive.
pub struct Upload {
    file: tokio::fs::File,
    hash: Sha256,
    len: u64,
}

impl Upload {
    /// A temporary file already unlinked: it is gone with its handle, even
    /// if the process dies mid-import.
    pub async fn create() -> io::Result<Upload> {
        let path = std::env::temp_dir().join(format!("dkp-import-{}", uuid::Uuid::now_v7()));
        let file = tokio::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).await?;
        tokio::fs::remove_file(&path).await?;
        Ok(Upload { file, hash: Sha256::new(), len: 0 })
    }

    /// The bytes written so far.
    pub fn written(&self) -> u64 {
        self.len
    }

    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hash.update(chunk);
        self.len += chunk.len() as u64;
        self.file.write_all(chunk).await
    }

    /// The whole upload, ready to be read from its start.
    pub async fn finish(mut self) -> io::Result<ImportFile> {
        self.file.flush().await?;
        let mut file = self.file.into_std().await;
        let file = tokio::task::spawn_blocking(move || file.seek(SeekFrom::Start(0)).map(|_| file))
            .await
            .map_err(io::Error::other)??;
        Ok(ImportFile { file, hash: self.hash.finalize().to_vec(), len: self.len })
    }
}

/// A file being parsed, counting what the parser has taken of it.
pub(super) struct Counted<R> {
    pub inner: R,
    pub parsed: Option<Arc<AtomicU64>>,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let taken = self.inner.read(buffer)?;
        self.count(taken);
        Ok(taken)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
        self.count(amount);
    }
}

impl<R> Counted<R> {
    fn count(&self, bytes: usize) {
        if let Some(parsed) = &self.parsed {
            parsed.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}
