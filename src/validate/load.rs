//! The Frictionless JSON loader: a schema file → a checked [`TableSchema`] or every problem in it.
//!
//! Owns: walking the schema's JSON by hand (unknown keys, types, separators, constraints, the
//! primary key), parsing bounds and enum values with the field's type, compiling patterns.
//! Must not: look at any table (`check_columns` and [`validate`](super::validate) do).

use std::collections::HashSet;
use std::path::Path;

use regex::Regex;
use serde_json::Value as Json;

use crate::problem::Problem;

use super::schema::{
    Allowed, Bound, Constraints, DEFAULT_MISSING_VALUES, DateFormat, Field, FieldType, Pattern,
    SUPPORTED_TYPES, TableSchema, Value,
};

impl TableSchema {
    /// Reads and checks a schema file. Every problem found (unreadable file, bad JSON, unknown
    /// keys, unknown types, bad regexes, minimum above maximum, a primary key naming an unknown
    /// field …) comes back at once, each with its dotted key path.
    pub fn load(path: &Path) -> Result<TableSchema, Vec<Problem>> {
        let json = std::fs::read_to_string(path).map_err(|err| {
            vec![Problem::error(
                path,
                "",
                format!("cannot read the file: {err}"),
            )]
        })?;
        Self::from_json(&json, path)
    }

    /// Checks the schema in `json`; `path` is the file it came from, for problems and errors.
    pub fn from_json(json: &str, path: &Path) -> Result<TableSchema, Vec<Problem>> {
        let value: Json = serde_json::from_str(json)
            .map_err(|err| vec![Problem::error(path, "", format!("not valid JSON: {err}"))])?;
        let mut loader = Loader {
            path,
            problems: Vec::new(),
        };
        let schema = loader.schema(&value);
        match schema {
            Some(schema) if loader.problems.is_empty() => Ok(schema),
            _ => Err(loader.problems),
        }
    }
}

/// Walks a schema's JSON, collecting every problem with its key path. A hand walk rather than
/// serde with `deny_unknown_fields`, because serde stops at the first problem and `check` must
/// report them all.
struct Loader<'a> {
    path: &'a Path,
    problems: Vec<Problem>,
}

const SCHEMA_KEYS: [&str; 7] = [
    "fields",
    "missingValues",
    "primaryKey",
    "$schema",
    "name",
    "title",
    "description",
];
const FIELD_KEYS: [&str; 9] = [
    "name",
    "type",
    "format",
    "title",
    "description",
    "example",
    "constraints",
    "decimalChar",
    "groupChar",
];
const CONSTRAINT_KEYS: [&str; 8] = [
    "required",
    "unique",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
];

