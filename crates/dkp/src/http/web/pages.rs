//! The templates and the words of the pages: every template is compiled into
//! the binary and parsed once at start; every string a user reads comes from
//! one catalogue per language (`i18n/en.txt`, `i18n/ru.txt`, lines of
//! `key = text`), looked up by `t("key")` in the templates. HTML escaping is
//! on for every template, so a guild's, member's or item's name is shown as
//! typed and never read as markup.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderValue;
use minijinja::{Environment, State, Value};

use crate::blobs::PublicUrls;

/// The languages the pages speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| text.eq_ignore_ascii_case(lang.as_str()))
    }

    /// The first language of an `Accept-Language` header that the pages
    /// speak, by the client's order of preference; English otherwise.
    pub fn preferred(header: &str) -> Lang {
        let mut ranked: Vec<(u16, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(at, part)| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let lang = Lang::parse(tag.split('-').next()?)?;
                let weight = pieces
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(((weight.clamp(0.0, 1.0) * 1000.0) as u16, at, lang))
            })
            .filter(|(weight, _, _)| *weight > 0)
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.first().map_or(Lang::En, |(_, _, lang)| *lang)
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("home.html", include_str!("templates/home.html")),
    ("signup.html", include_str!("templates/signup.html")),
    ("problem.html", include_str!("templates/problem.html")),
    ("guild.html", include_str!("templates/guild.html")),
    ("member.html", include_str!("templates/member.html")),
    ("pools.html", include_str!("templates/pools.html")),
    ("lots.html", include_str!("templates/lots.html")),
    ("lot.html", include_str!("templates/lot.html")),
    ("raids.html", include_str!("templates/raids.html")),
    ("raid.html", include_str!("templates/raid.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("console.html", include_str!("templates/console.html")),
    ("import.html", include_str!("templates/import.html")),
];

const CATALOGUES: &[(Lang, &str)] = &[(Lang::En, include_str!("i18n/en.txt")), (Lang::Ru, include_str!("i18n/ru.txt"))];

/// The parsed templates and catalogues.
pub struct Pages {
    env: Environment<'static>,
    catalogues: Arc<Catalogues>,
    /// The Content-Security-Policy of every page (none if an origin
    /// configured cannot stand in a header).
    policy: Option<HeaderValue>,
}

/// The Content-Security-Policy of every page; it also names the static
/// files' host and the image host when those are served from others.
fn policy(assets: Option<&str>, images: Option<&str>) -> Option<HeaderValue> {
    let (assets, images) =
        (assets.map(|o| format!(" {o}")).unwrap_or_default(), images.map(|o| format!(" {o}")).unwrap_or_default());
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'{assets}; style-src 'self'{assets}; img-src 'self' data:{images}; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ))
    .ok()
}

/// One catalogue: key to text.
type Catalogue = HashMap<&'static str, &'static str>;

/// The catalogues by language code.
type Catalogues = HashMap<&'static str, Catalogue>;

fn catalogue(text: &'static str) -> Catalogue {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(" = ").map(|(key, value)| (key.trim(), value.trim())))
        .collect()
}

/// `t("key")`: the text of `key` in the page's language (the `lang` of the
/// context), English where the page's language lacks it, `?` where both do
/// (which a test rules out for the templates).
fn translate(catalogues: &Catalogues, lang: &str, key: &str) -> &'static str {
    let found = catalogues.get(lang).and_then(|c| c.get(key));
    found.or_else(|| catalogues.get("en").and_then(|c| c.get(key))).copied().unwrap_or("?")
}

impl Pages {
    /// Parses every template; a template that does not parse is a fault of
    /// this build, found by the first test that starts the service.
    pub fn new(assets: &PublicUrls, image_origin: Option<&str>) -> Result<Pages, minijinja::Error> {
        let mut env = Environment::new();
        env.add_global("assets", Value::from_serialize(super::assets::urls(assets)));
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let catalogues: Arc<Catalogues> =
            Arc::new(CATALOGUES.iter().map(|(lang, text)| (lang.as_str(), catalogue(text))).collect());
        let words = catalogues.clone();
        env.add_function("t", move |state: &State, key: &str| {
            let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            translate(&words, &lang, key)
        });
        env.add_filter("when", when);
        Ok(Pages { env, catalogues, policy: policy(assets.foreign_origin(), image_origin) })
    }

