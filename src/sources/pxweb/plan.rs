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
    let (requests, chunks) = Search::new(dims, limits, Whole::Kept)
        .best()
        .or_else(|| Search::new(dims, limits, Whole::MayCut).best())
        .expect("one value of each dimension fits both limits: checked above");
    if requests > MAX_REQUESTS {
        return Err(PlanError::TooManyRequests {
            cells: dims
                .iter()
                .fold(1, |cells: u128, dim| cells.saturating_mul(dim.size as u128)),
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

/// A branch-and-bound search over the cuts of each dimension, in order of preference (the
/// order that rule 5 compares chunk counts in). The bound on the dimensions still to cut is
/// their least cost within the cell budget left, from a memoised recursion that ignores
/// the sum of values (so it is exact when `max_values` does not bind). The budget is always
/// `max_cells / (product of the longest chunks so far)`, rounded down, which takes O(sqrt
/// max_cells) distinct values, so there are few bounds to remember.
struct Search {
    /// Input positions of the dimensions, in order of preference.
    order: Vec<usize>,
    /// Per dimension in `order`: the cuts allowed, longest ascending.
    cuts: Vec<Vec<Cut>>,
    keep_whole: Vec<bool>,
    max_cells: u64,
    max_values: u64,
    bounds: HashMap<(usize, u64), Option<Cost>>,
    /// The best grid so far: its cost and chunks per dimension in `order`.
    best: Option<(Cost, Vec<usize>)>,
}

impl Search {
    fn new(dims: &[Dimension], limits: &Limits, whole: Whole) -> Self {
        let mut order: Vec<usize> = (0..dims.len()).collect();
        // Rule 5: other dimensions first, largest first; the input order settles equal sizes.
        order.sort_by_key(|&i| (dims[i].keep_whole(), Reverse(dims[i].size)));
        let max_values = limits.max_values.unwrap_or(u64::MAX);
        // Every other dimension names at least one value, so no chunk may be longer than this.
        let longest_allowed = max_values.saturating_sub((dims.len() as u64).saturating_sub(1));
        let cuts = order
            .iter()
            .map(|&i| {
                let mut cuts = cuts(dims[i].size);
                if whole == Whole::Kept && dims[i].keep_whole() {
                    cuts.retain(|cut| cut.chunks == 1);
                }
                cuts.retain(|cut| cut.longest <= longest_allowed);
                cuts
            })
            .collect();
        Self {
            keep_whole: order.iter().map(|&i| dims[i].keep_whole()).collect(),
            order,
            cuts,
            max_cells: limits.max_cells,
            max_values,
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

    /// The least cost of cutting the dimensions from `at` on with at most `budget` cells per
    /// piece, the sum of values ignored; `None` when they cannot fit.
    fn bound(&mut self, at: usize, budget: u64) -> Option<Cost> {
        if at == self.cuts.len() {
            return Some(Cost::UNCUT);
        }
        if let Some(&known) = self.bounds.get(&(at, budget)) {
            return known;
        }
        let mut least: Option<Cost> = None;
        for c in 0..self.cuts[at].len() {
            let cut = self.cuts[at][c];
            if cut.longest > budget {
                break;
            }
            if let Some(rest) = self.bound(at + 1, budget / cut.longest) {
                let cost = Cost::of(cut, self.keep_whole[at]).then(rest);
                least = Some(least.map_or(cost, |least| least.min(cost)));
            }
        }
        self.bounds.insert((at, budget), least);
        least
    }

    /// Tries the cuts of dimension `chosen.len()` on, best bound first, keeping in `best` the
    /// least (cost, then most chunks in order) grid within both limits.
    fn descend(&mut self, chosen: &mut Vec<usize>, budget: u64, values_left: u64, so_far: Cost) {
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
        // Every later dimension names at least one value.
        let later = (self.cuts.len() - at - 1) as u64;
        let mut tries = Vec::new();
        for c in 0..self.cuts[at].len() {
            let cut = self.cuts[at][c];
            if cut.longest > budget || cut.longest + later > values_left {
                break;
            }
            let step = so_far.then(Cost::of(cut, self.keep_whole[at]));
            if let Some(rest) = self.bound(at + 1, budget / cut.longest) {
                tries.push((step.then(rest), cut, step));
            }
        }
        tries.sort_by_key(|&(bound, cut, _)| (bound, Reverse(cut.chunks)));
        for (bound, cut, step) in tries {
            chosen.push(cut.chunks);
            if let Some((cost, chunks)) = &self.best {
                if bound > *cost {
                    break;
                }
                // An equal cost can only win on more chunks in order of preference.
                if bound == *cost && chosen[..] < chunks[..=at] {
                    chosen.pop();
                    continue;
                }
            }
            self.descend(
                chosen,
                budget / cut.longest,
                values_left - cut.longest,
                step,
            );
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
