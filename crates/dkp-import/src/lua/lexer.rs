//! The tokens of Lua's table syntax, read from a byte stream with the line
//! each starts on. Strings come out as raw bytes with every escape of Lua 5.4
//! resolved (`\n \t \\ \" \' \a \b \f \r \v`, `\ddd`, `\xXX`, `\z`,
//! `\u{XXX}`, backslash-newline); whether they are UTF-8 is decided later, by
//! whoever reads them. Comments (`--`, `--[[ ]]`, `--[==[ ]==]`) are skipped.
//! Any end of line (`\n`, `\r`, `\r\n`, `\n\r`) counts as one line.

use std::io::BufRead;

use crate::amount::Decimal;
use crate::error::{ImportError, syntax, truncated};

/// One token of a SavedVariables file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Name(String),
    Str(Vec<u8>),
    Number(Decimal),
    Minus,
    OpenBrace,
    CloseBrace,
    OpenBracket,
    CloseBracket,
    Assign,
    Comma,
    Semicolon,
    Eof,
}

enum Bracket {
    Long(usize),
    Plain(usize),
}

pub struct Lexer<R> {
    input: R,
    line: u64,
}

impl<R: BufRead> Lexer<R> {
    pub fn new(input: R) -> Lexer<R> {
        Lexer { input, line: 1 }
    }

