//! Kolada (API v3) data pages → rows named after Kolada's fields.
//!
//! Owns: reading one page (`{"values": [{"kpi", "municipality", "period", "values": [{"gender",
//! "value", "count", "status", "isdeleted"}]}], "next_url", …}`) into one row per value, and the
//! area rule of the source: `0000` (Riket) → `00`, `00XX` (a region) → county `XX`, a
//! municipality's four digits as they are, municipality groups (`G…`) left out unless asked for.
//! Must not: follow `next_url` (the source does), map codes to the model, or guess a gender:
//! anything but `T`, `K`, `M` fails the page, naming the row.
//!
//! A deleted value (`isdeleted: true`, its value null) keeps its row, with `status` reading
//! `isdeleted`: the one status column the mapping reads then carries both of Kolada's flags.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde::Deserialize;

use super::DecodeLimits;
use super::table::{SourceMeta, SourceTable, TableError};

/// The columns of a decoded page, in order.
pub const COLUMNS: [&str; 8] = [
    "kpi",
    "municipality",
    "period",
    "gender",
    "value",
    "count",
    "status",
    "isdeleted",
];

/// What `status` reads for a value Kolada marks deleted.
pub const DELETED: &str = "isdeleted";

/// Kolada's genders: total, women (kvinnor), men.
pub const GENDERS: [&str; 3] = ["T", "K", "M"];

/// The Kolada options of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KoladaOptions {
    /// Keep municipality groups' rows (their values are unweighted means of the members).
    pub groups: bool,
}

/// A page that is not Kolada's data shape; each names the page's URL.
#[derive(Debug, thiserror::Error)]
pub enum KoladaError {
    #[error("{origin} is not a Kolada data page: {source}")]
    Json {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{origin}, row {row} (kpi {kpi}, municipality {municipality}): gender `{gender}` is none \
         of Kolada's T, K, M; the API changed or the page is not Kolada's — nothing of it was used"
    )]
    Gender {
        origin: String,
        row: u64,
        kpi: String,
        municipality: String,
        gender: String,
    },
    #[error(
        "{origin}, row {row} (kpi {kpi}): municipality `{municipality}` is neither Riket (0000), \
         a region (00XX), a municipality (four digits) nor a group (G…)"
    )]
    Area {
        origin: String,
        row: u64,
        kpi: String,
        municipality: String,
    },
    #[error(
        "{origin} holds more than {max} cells ({rows} rows so far × {} columns); if Kolada really \
         sends pages that big, raise `max_table_cells` in [source]", COLUMNS.len()
    )]
    TooManyCells { origin: String, rows: u64, max: u64 },
    #[error(transparent)]
    Table(#[from] TableError),
}

#[derive(Deserialize)]
struct Page {
    values: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    kpi: String,
    municipality: String,
    /// An integer in v3, a string in some v2 answers.
    period: Period,
    values: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Period {
    Year(i64),
    Text(String),
}

#[derive(Deserialize)]
struct Value {
    gender: String,
    value: Option<f64>,
    count: Option<f64>,
    #[serde(default)]
    status: Option<String>,
    /// `isdeleted` in v3; `is_deleted` in v2's incremental answers.
    #[serde(default, alias = "is_deleted")]
    isdeleted: Option<bool>,
}

/// Where an area of Kolada's goes in the model's codes; `None` leaves its rows out.
fn area_code(municipality: &str, groups: bool) -> Result<Option<String>, ()> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match municipality {
        "0000" => Ok(Some("00".to_string())),
        code if code.len() == 4 && code.starts_with("00") && digits(code) => {
            Ok(Some(code[2..].to_string()))
        }
        code if code.len() == 4 && digits(code) => Ok(Some(code.to_string())),
        code if code.len() > 1 && code.starts_with('G') && digits(&code[1..]) => {
            Ok(groups.then(|| code.to_string()))
        }
        _ => Err(()),
    }
}

