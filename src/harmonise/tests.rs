use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};

use super::*;
use crate::formats::merge::Provenance;
use crate::formats::{CellStatus, Cube, Dimension, SourceMeta, SourceTable};
use crate::harmonise::codes::CodeList;
use crate::harmonise::mapping::{builtin_markers, defaults};
use crate::harmonise::periods::PeriodKind;
use crate::model::{Status, col};

static UNNAMED: Provenance = Provenance::unnamed();

fn context(catalogued: &BTreeSet<String>) -> Context<'_> {
    Context {
        run_id: "run-1",
        ingested_at: 1_700_000_000_000_000,
        source: "lupp",
        source_table: "export.csv",
        source_url: "/data/export.csv",
        source_updated: None,
        catalogued,
        areas: None,
        provenance: &UNNAMED,
    }
}

fn survey(rows: &[[&str; 6]]) -> Chunk {
    let rows: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
    text_table(&["kommun", "ar", "kon", "arskurs", "svar", "andel"], &rows)
}

/// A chunk of text columns `names`, data rows numbered from 2 (after a header line).
fn text_table(names: &[&str], rows: &[&[&str]]) -> Chunk {
    let columns: Vec<(&str, ArrayRef)> = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let values: Vec<&str> = rows.iter().map(|r| r[c]).collect();
            (*name, Arc::new(StringArray::from(values)) as ArrayRef)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let numbers = (2..2 + rows.len() as u64).collect();
    SourceTable::from_rows(batch, numbers, SourceMeta::default())
        .unwrap()
        .all()
}

fn survey_mapping() -> Mapping {
    let mut markers = builtin_markers();
    markers.insert(
        String::new(),
        Marker {
            status: Status::Suppressed,
            value: None,
        },
    );
    Mapping {
        indicator: Field::Fixed("lupp_trygg".into()),
        area_column: "kommun".into(),
        area_naming: AreaNaming::Code,
        area_codes: None,
        area_networks: false,
        period_column: "ar".into(),
        period_kind: PeriodKind::Year,
        sex: Field::Column {
            column: "kon".into(),
            codes: Some(CodeList::inline(BTreeMap::from([
                ("Flicka".to_string(), "F".to_string()),
                ("Pojke".to_string(), "M".to_string()),
            ]))),
        },
        age: Field::Fixed(defaults::AGE.into()),
        grade: Field::Column {
            column: "arskurs".into(),
            codes: None,
        },
        breakdown: vec![("svar".into(), "svar".into())],
        unit: "percent".into(),
        value: "andel".into(),
        sample_size: None,
        numerator: None,
        denominator: None,
        ci_lower: None,
        ci_upper: None,
        members: None,
        markers,
        decimal: ',',
    }
}

fn texts(batch: &RecordBatch, name: &str) -> Vec<String> {
    let column = arrow_cast::cast(batch.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("∅").to_string())
        .collect()
}

#[test]
fn survey_rows_map_to_the_model() {
    let chunk = survey(&[
        ["0114", "2024", "Flicka", "åk 8", "Ja", "12,5"],
        ["0114", "2024", "Pojke", "gy 2", "Nej", ""],
    ]);
    let catalogued = BTreeSet::from(["lupp_trygg".to_string()]);
    let out = harmonise(&chunk, &survey_mapping(), &context(&catalogued)).unwrap();
    assert!(out.reasons.is_empty(), "{:?}", out.reasons);
    assert!(out.uncatalogued.is_empty());
    let batch = &out.observations;
    assert_eq!(batch.schema(), crate::model::batch_schema());
    assert_eq!(
        texts(batch, col::AREA_LEVEL),
        ["municipality", "municipality"]
    );
    assert_eq!(texts(batch, col::SEX), ["F", "M"]);
    assert_eq!(texts(batch, col::GRADE), ["ak8", "gy2"]);
    assert_eq!(texts(batch, col::BREAKDOWN), ["svar=Ja", "svar=Nej"]);
    assert_eq!(texts(batch, col::STATUS), ["ok", "suppressed"]);
    assert_eq!(
        texts(batch, col::PERIOD_START),
        ["2024-01-01", "2024-01-01"]
    );
    assert_eq!(texts(batch, col::PERIOD_END), ["2024-12-31", "2024-12-31"]);
    let values = batch
        .column_by_name(col::VALUE)
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(values.iter().collect::<Vec<_>>(), [Some(12.5), None]);
    assert_eq!(texts(batch, col::RUN_ID), ["run-1", "run-1"]);
}

