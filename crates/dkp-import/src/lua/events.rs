//! A pull parser for SavedVariables files: a sequence of `Name = value`
//! assignments whose values are scalars or tables of tables.
//!
//! It never evaluates anything: a name that is not `true`, `false` or `nil`
//! where a value belongs (a variable, a function call) is a syntax error. It
//! holds an explicit stack of open tables, never recursion, so a table nested
//! 10,000 deep is refused at `max_depth` with the line of the `{` that went
//! too deep instead of overflowing the stack. Memory is the stack and one
//! token: what a caller keeps of the events is the caller's choice.

use std::io::BufRead;

use super::lexer::{Lexer, Token};
use super::value::{Key, Scalar};
use crate::error::{ErrorKind, ImportError, syntax, truncated};

/// The default nesting limit; real SavedVariables nest a dozen levels at most.
pub const MAX_DEPTH: usize = 200;

/// What the parser found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A table opens under `key` (a top-level table's key is its global name).
    Open { key: Key, line: u64 },
    /// A scalar entry (or a top-level `Name = value`).
    Scalar { key: Key, value: Scalar, line: u64 },
    /// The innermost open table closes.
    Close,
}

struct Frame {
    /// The next implicit array index.
    next_index: i64,
    /// A value was just read: a separator or `}` comes next.
    after_value: bool,
    opened_on: u64,
}

/// The events of one file, pulled one at a time.
pub struct Events<R> {
    lexer: Lexer<R>,
    /// Tokens read ahead and given back, the next one last.
    ahead: Vec<(Token, u64)>,
    stack: Vec<Frame>,
    max_depth: usize,
}

impl<R: BufRead> Events<R> {
    pub fn new(input: R) -> Events<R> {
        Events::with_max_depth(input, MAX_DEPTH)
    }

    pub fn with_max_depth(input: R, max_depth: usize) -> Events<R> {
        Events { lexer: Lexer::new(input), ahead: Vec::new(), stack: Vec::new(), max_depth }
    }

    /// The next event, or `None` at the end of a well-formed file.
    pub fn next_event(&mut self) -> Result<Option<Event>, ImportError> {
        loop {
            let Some(frame) = self.stack.last_mut() else { return self.statement() };
            if frame.after_value {
                let (token, line) = self.token()?;
                match token {
                    Token::Comma | Token::Semicolon => self.top().after_value = false,
                    Token::CloseBrace => return Ok(Some(self.close())),
                    Token::Eof => return Err(self.unclosed()),
                    other => return Err(syntax(line, format!("expected ',' or '}}' but found {}", describe(&other)))),
                }
                continue;
            }
            let (token, line) = self.token()?;
            return match token {
                Token::CloseBrace => Ok(Some(self.close())),
                Token::Eof => Err(self.unclosed()),
                Token::OpenBracket => {
                    let key = self.bracket_key(line)?;
                    self.expect(Token::Assign, "'=' after a key in brackets")?;
                    self.value(key).map(Some)
                }
                Token::Name(name) if self.peek_is(&Token::Assign)? => {
                    self.token()?;
                    self.value(Key::Name(name)).map(Some)
                }
                other => {
                    let frame = self.top();
                    let key = Key::Index(frame.next_index);
                    frame.next_index += 1;
                    self.ahead.push((other, line));
                    self.value(key).map(Some)
                }
            };
        }
    }

    /// At the top level: `Name = value`, skipping `;` between statements.
    fn statement(&mut self) -> Result<Option<Event>, ImportError> {
        loop {
            let (token, line) = self.token()?;
            match token {
                Token::Eof => return Ok(None),
                Token::Semicolon => continue,
                Token::Name(name) => {
                    self.expect(Token::Assign, "'=' after a global name")?;
                    return self.value(Key::Name(name)).map(Some);
                }
                other => {
                    return Err(syntax(line, format!("expected a name to assign but found {}", describe(&other))));
                }
            }
        }
    }

