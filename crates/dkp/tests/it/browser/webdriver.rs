//! Just enough of a WebDriver client to drive ChromeDriver: sessions,
//! navigation, elements found by CSS and picked by their accessible name
//! (as the browser computes it), typing, clicking and scripts. It speaks
//! HTTP/1.1 over a plain socket, one request a connection.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::services::{free_port, wait_for_port};
use crate::support::temp_dir;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// ChromeDriver and one headless Chromium session; both end when dropped.
pub struct Driver {
    port: u16,
    session: String,
    chromedriver: Child,
    profile: std::path::PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ending the session closes Chromium; killing ChromeDriver alone could leave it running.
        let (port, session) = (self.port, self.session.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                let _ = runtime.block_on(http(port, "DELETE", &format!("/session/{session}"), None));
            }
        })
        .join();
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One HTTP exchange with ChromeDriver: the parsed JSON body.
async fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    // ChromeDriver keeps the connection open: the answer ends where its
    // Content-Length (or its last chunk) says, not at the end of the stream.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let head = head.to_ascii_lowercase();
            let length =
                head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|n| n.trim().parse().ok());
            let complete = match length {
                Some(length) => rest.len() >= length,
                None => !head.contains("chunked") || rest.ends_with("0\r\n\r\n"),
            };
            if complete || read == 0 {
                let body = if head.contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_owned() };
                return serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"));
            }
        }
        if read == 0 {
            return Err("the connection closed before an answer".into());
        }
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

impl Driver {
    /// Starts ChromeDriver and a headless Chromium `width` pixels wide.
    pub async fn start(width: u32, height: u32) -> Driver {
        let chromedriver_path = program("DKP_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("DKP_TEST_CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let chromedriver = Command::new(&chromedriver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{chromedriver_path} starts (install chromium-driver, as .ci/run does): {e}"));
        wait_for_port(port, "chromedriver").await;
        let profile = temp_dir();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut driver = Driver { port, session: String::new(), chromedriver, profile };
        let started = http(port, "POST", "/session", Some(&capabilities)).await.expect("a Chromium session starts");
        driver.session =
            started["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {started}")).to_owned();
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.attempt(method, path, body).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A command that may fail for a reason a wait outlives (an element
    /// gone stale because the page changed under it).
    async fn attempt(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        let answer =
            http(self.port, method, &path, body.as_ref()).await.map_err(|e| format!("{method} {path}: {e}"))?;
        if let Some(error) = answer["value"]["error"].as_str() {
            return Err(format!("{method} {path}: {error}: {}", answer["value"]["message"]));
        }
        Ok(answer["value"].clone())
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn all(&self, css: &str) -> Vec<String> {
        let found = self.call("POST", "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        found.as_array().into_iter().flatten().filter_map(|e| e[ELEMENT].as_str().map(str::to_owned)).collect()
    }

    /// The accessible name the browser computes for an element.
    /// An element gone stale has no name (a wait then looks again).
    pub async fn name_of(&self, element: &str) -> String {
        let name = self.attempt("GET", &format!("/element/{element}/computedlabel"), None).await;
        name.ok().and_then(|n| n.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// The element matching `css` whose accessible name is `name`, waiting
    /// up to 10 s for it to appear.
    pub async fn named(&self, css: &str, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut seen = Vec::new();
            for element in self.all(css).await {
                let found = self.name_of(&element).await;
                if found == name {
                    return element;
                }
                seen.push(found);
            }
            assert!(Instant::now() < deadline, "no {css} named {name:?} on {}, only {seen:?}", self.url().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.call("POST", &format!("/element/{element}/clear"), Some(json!({}))).await;
        self.call("POST", &format!("/element/{element}/value"), Some(json!({"text": text}))).await;
    }

    /// Types into an element without clearing it first (a file chooser takes a path so).
    pub async fn send_keys(&self, element: &str, text: &str) {
        self.call("POST", &format!("/element/{element}/value"), Some(json!({"text": text}))).await;
    }

    pub async fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Types into the field named `label` (a label, as a screen reader reads it).
    pub async fn fill(&self, label: &str, text: &str) {
        let field = self.named("input, select, textarea", label).await;
        self.type_into(&field, text).await;
    }

    /// Clicks the button named `name`.
    pub async fn press(&self, name: &str) {
        let button = self.named("button", name).await;
        self.click(&button).await;
    }

    /// Presses and releases a key (`"\u{E004}"` is Tab) where the focus is.
    pub async fn key(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key},
        ]}]});
        self.call("POST", "/actions", Some(actions)).await;
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &str) {
        let data = self.call("GET", "/screenshot", None).await;
        let png = decode_base64(data.as_str().unwrap_or_default());
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    pub async fn script(&self, source: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": source, "args": []}))).await
    }

    /// Waits up to 15 s for `check` to hold of the text of the element
    /// matching `css` named `name`; the text it ended with.
    pub async fn wait_for_text(&self, css: &str, name: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Found again each time: the page may have been replaced meanwhile.
            let element = self.named(css, name).await;
            let text = self.attempt("GET", &format!("/element/{element}/text"), None).await;
            let text = text.ok().and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default();
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{name:?} still reads {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to 15 s for the page's address to end with `path`.
    pub async fn wait_for_path(&self, path: &str) -> String {
        self.wait_for_url(|url| url.ends_with(path)).await
    }

    /// Waits up to 15 s for the page's address to pass `check`; the address.
    pub async fn wait_for_url(&self, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let url = self.url().await;
            if check(&url) {
                return url;
            }
            assert!(Instant::now() < deadline, "the browser stays at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, d)| acc | u32::from(*d) << (18 - 6 * i));
            let bytes = bits.to_be_bytes();
            bytes[1..chunk.len()].to_vec()
        })
        .collect()
}
