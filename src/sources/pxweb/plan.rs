//! Query planning: an expanded selection → the fewest requests that each stay within the
//! server's limits. A pure function: no I/O, no clock.
//!
//! Owns: cutting a query into a grid of pieces ([`plan`]) and cutting a piece again after the
//! server refused it ([`replan`]).
//! Must not: expand selections (`select.rs` does: every variable arrives as a concrete code
//! list), learn the limits (the caller reads `?config` and `[source]`), or send anything.
//!
//! The pieces form a grid: variable i is cut into k_i contiguous chunks of balanced lengths
//! (the first `n mod k` chunks are one value longer than the rest), so the largest piece has
//! Π ceil(n_i / k_i) cells and names Σ ceil(n_i / k_i) values. Among the grids whose largest
//! piece is within both limits the planner takes, in this order of preference:
//! 1. one that keeps every time and content variable whole, if any grid does (the rule,
//!    and rOpenGov/pxweb's: each piece then holds whole series for its slice of the rest);
//! 2. the fewest requests;
//! 3. the fewest time and content variables cut (only differs when 1 could not hold);
//! 4. the fewest variables cut: pieces that differ along one variable only are laid side by
//!    side into one cube again by `formats::merge`, which keeps the cube path;
//! 5. the most chunks on the largest variable, then on the next largest (other variables
//!    before time and content).

use std::cmp::Reverse;
use std::collections::HashMap;
use std::ops::Range;

/// Most requests one plan may make: at SCB's 30 calls per 10 s, over nine hours of calls. A
/// query that needs more is a selection mistake, not a harvest.
pub const MAX_REQUESTS: u128 = 100_000;

/// What a variable is to the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The content variable (v1 `ContentsCode`, v2 `role.metric`): kept whole when possible.
    Content,
    /// The time variable (`Tid`): kept whole when possible.
    Time,
    Other,
}

/// One variable of the expanded query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    /// As the server spells it; named in errors.
    pub code: String,
    /// Values selected (the length of the expanded code list).
    pub size: usize,
    pub role: Role,
}

impl Dimension {
    fn keep_whole(&self) -> bool {
        self.role != Role::Other
    }
}

/// A server's limits on one data request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most cells (the product of the selected values per variable).
    pub max_cells: u64,
    /// Most selected values (their sum over variables): v1 `maxValues`; `None` where the API
    /// has no such limit (v2).
    pub max_values: Option<u64>,
}

/// One request: for each dimension, in the same order as the input, the range of its selected
/// values (indices into that dimension's expanded code list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub ranges: Vec<Range<usize>>,
}

impl Piece {
    /// Cells the request asks for: the product of the ranges' lengths (saturating).
    pub fn cells(&self) -> u64 {
        self.ranges.iter().fold(1, |cells: u64, range| {
            cells.saturating_mul(range.len() as u64)
        })
    }

    /// Values the request names: the sum of the ranges' lengths (what v1's `maxValues` counts).
    pub fn values(&self) -> u64 {
        self.ranges.iter().map(|range| range.len() as u64).sum()
    }
}

/// Why a query cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "variable `{variable}` has no values selected, so the query would ask for nothing; fix \
         its `select` entry, or check that the table still has the values it names"
    )]
    Empty { variable: String },
    #[error(
        "no request can stay within max_cells = {} and max_values = {}: even one value of each \
         variable ({}) makes {} values and 1 cell; select fewer variables, or check \
         `server_max_cells` in [source] against the server's `?config`",
        .limits.max_cells,
        .limits.max_values.map_or("none".to_string(), |v| v.to_string()),
        .variables.iter().map(|code| format!("`{code}`")).collect::<Vec<_>>().join(", "),
        .variables.len()
    )]
    Impossible {
        limits: Limits,
        variables: Vec<String>,
    },
    #[error(
        "the query asks for {cells} cells, which takes {requests} requests of at most {max_cells} \
         cells, more than the {MAX_REQUESTS} one harvest may make; select fewer values"
    )]
    TooManyRequests {
        cells: u128,
        requests: u128,
        max_cells: u64,
    },
    #[error(
        "the server refused a request for a single cell as too many cells, so no split can help; \
         its limit is not the one it announces: check `server_max_cells` in [source] and the \
         server's `?config`"
    )]
    SingleCell,
}

