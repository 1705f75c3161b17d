//! Codes: a source's category codes → the model's, through code lists, then checked against the
//! model's vocabularies of sex, age and grade (DESIGN §3).
//!
//! Owns: [`CodeList`] (inline in a pipeline or `schemas/codelists/<name>.toml`), and the canonical
//! forms of `sex`, `age` and `grade` with the everyday spellings each one understands without a
//! list. Must not: look at Arrow arrays (the batch-level harmoniser calls these functions once per
//! distinct code), resolve a list's name to a path (`Pipeline::check` does), or know other columns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::model::Sex;

/// Why a code list cannot be parsed, or a code (after mapping) is not in the model's vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error(
        "code list {} is not a `[codes]` table of \"source\" = \"model\" strings with an optional \
         `description`",
        .path.display()
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error(
        "sex `{code}` is not one of F, M, T, X; map it with `sex = {{ column = \"Kon\", codes = \
         {{ \"1\" = \"M\", \"2\" = \"F\", \"1+2\" = \"T\" }} }}`"
    )]
    Sex { code: String },
    #[error(
        "age `{code}` is not an age (`15`), a range (`0-17`), an open range (`85+`) or `total`; \
         map it with `age = {{ column = \"Alder\", codes = {{ \"tot\" = \"total\" }} }}`"
    )]
    Age { code: String },
    #[error(
        "grade `{code}` is not one of `fk`, `ak1`…`ak9`, `gy1`…`gy4` or empty (spellings such as \
         `åk 8`, `årskurs 8` and `gymnasiet år 2` are understood); map it with `grade = {{ column = \
         \"arskurs\", codes = {{ \"{code}\" = \"…\" }} }}` or a named list (`codes = \"grades\"`)"
    )]
    Grade { code: String },
}

/// A code list: source code → model code. Inline in a pipeline (`codes = { "1" = "M" }`) or named
/// (`codes = "grades"` → `schemas/codelists/grades.toml`).
///
/// Source codes match exactly (case and spaces included); a code the list does not name passes
/// through unchanged, so a list only needs the codes that differ from the model's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeList {
    name: Option<String>,
    description: Option<String>,
    map: BTreeMap<String, String>,
}

/// `schemas/codelists/<name>.toml` as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeListFile {
    description: Option<String>,
    codes: BTreeMap<String, String>,
}

impl CodeList {
    /// A list written inline in a pipeline; it has no name.
    pub fn inline(map: BTreeMap<String, String>) -> Self {
        Self {
            map,
            ..Self::default()
        }
    }

    /// Parses a named list read from `path` (`schemas` reads it), e.g.
    /// `schemas/codelists/grades.toml`:
    ///
    /// ```toml
    /// description = "Survey spellings of school grades"   # optional
    /// [codes]
    /// "åk 8" = "ak8"
    /// "Gy2" = "gy2"
    /// ```
    ///
    /// The list is named after the file's stem (`grades`). Any other key is an error
    /// ([`CodeError::Parse`], whose source names the key and line).
    pub fn parse(text: &str, path: &Path) -> Result<Self, CodeError> {
        let file: CodeListFile = toml::from_str(text).map_err(|source| CodeError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            name: path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned()),
            description: file.description,
            map: file.codes,
        })
    }

    /// The list's name (the file stem) when it was loaded from a file; `None` when inline.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The file's `description`, if it has one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The model code for `code`, or `code` itself when the list does not name it.
    pub fn map<'a>(&'a self, code: &'a str) -> &'a str {
        self.map.get(code).map_or(code, String::as_str)
    }

    /// Every (source, model) pair, sorted by source code: lets `check` test each target against
    /// the model's vocabulary before any data arrives.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map
            .iter()
            .map(|(from, to)| (from.as_str(), to.as_str()))
    }
}

