//! The cube path: a dense cube (JSON-stat, PX) harmonised a partition at a time straight from
//! its dimensions, never laying its cells out as rows in source order.
//!
//! Owns: knowing when the cube path gives exactly what the row path ([`super::harmonise`]) would,
//! and building one partition's model columns in key order from each dimension's mapped
//! categories.
//! Must not: refuse rows or explain anything. Whenever a category, a marker or a key would need a
//! reason, [`CubeHarmoniser::new`] or [`CubeHarmoniser::partition`] says `None` and the caller
//! takes the row path, which explains.
//!
//! Why it is exact: when every key column is fixed or fed by a dimension of its own, every
//! category maps to a model value of its own and every other dimension has one category, a cell's
//! key is a one-to-one function of its coordinates. Ordering cells by key is then a nested walk
//! over the dimensions in key order, each taking its categories in the order of their model
//! values, and a key column is a run pattern: each position of its walk repeated for the cells
//! inside it, the whole repeated for the walks outside it.

use arrow_array::{Array, Float64Array, StringArray};
use arrow_buffer::{NullBuffer, ScalarBuffer};

use super::rules::{Feed, KeyField, Lookup, Rules};
use super::values::{self, Extra};
use super::{
    AreaColumns, Built, Context, Harmonised, Mapping, Marker, assemble, dictionary, uncatalogued,
};
use crate::formats::table::{CellStatus, Cube, VALUE};
use crate::model::{AreaLevel, Status};

/// A cube that the cube path can harmonise, with everything about it that does not depend on the
/// partition worked out once.
pub struct CubeHarmoniser<'a> {
    cube: &'a Cube,
    mapping: &'a Mapping,
    cx: &'a Context<'a>,
    /// Each key field in key order (`KeyField::index`): fixed, or fed by a dimension (the period's walk is `None`
    /// here: it is built per partition).
    fields: Vec<(KeyField, Fed)>,
    period_dimension: usize,
    /// The area level of each area value, in the area walk's order.
    area_levels: Vec<AreaLevel>,
    /// The meaning of each marker of the cube's status (the order of its markers).
    markers: Vec<Marker>,
    /// The cells that carry a marker, grouped by their period category: (cell, marker).
    marked_by_period: Vec<Vec<(u64, u32)>>,
}

/// How one key field is filled.
enum Fed {
    Fixed(String),
    /// By dimension `dimension`; `walk` is `None` for the period until a partition picks it.
    Dimension {
        dimension: usize,
        walk: Option<Walk>,
    },
}

/// A dimension's categories in the order of their model values.
struct Walk {
    /// Category index (coordinate) at each step.
    categories: Vec<usize>,
    /// Model value at each step: the dictionary, so a row's key is its step.
    values: Vec<String>,
}

impl Walk {
    /// The walk over `coordinates` (categories of one dimension, mapped one-to-one by `lookup`).
    fn new(coordinates: &[usize], lookup: Lookup) -> Self {
        let mut steps: Vec<(usize, String)> = coordinates
            .iter()
            .zip(&lookup.of_category)
            .map(|(&c, &v)| (c, lookup.values[v as usize].clone()))
            .collect();
        steps.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        let (categories, values) = steps.into_iter().unzip();
        Self { categories, values }
    }
}

