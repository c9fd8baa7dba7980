//! `sluice redact ...`: the redaction rules, as the window edits them.

use crate::{args, output, TableFormat};
use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use sluice_api::{RedactRule, Session};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Action {
    Hash,
    Drop,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum At {
    Capture,
    View,
}

#[derive(Subcommand)]
pub(crate) enum RedactCmd {
    /// Add a rule for CONNECTION's events (one source with --source): values at the --field
    /// paths, the --header values and the --pattern matches are hashed or dropped, at capture
    /// (never written) or at view (in search, the event view, exports and bundles)
    Add {
        connection: String,
        #[arg(long)]
        source: Option<String>,
        /// Decoded field path: customer.email, items[*].card, lines[0].iban
        #[arg(long = "field", value_name = "PATH")]
        fields: Vec<String>,
        /// Header name (any case)
        #[arg(long = "header", value_name = "NAME")]
        headers: Vec<String>,
        /// Regular expression over every text value
        #[arg(long = "pattern", value_name = "REGEX")]
        patterns: Vec<String>,
        #[arg(long, value_enum, default_value_t = Action::Hash)]
        action: Action,
        #[arg(long, value_enum, default_value_t = At::Capture)]
        at: At,
    },
    /// List the rules, numbered
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Remove rule N (as `redact list` numbers them)
    Remove { index: usize },
}

fn print(rules: &[RedactRule]) {
    if rules.is_empty() {
        println!("no redaction rules (sluice redact add CONNECTION --field PATH)");
    }
    for (i, r) in rules.iter().enumerate() {
        let mut what = Vec::new();
        what.extend(r.fields.iter().map(|f| format!("field {f}")));
        what.extend(r.headers.iter().map(|h| format!("header {h}")));
        what.extend(r.patterns.iter().map(|p| format!("pattern {p}")));
        println!(
            "{}. {}{}: {} ({:?} at {:?})",
            i + 1,
            r.connection,
            r.source
                .as_ref()
                .map(|s| format!(":{s}"))
                .unwrap_or_default(),
            what.join(", "),
            r.action,
            r.at
        );
    }
}

pub(crate) fn run(session: &Session, cmd: RedactCmd) -> Result<()> {
    let rules = match cmd {
        RedactCmd::Add {
            connection,
            source,
            fields,
            headers,
            patterns,
            action,
            at,
        } => session.redact_add(args(
            "redact_add",
            json!({
                "connection": connection, "source": source, "fields": fields,
                "headers": headers, "patterns": patterns,
                "action": match action { Action::Hash => "hash", Action::Drop => "drop" },
                "at": match at { At::Capture => "capture", At::View => "view" },
            }),
        )?)?,
        RedactCmd::List { format } => {
            let rules = session.redact_list(args("redact_list", json!({}))?)?;
            if format == TableFormat::Json {
                output::json(&rules);
                return Ok(());
            }
            rules
        }
        RedactCmd::Remove { index } => {
            session.redact_remove(args("redact_remove", json!({ "index": index }))?)?
        }
    };
    print(&rules);
    Ok(())
}
