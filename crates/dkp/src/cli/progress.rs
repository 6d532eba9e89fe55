//! What `dkp import` shows while it works, on standard error. On a terminal:
//! the steps as lines and, while the file is parsed, one bar redrawn in
//! place (`\r`), cleared before the next line. Anywhere else (a pipe, a log
//! file): plain lines prefixed `dkp import:`, parsing reported at each
//! quarter of the file, so a log stays short and free of control codes.

use std::io::Write;

/// The width of the bar, in cells.
const BAR: u64 = 30;

pub struct Progress<W: Write> {
    out: W,
    terminal: bool,
    /// The last percentage drawn (terminal) or quarter written (plain lines).
    shown: Option<u64>,
    /// Whether a bar stands on the current line.
    bar_drawn: bool,
}

impl<W: Write> Progress<W> {
    pub fn new(out: W, terminal: bool) -> Progress<W> {
        Progress { out, terminal, shown: None, bar_drawn: false }
    }

    /// One step, on a line of its own.
    pub fn say(&mut self, line: &str) {
        let written = if self.terminal {
            let clear = if self.bar_drawn { "\r\x1b[2K" } else { "" };
            writeln!(self.out, "{clear}\u{2192} {line}")
        } else {
            writeln!(self.out, "dkp import: {line}")
        };
        self.bar_drawn = false;
        // Progress is a courtesy: a closed standard error does not stop the import.
        let _ = written.and_then(|()| self.out.flush());
    }

    /// `done` of `total` bytes of the file parsed.
    pub fn parsed(&mut self, done: u64, total: u64) {
        let percent = done.min(total).saturating_mul(100).checked_div(total).unwrap_or(100);
        let step = if self.terminal { percent } else { percent / 25 };
        if self.shown.is_some_and(|shown| shown >= step) || (!self.terminal && step == 0) {
            return;
        }
        self.shown = Some(step);
        if !self.terminal {
            return self.say(&format!("parsed {percent}% ({done} of {total} bytes)"));
        }
        let filled = percent * BAR / 100;
        let bar = format!("{}{}", "#".repeat(filled as usize), "-".repeat((BAR - filled) as usize));
        let written = write!(self.out, "\r[{bar}] {percent:>3}% parsed ({done} of {total} bytes)");
        self.bar_drawn = true;
        let _ = written.and_then(|()| self.out.flush());
    }

    /// What was written, for tests.
    #[cfg(test)]
    fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(terminal: bool, steps: &[u64], total: u64) -> String {
        let mut progress = Progress::new(Vec::new(), terminal);
        progress.say("importing");
        for done in steps {
            progress.parsed(*done, total);
        }
        progress.say("written");
        String::from_utf8(progress.into_inner()).unwrap()
    }

    #[test]
    fn off_a_terminal_each_quarter_of_the_file_is_one_plain_line() {
        let text = shown(false, &[0, 100, 260, 260, 400, 510, 999, 1000, 1000], 1000);

        assert_eq!(
            text,
            "dkp import: importing\n\
             dkp import: parsed 26% (260 of 1000 bytes)\n\
             dkp import: parsed 51% (510 of 1000 bytes)\n\
             dkp import: parsed 99% (999 of 1000 bytes)\n\
             dkp import: parsed 100% (1000 of 1000 bytes)\n\
             dkp import: written\n"
        );
    }

    #[test]
    fn on_a_terminal_one_bar_is_redrawn_in_place_and_cleared_for_the_next_line() {
        let text = shown(true, &[0, 500, 500, 1000], 1000);

        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "\u{2192} importing");
        let redraws: Vec<&str> = lines[1].split('\r').skip(1).collect();
        assert_eq!(redraws.len(), 4, "0%, 50% and 100% drawn once each, then cleared: {:?}", lines[1]);
        assert_eq!(redraws[1], format!("[{}{}]  50% parsed (500 of 1000 bytes)", "#".repeat(15), "-".repeat(15)));
        assert!(redraws[2].starts_with(&format!("[{}] 100%", "#".repeat(30))));
        assert_eq!(redraws[3], "\x1b[2K\u{2192} written");
        assert_eq!(lines[2], "");
    }

    #[test]
    fn an_empty_file_is_parsed_whole() {
        assert_eq!(
            shown(false, &[0], 0),
            "dkp import: importing\ndkp import: parsed 100% (0 of 0 bytes)\ndkp import: written\n"
        );
    }
}
