//! The warehouse read back by the readers analysts use: pyarrow, DuckDB and Polars, with Hive
//! partitioning. Schema, row counts, values and the uniqueness of the key.

use crate::util::{Project, python, run_python, text};

const READ: &str = r#"
import json, sys
import duckdb, polars as pl, pyarrow.dataset as ds, pyarrow.parquet as pq

root = sys.argv[1]
obs = root + "/observations"
out = {}

table = ds.dataset(obs, format="parquet", partitioning="hive").to_table()
out["pyarrow_rows"] = table.num_rows
out["pyarrow_schema"] = {f.name: str(f.type) for f in table.schema}

con = duckdb.connect()
con.execute(f"CREATE VIEW o AS SELECT * FROM read_parquet('{obs}/**/*.parquet', hive_partitioning = true)")
out["duckdb_rows"] = con.execute("SELECT count(*) FROM o").fetchone()[0]
out["duckdb_by_pipeline"] = dict(con.execute("SELECT pipeline, count(*) FROM o GROUP BY 1").fetchall())
out["duplicate_keys"] = con.execute(
    "SELECT count(*) FROM (SELECT pipeline, indicator_id, area_code, period, sex, age, grade, breakdown, reference, "
    "count(*) AS n FROM o GROUP BY ALL HAVING n > 1)").fetchone()[0]
out["year_is_period_start"] = con.execute("SELECT count(*) FROM o WHERE year <> year(period_start)").fetchone()[0]
out["riket_total_0_5_2020"] = con.execute(
    "SELECT value FROM o WHERE pipeline = 'scb-folkmangd-barn' AND area_code = '00' AND sex = 'T' "
    "AND age = '0-5' AND period = '2020'").fetchone()[0]
out["statuses"] = dict(con.execute("SELECT status, count(*) FROM o GROUP BY 1").fetchall())
out["zero_from_dash"] = con.execute(
    "SELECT count(*) FROM o WHERE pipeline = 'scb-folkmangd-barn' AND value = 0 AND status = 'ok'").fetchone()[0]
out["kiruna_levels"] = con.execute("SELECT DISTINCT area_level FROM o WHERE area_code = '2584'").fetchall()
out["school_year"] = con.execute(
    "SELECT period, period_start::VARCHAR, period_end::VARCHAR FROM o WHERE pipeline = 'skolverket-behorighet' "
    "ORDER BY period LIMIT 1").fetchone()
out["lupp_grades"] = sorted(r[0] for r in con.execute("SELECT DISTINCT grade FROM o WHERE pipeline = 'lupp-trygghet'").fetchall())
out["lupp_breakdown"] = con.execute(
    "SELECT count(*) FROM o WHERE pipeline = 'lupp-trygghet' AND breakdown = 'svar=Vet inte – har inte provat'").fetchone()[0]
out["ingested_at_tz"] = str(con.execute("SELECT typeof(ingested_at) FROM o LIMIT 1").fetchone()[0])
sorted_ok = con.execute(
    "SELECT count(*) FROM (SELECT [indicator_id, area_code, period, sex, age, grade, breakdown, reference] AS cur, "
    "lag([indicator_id, area_code, period, sex, age, grade, breakdown, reference]) "
    "OVER (PARTITION BY filename ORDER BY file_row_number) AS prev "
    "FROM read_parquet('" + obs + "/**/*.parquet', filename = true, file_row_number = true)) WHERE prev >= cur").fetchone()[0]
out["unsorted_neighbours"] = sorted_ok

lf = pl.scan_parquet(obs + "/**/*.parquet", hive_partitioning=True)
df = lf.collect()
out["polars_rows"] = df.height
out["polars_dtypes"] = {name: str(dtype) for name, dtype in df.schema.items()}
out["polars_sum_scb"] = df.filter(pl.col("pipeline") == "scb-folkmangd-barn")["value"].sum()

cov = con.execute(f"SELECT * FROM read_parquet('{root}/catalog/coverage.parquet')").fetchall()
out["coverage_rows"] = len(cov)
out["indicators"] = con.execute(f"SELECT count(*) FROM read_parquet('{root}/catalog/indicators.parquet')").fetchone()[0]
out["indicator_columns"] = [[f.name, str(f.type)] for f in pq.read_schema(root + "/catalog/indicators.parquet")]
out["retired_indicators"] = con.execute(
    f"SELECT count(*) FROM read_parquet('{root}/catalog/indicators.parquet') WHERE retired AND successor IS NOT NULL").fetchone()[0]