    /// The Content-Security-Policy of every page.
    pub fn policy(&self) -> Option<&HeaderValue> {
        self.policy.as_ref()
    }

    /// The page `template` with `context`.
    pub fn render(&self, template: &str, context: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(template)?.render(context)
    }

    /// The text of `key` in `lang`, for what is said outside a template (a
    /// refusal's message).
    pub fn text(&self, lang: Lang, key: &str) -> &'static str {
        translate(&self.catalogues, lang.as_str(), key)
    }

    /// Whether the catalogue has `key` (a refusal's code may have no words of its own).
    pub fn has(&self, key: &str) -> bool {
        self.catalogues.get("en").is_some_and(|c| c.contains_key(key))
    }
}

/// `"2026-11-26T18:00:00Z" | when`: the time as `2026-11-26 18:00 UTC`.
fn when(value: &str) -> String {
    match (value.get(..10), value.get(11..16)) {
        (Some(day), Some(clock)) => format!("{day} {clock} UTC"),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_has_the_same_keys() {
        let keys = |lang: Lang| {
            let text = CATALOGUES.iter().find(|(l, _)| *l == lang).map(|(_, t)| *t).unwrap_or_default();
            let mut keys: Vec<_> = catalogue(text).into_keys().collect();
            keys.sort_unstable();
            keys
        };
        assert!(!keys(Lang::En).is_empty());
        assert_eq!(keys(Lang::En), keys(Lang::Ru));
    }

    #[test]
    fn every_key_a_template_asks_for_is_in_the_catalogue() {
        let en = catalogue(CATALOGUES[0].1);
        let mut missing = Vec::new();
        for (name, source) in TEMPLATES {
            for piece in source.split("t(\"").skip(1) {
                let key = piece.split('"').next().unwrap_or_default();
                // `t("kind." ~ e.kind)`: a family of keys, checked below.
                let known =
                    if key.ends_with('.') { FAMILIES.iter().any(|(f, _)| *f == key) } else { en.contains_key(key) };
                if !known {
                    missing.push(format!("{name}: {key}"));
                }
            }
        }
        assert!(missing.is_empty(), "keys not in i18n/en.txt: {missing:?}");
    }

    /// The families of keys the templates build from a value, and every value.
    const FAMILIES: &[(&str, &[&str])] = &[
        ("role.", &["owner", "officer", "member"]),
        (
            "kind.",
            &[
                "award",
                "adjustment",
                "transfer",
                "reversal",
                "settlement",
                "decay",
                "raid",
                "raid_correction",
                "import",
            ],
        ),
        ("mode.", &["open", "sealed_first", "sealed_second"]),
        ("status.", &["open", "closed", "cancelled", "all"]),
        ("standings.", &["name", "balance", "available", "earned", "spent"]),
        ("format.", &["eqdkp-xml", "monolith", "webdkp", "mrt", "rclc-csv", "gargul", "csv"]),
    ];

    #[test]
    fn every_value_of_a_family_has_its_words() {
        let en = catalogue(CATALOGUES[0].1);
        for (family, values) in FAMILIES {
            for value in *values {
                assert!(en.contains_key(format!("{family}{value}").as_str()), "{family}{value}");
            }
        }
        let kinds: Vec<&str> = dkp_core::EntryKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, FAMILIES[1].1, "entry kinds");
        let formats: Vec<&str> = dkp_import::Format::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(formats, FAMILIES[5].1, "import formats");
    }

    #[test]
    fn every_template_parses() {
        assert!(Pages::new(&PublicUrls::parse("/static").unwrap(), None).is_ok());
    }

    #[test]
    fn the_preferred_language_follows_the_clients_weights() {
        assert_eq!(Lang::preferred("ru-RU,ru;q=0.9,en;q=0.8"), Lang::Ru);
        assert_eq!(Lang::preferred("de-DE,en;q=0.5,ru;q=0.7"), Lang::Ru);
        assert_eq!(Lang::preferred("de-DE"), Lang::En);
        assert_eq!(Lang::preferred("ru;q=0, en"), Lang::En);
        assert_eq!(Lang::preferred(""), Lang::En);
    }
}