#[test]
fn network_ids_are_network_rows_with_their_reference_and_members() {
    let chunk = text_table(
        &["kommun", "ar", "andel", "antal"],
        &[
            &["G33698", "2024", "12,5", "12"],
            &["0114", "2024", "10,0", "1"],
        ],
    );
    let mut mapping = survey_mapping();
    mapping.sex = Field::Fixed("T".into());
    mapping.grade = Field::Fixed(String::new());
    mapping.breakdown.clear();
    mapping.members = Some("antal".into());
    let catalogued = BTreeSet::new();

    let refused = harmonise(&chunk, &mapping, &context(&catalogued)).unwrap();
    assert_eq!(refused.observations.num_rows(), 1);
    insta::assert_snapshot!(refused.reasons[0].message, @"kommun: area `G33698` is not an SCB region code: `00` is Sweden, 2 digits a county, 4 digits a municipality; if it is a network's id (a Kolada group), keep it as a network row with `area = { column = \"kommun\", networks = true }`");

    mapping.area_networks = true;
    let out = harmonise(&chunk, &mapping, &context(&catalogued)).unwrap();
    assert!(out.reasons.is_empty(), "{:?}", out.reasons);
    let batch = &out.observations;
    assert_eq!(texts(batch, col::AREA_CODE), ["0114", "G33698"]);
    assert_eq!(texts(batch, col::AREA_LEVEL), ["municipality", "network"]);
    assert_eq!(texts(batch, col::REFERENCE), ["", "network:G33698"]);
    // A municipality's count of one area is no member count.
    assert_eq!(texts(batch, col::MEMBERS), ["∅", "12"]);
}

#[test]
fn unmappable_categories_refuse_their_rows_with_reasons() {
    let chunk = survey(&[
        ["0114", "2024", "Flicka", "åk 8", "Ja", "12,5"],
        ["9999", "2024", "Flicka", "åk 8", "Ja", "1,0"],
        ["0114", "år 2024", "Annan", "åk 8", "Ja", "abc"],
    ]);
    let out = harmonise(&chunk, &survey_mapping(), &context(&BTreeSet::new())).unwrap();
    assert_eq!(texts(&out.observations, col::AREA_CODE), ["0114"]);
    let rules: Vec<(u64, &str)> = out
        .reasons
        .iter()
        .map(|r| (r.row, r.rule.as_str()))
        .collect();
    assert_eq!(
        rules,
        [(3, "area"), (4, "period"), (4, "sex"), (4, "value")],
        "{:#?}",
        out.reasons
    );
    assert!(
        out.reasons[0].message.starts_with("kommun: "),
        "{}",
        out.reasons[0].message
    );
    assert_eq!(out.uncatalogued, BTreeSet::from(["lupp_trygg".to_string()]));
}

