//! The common indicator model of DESIGN §3: the `observations` Arrow schema and its vocabularies.
//!
//! Owns: column names (`col::*`), their Arrow types, the order of the key, and the closed
//! vocabularies (status, area level, sex).
//! Must not: map source codes (`harmonise` does) or know Parquet (`warehouse` does).

use std::sync::{Arc, LazyLock};

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, PrimitiveArray};
use arrow_buffer::ScalarBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Column names of `observations`, in schema order.
pub mod col {
    pub const INDICATOR_ID: &str = "indicator_id";
    pub const AREA_CODE: &str = "area_code";
    pub const AREA_LEVEL: &str = "area_level";
    pub const PERIOD: &str = "period";
    pub const PERIOD_START: &str = "period_start";
    pub const PERIOD_END: &str = "period_end";
    pub const SEX: &str = "sex";
    pub const AGE: &str = "age";
    pub const GRADE: &str = "grade";
    pub const BREAKDOWN: &str = "breakdown";
    pub const VALUE: &str = "value";
    pub const UNIT: &str = "unit";
    pub const STATUS: &str = "status";
    pub const SAMPLE_SIZE: &str = "sample_size";
    pub const NUMERATOR: &str = "numerator";
    pub const DENOMINATOR: &str = "denominator";
    pub const CI_LOWER: &str = "ci_lower";
    pub const CI_UPPER: &str = "ci_upper";
    pub const REFERENCE: &str = "reference";
    pub const MEMBERS: &str = "members";
    pub const SOURCE: &str = "source";
    pub const SOURCE_TABLE: &str = "source_table";
    pub const SOURCE_URL: &str = "source_url";
    pub const SOURCE_UPDATED: &str = "source_updated";
    pub const RUN_ID: &str = "run_id";
    pub const INGESTED_AT: &str = "ingested_at";
}

/// The key of DESIGN §3, in sort order: unique within a pipeline.
pub const KEY: [&str; 8] = [
    col::INDICATOR_ID,
    col::AREA_CODE,
    col::PERIOD,
    col::SEX,
    col::AGE,
    col::GRADE,
    col::BREAKDOWN,
    col::REFERENCE,
];

/// `Dictionary(Int32, Utf8)`: the type of every repeated string column.
pub fn dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// A [`dictionary()`] array of `keys` into `values`.
///
/// Panics if a key is out of range: every caller builds its keys itself, so that is a bug. The
/// check is one vectorised pass for the largest key (as `u32`, so a negative key counts as
/// huge), a fraction of the cost of arrow's key-by-key check on a 64k-row partition's columns.
pub fn dictionary_array(keys: ScalarBuffer<i32>, values: ArrayRef) -> DictionaryArray<Int32Type> {
    let largest = keys.iter().fold(0u32, |m, &k| m.max(k as u32));
    assert!(
        keys.is_empty() || (largest as usize) < values.len(),
        "dictionary key {largest} is out of range for {} values",
        values.len()
    );
    // SAFETY: no nulls, and every key is in 0..values.len() (checked above), which is all
    // `try_new` checks.
    unsafe { DictionaryArray::new_unchecked(PrimitiveArray::new(keys, None), values) }
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let dict = |name: &str| Field::new(name, dictionary(), false);
    let number = |name: &str| Field::new(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        dict(INDICATOR_ID),
        text(AREA_CODE),
        dict(AREA_LEVEL),
        text(PERIOD),
        Field::new(PERIOD_START, DataType::Date32, false),
        Field::new(PERIOD_END, DataType::Date32, false),
        dict(SEX),
        dict(AGE),
        dict(GRADE),
        text(BREAKDOWN),
        number(VALUE),
        dict(UNIT),
        dict(STATUS),
        Field::new(SAMPLE_SIZE, DataType::Int64, true),
        number(NUMERATOR),
        number(DENOMINATOR),
        number(CI_LOWER),
        number(CI_UPPER),
        dict(REFERENCE),
        Field::new(MEMBERS, DataType::Int32, true),
        dict(SOURCE),
        dict(SOURCE_TABLE),
        dict(SOURCE_URL),
        Field::new(SOURCE_UPDATED, timestamp(), true),
        dict(RUN_ID),
        Field::new(INGESTED_AT, timestamp(), false),
    ]))
});

static BATCH_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = SCHEMA
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(dictionary()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
});

/// The Arrow schema of `observations` as DESIGN §3 gives it and as the warehouse files declare.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The schema of observations in memory: [`schema`] with every string column dictionary-encoded,
/// so that sorting, counting and encoding work on small integer keys; the warehouse writes the
/// plain-string columns (`area_code`, `period`, `breakdown`) as [`schema`] declares them.
pub fn batch_schema() -> SchemaRef {
    BATCH_SCHEMA.clone()
}

/// A closed vocabulary of the model, written as its canonical lowercase label.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $label)] $variant),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),+];
            /// The label stored in the warehouse.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            /// The value whose label is `label`.
            pub fn parse(label: &str) -> Option<Self> {
                match label { $($label => Some($name::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// What a value is (or why there is none).
    Status {
        Ok = "ok",
        Missing = "missing",
        NotApplicable = "not_applicable",
        Suppressed = "suppressed",
        Provisional = "provisional",
        Estimated = "estimated",
        Break = "break",
    }
}

vocabulary! {
    /// The level of an area: administrative, implied by its SCB code, or a network of areas
    /// (a Kolada municipality group, later the networks of `schemas/`).
    AreaLevel {
        Country = "country",
        County = "county",
        Municipality = "municipality",
        Network = "network",
    }
}

vocabulary! {
    /// Sex as the model writes it: `T` is the total over both.
    Sex {
        F = "F",
        M = "M",
        T = "T",
        X = "X",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_columns_are_in_the_schema() {
        let schema = schema();
        for name in KEY {
            assert!(schema.field_with_name(name).is_ok(), "{name}");
        }
        assert_eq!(schema.fields().len(), 26);
    }

    #[test]
    fn vocabulary_labels_round_trip() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(*status));
        }
        assert_eq!(Status::parse("för få svar"), None);
        assert_eq!(AreaLevel::Municipality.to_string(), "municipality");
    }
}
