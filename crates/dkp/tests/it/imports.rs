//! Imports and exports: a file's players become members and its balances the
//! pool's, all or nothing, once per file; a dry run writes nothing; a bad file
//! is a 422 naming the line; exports read back into a fresh guild give the
//! same standings; `dkp import` on the command line does what the API does.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, Kind, Reply, TestApp, spawn_app};

both_stores!(
    a_csv_import_creates_members_with_the_balances_the_report_gives_and_a_second_upload_changes_nothing,
    an_eqdkp_export_matches_the_members_a_guild_has_instead_of_doubling_them,
    a_dry_run_reports_and_writes_nothing,
    a_bad_file_is_refused_naming_the_line_and_nothing_is_written,
    a_large_bad_file_is_refused_naming_the_line_and_the_server_carries_on,
    a_file_over_the_limit_is_refused,
    only_officers_import_and_only_members_export,
    a_standings_export_imported_into_a_fresh_guild_gives_the_same_standings,
    the_json_and_ledger_exports_hold_every_standing_and_entry,
);

const BALANCES: &str = "name,balance\nAna,120.5\nBors,-3\nCid,0\n";
/// Names each export format has to escape: a comma, quotes, a backslash,
/// XML's `&` and `<`, letters beyond ASCII.
const AWKWARD: &str = "name,balance\n\"Ana, the Bold\",120.5\n\"Bo \"\"Q\"\" \\ Slash\",-3\n\
                       Tom & <Jerry>,0.05\nScyllá,7.25\nВеда,-0.5\n";
const EQDKP: &str = include_str!("../../../dkp-import/tests/fixtures/eqdkp-plain.xml");

async fn upload(
    app: &TestApp,
    guild: &Guild,
    token: &str,
    format: &str,
    file: impl Into<Vec<u8>>,
    dry_run: bool,
) -> Reply {
    let path =
        format!("/api/v1/guilds/{}/imports?format={format}&pool_id={}&dry_run={dry_run}", guild.slug, guild.pool);
    app.post(&path).token(token).bare(file.into()).send().await
}

/// Name to balance, of everyone in the pool.
async fn standings(app: &TestApp, guild: &Guild) -> BTreeMap<String, String> {
    let path = format!("/api/v1/guilds/{}/pools/{}/standings?include_inactive=true", guild.slug, guild.pool);
    let reply = app.get(&path).token(&guild.owner.token).send().await.expect(200);
    let rows = reply.json["standings"].as_array().expect("standings").clone();
    rows.iter().map(|s| (s["name"].as_str().unwrap().to_owned(), s["balance"].as_str().unwrap().to_owned())).collect()
}

async fn entry_count(app: &TestApp, guild: &Guild) -> usize {
    let path = format!("/api/v1/guilds/{}/pools/{}/entries?limit=500", guild.slug, guild.pool);
    let reply = app.get(&path).token(&guild.owner.token).send().await.expect(200);
    reply.json["entries"].as_array().expect("entries").len()
}

/// The report's `balances` as name to balance.
fn reported(report: &Value) -> BTreeMap<String, String> {
    let rows = report["balances"].as_array().expect("balances");
    rows.iter().map(|b| (b["name"].as_str().unwrap().to_owned(), b["balance"].as_str().unwrap().to_owned())).collect()
}

async fn a_csv_import_creates_members_with_the_balances_the_report_gives_and_a_second_upload_changes_nothing(
    app: TestApp,
) {
    let guild = app.guild("csvs").await;

    let first = upload(&app, &guild, &guild.owner.token, "csv", BALANCES, false).await.expect(201);

    let report = &first.json;
    assert_eq!(report["already_imported"], false);
    assert_eq!(report["format"], "csv");
    assert_eq!(report["members"], json!({"created": 3, "matched": 0}));
    assert_eq!(report["characters"], json!({"created": 0}));
    assert_eq!(report["entries"], 1);
    assert_eq!(report["balances"], json!([{"name": "Ana", "balance": "120.50"}, {"name": "Bors", "balance": "-3.00"}]));
    assert_eq!(report["stated"].as_array().unwrap().len(), 3);
    assert_eq!(report["mismatches"], json!([]));
    let after = standings(&app, &guild).await;
    assert_eq!(after["Ana"], "120.50");
    assert_eq!(after["Bors"], "-3.00");
    assert_eq!(after["Cid"], "0.00");
    let entries = entry_count(&app, &guild).await;
    assert_eq!(entries, 1);

    let again = upload(&app, &guild, &guild.owner.token, "csv", BALANCES, false).await.expect(200);

    assert_eq!(again.json["already_imported"], true);
    assert_eq!(again.json["members"], report["members"], "the first import's report");
    assert_eq!(standings(&app, &guild).await, after);
    assert_eq!(entry_count(&app, &guild).await, entries);
    app.assert_ledger_consistent().await;
}

