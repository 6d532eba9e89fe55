//! Character classes, read from whatever the file calls them: the game's
//! upper-case tokens (`DEATHKNIGHT`), English names, and the German, French,
//! Spanish and Russian names in their male and female forms (`Jägerin`,
//! `Chasseresse`, `Охотница`). Names compare without case, spaces, `-` or `_`.
//! A name not listed gives no class; the import warns once per unknown name.

use std::str::FromStr;

/// A World of Warcraft class, the canonical id the service stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Warrior,
    Paladin,
    Hunter,
    Rogue,
    Priest,
    DeathKnight,
    Shaman,
    Mage,
    Warlock,
    Monk,
    Druid,
    DemonHunter,
    Evoker,
}

/// Every spelling known for each class; the first is the canonical id.
const NAMES: [(Class, &[&str]); 13] = [
    (Class::Warrior, &["warrior", "Krieger", "Kriegerin", "Guerrier", "Guerrière", "Guerrero", "Guerrera", "Воин"]),
    (Class::Paladin, &["paladin", "Paladín", "Паладин"]),
    (
        Class::Hunter,
        &["hunter", "Jäger", "Jägerin", "Chasseur", "Chasseresse", "Cazador", "Cazadora", "Охотник", "Охотница"],
    ),
    (
        Class::Rogue,
        &["rogue", "Schurke", "Schurkin", "Voleur", "Voleuse", "Pícaro", "Pícara", "Разбойник", "Разбойница"],
    ),
    (
        Class::Priest,
        &["priest", "Priester", "Priesterin", "Prêtre", "Prêtresse", "Sacerdote", "Sacerdotisa", "Жрец", "Жрица"],
    ),
    (
        Class::DeathKnight,
        &[
            "death_knight",
            "Todesritter",
            "Todesritterin",
            "Chevalier de la mort",
            "Chevalière de la mort",
            "Caballero de la Muerte",
            "Рыцарь смерти",
        ],
    ),
    (Class::Shaman, &["shaman", "Schamane", "Schamanin", "Chaman", "Chamane", "Chamán", "Шаман", "Шаманка"]),
    (Class::Mage, &["mage", "Magier", "Magierin", "Mago", "Maga", "Маг"]),
    (
        Class::Warlock,
        &["warlock", "Hexenmeister", "Hexenmeisterin", "Démoniste", "Brujo", "Bruja", "Чернокнижник", "Чернокнижница"],
    ),
    (Class::Monk, &["monk", "Mönch", "Mönchin", "Moine", "Moniale", "Monje", "Monja", "Монах", "Монахиня"]),
    (Class::Druid, &["druid", "Druide", "Druidin", "Druidesse", "Druida", "Друид"]),
    (
        Class::DemonHunter,
        &[
            "demon_hunter",
            "Dämonenjäger",
            "Dämonenjägerin",
            "Chasseur de démons",
            "Chasseuse de démons",
            "Cazador de demonios",
            "Cazadora de demonios",
            "Охотник на демонов",
            "Охотница на демонов",
        ],
    ),
    (
        Class::Evoker,
        &[
            "evoker",
            "Rufer",
            "Ruferin",
            "Évocateur",
            "Évocatrice",
            "Evocador",
            "Evocadora",
            "Пробудитель",
            "Пробудительница",
        ],
    ),
];

impl Class {
    /// The canonical id: `warrior`, `death_knight`, `demon_hunter`, ...
    pub fn as_str(self) -> &'static str {
        NAMES[self as usize].1[0]
    }

    /// The game's upper-case token, as MonolithDKP keeps it: `WARRIOR`, `DEATHKNIGHT`.
    pub fn token(self) -> String {
        self.as_str().replace('_', "").to_uppercase()
    }

    /// The English name, as an English game client shows it: `Warrior`, `Death Knight`.
    pub fn english(self) -> String {
        let word = |word: &str| {
            let mut letters = word.chars();
            letters.next().map(|first| first.to_uppercase().chain(letters).collect::<String>()).unwrap_or_default()
        };
        self.as_str().split('_').map(word).collect::<Vec<_>>().join(" ")
    }

    /// The class a file's class name means, in any of the known languages.
    pub fn from_name(name: &str) -> Option<Class> {
        let wanted = fold(name);
        if wanted.is_empty() {
            return None;
        }
        NAMES.iter().find(|(_, names)| names.iter().any(|known| fold(known) == wanted)).map(|(class, _)| *class)
    }
}

impl FromStr for Class {
    type Err = UnknownClass;

    fn from_str(text: &str) -> Result<Class, UnknownClass> {
        Class::from_name(text).ok_or(UnknownClass)
    }
}

/// A class name that is not in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown class")]
pub struct UnknownClass;

fn fold(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace() && *c != '-' && *c != '_').flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_tokens_and_english_names_are_read() {
        assert_eq!(Class::from_name("DEATHKNIGHT"), Some(Class::DeathKnight));
        assert_eq!(Class::from_name("Death Knight"), Some(Class::DeathKnight));
        assert_eq!(Class::from_name("SHAMAN"), Some(Class::Shaman));
        assert_eq!(Class::from_name("demon_hunter"), Some(Class::DemonHunter));
        assert_eq!(Class::from_name("Evoker"), Some(Class::Evoker));
    }

    #[test]
    fn german_french_spanish_and_russian_names_in_both_genders_are_read() {
        let cases = [
            ("Jäger", Class::Hunter),
            ("Jägerin", Class::Hunter),
            ("Hexenmeisterin", Class::Warlock),
            ("Chasseresse", Class::Hunter),
            ("Chasseur de démons", Class::DemonHunter),
            ("Prêtresse", Class::Priest),
            ("Moniale", Class::Monk),
            ("Pícara", Class::Rogue),
            ("Охотница", Class::Hunter),
            ("Охотник на демонов", Class::DemonHunter),
            ("Рыцарь смерти", Class::DeathKnight),
            ("чернокнижница", Class::Warlock),
            ("Жрица", Class::Priest),
        ];
        for (name, class) in cases {
            assert_eq!(Class::from_name(name), Some(class), "{name}");
        }
    }

    #[test]
    fn canonical_ids_tokens_and_english_names_round_trip() {
        for (class, _) in NAMES {
            assert_eq!(class.as_str().parse::<Class>(), Ok(class));
            assert_eq!(class.token().parse::<Class>(), Ok(class));
            assert_eq!(class.english().parse::<Class>(), Ok(class));
        }
        assert_eq!(
            (Class::DeathKnight.token(), Class::DeathKnight.english()),
            ("DEATHKNIGHT".into(), "Death Knight".into())
        );
        assert_eq!((Class::Warrior.token(), Class::Warrior.english()), ("WARRIOR".into(), "Warrior".into()));
        assert_eq!(Class::DeathKnight.as_str(), "death_knight");
    }

    #[test]
    fn unknown_and_empty_names_give_no_class() {
        assert_eq!(Class::from_name("Necromancer"), None);
        assert_eq!(Class::from_name(""), None);
        assert_eq!(Class::from_name(" - "), None);
    }
}
