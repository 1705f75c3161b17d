//! Harmonisation: a SourceTable chunk → rows of the common model (DESIGN §3).
