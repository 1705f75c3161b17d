//! What a Kolada test server holds: KPIs, areas (municipalities, regions, `0000` Riket),
//! municipality groups and years, and the value of every (KPI, area, year, gender), computed
//! when asked from a hash so that a test can know every row without the server storing any.
//!
//! Owns: building a dataset (by hand, or thousands of KPIs by generated id), the value
//! function, group values (the unweighted mean of their members, as Kolada computes them) and
//! `expected_rows`.
//! Must not: know HTTP, paging or the JSON shapes (`api.rs`).

use serde::{Deserialize, Serialize};

/// A gender entry of a data row: `T` total, `K` kvinnor, `M` män (SOURCES §e).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Gender {
    T,
    K,
    M,
}

/// The kind of an area, as `type` in `/v3/municipality`: `K` a municipality, `L` a region
/// (`00` + the county code) or `0000` Riket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AreaType {
    K,
    L,
}

/// Which areas a KPI is about, as its `municipality_type`: `K`, `L`, or `A` (all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MunicipalityType {
    K,
    L,
    A,
}

/// A KPI (nyckeltal) and its metadata as `/v3/kpi` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Data rows carry `K` and `M` entries besides `T`.
    pub is_divided_by_gender: bool,
    pub operating_area: String,
    pub municipality_type: MunicipalityType,
    pub has_ou_data: bool,
    /// `YYYY-MM-DD`.
    pub publication_date: String,
    pub prel_publication_date: Option<String>,
    pub ou_publication_date: Option<String>,
    pub perspective: String,
    pub auspices: String,
    /// Enters every value of the KPI: bumping it changes them all (a revision at the source).
    pub revision: u32,
}

impl Kpi {
    /// A KPI for all areas, not divided by gender, published 2024-03-01.
    pub fn new(id: &str, title: &str) -> Kpi {
        Kpi {
            id: id.to_owned(),
            title: title.to_owned(),
            description: format!("{title}. Källa: testdata."),
            is_divided_by_gender: false,
            operating_area: "Befolkning".to_owned(),
            municipality_type: MunicipalityType::A,
            has_ou_data: false,
            publication_date: "2024-03-01".to_owned(),
            prel_publication_date: None,
            ou_publication_date: None,
            perspective: "Resurser".to_owned(),
            auspices: "X".to_owned(),
            revision: 0,
        }
    }

    /// Divided by gender: rows carry `T`, `K` and `M`.
    pub fn with_gender_split(mut self) -> Kpi {
        self.is_divided_by_gender = true;
        self
    }

    pub fn with_operating_area(mut self, area: &str) -> Kpi {
        self.operating_area = area.to_owned();
        self
    }

    /// The genders its data rows carry, in the order they are written.
    pub fn genders(&self) -> &'static [Gender] {
        match self.is_divided_by_gender {
            true => &[Gender::T, Gender::K, Gender::M],
            false => &[Gender::T],
        }
    }
}

/// A municipality, a region or `0000` Riket, as `/v3/municipality` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: AreaType,
}

/// A municipality group (`G…`), whose data rows are the mean of its members'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub title: String,
    /// Area ids; ids the dataset has no area for are listed but add nothing to values.
    pub members: Vec<String>,
}

/// One value of a data row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// `None` with status `Saknas`.
    pub value: Option<f64>,
    /// 1 for an area; for a group, the members that have a value.
    pub count: u32,
    pub status: &'static str,
}

/// The status of a cell without a value. Whether Kolada writes exactly this is assumed.
pub const MISSING: &str = "Saknas";

/// One (KPI, area, year): what a data row holds, one cell per gender.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRow {
    pub kpi: String,
    pub area: String,
    pub period: i32,
    pub values: Vec<(Gender, Cell)>,
}

/// One value the server holds, flat, for tests to compare with what a client decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedRow {
    pub kpi: String,
    pub area: String,
    pub period: i32,
    pub gender: Gender,
    pub value: Option<f64>,
    /// 1 for an area; for a group, the members that have a value.
    pub count: u32,
    pub status: String,
}

/// KPIs × areas and groups × years, every value computed by [`Dataset::cell`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub kpis: Vec<Kpi>,
    /// Municipalities, regions and Riket, in the order `/v3/municipality` lists them.
    pub areas: Vec<Area>,
    pub groups: Vec<Group>,
    pub years: Vec<i32>,
}