/// The model's `sex` for `code`: exactly `F`, `M`, `T` (total) or `X`, after mapping. Sources'
/// own codes (SCB `1`/`2`/`1+2`, Kolada `K`/`M`/`T`, survey `flicka`/`pojke`) are left to code
/// lists, because the same letter means different things across sources (Kolada's `K` is women).
pub fn canonical_sex(code: &str) -> Result<Sex, CodeError> {
    Sex::parse(code).ok_or_else(|| CodeError::Sex {
        code: code.to_owned(),
    })
}

static AGE: LazyLock<Regex> = LazyLock::new(|| {
    // Ages in sources' labels: `15`, `15 år`, `0-17`, `0 – 17 år`, `85+`, `85+ år`. The dash may be
    // a hyphen, an en dash or a minus sign (Excel exports turn one into another).
    Regex::new(r"^([0-9]{1,3})(?:\s*(?:(\+)|[-\u{2013}\u{2212}]\s*([0-9]{1,3})))?(?:\s*år)?$")
        .expect("the age pattern is a valid regex")
});

/// The model's `age` for `code`: a single age (`15`), a range (`0-17`, first below last), an open
/// range (`85+`) or `total`.
///
/// Understood without a code list: surrounding and inner spaces, an en dash or minus sign for the
/// hyphen, a trailing ` år` (`0-17 år`), leading zeros (`05` → `5`), and `total`/`totalt` in any
/// case. SCB's `tot` and other abbreviations are not guessed at: map them (`codes = { tot =
/// "total" }`), so that an unexpected code is seen rather than silently taken for the total.
pub fn canonical_age(code: &str) -> Result<String, CodeError> {
    let text = code.trim().to_lowercase();
    if text == "total" || text == "totalt" {
        return Ok("total".to_owned());
    }
    let error = || CodeError::Age {
        code: code.to_owned(),
    };
    let captures = AGE.captures(&text).ok_or_else(error)?;
    let age = |n: usize| -> u16 {
        captures[n]
            .parse()
            .expect("the age pattern captures at most three ASCII digits")
    };
    let from = age(1);
    match (captures.get(2), captures.get(3)) {
        (Some(_), _) => Ok(format!("{from}+")),
        (None, Some(_)) if age(3) > from => Ok(format!("{from}-{}", age(3))),
        (None, Some(_)) => Err(error()),
        (None, None) => Ok(format!("{from}")),
    }
}

static GRADE: LazyLock<Regex> = LazyLock::new(|| {
    // Compulsory school: `åk 8`, `ak8`, `åk. 8`, `årskurs 8`, `arskurs 8`. Upper secondary: `gy 2`,
    // `gy2`, `gymnasiet år 2`, `gymnasiet åk 2`, `gymnasieskolan år 2`, `år 2 gymnasiet`. Matched on
    // the lowercased code with inner spaces already collapsed to one.
    Regex::new(concat!(
        r"^(?:",
        r"(?:åk|ak|årskurs|arskurs)\.? ?(?P<ak>[0-9]{1,2})",
        r"|(?:gy|gymn|gymnasiet|gymnasieskolan)\.? ?(?:(?:år|åk|ar|ak) ?)?(?P<gy>[0-9]{1,2})",
        r"|(?:år|åk) (?P<gy_after>[0-9]{1,2}) (?:gy|gymnasiet)",
        r")$",
    ))
    .expect("the grade pattern is a valid regex")
});