async fn an_eqdkp_export_matches_the_members_a_guild_has_instead_of_doubling_them(app: TestApp) {
    let guild = app.guild("eqs").await;
    let members = format!("/api/v1/guilds/{}/members", guild.slug);
    let lucey = app.post(&members).token(&guild.owner.token).json(json!({"name": "LUCEY"})).send().await.expect(201);
    let lucey_id = lucey.json["member"]["id"].as_str().unwrap().to_owned();
    let award = json!({"member_ids": [lucey_id], "amount": 40, "reason": "old raid"});
    let awards = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    app.post(&awards).token(&guild.owner.token).json(award).send().await.expect(201);

    let reply = upload(&app, &guild, &guild.owner.token, "eqdkp-xml", EQDKP, false).await.expect(201);

    assert_eq!(reply.json["members"]["matched"], 1);
    let balances = reported(&reply.json);
    assert_eq!(balances["Lucey"], "158.00", "the two spellings of the file add up");
    let after = standings(&app, &guild).await;
    assert_eq!(after["LUCEY"], "158.00", "the member the guild had, brought to the file's balance");
    assert!(!after.contains_key("Lucey"), "no second Lucey: {after:?}");
    for (name, balance) in balances.iter().filter(|(name, _)| name.as_str() != "Lucey") {
        assert_eq!(after.get(name), Some(balance), "{name}");
    }
    let created = reply.json["members"]["created"].as_u64().unwrap() as usize;
    assert_eq!(after.len(), 2 + created, "the owner, Lucey and the new members");
    app.assert_ledger_consistent().await;
}

async fn a_dry_run_reports_and_writes_nothing(app: TestApp) {
    let guild = app.guild("drys").await;
    let before = standings(&app, &guild).await;

    let dry = upload(&app, &guild, &guild.owner.token, "csv", BALANCES, true).await.expect(200);

    assert_eq!(dry.json["dry_run"], true);
    assert_eq!(dry.json["members"], json!({"created": 3, "matched": 0}));
    assert_eq!(dry.json["entries"], 1);
    assert_eq!(standings(&app, &guild).await, before);
    assert_eq!(entry_count(&app, &guild).await, 0);
    let real = upload(&app, &guild, &guild.owner.token, "csv", BALANCES, false).await.expect(201);
    assert_eq!(real.json["already_imported"], false, "a dry run does not count as an import");
}

async fn a_bad_file_is_refused_naming_the_line_and_nothing_is_written(app: TestApp) {
    let guild = app.guild("bads").await;
    let before = standings(&app, &guild).await;
    let cut = &EQDKP[..EQDKP.len() / 2];

    for (format, file) in [("eqdkp-xml", cut), ("csv", "who,what\nAna,1\n"), ("csv", "name,balance\nAna,12x\n")] {
        let reply = upload(&app, &guild, &guild.owner.token, format, file, false).await;
        reply.expect_error(422, "invalid_import");
    }
    let reply = upload(&app, &guild, &guild.owner.token, "csv", "name,balance\nAna,1\nBo,x\n", false).await;
    let reply = reply.expect_error(422, "invalid_import");
    assert!(reply.json["error"]["message"].as_str().unwrap().contains("line 3"), "{}", reply.text);
    upload(&app, &guild, &guild.owner.token, "xls", BALANCES, false).await.expect_error(422, "invalid_field");
    assert_eq!(standings(&app, &guild).await, before);
    assert_eq!(entry_count(&app, &guild).await, 0);
}

/// A MonolithDKP table of `players` records, one to a line after the first.
fn monolith_table(players: usize) -> String {
    let mut file = String::from("MonDKP_DKPTable = {\n");
    for n in 0..players {
        file.push_str(&format!("{{[\"player\"]=\"Raider{n}\",[\"dkp\"]={n}.5,[\"class\"]=\"MAGE\"}},\n"));
    }
    file + "}\n"
}

