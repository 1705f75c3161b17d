//! What a marker in DATA means in this file: its `DATASYMBOL*` keywords resolved to the marker
//! names the cube carries.
//!
//! Owns: the token → [`Symbol`] rule and the marker names (`DATASYMBOL1`..`6`, `DATASYMBOLNIL`,
//! `DATASYMBOLSUM`, `PRELIMINARY`) that `harmonise::mapping` gives meanings to.
//! Must not: read tokens (`data.rs` does) or say what a marker means in the model.
//!
//! The marker in DATA for `DATASYMBOLn` is always n dots; its keyword only gives the text shown
//! for it (`"one"`, `"n.a."`). `DATASYMBOLNIL` and `DATASYMBOLSUM` instead name the symbol
//! written in DATA, and a file may reuse dots for them (`DATASYMBOLSUM="."` in Norwegian files):
//! so NIL and SUM are matched first, then dots, then `-` (the standard nil).

/// A marked cell's meaning in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Symbol {
    /// 1 to 6 dots: `DATASYMBOL1`..`DATASYMBOL6`.
    Dots(u8),
    Nil,
    Sum,
    /// A cell of a time period marked preliminary (`2023*`).
    Preliminary,
}

/// Every marker name, in a fixed order (the cube keeps the ones used, in this order).
pub(super) const NAMES: [&str; 9] = [
    "DATASYMBOL1",
    "DATASYMBOL2",
    "DATASYMBOL3",
    "DATASYMBOL4",
    "DATASYMBOL5",
    "DATASYMBOL6",
    "DATASYMBOLNIL",
    "DATASYMBOLSUM",
    "PRELIMINARY",
];

impl Symbol {
    /// The index of the marker name in [`NAMES`].
    pub fn index(self) -> usize {
        match self {
            Symbol::Dots(n) => usize::from(n) - 1,
            Symbol::Nil => 6,
            Symbol::Sum => 7,
            Symbol::Preliminary => 8,
        }
    }
}

/// The file's own `DATASYMBOLNIL` and `DATASYMBOLSUM` symbols.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Symbols {
    pub nil: Option<String>,
    pub sum: Option<String>,
}

impl Symbols {
    /// The meaning of a DATA token that is not a number (quotes removed); `None` if it has none.
    pub fn resolve(&self, token: &str) -> Option<Symbol> {
        if self.nil.as_deref() == Some(token) {
            Some(Symbol::Nil)
        } else if self.sum.as_deref() == Some(token) {
            Some(Symbol::Sum)
        } else if (1..=6).contains(&token.len()) && token.bytes().all(|b| b == b'.') {
            Some(Symbol::Dots(token.len() as u8))
        } else if token == "-" {
            Some(Symbol::Nil)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_count_unless_nil_or_sum_redefine_them() {
        let standard = Symbols::default();
        assert_eq!(standard.resolve("."), Some(Symbol::Dots(1)));
        assert_eq!(standard.resolve("......"), Some(Symbol::Dots(6)));
        assert_eq!(standard.resolve("......."), None);
        assert_eq!(standard.resolve("-"), Some(Symbol::Nil));
        assert_eq!(standard.resolve("x"), None);
        let norwegian = Symbols {
            nil: Some("-".into()),
            sum: Some(".".into()),
        };
        assert_eq!(norwegian.resolve("."), Some(Symbol::Sum));
        assert_eq!(norwegian.resolve(".."), Some(Symbol::Dots(2)));
        let texts = Symbols {
            nil: Some("nothing".into()),
            sum: Some("*".into()),
        };
        assert_eq!(texts.resolve("-"), Some(Symbol::Nil));
        assert_eq!(texts.resolve("*"), Some(Symbol::Sum));
    }

    #[test]
    fn every_symbol_names_its_marker() {
        assert_eq!(NAMES[Symbol::Dots(2).index()], "DATASYMBOL2");
        assert_eq!(NAMES[Symbol::Nil.index()], "DATASYMBOLNIL");
        assert_eq!(NAMES[Symbol::Sum.index()], "DATASYMBOLSUM");
        assert_eq!(NAMES[Symbol::Preliminary.index()], "PRELIMINARY");
    }
}