/// The model's `grade` for `code`: `fk` (förskoleklass), `ak1` … `ak9`, `gy1` … `gy4`, or empty
/// (no grade).
///
/// Understood without a code list, in any case and with any spacing: `åk 8`, `Åk8`, `ak8`,
/// `åk. 8`, `årskurs 8` → `ak8`; `gy 2`, `Gy2`, `gymnasiet år 2`, `Gymnasiet åk 2`, `år 2
/// gymnasiet` → `gy2`; `förskoleklass`, `F-klass` → `fk`. A bare `år 8` is rejected: surveys
/// write `år 2` for the second year of gymnasiet as well as for årskurs 2, so only a code list
/// can say which one an export means.
pub fn canonical_grade(code: &str) -> Result<String, CodeError> {
    let text = code
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let error = || CodeError::Grade {
        code: code.to_owned(),
    };
    match text.as_str() {
        "" => return Ok(String::new()),
        "fk" | "förskoleklass" | "f-klass" | "förskoleklassen" => return Ok("fk".to_owned()),
        _ => {}
    }
    let captures = GRADE.captures(&text).ok_or_else(error)?;
    let year = |group: regex::Match<'_>| -> u8 {
        group
            .as_str()
            .parse()
            .expect("the grade pattern captures at most two ASCII digits")
    };
    if let Some(n) = captures.name("ak").map(year) {
        return if (1..=9).contains(&n) {
            Ok(format!("ak{n}"))
        } else {
            Err(error())
        };
    }
    let n = captures
        .name("gy")
        .or_else(|| captures.name("gy_after"))
        .map(year)
        .expect("the grade pattern has a year in each alternative");
    if (1..=4).contains(&n) {
        Ok(format!("gy{n}"))
    } else {
        Err(error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grade(code: &str) -> String {
        canonical_grade(code).unwrap_or_else(|err| panic!("{err}"))
    }

    fn age(code: &str) -> String {
        canonical_age(code).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn a_code_list_maps_named_codes_and_passes_the_rest_through() {
        let list = CodeList::inline(BTreeMap::from([
            ("1".to_owned(), "M".to_owned()),
            ("2".to_owned(), "F".to_owned()),
            ("1+2".to_owned(), "T".to_owned()),
        ]));
        assert_eq!(list.map("1+2"), "T");
        assert_eq!(list.map("F"), "F");
        assert_eq!(list.map(" 1"), " 1");
        assert_eq!(list.name(), None);
    }

    #[test]
    fn the_sample_grades_list_loads_and_maps_to_canonical_grades() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/codelists/grades.toml");
        let list = CodeList::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        assert_eq!(list.name(), Some("grades"));
        assert!(list.description().is_some());
        assert_eq!(list.map("år 8"), "ak8");
        for (from, to) in list.pairs() {
            assert_eq!(canonical_grade(to).unwrap(), to, "{from} → {to}");
        }
    }

    #[test]
    fn a_code_list_with_an_unknown_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kon.toml");
        let err =
            CodeList::parse("[codes]\n\"1\" = \"M\"\n[code]\n\"2\" = \"F\"\n", &path).unwrap_err();
        let message = err
            .to_string()
            .replace(&dir.path().display().to_string(), "<dir>");
        insta::assert_snapshot!(message,
            @r#"code list <dir>/kon.toml is not a `[codes]` table of "source" = "model" strings with an optional `description`"#);
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("unknown field `code`"), "{source}");
    }

    #[test]
    fn sex_accepts_only_the_model_letters() {
        assert_eq!(canonical_sex("T").unwrap(), Sex::T);
        assert_eq!(canonical_sex("X").unwrap(), Sex::X);
        assert!(canonical_sex("f").is_err());
        insta::assert_snapshot!(canonical_sex("1").unwrap_err(),
            @r#"sex `1` is not one of F, M, T, X; map it with `sex = { column = "Kon", codes = { "1" = "M", "2" = "F", "1+2" = "T" } }`"#);
    }

    #[test]
    fn age_spellings_become_canonical() {
        assert_eq!(age("15"), "15");
        assert_eq!(age("05"), "5");
        assert_eq!(age("0-17"), "0-17");
        assert_eq!(age("0 – 17"), "0-17");
        assert_eq!(age(" 0 - 17 år "), "0-17");
        assert_eq!(age("85+"), "85+");
        assert_eq!(age("100+ år"), "100+");
        assert_eq!(age("Totalt"), "total");
        assert_eq!(age("total"), "total");
    }

    #[test]
    fn ages_that_are_not_ages_say_what_is_allowed() {
        insta::assert_snapshot!(canonical_age("tot").unwrap_err(),
            @r#"age `tot` is not an age (`15`), a range (`0-17`), an open range (`85+`) or `total`; map it with `age = { column = "Alder", codes = { "tot" = "total" } }`"#);
        for code in ["17-0", "5-5", "-4", "15-", "1000", "15 years", ""] {
            assert!(canonical_age(code).is_err(), "{code}");
        }
    }

    #[test]
    fn survey_grade_spellings_become_canonical() {
        for code in [
            "åk 8",
            "Åk8",
            "ak8",
            "åk. 8",
            "ÅRSKURS 8",
            "arskurs  8",
            "ak8 ",
        ] {
            assert_eq!(grade(code), "ak8", "{code}");
        }
        for code in [
            "gy 2",
            "Gy2",
            "gymnasiet år 2",
            "Gymnasiet år 2",
            "gymnasiet åk 2",
            "gymnasieskolan år 2",
            "år 2 gymnasiet",
        ] {
            assert_eq!(grade(code), "gy2", "{code}");
        }
        assert_eq!(grade("Förskoleklass"), "fk");
        assert_eq!(grade("fk"), "fk");
        assert_eq!(grade(""), "");
        assert_eq!(grade("  "), "");
    }

    #[test]
    fn grades_outside_school_say_what_is_allowed() {
        insta::assert_snapshot!(canonical_grade("år 8").unwrap_err(),
            @r#"grade `år 8` is not one of `fk`, `ak1`…`ak9`, `gy1`…`gy4` or empty (spellings such as `åk 8`, `årskurs 8` and `gymnasiet år 2` are understood); map it with `grade = { column = "arskurs", codes = { "år 8" = "…" } }` or a named list (`codes = "grades"`)"#);
        for code in ["åk 0", "åk 10", "gy5", "gy 0", "ak", "15 år", "högstadiet"] {
            assert!(canonical_grade(code).is_err(), "{code}");
        }
    }

    proptest! {
        #[test]
        fn canonical_ages_are_their_own_canonical_form(from in 0..=120u16, to in 1..=120u16, kind in 0..4) {
            let code = match kind {
                0 => format!("{from}"),
                1 if to > from => format!("{from}-{to}"),
                2 => format!("{from}+"),
                _ => "total".to_owned(),
            };
            prop_assert_eq!(canonical_age(&code).unwrap(), code);
        }

        #[test]
        fn spaced_and_dashed_age_ranges_become_the_hyphen_form(
            from in 0..=99u16, width in 1..=20u16,
            dash in prop::sample::select(vec!["-", "–", "−"]),
            left in " {0,2}", right in " {0,2}", suffix in prop::sample::select(vec!["", " år", "år"]),
        ) {
            let code = format!("{from}{left}{dash}{right}{}{suffix}", from + width);
            prop_assert_eq!(canonical_age(&code).unwrap(), format!("{from}-{}", from + width));
        }

        #[test]
        fn canonical_grades_are_their_own_canonical_form(n in 1..=9u8, gy in prop::bool::ANY) {
            let code = if gy && n <= 4 { format!("gy{n}") } else { format!("ak{n}") };
            prop_assert_eq!(canonical_grade(&code).unwrap(), code);
        }

        #[test]
        fn grade_spellings_in_any_case_become_canonical(
            n in 1..=4u8,
            prefix in prop::sample::select(vec!["åk", "ak", "årskurs", "Åk", "ÅK", "Årskurs"]),
            gy_prefix in prop::sample::select(vec!["gy", "Gy", "GY", "gymnasiet år", "Gymnasiet År"]),
            space in " {0,2}",
        ) {
            prop_assert_eq!(canonical_grade(&format!("{prefix}{space}{n}")).unwrap(), format!("ak{n}"));
            prop_assert_eq!(canonical_grade(&format!("{gy_prefix}{space}{n}")).unwrap(), format!("gy{n}"));
        }

        #[test]
        fn any_code_is_checked_without_panicking(code in "\\PC{0,12}") {
            let _ = canonical_age(&code);
            let _ = canonical_grade(&code);
            let _ = canonical_sex(&code);
        }
    }
}