/// Bad files of the sizes real ones reach, each with the line its message must name.
fn large_bad_files() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let whole = monolith_table(20_000);
    let cut = whole[..whole.len() - 20].to_owned();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("name,balance\nAna,1\n".encode_utf16().flat_map(u16::to_le_bytes));
    let mut latin1 = monolith_table(5_000).into_bytes();
    latin1.truncate(latin1.len() - 2);
    latin1.extend(b"{[\"player\"]=\"Scyll\xE1\",[\"dkp\"]=1},\n}\n");
    let mut columns = String::from("name,date,reason\n");
    (0..10_000).for_each(|n| columns.push_str(&format!("Raider{n},2024-01-01,kill\n")));
    let deep = format!("MonDKP_DKPTable = {}{}", "{\n".repeat(10_000), "}\n".repeat(10_000));
    let deep_xml = format!(
        "<response>\n<players>\n<player>\n{}{}</player>\n</players>\n</response>\n",
        "<points>\n".repeat(10_000),
        "</points>".repeat(10_000)
    );
    vec![
        (
            "a truncated Lua file",
            "monolith",
            cut.into_bytes(),
            "line 20001: a key in brackets cannot be the end of the file",
        ),
        ("a UTF-16 file", "csv", utf16, "line 1: the file is UTF-16"),
        ("a Latin-1 name", "monolith", latin1, "line 5002: a string is not valid UTF-8"),
        ("a CSV without an amount", "csv", columns.into_bytes(), "line 1: missing column(s)"),
        ("tables nested 10,000 deep", "monolith", deep.into_bytes(), "line 201: tables nest deeper than 200"),
        ("elements nested 10,000 deep", "eqdkp-xml", deep_xml.into_bytes(), "line 3: a player name is empty"),
    ]
}

async fn a_large_bad_file_is_refused_naming_the_line_and_the_server_carries_on(app: TestApp) {
    let guild = app.guild("largebads").await;
    let before = standings(&app, &guild).await;

    let mut answers = Vec::new();
    for (what, format, file, expected) in large_bad_files() {
        let reply = upload(&app, &guild, &guild.owner.token, format, file, false).await;

        let reply = reply.expect_error(422, "invalid_import");
        let message = reply.json["error"]["message"].as_str().unwrap_or_default().to_owned();
        answers.push((what, message.starts_with(expected), message));
    }
    assert!(answers.iter().all(|(_, named, _)| *named), "{answers:#?}");
    assert_eq!(standings(&app, &guild).await, before, "nothing written");
    assert_eq!(entry_count(&app, &guild).await, 0);
    let good = upload(&app, &guild, &guild.owner.token, "monolith", monolith_table(10_000), false).await.expect(201);
    assert_eq!(good.json["members"]["created"], 10_000, "the server imports on after the bad files");
}

async fn a_file_over_the_limit_is_refused(app: TestApp) {
    let guild = app.guild("bigs").await;
    let path = format!("/api/v1/guilds/{}/imports?format=csv&pool_id={}", guild.slug, guild.pool);
    let declared =
        app.post(&path).token(&guild.owner.token).header("content-length", "67108865").bare("name,balance\n");
    declared.send().await.expect_error(413, "payload_too_large");

    let mut body = b"name,balance\n".to_vec();
    body.resize(64 * 1024 * 1024 + 1, b'a');
    let sent = app.post(&path).token(&guild.owner.token).bare(body).send().await;

    sent.expect_error(413, "payload_too_large");
    assert_eq!(entry_count(&app, &guild).await, 0);
}

async fn only_officers_import_and_only_members_export(app: TestApp) {
    let guild = app.guild("roles").await;
    let (member, _) = app.member(&guild, "plain", "member").await;
    let outsider = app.register("outsider").await;

    upload(&app, &guild, &member.token, "csv", BALANCES, false).await.expect_error(403, "forbidden");
    upload(&app, &guild, &outsider.token, "csv", BALANCES, false).await.expect_error(404, "not_found");

    let export = format!("/api/v1/guilds/{}/pools/{}/export", guild.slug, guild.pool);
    let entries = format!("/api/v1/guilds/{}/pools/{}/entries/export", guild.slug, guild.pool);
    app.get(&export).token(&member.token).send().await.expect(200);
    app.get(&entries).token(&member.token).send().await.expect(200);
    app.get(&export).token(&outsider.token).send().await.expect_error(404, "not_found");
    app.get(&entries).token(&outsider.token).send().await.expect_error(404, "not_found");
    assert_eq!(entry_count(&app, &guild).await, 0);
}

/// A pool whose standings hold `AWKWARD`'s names, an owner and a member
/// paid by an award whose main character is a death knight; the owner's
/// name has no `-` (the game's formats read `A-B` as character A of realm B).
async fn awkward_pool(app: &TestApp) -> Guild {
    let source = app.guild_owned_by("source", "sourceowner").await;
    upload(app, &source, &source.owner.token, "csv", AWKWARD, false).await.expect(201);
    let (_, dora) = app.funded_member(&source, "dora", 33).await;
    let main = json!({"member_id": dora, "name": "Doraline", "class": "Death Knight", "main": true});
    let characters = format!("/api/v1/guilds/{}/characters", source.slug);
    app.post(&characters).token(&source.owner.token).json(main).send().await.expect(201);
    source
}