#[test]
fn pxweb_markers_map_to_status_and_a_dash_is_zero() {
    let cube = Cube {
        dimensions: vec![
            Dimension::coded("Region", ["00", "01", "0180", "03"]),
            Dimension::coded("Tid", ["2023"]),
        ],
        values: Float64Array::from(vec![Some(10.0), None, None, None]),
        status: CellStatus::Sparse {
            markers: vec!["..".into(), "-".into(), "e".into()],
            cells: vec![(1, 0), (2, 1), (3, 2)],
        },
    };
    let chunk = SourceTable::from_cube(cube, SourceMeta::default())
        .unwrap()
        .all();
    let mut mapping = survey_mapping();
    mapping.area_column = "Region".into();
    mapping.period_column = "Tid".into();
    mapping.sex = Field::Fixed("T".into());
    mapping.grade = Field::Fixed(String::new());
    mapping.breakdown = vec![];
    mapping.value = defaults::VALUE_COLUMN.into();
    let out = harmonise(&chunk, &mapping, &context(&BTreeSet::new())).unwrap();
    assert_eq!(
        texts(&out.observations, col::STATUS),
        ["ok", "missing", "ok"]
    );
    assert_eq!(
        texts(&out.observations, col::AREA_LEVEL),
        ["country", "county", "municipality"]
    );
    let values = out
        .observations
        .column_by_name(col::VALUE)
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(
        values.iter().collect::<Vec<_>>(),
        [Some(10.0), None, Some(0.0)]
    );
    assert_eq!(out.reasons.len(), 1);
    insta::assert_snapshot!(out.reasons[0].message, @r#"status: marker `e` has no status; give it one under [map], e.g. missing = { "e" = "suppressed" }"#);
}

#[test]
fn several_breakdown_columns_join_sorted_by_key() {
    let chunk = survey(&[["0114", "2024", "Flicka", "åk 8", "Ja", "1"]]);
    let mut mapping = survey_mapping();
    mapping.breakdown = vec![
        ("a_kon".into(), "kon".into()),
        ("svar".into(), "svar".into()),
    ];
    let out = harmonise(&chunk, &mapping, &context(&BTreeSet::new())).unwrap();
    assert_eq!(
        texts(&out.observations, col::BREAKDOWN),
        ["a_kon=Flicka;svar=Ja"]
    );
}

#[test]
fn sample_sizes_must_be_whole_numbers() {
    let chunk = survey(&[
        ["0114", "2024", "Flicka", "åk 8", "Ja", "40"],
        ["0114", "2024", "Pojke", "åk 8", "Ja", "4,5"],
    ]);
    let mut mapping = survey_mapping();
    mapping.sample_size = Some("andel".into());
    let out = harmonise(&chunk, &mapping, &context(&BTreeSet::new())).unwrap();
    let sizes = out
        .observations
        .column_by_name(col::SAMPLE_SIZE)
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(sizes.values().to_vec(), [40]);
    assert_eq!(out.reasons[0].rule, "sample_size");
}

#[test]
fn a_column_the_table_lacks_is_an_error_listing_the_columns() {
    let chunk = survey(&[["0114", "2024", "Flicka", "åk 8", "Ja", "1"]]);
    let mut mapping = survey_mapping();
    mapping.area_column = "Region".into();
    let err = harmonise(&chunk, &mapping, &context(&BTreeSet::new())).unwrap_err();
    insta::assert_snapshot!(err, @"[map] area names column `Region`, which the table does not have; it has: `kommun`, `ar`, `kon`, `arskurs`, `svar`, `andel`");
}

#[test]
fn duplicate_keys_refuse_every_row_of_the_key_and_the_rest_sort() {
    let chunk = survey(&[
        ["1280", "2024", "Flicka", "åk 8", "Ja", "1"],
        ["0114", "2024", "Flicka", "åk 8", "Ja", "2"],
        ["0114", "2024", "Flicka", "åk 8", "Ja", "3"],
        ["0114", "2023", "Flicka", "åk 8", "Ja", "4"],
    ]);
    let out = harmonise(&chunk, &survey_mapping(), &context(&BTreeSet::new())).unwrap();
    assert_eq!(texts(&out.observations, col::AREA_CODE), ["0114", "1280"]);
    assert_eq!(texts(&out.observations, col::PERIOD), ["2023", "2024"]);
    let values = out
        .observations
        .column_by_name(col::VALUE)
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(values.values().to_vec(), [4.0, 1.0]);
    let refused: Vec<u64> = out.reasons.iter().map(|r| r.row).collect();
    assert_eq!(refused, [3, 4]);
    insta::assert_snapshot!(out.reasons[0].message, @"rows 3, 4 have the same key (indicator_id=lupp_trygg, area_code=0114, period=2024, sex=F, age=total, grade=ak8, breakdown=svar=Ja, reference=); keep one per key, e.g. map the dimension that tells them apart to a breakdown");
    let dictionary = out
        .observations
        .column_by_name(col::STATUS)
        .unwrap()
        .as_dictionary::<Int32Type>();
    assert_eq!(dictionary.values().len(), Status::ALL.len());
}