    /// The next token and the line it starts on.
    pub fn next_token(&mut self) -> Result<(Token, u64), ImportError> {
        loop {
            let Some(byte) = self.peek()? else { return Ok((Token::Eof, self.line)) };
            let line = self.line;
            let single = match byte {
                b'\n' | b'\r' => {
                    self.newline()?;
                    continue;
                }
                b' ' | b'\t' | 0x0B | 0x0C => {
                    self.bump();
                    continue;
                }
                b'{' => Token::OpenBrace,
                b'}' => Token::CloseBrace,
                b']' => Token::CloseBracket,
                b'=' => Token::Assign,
                b',' => Token::Comma,
                b';' => Token::Semicolon,
                b'-' => {
                    self.bump();
                    if self.peek()? != Some(b'-') {
                        return Ok((Token::Minus, line));
                    }
                    self.bump();
                    self.comment(line)?;
                    continue;
                }
                b'[' => {
                    self.bump();
                    return match self.long_bracket()? {
                        Bracket::Long(level) => Ok((Token::Str(self.long_string(level, line, true)?), line)),
                        Bracket::Plain(0) => Ok((Token::OpenBracket, line)),
                        Bracket::Plain(_) => {
                            Err(syntax(line, "a long string opens with '[' and '=' but no second '['"))
                        }
                    };
                }
                b'"' | b'\'' => return Ok((Token::Str(self.short_string(byte, line)?), line)),
                b'0'..=b'9' | b'.' => return Ok((Token::Number(self.number(line)?), line)),
                b'A'..=b'Z' | b'a'..=b'z' | b'_' => return Ok((Token::Name(self.name()?), line)),
                other => return Err(syntax(line, format!("unexpected character {}", shown(other)))),
            };
            self.bump();
            return Ok((single, line));
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, ImportError> {
        let line = self.line;
        let buffer = self.input.fill_buf().map_err(|error| ImportError::io(error, line))?;
        Ok(buffer.first().copied())
    }

    fn bump(&mut self) {
        self.input.consume(1);
    }

    /// Consumes one end of line, of any of Lua's four forms.
    fn newline(&mut self) -> Result<(), ImportError> {
        let first = self.peek()?;
        self.bump();
        let second = self.peek()?;
        if matches!((first, second), (Some(b'\n'), Some(b'\r')) | (Some(b'\r'), Some(b'\n'))) {
            self.bump();
        }
        self.line += 1;
        Ok(())
    }

    /// After `--`: a long comment if a long bracket opens, else the rest of the line.
    fn comment(&mut self, line: u64) -> Result<(), ImportError> {
        if self.peek()? == Some(b'[') {
            self.bump();
            if let Bracket::Long(level) = self.long_bracket()? {
                self.long_string(level, line, false)?;
                return Ok(());
            }
        }
        self.skip_while(|byte| byte != b'\n' && byte != b'\r')
    }

    /// After `[`: a long bracket (`[[` is level 0, `[==[` level 2), or a plain
    /// `[` followed by how many `=` were read.
    fn long_bracket(&mut self) -> Result<Bracket, ImportError> {
        let mut level = 0;
        while self.peek()? == Some(b'=') {
            self.bump();
            level += 1;
        }
        if self.peek()? == Some(b'[') {
            self.bump();
            return Ok(Bracket::Long(level));
        }
        Ok(Bracket::Plain(level))
    }

    /// The body of a long string or comment, up to `]` `=`×level `]`.
    fn long_string(&mut self, level: usize, line: u64, keep: bool) -> Result<Vec<u8>, ImportError> {
        let mut text = Vec::new();
        if matches!(self.peek()?, Some(b'\n' | b'\r')) {
            self.newline()?;
        }
        loop {
            let Some(byte) = self.peek()? else {
                return Err(truncated(line, "inside the long string or comment that starts here"));
            };
            match byte {
                b']' => {
                    self.bump();
                    let mut closing = 0;
                    while closing < level && self.peek()? == Some(b'=') {
                        self.bump();
                        closing += 1;
                    }
                    if closing == level && self.peek()? == Some(b']') {
                        self.bump();
                        return Ok(text);
                    }
                    if keep {
                        text.push(b']');
                        text.extend(std::iter::repeat_n(b'=', closing));
                    }
                }
                b'\n' | b'\r' => {
                    self.newline()?;
                    if keep {
                        text.push(b'\n');
                    }
                }
                _ => {
                    let taken =
                        self.take_plain(|b| b != b']' && b != b'\n' && b != b'\r', keep.then_some(&mut text))?;
                    debug_assert!(taken > 0);
                }
            }
        }
    }

    /// A quoted string, its escapes resolved.
    fn short_string(&mut self, quote: u8, line: u64) -> Result<Vec<u8>, ImportError> {
        self.bump();
        let mut text = Vec::new();
        loop {
            self.take_plain(|b| b != quote && b != b'\\' && b != b'\n' && b != b'\r', Some(&mut text))?;
            match self.peek()? {
                None => return Err(truncated(line, "inside the string that starts here")),
                Some(b'\n' | b'\r') => return Err(syntax(line, "a string is not closed before the end of its line")),
                Some(b'\\') => {
                    self.bump();
                    self.escape(&mut text, line)?;
                }
                Some(_) => {
                    self.bump();
                    return Ok(text);
                }
            }
        }
    }

    /// One escape sequence, after its backslash.
    fn escape(&mut self, text: &mut Vec<u8>, line: u64) -> Result<(), ImportError> {
        let Some(byte) = self.peek()? else { return Err(truncated(line, "inside the string that starts here")) };
        let simple = match byte {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0C),
            b'v' => Some(0x0B),
            b'\\' | b'"' | b'\'' => Some(byte),
            _ => None,
        };
        if let Some(simple) = simple {
            self.bump();
            text.push(simple);
            return Ok(());
        }
        match byte {
            b'\n' | b'\r' => {
                self.newline()?;
                text.push(b'\n');
            }
            b'z' => {
                self.bump();
                self.skip_space()?;
            }
            b'x' => {
                self.bump();
                let high = self.hex_digit(line)?;
                let low = self.hex_digit(line)?;
                text.push(high * 16 + low);
            }
            b'0'..=b'9' => text.push(self.decimal_escape(line)?),
            b'u' => {
                self.bump();
                let character = self.unicode_escape(line)?;
                text.extend_from_slice(character.encode_utf8(&mut [0; 4]).as_bytes());
            }
            other => return Err(syntax(line, format!("invalid escape \\{} in a string", shown(other)))),
        }
        Ok(())
    }

    /// `\z`: skips spaces and line breaks.
    fn skip_space(&mut self) -> Result<(), ImportError> {
        loop {
            match self.peek()? {
                Some(b'\n' | b'\r') => self.newline()?,
                Some(b' ' | b'\t' | 0x0B | 0x0C) => self.bump(),
                _ => return Ok(()),
            }
        }
    }

    /// `\ddd`: up to three decimal digits naming one byte.
    fn decimal_escape(&mut self, line: u64) -> Result<u8, ImportError> {
        let mut value: u32 = 0;
        for _ in 0..3 {
            match self.peek()? {
                Some(digit @ b'0'..=b'9') => {
                    self.bump();
                    value = value * 10 + u32::from(digit - b'0');
                }
                _ => break,
            }
        }
        u8::try_from(value).map_err(|_| syntax(line, format!("the escape \\{value} is above 255")))
    }

    fn hex_digit(&mut self, line: u64) -> Result<u8, ImportError> {
        let digit = self.peek()?.and_then(|b| (b as char).to_digit(16));
        let digit = digit.ok_or_else(|| syntax(line, "\\x in a string needs two hexadecimal digits"))?;
        self.bump();
        Ok(digit as u8)
    }

    /// `\u{XXX}`, after the `u`.
    fn unicode_escape(&mut self, line: u64) -> Result<char, ImportError> {
        let malformed = || syntax(line, "\\u in a string needs hexadecimal digits in braces, like \\u{E9}");
        if self.peek()? != Some(b'{') {
            return Err(malformed());
        }
        self.bump();
        let mut value: u32 = 0;
        let mut digits = 0;
        while let Some(digit) = self.peek()?.and_then(|b| (b as char).to_digit(16)) {
            self.bump();
            value = value.checked_mul(16).and_then(|v| v.checked_add(digit)).ok_or_else(malformed)?;
            digits += 1;
        }
        if digits == 0 || self.peek()? != Some(b'}') {
            return Err(malformed());
        }
        self.bump();
        char::from_u32(value).ok_or_else(|| syntax(line, format!("\\u{{{value:X}}} is not a Unicode character")))
    }

    /// A number: decimal (`12`, `-` comes as its own token, `1.5`, `.5`, `1e-3`) or hexadecimal integer.
    fn number(&mut self, line: u64) -> Result<Decimal, ImportError> {
        let mut text = String::new();
        while let Some(byte) = self.peek()? {
            let after_exponent = matches!(text.as_bytes().last(), Some(b'e' | b'E' | b'p' | b'P'));
            let hex = text.starts_with("0x") || text.starts_with("0X");
            let sign_allowed = after_exponent && (!hex || text.ends_with(['p', 'P']));
            if !(byte.is_ascii_alphanumeric() || byte == b'.' || (sign_allowed && (byte == b'+' || byte == b'-'))) {
                break;
            }
            self.bump();
            text.push(byte as char);
        }
        let malformed = || syntax(line, format!("malformed number {text:?}"));
        if let Some(digits) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            if digits.contains(['.', 'p', 'P']) {
                return Err(syntax(line, format!("the hexadecimal fraction {text} is not supported")));
            }
            let value = i128::from_str_radix(digits, 16).map_err(|_| malformed())?;
            return Ok(Decimal::from_int(value));
        }
        Decimal::parse(&text).ok_or_else(malformed)
    }

