//! The Lua reader through its public parts: every syntax form, the limits and
//! the errors, each naming its line.

use super::*;
use crate::amount::Decimal;
use crate::error::{ErrorKind, ImportError};

/// Collects every top-level assignment whole.
struct Everything(Vec<(String, Value)>);

impl Visitor for Everything {
    fn step(&mut self, _path: &[Key]) -> Step {
        Step::Collect
    }

    fn record(&mut self, path: &[Key], value: Value, _line: u64) -> Result<(), ImportError> {
        self.0.push((path[0].to_text(), value));
        Ok(())
    }
}

fn parse(text: &str) -> Result<Vec<(String, Value)>, ImportError> {
    let mut everything = Everything(Vec::new());
    walk(&mut Events::new(text.as_bytes()), &mut everything)?;
    Ok(everything.0)
}

fn one(text: &str) -> Value {
    let mut all = parse(text).unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0).1
}

fn text_of(literal: &str) -> String {
    match one(&format!("X = {literal}")) {
        Value::Str(text) => text,
        other => panic!("not a string: {other:?}"),
    }
}

fn number(text: &str) -> Value {
    Value::Number(Decimal::parse(text).unwrap())
}

fn error_of(text: &str) -> ImportError {
    parse(text).unwrap_err()
}

#[test]
fn assignments_of_tables_and_scalars_are_read() {
    let all = parse("A = {\n}\nB = 5\nC = \"x\"; D = true E = nil").unwrap();
    let names: Vec<&str> = all.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C", "D", "E"]);
    assert_eq!(all[1].1, number("5"));
    assert_eq!(all[3].1, Value::Bool(true));
    assert_eq!(all[4].1, Value::Nil);
}

#[test]
fn keys_of_every_form_and_implicit_items_are_read() {
    let value =
        one("T = { [\"a b\"] = 1, [2] = 2, bare = 3, \"first\", [true] = 4, \"second\"; [-1] = 5, [1.5] = 6, }");
    let table = value.table().unwrap();
    let keys: Vec<Key> = table.entries.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(
        keys,
        [
            Key::Name("a b".into()),
            Key::Index(2),
            Key::Name("bare".into()),
            Key::Index(1),
            Key::Bool(true),
            Key::Index(2),
            Key::Index(-1),
            Key::Number(Decimal::parse("1.5").unwrap()),
        ]
    );
    assert_eq!(table.get("bare"), Some(&number("3")));
}

#[test]
fn numbers_of_every_form_are_exact() {
    let value = one("T = { 12, -12, 1.5, -0.25, 1e3, 2.5E-1, 0x1F, -0xff, .5, 3., 1e+2 }");
    let expected = ["12", "-12", "1.5", "-0.25", "1000", "0.25", "31", "-255", "0.5", "3", "100"];
    let values: Vec<&Value> = value.table().unwrap().values().collect();
    for (value, text) in values.iter().zip(expected) {
        let wanted = Decimal::parse(text).unwrap().to_points().unwrap();
        assert_eq!(value.number().unwrap().to_points().unwrap().points, wanted.points, "{text}");
    }
}

#[test]
fn a_string_the_exports_write_reads_back_byte_for_byte() {
    for text in [
        "plain",
        "quote \" and 'apostrophe'",
        "back\\slash\\",
        "two\nlines\r\n",
        "tab\tand\u{0}nul\u{1}1",
        "Веда Scyllá 😀",
        "]]",
    ] {
        let literal = crate::export::lua_string(text);

        assert_eq!(text_of(&literal), text, "{literal}");
        assert!(!literal.contains('\n'), "one line: {literal}");
    }
}