impl Loader<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::error(self.path, key, message));
    }

    /// Reports keys of `object` not in `known`, at `prefix.key`.
    fn unknown_keys(
        &mut self,
        object: &serde_json::Map<String, Json>,
        known: &[&str],
        prefix: &str,
        what: &str,
    ) {
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            let at = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            self.problem(
                at,
                format!("unknown key `{key}`; {what} may have {}", known.join(", ")),
            );
        }
    }

    fn schema(&mut self, value: &Json) -> Option<TableSchema> {
        let Some(object) = value.as_object() else {
            self.problem("", "a Table Schema is a JSON object with `fields`");
            return None;
        };
        self.unknown_keys(object, &SCHEMA_KEYS, "", "a Table Schema");
        let raw = match object.get("fields") {
            None => {
                self.problem("fields", "missing; list the table's columns under `fields`");
                &[][..]
            }
            Some(Json::Array(fields)) if !fields.is_empty() => fields.as_slice(),
            Some(_) => {
                self.problem("fields", "must be a non-empty array of field objects");
                &[][..]
            }
        };
        let fields: Vec<Option<Field>> = raw
            .iter()
            .enumerate()
            .map(|(i, f)| self.field(i, f))
            .collect();
        // Names as written, so that a field with a problem of its own still counts as declared.
        let mut names: Vec<&str> = Vec::new();
        for (i, field) in raw.iter().enumerate() {
            let Some(name) = field.get("name").and_then(Json::as_str) else {
                continue;
            };
            if names.contains(&name) {
                self.problem(
                    format!("fields[{i}].name"),
                    format!("field `{name}` is declared twice"),
                );
            } else {
                names.push(name);
            }
        }
        let missing_values = match object.get("missingValues") {
            None => DEFAULT_MISSING_VALUES.map(String::from).to_vec(),
            Some(value) => self
                .strings(value, "missingValues", true)
                .unwrap_or_default(),
        };
        let primary_key = match object.get("primaryKey") {
            None => Vec::new(),
            Some(Json::String(name)) => vec![name.clone()],
            Some(value) => self.strings(value, "primaryKey", false).unwrap_or_default(),
        };
        let mut in_key = HashSet::new();
        for (j, name) in primary_key.iter().enumerate() {
            let at = if matches!(object.get("primaryKey"), Some(Json::String(_))) {
                "primaryKey".to_string()
            } else {
                format!("primaryKey[{j}]")
            };
            if !in_key.insert(name.as_str()) {
                self.problem(at, format!("`{name}` appears twice in the primary key"));
            } else if !names.contains(&name.as_str()) && !raw.is_empty() {
                self.problem(
                    at,
                    format!(
                        "`{name}` is not a field; the fields are {}",
                        names.join(", ")
                    ),
                );
            }
        }
        let fields: Option<Vec<Field>> = fields.into_iter().collect();
        Some(TableSchema {
            fields: fields?,
            missing_values,
            primary_key,
            path: self.path.to_path_buf(),
        })
    }

    /// An array of strings at `key` (empty allowed only if `may_be_empty`).
    fn strings(&mut self, value: &Json, key: &str, may_be_empty: bool) -> Option<Vec<String>> {
        let Some(items) = value.as_array().filter(|a| may_be_empty || !a.is_empty()) else {
            let what = if may_be_empty {
                "an array"
            } else {
                "a non-empty array"
            };
            self.problem(key, format!("must be {what} of strings"));
            return None;
        };
        let mut strings = Vec::new();
        for (j, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => strings.push(s.to_string()),
                None => self.problem(
                    format!("{key}[{j}]"),
                    format!("must be a string, not {item}"),
                ),
            }
        }
        (strings.len() == items.len()).then_some(strings)
    }

    fn optional_string(
        &mut self,
        object: &serde_json::Map<String, Json>,
        key: &str,
        at: &str,
    ) -> Option<String> {
        match object.get(key)? {
            Json::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    format!("{at}.{key}"),
                    format!("must be a string, not {other}"),
                );
                None
            }
        }
    }

    /// One character from `decimalChar`/`groupChar`, reported unless `applies`.
    fn separator(
        &mut self,
        object: &serde_json::Map<String, Json>,
        key: &str,
        at: &str,
        applies: bool,
        types: &str,
    ) -> Option<char> {
        let s = self.optional_string(object, key, at)?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if applies => Some(c),
            (Some(_), None) => {
                self.problem(
                    format!("{at}.{key}"),
                    format!("applies only to {types} fields"),
                );
                None
            }
            _ => {
                self.problem(
                    format!("{at}.{key}"),
                    format!("must be one character, not `{s}`"),
                );
                None
            }
        }
    }

    fn field(&mut self, i: usize, value: &Json) -> Option<Field> {
        let at = format!("fields[{i}]");
        let Some(object) = value.as_object() else {
            self.problem(at, "a field must be an object with at least `name`");
            return None;
        };
        self.unknown_keys(object, &FIELD_KEYS, &at, "a field");
        let name = match object.get("name") {
            Some(Json::String(name)) if !name.is_empty() => Some(name.clone()),
            Some(other) => {
                self.problem(
                    format!("{at}.name"),
                    format!("must be a non-empty string, not {other}"),
                );
                None
            }
            None => {
                self.problem(
                    format!("{at}.name"),
                    "missing; name the column this field describes",
                );
                None
            }
        };
        let title = self.optional_string(object, "title", &at);
        let description = self.optional_string(object, "description", &at);
        let type_name = match object.get("type") {
            None => Some("string".to_string()),
            Some(Json::String(t)) => Some(t.clone()),
            Some(other) => {
                self.problem(
                    format!("{at}.type"),
                    format!("must be a string, not {other}"),
                );
                None
            }
        };
        let type_name = type_name.filter(|t| {
            let known = SUPPORTED_TYPES.contains(&t.as_str());
            if !known {
                let what = if FRICTIONLESS_ONLY.contains(&t.as_str()) {
                    "is not supported here"
                } else {
                    "is unknown"
                };
                self.problem(
                    format!("{at}.type"),
                    format!(
                        "type `{t}` {what}; use one of {}",
                        SUPPORTED_TYPES.join(", ")
                    ),
                );
            }
            known
        });
        let t = type_name.as_deref();
        let decimal = self.separator(
            object,
            "decimalChar",
            &at,
            t.is_none_or(|t| t == "number"),
            "number",
        );
        let group = self.separator(
            object,
            "groupChar",
            &at,
            t.is_none_or(|t| t == "number" || t == "integer"),
            "number and integer",
        );
        if let (Some(d), Some(g)) = (decimal, group)
            && d == g
        {
            self.problem(
                format!("{at}.groupChar"),
                format!("is the same as decimalChar (`{d}`)"),
            );
        }
        let format = self.optional_string(object, "format", &at);
        let kind = match t {
            None => None,
            Some("string") => Some(FieldType::String),
            Some("integer") => Some(FieldType::Integer { group }),
            Some("number") => Some(FieldType::Number {
                decimal: decimal.unwrap_or('.'),
                group,
            }),
            Some("year") => Some(FieldType::Year),
            // The last of SUPPORTED_TYPES.
            Some(_) => Some(FieldType::Date(DateFormat::Iso)),
        };
        let kind = match (kind, format.as_deref()) {
            (kind, None | Some("default")) => kind,
            (Some(FieldType::Date(_)), Some(f)) => {
                let pattern = f.strip_prefix("fmt:").unwrap_or(f);
                let valid = pattern.contains('%')
                    && chrono::format::StrftimeItems::new(pattern)
                        .all(|item| !matches!(item, chrono::format::Item::Error));
                if valid {
                    Some(FieldType::Date(DateFormat::Pattern(pattern.to_string())))
                } else {
                    self.problem(
                        format!("{at}.format"),
                        format!(
                            "date format `{f}` is not supported; use `default` (YYYY-MM-DD) or a \
                             strftime pattern such as `%d/%m/%Y`"
                        ),
                    );
                    None
                }
            }
            (kind, Some(f)) => {
                if let Some(kind) = &kind {
                    self.problem(
                        format!("{at}.format"),
                        format!(
                            "format `{f}` is not supported for {} fields; use `default`",
                            kind.name()
                        ),
                    );
                }
                None
            }
        };
        let constraints = match object.get("constraints") {
            None => Some(Constraints::default()),
            Some(Json::Object(c)) => {
                self.constraints(c, &format!("{at}.constraints"), kind.as_ref())
            }
            Some(other) => {
                self.problem(
                    format!("{at}.constraints"),
                    format!("must be an object, not {other}"),
                );
                None
            }
        };
        Some(Field {
            name: name?,
            title,
            description,
            kind: kind?,
            constraints: constraints?,
        })
    }

    /// The constraints at `at`; those that depend on the type are checked only when `kind` is known.
    fn constraints(
        &mut self,
        object: &serde_json::Map<String, Json>,
        at: &str,
        kind: Option<&FieldType>,
    ) -> Option<Constraints> {
        let before = self.problems.len();
        self.unknown_keys(object, &CONSTRAINT_KEYS, at, "constraints");
        let mut c = Constraints::default();
        for (key, flag) in [("required", &mut c.required), ("unique", &mut c.unique)] {
            match object.get(key) {
                None => {}
                Some(Json::Bool(b)) => *flag = *b,
                Some(other) => self.problems.push(Problem::error(
                    self.path,
                    format!("{at}.{key}"),
                    format!("must be true or false, not {other}"),
                )),
            }
        }
        match object.get("pattern") {
            None => {}
            Some(Json::String(p)) => match Regex::new(&format!("^(?:{p})$")) {
                Ok(anchored) => {
                    c.pattern = Some(Pattern {
                        source: p.clone(),
                        anchored,
                    })
                }
                Err(err) => self.problem(
                    format!("{at}.pattern"),
                    format!("`{p}` is not a valid regular expression: {err}"),
                ),
            },
            Some(other) => self.problem(
                format!("{at}.pattern"),
                format!("must be a string, not {other}"),
            ),
        }
        for (key, slot) in [
            ("minLength", &mut c.min_length),
            ("maxLength", &mut c.max_length),
        ] {
            let Some(value) = object.get(key) else {
                continue;
            };
            match value.as_u64() {
                Some(_) if kind.is_some_and(|k| *k != FieldType::String) => self.problem(
                    format!("{at}.{key}"),
                    format!(
                        "applies only to string fields, not {}",
                        kind.expect("checked").name()
                    ),
                ),
                Some(n) => *slot = Some(n as usize),
                None => self.problem(
                    format!("{at}.{key}"),
                    format!("must be a whole number of characters, not {value}"),
                ),
            }
        }
        if let (Some(min), Some(max)) = (c.min_length, c.max_length)
            && min > max
        {
            self.problem(
                format!("{at}.minLength"),
                format!("minLength {min} is above maxLength {max}"),
            );
        }
        if let Some(kind) = kind {
            if let Some(value) = object.get("enum") {
                c.allowed = self.allowed(value, &format!("{at}.enum"), kind);
            }
            for (key, slot) in [("minimum", &mut c.minimum), ("maximum", &mut c.maximum)] {
                let Some(value) = object.get(key) else {
                    continue;
                };
                if *kind == FieldType::String {
                    self.problem(
                        format!("{at}.{key}"),
                        format!(
                            "applies to integer, number, date and year fields; for text use {}",
                            if key == "minimum" {
                                "minLength"
                            } else {
                                "maxLength"
                            }
                        ),
                    );
                    continue;
                }
                *slot = self.bound(value, &format!("{at}.{key}"), kind);
            }
            if let (Some(min), Some(max)) = (&c.minimum, &c.maximum)
                && min.value > max.value
            {
                self.problem(
                    format!("{at}.minimum"),
                    format!("minimum {} is above maximum {}", min.text, max.text),
                );
            }
        }
        (self.problems.len() == before).then_some(c)
    }

    /// A constraint value parsed with the field's type: a JSON string as the source writes it, or
    /// a JSON number for numeric types.
    fn bound(&mut self, value: &Json, at: &str, kind: &FieldType) -> Option<Bound> {
        let parsed = match (value, kind) {
            (Json::String(s), _) => kind.parse(s).map(|v| (v, s.clone())),
            (Json::Number(n), FieldType::Integer { .. }) => {
                n.as_i64().map(|i| (Value::Integer(i), n.to_string()))
            }
            (Json::Number(n), FieldType::Number { .. }) => {
                n.as_f64().map(|f| (Value::Number(f), n.to_string()))
            }
            (Json::Number(n), FieldType::Year) => n
                .as_i64()
                .and_then(|y| i32::try_from(y).ok())
                .map(|y| (Value::Year(y), n.to_string())),
            _ => None,
        };
        match parsed {
            Some((value, text)) => Some(Bound { value, text }),
            None if *kind == FieldType::String => {
                self.problem(at, format!("{value} is not a string; write it in quotes"));
                None
            }
            None => {
                self.problem(at, format!("{value} is not {}", kind.expectation()));
                None
            }
        }
    }

    fn allowed(&mut self, value: &Json, at: &str, kind: &FieldType) -> Option<Allowed> {
        let Some(items) = value.as_array().filter(|a| !a.is_empty()) else {
            self.problem(at, "must be a non-empty array of the allowed values");
            return None;
        };
        let bounds: Vec<Option<Bound>> = items
            .iter()
            .enumerate()
            .map(|(j, item)| self.bound(item, &format!("{at}[{j}]"), kind))
            .collect();
        let bounds: Vec<Bound> = bounds.into_iter().collect::<Option<_>>()?;
        Some(Allowed {
            texts: bounds.iter().map(|b| b.text.clone()).collect(),
            values: bounds.into_iter().map(|b| b.value).collect(),
        })
    }
}