/// Cuts the query `dims` (each a concrete list of `size` values, in the order the request
/// names them) into the fewest pieces that each stay within `limits`, with the preferences
/// the module doc lists. The pieces come in row-major order over the grid of chunks (the last
/// dimension's chunks vary fastest); a query that fits comes back as one piece covering it.
///
/// Errors: a dimension with no values ([`PlanError::Empty`]); limits no request can meet
/// ([`PlanError::Impossible`]); more than [`MAX_REQUESTS`] pieces
/// ([`PlanError::TooManyRequests`]).
pub fn plan(dims: &[Dimension], limits: &Limits) -> Result<Vec<Piece>, PlanError> {
    if let Some(empty) = dims.iter().find(|dim| dim.size == 0) {
        return Err(PlanError::Empty {
            variable: empty.code.clone(),
        });
    }
    // One value of every dimension is the smallest request there is.
    if limits.max_cells == 0 || limits.max_values.is_some_and(|v| v < dims.len() as u64) {
        return Err(PlanError::Impossible {
            limits: *limits,
            variables: dims.iter().map(|dim| dim.code.clone()).collect(),
        });
    }
    let cells = dims
        .iter()
        .fold(1, |cells: u128, dim| cells.saturating_mul(dim.size as u128));
    // No grid needs fewer requests than this: refuse a hopeless query before searching it
    // (a search over a hundred huge dimensions takes minutes).
    let at_least = cells.div_ceil(limits.max_cells as u128);
    if at_least > MAX_REQUESTS {
        return Err(PlanError::TooManyRequests {
            cells,
            requests: at_least,
            max_cells: limits.max_cells,
        });
    }
    let (requests, chunks) = Search::new(dims, limits, Whole::Kept)
        .best()
        .or_else(|| Search::new(dims, limits, Whole::MayCut).best())
        .expect("one value of each dimension fits both limits: checked above");
    if requests > MAX_REQUESTS {
        return Err(PlanError::TooManyRequests {
            cells,
            requests,
            max_cells: limits.max_cells,
        });
    }
    let axes: Vec<Vec<Range<usize>>> = dims
        .iter()
        .zip(chunks)
        .map(|(dim, count)| balanced_chunks(dim.size, count))
        .collect();
    Ok(grid(&axes))
}

/// After the server still answered "too many cells" for `piece` (its count differs from ours):
/// cuts that piece so each part has at most half its cells and stays within `limits`, with
/// [`plan`]'s preferences and order. Called once per piece: a part the server refuses again is
/// the server's error to report. `piece` must come from a plan of `dims`.
///
/// Errors: [`PlanError::SingleCell`] when `piece` is one cell; otherwise as [`plan`].
pub fn replan(piece: &Piece, dims: &[Dimension], limits: &Limits) -> Result<Vec<Piece>, PlanError> {
    assert_eq!(
        piece.ranges.len(),
        dims.len(),
        "a piece has one range per dimension of the query it was planned from"
    );
    let cells = piece.cells();
    if cells == 1 {
        return Err(PlanError::SingleCell);
    }
    let within = Limits {
        max_cells: limits.max_cells.min(cells / 2),
        ..*limits
    };
    let inside: Vec<Dimension> = dims
        .iter()
        .zip(&piece.ranges)
        .map(|(dim, range)| Dimension {
            size: range.len(),
            ..dim.clone()
        })
        .collect();
    let parts = plan(&inside, &within)?;
    Ok(parts
        .into_iter()
        .map(|part| Piece {
            ranges: part
                .ranges
                .iter()
                .zip(&piece.ranges)
                .map(|(part, outer)| outer.start + part.start..outer.start + part.end)
                .collect(),
        })
        .collect())
}

/// Whether a search may cut time and content dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whole {
    /// They stay whole: the first search, which wins whenever it finds a grid.
    Kept,
    /// They may be cut like any other: when no grid keeps them whole.
    MayCut,
}

/// One way to cut a dimension: `chunks` chunks, the longest `longest` values.
#[derive(Debug, Clone, Copy)]
struct Cut {
    chunks: usize,
    longest: u64,
}

