//! Checking pipeline files: `PipelineFile` (as written) → [`Pipeline`] (resolved and checked),
//! reporting every problem of every file at once.
//!
//! Owns: the rules a pipeline file must follow beyond its TOML shape (ids, paths, code lists,
//! schemas, statuses, units) and the uncatalogued-indicator warning.
//! Must not: run anything or touch the warehouse and ledger.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::spec::{
    AreaBy, CodesSpec, DEFAULT_MAX_REJECT_RATIO, DimensionSpec, FileSpec, FormatKeys, FormatSpec,
    KoladaSpec, MapSpec, OrTable, PipelineFile, PxwebSpec, SelectSpec, SelectValues, SheetSpec,
    SourceSpec,
};
use super::{MAX_JITTER_SECS, MAX_RETRIES, Origin, Pipeline, RunPolicy, SourceKind};
use crate::config::{Settings, toml_problem};
use crate::formats::csv::{CsvOptions, encoding_for};
use crate::formats::kolada::KoladaOptions;
use crate::formats::px::PxOptions;
use crate::formats::xlsx::{SheetChoice, XlsxOptions};
use crate::formats::{DecodeLimits, Format};
use crate::harmonise::codes::{CodeList, canonical_age, canonical_grade, canonical_sex};
use crate::harmonise::mapping::{AreaNaming, Field, Mapping, Marker, builtin_markers, defaults};
use crate::model::Status;
use crate::problem::Problem;
use crate::schedule::{Schedule, ScheduleError};
use crate::schemas::{self, Fingerprint, Schemas, TableSchemaError};
use crate::sources::file::FileSource;
use crate::sources::http::LimitHints;
use crate::sources::http::{Redacted, host_key};
use crate::sources::kolada::{self, KoladaSource};
use crate::sources::pxweb::meta;
use crate::sources::pxweb::select::{self, Choice, Selection, Values, Via};
use crate::sources::pxweb::v1::V1Table;
use crate::sources::pxweb::v2::V2Table;
use crate::sources::pxweb::{Api, PxwebSource};
use crate::sources::url::{self, UrlSource};

/// Which PxWeb API a `[source]` speaks.
#[derive(Clone, Copy)]
enum PxwebApi {
    V1,
    V2,
}

/// The producer a known PxWeb host publishes for: the model's `source` column.
fn producer_of(url: &str) -> Option<String> {
    let host = reqwest::Url::parse(url)
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    let known = [
        ("scb.se", "scb"),
        ("folkhalsomyndigheten.se", "fohm"),
        ("skolverket.se", "skolverket"),
    ];
    known
        .iter()
        .find(|(domain, _)| host == *domain || host.ends_with(&format!(".{domain}")))
        .map(|(_, producer)| producer.to_string())
}

/// The problem of a piece of a table listed twice (a path or a URL).
fn named_twice(piece: impl std::fmt::Display) -> String {
    format!(
        "{piece} is named twice; each piece of the table once (twice, every row would be \
         refused as a repeated key)"
    )
}

/// Pipelines that passed their checks, and every problem found (errors and warnings).
#[derive(Debug, Default)]
pub struct Loaded {
    pub pipelines: Vec<Pipeline>,
    pub problems: Vec<Problem>,
}

/// Loads and checks every pipeline file under the settings' pipelines directory.
pub fn load_all(settings: &Settings, schemas: &Schemas) -> Loaded {
    let mut loaded = Loaded::default();
    match settings.pipeline_files() {
        Ok(files) => {
            for file in files {
                match check_file(&file, settings, schemas) {
                    Ok((pipeline, warnings)) => {
                        loaded.problems.extend(warnings);
                        loaded.pipelines.push(pipeline);
                    }
                    Err(problems) => loaded.problems.extend(problems),
                }
            }
        }
        Err(problem) => loaded.problems.push(problem),
    }
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for pipeline in &loaded.pipelines {
        if let Some(first) = seen.insert(pipeline.id.clone(), pipeline.file.clone()) {
            loaded.problems.push(Problem::error(
                &pipeline.file,
                "id",
                format!(
                    "id `{}` is already used by {}; ids name warehouse partitions and must be unique",
                    pipeline.id,
                    first.display()
                ),
            ));
        }
    }
    loaded
}

/// Reads and checks one pipeline file: the pipeline and its warnings, or every problem.
pub fn check_file(
    path: &Path,
    settings: &Settings,
    schemas: &Schemas,
) -> Result<(Pipeline, Vec<Problem>), Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::error(
            path,
            "",
            format!("cannot read the pipeline file: {e}"),
        )]
    })?;
    let file: PipelineFile =
        toml::from_str(&text).map_err(|e| vec![key_problem(path, &text, &e)])?;
    let mut checker = Checker {
        path,
        settings,
        problems: Vec::new(),
        schemas,
        fingerprint: Fingerprint::default(),
    };
    checker.fingerprint.add(path, text.as_bytes());
    let pipeline = checker.pipeline(file);
    let (errors, warnings): (Vec<_>, Vec<_>) =
        checker.problems.into_iter().partition(Problem::is_error);
    match pipeline {
        Some(pipeline) if errors.is_empty() => Ok((pipeline, warnings)),
        _ => Err(errors.into_iter().chain(warnings).collect()),
    }
}

/// A TOML error as a problem with the key path found from the error's position in the text. An
/// error on a `[table]` header line is about that table (serde points at the header for a
/// missing key, and at the name for an unknown table); any other is about the key on its line,
/// inside the nearest header above, and the field serde names, if another.
fn key_problem(path: &Path, text: &str, error: &toml::de::Error) -> Problem {
    let mut problem = toml_problem(path, error);
    let Some(span) = error.span() else {
        return problem;
    };
    // A key missing at the top level has an empty span at the start: it is about the root.
    if span.is_empty() && span.start == 0 {
        return problem;
    }
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let named = (!problem.key.is_empty()).then(|| problem.key.clone());
    let keys: Vec<String> = if let Some(table) = header(line) {
        let about_table = text[start..].starts_with('[');
        match named {
            Some(named) if about_table => vec![table, named],
            _ => vec![table],
        }
    } else {
        let table = text[..line_start].lines().rev().find_map(header);
        let line_key = line
            .split('=')
            .next()
            .map(|k| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('#'));
        let keys = match (line_key, named) {
            (Some(line), Some(named)) if line != named => vec![line, named],
            (line, named) => line.or(named).into_iter().collect(),
        };
        table.into_iter().chain(keys).collect()
    };
    problem.key = keys.join(".");
    problem
}

/// The table a `[name]` or `[[name]]` header line opens.
fn header(line: &str) -> Option<String> {
    let line = line.trim();
    let name = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]"));
    let name = name.or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?;
    Some(name.trim().to_string())
}

struct Checker<'a> {
    path: &'a Path,
    settings: &'a Settings,
    schemas: &'a Schemas,
    problems: Vec<Problem>,
    /// Of the pipeline file and every file of `schemas/` it names.
    fingerprint: Fingerprint,
}