impl<'a> CubeHarmoniser<'a> {
    /// `None` when the cube path cannot give exactly the row path's result: a key field without a
    /// dimension, a category that does not map or shares its value, a dimension that feeds no key
    /// column, an unknown marker, or a mapping the cube path does not cover (extra numeric
    /// columns, breakdowns of several columns).
    pub fn new(cube: &'a Cube, mapping: &'a Mapping, cx: &'a Context<'a>) -> Option<Self> {
        if mapping.value != VALUE || Extra::ALL.iter().any(|e| e.column(mapping).is_some()) {
            return None;
        }
        let mut rules = Rules::new(mapping, cx).ok()?;
        let mut fields = Vec::with_capacity(KeyField::ALL.len());
        let mut fed = vec![false; cube.dimensions.len()];
        let mut period_dimension = None;
        for field in KeyField::ALL {
            let column = match rules.feed(field) {
                Feed::Fixed(value) => {
                    fields.push((field, Fed::Fixed(value.to_string())));
                    continue;
                }
                Feed::Column(column) => column,
                Feed::Columns(_) => return None,
            };
            let dimension = cube.dimensions.iter().position(|d| d.id == column)?;
            if std::mem::replace(&mut fed[dimension], true) {
                return None;
            }
            let walk = if field == KeyField::Period {
                period_dimension = Some(dimension);
                None
            } else {
                let codes = &cube.dimensions[dimension].codes;
                let lookup = rules.map(field, column, &StringArray::from_iter_values(codes));
                if !lookup.is_one_to_one() {
                    return None;
                }
                Some(Walk::new(&(0..codes.len()).collect::<Vec<_>>(), lookup))
            };
            fields.push((field, Fed::Dimension { dimension, walk }));
        }
        let unfed_repeat = cube
            .dimensions
            .iter()
            .zip(&fed)
            .any(|(d, &fed)| !fed && d.codes.len() > 1);
        if unfed_repeat {
            return None;
        }
        let period_dimension = period_dimension?;
        let area_levels = match &fields[KeyField::Area.index()].1 {
            Fed::Dimension { walk: Some(w), .. } => {
                w.values.iter().map(|code| rules.level(code)).collect()
            }
            _ => unreachable!("the area is always a column"),
        };
        let (names, marked): (&[String], &[(u64, u32)]) = match &cube.status {
            CellStatus::None => (&[], &[]),
            CellStatus::All(marker) => (std::slice::from_ref(marker), &[]),
            CellStatus::Sparse { markers, cells } => (markers, cells),
        };
        let markers = names
            .iter()
            .map(|name| mapping.markers.get(name).copied())
            .collect::<Option<Vec<_>>>()?;
        let sizes: Vec<usize> = cube.dimensions.iter().map(|d| d.codes.len()).collect();
        let stride: usize = sizes[period_dimension + 1..].iter().product();
        let mut marked_by_period = vec![Vec::new(); sizes[period_dimension]];
        for &(cell, marker) in marked {
            let period = (cell as usize / stride) % sizes[period_dimension];
            marked_by_period[period].push((cell, marker));
        }
        Some(Self {
            cube,
            mapping,
            cx,
            fields,
            period_dimension,
            area_levels,
            markers,
            marked_by_period,
        })
    }

    /// The cells of the period categories `k` with `keep[k]`, harmonised and in key order; `None`
    /// when one of those categories does not map or shares its label with another.
    pub fn partition(&self, keep: &[bool]) -> Option<Harmonised> {
        let dimension = &self.cube.dimensions[self.period_dimension];
        let kept: Vec<usize> = (0..dimension.codes.len()).filter(|&k| keep[k]).collect();
        let mut rules = Rules::new(self.mapping, self.cx).ok()?;
        let codes = StringArray::from_iter_values(kept.iter().map(|&k| &dimension.codes[k]));
        let lookup = rules.map(KeyField::Period, &dimension.id, &codes);
        if !lookup.is_one_to_one() {
            return None;
        }
        let period_walk = Walk::new(&kept, lookup);
        let spans: Vec<(i32, i32)> = period_walk
            .values
            .iter()
            .map(|label| rules.span(label))
            .collect();

        // The walks from outermost to innermost, each with its dimension, and each field's
        // level among them (`None` for a fixed field).
        let mut walks: Vec<(usize, &Walk)> = Vec::new();
        let levels: Vec<Option<usize>> = self
            .fields
            .iter()
            .map(|(_, fed)| match fed {
                Fed::Fixed(_) => None,
                Fed::Dimension { dimension, walk } => {
                    walks.push((*dimension, walk.as_ref().unwrap_or(&period_walk)));
                    Some(walks.len() - 1)
                }
            })
            .collect();
        let steps: Vec<usize> = walks.iter().map(|(_, w)| w.categories.len()).collect();
        let rows: usize = steps.iter().product();
        // Each field's keys, built once and shared by the columns that derive from them.
        let keys: Vec<ScalarBuffer<i32>> = levels
            .iter()
            .map(|level| match level {
                Some(level) => run_pattern(&steps, *level).into(),
                None => vec![0; rows].into(),
            })
            .collect();
        let key = std::array::from_fn(|f| match (&self.fields[f].1, levels[f]) {
            (Fed::Fixed(value), _) => dictionary(keys[f].clone(), &[value]),
            (Fed::Dimension { .. }, Some(level)) => {
                dictionary(keys[f].clone(), &walks[level].1.values)
            }
            (Fed::Dimension { .. }, None) => unreachable!("a dimension is walked"),
        });
        let area_keys = keys[KeyField::Area.index()].clone();
        let period_keys = &keys[KeyField::Period.index()];
        let (start, end) = period_keys.iter().map(|&k| spans[k as usize]).unzip();
        let (value, status) = self.measures(&walks, &steps, rows);
        let built = Built {
            key,
            areas: AreaColumns::new(area_keys, &self.area_levels, self.area_codes()),
            start,
            end,
            value,
            status: values::statuses(status),
            sample_size: None,
            numbers: [None, None, None, None],
            members: None,
        };
        let indicators = match &self.fields[KeyField::Indicator.index()].1 {
            Fed::Fixed(id) => std::slice::from_ref(id),
            Fed::Dimension { walk, .. } => &walk.as_ref().expect("not the period").values[..],
        };
        Some(Harmonised {
            observations: assemble(built, self.mapping, self.cx),
            reasons: Vec::new(),
            uncatalogued: uncatalogued(indicators, self.cx),
        })
    }