out["areas"] = con.execute(f"SELECT count(*) FROM read_parquet('{root}/catalog/areas.parquet')").fetchone()[0]
print(json.dumps(out, default=str))
"#;

/// The sample SCB cell (Riket, 0-5, totalt, 2020) and the sum of all its values, from the file.
fn scb_expectations() -> (f64, f64) {
    let path = crate::util::repo().join("pipelines/samples/data/scb_folkmangd_barn.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let values = json["value"].as_array().unwrap();
    let sum = values.iter().filter_map(|v| v.as_f64()).sum();
    // Region 00 (index 0), Alder 0-5 (0), Kon 1+2 (2), ContentsCode (0), Tid 2020 (0):
    // strides are 4*3*1*5, 3*1*5, 1*5, 5, 1.
    let cell = 2 * 5;
    (values[cell].as_f64().unwrap(), sum)
}

#[test]
fn pyarrow_duckdb_and_polars_read_the_same_warehouse() {
    let Some(python) = python() else { return };
    let project = Project::with_samples();
    let output = project.run(&[
        "run",
        "pipelines/samples/scb-folkmangd-barn.toml",
        "pipelines/samples/lupp-trygghet.toml",
        "pipelines/samples/skolverket-behorighet.toml",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let json = run_python(&python, READ, &[&project.warehouse()]);
    let got: serde_json::Value = serde_json::from_str(&json).unwrap();

    let scb_rows = 13 * 4 * 3 * 5;
    assert_eq!(got["duckdb_by_pipeline"]["scb-folkmangd-barn"], scb_rows);
    let rows = got["duckdb_rows"].as_u64().unwrap();
    assert_eq!(got["pyarrow_rows"], rows);
    assert_eq!(got["polars_rows"], rows);
    assert_eq!(got["duplicate_keys"], 0);
    assert_eq!(got["year_is_period_start"], 0);
    assert_eq!(got["unsorted_neighbours"], 0);

    let (riket, sum) = scb_expectations();
    assert_eq!(got["riket_total_0_5_2020"].as_f64(), Some(riket));
    assert_eq!(got["polars_sum_scb"].as_f64(), Some(sum));
    assert_eq!(got["statuses"]["missing"], 3, "{got}");
    assert_eq!(got["zero_from_dash"], 1);
    assert_eq!(got["kiruna_levels"], serde_json::json!([["municipality"]]));
    assert_eq!(
        got["school_year"],
        serde_json::json!(["2021/22", "2021-07-01", "2022-06-30"])
    );
    assert_eq!(got["lupp_grades"], serde_json::json!(["ak8", "gy2"]));
    assert!(got["lupp_breakdown"].as_u64().unwrap() > 0);

    let schema = &got["pyarrow_schema"];
    assert_eq!(
        schema["indicator_id"],
        "dictionary<values=string, indices=int32, ordered=0>"
    );
    assert_eq!(schema["area_code"], "string");
    assert_eq!(schema["period_start"], "date32[day]");
    assert_eq!(schema["value"], "double");
    assert_eq!(schema["sample_size"], "int64");
    assert_eq!(schema["ingested_at"], "timestamp[us, tz=UTC]");
    assert_eq!(got["polars_dtypes"]["status"], "Categorical");
    assert_eq!(got["ingested_at_tz"], "TIMESTAMP WITH TIME ZONE");

    let catalogued = std::fs::read_to_string(crate::util::repo().join("schemas/indicators.toml"))
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("[indicator."))
        .count();
    assert_eq!(got["indicators"], catalogued);
    assert_eq!(got["areas"], 313);
    // The catalogue's columns as analysts read them, scope/successor/retired last.
    assert_eq!(
        got["indicator_columns"],
        serde_json::json!([
            ["indicator_id", "string"],
            ["title_sv", "string"],
            ["title_en", "string"],
            ["description", "string"],
            ["unit", "string"],
            ["theme", "string"],
            ["polarity", "string"],
            ["source", "string"],
            ["source_table", "string"],
            ["license", "string"],
            ["scope", "string"],
            ["successor", "string"],
            ["retired", "bool"],
        ])
    );
    // N02904, retired in favour of N66077.
    assert!(got["retired_indicators"].as_u64().unwrap() >= 1, "{got}");
    assert!(got["coverage_rows"].as_u64().unwrap() >= 3);
}