    /// A value under `key`: a scalar, or the opening of a table.
    fn value(&mut self, key: Key) -> Result<Event, ImportError> {
        let (token, line) = self.token()?;
        let scalar = match token {
            Token::OpenBrace => {
                if self.stack.len() >= self.max_depth {
                    return Err(ImportError::at(line, ErrorKind::TooDeep(self.max_depth)));
                }
                self.stack.push(Frame { next_index: 1, after_value: false, opened_on: line });
                return Ok(Event::Open { key, line });
            }
            Token::Str(bytes) => Scalar::Str(bytes),
            Token::Number(number) => Scalar::Number(number),
            Token::Minus => match self.token()? {
                (Token::Number(number), _) => Scalar::Number(number.negated()),
                (other, line) => {
                    return Err(syntax(line, format!("expected a number after '-' but found {}", describe(&other))));
                }
            },
            Token::Name(name) => match name.as_str() {
                "true" => Scalar::Bool(true),
                "false" => Scalar::Bool(false),
                "nil" => Scalar::Nil,
                _ => return Err(syntax(line, format!("'{name}' is not a value (an import reads data, never code)"))),
            },
            Token::Eof => return Err(truncated(line, "a value is missing at the end")),
            other => return Err(syntax(line, format!("expected a value but found {}", describe(&other)))),
        };
        if let Some(frame) = self.stack.last_mut() {
            frame.after_value = true;
        }
        Ok(Event::Scalar { key, value: scalar, line })
    }

    /// The key of `[key] =`, after the `[`.
    fn bracket_key(&mut self, line: u64) -> Result<Key, ImportError> {
        let key = match self.token()? {
            (Token::Str(bytes), line) => Key::Name(
                String::from_utf8(bytes)
                    .map_err(|_| ImportError::at(line, ErrorKind::Encoding("a table key is not valid UTF-8".into())))?,
            ),
            (Token::Number(number), _) => number_key(number),
            (Token::Minus, _) => match self.token()? {
                (Token::Number(number), _) => number_key(number.negated()),
                (other, line) => {
                    return Err(syntax(line, format!("expected a number after '-' but found {}", describe(&other))));
                }
            },
            (Token::Name(name), _) if name == "true" || name == "false" => Key::Bool(name == "true"),
            (other, _) => return Err(syntax(line, format!("a key in brackets cannot be {}", describe(&other)))),
        };
        self.expect(Token::CloseBracket, "']' after a key")?;
        Ok(key)
    }

    fn close(&mut self) -> Event {
        self.stack.pop();
        if let Some(parent) = self.stack.last_mut() {
            parent.after_value = true;
        }
        Event::Close
    }

    fn unclosed(&self) -> ImportError {
        let opened = self.stack.last().map_or(1, |frame| frame.opened_on);
        truncated(opened, "the table opened on this line is never closed")
    }

    fn top(&mut self) -> &mut Frame {
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    fn token(&mut self) -> Result<(Token, u64), ImportError> {
        match self.ahead.pop() {
            Some(ahead) => Ok(ahead),
            None => self.lexer.next_token(),
        }
    }

    fn peek_is(&mut self, wanted: &Token) -> Result<bool, ImportError> {
        let ahead = self.token()?;
        let same = &ahead.0 == wanted;
        self.ahead.push(ahead);
        Ok(same)
    }

    fn expect(&mut self, wanted: Token, what: &str) -> Result<(), ImportError> {
        match self.token()? {
            (token, _) if token == wanted => Ok(()),
            (Token::Eof, line) => Err(truncated(line, format!("expected {what}"))),
            (other, line) => Err(syntax(line, format!("expected {what} but found {}", describe(&other)))),
        }
    }
}

fn number_key(number: crate::amount::Decimal) -> Key {
    match number.to_i64() {
        Some(index) => Key::Index(index),
        None => Key::Number(number),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Name(name) => format!("'{name}'"),
        Token::Str(_) => "a string".into(),
        Token::Number(_) => "a number".into(),
        Token::Minus => "'-'".into(),
        Token::OpenBrace => "'{'".into(),
        Token::CloseBrace => "'}'".into(),
        Token::OpenBracket => "'['".into(),
        Token::CloseBracket => "']'".into(),
        Token::Assign => "'='".into(),
        Token::Comma => "','".into(),
        Token::Semicolon => "';'".into(),
        Token::Eof => "the end of the file".into(),
    }
}