    /// The model's area codes, in the area walk's order.
    fn area_codes(&self) -> &[String] {
        match &self.fields[KeyField::Area.index()].1 {
            Fed::Dimension { walk: Some(w), .. } => &w.values,
            _ => unreachable!("the area is always a column"),
        }
    }

    /// Each row's value and status (index into [`Status::ALL`]), rows in walk order.
    fn measures(
        &self,
        walks: &[(usize, &Walk)],
        steps: &[usize],
        rows: usize,
    ) -> (Float64Array, Vec<u8>) {
        let sizes: Vec<usize> = self.cube.dimensions.iter().map(|d| d.codes.len()).collect();
        let strides: Vec<usize> = (0..sizes.len())
            .map(|d| sizes[d + 1..].iter().product())
            .collect();
        // Cell index of each row: walk the dimensions outermost first, adding each step's offset.
        let mut cells: Vec<usize> = vec![0];
        for (dimension, walk) in walks {
            let offsets: Vec<usize> = walk
                .categories
                .iter()
                .map(|&c| c * strides[*dimension])
                .collect();
            cells = cells
                .iter()
                .flat_map(|&base| offsets.iter().map(move |&o| base + o))
                .collect();
        }
        debug_assert_eq!(cells.len(), rows);

        // Every cell as if it had no marker: its value, or status missing when it has none.
        let source = &self.cube.values;
        let raw = source.values();
        let mut value: Vec<f64> = cells.iter().map(|&c| raw[c]).collect();
        // Declaration order is the order of `Status::ALL`, which `statuses` indexes.
        let mut status = vec![Status::Ok as u8; rows];
        let mut valid = vec![true; rows];
        if let Some(nulls) = source.nulls() {
            for (row, &cell) in cells.iter().enumerate() {
                if nulls.is_null(cell) {
                    valid[row] = false;
                    status[row] = Status::Missing as u8;
                }
            }
        }

        // Then the marked cells: one marker for all, or the few marked cells of this partition.
        let mut mark = |row: usize, marker: u32| {
            let cell = cells[row];
            let raw = source.is_valid(cell).then(|| raw[cell]);
            let (v, s) = values::cell(raw, Some(&self.markers[marker as usize]));
            value[row] = v.unwrap_or_default();
            valid[row] = v.is_some();
            status[row] = s as u8;
        };
        if let CellStatus::All(_) = self.cube.status {
            (0..rows).for_each(|row| mark(row, 0));
        }
        let inner: Vec<usize> = (0..steps.len())
            .map(|l| steps[l + 1..].iter().product())
            .collect();
        let step_of: Vec<Vec<usize>> = walks
            .iter()
            .map(|(dimension, walk)| {
                let mut step = vec![usize::MAX; sizes[*dimension]];
                for (s, &c) in walk.categories.iter().enumerate() {
                    step[c] = s;
                }
                step
            })
            .collect();
        let (_, period_walk) = walks
            .iter()
            .find(|(d, _)| *d == self.period_dimension)
            .expect("the period is walked");
        for &period in &period_walk.categories {
            for &(cell, marker) in &self.marked_by_period[period] {
                // A cell's row: its step in each walk times the rows inside that walk.
                let row: usize = walks
                    .iter()
                    .zip(&step_of)
                    .zip(&inner)
                    .map(|(((dimension, _), step), inner)| {
                        step[(cell as usize / strides[*dimension]) % sizes[*dimension]] * inner
                    })
                    .sum();
                mark(row, marker);
            }
        }
        let valid = NullBuffer::from(valid);
        (Float64Array::new(value.into(), Some(valid)), status)
    }
}