/// Frictionless types this crate does not check (yet), told apart from typos in messages.
const FRICTIONLESS_ONLY: [&str; 11] = [
    "boolean",
    "datetime",
    "time",
    "yearmonth",
    "duration",
    "geopoint",
    "geojson",
    "object",
    "array",
    "list",
    "any",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::testing::*;

    fn problems(json: &str) -> String {
        TableSchema::from_json(json, Path::new(PATH))
            .unwrap_err()
            .iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn schema_problems_come_back_all_at_once() {
        let found = problems(
            r#"{"fields": [
                {"name": "kommun_kod", "constraints": {"pattern": "\\d{4"}},
                {"name": "ar", "type": "yaer"},
                {"name": "andel", "type": "number", "constraints": {"minimum": 100, "maximum": 0}}
            ]}"#,
        );
        insta::assert_snapshot!(found, @r"
        fields[0].constraints.pattern: `\d{4` is not a valid regular expression: regex parse error:
            ^(?:\d{4)$
                  ^^
        error: unclosed counted repetition
        fields[1].type: type `yaer` is unknown; use one of string, integer, number, date, year
        fields[2].constraints.minimum: minimum 100 is above maximum 0
        ");
    }

    #[test]
    fn schema_keys_are_checked_at_every_level() {
        let found = problems(
            r#"{"fields": [
                {"name": "a", "typ": "string", "constraints": {"requird": true}},
                {"name": "a", "type": "boolean"},
                {"name": "b", "type": "integer", "decimalChar": ",", "constraints": {"maxLength": 2}},
                {"name": "c", "type": "date", "format": "any", "constraints": {"minimum": 2020}},
                {"name": "d", "constraints": {"enum": [1], "minimum": "a"}}
            ],
            "primaryKey": ["a", "x"],
            "missingValues": [".."],
            "foreignKeys": []}"#,
        );
        insta::assert_snapshot!(found, @r"
        foreignKeys: unknown key `foreignKeys`; a Table Schema may have fields, missingValues, primaryKey, $schema, name, title, description
        fields[0].typ: unknown key `typ`; a field may have name, type, format, title, description, example, constraints, decimalChar, groupChar
        fields[0].constraints.requird: unknown key `requird`; constraints may have required, unique, enum, pattern, minimum, maximum, minLength, maxLength
        fields[1].type: type `boolean` is not supported here; use one of string, integer, number, date, year
        fields[2].decimalChar: applies only to number fields
        fields[2].constraints.maxLength: applies only to string fields, not integer
        fields[3].format: date format `any` is not supported; use `default` (YYYY-MM-DD) or a strftime pattern such as `%d/%m/%Y`
        fields[4].constraints.enum[0]: 1 is not a string; write it in quotes
        fields[4].constraints.minimum: applies to integer, number, date and year fields; for text use minLength
        fields[1].name: field `a` is declared twice
        primaryKey[1]: `x` is not a field; the fields are a, b, c, d
        ");
    }

    #[test]
    fn load_reads_the_file_and_names_it_when_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.table.json");
        std::fs::write(&path, r#"{"fields": [{"name": "a"}]}"#).unwrap();
        let schema = TableSchema::load(&path).unwrap();
        assert_eq!(schema.path(), path);
        assert_eq!(schema.missing_values, vec![String::new()]);
        let absent = TableSchema::load(&dir.path().join("absent.json")).unwrap_err();
        assert_eq!(absent.len(), 1);
        assert!(absent[0].message.starts_with("cannot read the file"));
        std::fs::write(&path, "{\"fields\": [").unwrap();
        let broken = TableSchema::load(&path).unwrap_err();
        assert!(
            broken[0].message.starts_with("not valid JSON"),
            "{broken:?}"
        );
    }
}
