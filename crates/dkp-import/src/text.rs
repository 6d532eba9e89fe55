//! The first bytes of every file, checked before any reader sees it: a UTF-8
//! byte order mark is dropped, and a UTF-16 file (by its mark, or by the zero
//! bytes every ASCII character then carries) is refused with a message that
//! says how to save it instead of failing later on a confusing character.

use std::io::{BufRead, Cursor, Read};

use crate::error::{ErrorKind, ImportError};

/// How many leading bytes are looked at.
const SNIFF: u64 = 4;

/// The input, past a UTF-8 byte order mark, once it is known not to be UTF-16.
pub(crate) type Checked<R> = std::io::Chain<Cursor<Vec<u8>>, R>;

pub(crate) fn check_start<R: BufRead>(mut input: R) -> Result<Checked<R>, ImportError> {
    let mut start = Vec::with_capacity(SNIFF as usize);
    (&mut input).take(SNIFF).read_to_end(&mut start).map_err(|error| ImportError::io(error, 1))?;
    if start.starts_with(&[0xFF, 0xFE]) || start.starts_with(&[0xFE, 0xFF]) || start.iter().take(2).any(|b| *b == 0) {
        return Err(ImportError::at(
            1,
            ErrorKind::Encoding("the file is UTF-16 text; save it as UTF-8 and import it again".into()),
        ));
    }
    if start.starts_with(&[0xEF, 0xBB, 0xBF]) {
        start.drain(..3);
    }
    Ok(Cursor::new(start).chain(input))
}

/// A reader that counts the lines of what was consumed from it, for parsers
/// (the XML one) that report byte positions only.
pub(crate) struct LineCounter<R> {
    inner: R,
    newlines: u64,
}

impl<R> LineCounter<R> {
    pub fn new(inner: R) -> LineCounter<R> {
        LineCounter { inner, newlines: 0 }
    }

    /// The line the next unread byte is on.
    pub fn line(&self) -> u64 {
        self.newlines + 1
    }
}

impl<R: BufRead> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buffer) = self.inner.fill_buf() {
            let taken = &buffer[..amount.min(buffer.len())];
            self.newlines += taken.iter().filter(|b| **b == b'\n').count() as u64;
        }
        self.inner.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(bytes: &[u8]) -> Result<Vec<u8>, ImportError> {
        let mut out = Vec::new();
        check_start(bytes)?.read_to_end(&mut out).unwrap();
        Ok(out)
    }

    #[test]
    fn a_utf8_byte_order_mark_is_dropped() {
        assert_eq!(checked(b"\xEF\xBB\xBFname,balance\n").unwrap(), b"name,balance\n");
        assert_eq!(checked(b"ab").unwrap(), b"ab");
        assert_eq!(checked(b"").unwrap(), b"");
    }

    #[test]
    fn utf16_files_are_refused_with_or_without_a_mark() {
        for bytes in [&b"\xFF\xFEn\0a\0"[..], b"\xFE\xFF\0n\0a", b"n\0a\0m\0"] {
            let error = checked(bytes).unwrap_err();
            assert_eq!(error.line, Some(1));
            assert!(matches!(error.kind, ErrorKind::Encoding(_)), "{error}");
        }
    }

    #[test]
    fn consumed_newlines_are_counted() {
        let mut counter = LineCounter::new(&b"a\nb\nc"[..]);
        let mut out = String::new();
        counter.read_line(&mut out).unwrap();
        assert_eq!(counter.line(), 2);
        counter.read_to_string(&mut out).unwrap();
        assert_eq!(counter.line(), 3);
    }
}
