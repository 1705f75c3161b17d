//! A table split by the year of its period column, the partition key of the warehouse.
//!
//! Owns: which period categories fall in which year (parsed once per category).
//! Must not: look at rows (the table hands out each year's rows) or stage anything.

use std::collections::BTreeSet;

use super::run::RunError;
use crate::formats::SourceTable;
use crate::harmonise::{HarmoniseError, periods};

/// A table split by the year of its period column: one partition per year, plus, under `None`,
/// the categories that are no period at all.
pub(super) struct Years {
    /// Each group's year, in order.
    pub(super) years: Vec<Option<i32>>,
    /// Each period category's group.
    pub(super) group_of: Vec<usize>,
}

impl Years {
    /// Parses the period once per category of `column`.
    pub(super) fn of(
        table: &SourceTable,
        column: &str,
        kind: periods::PeriodKind,
    ) -> Result<Self, RunError> {
        let categories = table.categories(column).ok_or_else(|| {
            RunError::Harmonise(HarmoniseError::missing_column(
                "period",
                column,
                table.schema(),
            ))
        })?;
        let year_of: Vec<Option<i32>> = categories
            .iter()
            .map(|category| {
                periods::parse_period(category.unwrap_or(""), kind)
                    .ok()
                    .map(|p| p.year())
            })
            .collect();
        let years: Vec<Option<i32>> = year_of
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let group_of = year_of
            .iter()
            .map(|year| years.binary_search(year).expect("every year is listed"))
            .collect();
        Ok(Self { years, group_of })
    }

    /// Which period categories fall in group `group`.
    pub(super) fn keep(&self, group: usize) -> Vec<bool> {
        self.group_of.iter().map(|&g| g == group).collect()
    }
}