/// The cuts worth trying for a dimension of `size` values, each `longest` = ceil(size /
/// chunks) with `chunks` the fewest that reach it (more would cost requests for nothing),
/// longest ascending. ceil(size / k) takes O(sqrt size) distinct values, so there are as many.
fn cuts(size: usize) -> Vec<Cut> {
    let mut cuts = vec![Cut {
        chunks: 1,
        longest: size as u64,
    }];
    let mut longest = size;
    while longest > 1 {
        // The fewest chunks whose longest is shorter than the last.
        let chunks = size.div_ceil(longest - 1);
        longest = size.div_ceil(chunks);
        cuts.push(Cut {
            chunks,
            longest: longest as u64,
        });
    }
    cuts.reverse();
    cuts
}

/// What a grid costs, compared field by field in the order of preference of the module doc
/// (the whole-keeping rule is the choice of search, not a field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cost {
    requests: u128,
    whole_cut: u32,
    cut: u32,
}

impl Cost {
    /// Nothing cut: one request.
    const UNCUT: Self = Self {
        requests: 1,
        whole_cut: 0,
        cut: 0,
    };

    fn of(cut: Cut, keep_whole: bool) -> Self {
        let is_cut = u32::from(cut.chunks > 1);
        Self {
            requests: cut.chunks as u128,
            whole_cut: if keep_whole { is_cut } else { 0 },
            cut: is_cut,
        }
    }

    /// The cost of two disjoint sets of dimensions cut together: monotone in each argument,
    /// which is what lets a part's least cost bound the whole's.
    fn then(self, other: Self) -> Self {
        Self {
            requests: self.requests.saturating_mul(other.requests),
            whole_cut: self.whole_cut + other.whole_cut,
            cut: self.cut + other.cut,
        }
    }
}

/// One of the two limits, as a budget spent dimension by dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Budget {
    /// Cells left per piece: a chunk of `longest` values divides it.
    Cells,
    /// Values left per piece: a chunk of `longest` values is taken from it.
    Values,
}

impl Budget {
    /// What is left of `left` after a chunk of `longest` values, with `later` dimensions still
    /// to come (each needs at least one value and cell); `None` when the chunk does not fit.
    /// Never more for a longer chunk, so a scan of cuts by `longest` ascending stops at `None`.
    fn spend(self, left: u64, longest: u64, later: u64) -> Option<u64> {
        match self {
            Self::Cells => (longest <= left).then(|| left / longest),
            Self::Values => left.checked_sub(longest).filter(|&rest| rest >= later),
        }
    }
}

/// A branch-and-bound search over the cuts of each dimension, in order of preference (the
/// order that rule 5 compares chunk counts in). What bounds the dimensions still to cut is
/// the larger of their least cost within the cells left and within the values left, each
/// found by a memoised recursion that ignores the other limit (so the bound is exact while
/// only one limit binds). The cells left are always `max_cells / (product of the longest
/// chunks so far)` rounded down, which takes O(sqrt max_cells) distinct values, and the
/// values left at most `max_values`, so there are few bounds to remember.
struct Search {
    /// Input positions of the dimensions, in order of preference.
    order: Vec<usize>,
    /// Per dimension in `order`: the cuts allowed, longest ascending.
    cuts: Vec<Vec<Cut>>,
    keep_whole: Vec<bool>,
    /// Per position in `order`: the cells and values of the dimensions from there on left
    /// whole, `None` when one of them may not stay whole.
    uncut: Vec<Option<(u128, u64)>>,
    max_cells: u64,
    max_values: u64,
    bounds: HashMap<(Budget, usize, u64), Option<Cost>>,
    /// The best grid so far: its cost and chunks per dimension in `order`.
    best: Option<(Cost, Vec<usize>)>,
}