/// The class of the guild's character of that name.
async fn class_of(app: &TestApp, guild: &Guild, name: &str) -> Value {
    let path = format!("/api/v1/guilds/{}/characters", guild.slug);
    let reply = app.get(&path).token(&guild.owner.token).send().await.expect(200);
    let characters = reply.json["characters"].as_array().expect("characters").clone();
    characters.into_iter().find(|c| c["name"] == name).map(|c| c["class"].clone()).unwrap_or(Value::Null)
}

async fn a_standings_export_imported_into_a_fresh_guild_gives_the_same_standings(app: TestApp) {
    let source = awkward_pool(&app).await;
    let expected = standings(&app, &source).await;
    assert_eq!(expected.len(), 7);

    let formats =
        [("csv", "text/csv"), ("eqdkp-xml", "application/xml"), ("monolith", "text/plain"), ("webdkp", "text/plain")];
    for (format, kind) in formats {
        let export = format!("/api/v1/guilds/{}/pools/{}/export?format={format}", source.slug, source.pool);
        let file = app.get(&export).token(&source.owner.token).send().await.expect(200);
        assert!(file.headers["content-type"].to_str().unwrap().starts_with(kind), "{format}");
        let target = app.guild(&format!("into-{format}")).await;

        let report = upload(&app, &target, &target.owner.token, format, file.text.as_str(), false).await.expect(201);

        assert_eq!(report.json["mismatches"], json!([]), "{format}");
        let mut imported = standings(&app, &target).await;
        imported.remove(&format!("{}-owner", target.slug));
        assert_eq!(imported, expected, "{format}:\n{}", file.text);
        let class = if format == "csv" { Value::Null } else { json!("death_knight") };
        assert_eq!(class_of(&app, &target, "dora").await, class, "the class of dora's main, in {format}");
    }
    app.assert_ledger_consistent().await;
}

async fn the_json_and_ledger_exports_hold_every_standing_and_entry(app: TestApp) {
    let source = awkward_pool(&app).await;
    let exported = standings(&app, &source).await;

    let json_export = format!("/api/v1/guilds/{}/pools/{}/export?format=json", source.slug, source.pool);
    let json = app.get(&json_export).token(&source.owner.token).send().await.expect(200);

    assert_eq!(json.json["standings"].as_array().unwrap().len(), exported.len());
    let ledger = format!("/api/v1/guilds/{}/pools/{}/entries/export", source.slug, source.pool);
    let ledger_csv = app.get(&format!("{ledger}?format=csv")).token(&source.owner.token).send().await.expect(200);
    assert!(ledger_csv.text.starts_with("entry_id,created_at,kind,"));
    assert!(ledger_csv.text.contains(",import,") && ledger_csv.text.contains(",award,"));
    let ledger_json = app.get(&format!("{ledger}?format=json")).token(&source.owner.token).send().await.expect(200);
    assert_eq!(ledger_json.json["entries"].as_array().unwrap().len(), entry_count(&app, &source).await);
    let xml = app.get(&format!("{ledger}?format=eqdkp-xml")).token(&source.owner.token).send().await;
    xml.expect_error(422, "invalid_field");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkp_import_on_the_command_line_imports_through_the_same_use_case() {
    let app = spawn_app(Kind::Sqlite).await;
    let guild = app.guild("clis").await;
    let file = app.dir.join("balances.csv");
    std::fs::write(&file, BALANCES).unwrap();
    let run = |dry_run: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dkp"));
        command.env_remove("DATABASE_URL").env("DKP_LOG", "warn").arg("import");
        command.args(["--data-dir", app.dir.to_str().unwrap(), "--guild", &guild.slug, "--pool", &guild.pool]);
        command.args(["--format", "csv", "--json"]).arg(&file);
        if dry_run {
            command.arg("--dry-run");
        }
        command.output().expect("dkp import runs")
    };

    let dry = run(true);
    let done = run(false);

    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let dry: Value = serde_json::from_slice(&dry.stdout).expect("a JSON report");
    assert_eq!((dry["dry_run"].clone(), dry["members"]["created"].clone()), (json!(true), json!(3)));
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let progress = String::from_utf8_lossy(&done.stderr);
    let parsed = format!("dkp import: parsed 100% ({0} of {0} bytes)\n", BALANCES.len());
    assert!(progress.contains(&parsed), "plain progress lines off a terminal:\n{progress}");
    assert!(!progress.contains(['\r', '\x1b']), "no bar drawn off a terminal: {progress:?}");
    let report: Value = serde_json::from_slice(&done.stdout).expect("a JSON report");
    assert_eq!(report["members"], json!({"created": 3, "matched": 0}));
    let after = standings(&app, &guild).await;
    assert_eq!((after["Ana"].as_str(), after["Bors"].as_str()), ("120.50", "-3.00"));
    let again: Value = serde_json::from_slice(&run(false).stdout).expect("a JSON report");
    assert_eq!(again["already_imported"], true);
}