impl Dataset {
    /// Three KPIs (one divided by gender), four municipalities, two regions, Riket, two groups,
    /// 2020–2023: 3 × 9 × 4 rows.
    pub fn small() -> Dataset {
        Dataset::default()
            .with_kpi(Kpi::new("N01951", "Invånare totalt, antal"))
            .with_kpi(
                Kpi::new(
                    "N15428",
                    "Elever i åk 9 som är behöriga till yrkesprogram, andel (%)",
                )
                .with_gender_split()
                .with_operating_area("Grundskola"),
            )
            .with_kpi(
                Kpi::new(
                    "U28112",
                    "Enheterna har aktuella genomförandeplaner för de boende",
                )
                .with_operating_area("Äldreomsorg"),
            )
            .with_area("0180", "Stockholm", AreaType::K)
            .with_area("1480", "Göteborg", AreaType::K)
            .with_area("1380", "Halmstad", AreaType::K)
            .with_area("1382", "Falkenberg", AreaType::K)
            .with_area("0001", "Region Stockholm", AreaType::L)
            .with_area("0013", "Region Halland", AreaType::L)
            .with_area("0000", "Riket", AreaType::L)
            .with_group("G33698", "Storstäder", &["0180", "1480"])
            .with_group("G33700", "Kommuner i Halland", &["1380", "1382"])
            .with_years(2020..=2023)
    }

    pub fn with_kpi(mut self, kpi: Kpi) -> Dataset {
        self.kpis.push(kpi);
        self
    }

    /// `count` more KPIs, `N9xxxxx` (`N900000`, `N900001`, …): cheap metadata for paging past
    /// 5 000.
    pub fn with_generated_kpis(self, count: usize) -> Dataset {
        self.with_kpis_named((0..count).map(|i| format!("N9{i:05}")))
    }

    /// A KPI for each of `ids` (a pipeline set's, for a benchmark), titled by its id and its
    /// place; every third divided by gender. An id already held keeps its KPI.
    pub fn with_kpis_named(mut self, ids: impl IntoIterator<Item = String>) -> Dataset {
        let start = self.kpis.len();
        for id in ids {
            if self.kpis.iter().any(|k| k.id == id) {
                continue;
            }
            let added = self.kpis.len() - start;
            let kpi = Kpi::new(
                &id,
                &format!("Genererat nyckeltal {} ({id})", start + added),
            );
            self.kpis.push(match added % 3 {
                0 => kpi.with_gender_split(),
                _ => kpi,
            });
        }
        self
    }

    pub fn with_area(mut self, id: &str, title: &str, kind: AreaType) -> Dataset {
        self.areas.push(Area {
            id: id.to_owned(),
            title: title.to_owned(),
            kind,
        });
        self
    }

    /// The areas of a Kolada `municipality` answer: its `values`, or a bare array of
    /// `{id, title, type}` (as `fixtures/real/pykolada/municipality.json`), after those held;
    /// an id already held keeps its area.
    pub fn with_areas_json(mut self, json: &[u8]) -> Result<Dataset, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Areas {
            Bare(Vec<Area>),
            Envelope { values: Vec<Area> },
        }
        let areas = match serde_json::from_slice(json)? {
            Areas::Bare(areas) | Areas::Envelope { values: areas } => areas,
        };
        for area in areas {
            if !self.areas.iter().any(|a| a.id == area.id) {
                self.areas.push(area);
            }
        }
        Ok(self)
    }

    pub fn with_group(mut self, id: &str, title: &str, members: &[&str]) -> Dataset {
        self.groups.push(Group {
            id: id.to_owned(),
            title: title.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        });
        self
    }

    pub fn with_years(mut self, years: impl IntoIterator<Item = i32>) -> Dataset {
        self.years = years.into_iter().collect();
        self
    }

    /// The KPI `id`, if held.
    pub fn kpi(&self, id: &str) -> Option<&Kpi> {
        self.kpis.iter().find(|k| k.id == id)
    }

    pub(super) fn kpi_mut(&mut self, id: &str) -> &mut Kpi {
        self.kpis
            .iter_mut()
            .find(|k| k.id == id)
            .unwrap_or_else(|| panic!("the test server has no KPI {id}"))
    }

    /// The value of `kpi` for `area` (an area or a group id) in `year`: for an area a hash of
    /// the four and the KPI's revision, one decimal in 0.0..=99.9, missing (`Saknas`) for about
    /// one in eleven; for a group the mean of its members' values rounded to one decimal, its
    /// `count` the members that had one. `None` for an id that is neither.
    pub fn cell(&self, kpi: &Kpi, area: &str, year: i32, gender: Gender) -> Option<Cell> {
        if self.areas.iter().any(|a| a.id == area) {
            return Some(area_cell(kpi, area, year, gender));
        }
        let group = self.groups.iter().find(|g| g.id == area)?;
        let values: Vec<f64> = group
            .members
            .iter()
            .filter(|m| self.areas.iter().any(|a| &a.id == *m))
            .filter_map(|m| area_cell(kpi, m, year, gender).value)
            .collect();
        Some(match values.len() {
            0 => Cell {
                value: None,
                count: 0,
                status: MISSING,
            },
            n => Cell {
                value: Some(round1(values.iter().sum::<f64>() / n as f64)),
                count: n as u32,
                status: "",
            },
        })
    }

    /// The data rows for `kpis` × `areas` × `years` (`None`: every KPI, every area and group),
    /// in the dataset's order (KPI, then area, then group, then year), whatever the order
    /// asked; ids the dataset does not hold give no rows.
    pub fn rows(
        &self,
        kpis: Option<&[String]>,
        areas: Option<&[String]>,
        years: &[i32],
    ) -> Vec<DataRow> {
        let wanted =
            |list: Option<&[String]>, id: &str| list.is_none_or(|l| l.iter().any(|x| x == id));
        let area_ids: Vec<&str> = self
            .areas
            .iter()
            .map(|a| a.id.as_str())
            .chain(self.groups.iter().map(|g| g.id.as_str()))
            .filter(|id| wanted(areas, id))
            .collect();
        let years: Vec<i32> = self
            .years
            .iter()
            .copied()
            .filter(|y| years.contains(y))
            .collect();
        let mut rows = Vec::new();
        for kpi in self.kpis.iter().filter(|k| wanted(kpis, &k.id)) {
            for area in &area_ids {
                for &year in &years {
                    let values = kpi
                        .genders()
                        .iter()
                        .filter_map(|&g| Some((g, self.cell(kpi, area, year, g)?)))
                        .collect();
                    rows.push(DataRow {
                        kpi: kpi.id.clone(),
                        area: (*area).to_owned(),
                        period: year,
                        values,
                    });
                }
            }
        }
        rows
    }

    /// Every value the server holds now, one per (KPI, area or group, year, gender).
    pub fn expected_rows(&self) -> Vec<ExpectedRow> {
        self.rows(None, None, &self.years)
            .into_iter()
            .flat_map(|row| {
                row.values
                    .into_iter()
                    .map(move |(gender, cell)| ExpectedRow {
                        kpi: row.kpi.clone(),
                        area: row.area.clone(),
                        period: row.period,
                        gender,
                        value: cell.value,
                        count: cell.count,
                        status: cell.status.to_owned(),
                    })
            })
            .collect()
    }
}