/// Decodes one data page; `origin` (its URL) names it in errors.
pub fn decode(
    bytes: &[u8],
    origin: &str,
    options: &KoladaOptions,
    limits: &DecodeLimits,
) -> Result<SourceTable, KoladaError> {
    let page: Page = serde_json::from_slice(bytes).map_err(|source| KoladaError::Json {
        origin: origin.to_string(),
        source,
    })?;
    let mut columns: [Vec<Option<String>>; 6] = Default::default();
    let (mut values, mut counts, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
    let max_rows = limits.max_table_cells / COLUMNS.len() as u64;
    let mut row_number = 0u64;
    for row in page.values {
        let area =
            area_code(&row.municipality, options.groups).map_err(|()| KoladaError::Area {
                origin: origin.to_string(),
                row: row_number + 1,
                kpi: row.kpi.clone(),
                municipality: row.municipality.clone(),
            })?;
        let period = match row.period {
            Period::Year(year) => year.to_string(),
            Period::Text(text) => text,
        };
        for value in row.values {
            row_number += 1;
            if !GENDERS.contains(&value.gender.as_str()) {
                return Err(KoladaError::Gender {
                    origin: origin.to_string(),
                    row: row_number,
                    kpi: row.kpi,
                    municipality: row.municipality,
                    gender: value.gender,
                });
            }
            let Some(area) = &area else { continue };
            if numbers.len() as u64 >= max_rows {
                return Err(KoladaError::TooManyCells {
                    origin: origin.to_string(),
                    rows: numbers.len() as u64,
                    max: limits.max_table_cells,
                });
            }
            let deleted = value.isdeleted == Some(true);
            let status = if deleted {
                DELETED.to_string()
            } else {
                value.status.unwrap_or_default()
            };
            let texts = [
                row.kpi.clone(),
                area.clone(),
                period.clone(),
                value.gender,
                status,
                deleted.to_string(),
            ];
            for (column, text) in columns.iter_mut().zip(texts) {
                column.push(Some(text));
            }
            values.push(value.value.filter(|_| !deleted));
            counts.push(value.count);
            numbers.push(row_number);
        }
    }
    let [kpi, municipality, period, gender, status, deleted] = columns;
    let text = |column: Vec<Option<String>>| Arc::new(StringArray::from(column)) as ArrayRef;
    let arrays: Vec<ArrayRef> = vec![
        text(kpi),
        text(municipality),
        text(period),
        text(gender),
        Arc::new(Float64Array::from(values)),
        Arc::new(Float64Array::from(counts)),
        text(status),
        text(deleted),
    ];
    let fields: Vec<Field> = (COLUMNS.iter())
        .zip(&arrays)
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    debug_assert!(
        fields
            .iter()
            .all(|f| matches!(f.data_type(), DataType::Utf8 | DataType::Float64))
    );
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .expect("columns of one length with their own types");
    Ok(SourceTable::from_rows(
        batch,
        numbers,
        SourceMeta::default(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    const PAGE: &str = r#"{"values": [
        {"kpi": "N15428", "period": 2023, "municipality": "0180", "values": [
            {"gender": "T", "value": 74.1, "count": 1, "status": "", "isdeleted": false},
            {"gender": "K", "value": 76.0, "count": 1, "status": "", "isdeleted": false},
            {"gender": "M", "value": null, "count": 0, "status": "Saknas", "isdeleted": false}]},
        {"kpi": "N15428", "period": "2023", "municipality": "0013", "values": [
            {"gender": "T", "value": 70.2, "count": 1, "status": ""}]},
        {"kpi": "N15428", "period": 2023, "municipality": "0000", "values": [
            {"gender": "T", "value": null, "count": 1, "status": "", "isdeleted": true}]},
        {"kpi": "N15428", "period": 2023, "municipality": "G33698", "values": [
            {"gender": "T", "value": 72.5, "count": 12, "status": ""}]}],
        "count": 4, "next_url": null, "previous_url": null}"#;

    fn column(table: &SourceTable, name: &str) -> Vec<Option<String>> {
        let chunk = table.all();
        let array = chunk.batch.column_by_name(name).unwrap();
        let array = arrow_cast::cast(array, &DataType::Utf8).unwrap();
        let strings = array.as_any().downcast_ref::<StringArray>().unwrap();
        (0..strings.len())
            .map(|i| strings.is_valid(i).then(|| strings.value(i).to_string()))
            .collect()
    }

    fn decoded(groups: bool) -> SourceTable {
        decode(
            PAGE.as_bytes(),
            "http://k/v3/data",
            &KoladaOptions { groups },
            &DecodeLimits::default(),
        )
        .unwrap()
    }

    #[test]
    fn one_row_per_value_with_the_areas_of_the_model_and_groups_left_out() {
        let table = decoded(false);
        assert_eq!(table.num_rows(), 5);
        assert_eq!(
            column(&table, "municipality"),
            ["0180", "0180", "0180", "13", "00"].map(|s| Some(s.to_string()))
        );
        assert_eq!(
            column(&table, "gender"),
            ["T", "K", "M", "T", "T"].map(|s| Some(s.to_string()))
        );
        assert_eq!(column(&table, "period")[3].as_deref(), Some("2023"));
        let values = column(&table, "value");
        assert_eq!(values[0].as_deref(), Some("74.1"));
        assert_eq!(values[2], None);
        assert_eq!(values[4], None, "a deleted value has none");
        let status = column(&table, "status");
        assert_eq!(status[2].as_deref(), Some("Saknas"));
        assert_eq!(status[4].as_deref(), Some(DELETED));
        assert_eq!(column(&table, "isdeleted")[4].as_deref(), Some("true"));
        let grouped = decoded(true);
        assert_eq!(grouped.num_rows(), 6);
        assert_eq!(
            column(&grouped, "municipality")[5].as_deref(),
            Some("G33698")
        );
        assert_eq!(column(&grouped, "count")[5].as_deref(), Some("12.0"));
    }

    #[test]
    fn a_gender_beyond_t_k_m_or_an_unknown_area_fails_naming_the_row() {
        let page = PAGE.replace("\"gender\": \"K\"", "\"gender\": \"F\"");
        let error = decode(
            page.as_bytes(),
            "http://k/p2",
            &KoladaOptions::default(),
            &DecodeLimits::default(),
        )
        .unwrap_err();
        insta::assert_snapshot!(error, @"http://k/p2, row 2 (kpi N15428, municipality 0180): gender `F` is none of Kolada's T, K, M; the API changed or the page is not Kolada's — nothing of it was used");
        let page = PAGE.replace("\"0013\"", "\"OU1234\"");
        let error = decode(
            page.as_bytes(),
            "http://k/p2",
            &KoladaOptions::default(),
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("municipality `OU1234` is neither"),
            "{error}"
        );
    }

    #[test]
    fn a_page_bigger_than_the_limit_or_not_kolada_is_refused() {
        let limits = DecodeLimits {
            max_table_cells: 3 * COLUMNS.len() as u64,
        };
        let error = decode(
            PAGE.as_bytes(),
            "http://k/p",
            &KoladaOptions::default(),
            &limits,
        )
        .unwrap_err();
        assert!(
            matches!(error, KoladaError::TooManyCells { rows: 3, .. }),
            "{error}"
        );
        let error = decode(
            b"{\"detail\": \"Not Found\"}",
            "http://k/p",
            &KoladaOptions::default(),
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("http://k/p is not a Kolada data page"),
            "{error}"
        );
    }

    #[test]
    fn the_area_rule() {
        assert_eq!(area_code("0000", false), Ok(Some("00".into())));
        assert_eq!(area_code("0020", false), Ok(Some("20".into())));
        assert_eq!(area_code("1480", false), Ok(Some("1480".into())));
        assert_eq!(area_code("G33698", false), Ok(None));
        assert_eq!(area_code("G33698", true), Ok(Some("G33698".into())));
        assert_eq!(area_code("018", false), Err(()));
        assert_eq!(area_code("G", true), Err(()));
    }
}