impl Search {
    fn new(dims: &[Dimension], limits: &Limits, whole: Whole) -> Self {
        let mut order: Vec<usize> = (0..dims.len()).collect();
        // Rule 5: other dimensions first, largest first; the input order settles equal sizes.
        order.sort_by_key(|&i| (dims[i].keep_whole(), Reverse(dims[i].size)));
        let cuts: Vec<Vec<Cut>> = order
            .iter()
            .map(|&i| {
                let mut cuts = cuts(dims[i].size);
                if whole == Whole::Kept && dims[i].keep_whole() {
                    cuts.retain(|cut| cut.chunks == 1);
                }
                cuts
            })
            .collect();
        let mut uncut = vec![Some((1, 0))];
        for &i in order.iter().rev() {
            let whole = uncut[0].map(|(cells, values): (u128, u64)| {
                let size = dims[i].size as u64;
                (cells.saturating_mul(u128::from(size)), values + size)
            });
            uncut.insert(0, whole);
        }
        Self {
            keep_whole: order.iter().map(|&i| dims[i].keep_whole()).collect(),
            order,
            cuts,
            uncut,
            max_cells: limits.max_cells,
            max_values: limits.max_values.unwrap_or(u64::MAX),
            bounds: HashMap::new(),
            best: None,
        }
    }

    /// The best grid's number of requests and chunks per dimension in input order, or `None`
    /// when no grid this search may use fits.
    fn best(mut self) -> Option<(u128, Vec<usize>)> {
        self.descend(
            &mut Vec::new(),
            self.max_cells,
            self.max_values,
            Cost::UNCUT,
        );
        let (cost, chunks) = self.best?;
        let mut by_input = vec![0; chunks.len()];
        for (&i, count) in self.order.iter().zip(chunks) {
            by_input[i] = count;
        }
        Some((cost.requests, by_input))
    }

    /// The least cost of cutting the dimensions from `at` on within `left` of `budget`, the
    /// other limit ignored; `None` when they cannot fit.
    fn least(&mut self, budget: Budget, at: usize, left: u64) -> Option<Cost> {
        if at == self.cuts.len() {
            return Some(Cost::UNCUT);
        }
        // Cheap and common: the rest fits whole.
        if let Some((cells, values)) = self.uncut[at] {
            let fits = match budget {
                Budget::Cells => cells <= u128::from(left),
                Budget::Values => values <= left,
            };
            if fits {
                return Some(Cost::UNCUT);
            }
        }
        if let Some(&known) = self.bounds.get(&(budget, at, left)) {
            return known;
        }
        let later = (self.cuts.len() - at - 1) as u64;
        let mut least: Option<Cost> = None;
        for c in 0..self.cuts[at].len() {
            let cut = self.cuts[at][c];
            let Some(rest_left) = budget.spend(left, cut.longest, later) else {
                break;
            };
            if let Some(rest) = self.least(budget, at + 1, rest_left) {
                let cost = Cost::of(cut, self.keep_whole[at]).then(rest);
                least = Some(least.map_or(cost, |least| least.min(cost)));
            }
        }
        self.bounds.insert((budget, at, left), least);
        least
    }

    /// Tries the cuts of dimension `chosen.len()` on, best bound first, keeping in `best` the
    /// least (cost, then most chunks in order) grid within both limits.
    fn descend(&mut self, chosen: &mut Vec<usize>, cells: u64, values: u64, so_far: Cost) {
        let at = chosen.len();
        if at == self.cuts.len() {
            let better = self.best.as_ref().is_none_or(|(cost, chunks)| {
                (so_far, Reverse(&*chosen)) < (*cost, Reverse(chunks))
            });
            if better {
                self.best = Some((so_far, chosen.clone()));
            }
            return;
        }
        let later = (self.cuts.len() - at - 1) as u64;
        let mut tries = Vec::new();
        for c in 0..self.cuts[at].len() {
            let cut = self.cuts[at][c];
            let (Some(cells), Some(values)) = (
                Budget::Cells.spend(cells, cut.longest, later),
                Budget::Values.spend(values, cut.longest, later),
            ) else {
                break;
            };
            let step = so_far.then(Cost::of(cut, self.keep_whole[at]));
            let (Some(by_cells), Some(by_values)) = (
                self.least(Budget::Cells, at + 1, cells),
                self.least(Budget::Values, at + 1, values),
            ) else {
                continue;
            };
            tries.push((step.then(by_cells.max(by_values)), cut, step, cells, values));
        }
        tries.sort_by_key(|&(bound, cut, ..)| (bound, Reverse(cut.chunks)));
        for (bound, cut, step, cells, values) in tries {
            if let Some((cost, chunks)) = &self.best {
                if bound > *cost {
                    break;
                }
                // An equal cost can only win on more chunks, in order of preference.
                if bound == *cost && chosen.iter().chain([&cut.chunks]).lt(&chunks[..=at]) {
                    continue;
                }
            }
            chosen.push(cut.chunks);
            self.descend(chosen, cells, values, step);
            chosen.pop();
        }
    }
}

