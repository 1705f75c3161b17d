//! Decoder-level tests: small PX texts made here, and a round trip through `write.rs`.

use arrow_array::Float64Array;
use proptest::prelude::*;

use super::write::{WriteOptions, write};
use super::*;
use crate::formats::table::{CellStatus, Dimension};

fn decode_with(bytes: &[u8], lang: Option<&str>) -> Result<SourceTable, PxError> {
    let options = PxOptions {
        lang: lang.map(str::to_string),
    };
    decode(bytes, "t.px", &options, &DecodeLimits::default())
}

fn decoded(text: &str) -> SourceTable {
    decode_with(text.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    decode_with(text.as_bytes(), None).unwrap_err().to_string()
}

fn cube(table: &SourceTable) -> &Cube {
    table.cube().expect("a cube")
}

fn values(table: &SourceTable) -> Vec<Option<f64>> {
    cube(table).values.iter().collect()
}

/// Each cell's marker name.
fn markers(cube: &Cube) -> Vec<Option<String>> {
    let mut out = vec![None; cube.values.len()];
    if let CellStatus::Sparse { markers, cells } = &cube.status {
        for &(cell, m) in cells {
            out[cell as usize] = Some(markers[m as usize].clone());
        }
    }
    out
}

fn codes(table: &SourceTable, d: usize) -> Vec<String> {
    cube(table).dimensions[d].codes.clone()
}

/// A two-by-two table around `data`, with `extra` keywords before DATA.
fn table(extra: &str, data: &str) -> String {
    format!(
        "CHARSET=\"ANSI\";\nDECIMALS=1;\nTITLE=\"Folkmängd\";\nSTUB=\"region\";\nHEADING=\"år\";\n\
         VALUES(\"region\")=\"Riket\",\"Stockholm\";\nCODES(\"region\")=\"00\",\"01\";\n\
         VALUES(\"år\")=\"2022\",\"2023\";\nTIMEVAL(\"år\")=TLIST(A1),\"2022\",\"2023\";\n\
         {extra}DATA=\n{data}"
    )
}

#[test]
fn a_dense_table_reads_its_cells_in_stub_then_heading_order() {
    // Notes of any kind are read past, not used.
    let t = decoded(&table(
        "LAST-UPDATED=\"20240212 08:00\";\nVARIABLECODE(\"år\")=\"Tid\";\n\
         CELLNOTE(\"*\", \"2023\")=\"x\";\nDATANOTECELL(\"00\",\"*\")=\"Ae\";\n",
        "1.5 2\n3 4;",
    ));
    assert_eq!(values(&t), [Some(1.5), Some(2.0), Some(3.0), Some(4.0)]);
    let dims = &cube(&t).dimensions;
    assert_eq!(dims[0].id, "region");
    assert_eq!(dims[0].codes, ["00", "01"]);
    assert_eq!(dims[0].labels, ["Riket", "Stockholm"]);
    assert_eq!(
        (dims[1].id.as_str(), dims[1].label.as_deref()),
        ("Tid", Some("år"))
    );
    assert_eq!(dims[1].codes, ["2022", "2023"]);
    assert_eq!(t.meta.label.as_deref(), Some("Folkmängd"));
    assert_eq!(t.meta.updated.as_deref(), Some("20240212 08:00"));
    assert_eq!(t.meta.encoding.as_deref(), Some("utf-8"));
    assert_eq!(cube(&t).status, CellStatus::None);
}

#[test]
fn delimiters_may_be_mixed_and_the_end_glued_to_the_last_number() {
    let t = decoded(&table("", "1,2;\t3\r\n 4;\n\n"));
    assert_eq!(values(&t), [Some(1.0), Some(2.0), Some(3.0), Some(4.0)]);
    let t = decoded(&table("", "-1 2e3 .5 -0.25;"));
    assert_eq!(
        values(&t),
        [Some(-1.0), Some(2000.0), Some(0.5), Some(-0.25)]
    );
}

#[test]
fn a_dos_file_with_crlf_a_spaced_data_keyword_and_ctrl_z_reads() {
    let text = table("", "1 2 3 4;")
        .replace('\n', "\r\n")
        .replace("DATA=", "DATA =")
        + "\u{1a}";
    assert_eq!(
        values(&decoded(&text)),
        [Some(1.0), Some(2.0), Some(3.0), Some(4.0)]
    );
}

#[test]
fn quoted_and_bare_markers_become_the_files_symbols() {
    let t = decoded(&table(
        "DATASYMBOL1=\"one\";\nDATASYMBOLNIL=\"nothing\";\n",
        "\"..\" .. \"-\" \"......\";",
    ));
    assert_eq!(values(&t), [None, None, None, None]);
    assert_eq!(
        markers(cube(&t)),
        ["DATASYMBOL2", "DATASYMBOL2", "DATASYMBOLNIL", "DATASYMBOL6"].map(|m| Some(m.to_string()))
    );
}

#[test]
fn a_quoted_marker_the_file_does_not_define_is_kept_as_written() {
    let t = decoded(&table("", "\"e\" 2 \"\" \"e\";"));
    assert_eq!(values(&t), [None, Some(2.0), None, None]);
    assert_eq!(
        markers(cube(&t)),
        [Some("e".into()), None, None, Some("e".into())]
    );
}

#[test]
fn sum_and_nil_may_redefine_dots() {
    // Statistics Norway style: `..` is DATASYMBOL1's text, `.` is the sum symbol.
    let t = decoded(&table(
        "DATASYMBOL1=\"..\";\nDATASYMBOLSUM=\".\";\nDATASYMBOLNIL=\"-\";\n",
        "\".\" \"..\" \"-\" 7;",
    ));
    assert_eq!(
        markers(cube(&t)),
        [
            Some("DATASYMBOLSUM"),
            Some("DATASYMBOL2"),
            Some("DATASYMBOLNIL"),
            None
        ]
        .map(|m| m.map(str::to_string))
    );
    let t = decoded(&table("DATASYMBOLNIL=\"0\";\n", "\"0\" 0 \".\" 1;"));
    assert_eq!(markers(cube(&t))[0].as_deref(), Some("DATASYMBOLNIL"));
    assert_eq!(values(&t)[1], Some(0.0));
}

#[test]
fn keys_mode_expands_left_out_rows_as_zeros() {
    let text = "STUB=\"kön\",\"ålder\";\nHEADING=\"år\";\n\
        VALUES(\"kön\")=\"män\",\"kvinnor\";\nVALUES(\"ålder\")=\"0-4\",\"5-9\";\n\
        CODES(\"ålder\")=\"-4\",\"5-9\";\nVALUES(\"år\")=\"2022\",\"2023\";\n\
        KEYS(\"kön\")=VALUES;\nKEYS(\"ålder\")=CODES;\n\
        DATA=\n\"kvinnor\",\"-4\",1 \"..\"\n\"män\",\"5-9\",3 4;";
    let t = decoded(text);
    assert_eq!(
        values(&t),
        [
            Some(0.0),
            Some(0.0),
            Some(3.0),
            Some(4.0),
            Some(1.0),
            None,
            Some(0.0),
            Some(0.0)
        ]
    );
    assert_eq!(markers(cube(&t))[5].as_deref(), Some("DATASYMBOL2"));
    assert_eq!(codes(&t, 1), ["-4", "5-9"]);
    let unknown = text.replace("\"-4\",1", "\"0-4\",1");
    insta::assert_snapshot!(error(&unknown), @"t.px: line 10, `DATA`: key `0-4` is not one of `ålder`'s values or codes (as its `KEYS` says); fix the row or the KEYS keyword");
    let repeated = text.replace("\"män\",\"5-9\"", "\"kvinnor\",\"-4\"");
    insta::assert_snapshot!(error(&repeated), @"t.px: line 11, `DATA`: this KEYS row has the keys of an earlier row; remove one of them");
    let short = text.replace("3 4;", "3;");
    insta::assert_snapshot!(error(&short), @"t.px: line 11, `DATA`: the KEYS row ends before its keys and 2 cells; the file is truncated: export it again");
}

/// A file in English with a Swedish translation whose sub-keys are translated too.
const BILINGUAL: &str = "LANGUAGE=\"en\";\nLANGUAGES=\"en\",\"sv\";\nTITLE=\"Population\";\n\
    STUB=\"age\";\nHEADING=\"year\";\nVALUES(\"age\")=\"young\",\"old\";\nCODES(\"age\")=\"Y\",\"O\";\n\
    VARIABLECODE(\"year\")=\"Tid\";\nVALUES(\"year\")=\"2023\";\nTIMEVAL(\"year\")=TLIST(A1),\"2023\";\n\
    TITLE[sv]=\"Folkmängd\";\nSTUB[sv]=\"ålder\";\nHEADING[sv]=\"år\";\n\
    VALUES[sv](\"ålder\")=\"unga\",\"gamla\";\nCODES[sv](\"ålder\")=\"Y\",\"O\";\n\
    VALUES[sv](\"år\")=\"2023\";\nVARIABLECODE[sv](\"år\")=\"Tid\";\nDATA=\n1 2;";

#[test]
fn swedish_is_read_when_the_file_has_it_matching_variables_by_position() {
    let t = decoded(BILINGUAL);
    let dims = &cube(&t).dimensions;
    assert_eq!(
        (dims[0].id.as_str(), dims[0].labels.as_slice()),
        ("ålder", &["unga".to_string(), "gamla".to_string()][..])
    );
    assert_eq!(dims[0].codes, ["Y", "O"]);
    // `år` has no TIMEVAL[sv]: the main language's TIMEVAL("year") applies, by position.
    assert_eq!(
        (dims[1].id.as_str(), dims[1].label.as_deref()),
        ("Tid", Some("år"))
    );
    assert_eq!(t.meta.label.as_deref(), Some("Folkmängd"));
    assert_eq!(values(&t), [Some(1.0), Some(2.0)]);
}

#[test]
fn the_lang_option_picks_a_language_the_file_has() {
    let t = decode_with(BILINGUAL.as_bytes(), Some("en")).unwrap();
    let dims = &cube(&t).dimensions;
    assert_eq!(
        (dims[0].id.as_str(), dims[0].labels[0].as_str()),
        ("age", "young")
    );
    assert_eq!(t.meta.label.as_deref(), Some("Population"));
    let err = decode_with(BILINGUAL.as_bytes(), Some("fi")).unwrap_err();
    insta::assert_snapshot!(err, @"t.px: line 2, `LANGUAGES`: the file has no language `fi` (it has en, sv); set `lang` in [source] to one of those or remove it");
}

#[test]
fn a_translation_with_another_number_of_values_is_refused() {
    let text = BILINGUAL.replace("\"unga\",\"gamla\"", "\"unga\"");
    insta::assert_snapshot!(error(&text), @r#"t.px: line 14, `VALUES[sv]` lists 1 values but `VALUES("age")` has 2; they must match one to one: fix the file or export the table again"#);
    let text = BILINGUAL.replace("STUB[sv]=\"ålder\"", "STUB[sv]=\"ålder\",\"kön\"");
    insta::assert_snapshot!(error(&text), @"t.px: line 12, `STUB[sv]` lists 2 values but `STUB` has 1; they must match one to one: fix the file or export the table again");
}

#[test]
fn without_language_the_first_of_languages_is_the_main_one() {
    let text = BILINGUAL.replace("LANGUAGE=\"en\";\n", "");
    let t = decode_with(text.as_bytes(), Some("en")).unwrap();
    assert_eq!(cube(&t).dimensions[0].id, "age");
    assert_eq!(cube(&decoded(&text)).dimensions[0].id, "ålder");
}

#[test]
fn a_file_in_english_only_is_read_in_english() {
    let t = decoded(&BILINGUAL.replace("LANGUAGES=\"en\",\"sv\";\n", ""));
    assert_eq!(cube(&t).dimensions[0].id, "age");
}

#[test]
fn a_latin1_file_declaring_its_codepage_is_decoded_with_it() {
    let mut bytes = b"CODEPAGE=\"iso-8859-1\";\n".to_vec();
    bytes.extend(
        table("", "1 2 3 4;")
            .replace("CHARSET=\"ANSI\";\n", "")
            .chars()
            .map(|c| c as u32 as u8),
    );
    let t = decode_with(&bytes, None).unwrap();
    assert_eq!(t.meta.encoding.as_deref(), Some("iso-8859-1 (declared)"));
    assert_eq!(cube(&t).dimensions[1].id, "år");
}

#[test]
fn an_ansi_file_without_codepage_is_windows_1252() {
    let text = table("NOTE=\"a\u{2026}\";\n", "1 2 3 4;");
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let t = decode_with(&bytes, None).unwrap();
    assert_eq!(
        t.meta.encoding.as_deref(),
        Some("windows-1252 (CHARSET=ANSI)")
    );
    assert_eq!(t.meta.label.as_deref(), Some("Folkmängd"));
}

#[test]
fn utf8_bytes_under_a_wrong_declared_codepage_are_read_as_utf8() {
    let t = decoded(&format!(
        "CODEPAGE=\"iso-8859-1\";\n{}",
        table("", "1 2 3 4;")
    ));
    assert_eq!(
        t.meta.encoding.as_deref(),
        Some("utf-8 (not the declared iso-8859-1)")
    );
    assert_eq!(cube(&t).dimensions[1].id, "år");
}

#[test]
fn time_lists_of_every_unit_are_read_as_written() {
    for (unit, periods) in [
        ("Q1", ["20061", "20062"]),
        ("M1", ["2025M11", "2025M12"]),
        ("K", ["2015K1", "2015K2"]),
        ("H1", ["19951", "19952"]),
        ("W1", ["2024W01", "2024W02"]),
    ] {
        let text = table("", "1 2 3 4;")
            .replace(
                "\"2022\",\"2023\"",
                &format!("\"{}\",\"{}\"", periods[0], periods[1]),
            )
            .replace("TLIST(A1)", &format!("TLIST({unit})"));
        assert_eq!(codes(&decoded(&text), 1), periods, "{unit}");
    }
    let range =
        table("", "1 2 3 4;").replace("TLIST(A1),\"2022\",\"2023\"", "TLIST(A1, \"2022-2023\")");
    assert_eq!(codes(&decoded(&range), 1), ["2022", "2023"]);
}

#[test]
fn a_preliminary_period_is_its_code_with_its_cells_marked() {
    let text = table("", "1 2 \"..\" 4;").replace(
        "VALUES(\"år\")=\"2022\",\"2023\"",
        "VALUES(\"år\")=\"2022\",\"2023*\"",
    );
    let t = decoded(&text);
    assert_eq!(codes(&t, 1), ["2022", "2023"]);
    assert_eq!(cube(&t).dimensions[1].labels, ["2022", "2023*"]);
    assert_eq!(values(&t), [Some(1.0), Some(2.0), None, Some(4.0)]);
    assert_eq!(
        markers(cube(&t)),
        [
            None,
            Some("PRELIMINARY"),
            Some("DATASYMBOL2"),
            Some("PRELIMINARY")
        ]
        .map(|m| m.map(str::to_string))
    );
    // Outside a time variable a `*` is just text.
    let t = decoded(&table("", "1 2 3 4;").replace("\"Stockholm\"", "\"Stockholm*\""));
    assert_eq!(cube(&t).status, CellStatus::None);
}

#[test]
fn a_table_declaring_more_cells_than_allowed_is_refused_before_reading_data() {
    let limits = DecodeLimits { max_table_cells: 3 };
    let err = decode(
        table("", "1 2 3 4;").as_bytes(),
        "t.px",
        &PxOptions::default(),
        &limits,
    )
    .unwrap_err();
    insta::assert_snapshot!(err, @"t.px: line 6, `VALUES`: the variables give 4 cells, more than max_table_cells = 3 allows; if the table really is that big, raise `max_table_cells` in [source]");
    // 40 variables of 1000 values each declare 10^120 cells in a few hundred kilobytes.
    let values: Vec<String> = (0..1000).map(|i| format!("\"{i}\"")).collect();
    let mut text = String::from("HEADING=");
    text += &(0..40)
        .map(|v| format!("\"v{v}\""))
        .collect::<Vec<_>>()
        .join(",");
    text += ";\n";
    for v in 0..40 {
        text += &format!("VALUES(\"v{v}\")={};\n", values.join(","));
    }
    text += "DATA=\n1;";
    let err = decode_with(text.as_bytes(), None).unwrap_err();
    assert!(
        matches!(err, PxError::TooManyCells { cells: None, .. }),
        "{err}"
    );
}

#[test]
fn damaged_files_name_the_keyword_and_line() {
    insta::assert_snapshot!(error(&table("", "1 2 3;")), @"t.px: line 11, `DATA`: 3 cells where the VALUES give 4 (sizes [2, 2]); the file is truncated or its VALUES are wrong: export the table again");
    insta::assert_snapshot!(error(&table("", "1 2 3 4\n5;")), @"t.px: line 12, `DATA`: 5 cells where the VALUES give 4 (sizes [2, 2]); the file is truncated or its VALUES are wrong: export the table again");
    insta::assert_snapshot!(error(&table("", "1 2 x 4;")), @"t.px: line 11, `DATA`: `x` is neither a number nor a symbol of the file (1 to 6 dots, `-`, its DATASYMBOLNIL or DATASYMBOLSUM); fix the cell, or quote it if it is a marker of the producer's own");
    // PxWeb's own example files may end DATA without `;`: the count still checks it.
    assert_eq!(values(&decoded(&table("", "1 2 3 4\n"))).len(), 4);
    insta::assert_snapshot!(error(&table("", "1 2 3\n")), @"t.px: line 11, `DATA`: 3 cells where the VALUES give 4 (sizes [2, 2]); the file is truncated or its VALUES are wrong: export the table again");
    insta::assert_snapshot!(error(&table("", "1 2 3 4;").replace("\"2022\",\"2023\";\nDATA", "\"2022\";\nDATA")), @r#"t.px: line 9, `TIMEVAL` lists 1 values but `VALUES("år")` has 2; they must match one to one: fix the file or export the table again"#);
    insta::assert_snapshot!(error(&table("", "1 2 3 4;").replace("DECIMALS=1", "DECIMALS=16")), @"t.px: line 2, `DECIMALS` is `16` but must be an integer from 0 to 15; fix that line or export the table again");
    insta::assert_snapshot!(error(&table("", "1 2 3 4;").replace("CODES(\"region\")=\"00\",\"01\"", "CODES(\"region\")=\"00\"")), @r#"t.px: line 7, `CODES` lists 1 values but `VALUES("region")` has 2; they must match one to one: fix the file or export the table again"#);
    insta::assert_snapshot!(error(&table("", "1 2 3 4;").replace("VALUES(\"år\")", "VALUES(\"ar\")")), @r#"t.px: no `VALUES("år")` before `DATA=` (line 10); the file needs it: add it or export the table again"#);
    insta::assert_snapshot!(error(&table("", "1 2 3 4;").replace("\"01\"", "\"00\"")), @"t.px: line 7, `CODES`: `00` appears twice; each variable and each of its values needs a code of its own: fix the file or export the table again");
    insta::assert_snapshot!(error(&table("", "1 2 3 4;").replace("\"2022\",\"2023\";\nTIMEVAL", "\"2023\",\"2023*\";\nTIMEVAL")), @"t.px: line 8, `VALUES`: `2023` appears twice; each variable and each of its values needs a code of its own: fix the file or export the table again");
    insta::assert_snapshot!(error(&table("VARIABLECODE(\"år\")=\"region\";\n", "1 2 3 4;")), @"t.px: line 10, `VARIABLECODE`: `region` appears twice; each variable and each of its values needs a code of its own: fix the file or export the table again");
}

/// A cube of 1 to 3 dimensions of 1 to 3 categories whose cells are numbers (many zeros, so
/// KEYS mode leaves rows out) or markers, laid out with a random STUB/HEADING split.
fn cubes() -> impl Strategy<Value = (Cube, WriteOptions)> {
    let dims = proptest::collection::vec(
        (
            "[A-Za-z0-9åÄ]{0,3}",
            proptest::collection::vec("[a-zåäö0-9 ,]{1,6}", 1..4),
        ),
        1..4,
    );
    (
        dims,
        any::<bool>(),
        any::<bool>(),
        any::<prop::sample::Index>(),
    )
        .prop_flat_map(|(dims, keys, languages, split)| {
            let n: usize = dims.iter().map(|(_, labels)| labels.len()).product();
            let cell = prop_oneof![
                3 => Just(Ok(0.0)),
                3 => (-1.0e9..1.0e9f64).prop_map(Ok),
                2 => (0usize..8).prop_map(Err),
            ];
            (
                Just((dims, keys, languages, split)),
                proptest::collection::vec(cell, n),
            )
        })
        .prop_map(|((dims, keys, languages, split), cells)| {
            let dimensions: Vec<Dimension> = dims
                .into_iter()
                .enumerate()
                .map(|(d, (prefix, labels))| Dimension {
                    id: format!("D{d}"),
                    label: Some(format!("variabel {d}")),
                    codes: (0..labels.len()).map(|i| format!("{prefix}{i}")).collect(),
                    labels,
                })
                .collect();
            // The written symbols' names, in the order the decoder keeps them.
            let names = &super::symbols::NAMES;
            let mut used: Vec<usize> = cells.iter().filter_map(|c| c.err()).collect();
            used.sort_unstable();
            used.dedup();
            let status = if used.is_empty() {
                CellStatus::None
            } else {
                CellStatus::Sparse {
                    markers: used.iter().map(|&m| names[m].to_string()).collect(),
                    cells: cells
                        .iter()
                        .enumerate()
                        .filter_map(|(i, c)| {
                            Some((i as u64, used.binary_search(&c.err()?).ok()? as u32))
                        })
                        .collect(),
                }
            };
            let values: Float64Array = cells.iter().map(|c| c.ok()).collect();
            let stub = if keys {
                1 + split.index(dimensions.len())
            } else {
                split.index(dimensions.len() + 1)
            };
            (
                Cube {
                    dimensions,
                    values,
                    status,
                },
                WriteOptions {
                    stub,
                    keys,
                    languages,
                },
            )
        })
}

proptest! {
    #[test]
    fn any_cube_written_as_px_reads_back((cube, options) in cubes()) {
        let text = write(&cube, options);
        let table = decoded(&text);
        let back = table.cube().expect("a cube");
        prop_assert_eq!(&back.dimensions, &cube.dimensions, "{}", text);
        prop_assert_eq!(back.values.iter().collect::<Vec<_>>(), cube.values.iter().collect::<Vec<_>>(), "{}", text);
        prop_assert_eq!(markers(back), markers(&cube), "{}", text);
    }
}