/// The keys of walk `level` on every row: each step repeated for the rows of the walks inside
/// it, the whole walk repeated for the walks outside it.
fn run_pattern(steps: &[usize], level: usize) -> Vec<i32> {
    let inside: usize = steps[level + 1..].iter().product();
    let outside: usize = steps[..level].iter().product();
    let mut keys = Vec::with_capacity(outside * steps[level] * inside);
    for _ in 0..outside {
        for step in 0..steps[level] {
            keys.extend(std::iter::repeat_n(step as i32, inside));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use arrow_array::RecordBatch;
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    use arrow_schema::DataType;
    use proptest::prelude::*;

    use super::*;
    use crate::formats::merge::Provenance;
    use crate::formats::{Dimension, SourceMeta, SourceTable};
    use crate::harmonise::codes::CodeList;
    use crate::harmonise::mapping::builtin_markers;
    use crate::harmonise::periods::PeriodKind;
    use crate::harmonise::{AreaNaming, Field, harmonise};

    static UNNAMED: Provenance = Provenance::unnamed();

    fn context(catalogued: &BTreeSet<String>) -> Context<'_> {
        Context {
            run_id: "run-1",
            ingested_at: 1_700_000_000_000_000,
            source: "scb",
            source_table: "BE0101N1",
            source_url: "/data/be.json",
            source_updated: Some(1_600_000_000_000_000),
            catalogued,
            areas: None,
            provenance: &UNNAMED,
        }
    }

    /// SCB's population table mapped as the benchmark maps it.
    fn population_mapping() -> Mapping {
        let codes = |pairs: &[(&str, &str)]| {
            Some(CodeList::inline(
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ))
        };
        Mapping {
            indicator: Field::Column {
                column: "ContentsCode".into(),
                codes: None,
            },
            area_column: "Region".into(),
            area_naming: AreaNaming::Code,
            area_codes: None,
            area_networks: false,
            period_column: "Tid".into(),
            period_kind: PeriodKind::Year,
            sex: Field::Column {
                column: "Kon".into(),
                codes: codes(&[("1", "M"), ("2", "F")]),
            },
            age: Field::Column {
                column: "Alder".into(),
                codes: codes(&[("tot", "total")]),
            },
            grade: Field::Fixed(String::new()),
            breakdown: vec![],
            unit: "count".into(),
            value: VALUE.into(),
            sample_size: None,
            numerator: None,
            denominator: None,
            ci_lower: None,
            ci_upper: None,
            members: None,
            markers: builtin_markers(),
            decimal: ',',
        }
    }

    /// A cube of `Region × Alder × Kon × ContentsCode × Tid` over the given categories, values
    /// counting up from 1 with `nulls` cells empty and `marked` cells marked.
    fn population(
        regions: &[&str],
        ages: &[&str],
        sexes: &[&str],
        years: &[&str],
        nulls: &[usize],
        marked: &[(u64, u32)],
    ) -> SourceTable {
        let dimensions = vec![
            Dimension::coded("Region", regions.iter().copied()),
            Dimension::coded("Alder", ages.iter().copied()),
            Dimension::coded("Kon", sexes.iter().copied()),
            Dimension::coded("ContentsCode", ["BE0101N1"]),
            Dimension::coded("Tid", years.iter().copied()),
        ];
        let cells = regions.len() * ages.len() * sexes.len() * years.len();
        let values = (0..cells)
            .map(|c| (!nulls.contains(&c)).then_some(c as f64 + 1.0))
            .collect();
        let status = if marked.is_empty() {
            CellStatus::None
        } else {
            CellStatus::Sparse {
                markers: vec!["..".into(), "-".into(), ".".into()],
                cells: marked.to_vec(),
            }
        };
        let cube = Cube {
            dimensions,
            values,
            status,
        };
        SourceTable::from_cube(cube, SourceMeta::default()).unwrap()
    }

    /// Every column as text, so that two batches compare by what they hold rather than by how
    /// their dictionaries are laid out.
    fn logical(batch: &RecordBatch) -> Vec<(String, Vec<Option<String>>)> {
        batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, column)| {
                // Time zones cannot be printed without chrono-tz: compare the instants.
                let column = match column.data_type() {
                    DataType::Timestamp(..) => arrow_cast::cast(column, &DataType::Int64).unwrap(),
                    _ => column.clone(),
                };
                let format = FormatOptions::default();
                let text = ArrayFormatter::try_new(column.as_ref(), &format).unwrap();
                let values = (0..column.len())
                    .map(|i| column.is_valid(i).then(|| text.value(i).to_string()))
                    .collect();
                (field.name().clone(), values)
            })
            .collect()
    }

    /// Each year of `table` through the cube path and the row path: both must give the same rows
    /// (`None` when the cube path declines).
    fn both_paths(table: &SourceTable, mapping: &Mapping) -> Option<()> {
        let catalogued = BTreeSet::new();
        let cx = context(&catalogued);
        let cube = CubeHarmoniser::new(table.cube().unwrap(), mapping, &cx)?;
        let years = table.categories("Tid").unwrap();
        for year in 0..years.len() {
            let keep: Vec<bool> = (0..years.len()).map(|k| k == year).collect();
            let fast = cube.partition(&keep)?;
            let rows = harmonise(&table.select("Tid", &keep), mapping, &cx).unwrap();
            assert!(rows.reasons.is_empty(), "{:?}", rows.reasons);
            assert_eq!(logical(&fast.observations), logical(&rows.observations));
            assert_eq!(fast.uncatalogued, rows.uncatalogued);
        }
        Some(())
    }

    #[test]
    fn the_cube_path_gives_the_rows_of_the_row_path() {
        let table = population(
            &["1480", "00", "0114", "01"],
            &["tot", "5", "10"],
            &["2", "1"],
            &["2021", "2019", "2020"],
            &[3, 17],
            &[(3, 0), (8, 1), (40, 2), (71, 1)],
        );
        assert_eq!(both_paths(&table, &population_mapping()), Some(()));
    }

    #[test]
    fn a_fixed_field_and_a_dimension_of_one_category_need_no_walk() {
        let table = population(&["00", "01"], &["tot"], &["1", "2"], &["2024"], &[], &[]);
        let mut mapping = population_mapping();
        mapping.indicator = Field::Fixed("folkmangd".into());
        mapping.age = Field::Fixed("0-17".into());
        assert_eq!(both_paths(&table, &mapping), Some(()));
    }

    #[test]
    fn the_cube_path_declines_what_needs_a_reason() {
        let catalogued = BTreeSet::new();
        let cx = context(&catalogued);
        let mapping = population_mapping();
        let declines = |table: &SourceTable, mapping: &Mapping| {
            CubeHarmoniser::new(table.cube().unwrap(), mapping, &cx).is_none()
        };
        let cube = |regions: &[&str], sexes: &[&str], marked: &[(u64, u32)]| {
            population(regions, &["tot"], sexes, &["2024"], &[], marked)
        };
        // An area code that is no area, a sex without a code, two categories on one value.
        assert!(declines(&cube(&["00", "x1"], &["1"], &[]), &mapping));
        assert!(declines(&cube(&["00"], &["1", "9"], &[]), &mapping));
        let mut merged = mapping.clone();
        merged.sex = Field::Fixed("T".into());
        assert!(declines(&cube(&["00"], &["1", "2"], &[]), &merged));
        // A marker without a meaning.
        let mut unknown = mapping.clone();
        unknown.markers.remove("-");
        assert!(declines(&cube(&["00"], &["1"], &[(0, 1)]), &unknown));
        // Extra numeric columns are the row path's.
        let mut extra = mapping.clone();
        extra.sample_size = Some("n".into());
        assert!(declines(&cube(&["00"], &["1"], &[]), &extra));
        // The same mapping on a clean cube is taken.
        assert!(!declines(&cube(&["00", "01"], &["1", "2"], &[]), &mapping));
    }

    #[test]
    fn a_partition_whose_periods_collide_is_declined() {
        let table = population(&["00"], &["tot"], &["1"], &["2024", "2024 "], &[], &[]);
        let catalogued = BTreeSet::new();
        let cx = context(&catalogued);
        let mapping = population_mapping();
        let cube = CubeHarmoniser::new(table.cube().unwrap(), &mapping, &cx).unwrap();
        assert!(cube.partition(&[true, false]).is_some());
        assert!(cube.partition(&[true, true]).is_none());
    }

    fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
        proptest::sample::subsequence(pool, 1..=pool.len()).prop_shuffle()
    }

    proptest! {
        #[test]
        fn random_cubes_give_the_rows_of_the_row_path(
            regions in subset(&["00", "01", "0114", "0180", "03", "1480", "25", "2584"]),
            ages in subset(&["tot", "0", "1", "10", "100+", "17"]),
            sexes in subset(&["1", "2"]),
            years in subset(&["2018", "2019", "2020", "2021"]),
            nulls in proptest::collection::vec(0usize..400, 0..20),
            marked in proptest::collection::btree_map(0u64..400, 0u32..3, 0..20),
        ) {
            let cells = (regions.len() * ages.len() * sexes.len() * years.len()) as u64;
            let marked: Vec<(u64, u32)> = marked.into_iter().filter(|&(c, _)| c < cells).collect();
            let table = population(&regions, &ages, &sexes, &years, &nulls, &marked);
            prop_assert_eq!(both_paths(&table, &population_mapping()), Some(()));
        }
    }
}