    fn name(&mut self) -> Result<String, ImportError> {
        let mut name = Vec::new();
        self.take_plain(|b| b.is_ascii_alphanumeric() || b == b'_', Some(&mut name))?;
        Ok(name.into_iter().map(char::from).collect())
    }

    fn skip_while(&mut self, keep_going: impl Fn(u8) -> bool) -> Result<(), ImportError> {
        while self.take_plain(&keep_going, None)? > 0 {}
        Ok(())
    }

    /// Consumes the run of bytes that `plain` accepts, within the current
    /// buffer, appending them to `out` if given; returns how many it took.
    fn take_plain(&mut self, plain: impl Fn(u8) -> bool, out: Option<&mut Vec<u8>>) -> Result<usize, ImportError> {
        let mut total = 0;
        let mut out = out;
        loop {
            let line = self.line;
            let buffer = self.input.fill_buf().map_err(|error| ImportError::io(error, line))?;
            let run = buffer.iter().position(|b| !plain(*b)).unwrap_or(buffer.len());
            if run == 0 {
                return Ok(total);
            }
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&buffer[..run]);
            }
            let whole_buffer = run == buffer.len();
            self.input.consume(run);
            total += run;
            if !whole_buffer {
                return Ok(total);
            }
        }
    }
}

fn shown(byte: u8) -> String {
    if byte.is_ascii_graphic() { format!("'{}'", byte as char) } else { format!("byte 0x{byte:02X}") }
}
