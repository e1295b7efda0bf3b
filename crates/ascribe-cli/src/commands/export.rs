//! `ascribe export`: an evidence package for a window of time.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context as _;
use ascribe_audit::export::{export, Format};
use ascribe_audit::Window;

use crate::cli::ExportArgs;
use crate::commands::print_json;
use crate::context::Context;
use crate::Outcome;

/// Writes the package; a partly written file is removed when the export fails.
pub fn run(context: &Context, args: ExportArgs) -> anyhow::Result<Outcome> {
    let format: Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let window = Window::parse(&args.from, &args.to)?;
    let mut backend = context.backend()?;

    let to_stdout = args.output.as_os_str() == "-";
    let summary = if to_stdout {
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        export(backend.as_mut(), window, format, &mut out)?
    } else {
        let path = &args.output;
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        let written = export(backend.as_mut(), window, format, &mut out)
            .map_err(anyhow::Error::from)
            .and_then(|summary| {
                out.flush()?;
                out.get_ref().sync_all()?;
                Ok(summary)
            });
        match written {
            Ok(summary) => summary,
            Err(error) => {
                let _ = std::fs::remove_file(path);
                return Err(error.context(format!("export to {} failed", path.display())));
            }
        }
    };

    if summary.not_yet_signed > 0 {
        tracing::warn!(
            left_out = summary.not_yet_signed,
            "entries of the window after the latest signed tree head were left out; export \
             again once a newer head is signed"
        );
    }
    if args.json {
        print_json(&summary)?;
    } else if !to_stdout {
        eprintln!(
            "wrote {} ({} rows{})",
            args.output.display(),
            summary.rows,
            summary
                .tree_size
                .map(|size| format!(", proved against the signed tree head of size {size}"))
                .unwrap_or_default()
        );
    }
    Ok(Outcome::Success)
}
