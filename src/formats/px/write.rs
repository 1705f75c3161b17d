//! Test support: a [`Cube`] written as a PX file, for round trips through [`super::decode`].
//!
//! Owns: the PX text of a cube whose dimensions all have a label (the variable name), with
//! markers written as DATA symbols, optionally in KEYS mode and with a second language.
//! Must not: be compiled outside tests.

use arrow_array::Array;

use crate::formats::table::{CellStatus, Cube};

/// How [`write`] lays the cube out.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteOptions {
    /// How many leading dimensions go to STUB (the rest to HEADING).
    pub stub: usize,
    /// KEYS mode (CODES as keys), leaving out rows of only zeros.
    pub keys: bool,
    /// Main language `en` with made-up names, the cube's names and labels as `[sv]`.
    pub languages: bool,
}

/// The DATA symbol of a marker name (`DATASYMBOLSUM` is declared as `*`).
fn symbol(marker: &str) -> String {
    match marker {
        "DATASYMBOLNIL" => "-".into(),
        "DATASYMBOLSUM" => "*".into(),
        dots => {
            let n: usize = dots["DATASYMBOL".len()..].parse().expect("DATASYMBOL1..6");
            ".".repeat(n)
        }
    }
}

/// `"a","b"`, each value after the first on a line of its own when `wrap`.
fn quoted<'a>(texts: impl IntoIterator<Item = &'a String>, wrap: bool) -> String {
    texts
        .into_iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(if wrap { ",\n" } else { "," })
}

/// Writes `cube` as PX text. Panics on a dimension without label or a PRELIMINARY marker.
pub(super) fn write(cube: &Cube, options: WriteOptions) -> String {
    let names: Vec<String> = cube
        .dimensions
        .iter()
        .map(|d| d.label.clone().expect("a labelled dimension"))
        .collect();
    let (stub, heading) = names.split_at(options.stub);
    let mut out = String::from("CHARSET=\"ANSI\";\nDECIMALS=0;\nMATRIX=\"T\";\n");
    let (main, tag) = if options.languages {
        ("en", "[sv]")
    } else {
        ("sv", "")
    };
    out += &format!("LANGUAGE=\"{main}\";\n");
    let main_name = |name: &String| {
        if options.languages {
            format!("en {name}")
        } else {
            name.clone()
        }
    };
    let write_language = |out: &mut String, tag: &str, name: &dyn Fn(&String) -> String| {
        out.push_str(&format!("TITLE{tag}=\"Tabell\";\n"));
        for (keyword, list) in [("STUB", stub), ("HEADING", heading)] {
            if !list.is_empty() {
                let list: Vec<String> = list.iter().map(name).collect();
                out.push_str(&format!("{keyword}{tag}={};\n", quoted(&list, false)));
            }
        }
        for (d, dimension) in cube.dimensions.iter().enumerate() {
            let var = name(&names[d]);
            let labels: Vec<String> = if tag.is_empty() && options.languages {
                dimension.labels.iter().map(|l| format!("en {l}")).collect()
            } else {
                dimension.labels.clone()
            };
            out.push_str(&format!(
                "VARIABLECODE{tag}(\"{var}\")=\"{}\";\n",
                dimension.id
            ));
            // Long lists wrap after a comma, as PxWeb writes them.
            out.push_str(&format!(
                "VALUES{tag}(\"{var}\")={};\n",
                quoted(&labels, true)
            ));
            let codes = quoted(&dimension.codes, false);
            out.push_str(&format!("CODES{tag}(\"{var}\")={codes};\n"));
        }
    };
    write_language(&mut out, "", &main_name);
    if options.languages {
        out += "LANGUAGES=\"en\",\"sv\";\n";
        write_language(&mut out, tag, &|name: &String| name.clone());
    }
    out += "DATASYMBOLSUM=\"*\";\nDATASYMBOLNIL=\"-\";\n";
    if options.keys {
        for name in stub {
            out += &format!("KEYS(\"{}\")=CODES;\n", main_name(name));
        }
    }
    out += "DATA=\n";
    let n = cube.values.len();
    let mut tokens: Vec<String> = (0..n)
        .map(|i| match cube.values.is_valid(i) {
            true => cube.values.value(i).to_string(),
            false => "\"..\"".into(),
        })
        .collect();
    if let CellStatus::Sparse { markers, cells } = &cube.status {
        for &(cell, m) in cells {
            tokens[cell as usize] = format!("\"{}\"", symbol(&markers[m as usize]));
        }
    }
    let sizes: Vec<usize> = cube.dimensions.iter().map(|d| d.codes.len()).collect();
    let row_cells: usize = sizes[options.stub..].iter().product();
    for (row, cells) in tokens.chunks(row_cells.max(1)).enumerate() {
        if options.keys {
            if cells.iter().all(|t| t == "0") {
                continue;
            }
            let mut keys = Vec::new();
            let mut rest = row;
            for d in (0..options.stub).rev() {
                keys.push(format!("\"{}\"", cube.dimensions[d].codes[rest % sizes[d]]));
                rest /= sizes[d];
            }
            keys.reverse();
            out += &format!("{},", keys.join(","));
        }
        out += &cells.join(" ");
        out += "\n";
    }
    out += ";\n";
    out
}