#[test]
fn every_string_escape_is_resolved() {
    assert_eq!(text_of(r#""a\nb\tc\\d\"e\'f""#), "a\nb\tc\\d\"e'f");
    assert_eq!(text_of(r#""\a\b\f\r\v""#), "\x07\x08\x0C\r\x0B");
    assert_eq!(text_of(r#""\65\066\0671""#), "ABC1");
    assert_eq!(text_of(r#""\x41\x6a""#), "Aj");
    assert_eq!(text_of("\"a\\z  \n\t  b\""), "ab");
    assert_eq!(text_of(r#""\u{E9}\u{1F600}""#), "é😀");
    assert_eq!(text_of("\"line\\\nnext\""), "line\nnext");
    assert_eq!(text_of("'single \"quoted\"'"), "single \"quoted\"");
    assert_eq!(text_of(r#""\195\169""#), "é");
}

#[test]
fn long_strings_keep_their_text_as_written() {
    assert_eq!(text_of("[[plain]]"), "plain");
    assert_eq!(text_of("[[\nfirst newline dropped\n]]"), "first newline dropped\n");
    assert_eq!(text_of("[==[has ]] and ]=] inside]==]"), "has ]] and ]=] inside");
    assert_eq!(text_of("[[a\r\nb]]"), "a\nb");
}

#[test]
fn comments_of_every_form_are_skipped() {
    let value = one(
        "-- header\nT = { -- after a brace\n 1, --[[ block\n spanning ]] 2, --[==[ long ]] ]==] 3, --[ not long\n 4 }",
    );
    let values: Vec<&Value> = value.table().unwrap().values().collect();
    assert_eq!(values, [&number("1"), &number("2"), &number("3"), &number("4")]);
}

#[test]
fn lines_are_counted_through_strings_and_comments() {
    let error = error_of("T = {\n[[a\nb]], --[[c\nd]]\n\"\\\n\",\n  bad }");
    assert_eq!(error.line, Some(7));
    let error = error_of("T = {\r\n\r\n1 2 }");
    assert_eq!(error.line, Some(3));
}

#[test]
fn a_truncated_table_names_the_line_it_opened_on() {
    let error = error_of("T = {\n  a = {\n    1,\n");
    assert!(matches!(error.kind, ErrorKind::Truncated(_)), "{error}");
    assert_eq!(error.line, Some(2));
    assert!(matches!(error_of("T = { \"open").kind, ErrorKind::Truncated(_)));
    assert!(matches!(error_of("T = { [[open").kind, ErrorKind::Truncated(_)));
    assert!(matches!(error_of("T =").kind, ErrorKind::Truncated(_)));
}

#[test]
fn code_is_refused_never_run() {
    for code in ["T = os.exit()", "T = { x = y }", "T = 1 + 2", "function f() end", "T = { [f] = 1 }"] {
        let error = error_of(code);
        assert!(matches!(error.kind, ErrorKind::Syntax(_)), "{code}: {error}");
    }
}

#[test]
fn malformed_strings_and_numbers_are_syntax_errors() {
    for bad in [
        "T = \"a\nb\"",
        r#"T = "\q""#,
        r#"T = "\x4""#,
        r#"T = "\256""#,
        r#"T = "\u{110000}""#,
        r#"T = "\u{}""#,
        "T = 0x1p4",
        "T = 1e",
        "T = [=x",
        "T = { 1 2 }",
        "T = { [\"a\"] 1 }",
    ] {
        let error = error_of(bad);
        assert!(matches!(error.kind, ErrorKind::Syntax(_)), "{bad}: {error}");
        assert_eq!(error.line, Some(1), "{bad}");
    }
}

#[test]
fn a_ten_thousand_deep_nesting_is_refused_without_overflowing() {
    let deep = format!("T = {}{}", "{".repeat(10_000), "}".repeat(10_000));
    let error = error_of(&deep);
    assert_eq!(error.kind, ErrorKind::TooDeep(MAX_DEPTH));
    assert_eq!(error.line, Some(1));
    let deep_lines = format!("T = {}", "{\n".repeat(10_000));
    assert_eq!(error_of(&deep_lines).line, Some(MAX_DEPTH as u64 + 1));
}

#[test]
fn invalid_utf8_is_an_error_where_read_and_ignored_where_skipped() {
    struct OnlyB;
    impl Visitor for OnlyB {
        fn step(&mut self, path: &[Key]) -> Step {
            if path[0].name() == Some("B") { Step::Collect } else { Step::Skip }
        }
        fn record(&mut self, _: &[Key], _: Value, _: u64) -> Result<(), ImportError> {
            Ok(())
        }
    }
    let file = b"A = { \"\xFF\xFE\", \"\\255\" }\nB = { ok = \"fine\" }\n";
    assert!(walk(&mut Events::new(&file[..]), &mut OnlyB).is_ok());
    let error = error_of("A = {}\nB = { \"\\255\" }");
    assert_eq!(error.line, Some(2));
    assert!(matches!(error.kind, ErrorKind::Encoding(_)));
    let error = walk(&mut Events::new(&b"A = { [\"\xFF\"] = 1 }"[..]), &mut OnlyB).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Encoding(_)));
}

#[test]
fn a_huge_record_is_refused_but_a_huge_skipped_table_is_not() {
    let items = "1,".repeat(MAX_RECORD_VALUES + 1);
    let file = format!("A = {{ {items} }}");
    assert!(matches!(error_of(&file).kind, ErrorKind::RecordTooLarge(_)));
    struct Nothing;
    impl Visitor for Nothing {
        fn step(&mut self, _: &[Key]) -> Step {
            Step::Skip
        }
        fn record(&mut self, _: &[Key], _: Value, _: u64) -> Result<(), ImportError> {
            Ok(())
        }
    }
    assert!(walk(&mut Events::new(file.as_bytes()), &mut Nothing).is_ok());
}

#[test]
fn the_pull_parser_gives_events_in_order() {
    let mut events = Events::new(&b"T = { a = 1, { } }"[..]);
    let mut seen = Vec::new();
    while let Some(event) = events.next_event().unwrap() {
        seen.push(match event {
            Event::Open { key, .. } => format!("open {}", key.to_text()),
            Event::Scalar { key, .. } => format!("scalar {}", key.to_text()),
            Event::Close => "close".into(),
        });
    }
    assert_eq!(seen, ["open T", "scalar a", "open 1", "close", "close"]);
}