fn area_cell(kpi: &Kpi, area: &str, year: i32, gender: Gender) -> Cell {
    let h = hash(kpi, area, year, gender);
    match h % 11 {
        0 => Cell {
            value: None,
            count: 1,
            status: MISSING,
        },
        _ => Cell {
            value: Some(((h >> 8) % 1000) as f64 / 10.0),
            count: 1,
            status: "",
        },
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// FNV-1a over the key, then splitmix64's finaliser so that near keys spread.
fn hash(kpi: &Kpi, area: &str, year: i32, gender: Gender) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let gender = [gender as u8];
    let parts: [&[u8]; 5] = [
        kpi.id.as_bytes(),
        area.as_bytes(),
        &year.to_le_bytes(),
        &gender,
        &kpi.revision.to_le_bytes(),
    ];
    for part in parts {
        for &byte in part.iter().chain(&[0xff]) {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_value_is_the_mean_of_its_members() {
        let data = Dataset::small();
        let kpi = data.kpi("N01951").unwrap();
        for year in 2020..=2023 {
            let members: Vec<f64> = ["0180", "1480"]
                .iter()
                .filter_map(|m| data.cell(kpi, m, year, Gender::T).unwrap().value)
                .collect();
            let group = data.cell(kpi, "G33698", year, Gender::T).unwrap();
            assert_eq!(group.count as usize, members.len());
            if !members.is_empty() {
                let mean = members.iter().sum::<f64>() / members.len() as f64;
                assert_eq!(group.value, Some(round1(mean)));
            }
        }
    }

    #[test]
    fn a_revision_changes_the_values_and_nothing_else() {
        let mut data = Dataset::small();
        let before = data.expected_rows();
        data.kpi_mut("N15428").revision += 1;
        let after = data.expected_rows();
        assert_eq!(before.len(), after.len());
        let changed = |kpi: &str| {
            before
                .iter()
                .zip(&after)
                .filter(|(b, a)| b.kpi == kpi && b != a)
                .count()
        };
        assert!(changed("N15428") > 0);
        assert_eq!((changed("N01951"), changed("U28112")), (0, 0));
    }

    #[test]
    fn the_small_set_has_missing_values_and_gender_only_where_divided() {
        let rows = Dataset::small().expected_rows();
        // 3 KPIs × 9 areas and groups × 4 years, the divided one three times.
        assert_eq!(rows.len(), (1 + 3 + 1) * 9 * 4);
        assert!(
            rows.iter()
                .any(|r| r.value.is_none() && r.status == MISSING)
        );
        assert!(
            rows.iter()
                .filter(|r| r.kpi != "N15428")
                .all(|r| r.gender == Gender::T)
        );
    }
}
