//! Query planning: an expanded selection → the fewest requests that each stay within the
//! server's limits. A pure function: no I/O, no clock.