/// `0..size` cut into `count` contiguous chunks whose lengths differ by at most one, the
/// longer first. `count` is at most `size`.
fn balanced_chunks(size: usize, count: usize) -> Vec<Range<usize>> {
    let (short, longer) = (size / count, size % count);
    (0..count)
        .map(|j| {
            let start = j * short + j.min(longer);
            start..start + short + usize::from(j < longer)
        })
        .collect()
}

/// Every combination of one chunk per axis, row-major (the last axis varies fastest).
fn grid(axes: &[Vec<Range<usize>>]) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(axes.iter().map(Vec::len).product());
    let mut at = vec![0; axes.len()];
    loop {
        pieces.push(Piece {
            ranges: axes
                .iter()
                .zip(&at)
                .map(|(axis, &j)| axis[j].clone())
                .collect(),
        });
        let Some(turn) = (0..axes.len()).rev().find(|&d| at[d] + 1 < axes[d].len()) else {
            return pieces;
        };
        at[turn] += 1;
        at[turn + 1..].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn dim(code: &str, size: usize, role: Role) -> Dimension {
        Dimension {
            code: code.to_string(),
            size,
            role,
        }
    }

    fn cells(max_cells: u64) -> Limits {
        Limits {
            max_cells,
            max_values: None,
        }
    }

    /// SCB's population table as a v1 query selects it: every region, every age, both sexes.
    fn population() -> Vec<Dimension> {
        vec![
            dim("Region", 312, Role::Other),
            dim("Alder", 101, Role::Other),
            dim("Kon", 2, Role::Other),
            dim("ContentsCode", 1, Role::Content),
            dim("Tid", 55, Role::Time),
        ]
    }

    fn lengths(piece: &Piece) -> Vec<usize> {
        piece.ranges.iter().map(Range::len).collect()
    }

    /// Checks that `pieces` are the row-major grid of chunks that tiles `bounds` (every cell in
    /// exactly one piece) and returns the number of chunks per dimension.
    fn grid_of(pieces: &[Piece], bounds: &[Range<usize>]) -> Vec<usize> {
        let axes: Vec<Vec<Range<usize>>> = (0..bounds.len())
            .map(|d| {
                let mut axis: Vec<Range<usize>> =
                    pieces.iter().map(|piece| piece.ranges[d].clone()).collect();
                axis.sort_by_key(|range| (range.start, range.end));
                axis.dedup();
                axis
            })
            .collect();
        for (axis, bound) in axes.iter().zip(bounds) {
            assert_eq!(axis.first().map(|r| r.start), Some(bound.start));
            assert_eq!(axis.last().map(|r| r.end), Some(bound.end));
            assert!(axis.iter().all(|range| !range.is_empty()), "{axis:?}");
            assert!(axis.windows(2).all(|w| w[0].end == w[1].start), "{axis:?}");
        }
        // Distinct pieces, as many as combinations of chunks: each combination exactly once.
        let distinct: HashSet<&Vec<Range<usize>>> = pieces.iter().map(|p| &p.ranges).collect();
        assert_eq!(distinct.len(), pieces.len());
        assert_eq!(pieces.len(), axes.iter().map(Vec::len).product::<usize>());
        let starts = |piece: &Piece| piece.ranges.iter().map(|r| r.start).collect::<Vec<_>>();
        assert!(
            pieces.windows(2).all(|w| starts(&w[0]) < starts(&w[1])),
            "not row-major"
        );
        axes.iter().map(Vec::len).collect()
    }

    fn whole(dims: &[Dimension]) -> Vec<Range<usize>> {
        dims.iter().map(|dim| 0..dim.size).collect()
    }

    fn within(piece: &Piece, limits: &Limits) -> bool {
        piece.cells() <= limits.max_cells
            && limits.max_values.is_none_or(|max| piece.values() <= max)
    }

    /// Whether some grid keeps time and content whole: the others cut to single values is the
    /// smallest such piece.
    fn whole_keeping_grid_exists(dims: &[Dimension], limits: &Limits) -> bool {
        let kept = dims.iter().filter(|dim| dim.role != Role::Other);
        let cells: u64 = kept.clone().map(|dim| dim.size as u64).product();
        let values = kept.map(|dim| dim.size as u64).sum::<u64>()
            + dims.iter().filter(|dim| dim.role == Role::Other).count() as u64;
        cells <= limits.max_cells && limits.max_values.is_none_or(|max| values <= max)
    }

    /// The chunk counts of the best grid by trying every vector of chunk counts, ranked as the
    /// module doc says; `None` when none fits.
    fn brute_force(dims: &[Dimension], limits: &Limits) -> Option<Vec<usize>> {
        let mut preference: Vec<usize> = (0..dims.len()).collect();
        preference.sort_by_key(|&i| (dims[i].role != Role::Other, Reverse(dims[i].size)));
        let mut best = None;
        let mut chunks = vec![1; dims.len()];
        loop {
            let longest: Vec<u64> = dims
                .iter()
                .zip(&chunks)
                .map(|(dim, &k)| dim.size.div_ceil(k) as u64)
                .collect();
            let fits = longest.iter().product::<u64>() <= limits.max_cells
                && limits
                    .max_values
                    .is_none_or(|max| longest.iter().sum::<u64>() <= max);
            if fits {
                let cut = |i: &usize| chunks[*i] > 1;
                let whole_cut = (0..dims.len())
                    .filter(|i| cut(i) && dims[*i].role != Role::Other)
                    .count();
                let rank = (
                    whole_cut > 0,
                    chunks.iter().product::<usize>(),
                    whole_cut,
                    (0..dims.len()).filter(cut).count(),
                    Reverse(preference.iter().map(|&i| chunks[i]).collect::<Vec<_>>()),
                );
                if best.as_ref().is_none_or(|(best, _)| rank < *best) {
                    best = Some((rank, chunks.clone()));
                }
            }
            let Some(turn) = (0..dims.len()).rfind(|&d| chunks[d] < dims[d].size) else {
                return best.map(|(_, chunks)| chunks);
            };
            chunks[turn] += 1;
            chunks[turn + 1..].fill(1);
        }
    }

    fn roles() -> impl Strategy<Value = Role> {
        prop_oneof![2 => Just(Role::Other), 1 => Just(Role::Time), 1 => Just(Role::Content)]
    }

    /// A query of `dims` dimensions of `sizes` values and limits from far too small to ample:
    /// `max_cells` log-uniform from `product / floor` (at least 1) to twice the product.
    fn queries(
        dims: Range<usize>,
        sizes: Range<usize>,
        floor: u64,
    ) -> impl Strategy<Value = (Vec<Dimension>, Limits)> {
        proptest::collection::vec((sizes, roles()), dims)
            .prop_map(|shape| {
                shape
                    .into_iter()
                    .enumerate()
                    .map(|(i, (size, role))| dim(&format!("V{i}"), size, role))
                    .collect::<Vec<_>>()
            })
            .prop_flat_map(move |dims| {
                let product: u64 = dims.iter().map(|dim| dim.size as u64).product();
                let sum: u64 = dims.iter().map(|dim| dim.size as u64).sum();
                let low = (product / floor).max(1) as f64;
                let high = (2 * product) as f64;
                let max_cells = (0.0..=1.0f64)
                    .prop_map(move |t| (low * (high / low).powf(t)).round() as u64)
                    .prop_map(|max_cells| max_cells.max(1));
                let max_values = proptest::option::of(1..=sum + 2);
                (Just(dims), max_cells, max_values).prop_map(|(dims, max_cells, max_values)| {
                    (
                        dims,
                        Limits {
                            max_cells,
                            max_values,
                        },
                    )
                })
            })
    }

    proptest! {
        #[test]
        fn plans_tile_the_query_within_the_limits(
            (dims, limits) in queries(1..7, 1..301, 2_000),
            pick in any::<usize>(),
        ) {
            let planned = plan(&dims, &limits);
            if limits.max_values.is_some_and(|max| max < dims.len() as u64) {
                prop_assert!(matches!(planned, Err(PlanError::Impossible { .. })), "{planned:?}");
                return Ok(());
            }
            let pieces = match planned {
                Err(PlanError::TooManyRequests { requests, .. }) => {
                    prop_assert!(requests > MAX_REQUESTS);
                    return Ok(());
                }
                planned => planned.unwrap(),
            };
            prop_assert!(pieces.iter().all(|piece| within(piece, &limits)));
            let chunks = grid_of(&pieces, &whole(&dims));
            if whole_keeping_grid_exists(&dims, &limits) {
                prop_assert!(dims.iter().zip(&chunks).all(|(dim, &k)| dim.role == Role::Other || k == 1));
            }

            let piece = &pieces[pick % pieces.len()];
            match replan(piece, &dims, &limits) {
                Err(PlanError::SingleCell) => prop_assert_eq!(piece.cells(), 1),
                replanned => {
                    let parts = replanned.unwrap();
                    prop_assert!(parts.iter().all(|part| part.cells() <= piece.cells() / 2));
                    prop_assert!(parts.iter().all(|part| within(part, &limits)));
                    grid_of(&parts, &piece.ranges);
                }
            }
        }

        #[test]
        fn plans_are_the_best_grid_brute_force_finds((dims, limits) in queries(1..5, 1..9, u64::MAX)) {
            match brute_force(&dims, &limits) {
                None => {
                    let planned = plan(&dims, &limits);
                    prop_assert!(matches!(planned, Err(PlanError::Impossible { .. })), "{planned:?}");
                }
                Some(best) => prop_assert_eq!(grid_of(&plan(&dims, &limits).unwrap(), &whole(&dims)), best),
            }
        }
    }

    #[test]
    fn scb_population_is_cut_along_region_into_24_requests() {
        // 312 × 101 × 2 × 1 × 55 = 3 466 320 cells. Tid and ContentsCode stay whole, which
        // leaves 150 000 / 55 = 2727 cells for Region × Alder × Kon (63 024 values), so at least
        // 24 requests. Region alone gets there: 13 regions × 101 × 2 = 2626; Alder alone would
        // need 26 (4 ages × 312 × 2 = 2496).
        let limits = Limits {
            max_cells: 150_000,
            max_values: Some(110_000),
        };
        let pieces = plan(&population(), &limits).unwrap();
        assert_eq!(grid_of(&pieces, &whole(&population())), [24, 1, 1, 1, 1]);
        assert!(pieces.iter().all(|p| lengths(p) == [13, 101, 2, 1, 55]));
        assert_eq!(pieces[0].cells(), 144_430);
        assert_eq!(pieces[1].ranges[0], 13..26);
    }

    #[test]
    fn a_query_that_fits_is_one_piece() {
        let dims = [
            dim("Region", 21, Role::Other),
            dim("ContentsCode", 2, Role::Content),
            dim("Tid", 10, Role::Time),
        ];
        let pieces = plan(&dims, &cells(150_000)).unwrap();
        assert_eq!(
            pieces,
            [Piece {
                ranges: whole(&dims)
            }]
        );
    }

    #[test]
    fn time_is_kept_whole_even_at_the_cost_of_a_request() {
        // Two requests of 20 periods would do; keeping Tid whole takes three of Region.
        let dims = [dim("Region", 5, Role::Other), dim("Tid", 40, Role::Time)];
        let pieces = plan(&dims, &cells(100)).unwrap();
        let regions: Vec<Range<usize>> = pieces.iter().map(|p| p.ranges[0].clone()).collect();
        assert_eq!(regions, [0..2, 2..4, 4..5]);
    }

    #[test]
    fn time_and_content_are_cut_when_nothing_else_fits() {
        // One region is still 3 × 55 = 165 cells. Once a whole-kept variable must be cut the
        // count decides: Tid into 7 chunks of at most 8 (4 × 3 × 8 = 96 cells), where one
        // region per request and Tid in halves would take 8.
        let dims = [
            dim("Region", 4, Role::Other),
            dim("ContentsCode", 3, Role::Content),
            dim("Tid", 55, Role::Time),
        ];
        let pieces = plan(&dims, &cells(100)).unwrap();
        assert_eq!(grid_of(&pieces, &whole(&dims)), [1, 1, 7]);
        assert_eq!(lengths(&pieces[6]), [4, 3, 7]);
    }

    #[test]
    fn a_refused_piece_is_halved_along_the_cheapest_variable() {
        // 144 430 cells refused: halves hold 72 215. Kon in two does it in 2 requests; Region
        // would take 3 (6 regions × 101 × 2 × 55 = 66 660).
        let dims = population();
        let limits = cells(150_000);
        let piece = plan(&dims, &limits).unwrap().swap_remove(1);
        let parts = replan(&piece, &dims, &limits).unwrap();
        assert_eq!(grid_of(&parts, &piece.ranges), [1, 1, 2, 1, 1]);
        assert_eq!(parts[1].ranges, [13..26, 0..101, 1..2, 0..1, 0..55]);
    }

    #[test]
    fn an_empty_selection_names_the_variable() {
        let dims = [dim("Region", 3, Role::Other), dim("Tid", 0, Role::Time)];
        insta::assert_snapshot!(plan(&dims, &cells(150_000)).unwrap_err(), @"variable `Tid` has no values selected, so the query would ask for nothing; fix its `select` entry, or check that the table still has the values it names");
    }

    #[test]
    fn limits_no_request_meets_name_the_limits_and_variables() {
        insta::assert_snapshot!(plan(&population(), &cells(0)).unwrap_err(), @"no request can stay within max_cells = 0 and max_values = none: even one value of each variable (`Region`, `Alder`, `Kon`, `ContentsCode`, `Tid`) makes 5 values and 1 cell; select fewer variables, or check `server_max_cells` in [source] against the server's `?config`");
        let few_values = Limits {
            max_cells: 150_000,
            max_values: Some(4),
        };
        insta::assert_snapshot!(plan(&population(), &few_values).unwrap_err(), @"no request can stay within max_cells = 150000 and max_values = 4: even one value of each variable (`Region`, `Alder`, `Kon`, `ContentsCode`, `Tid`) makes 5 values and 1 cell; select fewer variables, or check `server_max_cells` in [source] against the server's `?config`");
    }

    #[test]
    fn a_query_of_too_many_requests_is_refused() {
        let dims = [
            dim("Region", 1000, Role::Other),
            dim("Alder", 1000, Role::Other),
        ];
        insta::assert_snapshot!(plan(&dims, &cells(5)).unwrap_err(), @"the query asks for 1000000 cells, which takes 200000 requests of at most 5 cells, more than the 100000 one harvest may make; select fewer values");
    }

    #[test]
    fn a_refused_single_cell_cannot_be_replanned() {
        let dims = [dim("Region", 3, Role::Other), dim("Tid", 2, Role::Time)];
        let piece = Piece {
            ranges: vec![1..2, 0..1],
        };
        insta::assert_snapshot!(replan(&piece, &dims, &cells(150_000)).unwrap_err(), @"the server refused a request for a single cell as too many cells, so no split can help; its limit is not the one it announces: check `server_max_cells` in [source] and the server's `?config`");
    }

    #[test]
    fn cuts_are_the_fewest_chunks_for_each_longest_chunk() {
        let found: Vec<(usize, u64)> = cuts(10).iter().map(|c| (c.chunks, c.longest)).collect();
        assert_eq!(found, [(10, 1), (5, 2), (4, 3), (3, 4), (2, 5), (1, 10)]);
        assert_eq!(balanced_chunks(10, 4), [0..3, 3..6, 6..8, 8..10]);
    }

    #[test]
    fn a_large_query_is_planned_without_trying_every_grid() {
        // Ten variables; the bound per remaining budget keeps this to thousands of steps where
        // the grids number about 10^14.
        let dims = [
            dim("Region", 2000, Role::Other),
            dim("Alder", 101, Role::Other),
            dim("Kon", 3, Role::Other),
            dim("Utbildning", 12, Role::Other),
            dim("Fodelseland", 7, Role::Other),
            dim("Sektor", 2, Role::Other),
            dim("Civilstand", 2, Role::Other),
            dim("Hushall", 2, Role::Other),
            dim("ContentsCode", 6, Role::Content),
            dim("Tid", 55, Role::Time),
        ];
        let limits = Limits {
            max_cells: 10_000_000,
            max_values: Some(110_000),
        };
        let pieces = plan(&dims, &limits).unwrap();
        assert!(pieces.iter().all(|piece| within(piece, &limits)));
        grid_of(&pieces, &whole(&dims));
    }
}