impl Checker<'_> {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::error(self.path, key, message));
    }

    fn pipeline(&mut self, file: PipelineFile) -> Option<Pipeline> {
        if file.id.is_empty()
            || !file
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            self.error(
                "id",
                format!(
                    "`{}` must be lowercase letters, digits and `-` only",
                    file.id
                ),
            );
        }
        let schedule = self.schedule(&file);
        let policy = self.policy(&file);
        let max_reject_ratio = file.max_reject_ratio.unwrap_or(DEFAULT_MAX_REJECT_RATIO);
        if !(0.0..=1.0).contains(&max_reject_ratio) {
            self.error(
                "max_reject_ratio",
                format!("{max_reject_ratio} is not a share between 0.0 and 1.0"),
            );
        }
        let (source, format, limits, origin) = self.source(&file.source)?;
        let schema = file.validate.as_ref().and_then(|v| {
            let path = self.settings.root.join(&v.schema);
            match schemas::table_schema(&path, &mut self.fingerprint) {
                Ok(schema) => Some(schema),
                Err(TableSchemaError::Unreadable(e)) => {
                    self.error(
                        "validate.schema",
                        format!(
                            "cannot read {} ({e}); the path is relative to {}",
                            path.display(),
                            self.settings.root.display()
                        ),
                    );
                    None
                }
                Err(TableSchemaError::Invalid(problems)) => {
                    self.problems.extend(problems);
                    None
                }
            }
        });
        let mapping = self.mapping(&file, &format)?;
        Some(Pipeline {
            id: file.id,
            file: self.path.to_path_buf(),
            schedule,
            policy,
            description: file.description,
            source,
            format,
            limits,
            origin,
            schema,
            mapping,
            max_reject_ratio,
            fingerprint: self.fingerprint.finish(),
        })
    }

    /// `schedule` in `timezone`; a zone without a schedule is checked too (it would be used
    /// the day one is added).
    fn schedule(&mut self, file: &PipelineFile) -> Option<Schedule> {
        let timezone = file.timezone.as_deref();
        let expression = file.schedule.as_deref().unwrap_or("0 0 * * *");
        match Schedule::parse(expression, timezone) {
            Ok(schedule) => file.schedule.as_ref().map(|_| schedule),
            Err(error) => {
                let key = match error {
                    ScheduleError::Timezone { .. } => "timezone",
                    ScheduleError::Expression { .. } => "schedule",
                };
                self.error(key, error.to_string());
                None
            }
        }
    }

    /// Kolada's built-in `[map]`, with the unit the catalogue gives every KPI of `spec`.
    /// **Departure**: the unit comes from the catalogue, not from the KPI's title at run time,
    /// so that it is known offline and a title edited at Kolada cannot change stored rows' unit;
    /// `check --online` compares the two.
    fn kolada_map(&mut self, spec: &KoladaSpec) -> Option<MapSpec> {
        let mut units = BTreeMap::new();
        // An id that is not one was refused already.
        for id in spec.kpi.iter().filter(|id| kolada::is_kpi_id(id)) {
            match self.schemas.indicators.get(id) {
                Some(indicator) => {
                    units
                        .entry(indicator.unit.clone())
                        .or_insert_with(Vec::new)
                        .push(id.as_str());
                }
                None => {
                    self.error(
                        "source.kpi",
                        format!(
                            "KPI {id} is not in schemas/indicators.toml; catalogue it (its unit, from \
                             its Kolada title) or write the whole [map] with `unit`"
                        ),
                    );
                    return None;
                }
            }
        }
        if units.len() > 1 {
            let described: Vec<String> = (units.iter())
                .map(|(unit, ids)| format!("{unit} ({})", ids.join(", ")))
                .collect();
            self.error(
                "source.kpi",
                format!(
                    "the KPIs have different units, {}: one pipeline writes one unit, so split them",
                    described.join(" and ")
                ),
            );
            return None;
        }
        let unit = units.into_keys().next()?;
        let groups = spec.groups.unwrap_or(false);
        match toml::from_str(&kolada::default_map(&unit, groups)) {
            Ok(map) => Some(map),
            Err(error) => unreachable!("Kolada's default [map] parses: {error}"),
        }
    }

    /// `retries`, `timeout_secs` and `jitter_secs`, within bounds an operator would mean.
    fn policy(&mut self, file: &PipelineFile) -> RunPolicy {
        let mut policy = RunPolicy::default();
        if let Some(retries) = file.retries {
            if retries > MAX_RETRIES {
                self.error(
                    "retries",
                    format!("{retries} is more than {MAX_RETRIES} retries of a whole run"),
                );
            }
            policy.retries = retries.min(MAX_RETRIES);
        }
        if let Some(secs) = file.timeout_secs {
            if secs == 0 {
                self.error("timeout_secs", "must be at least 1 second");
            }
            policy.timeout = Some(Duration::from_secs(secs.max(1)));
        }
        if let Some(secs) = file.jitter_secs {
            if secs > MAX_JITTER_SECS {
                self.error(
                    "jitter_secs",
                    format!("{secs} is more than {MAX_JITTER_SECS} seconds (one hour)"),
                );
            }
            policy.jitter = Duration::from_secs(secs.min(MAX_JITTER_SECS));
        }
        policy
    }

    /// The source, its format and the model's source columns, for every kind.
    fn source(&mut self, spec: &SourceSpec) -> Option<(SourceKind, Format, DecodeLimits, Origin)> {
        match spec {
            SourceSpec::File(file) => self.file_source(file),
            SourceSpec::Url(spec) => self.url_source(spec),
            SourceSpec::Pxweb(spec) => self.pxweb_source(spec, PxwebApi::V1),
            SourceSpec::Pxweb2(spec) => self.pxweb_source(spec, PxwebApi::V2),
            SourceSpec::Kolada(spec) => self.kolada_source(spec),
        }
    }

    /// `kind = "kolada"`: KPI ids, municipalities and years as Kolada names them.
    fn kolada_source(
        &mut self,
        spec: &KoladaSpec,
    ) -> Option<(SourceKind, Format, DecodeLimits, Origin)> {
        let url = spec
            .url
            .as_deref()
            .unwrap_or(kolada::DEFAULT_URL)
            .trim_end_matches('/')
            .to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            self.error("source.url", format!("`{url}` is not an http(s) URL"));
        }
        if spec.kpi.is_empty() {
            self.error("source.kpi", "name at least one KPI id (e.g. \"N15428\")");
        }
        for (i, id) in spec.kpi.iter().enumerate() {
            if !kolada::is_kpi_id(id) {
                self.error(
                    "source.kpi",
                    format!(
                        "`{id}` is not a Kolada KPI id; they look like \"N15428\" or \"U31803\""
                    ),
                );
            } else if spec.kpi[..i].contains(id) {
                self.error("source.kpi", format!("`{id}` is named twice"));
            }
        }
        let municipalities = match self.pick("source.municipality", spec.municipality.as_ref(), |v| {
            v.as_str()
                .filter(|id| id.len() == 4 && id.bytes().all(|b| b.is_ascii_digit()) || id.starts_with('G'))
                .map(str::to_string)
                .ok_or("municipality ids are four digits as Kolada writes them (\"0180\", \"0013\" for Region Halland, \"0000\" for Riket) or groups (\"G33698\")")
        }) {
            Some(pick) => pick,
            None => kolada::Pick::All,
        };
        let years = self
            .pick("source.year", spec.year.as_ref(), |v| {
                v.as_integer()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|y| i32::try_from(y).ok())
                    .filter(|y| (1900..=2200).contains(y))
                    .ok_or("years are whole numbers such as 2023")
            })
            .unwrap_or(kolada::Pick::All);
        let batch_ids = spec.batch_ids.unwrap_or(kolada::DEFAULT_BATCH_IDS);
        if !(1..=kolada::MAX_BATCH_IDS).contains(&batch_ids) {
            self.error(
                "source.batch_ids",
                format!(
                    "{batch_ids} is not 1 to {}: Kolada refuses more ids per request",
                    kolada::MAX_BATCH_IDS
                ),
            );
        }
        let groups = spec.groups.unwrap_or(false);
        if let kolada::Pick::Listed(ids) = &municipalities {
            let listed: Vec<&str> = (ids.iter())
                .filter(|id| id.starts_with('G'))
                .map(String::as_str)
                .collect();
            if !groups && !listed.is_empty() {
                self.error(
                    "source.municipality",
                    format!(
                        "{} {} municipality groups, which are left out unless `groups = true`",
                        listed.join(", "),
                        if listed.len() == 1 { "is a" } else { "are" },
                    ),
                );
            }
        }
        let limits = self.limits(spec.max_table_cells);
        let origin = Origin {
            producer: "kolada".into(),
            table: spec.kpi.join(","),
            url: url.clone(),
        };
        let source = KoladaSource {
            url,
            kpis: spec.kpi.clone(),
            municipalities,
            years,
            batch_ids: batch_ids.clamp(1, kolada::MAX_BATCH_IDS),
            groups,
        };
        let format = Format::Kolada(KoladaOptions { groups });
        Some((SourceKind::Kolada(source), format, limits, origin))
    }

    /// `"*"` (every one: `None`… as `Pick::All`) or a list whose items `item` reads.
    fn pick<T>(
        &mut self,
        key: &str,
        value: Option<&toml::Value>,
        item: impl Fn(&toml::Value) -> Result<T, &'static str>,
    ) -> Option<kolada::Pick<T>> {
        match value {
            None => Some(kolada::Pick::All),
            Some(toml::Value::String(all)) if all == "*" => Some(kolada::Pick::All),
            Some(toml::Value::Array(items)) if !items.is_empty() => {
                let mut picked = Vec::new();
                for value in items {
                    match item(value) {
                        Ok(value) => picked.push(value),
                        Err(why) => {
                            self.error(key, format!("`{value}`: {why}"));
                            return None;
                        }
                    }
                }
                Some(kolada::Pick::Listed(picked))
            }
            Some(other) => {
                self.error(
                    key,
                    format!("`{other}` is neither \"*\" nor a non-empty list"),
                );
                None
            }
        }
    }

    fn pxweb_source(
        &mut self,
        spec: &PxwebSpec,
        api: PxwebApi,
    ) -> Option<(SourceKind, Format, DecodeLimits, Origin)> {
        let refuse = |checker: &mut Self, key: &str, present: bool, why: &str| {
            if present {
                checker.error(format!("source.{key}"), why.to_string());
            }
        };
        let located = match api {
            PxwebApi::V1 => {
                refuse(
                    self,
                    "table",
                    spec.table.is_some(),
                    "`table` is a pxweb2 key; for kind = \"pxweb\" `url` is the table URL",
                );
                refuse(
                    self,
                    "lang",
                    spec.lang.is_some(),
                    "`lang` is a pxweb2 key; for kind = \"pxweb\" the language is the URL's",
                );
                V1Table::parse(&spec.url, spec.config_url.as_deref()).map(Api::V1)
            }
            PxwebApi::V2 => {
                refuse(
                    self,
                    "config_url",
                    spec.config_url.is_some(),
                    "`config_url` is a pxweb key; pxweb2 reads <url>/config",
                );
                match &spec.table {
                    // `tab638` is TAB638 to the server; `source_table` spells it TAB638.
                    Some(table) if V2Table::is_table_id(table) => V2Table::new(
                        &spec.url,
                        &table.to_ascii_uppercase(),
                        spec.lang.as_deref().unwrap_or("sv"),
                    )
                    .map(Api::V2),
                    Some(table) => Err(format!(
                        "`table = \"{table}\"` is not a PxWebApi 2.0 table id; they look like \"TAB638\""
                    )),
                    None => Err(
                        "kind = \"pxweb2\" needs `table`, the table id (e.g. \"TAB638\")".into(),
                    ),
                }
            }
        };
        let api = match located {
            Ok(api) => api,
            Err(message) => {
                let key = if message.contains("`table") {
                    "source.table"
                } else {
                    "source.url"
                };
                self.error(key, message);
                return None;
            }
        };
        let selection = self.selection(&spec.select, &api);
        let overrides = self.server_overrides(spec);
        let limits = self.limits(spec.max_table_cells);
        let url = api.table_url();
        // Lowercase, as the model's `source` column is (`SCB` and `scb` are one producer).
        let producer = match spec
            .producer
            .as_deref()
            .map(str::to_lowercase)
            .or_else(|| producer_of(&url))
        {
            Some(producer) => producer,
            None => {
                self.error("source.producer", format!("no producer is known for {url}; set `producer` (the model's `source` column, e.g. \"helsingborg\")"));
                String::new()
            }
        };
        let table = api.table_id().trim_end_matches(".px").to_string();
        let origin = Origin {
            producer,
            table,
            url,
        };
        let source = PxwebSource {
            api,
            selection,
            overrides,
            max_table_cells: limits.max_table_cells,
        };
        Some((
            SourceKind::Pxweb(Box::new(source)),
            Format::Jsonstat,
            limits,
            origin,
        ))
    }

    /// The checked `select`: every form parsed, and each kept to the API that has it.
    fn selection(&mut self, select: &BTreeMap<String, SelectSpec>, api: &Api) -> Selection {
        let mut choices: Vec<Choice> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (variable, spec) in select {
            let key = format!("source.select.{variable}");
            if let Some(twin) = seen.iter().find(|seen| meta::same_code(seen, variable)) {
                self.error(
                    &key,
                    format!(
                        "`{twin}` and `{variable}` are one variable (PxWeb codes ignore case); \
                         select it once"
                    ),
                );
                continue;
            }
            seen.push(variable);
            let (via, values) = match spec {
                SelectSpec::Values(values) => (Via::Table, values),
                SelectSpec::Table(table) => {
                    let via = match (&table.filter, &table.codelist, api) {
                        (Some(filter), None, Api::V1(_))
                            if filter.starts_with("vs:") || filter.starts_with("agg:") =>
                        {
                            Via::Filter(filter.clone())
                        }
                        (Some(filter), None, Api::V1(_)) => {
                            self.error(&key, format!("filter `{filter}` must be `vs:<value set>` or `agg:<aggregation>`"));
                            continue;
                        }
                        (None, Some(codelist), Api::V2(_)) => Via::Codelist(codelist.clone()),
                        (Some(_), _, Api::V2(_)) => {
                            self.error(
                                &key,
                                "`filter` is a PxWeb v1 key; PxWebApi 2.0 names a `codelist`",
                            );
                            continue;
                        }
                        (_, Some(_), Api::V1(_)) => {
                            self.error(&key, "`codelist` is a PxWebApi 2.0 key; PxWeb v1 names a `filter = \"vs:…\"`");
                            continue;
                        }
                        (None, None, _) => {
                            self.error(&key, "a table here names a `filter` (v1) or a `codelist` (v2); for plain values write them without the table");
                            continue;
                        }
                    };
                    (via, &table.values)
                }
            };
            let values = match values {
                SelectValues::Codes(codes) if codes.is_empty() => {
                    self.error(
                        &key,
                        "the list of codes is empty; leave the variable out to eliminate it",
                    );
                    continue;
                }
                SelectValues::Codes(codes) => Values::Codes(codes.clone()),
                SelectValues::Text(text) => match select::parse_text(text) {
                    Ok(values) => values,
                    Err(message) => {
                        self.error(&key, message);
                        continue;
                    }
                },
            };
            if matches!(via, Via::Filter(_)) && !matches!(values, Values::Codes(_)) {
                self.error(&key, "a v1 value set or aggregation needs its codes listed (`values = [\"0114\", …]`): v1 metadata does not list them, and PxWeb refuses wildcards with `agg:`");
                continue;
            }
            choices.push(Choice {
                variable: variable.clone(),
                via,
                values,
            });
        }
        Selection { choices }
    }

    fn server_overrides(&mut self, spec: &PxwebSpec) -> LimitHints {
        let mut positive = |key: &str, value: Option<u64>| match value {
            Some(0) => {
                self.error(format!("source.{key}"), "must be at least 1");
                None
            }
            other => other,
        };
        LimitHints {
            max_cells: positive("server_max_cells", spec.server_max_cells),
            max_calls: positive("server_max_calls", spec.server_max_calls.map(u64::from))
                .map(|n| n as u32),
            window: positive("server_window_secs", spec.server_window_secs)
                .map(std::time::Duration::from_secs),
            max_values: None,
        }
    }

    fn file_source(
        &mut self,
        file: &FileSpec,
    ) -> Option<(SourceKind, Format, DecodeLimits, Origin)> {
        if file.url.is_some() {
            self.error(
                "source.url",
                "`url` is a key of `kind = \"url\"`; a file source names its files with `path`",
            );
        }
        let Some(path) = &file.path else {
            self.error(
                "source.path",
                "missing; name the file relative to the pipeline file, e.g. path = \"data/t.csv\"",
            );
            return None;
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let paths: Vec<PathBuf> = path.to_vec().iter().map(|p| dir.join(p)).collect();
        if paths.is_empty() {
            self.error(
                "source.path",
                "the list of paths is empty; name at least one file",
            );
        }
        for (i, path) in paths.iter().enumerate() {
            if paths[..i].contains(path) {
                self.error("source.path", named_twice(path.display()));
            }
            if !path.is_file() {
                self.error(
                    "source.path",
                    format!(
                        "{} does not exist (the path is relative to the pipeline file)",
                        path.display()
                    ),
                );
            }
        }
        let format = self.format(file.format_keys());
        let limits = self.limits(file.max_table_cells);
        let first = paths.first().cloned().unwrap_or_default();
        let name = first
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let url = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let origin = Origin {
            producer: file.producer.clone().unwrap_or_else(|| "file".into()),
            table: file.table.clone().unwrap_or(name),
            url,
        };
        Some((
            SourceKind::File(FileSource { paths }),
            format,
            limits,
            origin,
        ))
    }

    /// `kind = "url"`: http(s) URLs, each once, and the format keys as for a file.
    fn url_source(
        &mut self,
        spec: &FileSpec,
    ) -> Option<(SourceKind, Format, DecodeLimits, Origin)> {
        if spec.path.is_some() {
            self.error(
                "source.path",
                "`path` is a key of `kind = \"file\"`; a url source names its files with `url`",
            );
        }
        let Some(url) = &spec.url else {
            self.error(
                "source.url",
                "missing; name the file's http(s) URL, e.g. url = \"https://host/path/t.csv\"",
            );
            return None;
        };
        let urls = url.to_vec();
        if urls.is_empty() {
            self.error(
                "source.url",
                "the list of URLs is empty; name at least one file",
            );
        }
        for (i, url) in urls.iter().enumerate() {
            if urls[..i].contains(url) {
                self.error("source.url", named_twice(Redacted(url)));
            }
            if host_key(url).is_err() {
                self.error(
                    "source.url",
                    format!(
                        "`{}` is not an http(s) URL; write it as \"https://host/path/file.csv\"",
                        Redacted(url)
                    ),
                );
            }
        }
        let format = self.format(spec.format_keys());
        let limits = self.limits(spec.max_table_cells);
        let first = urls.first().map(String::as_str).unwrap_or_default();
        let origin = Origin {
            producer: (spec.producer.clone())
                .or_else(|| producer_of(first))
                .unwrap_or_else(|| "file".into()),
            table: spec.table.clone().unwrap_or_else(|| url::file_name(first)),
            url: (urls.iter())
                .map(|url| Redacted(url).to_string())
                .collect::<Vec<_>>()
                .join(" "),
        };
        Some((SourceKind::Url(UrlSource { urls }), format, limits, origin))
    }

    /// How big a table may be decoded, from any kind's `max_table_cells`.
    fn limits(&mut self, max_table_cells: Option<u64>) -> DecodeLimits {
        let mut limits = DecodeLimits::default();
        match max_table_cells {
            Some(0) => self.error("source.max_table_cells", "must be at least 1"),
            Some(cells) => limits.max_table_cells = cells,
            None => {}
        }
        limits
    }

    /// The checked format of any kind's `[source]` format keys. A key of another format is
    /// refused rather than ignored: `sheet` on a CSV source is a mistake the operator should see.
    fn format(&mut self, keys: FormatKeys<'_>) -> Format {
        self.refuse_keys_of_other_formats(&keys);
        match keys.format {
            FormatSpec::Jsonstat => Format::Jsonstat,
            FormatSpec::Xlsx => Format::Xlsx(self.xlsx_options(keys)),
            FormatSpec::Csv => {
                let mut options = CsvOptions::default();
                if let Some(delimiter) = keys.delimiter {
                    match delimiter.as_bytes() {
                        [b] if b.is_ascii() => options.delimiter = *b,
                        _ => self.error(
                            "source.delimiter",
                            format!("`{delimiter}` must be one ASCII character, e.g. \";\""),
                        ),
                    }
                }
                if let Some(label) = keys.encoding {
                    match encoding_for(label) {
                        Some(encoding) => options.encoding = encoding,
                        None => self.error(
                            "source.encoding",
                            format!("`{label}` is not an encoding; use utf-8, windows-1252 or iso-8859-1"),
                        ),
                    }
                }
                if let Some(decimal) = keys.decimal {
                    match decimal {
                        "." => options.decimal = '.',
                        "," => options.decimal = ',',
                        _ => self.error(
                            "source.decimal",
                            format!("`{decimal}` must be \".\" or \",\""),
                        ),
                    }
                }
                if let Some(header) = keys.header {
                    options.header = header;
                }
                Format::Csv(options)
            }
            FormatSpec::Px => Format::Px(PxOptions {
                lang: keys.lang.map(str::to_string),
            }),
        }
    }

    /// Refuses each key given that `keys.format` does not read: `sheet` on a CSV source, or a
    /// CSV `encoding` on a PX file (which declares its own), is a mistake to show, not ignore.
    fn refuse_keys_of_other_formats(&mut self, keys: &FormatKeys<'_>) {
        let given = [
            ("delimiter", keys.delimiter.is_some(), FormatSpec::Csv),
            ("encoding", keys.encoding.is_some(), FormatSpec::Csv),
            ("decimal", keys.decimal.is_some(), FormatSpec::Csv),
            ("header", keys.header.is_some(), FormatSpec::Csv),
            ("lang", keys.lang.is_some(), FormatSpec::Px),
            ("sheet", keys.sheet.is_some(), FormatSpec::Xlsx),
            ("header_row", keys.header_row.is_some(), FormatSpec::Xlsx),
        ];
        for (key, _, owner) in given
            .iter()
            .filter(|&&(_, set, owner)| set && owner != keys.format)
        {
            self.error(
                format!("source.{key}"),
                format!(
                    "`{key}` is read only with `format = \"{}\"`, not `format = \"{}\"`; \
                     remove it",
                    owner.name(),
                    keys.format.name()
                ),
            );
        }
    }

    /// The XLSX options of `keys`.
    fn xlsx_options(&mut self, keys: FormatKeys<'_>) -> XlsxOptions {
        let mut options = XlsxOptions::default();
        match keys.sheet {
            None => {}
            Some(SheetSpec::Name(name)) => options.sheet = SheetChoice::Name(name.clone()),
            Some(SheetSpec::Index(n)) => match usize::try_from(*n) {
                Ok(n) if n >= 1 => options.sheet = SheetChoice::Index(n),
                _ => self.error(
                    "source.sheet",
                    format!("sheet number {n} must be at least 1 (the first sheet is 1)"),
                ),
            },
        }
        match keys.header_row.map(usize::try_from) {
            None => {}
            Some(Ok(row)) if row >= 1 => options.header_row = Some(row),
            Some(_) => self.error(
                "source.header_row",
                "must be at least 1 (rows are numbered from 1, as in Excel)",
            ),
        }
        options
    }

    fn codes(&mut self, key: &str, spec: &Option<CodesSpec>) -> Option<CodeList> {
        match spec.as_ref()? {
            OrTable::Table(map) => Some(CodeList::inline(map.clone())),
            // A name, not a path: `codes = "../x"` must not read outside `codelists/`.
            OrTable::Text(name) if !is_list_name(name) => {
                self.error(
                    key,
                    format!(
                        "`{name}` is not a code list name; use letters, digits, `-` and `_` \
                         (the file is schemas/codelists/<name>.toml)"
                    ),
                );
                None
            }
            OrTable::Text(name) => match self.schemas.code_list(name, &mut self.fingerprint) {
                Ok(list) => Some(list),
                Err(e) => {
                    self.error(key, format!("code list `{name}`: {e}"));
                    None
                }
            },
        }
    }

    /// A sex/age/grade mapping: a column (codes mapped, then checked per category when the
    /// table is read) or a fixed value checked now.
    fn dimension(
        &mut self,
        key: &str,
        spec: &Option<DimensionSpec>,
        default: &str,
        canonical: impl Fn(&str) -> Result<String, String>,
    ) -> Field {
        let fixed = |checker: &mut Self, value: &str| {
            if let Err(message) = canonical(value) {
                checker.error(key, message);
            }
            Field::Fixed(value.to_string())
        };
        match spec {
            None => Field::Fixed(default.to_string()),
            Some(OrTable::Text(column)) => Field::Column {
                column: column.clone(),
                codes: None,
            },
            Some(OrTable::Table(table)) => match (&table.column, &table.value) {
                (Some(column), None) => Field::Column {
                    column: column.clone(),
                    codes: self.codes(&format!("{key}.codes"), &table.codes),
                },
                (None, Some(value)) => fixed(self, value),
                _ => {
                    self.error(key, "give either `column` or `value`, not both or neither");
                    Field::Fixed(default.to_string())
                }
            },
        }
    }

    fn mapping(&mut self, file: &PipelineFile, format: &Format) -> Option<Mapping> {
        let default;
        let map = match (&file.map, &file.source) {
            (Some(map), _) => map,
            (None, SourceSpec::Kolada(spec)) => {
                default = self.kolada_map(spec)?;
                &default
            }
            (None, _) => {
                self.error(
                    "map",
                    "[map] is missing: say which source columns become the model's",
                );
                return None;
            }
        };
        let indicator = match &map.indicator {
            OrTable::Text(id) => {
                if id.trim().is_empty() {
                    self.error("map.indicator", "the indicator id is empty");
                }
                Field::Fixed(id.clone())
            }
            OrTable::Table(spec) => Field::Column {
                column: spec.column.clone(),
                codes: self.codes("map.indicator.codes", &spec.codes),
            },
        };
        let known: Vec<&str> = match &indicator {
            Field::Fixed(id) => vec![id.as_str()],
            Field::Column {
                codes: Some(codes), ..
            } => codes.pairs().map(|(_, target)| target).collect(),
            Field::Column { .. } => vec![],
        };
        for id in known {
            if !self.schemas.indicators.contains_key(id) {
                self.problems.push(Problem::warning(
                    self.path,
                    "map.indicator",
                    format!("indicator `{id}` is not in schemas/indicators.toml; it passes through as uncatalogued"),
                ));
            }
        }
        let (area_column, area_naming, area_codes, area_networks) = match &map.area {
            OrTable::Text(column) => (column.clone(), AreaNaming::Code, None, false),
            OrTable::Table(spec) => (
                spec.column.clone(),
                match spec.by {
                    AreaBy::Code => AreaNaming::Code,
                    AreaBy::Name => AreaNaming::Name,
                },
                self.codes("map.area.codes", &spec.codes),
                spec.networks,
            ),
        };
        if area_naming == AreaNaming::Name && self.schemas.areas.is_none() {
            self.error(
                "map.area.by",
                format!(
                    "areas named by name need {}; add it or map codes",
                    self.settings
                        .schemas_dir
                        .join(schemas::AREAS_FILE)
                        .display()
                ),
            );
        }
        let (period_column, period_kind) = match &map.period {
            OrTable::Text(column) => (column.clone(), crate::harmonise::periods::PeriodKind::Auto),
            OrTable::Table(spec) => (spec.column.clone(), spec.kind),
        };
        let sex = self.dimension("map.sex", &map.sex, defaults::SEX, |v| {
            canonical_sex(v)
                .map(|s| s.to_string())
                .map_err(|e| e.to_string())
        });
        let age = self.dimension("map.age", &map.age, defaults::AGE, |v| {
            canonical_age(v).map_err(|e| e.to_string())
        });
        let grade = self.dimension("map.grade", &map.grade, defaults::GRADE, |v| {
            canonical_grade(v).map_err(|e| e.to_string())
        });
        for key in map.breakdown.keys() {
            if !is_name(key) {
                self.error(
                    format!("map.breakdown.{key}"),
                    "breakdown keys must be lowercase letters, digits and `_`",
                );
            }
        }
        if !is_name(&map.unit) {
            self.error(
                "map.unit",
                format!(
                    "`{}` must be a lowercase word such as count, percent, per_1000, sek",
                    map.unit
                ),
            );
        }
        let mut markers = builtin_markers();
        let mut custom: BTreeMap<&String, &String> = BTreeMap::new();
        custom.extend(&map.missing);
        for (marker, status) in custom {
            match Status::parse(status) {
                Some(status) => {
                    markers.insert(
                        marker.clone(),
                        Marker {
                            status,
                            value: None,
                        },
                    );
                }
                None => self.error(
                    format!("map.missing.\"{marker}\""),
                    format!(
                        "`{status}` is not a status; use one of {}",
                        Status::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        Some(Mapping {
            indicator,
            area_column,
            area_naming,
            area_codes,
            area_networks,
            period_column,
            period_kind,
            sex,
            age,
            grade,
            breakdown: map
                .breakdown
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            unit: map.unit.clone(),
            value: map
                .value
                .clone()
                .unwrap_or_else(|| defaults::VALUE_COLUMN.into()),
            sample_size: map.sample_size.clone(),
            numerator: map.numerator.clone(),
            denominator: map.denominator.clone(),
            ci_lower: map.ci_lower.clone(),
            ci_upper: map.ci_upper.clone(),
            members: map.members.clone(),
            markers,
            decimal: format.decimal(),
        })
    }
}

/// A code list name: ASCII letters, digits, `-` and `_`.
fn is_list_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `[a-z0-9_]+`.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(text: &str) -> String {
        let error = toml::from_str::<PipelineFile>(text).unwrap_err();
        key_problem(Path::new("p.toml"), text, &error).key
    }

    const START: &str =
        "id = \"x\"\n[source]\nkind = \"file\"\npath = \"a.csv\"\nformat = \"csv\"\n";

    #[test]
    fn an_unknown_top_level_table_is_named_by_itself() {
        let text = format!(
            "{START}[map]\nindicator = \"i\"\narea = \"R\"\nperiod = \"T\"\nunit = \"count\"\n[extra]\na = 1\n"
        );
        assert_eq!(key_of(&text), "extra");
    }

    #[test]
    fn a_missing_key_is_named_inside_its_table() {
        let text = format!("{START}[map]\nindicator = \"i\"\narea = \"R\"\nperiod = \"T\"\n");
        assert_eq!(key_of(&text), "map.unit");
    }

    /// The errors `check` finds in pipeline file `text`.
    fn problems_of(text: &str) -> Vec<Problem> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(dir.path().join("a.csv"), "x\n1\n").unwrap();
        std::fs::write(&path, text).unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        match check_file(&path, &settings, &Schemas::default()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().filter(Problem::is_error).collect(),
        }
    }

    const MAP: &str = "[map]\nindicator = \"i\"\narea = \"R\"\nperiod = \"T\"\nunit = \"count\"\n";

    #[test]
    fn a_bad_schedule_or_zone_is_named_by_its_key() {
        let keys = |head: &str| -> Vec<String> {
            let text = format!("{head}{}{MAP}", &START["id = \"x\"\n".len()..]);
            problems_of(&format!("id = \"x\"\n{text}"))
                .into_iter()
                .map(|p| p.key)
                .collect()
        };
        assert_eq!(keys("schedule = \"30 25 * * *\"\n"), ["schedule"]);
        assert_eq!(keys("timezone = \"Mars/Olympus\"\n"), ["timezone"]);
        assert!(keys("schedule = \"*/10 * * * * *\"\ntimezone = \"UTC\"\n").is_empty());
    }

    #[test]
    fn a_path_named_twice_is_a_problem() {
        let text = format!(
            "id = \"x\"\n[source]\nkind = \"file\"\npath = [\"a.csv\", \"a.csv\"]\nformat = \"csv\"\n{MAP}"
        );
        let problems = problems_of(&text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "source.path");
        assert!(
            problems[0].message.contains("is named twice"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn lang_is_a_px_key_and_csv_keys_are_not() {
        let messages = |source: &str| -> Vec<String> {
            problems_of(&format!("{START}{MAP}").replace("format = \"csv\"\n", source))
                .into_iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect()
        };
        assert_eq!(
            messages("format = \"csv\"\nlang = \"sv\"\n"),
            [
                "source.lang: `lang` is read only with `format = \"px\"`, not `format = \"csv\"`; remove it"
            ]
        );
        assert_eq!(
            messages("format = \"px\"\ndelimiter = \";\"\nheader = false\n"),
            [
                "source.delimiter: `delimiter` is read only with `format = \"csv\"`, not `format = \"px\"`; remove it",
                "source.header: `header` is read only with `format = \"csv\"`, not `format = \"px\"`; remove it",
            ]
        );
        assert!(messages("format = \"px\"\nlang = \"en\"\n").is_empty());
    }

    #[test]
    fn a_code_list_name_cannot_leave_the_codelists_directory() {
        let text = format!("{START}{MAP}").replace(
            "unit = ",
            "sex = { column = \"Kon\", codes = \"../../etc/x\" }\nunit = ",
        );
        let problems = problems_of(&text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "map.sex.codes");
        insta::assert_snapshot!(problems[0].message, @"`../../etc/x` is not a code list name; use letters, digits, `-` and `_` (the file is schemas/codelists/<name>.toml)");
    }

    #[test]
    fn a_path_that_is_neither_a_path_nor_a_list_says_what_is_expected() {
        let text = format!("{START}{MAP}").replace("path = \"a.csv\"", "path = 5");
        let error = toml::from_str::<PipelineFile>(&text).unwrap_err();
        // Inside the kind-tagged `[source]`, serde points at the table, not the key.
        insta::assert_snapshot!(key_problem(Path::new("p.toml"), &text, &error), @"error: p.toml: source: invalid type: integer `5`, expected a file path or a list of file paths");
    }

    /// `check`'s errors as `key: message` for a file source with `keys` (after `format`).
    fn file_errors(format: &str, keys: &str) -> Vec<String> {
        let text = format!("{START}{keys}\n{MAP}").replace("format = \"csv\"", format);
        problems_of(&text)
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect()
    }

    #[test]
    fn a_file_source_refuses_a_url() {
        assert_eq!(
            file_errors("format = \"csv\"", "url = \"https://example.org/a.csv\""),
            [
                "source.url: `url` is a key of `kind = \"url\"`; a file source names its files with `path`"
            ]
        );
    }

    #[test]
    fn xlsx_takes_a_sheet_by_name_or_number_and_a_header_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(dir.path().join("a.csv"), "x\n1\n").unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        for (sheet, expected) in [
            ("\"Data\"", SheetChoice::Name("Data".into())),
            ("2", SheetChoice::Index(2)),
        ] {
            let text = format!("{START}sheet = {sheet}\nheader_row = 3\n{MAP}")
                .replace("format = \"csv\"", "format = \"xlsx\"");
            std::fs::write(&path, text).unwrap();
            let (pipeline, _) = check_file(&path, &settings, &Schemas::default()).unwrap();
            let options = XlsxOptions {
                sheet: expected,
                header_row: Some(3),
            };
            assert_eq!(pipeline.format, Format::Xlsx(options));
        }
    }

    #[test]
    fn xlsx_keys_and_csv_keys_are_refused_on_the_other_format() {
        insta::assert_debug_snapshot!(file_errors("format = \"csv\"", "sheet = \"Data\"\nheader_row = 2"), @r#"
        [
            "source.sheet: `sheet` is read only with `format = \"xlsx\"`, not `format = \"csv\"`; remove it",
            "source.header_row: `header_row` is read only with `format = \"xlsx\"`, not `format = \"csv\"`; remove it",
        ]
        "#);
        insta::assert_debug_snapshot!(file_errors("format = \"xlsx\"", "delimiter = \";\"\nheader = false"), @r#"
        [
            "source.delimiter: `delimiter` is read only with `format = \"csv\"`, not `format = \"xlsx\"`; remove it",
            "source.header: `header` is read only with `format = \"csv\"`, not `format = \"xlsx\"`; remove it",
        ]
        "#);
        insta::assert_debug_snapshot!(file_errors("format = \"xlsx\"", "sheet = 0\nheader_row = -1"), @r#"
        [
            "source.sheet: sheet number 0 must be at least 1 (the first sheet is 1)",
            "source.header_row: must be at least 1 (rows are numbered from 1, as in Excel)",
        ]
        "#);
    }

    #[test]
    fn a_sheet_that_is_neither_a_name_nor_a_number_says_what_is_expected() {
        let text =
            format!("{START}sheet = true\n{MAP}").replace("format = \"csv\"", "format = \"xlsx\"");
        let error = toml::from_str::<PipelineFile>(&text).unwrap_err();
        insta::assert_snapshot!(key_problem(Path::new("p.toml"), &text, &error), @"error: p.toml: source: invalid type: boolean `true`, expected a sheet name (a string) or a 1-based sheet number");
    }

    #[test]
    fn a_missing_top_level_key_is_named_alone() {
        let text = format!("# a comment first\n{}", &START["id = \"x\"\n".len()..]);
        assert_eq!(key_of(&text), "id");
    }

    #[test]
    fn an_unknown_key_and_a_bad_value_are_named_inside_their_table() {
        let text = format!(
            "{START}bogus = 1\n[map]\nindicator = \"i\"\narea = \"R\"\nperiod = \"T\"\nunit = \"count\"\n"
        );
        assert_eq!(key_of(&text), "source.bogus");
        let text = format!(
            "{START}[map]\nindicator = \"i\"\narea = {{ column = 1 }}\nperiod = \"T\"\nunit = \"count\"\n"
        );
        assert_eq!(key_of(&text), "map.area");
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    /// The pipeline with `source` after `kind = "url"`, or its errors as `key: message`.
    fn check(source: &str) -> Result<Pipeline, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let text = format!(
            "id = \"p\"\n[source]\nkind = \"url\"\n{source}\n[map]\nindicator = \"i\"\n\
             area = \"R\"\nperiod = \"T\"\nunit = \"count\"\n"
        );
        std::fs::write(&path, text).unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        check_file(&path, &settings, &Schemas::default())
            .map(|(pipeline, _)| pipeline)
            .map_err(|problems| {
                (problems.into_iter().filter(Problem::is_error))
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect()
            })
    }

    #[test]
    fn the_model_columns_come_from_the_url_and_its_host() {
        let pipeline = check(
            "url = \"https://www.scb.se/contentassets/BE0101.px?token=s3cret\"\nformat = \"csv\"\n\
             delimiter = \";\"",
        )
        .unwrap();
        assert_eq!(pipeline.origin.producer, "scb");
        assert_eq!(pipeline.origin.table, "BE0101.px");
        assert_eq!(
            pipeline.origin.url,
            "https://www.scb.se/contentassets/BE0101.px?token=REDACTED"
        );
        assert!(matches!(
            pipeline.format,
            Format::Csv(CsvOptions {
                delimiter: b';',
                ..
            })
        ));
        let SourceKind::Url(source) = &pipeline.source else {
            panic!("a url source")
        };
        assert_eq!(source.urls.len(), 1);
    }

    #[test]
    fn urls_must_be_http_each_once_and_format_keys_are_checked_as_for_files() {
        let found = check(
            "url = [\"ftp://example.org/a.csv\", \"https://example.org/b.csv\", \
             \"https://example.org/b.csv\"]\nformat = \"csv\"\ndecimal = \";\"\nmax_table_cells = 0",
        )
        .unwrap_err();
        insta::assert_snapshot!(found.join("\n"), @r#"
        source.url: `ftp://example.org/a.csv` is not an http(s) URL; write it as "https://host/path/file.csv"
        source.url: https://example.org/b.csv is named twice; each piece of the table once (twice, every row would be refused as a repeated key)
        source.decimal: `;` must be "." or ","
        source.max_table_cells: must be at least 1
        "#);
        let empty = check("url = []\nformat = \"jsonstat\"").unwrap_err();
        assert_eq!(
            empty,
            ["source.url: the list of URLs is empty; name at least one file"]
        );
    }

    #[test]
    fn a_url_source_names_its_file_by_url_and_a_file_source_by_path() {
        insta::assert_snapshot!(check("path = \"t.csv\"\nformat = \"csv\"").unwrap_err().join("\n"), @r#"
        source.path: `path` is a key of `kind = "file"`; a url source names its files with `url`
        source.url: missing; name the file's http(s) URL, e.g. url = "https://host/path/t.csv"
        "#);
    }
}

#[cfg(test)]
mod pxweb_tests {
    use super::*;

    const MAP: &str =
        "[map]\nindicator = \"i\"\narea = \"Region\"\nperiod = \"Tid\"\nunit = \"count\"\n";

    /// The errors of a PxWeb pipeline with `source` as its `[source]` keys, as `key: message`.
    fn errors(source: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, format!("id = \"p\"\n[source]\n{source}\n{MAP}")).unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        match check_file(&path, &settings, &Schemas::default()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems
                .into_iter()
                .filter(Problem::is_error)
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect(),
        }
    }

    fn checked(source: &str) -> Pipeline {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, format!("id = \"p\"\n[source]\n{source}\n{MAP}")).unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        check_file(&path, &settings, &Schemas::default()).unwrap().0
    }

    const V1: &str = "kind = \"pxweb\"\nurl = \"https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BE0101A/BefolkningNy\"\n";
    const V2: &str = "kind = \"pxweb2\"\nurl = \"https://statistikdatabasen.scb.se/api/v2\"\n";

    #[test]
    fn the_model_columns_come_from_the_table_and_its_host() {
        let v2 = checked(&format!("{V2}table = \"tab638\"\n"));
        assert_eq!(v2.origin.producer, "scb");
        assert_eq!(v2.origin.table, "TAB638");
        assert_eq!(
            v2.origin.url,
            "https://statistikdatabasen.scb.se/api/v2/tables/TAB638"
        );
        let v1 = checked(V1);
        assert_eq!(v1.origin.table, "BefolkningNy");
        let own = checked(
            "kind = \"pxweb\"\nurl = \"https://statistik.helsingborg.se/PXWeb/api/v1/sv/helsingborg/Befolkning/Bef01.px\"\nproducer = \"Helsingborg\"\n",
        );
        assert_eq!(
            (own.origin.producer.as_str(), own.origin.table.as_str()),
            ("helsingborg", "Bef01")
        );
    }

    #[test]
    fn each_api_refuses_the_others_keys_and_a_bad_selection() {
        let found = errors(&format!(
            "{V1}table = \"TAB638\"\n[source.select]\nRegion = {{ codelist = \"vs_X\", values = \"*\" }}\n\
             Tid = \"top:0\"\nAlder = {{ filter = \"agg:Ålder5år\", values = \"*\" }}\nKon = []\n\
             kon = \"1\"\n"
        ));
        insta::assert_snapshot!(found.join("\n"), @r#"
        source.table: `table` is a pxweb2 key; for kind = "pxweb" `url` is the table URL
        source.select.Alder: a v1 value set or aggregation needs its codes listed (`values = ["0114", …]`): v1 metadata does not list them, and PxWeb refuses wildcards with `agg:`
        source.select.Kon: the list of codes is empty; leave the variable out to eliminate it
        source.select.Region: `codelist` is a PxWebApi 2.0 key; PxWeb v1 names a `filter = "vs:…"`
        source.select.Tid: `top:0`: top:N needs a whole number of values above 0, e.g. "top:5"
        source.select.kon: `Kon` and `kon` are one variable (PxWeb codes ignore case); select it once
        "#);
        let found = errors(&format!(
            "{V2}table = \"BefolkningNy\"\nconfig_url = \"x\"\n"
        ));
        insta::assert_snapshot!(found.join("\n"), @r#"
        source.config_url: `config_url` is a pxweb key; pxweb2 reads <url>/config
        source.table: `table = "BefolkningNy"` is not a PxWebApi 2.0 table id; they look like "TAB638"
        "#);
        let found = errors(
            "kind = \"pxweb\"\nurl = \"http://127.0.0.1/api/v1/sv/ssd/T\"\nserver_max_cells = 0\n",
        );
        insta::assert_snapshot!(found.join("\n"), @r#"
        source.server_max_cells: must be at least 1
        source.producer: no producer is known for http://127.0.0.1/api/v1/sv/ssd/T; set `producer` (the model's `source` column, e.g. "helsingborg")
        "#);
    }
}

#[cfg(test)]
mod kolada_tests {
    use super::*;

    /// A catalogue of Kolada KPIs with their units.
    fn schemas(units: &[(&str, &str)]) -> Schemas {
        let mut schemas = Schemas::default();
        for (id, unit) in units {
            let entry = format!("title_sv = \"{id}\"\nunit = \"{unit}\"\n");
            schemas
                .indicators
                .insert(id.to_string(), toml::from_str(&entry).unwrap());
        }
        schemas
    }

    fn check(text: &str, schemas: &Schemas) -> Result<Pipeline, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, format!("id = \"k\"\n{text}")).unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        check_file(&path, &settings, schemas)
            .map(|(pipeline, _)| pipeline)
            .map_err(|problems| {
                (problems.into_iter())
                    .filter(Problem::is_error)
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect()
            })
    }

    const SOURCE: &str = "[source]\nkind = \"kolada\"\nkpi = [\"N15428\", \"N15507\"]\n";

    #[test]
    fn the_built_in_map_equals_the_one_spelled_out() {
        let catalogue = schemas(&[("N15428", "percent"), ("N15507", "percent")]);
        // The map of the issue, with `area` (and what goes with it) as given.
        let spelled = |source: &str, area: &str| {
            check(
                &format!(
                    "{source}[map]\nindicator = {{ column = \"kpi\" }}\n{area}\n\
                     period = {{ column = \"period\", kind = \"year\" }}\n\
                     sex = {{ column = \"gender\", codes = {{ T = \"T\", K = \"F\", M = \"M\" }} }}\n\
                     unit = \"percent\"\n[map.missing]\n\"\" = \"ok\"\nSaknas = \"missing\"\nisdeleted = \"missing\"\n"
                ),
                &catalogue,
            )
            .unwrap()
        };
        let built_in = check(SOURCE, &catalogue).unwrap();
        let spelled_plain = spelled(SOURCE, "area = \"municipality\"");
        assert_eq!(built_in.mapping, spelled_plain.mapping);
        assert_eq!(built_in.mapping.unit, "percent");
        let groups = format!("{SOURCE}groups = true\n");
        let built_in_groups = check(&groups, &catalogue).unwrap();
        let spelled_groups = spelled(
            &groups,
            "area = { column = \"municipality\", networks = true }\nmembers = \"count\"",
        );
        assert_eq!(built_in_groups.mapping, spelled_groups.mapping);
        assert!(built_in_groups.mapping.area_networks);
        assert_ne!(built_in_groups.mapping, built_in.mapping);
        assert_eq!(built_in.origin.producer, "kolada");
        let SourceKind::Kolada(source) = &built_in.source else {
            panic!("a Kolada source")
        };
        assert_eq!(source.url, kolada::DEFAULT_URL);
        assert_eq!(source.batch_ids, kolada::DEFAULT_BATCH_IDS);
        assert_eq!(source.municipalities, kolada::Pick::All);
    }

    #[test]
    fn the_unit_comes_from_the_catalogue_one_per_pipeline() {
        let error = check(SOURCE, &schemas(&[("N15428", "percent")])).unwrap_err();
        assert!(
            error[0].starts_with("source.kpi: KPI N15507 is not in schemas/indicators.toml"),
            "{error:?}"
        );
        let error = check(
            SOURCE,
            &schemas(&[("N15428", "percent"), ("N15507", "points")]),
        )
        .unwrap_err();
        assert_eq!(
            error,
            [
                "source.kpi: the KPIs have different units, percent (N15428) and points (N15507): one pipeline writes one unit, so split them"
            ]
        );
    }

    #[test]
    fn ids_lists_and_limits_are_checked_by_their_keys() {
        let catalogue = schemas(&[("N15428", "percent")]);
        let keys = |extra: &str| -> Vec<String> {
            let text = format!("[source]\nkind = \"kolada\"\nkpi = [\"N15428\"]\n{extra}");
            match check(&text, &catalogue) {
                Ok(_) => Vec::new(),
                Err(errors) => errors
                    .into_iter()
                    .map(|e| e.split(':').next().unwrap().to_string())
                    .collect(),
            }
        };
        assert!(
            keys("municipality = [\"0180\", \"0013\", \"0000\"]\nyear = [2022, \"2023\"]\n")
                .is_empty()
        );
        assert_eq!(
            keys("municipality = [\"Stockholm\"]\n"),
            ["source.municipality"]
        );
        assert_eq!(keys("municipality = \"0180\"\n"), ["source.municipality"]);
        assert_eq!(keys("year = [\"last\"]\n"), ["source.year"]);
        assert_eq!(keys("batch_ids = 26\n"), ["source.batch_ids"]);
        assert!(keys("groups = true\nmunicipality = [\"G33698\", \"0180\"]\n").is_empty());
        assert_eq!(
            keys("municipality = [\"G33698\"]\n"),
            ["source.municipality"]
        );
        assert_eq!(keys("url = \"ftp://x\"\n"), ["source.url"]);
        let error = check(
            "[source]\nkind = \"kolada\"\nkpi = [\"15428\", \"N15428\", \"N15428\"]\n",
            &catalogue,
        )
        .unwrap_err();
        assert_eq!(error.len(), 2, "{error:?}");
        let error = check(
            "[source]\nkind = \"file\"\npath = \"a.csv\"\nformat = \"csv\"\n",
            &catalogue,
        )
        .unwrap_err();
        assert!(
            error.iter().any(|e| e.starts_with("map: [map] is missing")),
            "{error:?}"
        );
    }
}
